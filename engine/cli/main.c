/* herald: command-line entry. Wiring only: every subcommand calls engine functions. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "clock.h"
#include "cli_follow.h"
#include "cli_block.h"
#include "cli_host.h"
#include "cli_sign.h"
#include "cli_top.h"
#include "daemon.h"
#include "err.h"
#include "hostctl.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "log.h"
#include "queue.h"
#include "runner.h"
#include "sign.h"
#include "store.h"

/* Set by the signal handler, read by the loop threads: a lock-free atomic (async-signal-safe). */
static _Atomic int g_stop;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag must be lock-free");

static void on_signal(int sig)
{
    (void)sig;
    atomic_store_explicit(&g_stop, 1, memory_order_relaxed);
}

static const char usage_text[] =
    "usage: herald [--db DIR] [--log-level error|warn|info|debug] COMMAND ...\n"
    "\n"
    "Commands:\n"
    "  key add --key-id URL --actor URL --pem FILE   store an actor's signing key (RSA >= 2048)\n"
    "  key list [--json]                             key ids and actors (never key material)\n"
    "  key export-public                             JSON lines {key_id, actor, public_pem}\n"
    "  actor set --actor URL --federation all|public|none\n"
    "  follow add --actor A --follower F --inbox I [--shared-inbox S] | remove --actor A\n"
    "      --follower F | import [FILE|-] (JSON lines or CSV) | list --actor A [--count]\n"
    "  enqueue [FILE|-]                              JSON-lines envelopes; one result line each\n"
    "  run [--until-idle] [--resolve HOST:PORT:ADDR]... [--allow-private-addresses]\n"
    "      [--ca-file PEM] [--threads N] [--max-inflight-host N] [--connect-timeout MS]\n"
    "      [--tls-timeout MS] [--response-timeout MS] [--retry-base MS] [--retry-cap MS]\n"
    "      [--max-attempts N] [--max-age MS] [--retry-after-cap MS] [--window-init N]\n"
    "      [--breaker-threshold N] [--probe-base MS] [--probe-max MS] [--dead-days N]\n"
    "      [--day-length MS] [--dead-probe MS] [--dead-host-queue keep|expire]\n"
    "      [--max-active-hosts N] [--idle-timeout MS] [--key-cache N]\n"
    "      [--progress]\n"
    "      [--config FILE] [--listen unix:PATH|ADDR:PORT]... [--token-file FILE]\n"
    "      [--drain-timeout DUR] [--max-queued N] [--metrics-top-hosts N]\n"
    "  stats [--json]                                counts, per host queue and failures\n"
    "  top [--listen unix:PATH|ADDR:PORT | --config FILE] [--interval SEC] [--limit N]\n"
    "      [--sort backlog|rate|p99|failed|inflight|host] [--once]   live view of hosts\n"
    "  sign --pem FILE --key-id ID --method M --url URL [--header \"Name: value\"]...\n"
    "       [--body FILE] [--components \"(request-target) host date ...\"]\n"
    "  block add DOMAIN --severity suspend|silence|noop [--comment TEXT] [--reject-media]\n"
    "      [--reject-reports] [--obfuscate] | remove DOMAIN | list [--json]\n"
    "  block import FILE|- | export                 Mastodon CSV (#domain,#severity,...)\n"
    "  allow add|remove DOMAIN | list [--json]      domains allowed in allowlist mode\n"
    "  federation mode [allowlist|open [--force]]   show or set the federation mode\n"
    "  host list [--sort backlog|failures|latency] [--json] | show HOST [--json]\n"
    "  host pause|resume|reset HOST | set HOST [--max-inflight N] [--rate R]\n"
    "  dead list [--json] [--host HOST] | retry [--host HOST] | purge [--host HOST]\n"
    "  gone list [--json]                            inboxes that answered 404/410\n"
    "  version\n"
    "\n"
    "--db defaults to $HERALD_DB, else ./herald-db.\n";

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

