/* Asynchronous name resolution: c-ares driven by the io_uring loop, a TTL cache, overrides.
 *
 * Design choices (why):
 * - c-ares owns its sockets; we learn about them through its socket-state callback and poll
 *   each with one-shot hd_loop_poll ops, re-armed after every wake-up. One-shot polls keep
 *   the loop free of multishot bookkeeping and let the wanted mask change between arms.
 *   c-ares' own retransmission timeouts are driven by one hd_timer re-armed from
 *   ares_timeout() after every interaction with the channel, so nothing here ever sleeps
 *   or calls select().
 * - A watcher (one per c-ares socket) is heap-allocated and outlives the resolver when a
 *   poll is still in flight: the kernel holds a pointer to it until the CQE arrives, so on
 *   close we cancel the poll and let the completion free the orphan (STYLE.md §5).
 * - The per-lookup deadline (opts.timeout_ms) is ours, not c-ares': its retry schedule
 *   (timeout doubling per try and per server) makes its total time hard to bound, so each
 *   query has an hd_timer that answers the waiters with HD_ERR_DNS at the deadline. c-ares
 *   1.18 cannot cancel one query, so the query object stays alive (abandoned) until c-ares
 *   reports it; a late answer still fills the cache.
 * - Concurrent lookups of the same name share one c-ares query (waiter list): at start-up
 *   thousands of deliveries to one host must not become thousands of queries. Joiners share
 *   the first waiter's deadline.
 * - Answers are ordered IPv4 first, then alternating families. On a loopback-only or
 *   IPv4-only machine the first address is always dialable, and the transport still gets
 *   the other family to fail over to. c-ares' RFC 6724 sort is disabled (ARES_AI_NOSORT):
 *   it probes each address with connect() on a UDP socket, a syscall per address for an
 *   order we replace anyway.
 * - ARES_FLAG_NOSEARCH: inbox hosts are fully qualified names from the network; appending
 *   resolv.conf search suffixes would turn "intranet" into "intranet.corp.example" and aim
 *   a remote-controlled name at internal hosts.
 * - The cache stores compact addresses (family + 16 bytes) keyed by lower-cased name, with
 *   the port added on the way out, so one entry serves every port. TTL = the smallest TTL
 *   in the answer, clamped to [min_ttl, max_ttl]; failures are cached for neg_ttl
 *   (including timeouts: a dead authoritative server must not cost every delivery the full
 *   timeout). The size is bounded by max_entries with least-recently-used eviction.
 * - Overrides (curl --resolve) are checked before everything, even before IP literals, so a
 *   test harness can steer every destination, "*" included; exact host beats "*". They are
 *   bound to their port like curl's, and the address guard still judges what is dialled.
 * - Callbacks may run synchronously (literal, override, cache hit, invalid name). A
 *   callback must not call hd_dns_free on the resolver that invoked it.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "err.h"
#include "log.h"
#include "loop.h"

#define HD_DNS_MAX_ADDRS 16     /* addresses kept per name */
#define HD_DNS_NAME_MAX 254     /* 253 + optional trailing dot */
#define HD_DNS_MAX_OVERRIDES 1024
#define HD_DNS_QBUCKETS 256     /* in-flight query table */

struct caddr {
    int family;       /* AF_INET / AF_INET6 */
    uint8_t a[16];
};

struct cache_ent {
    struct cache_ent *hnext;
    struct cache_ent *lprev, *lnext; /* LRU: head is most recent */
    uint64_t expires_ms;
    int err;
    size_t naddrs;
    struct caddr *addrs;             /* points into the same allocation */
    char name[];
};

struct waiter {
    struct waiter *next;
    hd_dns_cb cb;
    void *user_data;
    uint16_t port;
};

struct query {
    struct query *hnext;
    struct hd_dns *dns;
    struct waiter *waiters, **wtail;
    struct hd_timer deadline;
    int abandoned;                   /* waiters already answered; awaiting c-ares */
    unsigned hash;
    char name[HD_DNS_NAME_MAX + 1];
};

struct watcher {
    struct hd_loop_op op;
    struct watcher *next;
    struct hd_dns *dns;              /* NULL once orphaned */
    int fd;
    unsigned want;                   /* mask c-ares wants */
    unsigned armed;                  /* mask of the poll in flight (0: none) */
    int inflight;
    int busy;                        /* inside ares_process_fd for this watcher */
};

