/* engine/store/tlssess.c: TLS sessions kept across runs. Saved in one transaction, loaded
 * back with their host and port, expired and malformed rows deleted on load, a load capped
 * at max, and a store from before the table (dropped here) still opens and gets it empty. */
#include "err.h"
#include "store_impl.h"
#include "t.h"
#include "tlssess.h"

static const uint64_t NOW = 1700000000000ull;

struct seen {
    int n;
    char host[8][64];
    unsigned port[8];
    size_t len[8];
    uint8_t first[8];
};

static int on_rec(const struct hd_tlssess_rec *r, void *user_data)
{
    struct seen *s = user_data;
    if (s->n < 8) {
        snprintf(s->host[s->n], sizeof(s->host[0]), "%s", r->host);
        s->port[s->n] = r->port;
        s->len[s->n] = r->len;
        s->first[s->n] = r->der[0];
    }
    s->n++;
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/hd_test_tlssess_XXXXXX", path[512];
    struct hd_store *st;
    struct hd_tlssess_rec recs[3];
    uint8_t a[300], b[40], c[10];
    struct seen s;
    struct hd_txn *txn;

    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    memset(c, 'c', sizeof(c));
    recs[0] = (struct hd_tlssess_rec){"a.example", 443, a, sizeof(a), NOW + 1000};
    recs[1] = (struct hd_tlssess_rec){"a.example", 8443, b, sizeof(b), NOW + 1000};
    recs[2] = (struct hd_tlssess_rec){"old.example", 443, c, sizeof(c), NOW - 1};
    T_EQ_INT(hd_tlssess_save(st, recs, 3), 0);
    T_EQ_INT(hd_tlssess_count(st), 3);
    /* Bad records write nothing. */
    recs[2].host = "";
    T_EQ_INT(hd_tlssess_save(st, recs, 3), HD_ERR_INVALID);
    /* A malformed row (no port) is deleted on load like an expired one. */
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    {
        MDB_val k = {9, "junk.host"}, v = {12, "0123456789ab"};
        T_EQ_INT(hd_mdb_put(txn, st->tlssess, &k, &v, 0), 0);
    }
    T_EQ_INT(hd_store_commit(txn), 0);
    T_EQ_INT(hd_tlssess_count(st), 4);

    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_tlssess_load(st, NOW, 0, on_rec, &s), 2);
    T_EQ_INT(s.n, 2);
    T_EQ_STR(s.host[0], "a.example"); /* key order: "a.example:443" < "a.example:8443" */
    T_EQ_INT(s.port[0], 443);
    T_EQ_INT(s.len[0], sizeof(a));
    T_EQ_INT(s.first[0], 'a');
    T_EQ_STR(s.host[1], "a.example");
    T_EQ_INT(s.port[1], 8443);
    T_EQ_INT(s.first[1], 'b');
    T_EQ_INT(hd_tlssess_count(st), 2); /* expired and junk deleted */
    /* Capped load; and later, everything expired. */
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_tlssess_load(st, NOW, 1, on_rec, &s), 1);
    T_EQ_INT(hd_tlssess_count(st), 2);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_tlssess_load(st, NOW + 1000, 0, on_rec, &s), 0);
    T_EQ_INT(hd_tlssess_count(st), 0);

    /* A store without the table (as written before it existed) opens, and gets it. */
    T_EQ_INT(hd_tlssess_save(st, recs, 1), 0);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(mdb_drop(hd_mdb_txn(txn), st->tlssess, 1), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    hd_store_close(st);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    T_EQ_INT(hd_tlssess_count(st), 0);
    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_tlssess_load(st, NOW, 0, on_rec, &s), 0);
    T_EQ_INT(hd_tlssess_save(st, recs, 1), 0);
    T_EQ_INT(hd_tlssess_count(st), 1);
    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_OK(system(path) == 0);
    T_DONE();
}
