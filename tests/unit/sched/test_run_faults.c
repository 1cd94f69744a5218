/* Local failures in the runner must not become outcomes. Linked with -Wl,--wrap for the
 * store look-ups the runner makes before it sends (tests/CMakeLists.txt), so that each can
 * fail with HD_ERR_STORE on demand, and for malloc, so that a batch of acknowledgements
 * cannot be allocated. Deliveries go to a small HTTP/1.1 server in this process.
 *
 *   activity, actor, key read fails   the delivery is put back and sent a second later
 *                                     (not a dead letter)
 *   ordering look-up fails            a Delete does not overtake its Create; a cancellation
 *   (blocked, delete_of, host_got)    still happens; a Delete still skips a host that never
 *                                     got the object
 *   the key reloaded at sending fails the delivery is put back (not "signing failed")
 *   a read fails for good             after the grace time, attempts are counted (the run
 *                                     ends with the delivery waiting for its retry)
 *   no memory for an acknowledgement  in dispatch and in the scan, the delivery is put back
 *                                     and settled a second later (not leased until the end) */
#include <arpa/inet.h>
#include <errno.h>
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

#include "err.h"
#include "ingest.h"
#include "keyadd.h"
#include "loop.h"
#include "queue.h"
#include "rules.h"
#include "runner.h"
#include "store.h"
#include "t.h"
#include "t_queue.h"
#include "t_srv.h"

/* ---- failures on demand ---- */

static _Atomic int fail_activity, fail_actor, fail_blocked, fail_delete_of, fail_host_got;
static _Atomic int fail_pem_call; /* fail the Nth hd_keys_get_pem of key_fail_id (1-based) */
static _Atomic int pem_calls;
static const char *key_fail_id;
static _Atomic int fail_ack_batch; /* malloc of a batch of acknowledgements fails this often */
static size_t ack_batch_size;

static int take(_Atomic int *n)
{
    int v = atomic_load(n);
    while (v > 0 && !atomic_compare_exchange_weak(n, &v, v - 1))
        ;
    return v > 0;
}

int __real_hd_queue_get_activity(struct hd_store *st, struct hd_txn *txn, uint64_t seq,
                                 struct hd_act_view *out);
int __wrap_hd_queue_get_activity(struct hd_store *st, struct hd_txn *txn, uint64_t seq,
                                 struct hd_act_view *out);
int __wrap_hd_queue_get_activity(struct hd_store *st, struct hd_txn *txn, uint64_t seq,
                                 struct hd_act_view *out)
{
    return take(&fail_activity) ? HD_ERR_STORE : __real_hd_queue_get_activity(st, txn, seq, out);
}

int __real_hd_actor_get(struct hd_store *st, struct hd_txn *txn, const char *actor,
                        size_t actor_len, struct hd_slice *key_id, int *federation);
int __wrap_hd_actor_get(struct hd_store *st, struct hd_txn *txn, const char *actor,
                        size_t actor_len, struct hd_slice *key_id, int *federation);
int __wrap_hd_actor_get(struct hd_store *st, struct hd_txn *txn, const char *actor,
                        size_t actor_len, struct hd_slice *key_id, int *federation)
{
    return take(&fail_actor) ? HD_ERR_STORE
                             : __real_hd_actor_get(st, txn, actor, actor_len, key_id, federation);
}

int __real_hd_keys_get_pem(struct hd_store *st, struct hd_txn *txn, const char *key_id,
                           struct hd_slice *pem);
int __wrap_hd_keys_get_pem(struct hd_store *st, struct hd_txn *txn, const char *key_id,
                           struct hd_slice *pem);
int __wrap_hd_keys_get_pem(struct hd_store *st, struct hd_txn *txn, const char *key_id,
                           struct hd_slice *pem)
{
    if (key_fail_id && strcmp(key_id, key_fail_id) == 0 &&
        atomic_fetch_add(&pem_calls, 1) + 1 == atomic_load(&fail_pem_call))
        return HD_ERR_STORE;
    return __real_hd_keys_get_pem(st, txn, key_id, pem);
}

int __real_hd_queue_blocked_until(struct hd_store *st, struct hd_txn *txn, const char *host,
                                  const uint64_t after[2], uint64_t *until_ms);
int __wrap_hd_queue_blocked_until(struct hd_store *st, struct hd_txn *txn, const char *host,
                                  const uint64_t after[2], uint64_t *until_ms);
int __wrap_hd_queue_blocked_until(struct hd_store *st, struct hd_txn *txn, const char *host,
                                  const uint64_t after[2], uint64_t *until_ms)
{
    return take(&fail_blocked) ? HD_ERR_STORE
                               : __real_hd_queue_blocked_until(st, txn, host, after, until_ms);
}