struct override {
    struct override *next;
    char host[HD_DNS_NAME_MAX + 1];  /* lower-case, or "*" */
    uint16_t port;
    size_t naddrs;
    struct caddr addrs[HD_DNS_MAX_ADDRS];
};

struct hd_dns {
    struct hd_loop *loop;
    struct hd_dns_opts opts;
    ares_channel channel;
    struct hd_timer ares_timer;
    struct watcher *watchers;
    struct override *overrides;
    size_t noverrides;
    struct cache_ent **buckets;
    size_t nbuckets;                 /* power of two */
    struct cache_ent *lru_head, *lru_tail;
    size_t nentries;
    struct query *queries[HD_DNS_QBUCKETS];
    int closing;
};

void hd_dns_opts_default(struct hd_dns_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->timeout_ms = 5000;
    opts->min_ttl_s = 30;
    opts->max_ttl_s = 3600;
    opts->neg_ttl_s = 30;
    opts->max_entries = 65536;
    opts->servers = NULL;
}

/* ---- names ---- */

static unsigned hash_name(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Copies host lower-cased without a trailing dot; strips [] around IPv6. Returns the length,
 * or 0 if it does not fit or contains a byte no host name may contain. */
static size_t norm_host(const char *host, char *out, size_t cap)
{
    size_t n = strlen(host), i;

    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n > 0 && host[n - 1] == '.' && n > 1)
        n--;
    if (n == 0 || n >= cap)
        return 0;
    if (host[0] == '.' || memmem(host, n, "..", 2))
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == ':' || c == '*'))
            return 0;
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return n;
}

static int parse_literal(const char *s, struct caddr *ca)
{
    memset(ca, 0, sizeof(*ca));
    if (inet_pton(AF_INET, s, ca->a) == 1) {
        ca->family = AF_INET;
        return 1;
    }
    if (inet_pton(AF_INET6, s, ca->a) == 1) {
        ca->family = AF_INET6;
        return 1;
    }
    return 0;
}

static void deliver(hd_dns_cb cb, void *user_data, int err, const struct caddr *addrs, size_t n,
                    uint16_t port)
{
    struct sockaddr_storage ss[HD_DNS_MAX_ADDRS];
    size_t i;

    if (err || n == 0) {
        cb(err ? err : HD_ERR_DNS, NULL, 0, user_data);
        return;
    }
    if (n > HD_DNS_MAX_ADDRS)
        n = HD_DNS_MAX_ADDRS;
    /* All of it, not just n entries: gcc -O3 cannot see that the callback reads only n, and
     * warns that the rest may be used uninitialised. 2 KiB once per answer. */
    memset(ss, 0, sizeof(ss));
    for (i = 0; i < n; i++) {
        if (addrs[i].family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss[i];
            in->sin_family = AF_INET;
            in->sin_port = htons(port);
            memcpy(&in->sin_addr, addrs[i].a, 4);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss[i];
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(port);
            memcpy(&in6->sin6_addr, addrs[i].a, 16);
        }
    }
    cb(0, ss, n, user_data);
}

/* ---- cache ---- */