static char *read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    size_t n = 0, cap = 4096;

    if (!f)
        return NULL;
    buf = malloc(cap);
    while (buf) {
        size_t r;
        if (n == cap) {
            char *p;
            if (cap >= max) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            cap *= 2;
            p = realloc(buf, cap);
            if (!p) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (f != stdin)
        fclose(f);
    if (buf)
        *len = n;
    return buf;
}

/* ------------------------------------------------------------------ key */

static int print_key(const struct hd_key_info *k, void *ud)
{
    int json = *(int *)ud;
    const char *t = k->type == HD_KEY_ED25519 ? "ed25519" : "rsa";
    if (json)
        printf("{\"key_id\":\"%.*s\",\"actor\":\"%.*s\",\"type\":\"%s\",\"bits\":%u}\n",
               (int)k->key_id.n, k->key_id.p, (int)k->actor.n, k->actor.p, t, k->bits);
    else
        printf("%.*s\t%.*s\t%s-%u\n", (int)k->key_id.n, k->key_id.p, (int)k->actor.n,
               k->actor.p, t, k->bits);
    return 0;
}

struct export_ctx {
    struct hd_store *st;
    int rc;
};

static int export_key(const struct hd_key_info *k, void *ud)
{
    struct export_ctx *x = ud;
    struct hd_txn *txn;
    struct hd_slice pem;
    char kid[1024], pub[8192];
    int type;
    unsigned bits;
    json_t *o;
    char *s;

    snprintf(kid, sizeof(kid), "%.*s", (int)k->key_id.n, k->key_id.p);
    if (hd_store_begin(x->st, 0, &txn) != 0)
        return x->rc = 1;
    if (hd_keys_get_pem(x->st, txn, kid, &pem) != 0 ||
        hd_key_inspect(pem.p, pem.n, &type, &bits, pub, sizeof(pub)) != 0) {
        hd_store_abort(txn);
        fprintf(stderr, "herald: cannot export key %s\n", kid);
        x->rc = 1;
        return 0;
    }
    hd_store_abort(txn);
    o = json_pack("{s:s, s:s%, s:s}", "key_id", kid, "actor", k->actor.p, k->actor.n,
                  "public_pem", pub);
    s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
    return 0;
}

static int cmd_key(const char *db, int argc, char **argv)
{
    struct hd_store *st;
    int rc = 0;

    if (argc < 2) {
        fprintf(stderr, "herald key: expected add, list or export-public\n");
        return 2;
    }
    if (strcmp(argv[1], "add") == 0) {
        static const struct option lo[] = {{"key-id", 1, 0, 'k'},
                                           {"actor", 1, 0, 'a'},
                                           {"pem", 1, 0, 'p'},
                                           {0, 0, 0, 0}};
        const char *kid = NULL, *actor = NULL, *pemf = NULL, *why = NULL;
        char *pem;
        size_t len;
        int c;
        optind = 1;
        while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
            if (c == 'k')
                kid = optarg;
            else if (c == 'a')
                actor = optarg;
            else if (c == 'p')
                pemf = optarg;
            else
                return 2;
        }
        if (!kid || !actor || !pemf) {
            fprintf(stderr, "herald key add: --key-id, --actor and --pem are required\n");
            return 2;
        }
        pem = read_file(pemf, 1 << 20, &len);
        if (!pem) {
            fprintf(stderr, "herald key add: cannot read %s: %s\n", pemf, strerror(errno));
            return 1;
        }
        if (hd_cli_open_store(db, &st, NULL)) {
            free(pem);
            return 1;
        }
        rc = hd_keys_add(st, kid, actor, pem, len, &why);
        memset(pem, 0, len);
        free(pem);
        hd_store_close(st);
        if (rc) {
            fprintf(stderr, "herald key add: %s\n", why ? why : hd_strerror(rc));
            return 1;
        }
        printf("added key %s for %s\n", kid, actor);
        return 0;
    }
    if (strcmp(argv[1], "list") == 0) {
        int json = argc > 2 && strcmp(argv[2], "--json") == 0;
        if (hd_cli_open_store(db, &st, NULL))
            return 1;
        rc = hd_keys_list(st, print_key, &json);
        hd_store_close(st);
        return rc ? 1 : 0;
    }
    if (strcmp(argv[1], "export-public") == 0) {
        struct export_ctx x = {NULL, 0};
        if (hd_cli_open_store(db, &st, NULL))
            return 1;
        x.st = st;
        rc = hd_keys_list(st, export_key, &x);
        hd_store_close(st);
        return rc || x.rc ? 1 : 0;
    }
    fprintf(stderr, "herald key: unknown subcommand %s\n", argv[1]);
    return 2;
}

/* ------------------------------------------------------------------ actor */

