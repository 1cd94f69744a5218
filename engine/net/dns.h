/* Asynchronous name resolution on an hd_loop (c-ares sockets polled through io_uring),
 * with a cache that honours TTLs, and curl-style --resolve overrides. Never blocks. */
#ifndef HD_DNS_H
#define HD_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct hd_loop;
struct hd_dns;

struct hd_dns_opts {
    unsigned timeout_ms;  /* per lookup overall; default 5000 */
    unsigned min_ttl_s;   /* floor on cached TTLs; default 30 */
    unsigned max_ttl_s;   /* ceiling on cached TTLs; default 3600 */
    unsigned neg_ttl_s;   /* how long failures are cached; default 30 */
    size_t max_entries;   /* cache bound (LRU-ish eviction); default 65536 */
    const char *servers;  /* NULL: /etc/resolv.conf; else c-ares CSV "127.0.0.1:5353,[::1]:53"
                           * (tests, operators). Borrowed: read only in hd_dns_new. */
};

void hd_dns_opts_default(struct hd_dns_opts *opts);

/* Creates a resolver using the system configuration (/etc/resolv.conf). Returns 0, -ENOMEM,
 * HD_ERR_DNS if c-ares cannot initialise, or HD_ERR_INVALID if opts->servers is malformed.
 * opts NULL: defaults. */
int hd_dns_new(struct hd_dns **out, struct hd_loop *loop, const struct hd_dns_opts *opts);
/* Frees the resolver; pending callbacks run with HD_ERR_CANCELLED first. NULL ok. */
void hd_dns_free(struct hd_dns *dns);

/* Adds an override "HOST:PORT:ADDR[,ADDR...]" as curl's --resolve: HOST may be "*" (any
 * host) and ADDR may be a bracketed IPv6 literal. Overrides win over DNS and never expire.
 * Returns 0, HD_ERR_INVALID, HD_ERR_FULL (over 1024 overrides) or -ENOMEM. A later
 * override for the same HOST:PORT replaces the earlier one. */
int hd_dns_add_override(struct hd_dns *dns, const char *spec);

/* Checks an override spec as hd_dns_add_override reads it, without a resolver: for flags and
 * configuration read before anything starts. Returns 0, HD_ERR_INVALID or -ENOMEM. */
int hd_dns_override_check(const char *spec);

/* addrs: resolved addresses with the port set, in preference order. Valid during the call. */
typedef void (*hd_dns_cb)(int err, const struct sockaddr_storage *addrs, size_t naddrs,
                          void *user_data);

/* Resolves host for port. IP literals and overrides answer immediately. The callback runs
 * exactly once: possibly before hd_dns_resolve returns (cache hit, literal, override),
 * otherwise from inside hd_loop_run_once. err: 0, HD_ERR_DNS, HD_ERR_DNS_NXDOMAIN,
 * HD_ERR_CANCELLED. Returns 0 (callback will run / has run) or -ENOMEM (it will not). 
 * Order: override (exact host, then "*"), IP literal, cache, DNS. Answers list IPv4 first,
 * then families alternate (at most 16). The callback must not hd_dns_free(dns). Errors are
 * cached for neg_ttl_s (timeouts included). */
int hd_dns_resolve(struct hd_dns *dns, const char *host, uint16_t port, hd_dns_cb cb,
                   void *user_data);

#endif