static void lru_unlink(struct hd_dns *dns, struct cache_ent *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        dns->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        dns->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push_front(struct hd_dns *dns, struct cache_ent *e)
{
    e->lprev = NULL;
    e->lnext = dns->lru_head;
    if (dns->lru_head)
        dns->lru_head->lprev = e;
    dns->lru_head = e;
    if (!dns->lru_tail)
        dns->lru_tail = e;
}

static void cache_remove(struct hd_dns *dns, struct cache_ent *e)
{
    struct cache_ent **pp = &dns->buckets[hash_name(e->name) & (dns->nbuckets - 1)];

    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(dns, e);
    dns->nentries--;
    free(e);
}

static struct cache_ent *cache_find(struct hd_dns *dns, const char *name, unsigned h)
{
    struct cache_ent *e = dns->buckets[h & (dns->nbuckets - 1)];

    while (e && strcmp(e->name, name) != 0)
        e = e->hnext;
    return e;
}

/* Returns a live entry (moved to the LRU front) or NULL; expired entries are dropped. */
static struct cache_ent *cache_get(struct hd_dns *dns, const char *name, unsigned h, uint64_t now)
{
    struct cache_ent *e = cache_find(dns, name, h);

    if (!e)
        return NULL;
    if (e->expires_ms <= now) {
        cache_remove(dns, e);
        return NULL;
    }
    lru_unlink(dns, e);
    lru_push_front(dns, e);
    return e;
}

/* Inserts or replaces; on allocation failure the cache simply does not learn. */
static void cache_put(struct hd_dns *dns, const char *name, unsigned h, int err,
                      const struct caddr *addrs, size_t n, uint64_t ttl_ms)
{
    size_t nlen = strlen(name);
    struct cache_ent *e, *old;

    if (dns->opts.max_entries == 0 || ttl_ms == 0)
        return;
    old = cache_find(dns, name, h);
    if (old)
        cache_remove(dns, old);
    while (dns->nentries >= dns->opts.max_entries && dns->lru_tail)
        cache_remove(dns, dns->lru_tail);
    e = malloc(sizeof(*e) + nlen + 1 + n * sizeof(struct caddr) + sizeof(struct caddr));
    if (!e)
        return;
    memcpy(e->name, name, nlen + 1);
    /* addrs after the name, aligned for struct caddr */
    e->addrs = (struct caddr *)(((uintptr_t)(e->name + nlen + 1) + _Alignof(struct caddr) - 1) &
                                ~(uintptr_t)(_Alignof(struct caddr) - 1));
    if (n)
        memcpy(e->addrs, addrs, n * sizeof(*addrs));
    e->naddrs = n;
    e->err = err;
    e->expires_ms = hd_loop_now_ms(dns->loop) + ttl_ms;
    e->hnext = dns->buckets[h & (dns->nbuckets - 1)];
    dns->buckets[h & (dns->nbuckets - 1)] = e;
    lru_push_front(dns, e);
    dns->nentries++;
}

/* ---- overrides ---- */

static int parse_addr_list(const char *s, struct override *o)
{
    char tok[INET6_ADDRSTRLEN + 2];

    o->naddrs = 0;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        const char *p = s;

        if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
            p++;
            len -= 2;
        }
        if (len == 0 || len >= sizeof(tok) || o->naddrs >= HD_DNS_MAX_ADDRS)
            return HD_ERR_INVALID;
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (!parse_literal(tok, &o->addrs[o->naddrs]))
            return HD_ERR_INVALID;
        o->naddrs++;
        if (!comma)
            break;
        s = comma + 1;
        if (*s == '\0')
            return HD_ERR_INVALID;
    }
    return o->naddrs ? 0 : HD_ERR_INVALID;
}

int hd_dns_add_override(struct hd_dns *dns, const char *spec)
{
    struct override tmp, *o, **pp;
    const char *p, *colon;
    char hostbuf[HD_DNS_NAME_MAX + 3];
    size_t hlen;
    unsigned long port;
    char *end;
    int rv;

    if (!dns || !spec)
        return HD_ERR_INVALID;
    memset(&tmp, 0, sizeof(tmp));
    p = spec;
    if (*p == '+')
        p++; /* curl's "add, do not time out" marker: ours never expire anyway */
    if (*p == '[') {
        colon = strchr(p, ']');
        if (!colon || colon[1] != ':')
            return HD_ERR_INVALID;
        colon++;
    } else {
        colon = strchr(p, ':');
    }
    if (!colon)
        return HD_ERR_INVALID;
    hlen = (size_t)(colon - p);
    if (hlen == 0 || hlen >= sizeof(hostbuf))
        return HD_ERR_INVALID;
    memcpy(hostbuf, p, hlen);
    hostbuf[hlen] = '\0';
    if (strcmp(hostbuf, "*") == 0)
        strcpy(tmp.host, "*");
    else if (norm_host(hostbuf, tmp.host, sizeof(tmp.host)) == 0 || strchr(tmp.host, '*'))
        return HD_ERR_INVALID;
    p = colon + 1;
    if (!isdigit((unsigned char)*p))
        return HD_ERR_INVALID;
    errno = 0;
    port = strtoul(p, &end, 10);
    if (errno || *end != ':' || port == 0 || port > 65535 || end - p > 5)
        return HD_ERR_INVALID;
    tmp.port = (uint16_t)port;
    rv = parse_addr_list(end + 1, &tmp);
    if (rv)
        return rv;
    /* A later override for the same HOST:PORT replaces the earlier one (curl does too). */
    for (pp = &dns->overrides; *pp; pp = &(*pp)->next) {
        if ((*pp)->port == tmp.port && strcmp((*pp)->host, tmp.host) == 0) {
            tmp.next = (*pp)->next;
            **pp = tmp;
            return 0;
        }
    }
    if (dns->noverrides >= HD_DNS_MAX_OVERRIDES)
        return HD_ERR_FULL;
    o = malloc(sizeof(*o));
    if (!o)
        return -ENOMEM;
    *o = tmp;
    o->next = NULL;
    *pp = o;
    dns->noverrides++;
    return 0;
}

