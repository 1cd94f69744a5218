/* Resolver tests: literals, overrides, and (below) the c-ares path against a UDP responder. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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
    struct sockaddr_storage ss[16];
};

static void on_result(int err, const struct sockaddr_storage *addrs, size_t naddrs, void *ud)
{
    struct result *r = ud;
    size_t i;

    r->calls++;
    r->err = err;
    r->n = naddrs;
    for (i = 0; i < naddrs && i < 16; i++) {
        r->ss[i] = addrs[i];
        hd_addr_format((const struct sockaddr *)&addrs[i], r->addrs[i], sizeof(r->addrs[i]));
    }
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

/* ---- a tiny authoritative responder on 127.0.0.1 (its own thread, blocking I/O) ---- */

struct rr {
    const char *name;
    int rcode;         /* 0 NOERROR, 3 NXDOMAIN */
    const char *a;     /* dotted quad or NULL */
    const char *aaaa;  /* IPv6 or NULL */
    unsigned ttl;
    int tc;            /* over UDP answer "truncated": the client must retry over TCP */
    const char *cname; /* answer a CNAME to this name (TTL ttl), then its A/AAAA */
};

struct responder {
    int fd;
    int lfd;           /* TCP listener on the same port */
    unsigned tcp_queries;
    uint16_t port;
    int silent;        /* read nothing: a server that never answers */
    pthread_t thr;
    pthread_mutex_t mu;
    int stop;
    struct rr rrs[12];
    size_t nrrs;
    unsigned queries[12]; /* per rr, A queries seen */
    unsigned unknown;
};

static size_t put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static size_t put32(uint8_t *p, unsigned v)
{
    put16(p, v >> 16);
    put16(p + 2, v & 0xffff);
    return 4;
}

/* Answers one query in q (len bytes) into out; returns the answer length or 0 to drop. */
static size_t answer(struct responder *rs, const uint8_t *q, size_t len, uint8_t *out, int udp)
{
    char name[256];
    size_t off = 12, nlen = 0, o, i;
    unsigned qtype, ancount = 0;
    int rcode = 3;
    struct rr *r = NULL;
    uint8_t rdata[16];

    if (len < 12 || (q[2] & 0x80) || q[4] != 0 || q[5] != 1)
        return 0;
    while (off < len && q[off] != 0) {
        size_t l = q[off];
        if (l > 63 || off + 1 + l >= len || nlen + l + 1 >= sizeof(name))
            return 0;
        if (nlen)
            name[nlen++] = '.';
        memcpy(name + nlen, q + off + 1, l);
        nlen += l;
        off += 1 + l;
    }
    name[nlen] = '\0';
    if (off + 5 > len)
        return 0;
    qtype = (unsigned)q[off + 1] << 8 | q[off + 2];
    off += 5; /* end of question */
    pthread_mutex_lock(&rs->mu);
    for (i = 0; i < rs->nrrs; i++) {
        if (strcasecmp(rs->rrs[i].name, name) == 0) {
            r = &rs->rrs[i];
            if (qtype == 1)
                rs->queries[i]++;
            break;
        }
    }
    if (!r)
        rs->unknown++;
    memcpy(out, q, off);
    out[2] = 0x84 | (q[2] & 0x01); /* QR, AA, copy RD */
    if (r) {
        rcode = r->rcode;
        if (rcode == 0 && qtype == 1 && r->a && inet_pton(AF_INET, r->a, rdata) == 1)
            ancount = 1;
        if (rcode == 0 && qtype == 28 && r->aaaa && inet_pton(AF_INET6, r->aaaa, rdata) == 1)
            ancount = 1;
    }
    if (r && r->tc && udp) {
        out[2] |= 0x02; /* TC */
        ancount = 0;
    }
    if (!udp)
        rs->tcp_queries++;
    out[3] = (uint8_t)(0x80 | rcode); /* RA */
    put16(out + 6, ancount);
    put16(out + 8, 0);
    put16(out + 10, 0);
    o = off;
    if (r && rcode == 0 && r->cname && (qtype == 1 || qtype == 28)) {
        /* CNAME (TTL r->ttl) to the target, then the target's address (its own TTL). */
        const char *p = r->cname;
        struct rr *t = NULL;
        size_t rdlen_at, co;

        o += put16(out + o, 0xc00c);
        o += put16(out + o, 5);
        o += put16(out + o, 1);
        o += put32(out + o, r->ttl);
        rdlen_at = o;
        o += 2;
        co = o;
        while (*p) {
            size_t l = strcspn(p, ".");
            out[o++] = (uint8_t)l;
            memcpy(out + o, p, l);
            o += l;
            p += l;
            if (*p == '.')
                p++;
        }
        out[o++] = 0;
        put16(out + rdlen_at, (unsigned)(o - co));
        ancount = 1;
        for (i = 0; i < rs->nrrs; i++)
            if (strcasecmp(rs->rrs[i].name, r->cname) == 0)
                t = &rs->rrs[i];
        if (t && qtype == 1 && t->a && inet_pton(AF_INET, t->a, rdata) == 1) {
            o += put16(out + o, 0xc000 | (unsigned)co);
            o += put16(out + o, 1);
            o += put16(out + o, 1);
            o += put32(out + o, t->ttl);
            o += put16(out + o, 4);
            memcpy(out + o, rdata, 4);
            o += 4;
            ancount = 2;
        }
        put16(out + 6, ancount);
        ancount = 0;
    }
    if (ancount) {
        o += put16(out + o, 0xc00c); /* name: pointer to the question */
        o += put16(out + o, qtype);
        o += put16(out + o, 1);
        o += put32(out + o, r->ttl);
        o += put16(out + o, qtype == 1 ? 4 : 16);
        memcpy(out + o, rdata, qtype == 1 ? 4 : 16);
        o += qtype == 1 ? 4 : 16;
    }
    pthread_mutex_unlock(&rs->mu);
    return o;
}

