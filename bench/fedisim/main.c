/* fedisim: command line, signals, ready file and reports. See bench/README.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conn.h"
#include "err.h"
#include "fedisim.h"
#include "log.h"
#include "profile.h"
#include "server.h"
#include "stats.h"
#include "verify.h"

/* Signal flags: the only mutable globals here, as STYLE.md allows. */
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_report;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        g_report = 1;
    else
        g_stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: fedisim [--tls-port P] [--tls-h1-port P] [--h2c-port P] [--h1-port P]\n"
               "               [--bind 127.0.0.1] --cert server.pem --key server.key\n"
               "               [--profiles FILE] [--keys FILE] [--verify all|none|sample:N]\n"
               "               [--expect FILE] [--report FILE] [--ready-file FILE]\n"
               "               [--max-seconds N] [--max-conns N] [--idle-timeout S] [--seed N]\n"
               "               [--log-level error|warn|info|debug] [--tls-ciphers LIST] [--quiet]\n"
               "               [--threads N] [--leaf-certs DIR] [--accept-log FILE]\n"
               "               [--ticket-key-file FILE]\n"
               "Port 0 picks an ephemeral port; the ready file says which.\n");
}

static int write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[4096];
    FILE *f;
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());

    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -ENAMETOOLONG;
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    if (fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        unlink(tmp);
        return -EIO;
    }
    if (rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    return 0;
}

static int write_report(struct fs_server *srv, const char *path)
{
    json_t *o;
    char *s;
    int rv;

    FS_LOCK(srv);
    o = fs_stats_report(&srv->stats, 50);
    FS_UNLOCK(srv);
    if (!o)
        return -ENOMEM;
    s = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return -ENOMEM;
    if (path) {
        size_t n = strlen(s);
        s[n] = '\n'; /* replaces the NUL; we write exactly n + 1 bytes */
        rv = write_atomic(path, s, n + 1);
    } else {
        printf("%s\n", s);
        fflush(stdout);
        rv = 0;
    }
    free(s);
    if (rv < 0)
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"cannot write report\" path=%s err=%d", path, rv);
    return rv;
}

static void port_json(char *buf, size_t cap, const struct fs_listener *l)
{
    if (l->fd >= 0)
        snprintf(buf, cap, "%d", l->port);
    else
        snprintf(buf, cap, "null");
}

static int write_ready(struct fs_server *srv, const char *path)
{
    char p[4][16], out[256];
    int n;

    for (int k = 0; k < FS_L_COUNT; k++)
        port_json(p[k], sizeof(p[k]), &srv->workers[0].lst[k]);
    n = snprintf(out, sizeof(out),
                 "{\"pid\":%d,\"tls_port\":%s,\"tls_h1_port\":%s,\"h2c_port\":%s,"
                 "\"h1_port\":%s}\n",
                 (int)getpid(), p[FS_L_TLS], p[FS_L_TLS_H1], p[FS_L_H2C], p[FS_L_H1]);
    return write_atomic(path, out, (size_t)n);
}

