/* SSRF probe, run by tests/integration/ssrf_netns.sh inside a loopback-only network
 * namespace (it also runs anywhere, but then a mistake could reach a real network).
 *
 * 1. hd_addr_check refuses one address of every non-public class and accepts public ones.
 * 2. A guarded dial (resolve through hd_dns, hd_addr_check every address, connect only what
 *    passes) never reaches a listener on loopback when the name is steered there by an
 *    override (exact host, "*", IPv4-mapped, NAT64, 6to4 forms), and does reach it with
 *    allow_private, proving the probe would notice a leak.
 * 3. A public answer is dialled (and fails with "network unreachable": nothing leaves the
 *    namespace); when the same name's answer turns private (rebinding), it is refused.
 * 4. Resolving through the system resolver fails fast in the namespace.
 * Exit 0 when all hold, 1 otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "dns.h"
#include "err.h"
#include "loop.h"
#include "t.h"

static const char *const refused[] = {
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "100.64.0.1", "127.0.0.1", "127.255.255.254",
    "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.88.99.1",
    "192.168.1.1", "198.18.0.1", "198.51.100.1", "203.0.113.1", "224.0.0.1", "239.255.255.250",
    "240.0.0.1", "255.255.255.255",
    "::", "::1", "::127.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1:7f00:0:100::", "2002:7f00:1::1",
    "2002:a00:1::", "2002:c0a8:101::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:10::1", "2001:db8::1", "100::1", "fe80::1", "febf::1", "fec0::1", "fc00::1",
    "fd00::1", "ff02::1", "ff05::1:3",
};

static const char *const allowed[] = {
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "::ffff:8.8.8.8", "64:ff9b::808:808",
    "2002:808:808::1", "2606:4700::1111", "2a00:1450:4001::1",
};

static int to_sa(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    *len = sizeof(*in);
    return inet_pton(AF_INET, ip, &in->sin_addr) == 1 ? 0 : -1;
}

static void check_classes(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    size_t i;

    for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        T_EQ_INT(to_sa(refused[i], 443, &ss, &len), 0);
        if (hd_addr_check((struct sockaddr *)&ss, 0) != HD_ERR_PRIVATE_ADDR)
            T_FAIL("not refused: %s", refused[i]);
        T_EQ_INT(hd_addr_check((struct sockaddr *)&ss, 1), 0);
        printf("ok refused %-40s (%s)\n", refused[i], hd_addr_class((struct sockaddr *)&ss));
    }
    for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        T_EQ_INT(to_sa(allowed[i], 443, &ss, &len), 0);
        if (hd_addr_check((struct sockaddr *)&ss, 0) != 0)
            T_FAIL("refused public: %s", allowed[i]);
        printf("ok allowed %s\n", allowed[i]);
    }
}

struct answer {
    int done, err;
    size_t n;
    struct sockaddr_storage addrs[16];
};

static void on_answer(int err, const struct sockaddr_storage *addrs, size_t n, void *ud)
{
    struct answer *a = ud;
    size_t i;

    a->done = 1;
    a->err = err;
    a->n = n < 16 ? n : 16;
    for (i = 0; i < a->n; i++)
        a->addrs[i] = addrs[i];
}

static void resolve(struct hd_loop *loop, struct hd_dns *dns, const char *host, uint16_t port,
                    struct answer *a)
{
    int i;

    memset(a, 0, sizeof(*a));
    T_EQ_INT(hd_dns_resolve(dns, host, port, on_answer, a), 0);
    for (i = 0; i < 300 && !a->done; i++)
        hd_loop_run_once(loop, 20);
    T_OK(a->done);
}

/* Connects with a 1 s bound; returns 0 or -errno. */
static int try_connect(const struct sockaddr_storage *ss)
{
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct pollfd pfd;
    int rv, soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd < 0)
        return -errno;
    rv = connect(fd, (const struct sockaddr *)ss, len);
    if (rv < 0 && errno != EINPROGRESS) {
        rv = -errno;
        close(fd);
        return rv;
    }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    if (poll(&pfd, 1, 1000) != 1) {
        close(fd);
        return -ETIMEDOUT;
    }
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    close(fd);
    return -soerr;
}

/* The transport's rule: every address is checked before it is dialled. Returns the number
 * of addresses dialled; *last_err gets the last connect result. */
static int guarded_dial(struct hd_loop *loop, struct hd_dns *dns, const char *host,
                        uint16_t port, int allow_private, int *last_err)
{
    struct answer a;
    size_t i;
    int dialled = 0;
    char buf[80];

    resolve(loop, dns, host, port, &a);
    *last_err = a.err;
    if (a.err)
        return 0;
    for (i = 0; i < a.n; i++) {
        int rv = hd_addr_check((struct sockaddr *)&a.addrs[i], allow_private);
        hd_addr_format((struct sockaddr *)&a.addrs[i], buf, sizeof(buf));
        if (rv != 0) {
            printf("ok %s -> %s refused before connect\n", host, buf);
            continue;
        }
        *last_err = try_connect(&a.addrs[i]);
        printf("   %s -> %s dialled: %s\n", host, buf, hd_strerror(*last_err));
        dialled++;
    }
    return dialled;
}

static int accepted(int lfd)
{
    int n = 0, fd;

    while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        close(fd);
        n++;
    }
    return n;
}

