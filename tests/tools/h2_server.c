/* h2_server: a small h2c (prior knowledge) test server on nghttp2 with switches that nghttpd
 * lacks: a low SETTINGS_MAX_CONCURRENT_STREAMS, GOAWAY after N requests per connection,
 * REFUSED_STREAM for some streams, and never answering. Thread per connection, blocking
 * I/O (a test tool, not engine code).
 *
 *   h2_server [--port-file F] [--stats-file F] [--max-concurrent N] [--goaway-after N]
 *             [--refuse-every N] [--silent 1] [--status N] [--delay-ms N] [--max-seconds N]
 *             [--big-headers 1] [--retry-after V]
 *
 * Stats file: "connections=N requests=M refused=R max_active=A" (A: most streams seen open
 * at once on one connection).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *stats_file;
static unsigned max_concurrent = 100, goaway_after, refuse_every, silent, delay_ms, big_headers;
static int status_code = 202;
static const char *retry_after;
static atomic_long n_conns, n_reqs, n_refused, max_active;
static atomic_long stream_seq;
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;

struct pending {
    int32_t id;
    uint64_t due;
};

struct sconn {
    int fd;
    nghttp2_session *s;
    long served, active;
    int goaway_sent;
    struct pending pend[1024];
    size_t npend;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static atomic_int stats_dirty;

/* Marks the stats changed; a thread rewrites the file at most every 20 ms, so counting never
 * slows the server down. */
static void write_stats(void)
{
    atomic_store(&stats_dirty, 1);
}

static void flush_stats(void)
{
    char tmp[4096];
    FILE *f;

    if (!stats_file)
        return;
    pthread_mutex_lock(&stats_mu);
    snprintf(tmp, sizeof(tmp), "%s.tmp", stats_file);
    f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "connections=%ld requests=%ld refused=%ld max_active=%ld\n",
                atomic_load(&n_conns), atomic_load(&n_reqs), atomic_load(&n_refused),
                atomic_load(&max_active));
        fclose(f);
        rename(tmp, stats_file);
    }
    pthread_mutex_unlock(&stats_mu);
}

static void respond(struct sconn *c, int32_t id)
{
    char st[8];
    nghttp2_nv nv[2] = {
        {(uint8_t *)":status", (uint8_t *)st, 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"server", (uint8_t *)"h2_server", 6, 9, NGHTTP2_NV_FLAG_NONE},
    };
    snprintf(st, sizeof(st), "%03d", status_code);
    if (big_headers) { /* ~100 KB of response headers over HEADERS + CONTINUATION */
        static char names[100][16], value[1001];
        nghttp2_nv big[102];
        memset(value, 'v', 1000);
        big[0] = nv[0];
        big[1] = nv[1];
        for (int i = 0; i < 100; i++) {
            snprintf(names[i], sizeof(names[i]), "x-filler-%d", i);
            big[i + 2] = (nghttp2_nv){(uint8_t *)names[i], (uint8_t *)value, strlen(names[i]),
                                      1000, NGHTTP2_NV_FLAG_NO_INDEX};
        }
        nghttp2_submit_response(c->s, id, big, 102, NULL);
    } else if (retry_after) {
        nghttp2_nv ra[3] = {nv[0], nv[1],
                            {(uint8_t *)"retry-after", (uint8_t *)retry_after, 11,
                             strlen(retry_after), NGHTTP2_NV_FLAG_NONE}};
        nghttp2_submit_response(c->s, id, ra, 3, NULL);
    } else {
        nghttp2_submit_response(c->s, id, nv, 2, NULL);
    }
    c->served++;
    atomic_fetch_add(&n_reqs, 1);
    if (goaway_after && c->served == (long)goaway_after && !c->goaway_sent) {
        /* Everything above this stream was not processed and may be retried. */
        nghttp2_submit_goaway(c->s, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, NULL, 0);
        c->goaway_sent = 1;
    }
    write_stats();
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct sconn *c = ud;
    int32_t id = f->hd.stream_id;

    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        long seq = atomic_fetch_add(&stream_seq, 1) + 1;
        if (c->goaway_sent)
            return 0;
        if (refuse_every && seq % refuse_every == 0) {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
            atomic_fetch_add(&n_refused, 1);
            write_stats();
            return 0;
        }
        if (silent)
            return 0;
        if (delay_ms && c->npend < 1024) {
            c->pend[c->npend].id = id;
            c->pend[c->npend].due = now_ms() + delay_ms;
            c->npend++;
            return 0;
        }
        respond(c, id);
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct sconn *c = ud;
    long a = ++c->active, m = atomic_load(&max_active);
    while (a > m && !atomic_compare_exchange_weak(&max_active, &m, a))
        ;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct sconn *c = ud;
    c->active--;
    return 0;
}

