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
#include "config.h"
#include "daemon.h"
#include "dns.h"
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

enum run_flag {
    O_UNTIL = 256, O_RESOLVE, O_PRIV, O_CA, O_THREADS, O_MAXH, O_CT, O_TT, O_RT, O_RB, O_RC,
    O_MA, O_PROG, O_WINIT, O_BREAK, O_PBASE, O_PMAX, O_RACAP, O_MAXAGE, O_DEADDAYS, O_DAYLEN,
    O_DEADPROBE, O_MAXACT, O_IDLE, O_MAXIDLE, O_MAXIDLEMEM, O_DEADQ, O_KEYCACHE, O_CSYNC_URL, O_CSYNC_FOL,
    O_SLOWN, O_SLOWAFTER,
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
    {"max-idle-conns", 1, 0, O_MAXIDLE},
    {"max-idle-memory", 1, 0, O_MAXIDLEMEM},
    {"dead-host-queue", 1, 0, O_DEADQ},
    {"key-cache", 1, 0, O_KEYCACHE},
    {"collection-sync-url", 1, 0, O_CSYNC_URL},
    {"collection-sync-followers", 1, 0, O_CSYNC_FOL},
    {"slow-hosts", 1, 0, O_SLOWN},
    {"slow-after", 1, 0, O_SLOWAFTER},
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

static const char run_usage[] =
    "usage: herald run [--until-idle] [--resolve HOST:PORT:ADDR]... [--allow-private-addresses]\n"
    "    [--ca-file PEM] [--threads N] [--max-inflight-host N] [--connect-timeout DUR]\n"
    "    [--tls-timeout DUR] [--response-timeout DUR] [--retry-base DUR] [--retry-cap DUR]\n"
    "    [--max-attempts N] [--max-age DUR] [--retry-after-cap DUR] [--window-init N]\n"
    "    [--breaker-threshold N] [--probe-base DUR] [--probe-max DUR] [--dead-days N]\n"
    "    [--day-length DUR] [--dead-probe DUR] [--dead-host-queue keep|expire]\n"
    "    [--max-active-hosts N] [--slow-hosts N] [--slow-after DUR] [--idle-timeout DUR]\n"
    "    [--max-idle-conns N] [--max-idle-memory SIZE] [--key-cache N] [--progress]\n"
    "    [--collection-sync-url TEMPLATE] [--collection-sync-followers TEMPLATE]\n"
    "    [--config FILE] [--listen unix:PATH|ADDR:PORT]... [--token-file FILE]\n"
    "    [--drain-timeout DUR] [--max-queued N] [--metrics-top-hosts N]\n"
    "    [--cluster nats://HOST:PORT --node NAME [--cluster-partitions N]\n"
    "     [--cluster-replicas N] [--cluster-lease DUR] [--cluster-creds FILE] [--cluster-ca PEM]]\n"
    "Delivers the queue. DUR is 250ms, 10s, 5m or 1h; a bare number is milliseconds.\n"
    "Flags override the --config file.\n";

#define DAY_MS 86400000ull

/* Applies flag c (an O_* value) with its argument optarg. Returns 0, or 2 after naming the
 * flag and what is wrong with its value. */
static int set_flag(struct hd_run_opts *o, struct hd_daemon_opts *dopt, const char **resolve,
                    int c)
{
    const char *name = run_flags[c - O_UNTIL].name, *why = NULL;
    uint64_t v = 0;
    int bad = 0;

    switch (c) {
    case O_UNTIL:
        o->until_idle = 1;
        break;
    case O_RESOLVE:
        bad = hd_dns_override_check(optarg) != 0;
        why = "HOST:PORT:ADDR[,ADDR...]";
        if (!bad)
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
        bad = hd_cli_uint(optarg, 0, 256, &v);
        why = "0 to 256";
        o->threads = (unsigned)v;
        break;
    case O_MAXH:
        bad = hd_cli_uint(optarg, 1, 100000, &v);
        why = "1 to 100000";
        o->max_inflight_host = (unsigned)v;
        o->hostpol.win_max = (unsigned)v;
        break;
    case O_WINIT:
        bad = hd_cli_uint(optarg, 1, 100000, &v);
        why = "1 to 100000";
        o->hostpol.win_init = (unsigned)v;
        break;
    case O_BREAK:
        bad = hd_cli_uint(optarg, 1, 100000, &v);
        why = "1 to 100000";
        o->hostpol.breaker_threshold = (unsigned)v;
        break;
    case O_PBASE:
        bad = hd_cli_duration(optarg, 1, 1, DAY_MS * 30, &v);
        why = "a duration from 1ms to 30 days";
        o->hostpol.probe_base_ms = v;
        break;
    case O_PMAX:
        bad = hd_cli_duration(optarg, 1, 1, DAY_MS * 30, &v);
        why = "a duration from 1ms to 30 days";
        o->hostpol.probe_max_ms = v;
        break;
    case O_RACAP:
        bad = hd_cli_duration(optarg, 1, 0, DAY_MS * 30, &v);
        why = "a duration up to 30 days";
        o->hostpol.retry_after_cap_ms = v;
        o->retry.retry_after_cap_ms = v;
        break;
    case O_MAXAGE:
        bad = hd_cli_duration(optarg, 1, 0, DAY_MS * 365, &v);
        why = "a duration up to 365 days; 0 means no limit";
        o->max_age_ms = v;
        break;
    case O_DEADDAYS:
        bad = hd_cli_uint(optarg, 1, 3650, &v);
        why = "1 to 3650";
        o->dead_days = (uint32_t)v;
        break;
    case O_DAYLEN:
        bad = hd_cli_duration(optarg, 1, 1, DAY_MS * 30, &v);
        why = "a duration from 1ms to 30 days";
        o->day_ms = v;
        break;
    case O_DEADPROBE:
        bad = hd_cli_duration(optarg, 1, 1, DAY_MS * 30, &v);
        why = "a duration from 1ms to 30 days";
        o->hostpol.dead_probe_ms = v;
        break;
    case O_DEADQ:
        bad = strcmp(optarg, "keep") != 0 && strcmp(optarg, "expire") != 0;
        why = "keep or expire";
        o->dead_queue_expire = strcmp(optarg, "expire") == 0;
        break;
    case O_MAXACT:
        bad = hd_cli_uint(optarg, 1, 1000000, &v);
        why = "1 to 1000000";
        o->max_active_hosts = (unsigned)v;
        break;
    case O_SLOWN:
        bad = hd_cli_uint(optarg, 0, 1000000, &v);
        why = "0 to 1000000";
        o->slow_hosts = (unsigned)v;
        break;
    case O_SLOWAFTER:
        bad = hd_cli_duration(optarg, 1, 1, 3600000, &v);
        why = "a duration from 1ms to 1h";
        o->slow_after_ms = (unsigned)v;
        break;
    case O_IDLE:
        bad = hd_cli_duration(optarg, 1, 1, 3600000, &v);
        why = "a duration from 1ms to 1h";
        o->idle_timeout_ms = (unsigned)v;
        break;
    case O_MAXIDLE:
        bad = hd_cli_uint(optarg, 0, 1000000, &v);
        why = "0 (no cap but --idle-timeout) to 1000000";
        o->max_idle_conns = (unsigned)v;
        break;
    case O_MAXIDLEMEM:
        bad = hd_config_parse_size(optarg, 1ull << 40, &v) != 0;
        why = "bytes with an optional k, M or G suffix, at most 1T (0: no cap by memory)";
        o->max_idle_memory = (size_t)v;
        break;
    case O_KEYCACHE:
        bad = hd_cli_uint(optarg, 1, 10000000, &v);
        why = "1 to 10000000";
        o->key_cache = (unsigned)v;
        break;
    case O_CSYNC_URL: /* FEP-8fcf (runner.h) */
        o->collection_sync_url = optarg;
        break;
    case O_CSYNC_FOL:
        o->collection_sync_followers = optarg;
        break;
    case O_CT:
        bad = hd_cli_duration(optarg, 1, 1, 3600000, &v);
        why = "a duration from 1ms to 1h";
        o->connect_timeout_ms = (unsigned)v;
        break;
    case O_TT:
        bad = hd_cli_duration(optarg, 1, 1, 3600000, &v);
        why = "a duration from 1ms to 1h";
        o->tls_timeout_ms = (unsigned)v;
        break;
    case O_RT:
        bad = hd_cli_duration(optarg, 1, 1, 3600000, &v);
        why = "a duration from 1ms to 1h";
        o->response_timeout_ms = (unsigned)v;
        break;
    case O_RB:
        bad = hd_cli_duration(optarg, 1, 0, DAY_MS * 30, &v);
        why = "a duration up to 30 days";
        o->retry.base_ms = v;
        break;
    case O_RC:
        bad = hd_cli_duration(optarg, 1, 0, DAY_MS * 30, &v);
        why = "a duration up to 30 days";
        o->retry.cap_ms = v;
        break;
    case O_MA:
        bad = hd_cli_uint(optarg, 1, 1000, &v);
        why = "1 to 1000";
        o->retry.max_attempts = (uint32_t)v;
        break;
    case O_DRAIN:
        bad = hd_cli_duration(optarg, 1, 0, 3600000, &v);
        why = "a duration up to 1h";
        if (!bad)
            bad = hd_daemon_opt(dopt, name, optarg) != 0;
        break;
    case O_CONFIG: /* the daemon's flags */
    case O_LISTEN:
    case O_TOKEN:
    case O_MAXQ:
    case O_TOPN:
    case O_CLUSTER:
    case O_NODE:
    case O_CCREDS:
    case O_CCA:
    case O_CPARTS:
    case O_CREPL:
    case O_CLEASE:
        bad = hd_daemon_opt(dopt, name, optarg) != 0;
        why = c == O_LISTEN ? "unix:PATH or ADDR:PORT, at most 8" : NULL;
        break;
    default:
        return HD_CLI_USAGE_EXIT;
    }
    return bad ? hd_cli_bad_value("run", name, optarg, why) : 0;
}

/* Reads the flags into o (after --config was loaded into it, so flags win) and the daemon's
 * own flags into dopt; --resolve values go to resolve (argc entries). Returns 0, or 2 after
 * saying what is wrong. */
static int parse_flags(int argc, char **argv, struct hd_run_opts *o, struct hd_daemon_opts *dopt,
                       const char **resolve)
{
    int c, rc;

    for (size_t i = 0; run_flags[i].name; i++)
        assert(run_flags[i].val == O_UNTIL + (int)i); /* error messages name flags by index */
    optind = 0;
    while ((c = hd_cli_getopt("run", run_usage, argc, argv, "", run_flags)) != -1) {
        if (c == '?')
            return HD_CLI_USAGE_EXIT;
        rc = set_flag(o, dopt, resolve, c);
        if (rc)
            return rc;
    }
    if (hd_cli_positional("run", run_usage, argc, argv, 0, 0))
        return HD_CLI_USAGE_EXIT;
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

    if (hd_cli_help(argc, argv, run_usage))
        return 0;
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