static int cmd_actor(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {
        {"actor", 1, 0, 'a'}, {"federation", 1, 0, 'f'}, {0, 0, 0, 0}};
    const char *actor = NULL, *fed = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    int c, f, rc;

    if (argc < 2 || strcmp(argv[1], "set") != 0) {
        fprintf(stderr, "herald actor: expected set\n");
        return 2;
    }
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "", lo, NULL)) != -1) {
        if (c == 'a')
            actor = optarg;
        else if (c == 'f')
            fed = optarg;
        else
            return 2;
    }
    if (!actor || !fed) {
        fprintf(stderr, "herald actor set: --actor and --federation are required\n");
        return 2;
    }
    if (!strcmp(fed, "all"))
        f = HD_FED_ALL;
    else if (!strcmp(fed, "public"))
        f = HD_FED_PUBLIC;
    else if (!strcmp(fed, "none"))
        f = HD_FED_NONE;
    else {
        fprintf(stderr, "herald actor set: --federation must be all, public or none\n");
        return 2;
    }
    if (hd_cli_open_store(db, &st, NULL))
        return 1;
    rc = hd_store_begin(st, 1, &txn);
    if (!rc)
        rc = hd_actor_set_federation(st, txn, actor, f);
    if (!rc)
        rc = hd_store_commit(txn);
    else
        hd_store_abort(txn);
    hd_store_close(st);
    if (rc) {
        fprintf(stderr, "herald actor set: %s\n", hd_strerror(rc));
        return 1;
    }
    printf("actor %s federation %s\n", actor, fed);
    return 0;
}

/* ------------------------------------------------------------------ enqueue */

struct pending_line {
    size_t lineno;
    struct hd_ingest_result res;
};

static void print_result(const struct pending_line *p, int committed)
{
    if (p->res.rc == 0 && committed) {
        if (p->res.refused_rules) /* inboxes refused by defederation rules (block, allow) */
            printf("{\"line\":%zu,\"ok\":true,\"seq\":%" PRIu64
                   ",\"deliveries\":%zu,\"refused_by_rules\":%zu}\n",
                   p->lineno, p->res.seq, p->res.deliveries, p->res.refused_rules);
        else
            printf("{\"line\":%zu,\"ok\":true,\"seq\":%" PRIu64 ",\"deliveries\":%zu}\n",
                   p->lineno, p->res.seq, p->res.deliveries);
    } else {
        json_t *o = json_pack("{s:I, s:b, s:s}", "line", (json_int_t)p->lineno, "ok", 0, "error",
                              committed ? p->res.why : "store commit failed; line not stored");
        char *s;
        if (o && p->res.rc == HD_ERR_DUPLICATE)
            json_object_set_new(o, "duplicate_of", json_integer((json_int_t)p->res.seq));
        if (o && p->res.withheld)
            json_object_set_new(o, "withheld", json_true());
        s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    }
}

/* More input can be read without waiting? (Regular files: always. Pipes and terminals: only
 * if the descriptor is readable now; data already in stdio's buffer is simply read in the next
 * group.) */
static int input_ready(FILE *f)
{
    struct pollfd p = {.fd = fileno(f), .events = POLLIN};
    struct stat sb;
    if (fstat(p.fd, &sb) == 0 && S_ISREG(sb.st_mode))
        return 1;
    return poll(&p, 1, 0) > 0;
}

#define ENQUEUE_GROUP 256

/* Lines are read first, in groups of up to 256 (a group also ends when the producer pauses),
 * and only then processed in one write transaction: each line is a nested transaction, so a
 * refused line changes nothing. Results are printed after the group commits, so a printed
 * seq is always durable. No transaction is open while waiting for input: a slow producer
 * never blocks the store for the running engine or other commands. */
