/* Cluster mode without a NATS server: the partition of a host (stable values), node names,
 * and the ingest destination filter the node expands activities with (only owned hosts are
 * queued; an activity with none stores nothing; a local id lets the same activity be
 * expanded again for partitions acquired later). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "err.h"
#include "hostrec.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "store.h"
#include "t.h"

static int keep_b(const char *host, size_t len, void *ud)
{
    int *calls = ud;
    (*calls)++;
    return len == 9 && !memcmp(host, "b.example", 9);
}

static int keep_none(const char *host, size_t len, void *ud)
{
    (void)host;
    (void)len;
    (void)ud;
    return 0;
}

static int ingest(struct hd_store *st, const char *line, const struct hd_ingest_filter *f,
                  struct hd_ingest_result *res)
{
    struct hd_txn *txn;
    struct hd_counters c;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    hd_ingest_envelope_filtered(st, txn, &c, line, strlen(line), 1000, f, res);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return res->rc;
}

static uint64_t queued(struct hd_store *st, const char *host)
{
    struct hd_txn *txn;
    struct hd_host_iter it;
    struct hd_host_rec rec;
    char name[HD_HOST_MAX];
    uint64_t q = 0;
    int rc;

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_host_iter_open(st, txn, &it), 0);
    while ((rc = hd_host_iter_next(&it, name, &rec)) == 0)
        if (!strcmp(name, host))
            q = rec.queued;
    hd_host_iter_close(&it);
    hd_store_abort(txn);
    return q;
}

int main(void)
{
    static const char env[] =
        "{\"activity\":{\"id\":\"https://a.example/act/1\",\"type\":\"Create\","
        "\"actor\":\"https://a.example/u/al\"},\"inboxes\":[\"https://a.example/inbox\","
        "\"https://b.example/u/1/inbox\",\"https://b.example/u/2/inbox\",\"https://c.example/inbox\"]}";
    char dir[] = "/tmp/hd-test-cluster-XXXXXX", path[512], *pem;
    const char *data = getenv("HD_TEST_DATA"), *why;
    struct hd_ingest_result r;
    struct hd_ingest_filter f;
    struct hd_store *st;
    int calls = 0;
    size_t len;

    /* The partition is hd_store_hash32(host) mod P: frozen values (docs/cluster.md). */
    T_EQ_INT(hd_cluster_partition("h1.fedi.test", 12, 64), 3);
    T_EQ_INT(hd_cluster_partition("h1.fedi.test", 12, 256),
             (int)(hd_store_hash32("h1.fedi.test", 12) % 256));
    T_EQ_INT(hd_cluster_partition("mastodon.social", 15, 1), 0);
    T_EQ_INT(hd_cluster_node_name_ok("node-1_a"), 0);
    T_EQ_INT(hd_cluster_node_name_ok(""), HD_ERR_INVALID);
    T_EQ_INT(hd_cluster_node_name_ok("a.b"), HD_ERR_INVALID);
    T_EQ_INT(hd_cluster_node_name_ok("n*"), HD_ERR_INVALID);

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &len);
    T_OK(pem != NULL);
    T_EQ_INT(hd_keys_add(st, "https://a.example/u/al#key", "https://a.example/u/al", pem, len, &why),
             0);
    free(pem);

    /* Nothing owned: nothing stored, and the activity id stays free. */
    f = (struct hd_ingest_filter){keep_none, NULL, NULL};
    T_EQ_INT(ingest(st, env, &f, &r), 0);
    T_EQ_INT((int)r.deliveries, 0);
    T_EQ_INT((int)r.seq, 0);
    T_EQ_INT((int)queued(st, "a.example"), 0);

    /* Only b.example is owned: its two inboxes are queued, nothing else. */
    f = (struct hd_ingest_filter){keep_b, &calls, NULL};
    T_EQ_INT(ingest(st, env, &f, &r), 0);
    T_EQ_INT((int)r.deliveries, 2);
    T_OK(r.seq > 0);
    T_OK(calls >= 4);
    T_EQ_INT((int)queued(st, "b.example"), 2);
    T_EQ_INT((int)queued(st, "a.example"), 0);
    T_EQ_INT((int)queued(st, "c.example"), 0);

    /* The same activity again is a duplicate; under a local id it is stored once more. */
    T_EQ_INT(ingest(st, env, &f, &r), HD_ERR_DUPLICATE);
    f.local_id = "herald:replay:test:1:1";
    T_EQ_INT(ingest(st, env, &f, &r), 0);
    T_EQ_INT((int)r.deliveries, 2);
    T_EQ_INT((int)queued(st, "b.example"), 4);

    /* Without a filter: every destination, as on a single node. */
    T_EQ_INT(ingest(st, "{\"activity\":{\"id\":\"https://a.example/act/2\",\"type\":\"Create\","
                        "\"actor\":\"https://a.example/u/al\"},\"inboxes\":[\"https://a.example/inbox\","
                        "\"https://c.example/inbox\"]}",
                    NULL, &r),
             0);
    T_EQ_INT((int)r.deliveries, 2);

    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}
