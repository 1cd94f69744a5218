/* Resolver tests: literals, overrides, and (below) the c-ares path against a UDP responder. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "dns.h"
#include "err.h"
#include "loop.h"
#include "t.h"

struct result {
    int calls;
    int err;
    size_t n;
    char addrs[16][64];
};

static void on_result(int err, const struct sockaddr_storage *addrs, size_t naddrs, void *ud)
{
    struct result *r = ud;
    size_t i;

    r->calls++;
    r->err = err;
    r->n = naddrs;
    for (i = 0; i < naddrs && i < 16; i++)
        hd_addr_format((const struct sockaddr *)&addrs[i], r->addrs[i], sizeof(r->addrs[i]));
}

static void resolve_sync(struct hd_dns *dns, const char *host, uint16_t port, struct result *r)
{
    memset(r, 0, sizeof(*r));
    T_EQ_INT(hd_dns_resolve(dns, host, port, on_result, r), 0);
    T_EQ_INT(r->calls, 1); /* literals and overrides answer before returning */
}

static void test_literals_overrides(struct hd_loop *loop)
{
    struct hd_dns *dns;
    struct result r;

    T_EQ_INT(hd_dns_new(&dns, loop, NULL), 0);
    resolve_sync(dns, "127.0.0.1", 8443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_INT(r.n, 1);
    T_EQ_STR(r.addrs[0], "127.0.0.1:8443");
    resolve_sync(dns, "::1", 443, &r);
    T_EQ_STR(r.addrs[0], "[::1]:443");
    resolve_sync(dns, "[2001:DB8::1]", 80, &r);
    T_EQ_STR(r.addrs[0], "[2001:db8::1]:80");
    resolve_sync(dns, "bad host", 80, &r);
    T_EQ_INT(r.err, HD_ERR_DNS);
    resolve_sync(dns, "a..b", 80, &r);
    T_EQ_INT(r.err, HD_ERR_DNS);
    resolve_sync(dns, "", 80, &r);
    T_EQ_INT(r.err, HD_ERR_DNS);

    T_EQ_INT(hd_dns_add_override(dns, "Example.COM:443:127.0.0.2,[::1]"), 0);
    T_EQ_INT(hd_dns_add_override(dns, "*:8443:127.0.0.9"), 0);
    T_EQ_INT(hd_dns_add_override(dns, "+v6.test:443:::2"), 0);
    T_EQ_INT(hd_dns_add_override(dns, "[::5]:443:127.0.0.5"), 0);
    T_EQ_INT(hd_dns_add_override(dns, "bad"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "h:0:127.0.0.1"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "h:65536:127.0.0.1"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "h:443:"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "h:443:127.0.0.1,"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "h:443:example.com"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, ":443:127.0.0.1"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "h:x:127.0.0.1"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "h:443:[::1"), HD_ERR_INVALID);
    T_EQ_INT(hd_dns_add_override(dns, "a*b:443:127.0.0.1"), HD_ERR_INVALID);

    resolve_sync(dns, "example.com", 443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_INT(r.n, 2);
    T_EQ_STR(r.addrs[0], "127.0.0.2:443");
    T_EQ_STR(r.addrs[1], "[::1]:443");
    resolve_sync(dns, "EXAMPLE.com.", 443, &r); /* case and trailing dot do not matter */
    T_EQ_STR(r.addrs[0], "127.0.0.2:443");
    resolve_sync(dns, "v6.test", 443, &r);
    T_EQ_STR(r.addrs[0], "[::2]:443");
    resolve_sync(dns, "::5", 443, &r); /* overrides win over literals */
    T_EQ_STR(r.addrs[0], "127.0.0.5:443");
    /* "*" matches any host, but only on its port. */
    resolve_sync(dns, "anything.example", 8443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_STR(r.addrs[0], "127.0.0.9:8443");
    resolve_sync(dns, "10.1.2.3", 8443, &r);
    T_EQ_STR(r.addrs[0], "127.0.0.9:8443");
    /* Exact host beats "*". */
    T_EQ_INT(hd_dns_add_override(dns, "example.com:8443:127.0.0.3"), 0);
    resolve_sync(dns, "example.com", 8443, &r);
    T_EQ_STR(r.addrs[0], "127.0.0.3:8443");
    /* Replacing an override. */
    T_EQ_INT(hd_dns_add_override(dns, "example.com:8443:127.0.0.4"), 0);
    resolve_sync(dns, "example.com", 8443, &r);
    T_EQ_INT(r.n, 1);
    T_EQ_STR(r.addrs[0], "127.0.0.4:8443");
    /* An override for example.com:443 does not apply to port 80. */
    resolve_sync(dns, "10.0.0.1", 80, &r);
    T_EQ_STR(r.addrs[0], "10.0.0.1:80");
    hd_dns_free(dns);
}

int main(void)
{
    struct hd_loop *loop;
    int rv = hd_loop_new(&loop, 64);

    if (rv == -ENOSYS || rv == -EPERM)
        T_SKIP("no io_uring here (%d)", rv);
    T_EQ_INT(rv, 0);
    test_literals_overrides(loop);
    hd_loop_free(loop);
    T_DONE();
}
