/* Request decisions (profile, rate limit, verification, JSON) and their counting.
 * Protocol-free: h1.c and h2.c hand in a complete struct fs_req and write out the answer. */
#ifndef FS_HANDLE_H
#define FS_HANDLE_H

#include <stdint.h>

#include "req.h"

struct fs_host;
struct fs_server;
struct fs_worker;

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
    char *pair_text; /* "activity_id inbox" for --accept-log (malloc'd), or NULL */
    struct fs_host *host;
    int badsig;
    unsigned control : 1, rate_limited : 1;
};

/* Decides the answer to a complete request (takes srv->lock for the shared parts). */
void fs_handle(struct fs_worker *w, struct fs_req *r, struct fs_resp *out);
/* Counts an answer as it is written (takes srv->lock). */
void fs_commit(struct fs_server *srv, struct fs_resp *resp, enum fs_proto proto);
void fs_resp_fini(struct fs_resp *resp);

#endif