static int listen_on(const char *ip, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;

    T_EQ_INT(to_sa(ip, 0, &ss, &len), 0);
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    T_OK(fd >= 0);
    if (ss.ss_family == AF_INET6) {
        int off = 0;
        /* Also accept IPv4-mapped connections, so a leak through ::ffff:127.0.0.1 shows. */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
    }
    T_EQ_INT(bind(fd, (struct sockaddr *)&ss, len), 0);
    T_EQ_INT(listen(fd, 16), 0);
    T_EQ_INT(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void check_dials(struct hd_loop *loop)
{
    struct hd_dns_opts o;
    struct hd_dns *dns;
    char spec[160];
    uint16_t port;
    int lfd, err, n;
    const char *steered[] = {"internal.test", "anything.example", "mapped.test", "nat64.test",
                             "sixtofour.test", "v6loop.test", "compat.test"};
    size_t i;

    /* A dual-stack listener on every loopback address: a leak in any form would land here. */
    lfd = listen_on("::", &port);
    hd_dns_opts_default(&o);
    o.timeout_ms = 1000;
    T_EQ_INT(hd_dns_new(&dns, loop, &o), 0);
#define OVR(fmt, ...)                                                                              \
    do {                                                                                           \
        snprintf(spec, sizeof(spec), fmt, __VA_ARGS__);                                            \
        T_EQ_INT(hd_dns_add_override(dns, spec), 0);                                               \
    } while (0)
    OVR("internal.test:%u:127.0.0.1", port);
    OVR("*:%u:127.0.0.2", port);
    OVR("mapped.test:%u:[::ffff:127.0.0.1]", port);
    OVR("nat64.test:%u:[64:ff9b::7f00:1]", port);
    OVR("sixtofour.test:%u:[2002:7f00:1::1]", port);
    OVR("v6loop.test:%u:[::1]", port);
    OVR("compat.test:%u:[::127.0.0.1]", port);
    OVR("mixed.test:%u:93.184.216.34,127.0.0.1,[::1]", port);
    OVR("rebind.test:%u:93.184.216.34", port);

    for (i = 0; i < sizeof(steered) / sizeof(steered[0]); i++) {
        n = guarded_dial(loop, dns, steered[i], port, 0, &err);
        if (n != 0)
            T_FAIL("%s: a private address was dialled", steered[i]);
    }
    /* Mixed answer: only the public address is dialled, and it cannot leave the namespace. */
    n = guarded_dial(loop, dns, "mixed.test", port, 0, &err);
    T_EQ_INT(n, 1);
    T_OK(err == -ENETUNREACH || err == -EHOSTUNREACH || err == -ETIMEDOUT);
    usleep(100 * 1000);
    T_EQ_INT(accepted(lfd), 0);
    printf("ok no connection reached the loopback listener\n");

    /* Rebinding: the name answered public, now it answers loopback: refused on this dial. */
    n = guarded_dial(loop, dns, "rebind.test", port, 0, &err);
    T_EQ_INT(n, 1);
    OVR("rebind.test:%u:127.0.0.1", port);
    n = guarded_dial(loop, dns, "rebind.test", port, 0, &err);
    T_EQ_INT(n, 0);
    usleep(100 * 1000);
    T_EQ_INT(accepted(lfd), 0);
    printf("ok rebound name refused on the second dial\n");

    /* Control: with allow_private the same names do connect, so the probe can see a leak. */
    n = guarded_dial(loop, dns, "internal.test", port, 1, &err);
    T_EQ_INT(n, 1);
    T_EQ_INT(err, 0);
    n = guarded_dial(loop, dns, "mapped.test", port, 1, &err);
    T_EQ_INT(err, 0);
    usleep(100 * 1000);
    T_EQ_INT(accepted(lfd), 2);
    printf("ok control: allow_private reaches the listener\n");
#undef OVR
    hd_dns_free(dns);
    close(lfd);
}

static void check_system_resolver(struct hd_loop *loop)
{
    struct hd_dns_opts o;
    struct hd_dns *dns;
    struct answer a;
    uint64_t t0;

    hd_dns_opts_default(&o);
    o.timeout_ms = 1500;
    if (hd_dns_new(&dns, loop, &o) != 0) {
        printf("ok system resolver unavailable here\n");
        return;
    }
    t0 = hd_loop_update_now(loop);
    resolve(loop, dns, "herald-ssrf-probe.example.com", 443, &a);
    printf("ok system resolver in the namespace: %s after %llu ms\n", hd_strerror(a.err),
           (unsigned long long)(hd_loop_update_now(loop) - t0));
    T_OK(a.err != 0);
    hd_dns_free(dns);
}

/* Is there a route off the machine? A UDP connect() only consults the routing table; it sends
 * nothing. In the test's namespace there is none, and only then do we dial public addresses
 * or ask the system resolver. */
static int isolated(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, rv, i;
    const char *probe[] = {"93.184.216.34", "2606:4700::1111"};

    for (i = 0; i < 2; i++) {
        if (to_sa(probe[i], 53, &ss, &len) != 0)
            return 0;
        fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue; /* no such family here: nothing can leave through it */
        rv = connect(fd, (struct sockaddr *)&ss, len);
        close(fd);
        if (rv == 0)
            return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    struct hd_loop *loop;
    int rv, i;

    check_classes();
    if (!isolated()) {
        if (argc > 1 && strcmp(argv[1], "--classes-only") == 0)
            T_DONE();
        T_SKIP("a route off this machine exists: run me in a loopback-only namespace "
               "(tests/integration/ssrf_netns.sh), or pass --classes-only");
    }
    rv = hd_loop_new(&loop, 64);
    if (rv == -ENOSYS || rv == -EPERM)
        T_SKIP("no io_uring (%d)", rv);
    T_EQ_INT(rv, 0);
    check_dials(loop);
    check_system_resolver(loop);
    for (i = 0; i < 100 && hd_loop_pending(loop) > 0; i++)
        hd_loop_run_once(loop, 10);
    hd_loop_free(loop);
    T_DONE();
}