int hd_dns_override_check(const char *spec)
{
    struct hd_dns *d = calloc(1, sizeof(*d)); /* only its override list is used */
    int rc;

    if (!d)
        return -ENOMEM;
    rc = hd_dns_add_override(d, spec);
    while (d->overrides) {
        struct override *o = d->overrides;
        d->overrides = o->next;
        free(o);
    }
    free(d);
    return rc;
}

static const struct override *find_override(const struct hd_dns *dns, const char *name,
                                            uint16_t port)
{
    const struct override *o, *wild = NULL;

    for (o = dns->overrides; o; o = o->next) {
        if (o->port != port)
            continue;
        if (strcmp(o->host, name) == 0)
            return o;
        if (!wild && strcmp(o->host, "*") == 0)
            wild = o;
    }
    return wild;
}

/* ---- c-ares plumbing ---- */

static void update_ares_timer(struct hd_dns *dns)
{
    struct timeval tv, *tvp;
    uint64_t ms;

    if (dns->closing)
        return;
    tvp = ares_timeout(dns->channel, NULL, &tv);
    if (!tvp) {
        hd_timer_disarm(dns->loop, &dns->ares_timer);
        return;
    }
    /* Round up: waking a millisecond early would just re-arm for the remainder. */
    ms = (uint64_t)tvp->tv_sec * 1000u + ((uint64_t)tvp->tv_usec + 999u) / 1000u;
    hd_timer_arm(dns->loop, &dns->ares_timer, hd_loop_update_now(dns->loop) + ms);
}

static void on_ares_timer(struct hd_timer *t)
{
    struct hd_dns *dns = container_of(t, struct hd_dns, ares_timer);

    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    update_ares_timer(dns);
}

static void arm_watcher(struct watcher *w)
{
    int rv;

    if (!w->dns || w->inflight || w->busy || w->want == 0)
        return;
    rv = hd_loop_poll(w->dns->loop, &w->op, w->fd, w->want);
    if (rv != 0) {
        /* Cannot poll: c-ares' timeouts will fail the queries on this socket. */
        HD_LOG(HD_LOG_WARN, "dns", "msg=\"cannot poll c-ares socket\" err=%d", rv);
        return;
    }
    w->inflight = 1;
    w->armed = w->want;
}

static void on_watcher_poll(struct hd_loop_op *op, int res)
{
    struct watcher *w = container_of(op, struct watcher, op);
    struct hd_dns *dns = w->dns;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

    w->inflight = 0;
    w->armed = 0;
    if (!dns) {
        free(w);
        return;
    }
    if (res == -ECANCELED) {
        /* We cancelled to change the mask. */
        arm_watcher(w);
        return;
    }
    if (res < 0) {
        HD_LOG(HD_LOG_WARN, "dns", "msg=\"poll on c-ares socket failed\" err=%d", res);
        return;
    }
    if (res & (POLLIN | POLLERR | POLLHUP))
        rfd = w->fd;
    if (res & POLLOUT)
        wfd = w->fd;
    w->busy = 1;
    ares_process_fd(dns->channel, rfd, wfd);
    w->busy = 0;
    update_ares_timer(dns);
    if (!w->dns) {
        free(w); /* c-ares closed this socket while processing it */
        return;
    }
    arm_watcher(w);
}

