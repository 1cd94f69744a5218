/* `herald run` (see cli_run.h): flags into run options, signals into the stop flag. */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "cli_util.h"
#include "daemon.h"
#include "err.h"
#include "queue.h"
#include "runner.h"
#include "store.h"

/* The stop flag, set by the signal handler and read by the loop threads: a lock-free atomic
 * (async-signal-safe). Signal flags are the one kind of mutable global STYLE allows. */
static _Atomic int g_stop;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag must be lock-free");

static void on_signal(int sig)
{
    (void)sig;
    atomic_store_explicit(&g_stop, 1, memory_order_relaxed);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *e;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &e, 10);
    if (errno || *e || e == s || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

enum run_flag {
    O_UNTIL = 256, O_RESOLVE, O_PRIV, O_CA, O_THREADS, O_MAXH, O_CT, O_TT, O_RT, O_RB, O_RC,
    O_MA, O_PROG, O_WINIT, O_BREAK, O_PBASE, O_PMAX, O_RACAP, O_MAXAGE, O_DEADDAYS, O_DAYLEN,
    O_DEADPROBE, O_MAXACT, O_IDLE, O_DEADQ, O_KEYCACHE,
    O_CONFIG, O_LISTEN, O_TOKEN, O_DRAIN, O_MAXQ, O_TOPN, /* handed to the daemon (daemon.h) */
    O_CLUSTER, O_NODE, O_CCREDS, O_CCA, O_CPARTS, O_CREPL, O_CLEASE /* the daemon's, cluster */
};

/* In the order of enum run_flag: run_flags[c - O_UNTIL] is flag c. */
static const struct option run_flags[] = {
    {"until-idle", 0, 0, O_UNTIL},
    {"resolve", 1, 0, O_RESOLVE},
    {"allow-private-addresses", 0, 0, O_PRIV},
    {"ca-file", 1, 0, O_CA},
    {"threads", 1, 0, O_THREADS},
    {"max-inflight-host", 1, 0, O_MAXH},
    {"connect-timeout", 1, 0, O_CT},
    {"tls-timeout", 1, 0, O_TT},
    {"response-timeout", 1, 0, O_RT},
    {"retry-base", 1, 0, O_RB},
    {"retry-cap", 1, 0, O_RC},
    {"max-attempts", 1, 0, O_MA},
    {"progress", 0, 0, O_PROG},
    {"window-init", 1, 0, O_WINIT},
    {"breaker-threshold", 1, 0, O_BREAK},
    {"probe-base", 1, 0, O_PBASE},
    {"probe-max", 1, 0, O_PMAX},
    {"retry-after-cap", 1, 0, O_RACAP},
    {"max-age", 1, 0, O_MAXAGE},
    {"dead-days", 1, 0, O_DEADDAYS},
    {"day-length", 1, 0, O_DAYLEN},
    {"dead-probe", 1, 0, O_DEADPROBE},
    {"max-active-hosts", 1, 0, O_MAXACT},
    {"idle-timeout", 1, 0, O_IDLE},
    {"dead-host-queue", 1, 0, O_DEADQ},
    {"key-cache", 1, 0, O_KEYCACHE},
    {"config", 1, 0, O_CONFIG},
    {"listen", 1, 0, O_LISTEN},
    {"token-file", 1, 0, O_TOKEN},
    {"drain-timeout", 1, 0, O_DRAIN},
    {"max-queued", 1, 0, O_MAXQ},
    {"metrics-top-hosts", 1, 0, O_TOPN},
    {"cluster", 1, 0, O_CLUSTER},
    {"node", 1, 0, O_NODE},
    {"cluster-creds", 1, 0, O_CCREDS},
    {"cluster-ca", 1, 0, O_CCA},
    {"cluster-partitions", 1, 0, O_CPARTS},
    {"cluster-replicas", 1, 0, O_CREPL},
    {"cluster-lease", 1, 0, O_CLEASE},
    {0, 0, 0, 0},
};

/* Applies flag c (an O_* value) with its argument optarg. Returns 0, 1 for a bad value, or
 * -1 for an unknown flag (getopt has said why). */
static int set_flag(struct hd_run_opts *o, struct hd_daemon_opts *dopt, const char **resolve,
                    int c)
{
    unsigned long long v = 0;
    int bad = 0;

    switch (c) {
    case O_UNTIL:
        o->until_idle = 1;
        break;
    case O_RESOLVE:
        resolve[o->nresolve++] = optarg;
        break;
    case O_PRIV:
        o->allow_private = 1;
        break;
    case O_CA:
        o->ca_file = optarg;
        break;
    case O_PROG:
        o->progress = 1;
        break;
    case O_THREADS:
        bad = parse_uint(optarg, 256, &v);
        o->threads = (unsigned)v;
        break;
    case O_MAXH:
        bad = parse_uint(optarg, 100000, &v) || v == 0;
        o->max_inflight_host = (unsigned)v;
        o->hostpol.win_max = (unsigned)v;
        break;
    case O_WINIT:
        bad = parse_uint(optarg, 100000, &v) || v == 0;
        o->hostpol.win_init = (unsigned)v;
        break;
    case O_BREAK:
        bad = parse_uint(optarg, 100000, &v) || v == 0;
        o->hostpol.breaker_threshold = (unsigned)v;
        break;
    case O_PBASE:
        bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
        o->hostpol.probe_base_ms = v;
        break;
    case O_PMAX:
        bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
        o->hostpol.probe_max_ms = v;
        break;
    case O_RACAP:
        bad = parse_uint(optarg, 86400000ull * 30, &v);
        o->hostpol.retry_after_cap_ms = v;
        o->retry.retry_after_cap_ms = v;
        break;
    case O_MAXAGE:
        bad = parse_uint(optarg, 86400000ull * 365, &v);
        o->max_age_ms = v;
        break;
    case O_DEADDAYS:
        bad = parse_uint(optarg, 3650, &v) || v == 0;
        o->dead_days = (uint32_t)v;
        break;
    case O_DAYLEN:
        bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
        o->day_ms = v;
        break;
    case O_DEADPROBE:
        bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
        o->hostpol.dead_probe_ms = v;
        break;
    case O_DEADQ:
        bad = strcmp(optarg, "keep") != 0 && strcmp(optarg, "expire") != 0;
        o->dead_queue_expire = strcmp(optarg, "expire") == 0;
        break;
    case O_MAXACT:
        bad = parse_uint(optarg, 1000000, &v) || v == 0;
        o->max_active_hosts = (unsigned)v;
        break;
    case O_IDLE:
        bad = parse_uint(optarg, 3600000, &v) || v == 0;
        o->idle_timeout_ms = (unsigned)v;
        break;
    case O_KEYCACHE:
        bad = parse_uint(optarg, 10000000, &v) || v == 0;
        o->key_cache = (unsigned)v;
        break;
    case O_CT:
        bad = parse_uint(optarg, 3600000, &v) || v == 0;
        o->connect_timeout_ms = (unsigned)v;
        break;
    case O_TT:
        bad = parse_uint(optarg, 3600000, &v) || v == 0;
        o->tls_timeout_ms = (unsigned)v;
        break;
    case O_RT:
        bad = parse_uint(optarg, 3600000, &v) || v == 0;
        o->response_timeout_ms = (unsigned)v;
        break;
    case O_RB:
        bad = parse_uint(optarg, 86400000ull * 30, &v);
        o->retry.base_ms = v;
        break;
    case O_RC:
        bad = parse_uint(optarg, 86400000ull * 30, &v);
        o->retry.cap_ms = v;
        break;
    case O_MA:
        bad = parse_uint(optarg, 1000, &v) || v == 0;
        o->retry.max_attempts = (uint32_t)v;
        break;
    case O_CONFIG: /* the daemon's flags */
    case O_LISTEN:
    case O_TOKEN:
    case O_DRAIN:
    case O_MAXQ:
    case O_TOPN:
    case O_CLUSTER:
    case O_NODE:
    case O_CCREDS:
    case O_CCA:
    case O_CPARTS:
    case O_CREPL:
    case O_CLEASE:
        bad = hd_daemon_opt(dopt, run_flags[c - O_UNTIL].name, optarg) != 0;
        break;
    default:
        return -1;
    }
    return bad ? 1 : 0;
}

/* Reads the flags into o (after --config was loaded into it, so flags win) and the daemon's
 * own flags into dopt; --resolve values go to resolve (argc entries). Returns 0, or 2 after
 * saying what is wrong. */
static int parse_flags(int argc, char **argv, struct hd_run_opts *o, struct hd_daemon_opts *dopt,
                       const char **resolve)
{
    int c, bad;

    for (size_t i = 0; run_flags[i].name; i++)
        assert(run_flags[i].val == O_UNTIL + (int)i); /* error messages name flags by index */
    optind = 1;
    while ((c = getopt_long(argc, argv, "", run_flags, NULL)) != -1) {
        bad = set_flag(o, dopt, resolve, c);
        if (bad < 0)
            return 2;
        if (bad) {
            fprintf(stderr, "herald run: invalid value for --%s: %s\n",
                    run_flags[c - O_UNTIL].name, optarg);
            return 2;
        }
    }
    o->resolve = resolve;
    return 0;
}

/* The closing line on stderr: what this run did, and what is left in the store. */
static void print_summary(struct hd_store *st, const struct hd_run_summary *sum)
{
    struct hd_txn *txn;
    struct hd_counters cn;
    struct hd_host_sum hs = {0, 0, 0};

    if (hd_store_begin(st, 0, &txn) == 0) {
        if (hd_counters_get(st, txn, &cn) != 0 || hd_host_sum(st, txn, &hs) != 0)
            memset(&hs, 0, sizeof(hs));
        hd_store_abort(txn);
    }
    fprintf(stderr,
            "summary: delivered=%" PRIu64 " retried=%" PRIu64 " dead=%" PRIu64
            " attempts=%" PRIu64 " seconds=%.2f rate=%.0f/s cpu_s=%.2f"
            " cpu_ms_per_delivery=%.3f max_rss_mb=%.1f still_queued=%" PRIu64
            " waiting_retry=%" PRIu64 " signs=%" PRIu64 " sign_cpu_s=%.3f sign_us=%.2f\n",
            sum->done, sum->retried, sum->dead, sum->attempts, sum->seconds,
            sum->seconds > 0 ? (double)sum->done / sum->seconds : 0.0, sum->cpu_seconds,
            sum->attempts ? sum->cpu_seconds * 1000.0 / (double)sum->attempts : 0.0,
            (double)sum->max_rss_kb / 1024.0, hs.queued, hs.retrying, sum->signs,
            sum->sign_cpu_seconds,
            sum->signs ? sum->sign_cpu_seconds * 1e6 / (double)sum->signs : 0.0);
}

int hd_cli_run(const char *db, int argc, char **argv)
{
    struct hd_run_opts o;
    struct hd_daemon_opts dopt;
    struct hd_run_summary sum;
    struct hd_store *st;
    const char **resolve;
    int rc;

    hd_run_opts_default(&o);
    o.progress = isatty(2);
    hd_daemon_opts_init(&dopt);
    if (hd_daemon_preload(&dopt, argc, argv, &o) != 0) /* --config first: the flags override it */
        return 2;
    resolve = calloc((size_t)argc + 1, sizeof(char *));
    if (!resolve) {
        hd_daemon_opts_fini(&dopt);
        return 1;
    }
    rc = parse_flags(argc, argv, &o, &dopt, resolve);
    if (rc)
        goto out;
    rc = 1;
    if (hd_cli_open_store(db, &st, NULL))
        goto out;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = hd_daemon_run(st, &o, &dopt, &g_stop, &sum); /* hd_run, config, endpoint, signals */
    if (rc == HD_ERR_BUSY)
        fprintf(stderr, "herald run: another herald run is using the store %s\n", db);
    else if (rc)
        fprintf(stderr, "herald run: %s\n", hd_strerror(rc));
    else
        print_summary(st, &sum);
    hd_store_close(st);
    rc = rc ? 1 : 0;
out:
    hd_daemon_opts_fini(&dopt);
    free(resolve);
    return rc;
}
