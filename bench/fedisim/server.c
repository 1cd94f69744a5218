/* Listeners and workers: each worker accepts on its own sockets and loop; the connections it
 * accepts speak HTTP/1.1 or HTTP/2 (h1.c, h2.c), handed down to conn.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "err.h"
#include "h1.h"
#include "h2.h"
#include "log.h"
#include "server.h"
#include "verify.h"

static const struct fs_protos protos = {&fs_h1_proto, &fs_h2_proto};

static void on_accept(struct hd_loop_op *op, int res);

static int arm_accept(struct fs_listener *l)
{
    int rv = hd_loop_accept(l->w->loop, &l->op, l->fd);
    if (rv == 0)
        l->accepting = 1;
    return rv;
}

static void on_accept_retry(struct hd_timer *t)
{
    struct fs_listener *l = container_of(t, struct fs_listener, retry);

    if (__atomic_load_n(&l->w->srv->stopping, __ATOMIC_ACQUIRE))
        return;
    if (arm_accept(l) < 0)
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"cannot queue accept\"");
}

static void on_accept(struct hd_loop_op *op, int res)
{
    struct fs_listener *l = container_of(op, struct fs_listener, op);

    l->accepting = 0;
    if (__atomic_load_n(&l->w->srv->stopping, __ATOMIC_ACQUIRE)) {
        if (res >= 0)
            close(res);
        return;
    }
    if (res >= 0) {
        l->accept_errors = 0;
        conn_accept(l->w, l->kind, res, &protos);
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS) {
        /* Out of descriptors or memory: the connection stays in the backlog, so accepting
         * again at once would spin. Wait 100 ms; log the first and every 100th. */
        if (l->accept_errors++ % 100 == 0)
            HD_LOG(HD_LOG_WARN, "fedisim",
                   "msg=\"accept failed, retrying in 100 ms\" err=%d n=%llu", res,
                   (unsigned long long)l->accept_errors);
        FS_COUNT(l->w->srv, l->w->srv->stats.accept_errors++);
        hd_timer_arm(l->w->loop, &l->retry, hd_loop_now_ms(l->w->loop) + 100);
        return;
    } else if (res != -EAGAIN && res != -EINTR && res != -ECONNABORTED) {
        HD_LOG(HD_LOG_WARN, "fedisim", "msg=\"accept failed\" err=%d", res);
    }
    if (arm_accept(l) < 0)
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"cannot queue accept\"");
}

int fs_worker_listen(struct fs_worker *w, enum fs_lkind kind, const char *bind_addr, int port,
                     int reuseport)
{
    struct fs_listener *l = &w->lst[kind];
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1, fam;

    memset(&ss, 0, sizeof(ss));
    if (strchr(bind_addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) != 1)
            return HD_ERR_INVALID;
        sl = sizeof(*s6);
        fam = AF_INET6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) != 1)
            return HD_ERR_INVALID;
        sl = sizeof(*s4);
        fam = AF_INET;
    }
    fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Only with several workers: each binds the same port and the kernel balances accepts. */
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    l->w = w;
    l->kind = kind;
    l->fd = fd;
    l->port = ntohs(fam == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                   : ((struct sockaddr_in6 *)&ss)->sin6_port);
    l->op.cb = on_accept;
    hd_timer_init(&l->retry, on_accept_retry);
    return 0;
}

int fs_worker_start(struct fs_worker *w)
{
    for (int k = 0; k < FS_L_COUNT; k++) {
        if (w->lst[k].fd < 0)
            continue;
        int rv = arm_accept(&w->lst[k]);
        if (rv < 0)
            return rv;
    }
    return 0;
}

void fs_worker_stop(struct fs_worker *w, int force)
{
    struct fs_conn *c, *next;

    for (int k = 0; k < FS_L_COUNT; k++) {
        struct fs_listener *l = &w->lst[k];
        if (l->fd < 0)
            continue;
        hd_timer_disarm(w->loop, &l->retry);
        if (l->accepting)
            hd_loop_cancel(w->loop, &l->op);
        shutdown(l->fd, SHUT_RDWR);
    }
    /* First pass: stop answering but send what is already counted; the drain then closes
     * each connection. Forced pass: close whatever is left. */
    for (c = w->conns; c; c = next) {
        next = c->next;
        if (force) {
            conn_close(c);
        } else {
            conn_abort(c);
            conn_flush(c);
        }
        conn_check(c);
    }
}

int fs_worker_idle(const struct fs_worker *w)
{
    for (int k = 0; k < FS_L_COUNT; k++)
        if (w->lst[k].fd >= 0 && w->lst[k].accepting)
            return 0;
    return w->conns == NULL;
}

void fs_worker_fini(struct fs_worker *w)
{
    for (int k = 0; k < FS_L_COUNT; k++) {
        if (w->lst[k].fd >= 0)
            close(w->lst[k].fd);
        w->lst[k].fd = -1;
    }
    fs_verifier_free(w->verifier);
    w->verifier = NULL;
    hd_loop_free(w->loop);
    w->loop = NULL;
}

void fs_server_fini(struct fs_server *srv)
{
    fs_server_tls_fini(srv);
    fs_profiles_fini(&srv->profiles);
    fs_stats_fini(&srv->stats);
}
