/* `herald run` as a daemon (see daemon.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "err.h"
#include "ingestsrv.h"
#include "log.h"
#include "metrics.h"
#include "daemon_views.h"
#include "notify.h"

/* The SIGHUP flag, set by the handler (in whichever thread takes the signal) and taken by the
 * operations thread: a lock-free atomic. Signal flags are the one kind of mutable global
 * STYLE allows. */
static _Atomic int g_hup;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the SIGHUP flag must be lock-free");

static void on_hup(int sig)
{
    (void)sig;
    atomic_store_explicit(&g_hup, 1, memory_order_relaxed);
}

struct daemon {
    struct hd_store *st;
    struct hd_daemon_opts *d;
    struct hd_config_holder *holder; /* NULL without --config */
    struct hd_metrics *metrics;
    struct hd_ingestsrv *srv;
    _Atomic int *stop;
    atomic_int quit;
    _Atomic unsigned override_gen;
    pthread_t tid;
    atomic_int draining; /* set by the operations thread, read by the caller's thread */
    struct hd_cluster_node *cnode; /* --cluster: this node, else NULL */
    struct hd_daemon_views *views; /* --cluster: its summary publisher */
    struct hd_run_kick *kick;      /* the endpoint's commits wake the run (not in cluster mode) */
};

void hd_daemon_opts_init(struct hd_daemon_opts *d)
{
    memset(d, 0, sizeof(*d));
    d->drain_timeout_ms = -1;
    d->max_queued = -1;
    d->top_hosts = -1;
    hd_cluster_opts_default(&d->cluster);
}

void hd_daemon_opts_fini(struct hd_daemon_opts *d)
{
    hd_config_free(d->cfg);
    d->cfg = NULL;
}

static int parse_i64(const char *s, int64_t max, int64_t *out)
{
    char *e;
    long long v;
    if (!s[0] || s[0] == '-')
        return -1;
    errno = 0;
    v = strtoll(s, &e, 10);
    if (errno || *e || v > max)
        return -1;
    *out = v;
    return 0;
}

int hd_daemon_opt(struct hd_daemon_opts *d, const char *name, const char *arg)
{
    uint64_t ms;

    if (!strcmp(name, "config")) {
        d->config_path = arg; /* loaded by hd_daemon_preload */
        return 0;
    }
    if (!strcmp(name, "listen")) {
        if (d->nlisten >= HD_CONFIG_MAX_LISTEN ||
            (strncmp(arg, "unix:", 5) != 0 && !strchr(arg, ':')))
            return -1;
        d->listen[d->nlisten++] = arg;
        return 0;
    }
    if (!strcmp(name, "token-file")) {
        d->token_file = arg;
        return 0;
    }
    if (!strcmp(name, "drain-timeout")) {
        if (hd_config_parse_duration(arg, &ms) != 0 || ms > 3600000)
            return -1;
        d->drain_timeout_ms = (int64_t)ms;
        return 0;
    }
    if (!strcmp(name, "max-queued"))
        return parse_i64(arg, INT64_MAX, &d->max_queued);
    if (!strcmp(name, "metrics-top-hosts"))
        return parse_i64(arg, 10000, &d->top_hosts);
    return hd_daemon_cluster_opt(d, name, arg);
}

int hd_daemon_preload(struct hd_daemon_opts *d, int argc, char **argv, struct hd_run_opts *o)
{
    char err[HD_CONFIG_ERR_MAX];
    const char *path = NULL;
    int progress = o->progress, until_idle = o->until_idle, rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
    }
    if (!path)
        return 0;
    rc = hd_config_load(path, &d->cfg, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "herald run: %s\n", err[0] ? err : hd_strerror(rc));
        return -1;
    }
    d->config_path = path;
    *o = d->cfg->run;
    hd_daemon_cluster_preload(d);
    /* The flags' own defaults stand unless the file says otherwise; --resolve from the
     * file is merged in hd_daemon_run (cli_run.c owns the flags' array). */
    o->progress = progress || d->cfg->run.progress;
    o->until_idle = until_idle;
    o->resolve = NULL;
    o->nresolve = 0;
    return 0;
}

/* ---------------------------------------------------------------- live settings */

static int host_override(void *ud, const char *host, unsigned *max_inflight, double *rate)
{
    struct daemon *dm = ud;
    const struct hd_config_host *h;

    if (!dm->holder)
        return 0;
    h = hd_config_host_find(hd_config_current(dm->holder), host);
    if (!h)
        return 0;
    *max_inflight = h->max_inflight;
    *rate = h->rate;
    return 1;
}

static void apply_live(struct daemon *dm, const struct hd_config *c)
{
    hd_log_level = c->log_level_set ? c->log_level : hd_log_level;
    hd_log_warn_interval_ms = c->warn_interval_ms;
    hd_metrics_set_top_hosts(dm->metrics, dm->d->top_hosts >= 0 ? (unsigned)dm->d->top_hosts
                                                                 : c->top_hosts);
    hd_ingestsrv_set_limits(dm->srv,
                            dm->d->max_queued >= 0 ? (uint64_t)dm->d->max_queued : c->max_queued,
                            c->retry_after_s);
}