int __real_hd_queue_delete_of(struct hd_store *st, struct hd_txn *txn, const char *object_id,
                              uint64_t create_seq, uint64_t *del_seq);
int __wrap_hd_queue_delete_of(struct hd_store *st, struct hd_txn *txn, const char *object_id,
                              uint64_t create_seq, uint64_t *del_seq);
int __wrap_hd_queue_delete_of(struct hd_store *st, struct hd_txn *txn, const char *object_id,
                              uint64_t create_seq, uint64_t *del_seq)
{
    return take(&fail_delete_of)
               ? HD_ERR_STORE
               : __real_hd_queue_delete_of(st, txn, object_id, create_seq, del_seq);
}

int __real_hd_queue_host_got(struct hd_store *st, struct hd_txn *txn, const char *host,
                             uint64_t create_seq);
int __wrap_hd_queue_host_got(struct hd_store *st, struct hd_txn *txn, const char *host,
                             uint64_t create_seq);
int __wrap_hd_queue_host_got(struct hd_store *st, struct hd_txn *txn, const char *host,
                             uint64_t create_seq)
{
    return take(&fail_host_got) ? HD_ERR_STORE
                                : __real_hd_queue_host_got(st, txn, host, create_seq);
}

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
    if (n == ack_batch_size && take(&fail_ack_batch))
        return NULL;
    return __real_malloc(n);
}

/* ---- a receiver: HTTP/1.1, one connection at a time, each answer closes it ---- */

#define MAX_SEEN 64
static struct t_srv srv;
static _Atomic int srv_fail_503;
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char host[64];
    char type[16];
} seen[MAX_SEEN];
static int nseen;