static int flush_out(struct sconn *c)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->s, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        while (n > 0) {
            ssize_t w = send(c->fd, data, (size_t)n, MSG_NOSIGNAL);
            if (w <= 0)
                return -1;
            data += w;
            n -= w;
        }
    }
}

static void *serve(void *arg)
{
    struct sconn *c = arg;
    nghttp2_session_callbacks *cb;
    nghttp2_settings_entry iv[1] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_concurrent}};
    uint8_t buf[16384];

    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    {
        nghttp2_option *opt;
        nghttp2_option_new(&opt);
        /* nghttp2 refuses to send header blocks over 64 KiB by default; --big-headers needs
         * more. */
        nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
        nghttp2_session_server_new2(&c->s, cb, c, opt);
        nghttp2_option_del(opt);
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1);
    while (nghttp2_session_want_read(c->s) || nghttp2_session_want_write(c->s)) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        uint64_t t = now_ms();
        size_t i = 0;
        while (i < c->npend) {
            if (c->pend[i].due <= t) {
                respond(c, c->pend[i].id);
                c->pend[i] = c->pend[--c->npend];
            } else {
                i++;
            }
        }
        if (flush_out(c) != 0)
            break;
        if (c->goaway_sent && c->active == 0)
            break;
        if (poll(&pfd, 1, c->npend ? 5 : 100) < 0 && errno != EINTR)
            break;
        if (pfd.revents) {
            ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
            if (n <= 0)
                break;
            ssize_t rv = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
            if (rv < 0) {
                fprintf(stderr, "h2_server: %s\n", nghttp2_strerror((int)rv));
                break;
            }
        }
    }
    flush_out(c);
    /* Lingering close: closing with unread input would send RST and could destroy the
     * GOAWAY and responses still in flight to the client. */
    shutdown(c->fd, SHUT_WR);
    for (int i = 0; i < 20; i++) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0 && recv(c->fd, buf, sizeof(buf), 0) <= 0)
            break;
    }
    nghttp2_session_del(c->s);
    close(c->fd);
    free(c);
    return NULL;
}

static void *stats_thread(void *arg)
{
    (void)arg;
    for (;;) {
        if (atomic_exchange(&stats_dirty, 0))
            flush_stats();
        usleep(20000);
    }
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    int lfd, one = 1, max_seconds = 120;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--port-file"))
            port_file = v;
        else if (!strcmp(a, "--stats-file"))
            stats_file = v;
        else if (!strcmp(a, "--max-concurrent"))
            max_concurrent = (unsigned)atoi(v);
        else if (!strcmp(a, "--goaway-after"))
            goaway_after = (unsigned)atoi(v);
        else if (!strcmp(a, "--refuse-every"))
            refuse_every = (unsigned)atoi(v);
        else if (!strcmp(a, "--silent"))
            silent = (unsigned)atoi(v);
        else if (!strcmp(a, "--status"))
            status_code = atoi(v);
        else if (!strcmp(a, "--retry-after"))
            retry_after = v;
        else if (!strcmp(a, "--big-headers"))
            big_headers = (unsigned)atoi(v);
        else if (!strcmp(a, "--delay-ms"))
            delay_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--max-seconds"))
            max_seconds = atoi(v);
        else {
            fprintf(stderr, "h2_server: unknown option %s\n", a);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)max_seconds);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 128) != 0) {
        perror("h2_server: bind/listen");
        return 2;
    }
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    if (port_file) {
        char tmp[4096];
        FILE *f;
        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        f = fopen(tmp, "w");
        if (!f)
            return 2;
        fprintf(f, "%d\n", ntohs(sa.sin_port));
        fclose(f);
        rename(tmp, port_file);
    }
    flush_stats();
    {
        pthread_t st;
        pthread_create(&st, NULL, stats_thread, NULL);
        pthread_detach(st);
    }
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        struct sconn *c;
        pthread_t th;
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        c->fd = fd;
        atomic_fetch_add(&n_conns, 1);
        write_stats();
        if (pthread_create(&th, NULL, serve, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(th);
    }
    return 0;
}
