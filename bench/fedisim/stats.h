/* Counting: the (activity id, inbox) pair set, the host table with its rate-limit buckets,
 * the counters and the JSON report. The server keeps one, shared by its workers under
 * fs_server.lock (fedisim.h). */
#ifndef FS_STATS_H
#define FS_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "verify.h"

struct fs_profile;
struct fs_profiles;

/* A set of 128-bit pair hashes, open addressing, linear probing. The low bit of b marks a
 * pair that was accepted more than once. */
struct fs_pairset {
    uint64_t *slots; /* 2 words per slot; (0,0) is empty */
    size_t nslots;   /* power of two */
    size_t count;
    size_t max_slots;
    uint64_t dup_pairs;
    uint64_t overflow; /* inserts refused because the table hit max_slots */
};

int fs_pairset_init(struct fs_pairset *s, size_t max_slots);
void fs_pairset_fini(struct fs_pairset *s);
/* Returns 1 if new, 0 if already present (marked duplicate), -ENOMEM / HD_ERR_FULL. */
int fs_pairset_add(struct fs_pairset *s, uint64_t a, uint64_t b);
/* Returns 1 if present. */
int fs_pairset_has(const struct fs_pairset *s, uint64_t a, uint64_t b);

/* 128-bit hash of (activity id, inbox). */
void fs_pair_hash(const char *id, size_t idlen, const char *inbox, size_t inlen, uint64_t *a,
                  uint64_t *b);

struct fs_tokens {
    double tokens;
    uint64_t last_ms;
};

struct fs_host {
    char *name; /* lower-case, without port */
    const struct fs_profile *prof;
    struct fs_tokens bucket;
    uint64_t requests, accepted, s4xx, s5xx, bad_signature, rate_limited;
    uint64_t first_ms, last_ms; /* wall ms of the first and the latest request */
};

/* Host table: name -> fs_host, open addressing, capped at max hosts (then "_other"). */
struct fs_hosts {
    struct fs_host **slots;
    size_t nslots, count, max;
    struct fs_host other;
};

struct fs_stats {
    uint64_t requests, accepted, bad_signature, bad_json, too_large, rate_limited;
    uint64_t hangs, resets, closes, goaways;
    uint64_t malformed; /* HTTP/1.1 requests refused before they were complete (400/431/413/505) */
    uint64_t by_status[600];
    uint64_t h2, h1;
    uint64_t bytes_in, bytes_out, body_bytes;
    uint64_t conns, conns_refused, conns_hung, conns_over_limit, tls_failures, h1_preface_rejects;
    uint64_t accept_errors; /* accepts failed for lack of descriptors or memory */
    uint64_t tls_full, tls_resumed; /* completed TLS handshakes: full, and resumed a session */
    uint64_t badsig_reason[FS_BAD_LAST];
    uint64_t verified, unverified, verified_cavage, verified_rfc9421;
    uint64_t duplicates; /* accepts of an already-accepted pair */
    struct fs_pairset pairs;
    struct fs_hosts hosts;
    struct fs_pairset *expect; /* --expect pairs, or NULL */
    uint64_t expect_count;
    uint64_t unexpected;    /* accepts of pairs not in --expect */
    uint64_t expected_seen; /* distinct --expect pairs accepted (so missing is O(1)) */
    time_t started;
    uint64_t first_request_ms, last_request_ms, first_accept_ms, last_accept_ms; /* unix ms */
};

int fs_stats_init(struct fs_stats *st, size_t max_pair_slots, size_t max_hosts);
void fs_stats_fini(struct fs_stats *st);
/* Finds or creates the host entry for name (lower-case, without port). Never NULL: beyond
 * the cap, returns the shared "_other" entry. */
struct fs_host *fs_stats_host(struct fs_stats *st, const struct fs_profiles *profs,
                              const char *name, size_t len);
/* Builds the report object (caller decrefs). top: how many hosts go into per_host. */
json_t *fs_stats_report(const struct fs_stats *st, size_t top);
/* Loads --expect FILE (JSON lines {"id":..., "inbox":...}). */
int fs_stats_load_expect(struct fs_stats *st, const char *path);
/* Clears every counter and the pair set (POST /_fedisim/reset). */
void fs_stats_reset(struct fs_stats *st);

#endif