static void reload(struct daemon *dm)
{
    char msg[HD_CONFIG_ERR_MAX + 256];
    int rc;

    if (!dm->holder) {
        HD_LOG(HD_LOG_WARN, "daemon", "msg=\"SIGHUP without --config: nothing to reload\"");
        return;
    }
    hd_notify("RELOADING=1");
    rc = hd_config_reload(dm->holder, msg, sizeof(msg));
    if (rc) {
        hd_metrics_add(dm->metrics, HD_METRICS_SHARDS - 2, HD_MC_RELOAD_ERRORS, 1);
        HD_LOG(HD_LOG_ERROR, "daemon", "msg=\"reload failed; keeping the old settings\" why=\"%s\"",
               msg);
    } else {
        hd_metrics_add(dm->metrics, HD_METRICS_SHARDS - 2, HD_MC_RELOADS, 1);
        apply_live(dm, hd_config_current(dm->holder));
        atomic_fetch_add(&dm->override_gen, 1);
        HD_LOG(HD_LOG_INFO, "daemon", "msg=\"%s\"", msg);
    }
    hd_notify("READY=1");
}

static void status(struct daemon *dm)
{
    char s[256];
    snprintf(s, sizeof(s),
             "STATUS=delivered %" PRIu64 ", retried %" PRIu64 ", dead %" PRIu64
             ", in flight %" PRId64 "%s",
             hd_metrics_counter(dm->metrics, HD_MC_DONE),
             hd_metrics_counter(dm->metrics, HD_MC_RETRY),
             hd_metrics_counter(dm->metrics, HD_MC_DEAD),
             hd_metrics_gauge(dm->metrics, HD_MG_IN_FLIGHT),
             atomic_load(&dm->draining) ? " (draining)" : "");
    hd_notify(s);
}

/* The operations thread: reloads on SIGHUP, starts the drain when the stop flag rises, and
 * keeps systemd's STATUS line current. Wakes every 100 ms: signals only set flags. */
static void *ops_main(void *arg)
{
    struct daemon *dm = arg;
    unsigned ticks = 0;

    while (!atomic_load(&dm->quit)) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (atomic_exchange_explicit(&g_hup, 0, memory_order_relaxed))
            reload(dm);
        if (atomic_load_explicit(dm->stop, memory_order_relaxed) && !atomic_load(&dm->draining)) {
            atomic_store(&dm->draining, 1);
            hd_ingestsrv_set_draining(dm->srv, 1);
            hd_notify("STOPPING=1");
            HD_LOG(HD_LOG_INFO, "daemon",
                   "msg=\"stopping: no new work; finishing requests in flight\"");
        }
        if (++ticks % 50 == 0)
            status(dm);
    }
    return NULL;
}

/* Fails early, before READY=1, when another `herald run` holds the store (hd_run takes the
 * lock itself; the probe lock is released at once). */
static int probe_run_lock(struct hd_store *st)
{
    char path[4096];
    int fd, rc = 0;

    snprintf(path, sizeof(path), "%s/run.lock", hd_store_dir(st));
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0; /* hd_run reports it */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0)
        rc = HD_ERR_BUSY;
    close(fd);
    return rc;
}

/* The endpoint's bearer token from token_file (NULL: none given), with a warning when others
 * may read the file. Returns 0 with *token malloc'd, or an error (logged). */
static int read_token(const char *token_file, char **token)
{
    struct stat sb;
    int rc;

    if (!token_file) {
        HD_LOG(HD_LOG_ERROR, "daemon",
               "msg=\"the ingest endpoint needs a bearer token: --token-file FILE\"");
        return HD_ERR_INVALID;
    }
    if (stat(token_file, &sb) == 0 && (sb.st_mode & 077))
        HD_LOG(HD_LOG_WARN, "daemon",
               "msg=\"the token file is readable by group or others; chmod 0400 it\" file=%s",
               token_file);
    rc = hd_ingestsrv_read_token(token_file, token);
    if (rc)
        HD_LOG(HD_LOG_ERROR, "daemon", "msg=\"cannot read the token file\" file=%s err=\"%s\"",
               token_file, rc == HD_ERR_INVALID ? "empty or over 4096 bytes" : hd_strerror(rc));
    return rc;
}

static void kick_run(void *user_data)
{
    hd_run_kick(user_data);
}