static int read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, 500) <= 0)
            return -1;
        n = read(fd, buf + got, len - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* DNS over TCP: 2-byte length prefix; serve queries until the client closes or idles. */
static void serve_tcp(struct responder *rs, int cfd)
{
    uint8_t q[514], out[602];

    for (;;) {
        size_t qlen, alen;
        if (read_full(cfd, q, 2) != 0)
            break;
        qlen = (size_t)q[0] << 8 | q[1];
        if (qlen == 0 || qlen > 512 || read_full(cfd, q, qlen) != 0)
            break;
        alen = answer(rs, q, qlen, out + 2, 0);
        if (!alen)
            break;
        put16(out, (unsigned)alen);
        if (write(cfd, out, alen + 2) != (ssize_t)(alen + 2))
            break;
    }
    close(cfd);
}

static void *responder_main(void *arg)
{
    struct responder *rs = arg;
    uint8_t q[512], out[600];

    for (;;) {
        struct pollfd pfd[2] = {{rs->fd, POLLIN, 0}, {rs->lfd, POLLIN, 0}};
        struct sockaddr_storage from;
        socklen_t flen = sizeof(from);
        ssize_t n;
        size_t alen;
        int stop;

        pthread_mutex_lock(&rs->mu);
        stop = rs->stop;
        pthread_mutex_unlock(&rs->mu);
        if (stop)
            break;
        if (rs->silent) {
            usleep(50000);
            continue;
        }
        if (poll(pfd, 2, 50) <= 0)
            continue;
        if (pfd[1].revents & POLLIN) {
            int cfd = accept4(rs->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0)
                serve_tcp(rs, cfd);
        }
        if (!(pfd[0].revents & POLLIN))
            continue;
        n = recvfrom(rs->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &flen);
        if (n <= 0)
            continue;
        alen = answer(rs, q, (size_t)n, out, 1);
        if (alen)
            sendto(rs->fd, out, alen, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

static void responder_start(struct responder *rs, int silent)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    int tries, one = 1;

    /* UDP on an ephemeral port, then TCP on the same port (retry if that one is taken). */
    for (tries = 0; tries < 20; tries++) {
        rs->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        T_OK(rs->fd >= 0);
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        T_EQ_INT(bind(rs->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        slen = sizeof(sin);
        T_EQ_INT(getsockname(rs->fd, (struct sockaddr *)&sin, &slen), 0);
        rs->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        T_OK(rs->lfd >= 0);
        setsockopt(rs->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(rs->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(rs->lfd, 8) == 0)
            break;
        close(rs->lfd);
        close(rs->fd);
    }
    T_OK(tries < 20);
    rs->port = ntohs(sin.sin_port);
    rs->silent = silent;
    pthread_mutex_init(&rs->mu, NULL);
    T_EQ_INT(pthread_create(&rs->thr, NULL, responder_main, rs), 0);
}

static void responder_stop(struct responder *rs)
{
    pthread_mutex_lock(&rs->mu);
    rs->stop = 1;
    pthread_mutex_unlock(&rs->mu);
    pthread_join(rs->thr, NULL);
    close(rs->fd);
    close(rs->lfd);
    pthread_mutex_destroy(&rs->mu);
}

static unsigned queries_for(struct responder *rs, const char *name)
{
    unsigned n = 0;
    size_t i;

    pthread_mutex_lock(&rs->mu);
    for (i = 0; i < rs->nrrs; i++)
        if (strcmp(rs->rrs[i].name, name) == 0)
            n = rs->queries[i];
    pthread_mutex_unlock(&rs->mu);
    return n;
}

static void set_a(struct responder *rs, const char *name, const char *a)
{
    size_t i;

    pthread_mutex_lock(&rs->mu);
    for (i = 0; i < rs->nrrs; i++)
        if (strcmp(rs->rrs[i].name, name) == 0)
            rs->rrs[i].a = a;
    pthread_mutex_unlock(&rs->mu);
}

/* Runs the loop until r has its answer, or fails after max_ms. */
static void wait_result(struct hd_loop *loop, struct result *r, unsigned max_ms)
{
    uint64_t end = hd_loop_update_now(loop) + max_ms;

    while (r->calls == 0 && hd_loop_update_now(loop) < end)
        T_OK(hd_loop_run_once(loop, 20) >= 0);
    T_EQ_INT(r->calls, 1);
}

static void run_for(struct hd_loop *loop, unsigned ms)
{
    uint64_t end = hd_loop_update_now(loop) + ms;

    while (hd_loop_update_now(loop) < end)
        T_OK(hd_loop_run_once(loop, 20) >= 0);
}

/* After hd_dns_free, orphaned polls complete (cancelled) and free themselves. */
static void drain(struct hd_loop *loop)
{
    int i;

    for (i = 0; i < 100 && hd_loop_pending(loop) > 0; i++)
        hd_loop_run_once(loop, 10);
    T_EQ_INT(hd_loop_pending(loop), 0);
}

static void resolve_async(struct hd_dns *dns, struct hd_loop *loop, const char *host,
                          uint16_t port, struct result *r)
{
    memset(r, 0, sizeof(*r));
    T_EQ_INT(hd_dns_resolve(dns, host, port, on_result, r), 0);
    if (r->calls == 0)
        wait_result(loop, r, 3000);
}

static void test_cares(struct hd_loop *loop)
{
    struct responder rs;
    struct hd_dns_opts o;
    struct hd_dns *dns, *dns2;
    struct result r, r2, r3;
    char servers[64];
    struct sockaddr_storage ss;
    uint64_t t0;

    memset(&rs, 0, sizeof(rs));
    rs.rrs[0] = (struct rr){"a.herald.test", 0, "93.184.216.34", NULL, 1, 0, NULL};
    rs.rrs[1] = (struct rr){"nx.herald.test", 3, NULL, NULL, 0, 0, NULL};
    rs.rrs[2] = (struct rr){"dual.herald.test", 0, "8.8.8.8", "2606:4700::1111", 300, 0, NULL};
    rs.rrs[3] = (struct rr){"rebind.herald.test", 0, "93.184.216.34", NULL, 1, 0, NULL};
    rs.rrs[4] = (struct rr){"long.herald.test", 0, "1.1.1.1", NULL, 100000, 0, NULL};
    rs.rrs[5] = (struct rr){"e1.herald.test", 0, "1.0.0.1", NULL, 300, 0, NULL};
    rs.rrs[6] = (struct rr){"e2.herald.test", 0, "1.0.0.2", NULL, 300, 0, NULL};
    rs.rrs[7] = (struct rr){"e3.herald.test", 0, "1.0.0.3", NULL, 300, 0, NULL};
    rs.rrs[8] = (struct rr){"tc.herald.test", 0, "93.184.216.35", NULL, 300, 1, NULL};
    rs.rrs[9] = (struct rr){"alias.herald.test", 0, NULL, NULL, 1, 0, "target.herald.test"};
    rs.rrs[10] = (struct rr){"target.herald.test", 0, "93.184.216.36", NULL, 300, 0, NULL};
    rs.nrrs = 11;
    responder_start(&rs, 0);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", rs.port);

    hd_dns_opts_default(&o);
    o.servers = servers;
    o.min_ttl_s = 0;
    o.max_ttl_s = 60;
    o.neg_ttl_s = 1;
    o.timeout_ms = 2000;
    o.max_entries = 5;
    T_EQ_INT(hd_dns_new(&dns, loop, &o), 0);

    /* A real answer through c-ares, port applied. */
    resolve_async(dns, loop, "a.herald.test", 443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_INT(r.n, 1);
    T_EQ_STR(r.addrs[0], "93.184.216.34:443");
    T_EQ_INT(queries_for(&rs, "a.herald.test"), 1);
    /* Cache hit: synchronous, no new query, any port. */
    resolve_sync(dns, "A.Herald.Test", 80, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_STR(r.addrs[0], "93.184.216.34:80");
    T_EQ_INT(queries_for(&rs, "a.herald.test"), 1);

    /* Both families: IPv4 first. */
    resolve_async(dns, loop, "dual.herald.test", 443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_INT(r.n, 2);
    T_EQ_STR(r.addrs[0], "8.8.8.8:443");
    T_EQ_STR(r.addrs[1], "[2606:4700::1111]:443");

    /* A truncated UDP answer: c-ares retries over TCP (a socket polled for writing while it
     * connects and sends, then for reading). */
    resolve_async(dns, loop, "tc.herald.test", 443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_STR(r.addrs[0], "93.184.216.35:443");
    pthread_mutex_lock(&rs.mu);
    T_OK(rs.tcp_queries >= 1);
    pthread_mutex_unlock(&rs.mu);

    /* /etc/hosts answers synchronously inside c-ares; the callback still runs once. */
    resolve_async(dns, loop, "localhost", 443, &r);
    if (r.err == 0)
        T_OK(strcmp(r.addrs[0], "127.0.0.1:443") == 0 || strcmp(r.addrs[0], "[::1]:443") == 0);

    /* NXDOMAIN, then negatively cached. */
    resolve_async(dns, loop, "nx.herald.test", 443, &r);
    T_EQ_INT(r.err, HD_ERR_DNS_NXDOMAIN);
    T_EQ_INT(r.n, 0);
    resolve_sync(dns, "nx.herald.test", 443, &r);
    T_EQ_INT(r.err, HD_ERR_DNS_NXDOMAIN);
    /* A name the server does not know at all is NXDOMAIN too. */
    resolve_async(dns, loop, "unknown.herald.test", 443, &r);
    T_EQ_INT(r.err, HD_ERR_DNS_NXDOMAIN);

    /* Concurrent lookups of one name share a query; the callbacks each run once. */
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    T_EQ_INT(hd_dns_resolve(dns, "rebind.herald.test", 443, on_result, &r), 0);
    T_EQ_INT(hd_dns_resolve(dns, "rebind.herald.test", 8443, on_result, &r2), 0);
    T_EQ_INT(r.calls + r2.calls, 0);
    wait_result(loop, &r, 3000);
    wait_result(loop, &r2, 100);
    T_EQ_INT(queries_for(&rs, "rebind.herald.test"), 1);
    T_EQ_STR(r.addrs[0], "93.184.216.34:443");
    T_EQ_STR(r2.addrs[0], "93.184.216.34:8443");
    /* DNS rebinding, at this layer: the dialled address is what the guard judges. The first
     * answer is public; after the TTL the same name answers loopback and is refused. */
    ss = r.ss[0];
    T_EQ_INT(hd_addr_check((struct sockaddr *)&ss, 0), 0);
    set_a(&rs, "rebind.herald.test", "127.0.0.1");

    /* A CNAME chain: the answer lives as long as its shortest TTL (the CNAME's 1 s). */
    resolve_async(dns, loop, "alias.herald.test", 443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_STR(r.addrs[0], "93.184.216.36:443");
    resolve_sync(dns, "alias.herald.test", 443, &r);
    T_EQ_INT(queries_for(&rs, "alias.herald.test"), 1);

    /* TTL expiry: a.herald.test (TTL 1), rebind (TTL 1) and nx (neg TTL 1). */
    t0 = hd_loop_update_now(loop);
    run_for(loop, 1100);
    T_OK(hd_loop_update_now(loop) - t0 >= 1000);
    resolve_async(dns, loop, "a.herald.test", 443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_INT(queries_for(&rs, "a.herald.test"), 2);
    resolve_async(dns, loop, "alias.herald.test", 443, &r);
    T_EQ_STR(r.addrs[0], "93.184.216.36:443");
    T_EQ_INT(queries_for(&rs, "alias.herald.test"), 2);
    resolve_async(dns, loop, "nx.herald.test", 443, &r);
    T_EQ_INT(r.err, HD_ERR_DNS_NXDOMAIN);
    resolve_async(dns, loop, "rebind.herald.test", 443, &r);
    T_EQ_INT(r.err, 0);
    T_EQ_STR(r.addrs[0], "127.0.0.1:443");
    ss = r.ss[0];
    T_EQ_INT(hd_addr_check((struct sockaddr *)&ss, 0), HD_ERR_PRIVATE_ADDR);
    T_EQ_INT(hd_addr_check((struct sockaddr *)&ss, 1), 0);

    /* TTL clamped to max_ttl (60 s): still cached now, proven by no second query. */
    resolve_async(dns, loop, "long.herald.test", 443, &r);
    resolve_sync(dns, "long.herald.test", 443, &r);
    T_EQ_INT(queries_for(&rs, "long.herald.test"), 1);

    /* Bounded cache (a second resolver, max 2 entries): the least recently used goes. */
    o.max_entries = 2;
    T_EQ_INT(hd_dns_new(&dns2, loop, &o), 0);
    resolve_async(dns2, loop, "e1.herald.test", 443, &r);
    resolve_async(dns2, loop, "e2.herald.test", 443, &r);
    resolve_sync(dns2, "e1.herald.test", 443, &r); /* e1 becomes most recent */
    resolve_async(dns2, loop, "e3.herald.test", 443, &r); /* evicts e2 */
    resolve_sync(dns2, "e1.herald.test", 443, &r);
    resolve_sync(dns2, "e3.herald.test", 443, &r);
    T_EQ_INT(queries_for(&rs, "e1.herald.test"), 1);
    resolve_async(dns2, loop, "e2.herald.test", 443, &r); /* asks again */
    T_EQ_INT(r.err, 0);
    T_EQ_INT(queries_for(&rs, "e2.herald.test"), 2);
    hd_dns_free(dns2);

    /* hd_dns_free completes pending lookups with HD_ERR_CANCELLED, exactly once. */
    memset(&r3, 0, sizeof(r3));
    T_EQ_INT(hd_dns_resolve(dns, "e3.herald.test.", 443, on_result, &r3), 0);
    memset(&r, 0, sizeof(r));
    T_EQ_INT(hd_dns_resolve(dns, "x.herald.test", 443, on_result, &r), 0);
    T_EQ_INT(r.calls, 0);
    hd_dns_free(dns);
    T_EQ_INT(r.calls, 1);
    T_EQ_INT(r.err, HD_ERR_CANCELLED);
    T_EQ_INT(r3.calls, 1);
    drain(loop);
    T_EQ_INT(r.calls, 1);
    responder_stop(&rs);
}

static void test_timeout(struct hd_loop *loop)
{
    struct responder rs;
    struct hd_dns_opts o;
    struct hd_dns *dns;
    struct result r;
    char servers[64];
    uint64_t t0, dt;

    memset(&rs, 0, sizeof(rs));
    responder_start(&rs, 1);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", rs.port);
    hd_dns_opts_default(&o);
    o.servers = servers;
    o.timeout_ms = 300;
    T_EQ_INT(hd_dns_new(&dns, loop, &o), 0);
    t0 = hd_loop_update_now(loop);
    resolve_async(dns, loop, "slow.herald.test", 443, &r);
    dt = hd_loop_update_now(loop) - t0;
    T_EQ_INT(r.err, HD_ERR_DNS);
    T_OK(dt >= 250 && dt < 1500);
    /* The failure is cached: the next call answers at once. */
    resolve_sync(dns, "slow.herald.test", 443, &r);
    T_EQ_INT(r.err, HD_ERR_DNS);
    /* c-ares may still be retrying the abandoned query: freeing now must reap it. */
    hd_dns_free(dns);
    drain(loop);
    responder_stop(&rs);

    /* A bad server list is refused. */
    o.servers = "not an address";
    T_EQ_INT(hd_dns_new(&dns, loop, &o), HD_ERR_INVALID);
}

int main(void)
{
    struct hd_loop *loop;
    int rv = hd_loop_new(&loop, 64);

    if (rv == -ENOSYS || rv == -EPERM)
        T_SKIP("no io_uring here (%d)", rv);
    T_EQ_INT(rv, 0);
    test_literals_overrides(loop);
    test_cares(loop);
    test_timeout(loop);
    hd_loop_free(loop);
    T_DONE();
}
