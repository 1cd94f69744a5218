/* FEP-8fcf digests (collsync.h): the authority of an id, counts and digests through follow
 * adds, updates and removes (computed here independently: OpenSSL's SHA-256 over the ids of
 * each host, XORed), the header never for a host without followers, and the one-time build
 * from follows stored before the digests existed. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audience.h"
#include "collsync.h"
#include "store.h"
#include "store_impl.h"
#include "t.h"

#define ACTOR "https://a.example/u/al"

static struct hd_store *st;

static void follow(const char *follower, const char *inbox, int remove)
{
    struct hd_follow f = {ACTOR, follower, inbox, NULL};
    struct hd_follow_stats s;
    struct hd_follow_batch *b;
    const char *why;
    struct hd_txn *txn;
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_follow_batch_new(&b), 0);
    T_EQ_INT(hd_follow_batch_add(b, &f, remove, &why), 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_follow_batch_apply(st, txn, b, &s), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    hd_follow_batch_free(b);
}

/* The expected digest of the ids in list (NULL-terminated) whose authority is auth. */
static uint32_t expect(const char *const *list, const char *auth, uint8_t d[32])
{
    uint32_t n = 0;
    memset(d, 0, 32);
    for (; *list; list++) {
        const char *p = strstr(*list, "://") + 3;
        uint8_t h[32];
        if (strncmp(p, auth, strlen(auth)) || (p[strlen(auth)] != '/' && p[strlen(auth)]))
            continue;
        SHA256((const unsigned char *)*list, strlen(*list), h);
        for (int i = 0; i < 32; i++)
            d[i] ^= h[i];
        n++;
    }
    return n;
}

static void check(const char *const *list, const char *auth)
{
    uint8_t want[32], got[32];
    uint32_t n = expect(list, auth, want), c = 99;
    struct hd_txn *txn;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_collsync_get(st, txn, ACTOR, auth, strlen(auth), &c, got), 0);
    hd_store_abort(txn);
    if (c != n || memcmp(want, got, 32))
        T_FAIL("host %s: count %u want %u, or digest differs", auth, c, n);
    t_checks++;
}

int main(void)
{
    char dir[] = "/tmp/hd-test-collsync-XXXXXX", path[256];
    const char *a;
    size_t n;
    static const char *const round1[] = {"https://b.example/users/1", "https://b.example/users/2",
                                         "https://b.example/users/3", "https://c.example:8443/u/x",
                                         "https://d.example/u/y", NULL};
    static const char *const round2[] = {"https://b.example/users/2", "https://c.example:8443/u/x",
                                         "https://b.example/users/4", NULL};
    struct hd_txn *txn;

    a = hd_collsync_authority("https://h.example:8443/x", 24, &n);
    T_OK(a && n == 14 && !memcmp(a, "h.example:8443", 14));
    T_OK(hd_collsync_authority("nope", 4, &n) == NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);

    follow("https://b.example/users/1", "https://b.example/users/1/inbox", 0);
    follow("https://b.example/users/2", "https://b.example/users/2/inbox", 0);
    follow("https://b.example/users/3", "https://elsewhere.example/inbox", 0); /* inbox elsewhere */
    follow("https://c.example:8443/u/x", "https://c.example:8443/u/x/inbox", 0);
    follow("https://d.example/u/y", "https://d.example/u/y/inbox", 0);
    follow("https://d.example/u/y", "https://d.example/inbox", 0); /* update: same id */
    check(round1, "b.example");
    check(round1, "c.example:8443");
    check(round1, "c.example"); /* another authority: none */
    check(round1, "d.example");
    check(round1, "elsewhere.example"); /* inboxes do not count, ids do */

    follow("https://b.example/users/1", NULL, 1);
    follow("https://b.example/users/3", NULL, 1);
    follow("https://d.example/u/y", NULL, 1);
    follow("https://d.example/u/nobody", NULL, 1); /* absent: nothing changes */
    follow("https://b.example/users/4", "https://b.example/users/4/inbox", 0);
    check(round2, "b.example");
    check(round2, "c.example:8443");
    check(round2, "d.example"); /* last follower gone: no record, count 0 */

    /* A store whose follows predate the digests: the first follow batch (or run) builds them. */
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    {
        MDB_val mk = {14, "collsync_built"};
        T_EQ_INT(mdb_drop(hd_mdb_txn(txn), st->collsync, 0), 0);
        T_EQ_INT(mdb_del(hd_mdb_txn(txn), st->meta, &mk, NULL), 0);
    }
    T_EQ_INT(hd_store_commit(txn), 0);
    {
        uint8_t z[32];
        uint32_t c = 1;
        T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
        T_EQ_INT(hd_collsync_get(st, txn, ACTOR, "b.example", 9, &c, z), 0);
        hd_store_abort(txn);
        T_EQ_INT(c, 0);
    }
    follow("https://b.example/users/9", NULL, 1); /* absent, but the batch builds first */
    check(round2, "b.example");
    check(round2, "c.example:8443");
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_collsync_ensure(st, txn), 0); /* built: a no-op, nothing counted twice */
    T_EQ_INT(hd_store_commit(txn), 0);
    check(round2, "b.example");

    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}