/* Detaches w from the resolver; frees it now or when its poll completes. */
static void orphan_watcher(struct hd_dns *dns, struct watcher *w)
{
    struct watcher **pp = &dns->watchers;

    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    w->dns = NULL;
    w->want = 0;
    if (w->inflight)
        hd_loop_cancel(dns->loop, &w->op);
    else if (!w->busy)
        free(w);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct hd_dns *dns = data;
    struct watcher *w;
    unsigned want = (readable ? POLLIN : 0) | (writable ? POLLOUT : 0);

    for (w = dns->watchers; w && w->fd != fd; w = w->next)
        ;
    if (want == 0) {
        if (w)
            orphan_watcher(dns, w);
        return;
    }
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w) {
            HD_LOG(HD_LOG_WARN, "dns", "msg=\"out of memory for c-ares socket\"");
            return;
        }
        w->op.cb = on_watcher_poll;
        w->dns = dns;
        w->fd = fd;
        w->next = dns->watchers;
        dns->watchers = w;
    }
    w->want = want;
    if (w->inflight && (want & ~w->armed))
        hd_loop_cancel(dns->loop, &w->op); /* re-armed with the new mask on completion */
    else
        arm_watcher(w);
}

/* ---- queries ---- */

static void query_unlink(struct hd_dns *dns, struct query *q)
{
    struct query **pp = &dns->queries[q->hash % HD_DNS_QBUCKETS];

    while (*pp && *pp != q)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = q->hnext;
    q->hnext = NULL;
}

static void answer_waiters(struct query *q, int err, const struct caddr *addrs, size_t n)
{
    struct waiter *wt = q->waiters;

    q->waiters = NULL;
    q->wtail = &q->waiters;
    while (wt) {
        struct waiter *next = wt->next;
        deliver(wt->cb, wt->user_data, err, addrs, n, wt->port);
        free(wt);
        wt = next;
    }
}

static int map_status(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
        return HD_ERR_DNS_NXDOMAIN;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return HD_ERR_CANCELLED;
    case ARES_ENOMEM:
        return -ENOMEM;
    default:
        return HD_ERR_DNS;
    }
}

static void add_unique(struct caddr *list, size_t *n, const struct caddr *ca)
{
    size_t i;

    for (i = 0; i < *n; i++)
        if (list[i].family == ca->family && memcmp(list[i].a, ca->a, 16) == 0)
            return;
    if (*n < HD_DNS_MAX_ADDRS)
        list[(*n)++] = *ca;
}

/* Flattens an answer: IPv4 first, then families alternate. Returns the smallest TTL. */
static int collect(const struct ares_addrinfo *ai, struct caddr *out, size_t *nout)
{
    struct caddr v4[HD_DNS_MAX_ADDRS], v6[HD_DNS_MAX_ADDRS], ca;
    size_t n4 = 0, n6 = 0, i4 = 0, i6 = 0, n = 0;
    const struct ares_addrinfo_node *nd;
    int ttl = -1;

    for (nd = ai ? ai->nodes : NULL; nd; nd = nd->ai_next) {
        memset(&ca, 0, sizeof(ca));
        if (nd->ai_family == AF_INET && nd->ai_addr) {
            ca.family = AF_INET;
            memcpy(ca.a, &((const struct sockaddr_in *)nd->ai_addr)->sin_addr, 4);
            add_unique(v4, &n4, &ca);
        } else if (nd->ai_family == AF_INET6 && nd->ai_addr) {
            ca.family = AF_INET6;
            memcpy(ca.a, &((const struct sockaddr_in6 *)nd->ai_addr)->sin6_addr, 16);
            add_unique(v6, &n6, &ca);
        } else {
            continue;
        }
        if (ttl < 0 || nd->ai_ttl < ttl)
            ttl = nd->ai_ttl;
    }
    /* A CNAME in the chain that expires sooner bounds the answer's lifetime too. */
    if (ttl >= 0) {
        const struct ares_addrinfo_cname *cn;
        for (cn = ai->cnames; cn; cn = cn->next)
            if (cn->ttl >= 0 && cn->ttl < ttl)
                ttl = cn->ttl;
    }
    while ((i4 < n4 || i6 < n6) && n < HD_DNS_MAX_ADDRS) {
        if (i4 < n4)
            out[n++] = v4[i4++];
        if (i6 < n6 && n < HD_DNS_MAX_ADDRS)
            out[n++] = v6[i6++];
    }
    *nout = n;
    return ttl < 0 ? 0 : ttl;
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    struct query *q = arg;
    struct hd_dns *dns = q->dns;
    struct caddr addrs[HD_DNS_MAX_ADDRS];
    size_t n = 0;
    int err = map_status(status);
    uint64_t ttl_s;

    if (err == 0) {
        ttl_s = (uint64_t)collect(res, addrs, &n);
        if (ttl_s < dns->opts.min_ttl_s)
            ttl_s = dns->opts.min_ttl_s;
        if (ttl_s > dns->opts.max_ttl_s)
            ttl_s = dns->opts.max_ttl_s;
        if (n == 0)
            err = HD_ERR_DNS_NXDOMAIN;
    } else {
        ttl_s = dns->opts.neg_ttl_s;
    }
    if (res)
        ares_freeaddrinfo(res);
    HD_LOG(HD_LOG_DEBUG, "dns", "msg=\"answer\" host=%s status=%d naddrs=%zu timeouts=%d",
           q->name, status, n, timeouts);
    if (err != HD_ERR_CANCELLED && err != -ENOMEM && !dns->closing) {
        hd_loop_update_now(dns->loop);
        cache_put(dns, q->name, q->hash, err, addrs, n, ttl_s * 1000u);
    }
    if (!q->abandoned) {
        query_unlink(dns, q);
        hd_timer_disarm(dns->loop, &q->deadline);
        answer_waiters(q, err, addrs, n);
    }
    free(q);
}

