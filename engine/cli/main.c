/* herald: the command-line entry. Wiring only: the global options (--db, --log-level), then
 * one table from command names to the cli_*.c modules that implement them. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "cli_actor.h"
#include "cli_block.h"
#include "cli_cluster.h"
#include "cli_activity.h"
#include "cli_enqueue.h"
#include "cli_follow.h"
#include "cli_host.h"
#include "cli_key.h"
#include "cli_queue.h"
#include "cli_run.h"
#include "cli_sign.h"
#include "cli_stats.h"
#include "cli_top.h"
#include "log.h"

static const char usage_text[] =
    "usage: herald [--db DIR] [--log-level error|warn|info|debug] COMMAND ...\n"
    "\n"
    "Commands:\n"
    "  key add --key-id URL --actor URL --pem FILE   store an actor's signing key (RSA >= 2048)\n"
    "  key import FILE|- [--group N]                 JSON lines {key_id, actor, pem}, N per commit\n"
    "  key remove --key-id URL                       refused while the actor's only key is needed\n"
    "  key list [--json]                             key ids and actors (never key material)\n"
    "  key export-public                             JSON lines {key_id, actor, public_pem}\n"
    "  actor set --actor URL --federation all|public|none\n"
    "  follow add --actor A --follower F --inbox I [--shared-inbox S] | remove --actor A\n"
    "      --follower F | import [FILE|-] (JSON lines or CSV) | list --actor A [--count]\n"
    "  follow add|remove|import --cluster URL ...    follows for every node, through JetStream\n"
    "  enqueue [FILE|-]                              JSON-lines envelopes; one result line each\n"
    "  enqueue --cluster URL [--cluster-creds F] [--cluster-ca PEM] [FILE|-]   to JetStream\n"
    "  block add|remove|import, allow add|remove, federation mode, actor set,\n"
    "      host pause|resume|set|reset ... --cluster URL   for every node, through JetStream\n"
    "  cluster status --cluster URL [--json]         nodes, partitions, backlog per node\n"
    "  cluster partition HOST [PARTITIONS]           the partition of a host (default 256)\n"
    "  activity cancel ID | show ID [--json]         takedown, delivery status (ID: id or seq)\n"
    "  run [--until-idle] [--resolve HOST:PORT:ADDR]... [--allow-private-addresses]\n"
    "      [--ca-file PEM] [--threads N] [--max-inflight-host N] [--connect-timeout DUR]\n"
    "      [--tls-timeout DUR] [--response-timeout DUR] [--retry-base DUR] [--retry-cap DUR]\n"
    "      [--max-attempts N] [--max-age DUR] [--retry-after-cap DUR] [--window-init N]\n"
    "      [--breaker-threshold N] [--probe-base DUR] [--probe-max DUR] [--dead-days N]\n"
    "      [--day-length DUR] [--dead-probe DUR] [--dead-host-queue keep|expire]\n"
    "      [--max-active-hosts N] [--slow-hosts N] [--slow-after DUR] [--idle-timeout DUR]\n"
    "      [--key-cache N]\n"
    "      [--collection-sync-url TEMPLATE] [--collection-sync-followers TEMPLATE]\n"
    "      [--progress]\n"
    "      [--config FILE] [--listen unix:PATH|ADDR:PORT]... [--token-file FILE]\n"
    "      [--drain-timeout DUR] [--max-queued N] [--metrics-top-hosts N]\n"
    "      [--cluster URL --node NAME [--cluster-partitions N] [--cluster-lease DUR]\n"
    "       [--cluster-replicas N] [--cluster-creds FILE] [--cluster-ca PEM]]\n"
    "  stats [--json]                                counts, per host queue and failures\n"
    "  top [--listen unix:PATH|ADDR:PORT | --config FILE] [--interval DUR] [--limit N]\n"
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
    "  queue list [--host H] [--activity ID] [--state S] [--limit N] [--after CURSOR] [--json]\n"
    "      | flush [--host H] | shape [--limit N] [--json]   queued deliveries, retry now, ages\n"
    "  gone list [--json]                            inboxes that answered 404/410\n"
    "  version | help [COMMAND [SUBCOMMAND]]\n"
    "\n"
    "DUR is a duration: 250ms, 10s, 5m, 1h; a bare number keeps the flag's unit (milliseconds\n"
    "for run, seconds for top --interval).\n"
    "--db defaults to $HERALD_DB, else ./herald-db. `herald help COMMAND` or\n"
    "`herald COMMAND --help` shows a command's usage.\n";

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

/* A command: argv[0] is its name; db is the store directory. Returns the exit status. */
typedef int (*cmd_cb)(const char *db, int argc, char **argv);

static int cmd_sign(const char *db, int argc, char **argv)
{
    (void)db; /* signs with a key file: no store */
    return hd_cli_sign(argc, argv);
}

static const struct {
    const char *name;
    cmd_cb run;
} commands[] = {
    {"key", hd_cli_key},
    {"actor", hd_cli_actor},
    {"enqueue", hd_cli_enqueue},
    {"cluster", hd_cli_cluster},
    {"activity", hd_cli_activity},
    {"run", hd_cli_run},
    {"stats", hd_cli_stats},
    {"top", hd_cli_top}, /* reads a running engine's endpoint, or the store */
    {"follow", hd_cli_follow},
    {"sign", cmd_sign},
    {"block", hd_cli_block},
    {"allow", hd_cli_allow},
    {"federation", hd_cli_federation},
    {"host", hd_cli_host},
    {"dead", hd_cli_dead},
    {"queue", hd_cli_queue},
    {"gone", hd_cli_gone},
};

/* `herald help [CMD [SUB]]`: the command's own --help. */
static int help(const char *db, int argc, char **argv)
{
    char *args[4];
    int n = 0;

    if (argc == 1) {
        usage(stdout);
        return 0;
    }
    if (argc > 3) {
        fprintf(stderr, "herald help: expected a command, and at most one subcommand\n");
        return 2;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "help")) {
        printf("usage: herald %s%s\n", argv[1], !strcmp(argv[1], "help") ? " [CMD [SUB]]" : "");
        return 0;
    }
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n++] = "--help";
    args[n] = NULL;
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (!strcmp(args[0], commands[k].name))
            return commands[k].run(db, n, args);
    fprintf(stderr, "herald help: unknown command %s\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *db = getenv("HERALD_DB");
    int i = 1;

    if (!db)
        db = "herald-db";
    umask(077); /* store files, keys and reports are private by default */
    /* One malloc arena, grown and trimmed in steps of megabytes. glibc gives each new thread
     * an arena of its own and grows it one page at a time: an mprotect call per page, about
     * 15,000 in a fan-out to 20,000 hosts, each page then faulted in on its own. One arena
     * grows by brk in 4 MB steps instead; the threads' small blocks still come from their
     * own lock-free caches (tcache). Setting these turns glibc's sliding mmap threshold off,
     * so it is set here too: blocks of 1 MB and more are mapped and unmapped on their own. */
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_TOP_PAD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
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
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (!strcmp(argv[0], commands[k].name))
            return commands[k].run(db, argc, argv);
    if (!strcmp(argv[0], "version")) {
        printf("herald %s\n", HD_VERSION);
        return 0;
    }
    if (!strcmp(argv[0], "help"))
        return help(db, argc, argv);
    fprintf(stderr, "herald: unknown command %s\n", argv[0]);
    usage(stderr);
    return 2;
}
