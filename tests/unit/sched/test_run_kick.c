/* hd_run_kick: work enqueued while a run waits goes out at once when the run is woken, not
 * at its next rescan of the host records. The run's rescan is set to 20 s
 * (hd_run_opts.scan_interval_ms), far beyond every wait here, so that only the wake-up can
 * find new work:
 *
 *   an activity queued before the start     sent (the start's scan): the run now waits
 *   one queued while it waits, no wake-up   not sent within a second; woken, it goes out
 *   one queued and woken at once            sent within 5 s
 *
 * Each activity goes to a host of its own. A host the run already knows reads its queue
 * again after each acknowledgement, so only a scan can find a host it has not seen: the
 * absence of the second delivery before its wake-up is then certain, not a matter of timing.
 * Deliveries go to a small HTTP/1.1 server in this process, on 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ingest.h"
#include "keyadd.h"
#include "loop.h"
#include "queue.h"
#include "runner.h"
#include "store.h"
#include "t.h"
#include "t_queue.h"
#include "t_srv.h"

#define SCAN_INTERVAL_MS 20000 /* the run's own rescan: never reached by the test */
#define QUIET_MS 1000          /* no wake-up: nothing is sent for this long */
#define KICK_WAIT_MS 5000      /* woken: sent within this */
#define START_WAIT_MS 10000    /* the first delivery, after the run's start */
#define IDLE_MS 200            /* after a commit: the loop thread's last turn of that host */
#define POLL_MS 10

/* ---- a receiver: HTTP/1.1, one connection at a time, each answer closes it ---- */

#define MAX_SEEN 16
static struct t_srv srv;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen[MAX_SEEN][64]; /* Host of each request */
static int nseen;

static void serve_one(int c)
{
    static const char ok[] =
        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    char buf[65536], *end;

    if (!t_srv_read_request(c, buf, sizeof(buf), &end))
        return;
    pthread_mutex_lock(&seen_mu);
    if (nseen < MAX_SEEN) {
        char *h = strcasestr(buf, "\r\nhost:");
        seen[nseen][0] = 0;
        if (h)
            sscanf(h + 7, " %63[^:\r]", seen[nseen]);
        nseen++;
    }
    pthread_mutex_unlock(&seen_mu);
    if (write(c, ok, sizeof(ok) - 1) < 0)
        return;
}

static void take_conn(int c)
{
    serve_one(c);
    close(c);
}

/* Requests received with this Host. */
static int received(const char *host)
{
    int n = 0;
    pthread_mutex_lock(&seen_mu);
    for (int i = 0; i < nseen; i++)
        n += !strcmp(seen[i], host);
    pthread_mutex_unlock(&seen_mu);
    return n;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Milliseconds until host has received one request, or -1 after limit_ms. */
static long wait_received(const char *host, unsigned limit_ms)
{
    uint64_t t0 = mono_ms();

    for (unsigned i = 0; i <= limit_ms / POLL_MS; i++) {
        if (received(host))
            return (long)(mono_ms() - t0);
        if (mono_ms() - t0 > limit_ms)
            break;
        pause_ms(POLL_MS);
    }
    return received(host) ? (long)(mono_ms() - t0) : -1;
}

/* ---- the store ---- */

static char dir[] = "/tmp/hd-test-run-kick-XXXXXX";
static struct hd_store *st;

/* Waits until done deliveries have committed and nothing is queued; 1 when they have. */
static int wait_settled(uint64_t done, unsigned limit_ms)
{
    uint64_t t0 = mono_ms();

    for (unsigned i = 0; i <= limit_ms / POLL_MS; i++) {
        if (t_counters(st).done == done && t_host_sum(st).queued == 0)
            return 1;
        if (mono_ms() - t0 > limit_ms)
            break;
        pause_ms(POLL_MS);
    }
    return t_counters(st).done == done && t_host_sum(st).queued == 0;
}

/* Enqueues activity n, as the ingest endpoint does, to one inbox at host on the receiver's
 * port (resolved to 127.0.0.1 by the run). Written through the run's own store handle, from
 * this thread, while the run goes on. */
static void post(int n, const char *host)
{
    char env[1024];
    struct hd_ingest_result res;
    struct hd_counters c;
    struct hd_txn *txn;

    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://me.example/a/%d\",\"type\":\"Create\","
             "\"actor\":\"https://me.example/users/alice\",\"object\":"
             "{\"id\":\"https://me.example/n/%d\",\"type\":\"Note\"}},"
             "\"inboxes\":[\"http://%s:%u/inbox\"]}",
             n, n, host, (unsigned)srv.port);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_ingest_envelope(st, txn, &c, env, strlen(env), hd_wall_ms(), &res), 0);
    T_EQ_INT(res.deliveries, 1);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

