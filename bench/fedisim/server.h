/* Listeners and workers: accepting connections on each worker's loop, and starting, stopping
 * and finishing workers and the server (the state is in fedisim.h). */
#ifndef FS_SERVER_H
#define FS_SERVER_H

#include "fedisim.h"

/* Opens w's listener of kind on bind_addr:port (reuseport: SO_REUSEPORT, for N workers). */
int fs_worker_listen(struct fs_worker *w, enum fs_lkind kind, const char *bind_addr, int port,
                     int reuseport);
int fs_worker_start(struct fs_worker *w); /* queues the accepts */
/* Stops w's listeners and ends its connections: gracefully (answers already counted are
 * flushed, then each connection drains and closes) or, with force, at once. The caller keeps
 * running w's loop until fs_worker_idle() to let the completions drain. */
void fs_worker_stop(struct fs_worker *w, int force);
int fs_worker_idle(const struct fs_worker *w);
void fs_worker_fini(struct fs_worker *w); /* closes listeners, frees the verifier and loop */
/* Frees the TLS contexts, the profiles and the stats. */
void fs_server_fini(struct fs_server *srv);

#endif