static int parse_port(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

/* A worker: runs its loop until the server stops, then closes its connections and lets
 * their completions drain for at most two seconds. */
static void *worker_main(void *arg)
{
    struct fs_worker *w = arg;
    uint64_t until;

    while (!__atomic_load_n(&w->srv->stopping, __ATOMIC_ACQUIRE)) {
        int rv = hd_loop_run_once(w->loop, 100);
        if (rv < 0) {
            HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"loop failed\" worker=%d err=%d", w->idx, rv);
            break;
        }
    }
    /* Flush what was counted (bounded by the 1 s drain), then force what is left. */
    fs_worker_stop(w, 0);
    until = hd_loop_update_now(w->loop) + 1500;
    while (!fs_worker_idle(w) && hd_loop_now_ms(w->loop) < until)
        if (hd_loop_run_once(w->loop, 50) < 0)
            break;
    fs_worker_stop(w, 1);
    until = hd_loop_update_now(w->loop) + 1000;
    while (!fs_worker_idle(w) && hd_loop_now_ms(w->loop) < until)
        if (hd_loop_run_once(w->loop, 50) < 0)
            break;
    fs_tls_thread_exit();
    return NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

enum {
    O_TLS = 256,
    O_TLS_H1,
    O_H2C,
    O_H1,
    O_BIND,
    O_CERT,
    O_KEY,
    O_PROFILES,
    O_KEYS,
    O_VERIFY,
    O_REPORT,
    O_READY,
    O_MAXSEC,
    O_QUIET,
    O_EXPECT,
    O_MAXCONNS,
    O_IDLE,
    O_SEED,
    O_LOG,
    O_HELP,
    O_CIPHERS,
    O_THREADS,
    O_LEAF,
    O_ACCLOG,
    O_TICKETKEY
};

static const struct option opts[] = {
    {"tls-port", required_argument, NULL, O_TLS},
    {"tls-h1-port", required_argument, NULL, O_TLS_H1},
    {"h2c-port", required_argument, NULL, O_H2C},
    {"h1-port", required_argument, NULL, O_H1},
    {"bind", required_argument, NULL, O_BIND},
    {"cert", required_argument, NULL, O_CERT},
    {"key", required_argument, NULL, O_KEY},
    {"profiles", required_argument, NULL, O_PROFILES},
    {"keys", required_argument, NULL, O_KEYS},
    {"verify", required_argument, NULL, O_VERIFY},
    {"report", required_argument, NULL, O_REPORT},
    {"ready-file", required_argument, NULL, O_READY},
    {"max-seconds", required_argument, NULL, O_MAXSEC},
    {"quiet", no_argument, NULL, O_QUIET},
    {"expect", required_argument, NULL, O_EXPECT},
    {"max-conns", required_argument, NULL, O_MAXCONNS},
    {"idle-timeout", required_argument, NULL, O_IDLE},
    {"seed", required_argument, NULL, O_SEED},
    {"log-level", required_argument, NULL, O_LOG},
    {"help", no_argument, NULL, O_HELP},
    {"tls-ciphers", required_argument, NULL, O_CIPHERS},
    {"threads", required_argument, NULL, O_THREADS},
    {"leaf-certs", required_argument, NULL, O_LEAF},
    {"accept-log", required_argument, NULL, O_ACCLOG},
    {"ticket-key-file", required_argument, NULL, O_TICKETKEY},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    struct fs_server srv;
    int ports[FS_L_COUNT] = {-1, -1, -1, -1};
    const char *bind_addr = "127.0.0.1", *cert = NULL, *key = NULL, *profiles = NULL;
    const char *ciphers = NULL, *leaf_dir = NULL, *accept_log = NULL, *ticket_key = NULL;
    const char *keys = NULL, *verify = NULL, *report = NULL, *ready = NULL, *expect = NULL;
    double max_seconds = 0;
    unsigned long max_conns = FS_MAX_CONNS_DEFAULT, idle_s = 120;
    uint64_t seed = 0x5eed, deadline = 0;
    struct sigaction sa;
    sigset_t block, old;
    pthread_t *tids = NULL;
    int c, rv, any = 0, exit_code = 1, nthreads = 1, started = 0;

    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.lock, NULL);
    fs_profiles_init(&srv.profiles);

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_TLS:
        case O_TLS_H1:
        case O_H2C:
        case O_H1:
            if (parse_port(optarg, &ports[c - O_TLS]) < 0) {
                fprintf(stderr, "fedisim: bad port '%s'\n", optarg);
                return 2;
            }
            break;
        case O_BIND:
            bind_addr = optarg;
            break;
        case O_CERT:
            cert = optarg;
            break;
        case O_KEY:
            key = optarg;
            break;
        case O_PROFILES:
            profiles = optarg;
            break;
        case O_KEYS:
            keys = optarg;
            break;
        case O_VERIFY:
            verify = optarg;
            break;
        case O_REPORT:
            report = optarg;
            break;
        case O_READY:
            ready = optarg;
            break;
        case O_MAXSEC:
            max_seconds = strtod(optarg, NULL);
            break;
        case O_QUIET:
            srv.quiet = 1;
            break;
        case O_EXPECT:
            expect = optarg;
            break;
        case O_MAXCONNS:
            max_conns = strtoul(optarg, NULL, 10);
            break;
        case O_IDLE:
            idle_s = strtoul(optarg, NULL, 10);
            break;
        case O_SEED:
            seed = strtoull(optarg, NULL, 0);
            break;
        case O_LOG:
            rv = hd_log_parse_level(optarg);
            if (rv < 0) {
                fprintf(stderr, "fedisim: bad log level '%s'\n", optarg);
                return 2;
            }
            hd_log_level = rv;
            break;
        case O_CIPHERS:
            ciphers = optarg;
            break;
        case O_ACCLOG:
            accept_log = optarg;
            break;
        case O_THREADS:
            nthreads = atoi(optarg);
            break;
        case O_LEAF:
            leaf_dir = optarg;
            break;
        case O_TICKETKEY:
            ticket_key = optarg;
            break;
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    for (int k = 0; k < FS_L_COUNT; k++)
        any |= ports[k] >= 0;
    if (!any) {
        fprintf(stderr, "fedisim: give at least one of --tls-port --tls-h1-port --h2c-port "
                        "--h1-port\n");
        return 2;
    }
    if ((ports[FS_L_TLS] >= 0 || ports[FS_L_TLS_H1] >= 0) && (!cert || !key)) {
        fprintf(stderr, "fedisim: TLS ports need --cert and --key\n");
        return 2;
    }
    if (ticket_key && ports[FS_L_TLS] < 0 && ports[FS_L_TLS_H1] < 0) {
        fprintf(stderr, "fedisim: --ticket-key-file needs a TLS port\n");
        return 2;
    }
    if (leaf_dir && ports[FS_L_TLS] < 0 && ports[FS_L_TLS_H1] < 0) {
        fprintf(stderr, "fedisim: --leaf-certs needs a TLS port\n");
        return 2;
    }
    if (nthreads < 1 || nthreads > 64) {
        fprintf(stderr, "fedisim: --threads must be 1..64\n");
        return 2;
    }
    if (srv.quiet && hd_log_level > HD_LOG_WARN)
        hd_log_level = HD_LOG_WARN;
    if (!max_conns)
        max_conns = FS_MAX_CONNS_DEFAULT;
    srv.idle_timeout_ms = (unsigned)(idle_s ? idle_s : 120) * 1000u;

    /* Each connection is one fd: raise the soft limit as far as the hard one allows. */
    {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }

    srv.verify_mode = keys ? FS_VERIFY_ALL : FS_VERIFY_NONE;
    srv.verify_sample = 1;
    if (verify) {
        if (strcmp(verify, "all") == 0) {
            srv.verify_mode = FS_VERIFY_ALL;
        } else if (strcmp(verify, "none") == 0) {
            srv.verify_mode = FS_VERIFY_NONE;
        } else if (strncmp(verify, "sample:", 7) == 0 && atoi(verify + 7) > 0) {
            srv.verify_mode = FS_VERIFY_SAMPLE;
            srv.verify_sample = (unsigned)atoi(verify + 7);
        } else {
            fprintf(stderr, "fedisim: bad --verify '%s'\n", verify);
            return 2;
        }
        if (srv.verify_mode != FS_VERIFY_NONE && !keys) {
            fprintf(stderr, "fedisim: --verify %s needs --keys\n", verify);
            return 2;
        }
    }

    srv.nworkers = nthreads;
    srv.workers = calloc((size_t)nthreads, sizeof(*srv.workers));
    tids = calloc((size_t)nthreads, sizeof(*tids));
    if (!srv.workers || !tids)
        goto out;
    for (int i = 0; i < nthreads; i++) {
        struct fs_worker *w = &srv.workers[i];
        w->srv = &srv;
        w->idx = i;
        w->max_conns = (max_conns + (unsigned long)nthreads - 1) / (unsigned long)nthreads;
        fs_rng_seed(&w->rng, seed + (uint64_t)i * 0x9e3779b97f4a7c15ULL);
        for (int k = 0; k < FS_L_COUNT; k++)
            w->lst[k].fd = -1;
    }

    rv = fs_stats_init(&srv.stats, (size_t)1 << 25, 100000);
    if (rv < 0)
        goto out;
    if (profiles && fs_profiles_load(&srv.profiles, profiles) < 0)
        goto out;
    if (expect && fs_stats_load_expect(&srv.stats, expect) < 0)
        goto out;
    if (accept_log) {
        int fd = open(accept_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        srv.accept_log = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!srv.accept_log) {
            fprintf(stderr, "fedisim: cannot open accept log %s: %s\n", accept_log, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        setvbuf(srv.accept_log, NULL, _IOFBF, 1 << 16);
    }
    if ((ports[FS_L_TLS] >= 0 || ports[FS_L_TLS_H1] >= 0) &&
        fs_server_tls_init(&srv, cert, key, ciphers) < 0)
        goto out;
    if (leaf_dir && fs_server_leaf_init(&srv, leaf_dir, ciphers) < 0)
        goto out;
    if (ticket_key && fs_server_ticket_key(&srv, ticket_key) < 0)
        goto out;
    for (int i = 0; i < nthreads; i++) {
        struct fs_worker *w = &srv.workers[i];
        if (keys) {
            rv = fs_verifier_new(&w->verifier, keys);
            if (rv < 0)
                goto out;
        }
        rv = hd_loop_new(&w->loop, 4096);
        if (rv < 0) {
            fprintf(stderr, "fedisim: io_uring unavailable: %s\n", hd_strerror(rv));
            exit_code = 77;
            goto out;
        }
        for (int k = 0; k < FS_L_COUNT; k++) {
            if (ports[k] < 0)
                continue;
            /* Worker 0 picks the port (maybe ephemeral); the others join it. */
            int port = i == 0 ? ports[k] : srv.workers[0].lst[k].port;
            rv = fs_worker_listen(w, (enum fs_lkind)k, bind_addr, port, nthreads > 1);
            if (rv < 0) {
                fprintf(stderr, "fedisim: cannot listen on %s:%d: %s\n", bind_addr, port,
                        hd_strerror(rv));
                goto out;
            }
        }
        if (fs_worker_start(w) < 0)
            goto out;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Signals go to the main thread only: workers start with them blocked. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (; started < nthreads; started++)
        if (pthread_create(&tids[started], NULL, worker_main, &srv.workers[started]) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < nthreads) {
        fprintf(stderr, "fedisim: cannot start worker threads\n");
        goto stop;
    }

    if (ready && write_ready(&srv, ready) < 0) {
        fprintf(stderr, "fedisim: cannot write ready file %s\n", ready);
        goto stop;
    }
    if (!srv.quiet) {
        const struct fs_worker *w0 = &srv.workers[0];
        HD_LOG(HD_LOG_INFO, "fedisim",
               "msg=listening tls=%d tls_h1=%d h2c=%d h1=%d keys=%zu profiles=%zu threads=%d "
               "leaf_certs=%u",
               w0->lst[FS_L_TLS].fd >= 0 ? w0->lst[FS_L_TLS].port : -1,
               w0->lst[FS_L_TLS_H1].fd >= 0 ? w0->lst[FS_L_TLS_H1].port : -1,
               w0->lst[FS_L_H2C].fd >= 0 ? w0->lst[FS_L_H2C].port : -1,
               w0->lst[FS_L_H1].fd >= 0 ? w0->lst[FS_L_H1].port : -1,
               fs_verifier_nkeys(w0->verifier), srv.profiles.n, nthreads, srv.nleaf);
    }

    if (max_seconds > 0)
        deadline = now_ms() + (uint64_t)(max_seconds * 1000.0);
    while (!g_stop) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL); /* a signal cuts it short */
        if (g_report) {
            g_report = 0;
            write_report(&srv, report);
        }
        if (deadline && now_ms() >= deadline)
            break;
    }
    exit_code = 0;
stop:
    __atomic_store_n(&srv.stopping, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    if (exit_code == 0)
        exit_code = write_report(&srv, report) < 0 ? 1 : 0;
    else
        write_report(&srv, report);
out:
    for (int i = 0; srv.workers && i < nthreads; i++)
        fs_worker_fini(&srv.workers[i]);
    fs_server_fini(&srv);
    if (srv.accept_log && fclose(srv.accept_log) != 0 && exit_code == 0)
        exit_code = 1;
    free(srv.workers);
    free(tids);
    pthread_mutex_destroy(&srv.lock);
    return exit_code;
}
