/* fedisim: a simulated Fediverse receiver for Herald's integration tests and benchmarks.
 *
 * One process, one or more worker threads, each with its own hd_loop (io_uring). Listeners
 * speak TLS (ALPN h2 and http/1.1, or http/1.1 only), h2c prior knowledge (with HTTP/1.1
 * fallback) and plain HTTP/1.1. Every request is classified by host profile (latency,
 * errors, rate limits, dead hosts), optionally verified (draft-cavage or RFC 9421
 * signatures, with OpenSSL), and counted: (activity id, inbox) pairs answered 2xx,
 * duplicates, statuses, protocols.
 *
 * Names in bench/ use the prefix fs_ (fedisim) rather than hd_: this is a separate binary
 * that links hd_core, and the prefix keeps its symbols apart from the engine's.
 *
 * This header holds the state the modules share: the server, its workers and their
 * listeners, and the lock around the shared counters. Types and macros only: each module
 * declares its functions in its own header (conn.h, h1.h, h2.h, handle.h, server.h, ...).
 */
#ifndef FS_FEDISIM_H
#define FS_FEDISIM_H

#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "profile.h"
#include "stats.h"

#define FS_MAX_CONNS_DEFAULT 16384

/* Threads: --threads N workers, each with its own io_uring loop, its own listening sockets
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
    /* --ticket-key-file: the session-ticket key name (16 bytes) and ChaCha20-Poly1305 key
     * (32 bytes) every context seals tickets with, so that tickets outlive a restart. */
    unsigned char ticket_key[48];
    int ticket_key_set;
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
    /* --accept-log: one line "unix_ms activity_id inbox" per first 2xx of a pair (guarded by
     * lock; emptied by POST /_fedisim/reset), or NULL. */
    FILE *accept_log;
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

#endif
