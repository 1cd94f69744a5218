/* Priorities per host, end to end through the runner: a high delivery behind 20,000 low
 * ones at one host goes out within the host's first window of sends and the low ones all
 * finish; normal goes before low; a waiting lower class gets at least 1 send in 8; and a
 * high Update never overtakes the low Create of its object (ordering wins). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "keyadd.h"
#include "log.h"
#include "loop.h"
#include "queue.h"
#include "runner.h"
#include "store.h"
#include "t.h"
#include "t_srv.h"

#define WINDOW 8
/* Sanitizer builds run the same test on 2,000 (the normal build of the same suite runs the
 * full 20,000). */
#if defined(__SANITIZE_ADDRESS__)
#define NLOW 2000
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NLOW 2000
#endif
#endif
#ifndef NLOW
#define NLOW 20000
#endif
#define MAX_SEEN (NLOW + 64)

/* ---- a receiver: HTTP/1.1 keep-alive, a thread per connection, the order of arrival ---- */

static struct t_srv srv;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char (*seen)[24]; /* activity tag per request, in arrival order */
static int nseen;

static void *serve_conn(void *arg)
{
    int c = (int)(intptr_t)arg;
    static const char ok[] = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
    char buf[16384];
    size_t n = 0;

    for (;;) {
        char *end, *p, *t;
        size_t need;
        long clen = 0;
        ssize_t r;
        while (!(end = memmem(buf, n, "\r\n\r\n", 4))) {
            if (n >= sizeof(buf) - 1 || (r = read(c, buf + n, sizeof(buf) - 1 - n)) <= 0)
                goto out;
            n += (size_t)r;
            if (n >= 3 && memcmp(buf, "PRI", 3) == 0)
                goto out; /* h2c prior knowledge: refused, the client falls back */
        }
        p = memmem(buf, (size_t)(end - buf), "\r\nContent-Length:", 17);
        if (!p)
            p = memmem(buf, (size_t)(end - buf), "\r\ncontent-length:", 17);
        if (p)
            clen = strtol(p + 17, NULL, 10);
        need = (size_t)(end + 4 - buf) + (size_t)clen;
        if (need >= sizeof(buf))
            goto out;
        while (n < need) {
            if ((r = read(c, buf + n, sizeof(buf) - 1 - n)) <= 0)
                goto out;
            n += (size_t)r;
        }
        buf[need] = 0;
        t = strstr(end, "\"id\":\"https://me.example/a/");
        pthread_mutex_lock(&seen_mu);
        if (nseen < MAX_SEEN) {
            seen[nseen][0] = 0;
            if (t)
                sscanf(t + 27, "%23[^\"]", seen[nseen]);
            nseen++;
        }
        pthread_mutex_unlock(&seen_mu);
        if (write(c, ok, sizeof(ok) - 1) < 0)
            goto out;
        memmove(buf, buf + need, n - need);
        n -= need;
    }
out:
    close(c);
    return NULL;
}

static void take_conn(int c)
{
    pthread_t t;

    if (pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)c) != 0)
        close(c);
    else
        pthread_detach(t);
}

/* ---- the store ---- */

static char dir[64];
static struct hd_store *st;
static char *pem;
static size_t pem_len;

static void fresh_store(void)
{
    char cmd[128];
    const char *why = NULL;

    if (st) {
        hd_store_close(st);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        T_EQ_INT(system(cmd), 0);
    }
    snprintf(dir, sizeof(dir), "/tmp/hd-test-prio-XXXXXX");
    T_OK(mkdtemp(dir) != NULL);
    T_EQ_INT(hd_store_open(&st, dir, 256), 0);
    T_EQ_INT(hd_keys_add(st, "https://me.example/u/a#k", "https://me.example/u/a", pem, pem_len,
                         &why),
             0);
    pthread_mutex_lock(&seen_mu);
    nseen = 0;
    pthread_mutex_unlock(&seen_mu);
}

/* Activity tag (id https://me.example/a/TAG, type, object or NULL) to n distinct inboxes on
 * p.test, with priority prio. */
static void post(const char *tag, const char *type, const char *obj, size_t n, uint32_t prio)
{
    char id[128], body[256];
    struct hd_qdest *d = calloc(n, sizeof(*d));
    char (*inbox)[64] = calloc(n, sizeof(*inbox));
    struct hd_activity_in a;
    struct hd_counters c;
    struct hd_txn *txn;
    uint64_t seq;

    T_OK(d && inbox);
    snprintf(id, sizeof(id), "https://me.example/a/%s", tag);
    snprintf(body, sizeof(body),
             "{\"id\":\"%s\",\"type\":\"%s\",\"actor\":\"https://me.example/u/a\"}", id, type);
    memset(&a, 0, sizeof(a));
    a.id = id;
    a.type = type;
    a.actor = "https://me.example/u/a";
    a.object_id = obj;
    a.body = body;
    a.body_len = strlen(body);
    a.priority = prio;
    for (size_t i = 0; i < n; i++) {
        snprintf(inbox[i], sizeof(inbox[i]), "http://p.test:%u/u/%zu/inbox", (unsigned)srv.port,
                 i);
        d[i].host = "p.test";
        d[i].host_len = 6;
        d[i].inbox = inbox[i];
        d[i].inbox_len = (uint32_t)strlen(inbox[i]);
    }
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_queue_enqueue_dests(st, txn, &c, &a, d, n, hd_wall_ms(), &seq), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    free(d);
    free(inbox);
}

