/* `herald enqueue` (see cli_enqueue.h). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_cluster.h"
#include "cli_enqueue.h"
#include "cli_util.h"
#include "clock.h"
#include "err.h"
#include "heap.h"
#include "ingest.h"
#include "store.h"

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
        if (o && p->res.rc == HD_ERR_DUPLICATE)
            json_object_set_new(o, "duplicate_of", json_integer((json_int_t)p->res.seq));
        if (o && p->res.withheld)
            json_object_set_new(o, "withheld", json_true());
        hd_cli_print_json(o);
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
#define ENQUEUE_HEAP_BYTES ((size_t)64 << 20) /* address space on huge pages, used as needed */

/* Lines are read first, in groups of up to 256 (a group also ends when the producer pauses),
 * and only then processed in one write transaction: each line is a nested transaction, so a
 * refused line changes nothing. Results are printed after the group commits, so a printed
 * seq is always durable. No transaction is open while waiting for input: a slow producer
 * never blocks the store for the running engine or other commands. */
static const char enqueue_usage[] =
    "usage: herald enqueue [FILE|-]\n"
    "       herald enqueue --cluster nats://HOST:PORT [--cluster-creds FILE] [--cluster-ca PEM]\n"
    "           [FILE|-]   (to the cluster's stream; answered once JetStream has it)\n"
    "Reads JSON-lines envelopes (standard input by default) and prints one result line each.\n";

int hd_cli_enqueue(const char *db, int argc, char **argv)
{
    static const struct option lo[] = {{0, 0, 0, 0}};
    const char *path;
    FILE *f;
    struct stat sb;
    struct hd_store *st;
    struct pending_line *pend;
    char **lines;
    size_t *caps, *lens, lineno = 0, npend = 0, refused = 0;
    ssize_t n;
    int rc = 0, eof = 0;

    if (hd_cli_help(argc, argv, enqueue_usage))
        return 0;
    if (hd_cli_cluster_wanted(argc, argv))
        return hd_cli_enqueue_cluster(argc, argv); /* to JetStream, not this store */
    optind = 0;
    if (hd_cli_getopt("enqueue", enqueue_usage, argc, argv, "", lo) != -1 ||
        hd_cli_positional("enqueue", enqueue_usage, argc, argv, 0, 1))
        return HD_CLI_USAGE_EXIT;
    path = optind < argc ? argv[optind] : "-";
    f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "herald enqueue: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "herald enqueue: %s is a directory, not a file of envelopes\n", path);
        if (f != stdin)
            fclose(f);
        return 1;
    }
    if (hd_cli_open_store(db, &st, NULL)) {
        if (f != stdin)
            fclose(f);
        return 1;
    }
    /* A post to a large audience is one write transaction of thousands of dirty pages, each
     * a malloc: on huge pages, their page faults stop being a third of its time. */
    hd_heap_prepare_bulk(ENQUEUE_HEAP_BYTES);
    pend = calloc(ENQUEUE_GROUP, sizeof(*pend));
    lines = calloc(ENQUEUE_GROUP, sizeof(*lines));
    caps = calloc(ENQUEUE_GROUP, sizeof(*caps));
    lens = calloc(ENQUEUE_GROUP, sizeof(*lens));
    if (!pend || !lines || !caps || !lens) {
        fprintf(stderr, "herald enqueue: %s\n", hd_strerror(-ENOMEM));
        rc = -ENOMEM;
    }
    while (!rc && !eof) {
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
        if (!rc) {
            rc = hd_counters_get(st, txn, &c);
            if (rc)
                hd_store_abort(txn);
        }
        if (rc) {
            fprintf(stderr, "herald enqueue: store error: %s\n", hd_strerror(rc));
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
    if (!rc && ferror(f)) {
        fprintf(stderr, "herald enqueue: cannot read %s: %s\n", path, strerror(errno));
        rc = -EIO;
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