static void serve_one(int c)
{
    char buf[65536], *end;
    int status = 202;

    if (!t_srv_read_request(c, buf, sizeof(buf), &end))
        return;
    if (take(&srv_fail_503))
        status = 503;
    pthread_mutex_lock(&seen_mu);
    if (nseen < MAX_SEEN) {
        char *h = strcasestr(buf, "\r\nhost:"), *t = strstr(end, "\"type\":\"");
        if (h)
            sscanf(h + 7, " %63[^:\r]", seen[nseen].host);
        if (t)
            sscanf(t + 8, "%15[^\"]", seen[nseen].type);
        nseen++;
    }
    pthread_mutex_unlock(&seen_mu);
    snprintf(buf, sizeof(buf), "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             status);
    if (write(c, buf, strlen(buf)) < 0)
        return;
}

static void take_conn(int c)
{
    serve_one(c);
    close(c);
}

/* Requests received with this Host (NULL: any) and activity type (NULL: any). */
static int received(const char *host, const char *type)
{
    int n = 0;
    pthread_mutex_lock(&seen_mu);
    for (int i = 0; i < nseen; i++)
        if ((!host || !strcmp(seen[i].host, host)) && (!type || !strcmp(seen[i].type, type)))
            n++;
    pthread_mutex_unlock(&seen_mu);
    return n;
}

static void forget_received(void)
{
    pthread_mutex_lock(&seen_mu);
    nseen = 0;
    pthread_mutex_unlock(&seen_mu);
}

/* ---- the store and the runs ---- */

static char dir[64];
static struct hd_store *st;
static char *pem;
static size_t pem_len;

static void fresh_store(void)
{
    char cmd[128];

    if (st) {
        hd_store_close(st);
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        T_EQ_INT(system(cmd), 0);
    }
    snprintf(dir, sizeof(dir), "/tmp/hd-test-run-faults-XXXXXX");
    T_OK(mkdtemp(dir) != NULL);
    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    forget_received();
}

static void add_actor(const char *name)
{
    char actor[128], kid[160];
    const char *why = NULL;

    snprintf(actor, sizeof(actor), "https://me.example/users/%s", name);
    snprintf(kid, sizeof(kid), "%s#main-key", actor);
    T_EQ_INT(hd_keys_add(st, kid, actor, pem, pem_len, &why), 0);
}

/* Enqueues an activity of actor `who` (type, about object n) to the inboxes (host names,
 * each with one inbox on the receiver's port). */
static void post(const char *who, int id, const char *type, int object, const char *hosts)
{
    char env[2048], inboxes[1024] = "", hs[256], *save = NULL;
    struct hd_ingest_result res;
    struct hd_counters c;
    struct hd_txn *txn;

    snprintf(hs, sizeof(hs), "%s", hosts);
    for (char *h = strtok_r(hs, " ", &save); h; h = strtok_r(NULL, " ", &save)) {
        size_t l = strlen(inboxes);
        snprintf(inboxes + l, sizeof(inboxes) - l, "%s\"http://%s:%u/inbox\"", l ? "," : "", h,
                 (unsigned)srv.port);
    }
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://me.example/a/%d\",\"type\":\"%s\","
             "\"actor\":\"https://me.example/users/%s\",\"object\":"
             "{\"id\":\"https://me.example/n/%d\",\"type\":\"Note\"}},\"inboxes\":[%s]}",
             id, type, who, object, inboxes);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_ingest_envelope(st, txn, &c, env, strlen(env), 1000, &res), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void block(const char *domain)
{
    struct hd_block b;
    struct hd_txn *txn;

    memset(&b, 0, sizeof(b));
    snprintf(b.domain, sizeof(b.domain), "%s", domain);
    b.severity = HD_SEV_SUSPEND;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_block_put(st, txn, &b), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

/* Runs until idle; a store handle holds the run lock until it is closed, so each run gets
 * its own. */
static void run(uint64_t max_age_ms, unsigned key_cache)
{
    char spec[64];
    const char *resolve[1] = {spec};
    struct hd_run_opts o;
    struct hd_run_summary sum;
    _Atomic int stop = 0;

    hd_store_close(st);
    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    snprintf(spec, sizeof(spec), "*:%u:127.0.0.1", (unsigned)srv.port);
    hd_run_opts_default(&o);
    o.threads = 1;
    o.until_idle = 1;
    o.allow_private = 1;
    o.resolve = resolve;
    o.nresolve = 1;
    o.retry.base_ms = 60000; /* a retried delivery waits beyond the run */
    o.commit_batch = 777;    /* a batch size no other allocation has (fail_ack_batch) */
    o.max_age_ms = max_age_ms;
    o.key_cache = key_cache;
    alarm(120);
    T_EQ_INT(hd_run(st, &o, &stop, &sum), 0);
    alarm(0);
}

static uint64_t queued(void)
{
    return t_host_sum(st).queued;
}

/* A read of the activity, of its actor or of the key fails once: sent a second later. */
static void reads_fail_once(_Atomic int *which, const char *what)
{
    fprintf(stderr, "-- %s read fails once\n", what);
    fresh_store();
    add_actor("alice");
    post("alice", 1, "Create", 1, "a.test");
    if (which) {
        atomic_store(which, 1);
    } else { /* the key's first read */
        key_fail_id = "https://me.example/users/alice#main-key";
        atomic_store(&pem_calls, 0);
        atomic_store(&fail_pem_call, 1);
    }
    run(0, 0);
    if (which) {
        T_EQ_INT(atomic_load(which), 0); /* the failure happened */
    } else {
        T_OK(atomic_load(&pem_calls) >= 2);
        key_fail_id = NULL;
    }
    T_EQ_INT(t_counters(st).failed, 0);  /* no dead letter */
    T_EQ_INT(t_counters(st).done, 1);
    T_EQ_INT(received("a.test", "Create"), 1);
}

/* The activity cannot be read for good: put back every second during the grace time, then
 * counted as an attempt (retried in a minute), so that --until-idle ends. */
static void reads_keep_failing(void)
{
    time_t t0 = time(NULL);

    fprintf(stderr, "-- activity read keeps failing\n");
    fresh_store();
    add_actor("alice");
    post("alice", 1, "Create", 1, "a.test");
    atomic_store(&fail_activity, 1000000);
    run(0, 0);
    atomic_store(&fail_activity, 0);
    T_OK(time(NULL) - t0 >= HD_POLICY_LOCAL_GRACE_MS / 1000 - 1);
    T_EQ_INT(received(NULL, NULL), 0);
    T_EQ_INT(t_counters(st).failed, 0);
    T_EQ_INT(t_host_sum(st).retrying, 1);
}

/* Ordering: a Delete whose Create waits for a retry (and may have been processed: 503) does
 * not overtake it when the look-up fails. */
static void blocked_fails(void)
{
    fprintf(stderr, "-- blocked look-up fails\n");
    fresh_store();
    add_actor("alice");
    post("alice", 1, "Create", 1, "a.test");
    atomic_store(&srv_fail_503, 1);
    run(0, 0); /* the Create: 503, retried in a minute */
    T_EQ_INT(received("a.test", "Create"), 1);
    T_EQ_INT(t_counters(st).done, 0);
    post("alice", 2, "Delete", 1, "a.test");
    atomic_store(&fail_blocked, 1);
    run(0, 0);
    T_EQ_INT(atomic_load(&fail_blocked), 0);
    T_EQ_INT(received("a.test", "Delete"), 0); /* waits behind its Create */
    T_EQ_INT(queued(), 2);
    T_EQ_INT(t_counters(st).failed, 0);
}

/* Cancellation: a Create whose Delete is queued for the same host is cancelled with it, also
 * when the Delete look-up failed the first time. */
static void delete_of_fails(void)
{
    fprintf(stderr, "-- delete_of look-up fails\n");
    fresh_store();
    add_actor("alice");
    post("alice", 1, "Create", 1, "a.test");
    post("alice", 2, "Delete", 1, "a.test");
    atomic_store(&fail_delete_of, 1);
    run(0, 0);
    T_EQ_INT(atomic_load(&fail_delete_of), 0);
    T_EQ_INT(received(NULL, NULL), 0);
    T_EQ_INT(t_counters(st).cancelled, 2);
    T_EQ_INT(queued(), 0);
}

/* A Delete is not sent to a host the Create never went to, also when that look-up failed. */
static void host_got_fails(void)
{
    fprintf(stderr, "-- host_got look-up fails\n");
    fresh_store();
    add_actor("alice");
    post("alice", 1, "Create", 1, "a.test");
    run(0, 0);
    T_EQ_INT(received("a.test", "Create"), 1);
    post("alice", 2, "Delete", 1, "a.test b.test");
    atomic_store(&fail_host_got, 2); /* both hosts' first look-up */
    run(0, 0);
    T_EQ_INT(atomic_load(&fail_host_got), 0);
    T_EQ_INT(received("a.test", "Delete"), 1);
    T_EQ_INT(received("b.test", NULL), 0);
    T_EQ_INT(t_counters(st).cancelled, 1);
    T_EQ_INT(t_counters(st).failed, 0);
}

/* Two actors, a key cache of one: the first actor's key is evicted before its request goes
 * out and is read again at sending; that read fails once. */
static void reload_fails(void)
{
    fprintf(stderr, "-- key reload at sending fails\n");
    fresh_store();
    add_actor("alice");
    add_actor("bob");
    post("alice", 1, "Create", 1, "a.test");
    post("bob", 2, "Create", 2, "a.test");
    key_fail_id = "https://me.example/users/alice#main-key";
    atomic_store(&pem_calls, 0);
    atomic_store(&fail_pem_call, 2); /* 1: loading the activity; 2: reloaded at sending */
    run(0, 1);
    T_OK(atomic_load(&pem_calls) >= 3); /* failed, then read once more */
    key_fail_id = NULL;
    T_EQ_INT(t_counters(st).failed, 0); /* not "signing failed" */
    T_EQ_INT(t_counters(st).done, 2);
    T_EQ_INT(received("a.test", "Create"), 2);
}

/* No memory for an acknowledgement: of a delivery refused by the domain rules (dispatch),
 * of an expired delivery (the scan). Settled a second later, not left leased. */
static void ack_oom(void)
{
    struct timespec ts = {0, 20 * 1000000L};

    fprintf(stderr, "-- no memory for an acknowledgement in dispatch\n");
    fresh_store();
    add_actor("alice");
    post("alice", 1, "Create", 1, "blocked.test");
    block("blocked.test");
    atomic_store(&fail_ack_batch, 1);
    run(0, 0);
    T_EQ_INT(atomic_load(&fail_ack_batch), 0);
    T_EQ_INT(received(NULL, NULL), 0);
    T_EQ_INT(queued(), 0); /* dropped (refused by the rules), not still queued */

    fprintf(stderr, "-- no memory for an acknowledgement in the scan\n");
    fresh_store();
    add_actor("alice");
    post("alice", 1, "Create", 1, "a.test");
    nanosleep(&ts, NULL);
    atomic_store(&fail_ack_batch, 1);
    run(1, 0); /* max age 1 ms: expired when scanned */
    T_EQ_INT(atomic_load(&fail_ack_batch), 0);
    T_EQ_INT(received(NULL, NULL), 0);
    T_EQ_INT(t_counters(st).expired, 1);
    T_EQ_INT(queued(), 0);
}

int main(void)
{
    pem = t_srv_prelude(&pem_len);
    ack_batch_size = 777 * sizeof(struct hd_ack);
    t_srv_start(&srv, take_conn);

    reads_fail_once(&fail_activity, "activity");
    reads_fail_once(&fail_actor, "actor");
    reads_fail_once(NULL, "key");
    reads_keep_failing();
    blocked_fails();
    delete_of_fails();
    host_got_fails();
    reload_fails();
    ack_oom();

    t_srv_stop(&srv);
    hd_store_close(st);
    {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        T_EQ_INT(system(cmd), 0);
    }
    free(pem);
    T_DONE();
}