static void run(void)
{
    char spec[64];
    const char *resolve[1] = {spec};
    struct hd_run_opts o;
    struct hd_run_summary sum;
    _Atomic int stop = 0;

    hd_store_close(st);
    T_EQ_INT(hd_store_open(&st, dir, 256), 0);
    snprintf(spec, sizeof(spec), "*:%u:127.0.0.1", (unsigned)srv.port);
    hd_run_opts_default(&o);
    o.threads = 1;
    o.until_idle = 1;
    o.allow_private = 1;
    o.resolve = resolve;
    o.nresolve = 1;
    o.hostpol.win_init = WINDOW; /* a fixed window: "the host's next window of sends" */
    o.hostpol.win_max = WINDOW;
    alarm(100);
    T_EQ_INT(hd_run(st, &o, &stop, &sum), 0);
    alarm(0);
}

/* Position (0-based) of the first request whose tag starts with pfx; -1: none. */
static int first_of(const char *pfx)
{
    for (int i = 0; i < nseen; i++)
        if (!strncmp(seen[i], pfx, strlen(pfx)))
            return i;
    return -1;
}

static int count_in(const char *pfx, int from, int to)
{
    int n = 0;
    for (int i = from; i < to && i < nseen; i++)
        n += !strncmp(seen[i], pfx, strlen(pfx));
    return n;
}

static void high_behind_20000_low(void)
{
    struct hd_counters c;
    struct hd_txn *txn;

    fprintf(stderr, "-- one high behind %d low\n", NLOW);
    fresh_store();
    post("low", "Announce", NULL, NLOW, HD_PRIO_LOW);
    post("high", "Create", "https://me.example/n/1", 1, HD_PRIO_HIGH);
    run();
    fprintf(stderr, "high at %d of %d\n", first_of("high"), nseen);
    T_OK(first_of("high") >= 0);
    /* Leased in the first window; over WINDOW parallel connections its arrival may trail the
     * others of that window, not more. */
    T_OK(first_of("high") < 2 * WINDOW);
    T_EQ_INT(count_in("low", 0, nseen), NLOW); /* the low ones all finished */
    T_EQ_INT(nseen, NLOW + 1);
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    hd_store_abort(txn);
    T_EQ_INT(c.done, NLOW + 1);
}

static void classes_and_bound(void)
{
    char tag[32];

    fprintf(stderr, "-- normal before low; 1 in 8 for a waiting lower class\n");
    fresh_store();
    post("lw", "Announce", NULL, 200, HD_PRIO_LOW);
    post("nm", "Announce", NULL, 200, HD_PRIO_NORMAL);
    for (int i = 0; i < 100; i++) {
        snprintf(tag, sizeof(tag), "hi%d", i);
        post(tag, "Announce", NULL, 1, HD_PRIO_HIGH);
    }
    run();
    T_EQ_INT(nseen, 500);
    /* The first windows: high most of them (7 of each 8), yet not all while others wait.
     * Counted over four windows, by arrival: over WINDOW parallel HTTP/1.1 connections, a
     * request of the first window whose connection is slow to open can arrive after those
     * of the next windows, sent on connections already open (a loaded machine under a
     * sanitizer showed fewer than 12 high in the first 16 arrivals). Without priorities
     * about 6 of 32 would be high; with them 28, less what arrives late. */
    T_OK(count_in("hi", 0, 4 * WINDOW) >= 4 * WINDOW - 8);
    T_OK(count_in("hi", 0, 4 * WINDOW) <= 4 * 7);
    /* normal ahead of low: of the first 300 sends, most lower ones are normal */
    T_OK(count_in("nm", 0, 300) > count_in("lw", 0, 300));
    /* yet low is not starved while normal waits: some low went in the first 300 */
    T_OK(count_in("lw", 0, 300) >= 300 / 8 / 2);
    fprintf(stderr, "first 300: high %d normal %d low %d\n", count_in("hi", 0, 300),
            count_in("nm", 0, 300), count_in("lw", 0, 300));
}

static void ordering_wins(void)
{
    fprintf(stderr, "-- a high Update waits for the low Create of its object\n");
    fresh_store();
    post("lw", "Announce", NULL, 300, HD_PRIO_LOW);
    post("create", "Create", "https://me.example/n/7", 1, HD_PRIO_LOW);
    post("update", "Update", "https://me.example/n/7", 1, HD_PRIO_HIGH);
    run();
    T_EQ_INT(nseen, 302);
    T_OK(first_of("create") >= 0 && first_of("update") > first_of("create"));
}

int main(void)
{
    char cmd[128];

    pem = t_srv_prelude(&pem_len);
    seen = calloc(MAX_SEEN, sizeof(*seen));
    T_OK(seen != NULL);
    t_srv_start(&srv, take_conn);

    if (getenv("HD_PRIO_DEBUG"))
        hd_log_level = HD_LOG_DEBUG;
    if (!getenv("HD_PRIO_ONLY_ORDERING")) { /* debugging one case */
        high_behind_20000_low();
        classes_and_bound();
    }
    ordering_wins();

    t_srv_stop(&srv);
    hd_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
    free(pem);
    free(seen);
    T_DONE();
}