static int cmd_enqueue(const char *db, int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "-";
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    struct hd_store *st;
    struct pending_line *pend;
    char **lines;
    size_t *caps, *lens, lineno = 0, npend = 0, refused = 0;
    ssize_t n;
    int rc = 0, eof = 0;

    if (!f) {
        fprintf(stderr, "herald enqueue: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (hd_cli_open_store(db, &st, NULL)) {
        if (f != stdin)
            fclose(f);
        return 1;
    }
    pend = calloc(ENQUEUE_GROUP, sizeof(*pend));
    lines = calloc(ENQUEUE_GROUP, sizeof(*lines));
    caps = calloc(ENQUEUE_GROUP, sizeof(*caps));
    lens = calloc(ENQUEUE_GROUP, sizeof(*lens));
    while (pend && lines && caps && lens && !eof) {
        struct hd_txn *txn;
        struct hd_counters c;

        npend = 0;
        while (npend < ENQUEUE_GROUP) {
            n = getline(&lines[npend], &caps[npend], f);
            if (n < 0) {
                eof = 1;
                break;
            }
            lineno++;
            while (n > 0 && (lines[npend][n - 1] == '\n' || lines[npend][n - 1] == '\r'))
                lines[npend][--n] = 0;
            if (n == 0)
                continue; /* blank lines are not envelopes */
            pend[npend].lineno = lineno;
            lens[npend] = (size_t)n;
            npend++;
            if (!input_ready(f))
                break; /* the producer paused: answer what we have */
        }
        if (!npend)
            continue;
        rc = hd_store_begin(st, 1, &txn);
        if (!rc)
            rc = hd_counters_get(st, txn, &c);
        if (rc) {
            fprintf(stderr, "herald enqueue: store error: %s\n", hd_strerror(rc));
            hd_store_abort(txn);
            break;
        }
        for (size_t i = 0; i < npend; i++)
            hd_ingest_envelope(st, txn, &c, lines[i], lens[i], hd_wall_ms(), &pend[i].res);
        rc = hd_counters_put(st, txn, &c);
        if (!rc)
            rc = hd_store_commit(txn);
        else
            hd_store_abort(txn);
        for (size_t i = 0; i < npend; i++) {
            print_result(&pend[i], rc == 0);
            if (pend[i].res.rc || rc)
                refused++;
        }
        fflush(stdout);
        if (rc)
            break;
    }
    for (size_t i = 0; lines && i < ENQUEUE_GROUP; i++)
        free(lines[i]);
    free(lines);
    free(caps);
    free(lens);
    free(pend);
    if (f != stdin)
        fclose(f);
    hd_store_close(st);
    if (rc)
        return 1;
    return refused ? 1 : 0;
}

/* ------------------------------------------------------------------ run */

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

static int cmd_run(const char *db, int argc, char **argv)
{
    enum {
        O_UNTIL = 256, O_RESOLVE, O_PRIV, O_CA, O_THREADS, O_MAXH, O_CT, O_TT, O_RT, O_RB, O_RC,
        O_MA, O_PROG, O_WINIT, O_BREAK, O_PBASE, O_PMAX, O_RACAP, O_MAXAGE, O_DEADDAYS, O_DAYLEN,
        O_DEADPROBE, O_MAXACT, O_IDLE, O_DEADQ, O_KEYCACHE,
        O_CONFIG, O_LISTEN, O_TOKEN, O_DRAIN, O_MAXQ, O_TOPN /* ops: engine/daemon.c */
    };
    static const struct option lo[] = {{"until-idle", 0, 0, O_UNTIL},
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
                                       {"dead-host-queue", 1, 0, O_DEADQ},
                                       {"max-active-hosts", 1, 0, O_MAXACT},
                                       {"idle-timeout", 1, 0, O_IDLE},
                                       {"key-cache", 1, 0, O_KEYCACHE},
                                       {"config", 1, 0, O_CONFIG},
                                       {"listen", 1, 0, O_LISTEN},
                                       {"token-file", 1, 0, O_TOKEN},
                                       {"drain-timeout", 1, 0, O_DRAIN},
                                       {"max-queued", 1, 0, O_MAXQ},
                                       {"metrics-top-hosts", 1, 0, O_TOPN},
                                       {0, 0, 0, 0}};
    struct hd_run_opts o;
    struct hd_daemon_opts dopt;
    struct hd_run_summary sum;
    struct hd_store *st;
    const char **resolve = calloc((size_t)argc + 1, sizeof(char *));
    unsigned long long v;
    int c, rc;

    if (!resolve)
        return 1;
    hd_run_opts_default(&o);
    o.progress = isatty(2);
    hd_daemon_opts_init(&dopt); /* ops: --config is read first; the flags override it */
    if (hd_daemon_preload(&dopt, argc, argv, &o) != 0) {
        free(resolve);
        return 2;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_UNTIL:
            o.until_idle = 1;
            break;
        case O_RESOLVE:
            resolve[o.nresolve++] = optarg;
            break;
        case O_PRIV:
            o.allow_private = 1;
            break;
        case O_CA:
            o.ca_file = optarg;
            break;
        case O_PROG:
            o.progress = 1;
            break;
        case O_THREADS:
            bad = parse_uint(optarg, 256, &v);
            o.threads = (unsigned)v;
            break;
        case O_MAXH:
            bad = parse_uint(optarg, 100000, &v) || v == 0;
            o.max_inflight_host = (unsigned)v;
            o.hostpol.win_max = (unsigned)v;
            break;
        case O_WINIT:
            bad = parse_uint(optarg, 100000, &v) || v == 0;
            o.hostpol.win_init = (unsigned)v;
            break;
        case O_BREAK:
            bad = parse_uint(optarg, 100000, &v) || v == 0;
            o.hostpol.breaker_threshold = (unsigned)v;
            break;
        case O_PBASE:
            bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
            o.hostpol.probe_base_ms = v;
            break;
        case O_PMAX:
            bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
            o.hostpol.probe_max_ms = v;
            break;
        case O_RACAP:
            bad = parse_uint(optarg, 86400000ull * 30, &v);
            o.hostpol.retry_after_cap_ms = v;
            o.retry.retry_after_cap_ms = v;
            break;
        case O_MAXAGE:
            bad = parse_uint(optarg, 86400000ull * 365, &v);
            o.max_age_ms = v;
            break;
        case O_DEADDAYS:
            bad = parse_uint(optarg, 3650, &v) || v == 0;
            o.dead_days = (uint32_t)v;
            break;
        case O_DAYLEN:
            bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
            o.day_ms = v;
            break;
        case O_DEADPROBE:
            bad = parse_uint(optarg, 86400000ull * 30, &v) || v == 0;
            o.hostpol.dead_probe_ms = v;
            break;
        case O_DEADQ:
            bad = strcmp(optarg, "keep") != 0 && strcmp(optarg, "expire") != 0;
            o.dead_queue_expire = strcmp(optarg, "expire") == 0;
            break;
        case O_MAXACT:
            bad = parse_uint(optarg, 1000000, &v) || v == 0;
            o.max_active_hosts = (unsigned)v;
            break;
        case O_IDLE:
            bad = parse_uint(optarg, 3600000, &v) || v == 0;
            o.idle_timeout_ms = (unsigned)v;
            break;
        case O_KEYCACHE:
            bad = parse_uint(optarg, 10000000, &v) || v == 0;
            o.key_cache = (unsigned)v;
            break;
        case O_CT:
            bad = parse_uint(optarg, 3600000, &v) || v == 0;
            o.connect_timeout_ms = (unsigned)v;
            break;
        case O_TT:
            bad = parse_uint(optarg, 3600000, &v) || v == 0;
            o.tls_timeout_ms = (unsigned)v;
            break;
        case O_RT:
            bad = parse_uint(optarg, 3600000, &v) || v == 0;
            o.response_timeout_ms = (unsigned)v;
            break;
        case O_RB:
            bad = parse_uint(optarg, 86400000ull * 30, &v);
            o.retry.base_ms = v;
            break;
        case O_RC:
            bad = parse_uint(optarg, 86400000ull * 30, &v);
            o.retry.cap_ms = v;
            break;
        case O_MA:
            bad = parse_uint(optarg, 1000, &v) || v == 0;
            o.retry.max_attempts = (uint32_t)v;
            break;
        case O_CONFIG: /* ops */
        case O_LISTEN:
        case O_TOKEN:
        case O_DRAIN:
        case O_MAXQ:
        case O_TOPN:
            bad = hd_daemon_opt(&dopt, lo[c - O_UNTIL].name, optarg) != 0;
            break;
        default:
            free(resolve);
            hd_daemon_opts_fini(&dopt);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "herald run: invalid value for --%s: %s\n", lo[c - O_UNTIL].name,
                    optarg);
            free(resolve);
            hd_daemon_opts_fini(&dopt);
            return 2;
        }
    }
    o.resolve = resolve;
    if (hd_cli_open_store(db, &st, NULL)) {
        free(resolve);
        hd_daemon_opts_fini(&dopt);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = hd_daemon_run(st, &o, &dopt, &g_stop, &sum); /* ops: hd_run + config, endpoint, signals */
    hd_daemon_opts_fini(&dopt);
    if (rc == HD_ERR_BUSY) {
        fprintf(stderr, "herald run: another herald run is using the store %s\n", db);
    } else if (rc) {
        fprintf(stderr, "herald run: %s\n", hd_strerror(rc));
    } else {
        struct hd_txn *txn;
        struct hd_counters cn;
        struct hd_host_sum hs = {0, 0, 0};
        if (hd_store_begin(st, 0, &txn) == 0) {
            if (hd_counters_get(st, txn, &cn) != 0 || hd_host_sum(st, txn, &hs) != 0)
                memset(&hs, 0, sizeof(hs));
            hd_store_abort(txn);
        }
        uint64_t queued = hs.queued, retrying = hs.retrying;
        fprintf(stderr,
                "summary: delivered=%" PRIu64 " retried=%" PRIu64 " dead=%" PRIu64
                " attempts=%" PRIu64 " seconds=%.2f rate=%.0f/s cpu_s=%.2f"
                " cpu_ms_per_delivery=%.3f max_rss_mb=%.1f still_queued=%" PRIu64
                " waiting_retry=%" PRIu64 " signs=%" PRIu64 " sign_cpu_s=%.3f sign_us=%.2f\n",
                sum.done, sum.retried, sum.dead, sum.attempts, sum.seconds,
                sum.seconds > 0 ? (double)sum.done / sum.seconds : 0.0, sum.cpu_seconds,
                sum.attempts ? sum.cpu_seconds * 1000.0 / (double)sum.attempts : 0.0,
                (double)sum.max_rss_kb / 1024.0, queued, retrying, sum.signs,
                sum.sign_cpu_seconds,
                sum.signs ? sum.sign_cpu_seconds * 1e6 / (double)sum.signs : 0.0);
    }
    hd_store_close(st);
    free(resolve);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------------ stats */

static int cmd_stats(const char *db, int argc, char **argv)
{
    int json = argc > 1 && strcmp(argv[1], "--json") == 0;
    struct hd_store *st;
    struct hd_counters c;
    struct hd_txn *txn;
    struct hd_host_iter it;
    struct hd_host_rec hr;
    char name[HD_HOST_MAX];
    json_t *root, *hosts;
    uint64_t queued = 0, retrying = 0;
    int rc;

    if (hd_cli_open_store(db, &st, NULL))
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (!rc)
        rc = hd_counters_get(st, txn, &c);
    if (rc) {
        fprintf(stderr, "herald stats: %s\n", hd_strerror(rc));
        hd_store_abort(txn);
        hd_store_close(st);
        return 1;
    }
    hosts = json_array();
    rc = hd_host_iter_open(st, txn, &it);
    if (rc == 0) {
        while ((rc = hd_host_iter_next(&it, name, &hr)) == 0) {
            struct hd_live live;
            json_int_t infl = 0;
            /* in_flight comes from the running engine's live report, when fresh */
            if (hd_live_get(st, txn, name, &live) == 0 &&
                live.updated_ms + HD_LIVE_FRESH_MS >= hd_wall_ms())
                infl = live.in_flight;
            queued += hr.queued;
            retrying += hr.retrying;
            json_array_append_new(
                hosts, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "host", name, "queued",
                                 (json_int_t)hr.queued, "retrying", (json_int_t)hr.retrying,
                                 "in_flight", infl, "done", (json_int_t)hr.done,
                                 "failed", (json_int_t)hr.failed, "failures",
                                 (json_int_t)hr.failures, "last_error", hr.last_error));
        }
        hd_host_iter_close(&it);
    }
    hd_store_abort(txn);
    if (rc != HD_ERR_NOT_FOUND) {
        fprintf(stderr, "herald stats: %s\n", hd_strerror(rc));
        json_decref(hosts);
        hd_store_close(st);
        return 1;
    }
    hd_store_close(st);
    root = json_pack("{s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:o}", "activities",
                     (json_int_t)c.activities, "deliveries", "done", (json_int_t)c.done,
                     "pending", (json_int_t)(queued - retrying), "retrying",
                     (json_int_t)retrying, "failed", (json_int_t)c.failed, "refused",
                     (json_int_t)c.refused, "withheld", (json_int_t)c.withheld, "hosts", hosts);
    /* Deliveries dropped by defederation rules or federation none, never sent (additive key). */
    if (root) {
        json_object_set_new(json_object_get(root, "deliveries"), "dropped",
                            json_integer((json_int_t)c.dropped));
        /* Cancelled by a Delete before delivery, Create and Delete both (issue 4 item 8). */
        json_object_set_new(json_object_get(root, "deliveries"), "cancelled",
                            json_integer((json_int_t)c.cancelled));
    }
    if (json) {
        char *s = json_dumps(root, JSON_COMPACT);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        size_t i;
        json_t *h;
        printf("activities: %" PRIu64 " (refused %" PRIu64 ", withheld %" PRIu64 ")\n",
               c.activities, c.refused, c.withheld);
        printf("deliveries: done %" PRIu64 ", pending %" PRIu64 ", retrying %" PRIu64
               ", failed %" PRIu64 ", dropped %" PRIu64 ", cancelled %" PRIu64 "\n",
               c.done, queued - retrying, retrying, c.failed, c.dropped, c.cancelled);
        printf("%-40s %8s %8s %8s %8s %8s  %s\n", "host", "queued", "retrying", "done", "failed",
               "failures", "last_error");
        json_array_foreach(hosts, i, h)
        {
            printf("%-40s %8" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT
                   " %8" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT
                   "  %s\n",
                   json_string_value(json_object_get(h, "host")),
                   json_integer_value(json_object_get(h, "queued")),
                   json_integer_value(json_object_get(h, "retrying")),
                   json_integer_value(json_object_get(h, "done")),
                   json_integer_value(json_object_get(h, "failed")),
                   json_integer_value(json_object_get(h, "failures")),
                   json_string_value(json_object_get(h, "last_error")));
        }
    }
    json_decref(root);
    return 0;
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    const char *db = getenv("HERALD_DB");
    int i = 1;

    if (!db)
        db = "herald-db";
    umask(077); /* store files, keys and reports are private by default */
    /* Herald parses private keys (run, sign, key add) into OpenSSL and wolfCrypt heap objects
     * that cannot be madvise(MADV_DONTDUMP)'d one by one: the whole process is non-dumpable
     * (no core dump, no ptrace or /proc/PID/mem by other processes of the same user). A
     * program's choice, not the signer library's. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        fprintf(stderr, "herald: cannot make the process non-dumpable: %s\n", strerror(errno));
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--db") && i + 1 < argc) {
            db = argv[i + 1];
            i += 2;
        } else if (!strncmp(argv[i], "--db=", 5)) {
            db = argv[i] + 5;
            i++;
        } else if (!strcmp(argv[i], "--log-level") && i + 1 < argc) {
            int l = hd_log_parse_level(argv[i + 1]);
            if (l < 0) {
                fprintf(stderr, "herald: bad --log-level %s\n", argv[i + 1]);
                return 2;
            }
            hd_log_level = l;
            i += 2;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("herald %s\n", HD_VERSION);
            return 0;
        } else {
            fprintf(stderr, "herald: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    argc -= i;
    argv += i;
    if (!strcmp(argv[0], "key"))
        return cmd_key(db, argc, argv);
    if (!strcmp(argv[0], "actor"))
        return cmd_actor(db, argc, argv);
    if (!strcmp(argv[0], "enqueue"))
        return cmd_enqueue(db, argc, argv);
    if (!strcmp(argv[0], "run"))
        return cmd_run(db, argc, argv);
    if (!strcmp(argv[0], "stats"))
        return cmd_stats(db, argc, argv);
    if (!strcmp(argv[0], "top")) /* ops: reads a running engine's endpoint */
        return hd_cli_top(db, argc, argv);
    if (!strcmp(argv[0], "follow"))
        return hd_cli_follow(db, argc, argv);
    if (!strcmp(argv[0], "sign"))
        return hd_cli_sign(argc, argv);
    if (!strcmp(argv[0], "block"))
        return hd_cli_block(db, argc, argv);
    if (!strcmp(argv[0], "allow"))
        return hd_cli_allow(db, argc, argv);
    if (!strcmp(argv[0], "federation"))
        return hd_cli_federation(db, argc, argv);
    if (!strcmp(argv[0], "host"))
        return hd_cli_host(db, argc, argv);
    if (!strcmp(argv[0], "dead"))
        return hd_cli_dead(db, argc, argv);
    if (!strcmp(argv[0], "gone"))
        return hd_cli_gone(db, argc, argv);
    if (!strcmp(argv[0], "version")) {
        printf("herald %s\n", HD_VERSION);
        return 0;
    }
    if (!strcmp(argv[0], "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "herald: unknown command %s\n", argv[0]);
    usage(stderr);
    return 2;
}
