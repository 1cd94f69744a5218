/* fedisim: a simulated Fediverse receiver for Herald's integration tests and benchmarks.
 *
 * One process, one thread, one hd_loop (io_uring). Listeners speak TLS (ALPN h2 and
 * http/1.1, or http/1.1 only), h2c prior knowledge (with HTTP/1.1 fallback) and plain
 * HTTP/1.1. Every request is classified by host profile (latency, errors, rate limits,
 * dead hosts), optionally verified (Digest, Date, draft-cavage Signature with OpenSSL),
 * and counted: (activity id, inbox) pairs answered 2xx, duplicates, statuses, protocols.
 *
 * Names in bench/ use the prefix fs_ (fedisim) rather than hd_: this is a separate binary
 * that links hd_core, and the prefix keeps its symbols apart from the engine's.
 */
#ifndef FS_FEDISIM_H
#define FS_FEDISIM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "loop.h"

#define FS_MAX_BODY (1024u * 1024u)       /* request bodies above this get 413 */
#define FS_MAX_HEADER_BYTES (16u * 1024u) /* request header block above this gets 431 */
#define FS_MAX_HEADERS 64                 /* header fields kept per request */
#define FS_MAX_CONNS_DEFAULT 16384

/* ---- profiles (profile.c) ---- */

enum fs_lat { FS_LAT_NONE = 0, FS_LAT_FIXED, FS_LAT_UNIFORM, FS_LAT_LOGNORMAL };
enum fs_dead { FS_DEAD_NO = 0, FS_DEAD_REFUSE, FS_DEAD_HANG };

#define FS_PROFILE_MAX_ERRS 16

struct fs_profile {
    char *pattern; /* "host", "*.suffix" or "*" */
    enum fs_lat lat;
    double lat_a, lat_b; /* fixed: a; uniform: a..b; lognormal: median a, p99 b (ms) */
    int status;          /* success status, default 202 */
    struct {
        int status;
        double frac;
    } errs[FS_PROFILE_MAX_ERRS];
    int nerrs;
    int retry_after;      /* seconds for 429/503 Retry-After; default 1 */
    int retry_after_date; /* nonzero: send Retry-After as an HTTP-date */
    double rate;          /* requests/s per host before 429 (0: unlimited) */
    double burst;         /* token bucket depth (default: rate, at least 1) */
    enum fs_dead dead;
    double hang;           /* fraction of requests never answered */
    double reset;          /* fraction reset mid-request (h2: RST_STREAM, h1: close) */
    double close;          /* fraction answered by closing the connection (both protocols) */
    unsigned goaway_after; /* h2: GOAWAY after this many streams on a connection (0: never);
                            * h1: Connection: close after this many requests */
    int verify;            /* -1: follow --verify; 0: never; 1: always */
    unsigned schemes;      /* FS_SIG_* accepted when verifying; default FS_SIG_ANY */
    char accept_signature[160]; /* sent as Accept-Signature with 401s (RFC 9421 sec. 5.1) */
};

struct fs_profiles {
    struct fs_profile *v;
    size_t n;
    struct fs_profile dflt; /* "*" when not given: answer 202 at once */
};

/* Loads an INI profile file (see bench/README.md). Returns 0, -errno or HD_ERR_INVALID
 * (message already logged). */
int fs_profiles_load(struct fs_profiles *p, const char *path);
void fs_profiles_init(struct fs_profiles *p);
void fs_profiles_fini(struct fs_profiles *p);
/* Most specific profile for host (lower-case, without port): an exact name, else the
 * matching pattern with the most literal characters ("*.suffix" matches any depth of
 * subdomain; other globs use fnmatch), else "*". Never NULL. */
const struct fs_profile *fs_profiles_match(const struct fs_profiles *p, const char *host);

/* ---- small deterministic RNG (xoshiro-style), one per server ---- */
struct fs_rng {
    uint64_t s[2];
};
void fs_rng_seed(struct fs_rng *r, uint64_t seed);
double fs_rng_unit(struct fs_rng *r); /* [0, 1) */
/* Samples a latency in ms from the profile's distribution. */
unsigned fs_profile_latency(const struct fs_profile *p, struct fs_rng *r);

/* ---- counting (stats.c) ---- */

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
};

/* Host table: name -> fs_host, open addressing, capped at max hosts (then "_other"). */
struct fs_hosts {
    struct fs_host **slots;
    size_t nslots, count, max;
    struct fs_host other;
};

enum fs_badsig {
    FS_BAD_NONE = 0,
    FS_BAD_CONTENT_TYPE,
    FS_BAD_DATE,
    FS_BAD_DIGEST,
    FS_BAD_NO_SIGNATURE,
    FS_BAD_SIG_HEADER,
    FS_BAD_HEADERS_LIST,
    FS_BAD_UNKNOWN_KEY,
    FS_BAD_ALGORITHM,
    FS_BAD_SIGNATURE,
    FS_BAD_SCHEME, /* a signature scheme the host's profile does not accept */
    FS_BAD_LAST
};

