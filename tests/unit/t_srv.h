/* Shared by the unit tests that deliver to a receiver of their own: a plain HTTP server on
 * 127.0.0.1, on a port the kernel picks. Its thread accepts connections one after another and
 * hands each to the test's take(), which owns the descriptor (and closes it). Include after
 * t.h. */
#ifndef HD_T_SRV_H
#define HD_T_SRV_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

struct t_srv {
    int fd;
    uint16_t port;
    _Atomic int stop;
    pthread_t thread;
    void (*take)(int c);
};

static void *t_srv_main(void *arg)
{
    struct t_srv *s = arg;

    while (!atomic_load(&s->stop)) {
        struct pollfd pf = {s->fd, POLLIN, 0};
        int c;
        if (poll(&pf, 1, 50) <= 0)
            continue;
        c = accept(s->fd, NULL, NULL);
        if (c >= 0)
            s->take(c);
    }
    return NULL;
}

/* What every test that runs deliveries needs first: skips the test when HD_TEST_DATA is not
 * set or this kernel has no io_uring, and returns the test RSA-2048 key's PEM (*len bytes). */
static inline char *t_srv_prelude(size_t *len)
{
    const char *data = getenv("HD_TEST_DATA");
    struct hd_loop *probe;
    char path[1024], *pem;

    if (!data)
        T_SKIP("HD_TEST_DATA not set");
    if (hd_loop_new(&probe, 8) != 0)
        T_SKIP("io_uring not available");
    hd_loop_free(probe);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, len);
    T_OK(pem != NULL);
    return pem;
}

/* Listens on 127.0.0.1 (s->port set) and starts the accepting thread. */
static inline void t_srv_start(struct t_srv *s, void (*take)(int c))
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    s->take = take;
    atomic_init(&s->stop, 0);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    T_OK(s->fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    T_EQ_INT(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    T_EQ_INT(listen(s->fd, 64), 0);
    T_EQ_INT(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    T_EQ_INT(pthread_create(&s->thread, NULL, t_srv_main, s), 0);
}

/* Reads one HTTP/1.1 request from c into buf (cap bytes, NUL-terminated): its head and as
 * much of its body as Content-Length says and buf holds. Returns the bytes read, with *end at
 * the head's closing CRLFCRLF, or 0 when the peer closed first or spoke h2c prior knowledge
 * ("PRI": refused, so that the client falls back to HTTP/1.1). */
static inline size_t t_srv_read_request(int c, char *buf, size_t cap, char **end)
{
    size_t n = 0, need;
    long clen = 0;
    ssize_t r;
    char *p;

    while (!(*end = memmem(buf, n, "\r\n\r\n", 4))) {
        if (n >= cap - 1 || (r = read(c, buf + n, cap - 1 - n)) <= 0)
            return 0;
        n += (size_t)r;
        if (n >= 3 && memcmp(buf, "PRI", 3) == 0)
            return 0;
    }
    buf[n] = 0;
    p = strcasestr(buf, "\r\ncontent-length:");
    if (p)
        clen = strtol(p + 17, NULL, 10);
    need = (size_t)(*end + 4 - buf) + (size_t)clen;
    while (n < need && n < cap - 1 && (r = read(c, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    return n;
}

/* Stops the accepting thread (within 50 ms) and closes the listener. */
static inline void t_srv_stop(struct t_srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

#endif