static void on_query_deadline(struct hd_timer *t)
{
    struct query *q = container_of(t, struct query, deadline);
    struct hd_dns *dns = q->dns;

    HD_LOG(HD_LOG_INFO, "dns", "msg=\"lookup timed out\" host=%s", q->name);
    q->abandoned = 1;
    query_unlink(dns, q);
    cache_put(dns, q->name, q->hash, HD_ERR_DNS, NULL, 0, (uint64_t)dns->opts.neg_ttl_s * 1000u);
    answer_waiters(q, HD_ERR_DNS, NULL, 0);
}

static int start_query(struct hd_dns *dns, const char *name, unsigned h, struct waiter *wt)
{
    struct ares_addrinfo_hints hints;
    struct query *q;

    for (q = dns->queries[h % HD_DNS_QBUCKETS]; q; q = q->hnext) {
        if (strcmp(q->name, name) == 0) {
            *q->wtail = wt;
            q->wtail = &wt->next;
            return 0;
        }
    }
    q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    q->dns = dns;
    q->hash = h;
    strcpy(q->name, name); /* name fits: norm_host bounded it */
    q->waiters = wt;
    q->wtail = &wt->next;
    hd_timer_init(&q->deadline, on_query_deadline);
    hd_timer_arm(dns->loop, &q->deadline, hd_loop_now_ms(dns->loop) + dns->opts.timeout_ms);
    q->hnext = dns->queries[h % HD_DNS_QBUCKETS];
    dns->queries[h % HD_DNS_QBUCKETS] = q;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    /* May call on_addrinfo (and free q) before returning: q is not touched afterwards. */
    ares_getaddrinfo(dns->channel, q->name, NULL, &hints, on_addrinfo, q);
    update_ares_timer(dns);
    return 0;
}

int hd_dns_resolve(struct hd_dns *dns, const char *host, uint16_t port, hd_dns_cb cb,
                   void *user_data)
{
    char name[HD_DNS_NAME_MAX + 1];
    const struct override *o;
    struct cache_ent *e;
    struct waiter *wt;
    struct caddr lit;
    unsigned h;
    int rv;

    if (dns->closing) {
        cb(HD_ERR_CANCELLED, NULL, 0, user_data);
        return 0;
    }
    if (!host || norm_host(host, name, sizeof(name)) == 0 || strchr(name, '*')) {
        cb(HD_ERR_DNS, NULL, 0, user_data);
        return 0;
    }
    o = find_override(dns, name, port);
    if (o) {
        deliver(cb, user_data, 0, o->addrs, o->naddrs, port);
        return 0;
    }
    if (parse_literal(name, &lit)) {
        deliver(cb, user_data, 0, &lit, 1, port);
        return 0;
    }
    if (strchr(name, ':')) {
        cb(HD_ERR_DNS, NULL, 0, user_data); /* not a literal, not a name */
        return 0;
    }
    h = hash_name(name);
    e = cache_get(dns, name, h, hd_loop_update_now(dns->loop));
    if (e) {
        deliver(cb, user_data, e->err, e->addrs, e->naddrs, port);
        return 0;
    }
    wt = calloc(1, sizeof(*wt));
    if (!wt)
        return -ENOMEM;
    wt->cb = cb;
    wt->user_data = user_data;
    wt->port = port;
    rv = start_query(dns, name, h, wt);
    if (rv) {
        free(wt);
        return rv;
    }
    return 0;
}