/* ---- the run, in a thread of its own ---- */

struct run {
    struct hd_run_opts o;
    _Atomic int stop;
    struct hd_run_summary sum;
    int rc;
};

static void *run_main(void *arg)
{
    struct run *r = arg;

    r->rc = hd_run(st, &r->o, &r->stop, &r->sum);
    return NULL;
}

int main(void)
{
    const char *why = NULL;
    struct hd_run_kick *kick;
    struct run r;
    char spec[64], cmd[128], *pem;
    const char *resolve[1] = {spec};
    size_t pem_len;
    pthread_t runner;
    long ms;

    pem = t_srv_prelude(&pem_len);
    t_srv_start(&srv, take_conn);
    T_OK(mkdtemp(dir) != NULL);
    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    T_EQ_INT(hd_keys_add(st, "https://me.example/users/alice#main-key",
                         "https://me.example/users/alice", pem, pem_len, &why),
             0);
    T_EQ_INT(hd_run_kick_new(&kick), 0);

    post(1, "start.test");
    memset(&r, 0, sizeof(r));
    snprintf(spec, sizeof(spec), "*:%u:127.0.0.1", (unsigned)srv.port);
    hd_run_opts_default(&r.o);
    r.o.threads = 1;
    r.o.allow_private = 1;
    r.o.resolve = resolve;
    r.o.nresolve = 1;
    r.o.scan_interval_ms = SCAN_INTERVAL_MS;
    r.o.kick = kick;
    alarm(60); /* a run that never stops fails the test */
    T_EQ_INT(pthread_create(&runner, NULL, run_main, &r), 0);

    fprintf(stderr, "-- queued before the start: sent by the start's scan\n");
    ms = wait_received("start.test", START_WAIT_MS);
    T_OK(ms >= 0);
    T_OK(wait_settled(1, START_WAIT_MS)); /* acknowledged, nothing queued: the run waits */

    fprintf(stderr, "-- queued while the run waits, no wake-up: not sent\n");
    post(2, "quiet.test");
    T_EQ_INT(wait_received("quiet.test", QUIET_MS), -1);
    T_EQ_INT(received("quiet.test"), 0);
    hd_run_kick(kick);
    ms = wait_received("quiet.test", KICK_WAIT_MS);
    fprintf(stderr, "woken: sent after %ld ms\n", ms);
    T_OK(ms >= 0);
    T_OK(wait_settled(2, KICK_WAIT_MS));
    /* The commit comes back to the loop thread, which gives the host one more turn (it reads
     * the host's queue, finds it empty): let that pass, so that the run waits, idle. */
    pause_ms(IDLE_MS);

    fprintf(stderr, "-- queued and woken at once: sent\n");
    post(3, "kick.test");
    hd_run_kick(kick);
    ms = wait_received("kick.test", KICK_WAIT_MS);
    fprintf(stderr, "woken: sent after %ld ms\n", ms);
    T_OK(ms >= 0);
    T_OK(wait_settled(3, KICK_WAIT_MS));

    atomic_store_explicit(&r.stop, 1, memory_order_relaxed);
    T_EQ_INT(pthread_join(runner, NULL), 0);
    alarm(0);
    T_EQ_INT(r.rc, 0);
    T_EQ_INT(r.sum.done, 3);
    T_EQ_INT(received("start.test") + received("quiet.test") + received("kick.test"), 3);

    t_srv_stop(&srv);
    hd_store_close(st);
    hd_run_kick_free(kick);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
    free(pem);
    T_DONE();
}
