/* libFuzzer target for the resolver's operator-facing parsers: hd_dns_add_override specs
 * ("HOST:PORT:ADDR[,ADDR...]", as curl's --resolve) and host-name normalisation in
 * hd_dns_resolve. Input: "<spec>\n<host>".
 *
 * A "*:443:127.0.0.1" override is installed first, so every host that survives
 * normalisation is answered synchronously from overrides: no query is ever sent. Checked:
 * the callback runs exactly once and before hd_dns_resolve returns, answers carry the
 * requested port and a valid family, and at most 16 addresses. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "err.h"
#include "loop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
    int calls;
};

static void on_answer(int err, const struct sockaddr_storage *addrs, size_t n, void *ud)
{
    struct seen *s = ud;
    size_t i;

    s->calls++;
    if (err == 0 && (n == 0 || n > 16 || !addrs))
        abort();
    if (err != 0 && (n != 0 || err == HD_ERR_CANCELLED))
        abort();
    for (i = 0; i < n; i++) {
        if (addrs[i].ss_family == AF_INET) {
            if (((const struct sockaddr_in *)&addrs[i])->sin_port != htons(443))
                abort();
        } else if (addrs[i].ss_family == AF_INET6) {
            if (((const struct sockaddr_in6 *)&addrs[i])->sin6_port != htons(443))
                abort();
        } else {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct hd_loop *loop;
    static int no_loop;
    char buf[1024], *host;
    struct hd_dns_opts o;
    struct hd_dns *dns;
    struct seen s = {0};
    int rv;

    if (size >= sizeof(buf) || no_loop)
        return 0;
    if (!loop && hd_loop_new(&loop, 8) != 0) {
        no_loop = 1;
        return 0;
    }
    memcpy(buf, data, size);
    buf[size] = '\0';
    host = strchr(buf, '\n');
    if (host)
        *host++ = '\0';
    hd_dns_opts_default(&o);
    o.servers = "127.0.0.1:1"; /* never used: the wildcard answers everything */
    if (hd_dns_new(&dns, loop, &o) != 0)
        return 0;
    if (hd_dns_add_override(dns, "*:443:127.0.0.1") != 0)
        abort();
    rv = hd_dns_add_override(dns, buf);
    if (rv != 0 && rv != HD_ERR_INVALID)
        abort();
    if (host) {
        rv = hd_dns_resolve(dns, host, 443, on_answer, &s);
        if (rv != 0 || s.calls != 1)
            abort();
    }
    hd_dns_free(dns);
    return 0;
}
