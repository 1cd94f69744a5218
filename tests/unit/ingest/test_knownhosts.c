/* "to_known_hosts" (an account Delete to every server that knows us): through the whole
 * enqueue path (hd_ingest_envelope), only hosts that took a delivery and are alive get one,
 * at their known inbox (the shared one when recorded); dead and gone hosts, hosts that never
 * took a delivery and suspended domains get none. The same hosts, once alive again, are
 * addressed by the next such envelope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "hostrec.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "known.h"
#include "rules.h"
#include "store.h"
#include "t.h"

#define ACTOR "https://a.example/u/alice"

static struct hd_store *st;

struct host {
    const char *name, *inbox;
    int shared;
    uint64_t done, dead;
    int want; /* deliveries expected from the first account Delete */
};

static const struct host hosts[] = {
    {"alive.example", "https://alive.example/inbox", 1, 4, HD_HOST_ALIVE, 1},
    {"personal.example", "https://personal.example/users/bo/inbox", 0, 1, HD_HOST_ALIVE, 1},
    {"dead.example", "https://dead.example/inbox", 1, 9, HD_HOST_DEAD, 0},
    {"gone.example", "https://gone.example/inbox", 1, 2, HD_HOST_GONE, 0},
    {"never.example", "https://never.example/inbox", 1, 0, HD_HOST_ALIVE, 0},
    {"blocked.example", "https://blocked.example/inbox", 1, 3, HD_HOST_ALIVE, 0},
};
#define NHOSTS (sizeof(hosts) / sizeof(hosts[0]))

static uint64_t queued(const char *host)
{
    struct hd_txn *txn;
    struct hd_host_rec h;
    int rc;

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    rc = hd_host_get(st, txn, host, strlen(host), &h);
    hd_store_abort(txn);
    T_OK(rc == 0 || rc == HD_ERR_NOT_FOUND);
    return rc == 0 ? h.queued : 0;
}

static void set_dead(const char *host, uint64_t dead)
{
    struct hd_txn *txn;
    struct hd_host_rec h;

    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_host_get(st, txn, host, strlen(host), &h), 0);
    h.dead = dead;
    T_EQ_INT(hd_host_put(st, txn, host, strlen(host), &h), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void account_delete(int n, struct hd_ingest_result *res)
{
    char env[512];
    struct hd_txn *txn;
    struct hd_counters c;

    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/del/%d\",\"type\":\"Delete\","
             "\"actor\":\"" ACTOR "\",\"object\":\"" ACTOR "\"},\"to_known_hosts\":true}",
             n);
    memset(res, 0, sizeof(*res));
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_ingest_envelope(st, txn, &c, env, strlen(env), 1000, res), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

int main(void)
{
    char dir[] = "/tmp/hd-test-knownhosts-XXXXXX", path[512], *pem;
    const char *data = getenv("HD_TEST_DATA"), *why;
    struct hd_ingest_result res;
    struct hd_txn *txn;
    struct hd_block b;
    uint64_t before[NHOSTS];
    size_t len, i;

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &len);
    T_OK(pem != NULL);
    T_EQ_INT(hd_keys_add(st, ACTOR "#key", ACTOR, pem, len, &why), 0);
    free(pem);

    /* Host records as earlier deliveries leave them, with their known inboxes. */
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    for (i = 0; i < NHOSTS; i++) {
        struct hd_host_rec h;
        memset(&h, 0, sizeof(h));
        h.done = hosts[i].done;
        h.dead = hosts[i].dead;
        T_EQ_INT(hd_host_put(st, txn, hosts[i].name, strlen(hosts[i].name), &h), 0);
        T_EQ_INT(hd_known_note(st, txn, hosts[i].name, hosts[i].inbox, strlen(hosts[i].inbox),
                               hosts[i].shared),
                 0);
    }
    memset(&b, 0, sizeof(b));
    T_EQ_INT(hd_rules_domain_norm("blocked.example", b.domain, sizeof(b.domain)), 0);
    b.severity = HD_SEV_SUSPEND;
    T_EQ_INT(hd_block_put(st, txn, &b), 0);
    T_EQ_INT(hd_store_commit(txn), 0);

    for (i = 0; i < NHOSTS; i++)
        before[i] = queued(hosts[i].name);
    account_delete(1, &res);
    T_EQ_INT(res.rc, 0);
    T_EQ_INT(res.deliveries, 2);
    for (i = 0; i < NHOSTS; i++) {
        uint64_t got = queued(hosts[i].name) - before[i];
        if (got != (uint64_t)hosts[i].want)
            fprintf(stderr, "%s: %llu deliveries, want %d\n", hosts[i].name,
                    (unsigned long long)got, hosts[i].want);
        T_EQ_INT(got, hosts[i].want);
    }

    /* Alive again (host reset, or a success): the next account Delete reaches them. */
    set_dead("dead.example", HD_HOST_ALIVE);
    set_dead("gone.example", HD_HOST_ALIVE);
    account_delete(2, &res);
    T_EQ_INT(res.rc, 0);
    T_EQ_INT(res.deliveries, 4);
    T_EQ_INT(queued("dead.example") - before[2], 1);
    T_EQ_INT(queued("gone.example") - before[3], 1);
    T_EQ_INT(queued("never.example") - before[4], 0);
    T_EQ_INT(queued("blocked.example") - before[5], 0);

    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}