/* Starts the ingest endpoint when --listen or [ingest] listen names an address. */
static int start_endpoint(struct daemon *dm, const struct hd_config *c)
{
    struct hd_daemon_opts *d = dm->d;
    struct hd_ingestsrv_opts so;
    const char *listen[HD_CONFIG_MAX_LISTEN];
    const char *token_file = d->token_file ? d->token_file : c->token_file;
    char *token = NULL;
    size_t n = 0;
    int rc;

    if (d->nlisten) {
        for (size_t i = 0; i < d->nlisten; i++)
            listen[n++] = d->listen[i];
    } else {
        for (size_t i = 0; i < c->nlisten; i++)
            listen[n++] = c->listen[i];
    }
    if (n == 0)
        return 0;
    rc = read_token(token_file, &token);
    if (rc)
        return rc;
    memset(&so, 0, sizeof(so));
    so.listen = listen;
    so.nlisten = n;
    so.token = token;
    so.max_queued = d->max_queued >= 0 ? (uint64_t)d->max_queued : c->max_queued;
    so.retry_after_s = c->retry_after_s;
    so.max_body = c->max_body;
    so.metrics = dm->metrics;
    if (dm->cnode) { /* cluster mode: POST /v1/activities publishes to JetStream */
        so.publish = hd_daemon_cluster_publish;
        so.publish_ud = dm->cnode;
        so.publish_follow = hd_daemon_cluster_publish_follow; /* and follows, to their stream */
    } else if (dm->kick) {
        so.on_enqueued = kick_run;
        so.on_enqueued_ud = dm->kick;
    }
    rc = hd_ingestsrv_start(&dm->srv, dm->st, &so);
    memset(token, 0, strlen(token));
    free(token);
    return rc;
}

/* What the daemon adds to the run options: --resolve from the file when no flag gave one,
 * the metrics registry, the drain deadline and the per-host overrides of [host] sections. */
static void run_options(struct daemon *dm, const struct hd_config *c, struct hd_run_opts *ro)
{
    const struct hd_daemon_opts *d = dm->d;

    if (ro->nresolve == 0 && c->run.nresolve) {
        ro->resolve = c->run.resolve;
        ro->nresolve = c->run.nresolve;
    }
    ro->metrics = dm->metrics;
    ro->drain_timeout_ms = (unsigned)(d->drain_timeout_ms >= 0 ? (uint64_t)d->drain_timeout_ms
                                                                : c->drain_timeout_ms);
    if (ro->drain_timeout_ms == 0)
        ro->drain_timeout_ms = 1; /* 0 means "default" to the runner: exit at once instead */
    ro->host_override = host_override;
    ro->host_override_ud = dm;
    ro->override_gen = &dm->override_gen;
}

int hd_daemon_run(struct hd_store *st, const struct hd_run_opts *o, struct hd_daemon_opts *d,
                  _Atomic int *stop, struct hd_run_summary *sum)
{
    struct daemon dm;
    struct hd_run_opts ro = *o;
    struct hd_config defaults, *c;
    struct sigaction sa;
    int rc, ops_started = 0;

    memset(&dm, 0, sizeof(dm));
    dm.st = st;
    dm.d = d;
    dm.stop = stop;
    atomic_init(&dm.quit, 0);
    atomic_init(&dm.draining, 0);
    atomic_init(&dm.override_gen, 0);
    hd_config_defaults(&defaults);
    if (d->cfg) {
        rc = hd_config_holder_new(&dm.holder, d->cfg);
        if (rc)
            return rc;
        d->cfg = NULL; /* the holder owns it now */
    }
    c = dm.holder ? (struct hd_config *)hd_config_current(dm.holder) : &defaults;
    rc = hd_metrics_new(&dm.metrics);
    if (rc)
        goto out;
    run_options(&dm, c, &ro);

    rc = probe_run_lock(st);
    if (rc)
        goto out;
    rc = hd_daemon_cluster_start(st, d, &ro, &dm.cnode); /* --cluster: before the first send */
    if (rc)
        goto out;
    rc = hd_daemon_views_start(st, dm.metrics, dm.cnode, d->cluster.node, &dm.views);
    if (rc)
        goto out;
    if (!dm.cnode && hd_run_kick_new(&dm.kick) == 0)
        ro.kick = dm.kick; /* else new work is found by the runner's rescan */
    rc = start_endpoint(&dm, c);
    if (rc)
        goto out;
    apply_live(&dm, c);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_hup;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    rc = -pthread_create(&dm.tid, NULL, ops_main, &dm);
    if (rc) {
        /* Without it there is no reload, no drain and no endpoint back-pressure: refuse. */
        HD_LOG(HD_LOG_ERROR, "daemon", "msg=\"cannot start the operations thread\" err=\"%s\"",
               hd_strerror(rc));
        goto out;
    }
    ops_started = 1;

    hd_notify("READY=1\nSTATUS=delivering");
    HD_LOG(HD_LOG_INFO, "daemon", "msg=\"ready\" config=%s endpoint=%s",
           dm.holder ? hd_config_current(dm.holder)->path : "-", dm.srv ? "on" : "off");
    rc = hd_run(st, &ro, stop, sum);
    if (!atomic_load(&dm.draining))
        hd_notify("STOPPING=1");
out:
    hd_ingestsrv_stop(dm.srv); /* no envelope is published past this point */
    dm.srv = NULL;
    hd_daemon_views_stop(dm.views);
    hd_cluster_node_stop(dm.cnode, stderr); /* sends have stopped: checkpoints, then leases */
    if (ops_started) {
        atomic_store(&dm.quit, 1);
        pthread_join(dm.tid, NULL);
    }
    signal(SIGHUP, SIG_DFL);
    hd_ingestsrv_stop(dm.srv);
    hd_metrics_free(dm.metrics);
    hd_config_holder_free(dm.holder);
    hd_run_kick_free(dm.kick);
    return rc;
}