enum fs_sig_scheme { FS_SIG_CAVAGE = 1, FS_SIG_RFC9421 = 2, FS_SIG_ANY = 3 };

struct fs_stats {
    uint64_t requests, accepted, bad_signature, bad_json, too_large, rate_limited;
    uint64_t hangs, resets, closes, goaways;
    uint64_t malformed; /* HTTP/1.1 requests refused before they were complete (400/431/413/505) */
    uint64_t by_status[600];
    uint64_t h2, h1;
    uint64_t bytes_in, bytes_out, body_bytes;
    uint64_t conns, conns_refused, conns_hung, conns_over_limit, tls_failures, h1_preface_rejects;
    uint64_t accept_errors; /* accepts failed for lack of descriptors or memory */
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

/* ---- requests ---- */

enum fs_proto { FS_PROTO_H1 = 1, FS_PROTO_H2 = 2 };

struct fs_hdr {
    uint32_t name, name_len, value, value_len; /* offsets into fs_req.mem */
};

struct fs_req {
    char *mem; /* header names/values, NUL-terminated each, capped at FS_MAX_HEADER_BYTES */
    size_t mem_len, mem_cap;
    struct fs_hdr h[FS_MAX_HEADERS];
    int nh;
    int method, path, authority; /* header index of pseudo fields (or -1) */
    uint8_t *body;
    size_t body_len, body_cap;
    unsigned headers_too_large : 1, body_too_large : 1, tls : 1;
    enum fs_proto proto;
};

void fs_req_init(struct fs_req *r);
void fs_req_fini(struct fs_req *r);
void fs_req_clear(struct fs_req *r); /* keeps allocations */
/* Adds a header (name lower-cased here). Pseudo names ":method", ":path", ":authority" are
 * remembered. Returns 0, or HD_ERR_TOO_LARGE (headers_too_large set). */
int fs_req_add(struct fs_req *r, const char *name, size_t nlen, const char *value, size_t vlen);
int fs_req_body(struct fs_req *r, const uint8_t *data, size_t len);
/* Value of the first header named name (lower-case), or NULL. */
const char *fs_req_get(const struct fs_req *r, const char *name);
const char *fs_req_field(const struct fs_req *r, int idx); /* value at index or "" */

/* ---- responses ---- */

enum fs_action { FS_ACT_RESPOND = 0, FS_ACT_HANG, FS_ACT_RESET, FS_ACT_CLOSE };

struct fs_resp {
    enum fs_action act;
    int status;
    unsigned delay_ms;
    char retry_after[40];
    const char *accept_signature; /* profile-owned, or NULL */
    const char *ctype;
    char *body; /* malloc'd or NULL */
    size_t body_len;
    /* Counting, done when the answer is actually written (fs_commit). */
    int have_pair;
    uint64_t pa, pb;
    struct fs_host *host;
    int badsig;
    unsigned control : 1, rate_limited : 1;
};

/* ---- verification (verify.c) ---- */
struct fs_verifier;
int fs_verifier_new(struct fs_verifier **out, const char *keys_path);
void fs_verifier_free(struct fs_verifier *v);
size_t fs_verifier_nkeys(const struct fs_verifier *v);
/* Checks the content type, then, when r has a Signature-Input header, RFC 9421 (freshness by
 * created/expires or Date, Content-Digest, Signature), else draft-cavage (Date, Digest,
 * Signature). schemes: the FS_SIG_* bits the host accepts (else FS_BAD_SCHEME). Writes the
 * scheme the request used to *used. Returns FS_BAD_NONE or the first failed check.
 * now: wall clock. */
enum fs_badsig fs_verify(struct fs_verifier *v, const struct fs_req *r, time_t now,
                         unsigned schemes, enum fs_sig_scheme *used);
const char *fs_badsig_name(enum fs_badsig b);

/* ---- the server (conn.c, handle.c, main.c) ----
 *
 * Threads: --threads N workers, each with its own io_uring loop, its own listening sockets
 * (SO_REUSEPORT on the same ports when N > 1, so the kernel spreads connections), its own
 * connections, RNG and verifier. Shared between them, under fs_server.lock: the stats (pair
 * set, host table with rate-limit buckets, counters). Read-only after start: profiles, TLS
 * contexts, options. The main thread only handles signals and writes reports. */

enum fs_lkind { FS_L_TLS = 0, FS_L_TLS_H1, FS_L_H2C, FS_L_H1, FS_L_COUNT };

struct fs_server;
struct fs_worker;
struct fs_conn;

struct fs_listener {
    struct fs_worker *w;
    enum fs_lkind kind;
    int fd;
    int port;
    struct hd_loop_op op;
    int accepting;
    struct hd_timer retry;  /* re-arms the accept after EMFILE / ENFILE / ENOMEM */
    uint64_t accept_errors; /* consecutive failed accepts, for the log */
};

enum fs_verify_mode { FS_VERIFY_NONE = 0, FS_VERIFY_ALL, FS_VERIFY_SAMPLE };

struct fs_worker {
    struct fs_server *srv;
    struct hd_loop *loop;
    struct fs_listener lst[FS_L_COUNT];
    struct fs_verifier *verifier; /* own copy: cached OpenSSL contexts are not shared */
    uint64_t verify_counter;
    struct fs_rng rng;
    struct fs_conn *conns; /* doubly linked list of live connections */
    size_t nconns, max_conns;
    int idx;
};

struct fs_server {
    void *tls_ctx;    /* WOLFSSL_CTX offering h2 + http/1.1 */
    void *tls_h1_ctx; /* WOLFSSL_CTX offering http/1.1 only */
    int tls_inited;   /* wolfSSL_Init done: fs_server_fini calls wolfSSL_Cleanup */
    void **leaf_ctx;  /* --leaf-certs: WOLFSSL_CTX per leaf certificate, picked by SNI */
    unsigned nleaf;
    struct fs_profiles profiles;
    enum fs_verify_mode verify_mode;
    unsigned verify_sample; /* verify 1 in N */
    pthread_mutex_t lock;   /* guards stats */
    struct fs_stats stats;
    struct fs_worker *workers;
    int nworkers;
    unsigned idle_timeout_ms;
    int quiet;
    int stopping; /* set by the main thread (__atomic), polled by workers every loop turn */
};

#define FS_LOCK(srv) pthread_mutex_lock(&(srv)->lock)
#define FS_UNLOCK(srv) pthread_mutex_unlock(&(srv)->lock)
/* Runs one statement on the shared stats under the lock. */
#define FS_COUNT(srv, stmt)                                                                        \
    do {                                                                                           \
        FS_LOCK(srv);                                                                              \
        stmt;                                                                                      \
        FS_UNLOCK(srv);                                                                            \
    } while (0)

/* Opens w's listener of kind on bind_addr:port (reuseport: SO_REUSEPORT, for N workers). */
int fs_worker_listen(struct fs_worker *w, enum fs_lkind kind, const char *bind_addr, int port,
                     int reuseport);
/* ciphers: a wolfSSL cipher list, or NULL for the default (ChaCha20 first). */
int fs_server_tls_init(struct fs_server *srv, const char *cert, const char *key,
                       const char *ciphers);
/* --leaf-certs DIR: loads DIR/N.pem + DIR/N.key for N = 0.. up to the first missing N.pem
 * (at most FS_LEAF_MAX), one context each. After fs_server_tls_init. */
#define FS_LEAF_MAX 4096u
int fs_server_leaf_init(struct fs_server *srv, const char *dir, const char *ciphers);
/* Which leaf serves host (lower-cased or not): FNV-1a 64 of the lower-cased name mod nleaf. */
unsigned fs_leaf_index(const char *host, unsigned nleaf);
int fs_worker_start(struct fs_worker *w); /* queues the accepts */
/* Stops w's listeners and ends its connections: gracefully (answers already counted are
 * flushed, then each connection drains and closes) or, with force, at once. The caller keeps
 * running w's loop until fs_worker_idle() to let the completions drain. */
void fs_worker_stop(struct fs_worker *w, int force);
int fs_worker_idle(const struct fs_worker *w);
void fs_worker_fini(struct fs_worker *w); /* closes listeners, frees the verifier and loop */
void fs_server_fini(struct fs_server *srv);
/* Frees the calling thread's wolfSSL caches; each worker calls it as it ends. */
void fs_tls_thread_exit(void);

/* Decides the answer to a complete request (takes srv->lock for the shared parts). */
void fs_handle(struct fs_worker *w, struct fs_req *r, struct fs_resp *out);
/* Counts an answer as it is written (takes srv->lock). */
void fs_commit(struct fs_server *srv, struct fs_resp *resp, enum fs_proto proto);
void fs_resp_fini(struct fs_resp *resp);
/* Validates body as JSON (RFC 8259) and copies the top-level object's "id" string, decoded,
 * into out (NUL-terminated, length in *outlen). Returns 0, or -1 if the body is not a JSON
 * object with a string "id" or the id does not fit in cap. (json_id.c) */
int fs_json_activity_id(const uint8_t *body, size_t len, char *out, size_t cap, size_t *outlen);
/* Splits "host:port" / "[v6]:port" into the lower-cased host in out. Returns its length. */
size_t fs_host_from_authority(const char *auth, char *out, size_t cap);

#endif