/* ---- lifecycle ---- */

int hd_dns_new(struct hd_dns **out, struct hd_loop *loop, const struct hd_dns_opts *opts)
{
    struct ares_options ao;
    struct hd_dns *dns;
    unsigned per_try;
    size_t nb;
    int rv;

    dns = calloc(1, sizeof(*dns));
    if (!dns)
        return -ENOMEM;
    dns->loop = loop;
    if (opts)
        dns->opts = *opts;
    else
        hd_dns_opts_default(&dns->opts);
    if (dns->opts.timeout_ms == 0)
        dns->opts.timeout_ms = 5000;
    if (dns->opts.max_ttl_s < dns->opts.min_ttl_s)
        dns->opts.max_ttl_s = dns->opts.min_ttl_s;
    /* Buckets: about one per two entries, bounded so a huge max_entries cannot eat memory. */
    for (nb = 16; nb < dns->opts.max_entries / 2 && nb < (1u << 16); nb *= 2)
        ;
    dns->nbuckets = nb;
    dns->buckets = calloc(nb, sizeof(*dns->buckets));
    if (!dns->buckets) {
        free(dns);
        return -ENOMEM;
    }
    hd_timer_init(&dns->ares_timer, on_ares_timer);

    memset(&ao, 0, sizeof(ao));
    /* Two tries per server within our deadline (first try t, retry 2t): t = deadline/3. */
    per_try = dns->opts.timeout_ms / 3;
    ao.timeout = (int)(per_try < 50 ? 50 : per_try);
    ao.tries = 2;
    ao.flags = ARES_FLAG_NOSEARCH;
    ao.sock_state_cb = on_sock_state;
    ao.sock_state_cb_data = dns;
    rv = ares_init_options(&dns->channel, &ao,
                           ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS |
                               ARES_OPT_SOCK_STATE_CB);
    if (rv != ARES_SUCCESS) {
        HD_LOG(HD_LOG_ERROR, "dns", "msg=\"c-ares init failed\" err=\"%s\"", ares_strerror(rv));
        free(dns->buckets);
        free(dns);
        return rv == ARES_ENOMEM ? -ENOMEM : HD_ERR_DNS;
    }
    if (dns->opts.servers && *dns->opts.servers) {
        rv = ares_set_servers_ports_csv(dns->channel, dns->opts.servers);
        if (rv != ARES_SUCCESS) {
            HD_LOG(HD_LOG_ERROR, "dns", "msg=\"bad DNS server list\" servers=\"%s\"",
                   dns->opts.servers);
            ares_destroy(dns->channel);
            free(dns->buckets);
            free(dns);
            return HD_ERR_INVALID;
        }
    }
    *out = dns;
    return 0;
}

void hd_dns_free(struct hd_dns *dns)
{
    struct override *o;
    size_t i;

    if (!dns)
        return;
    dns->closing = 1;
    /* Pending queries complete with ARES_EDESTRUCTION -> HD_ERR_CANCELLED (on_addrinfo),
     * abandoned ones are just freed; closing sockets orphans their watchers. */
    ares_destroy(dns->channel);
    while (dns->watchers)
        orphan_watcher(dns, dns->watchers);
    hd_timer_disarm(dns->loop, &dns->ares_timer);
    for (i = 0; i < HD_DNS_QBUCKETS; i++) {
        /* Defensive: c-ares reported every query above, so these lists are empty. */
        while (dns->queries[i]) {
            struct query *q = dns->queries[i];
            dns->queries[i] = q->hnext;
            hd_timer_disarm(dns->loop, &q->deadline);
            answer_waiters(q, HD_ERR_CANCELLED, NULL, 0);
            free(q);
        }
    }
    while (dns->lru_head)
        cache_remove(dns, dns->lru_head);
    while (dns->overrides) {
        o = dns->overrides;
        dns->overrides = o->next;
        free(o);
    }
    free(dns->buckets);
    free(dns);
}
