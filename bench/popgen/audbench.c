/* audbench: measurements for audiences that the CLI does not print.
 *
 *   audbench stat --db DIR --actor A
 *       follows, distinct delivery inboxes, and the store cost: pages of the follows,
 *       audience and fwactors DBIs (mdb_stat) and the data file size, per follow. JSON.
 *   audbench enqueue --db DIR --file ENVELOPE
 *       ingests one envelope (e.g. a post with "to_followers": true) in its own write
 *       transaction and reports the time to expand + write (ingest) and to commit (fsync),
 *       i.e. the time until every delivery is persisted. JSON.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store_impl.h" /* reads tables directly */
#include "audience.h"
#include "err.h"
#include "heap.h"
#include "ingest.h"
#include "store.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t dbi_bytes(struct hd_txn *txn, MDB_dbi dbi, uint64_t *entries, unsigned *psize)
{
    MDB_stat s;
    if (mdb_stat(hd_mdb_txn(txn), dbi, &s) != 0)
        return 0;
    *entries = s.ms_entries;
    *psize = s.ms_psize;
    return (uint64_t)(s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages) * s.ms_psize;
}

static int cmd_stat(const char *db, const char *actor)
{
    struct hd_store *st;
    struct hd_txn *txn;
    uint64_t nf = 0, ni = 0, ef, ea, ew, bf, ba, bw;
    unsigned ps = 4096;
    char path[4096];
    struct stat sb;
    int rc;

    if (hd_store_open(&st, db, 0) != 0)
        return 1;
    rc = hd_store_begin(st, 0, &txn);
    if (!rc)
        rc = hd_follow_count(st, txn, actor, &nf, &ni);
    if (rc) {
        fprintf(stderr, "audbench: %s\n", hd_strerror(rc));
        return 1;
    }
    bf = dbi_bytes(txn, st->follows, &ef, &ps);
    ba = dbi_bytes(txn, st->audience, &ea, &ps);
    bw = dbi_bytes(txn, st->fwactors, &ew, &ps);
    hd_store_abort(txn);
    hd_store_close(st);
    snprintf(path, sizeof(path), "%s/data.mdb", db);
    if (stat(path, &sb) != 0)
        sb.st_size = 0;
    printf("{\"follows\":%" PRIu64 ",\"delivery_inboxes\":%" PRIu64 ",\"follows_dbi\":{\"entries\":%" PRIu64
           ",\"bytes\":%" PRIu64 "},\"audience_dbi\":{\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64
           "},\"fwactors_dbi\":{\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64
           "},\"page_size\":%u,\"store_bytes_per_follow\":%.1f,\"data_file_bytes\":%lld,"
           "\"data_file_bytes_per_follow\":%.1f}\n",
           nf, ni, ef, bf, ea, ba, ew, bw, ps, nf ? (double)(bf + ba + bw) / (double)nf : 0.0,
           (long long)sb.st_size, nf ? (double)sb.st_size / (double)nf : 0.0);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b;
    long n;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r'))
        n--;
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

static int cmd_enqueue(const char *db, const char *file)
{
    struct hd_ingest_result res;
    struct hd_counters c;
    struct hd_store *st;
    struct hd_txn *txn;
    double t0, t1, t2, t3, c0, c3;
    size_t len;
    char *env = slurp(file, &len);
    int rc;

    if (!env) {
        fprintf(stderr, "audbench: cannot read %s\n", file);
        return 1;
    }
    if (hd_store_open(&st, db, 0) != 0)
        return 1;
    hd_heap_prepare_bulk((size_t)64 << 20); /* as herald enqueue does */
    t0 = now_ms();
    c0 = cpu_ms();
    rc = hd_store_begin(st, 1, &txn);
    if (!rc)
        rc = hd_counters_get(st, txn, &c);
    if (rc) {
        fprintf(stderr, "audbench: %s\n", hd_strerror(rc));
        return 1;
    }
    t1 = now_ms();
    hd_ingest_envelope(st, txn, &c, env, len, wall_ms(), &res);
    t2 = now_ms();
    rc = hd_counters_put(st, txn, &c);
    if (!rc && res.rc == 0)
        rc = hd_store_commit(txn);
    else
        hd_store_abort(txn);
    t3 = now_ms();
    c3 = cpu_ms();
    hd_store_close(st);
    free(env);
    if (rc || res.rc) {
        fprintf(stderr, "audbench: %s\n", res.rc ? res.why : hd_strerror(rc));
        return 1;
    }
    printf("{\"seq\":%" PRIu64 ",\"deliveries\":%zu,\"ingest_ms\":%.1f,\"commit_ms\":%.1f,"
           "\"persisted_ms\":%.1f,\"cpu_ms\":%.1f}\n",
           res.seq, res.deliveries, t2 - t1, t3 - t2, t3 - t0, c3 - c0);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"db", 1, 0, 'd'}, {"actor", 1, 0, 'a'}, {"file", 1, 0, 'f'}, {0, 0, 0, 0}};
    const char *db = NULL, *actor = NULL, *file = NULL;
    int c;

    if (argc < 2) {
        fprintf(stderr, "usage: audbench stat --db DIR --actor A | enqueue --db DIR --file ENV\n");
        return 2;
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == 'd')
            db = optarg;
        else if (c == 'a')
            actor = optarg;
        else if (c == 'f')
            file = optarg;
        else
            return 2;
    }
    if (!db)
        return 2;
    if (!strcmp(argv[1], "stat") && actor)
        return cmd_stat(db, actor);
    if (!strcmp(argv[1], "enqueue") && file)
        return cmd_enqueue(db, file);
    fprintf(stderr, "usage: audbench stat --db DIR --actor A | enqueue --db DIR --file ENV\n");
    return 2;
}
