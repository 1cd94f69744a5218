/* Key import (JSON lines, grouped transactions, bad lines by number), rotation in the actor
 * record, and key removal (refused with the count while an actor's only key is needed;
 * at once for a key rotated away or one of two), through the engine calls and the C API. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "herald/herald.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "store.h"
#include "t.h"

static struct hd_store *st;
static char *rsa_a, *rsa_b, *rsa_weak, *ed;

struct bad {
    size_t line[16];
    char why[16][160];
    int n;
};

static void on_bad(size_t lineno, const char *why, void *ud)
{
    struct bad *b = ud;
    if (b->n < 16) {
        b->line[b->n] = lineno;
        snprintf(b->why[b->n], sizeof(b->why[0]), "%s", why);
        b->n++;
    }
}

/* Appends one JSON line {"key_id","actor","pem"} to buf. */
static void add_line(char **buf, const char *kid, const char *actor, const char *pem)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "key_id", kid, "actor", actor, "pem", pem);
    char *s = json_dumps(o, JSON_COMPACT), *n;
    size_t ol = *buf ? strlen(*buf) : 0;
    T_OK(s != NULL);
    n = realloc(*buf, ol + strlen(s) + 2);
    T_OK(n != NULL);
    memcpy(n + ol, s, strlen(s));
    n[ol + strlen(s)] = '\n';
    n[ol + strlen(s) + 1] = 0;
    *buf = n;
    free(s);
    json_decref(o);
}

static void add_raw(char **buf, const char *text)
{
    size_t ol = *buf ? strlen(*buf) : 0;
    char *n = realloc(*buf, ol + strlen(text) + 2);
    T_OK(n != NULL);
    memcpy(n + ol, text, strlen(text));
    n[ol + strlen(text)] = '\n';
    n[ol + strlen(text) + 1] = 0;
    *buf = n;
}

static void actor_keys(const char *actor, char *kid, char *edk)
{
    struct hd_slice k = {NULL, 0}, e = {NULL, 0};
    struct hd_txn *txn;
    int fed;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_actor_get(st, txn, actor, strlen(actor), &k, &fed), 0);
    T_EQ_INT(hd_actor_get_ed(st, txn, actor, strlen(actor), &e), 0);
    snprintf(kid, 256, "%.*s", (int)k.n, k.p ? k.p : "");
    snprintf(edk, 256, "%.*s", (int)e.n, e.p ? e.p : "");
    hd_store_abort(txn);
}

static int has_key(const char *kid)
{
    struct hd_slice pem;
    struct hd_txn *txn;
    int rc;
    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    rc = hd_keys_get_pem(st, txn, kid, &pem);
    hd_store_abort(txn);
    return rc == 0;
}

static void enqueue_one(const char *actor, int n)
{
    char env[512];
    struct hd_ingest_result r;
    struct hd_counters c;
    struct hd_txn *txn;
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"%s/act/%d\",\"type\":\"Like\",\"actor\":\"%s\",\"object\":"
             "\"https://b.example/n/1\"},\"inboxes\":[\"https://b.example/inbox\","
             "\"https://c.example/inbox\"]}",
             actor, n, actor);
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_ingest_envelope(st, txn, &c, env, strlen(env), 1000, &r), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static void test_import(void)
{
    struct hd_key_import_stats s;
    struct bad b;
    char *buf = NULL, kid[256], edk[256];
    int i;

    memset(&b, 0, sizeof(b));
    /* 7 good keys in groups of 3 (three commits), bad lines among them, a blank line */
    for (i = 1; i <= 3; i++) {
        char k[64], a[64];
        snprintf(k, sizeof(k), "https://s.example/u/%d#k1", i);
        snprintf(a, sizeof(a), "https://s.example/u/%d", i);
        add_line(&buf, k, a, rsa_a);
    }
    add_raw(&buf, "{not json");                                                         /* 4 */
    add_raw(&buf, "{\"key_id\":\"https://s.example/u/9#k\",\"actor\":\"https://s.example/u/9\"}"); /* 5 */
    add_line(&buf, "https://s.example/u/9#k", "https://s.example/u/9", rsa_weak);        /* 6 */
    add_raw(&buf, "");                                                                  /* 7 */
    add_line(&buf, "https://s.example/u/4#k1", "https://s.example/u/4", rsa_b);           /* 8 */
    add_line(&buf, "https://s.example/u/4#ed", "https://s.example/u/4", ed);              /* 9 */
    add_line(&buf, "https://s.example/u/1#k1", "https://s.example/u/5", rsa_a);           /* 10: owned by u/1 */
    add_line(&buf, "https://s.example/u/5#k1", "https://s.example/u/5", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"); /* 11 */
    add_line(&buf, "https://s.example/u/5#k2", "https://s.example/u/5", rsa_b);           /* 12 */
    add_line(&buf, "https://s.example/u/1#k2", "https://s.example/u/1", rsa_b);           /* 13: rotation */
    T_EQ_INT(hd_key_import_buf(st, buf, strlen(buf), 3, on_bad, &b, &s), 0);
    T_EQ_INT(s.lines, 13);
    T_EQ_INT(s.imported, 7);
    T_EQ_INT(s.bad, 5);
    T_EQ_INT(b.n, 5);
    T_EQ_INT(b.line[0], 4);
    T_EQ_INT(b.line[1], 5);
    T_EQ_INT(b.line[2], 6);
    T_EQ_INT(b.line[3], 10);
    T_EQ_INT(b.line[4], 11);
    T_OK(strstr(b.why[3], "another actor") != NULL);
    for (i = 0; i < b.n; i++) /* reasons, never key material */
        T_OK(strstr(b.why[i], "BEGIN") == NULL && strstr(b.why[i], "AAAA") == NULL);
    T_OK(has_key("https://s.example/u/2#k1"));
    T_OK(!has_key("https://s.example/u/9#k"));
    T_OK(!has_key("https://s.example/u/5#k1"));
    /* rotation: the last key imported for an actor is its key; the Ed25519 key its 9421 key */
    actor_keys("https://s.example/u/1", kid, edk);
    T_EQ_STR(kid, "https://s.example/u/1#k2");
    actor_keys("https://s.example/u/4", kid, edk);
    T_EQ_STR(kid, "https://s.example/u/4#k1");
    T_EQ_STR(edk, "https://s.example/u/4#ed");
    actor_keys("https://s.example/u/5", kid, edk);
    T_EQ_STR(kid, "https://s.example/u/5#k2");
    free(buf);
}

static void test_remove(void)
{
    uint64_t pending = 0;
    const char *why;
    char kid[256], edk[256];

    /* u/1: k1 rotated away to k2; two deliveries queued */
    enqueue_one("https://s.example/u/1", 1);
    T_EQ_INT(hd_keys_remove(st, "https://s.example/u/1#k1", &pending, &why), 0);
    T_OK(!has_key("https://s.example/u/1#k1"));
    T_EQ_INT(hd_keys_remove(st, "https://s.example/u/1#k2", &pending, &why), HD_ERR_BUSY);
    T_EQ_INT(pending, 2);
    T_OK(has_key("https://s.example/u/1#k2"));
    actor_keys("https://s.example/u/1", kid, edk);
    T_EQ_STR(kid, "https://s.example/u/1#k2");
    T_EQ_INT(hd_keys_remove(st, "https://s.example/u/1#nokey", &pending, &why), HD_ERR_NOT_FOUND);
    /* u/4: RSA and Ed25519 with a delivery queued: removing the RSA key leaves the Ed25519
     * key as the primary one; the Ed25519 key is then the only one and refused */
    enqueue_one("https://s.example/u/4", 1);
    T_EQ_INT(hd_keys_remove(st, "https://s.example/u/4#k1", &pending, &why), 0);
    actor_keys("https://s.example/u/4", kid, edk);
    T_EQ_STR(kid, "https://s.example/u/4#ed");
    T_EQ_INT(hd_keys_remove(st, "https://s.example/u/4#ed", &pending, &why), HD_ERR_BUSY);
    T_EQ_INT(pending, 2);
    /* u/2: its only key, nothing queued: removed; the actor has no key, enqueue refuses */
    T_EQ_INT(hd_keys_remove(st, "https://s.example/u/2#k1", &pending, &why), 0);
    actor_keys("https://s.example/u/2", kid, edk);
    T_EQ_STR(kid, "");
}

static void bad_count(size_t lineno, const char *why, void *ud)
{
    (void)why;
    *(size_t *)ud = lineno;
}

static void test_api(const char *dir)
{
    herald_store *h;
    struct herald_key_import_stats s;
    char path[512], *buf = NULL;
    size_t last_bad = 0;
    uint64_t pending = 7;

    snprintf(path, sizeof(path), "%s/api", dir);
    T_EQ_INT(herald_open(path, &h), 0);
    add_line(&buf, "https://t.example/u/1#k", "https://t.example/u/1", rsa_a);
    add_raw(&buf, "[]");
    add_line(&buf, "https://t.example/u/2#k", "https://t.example/u/2", ed);
    T_EQ_INT(herald_key_import(h, buf, strlen(buf), 0, bad_count, &last_bad, &s), 0);
    T_EQ_INT(s.imported, 2);
    T_EQ_INT(s.bad, 1);
    T_EQ_INT(last_bad, 2);
    T_EQ_INT(herald_key_remove(h, "https://t.example/u/1#k", &pending), 0);
    T_EQ_INT(pending, 0);
    T_EQ_INT(herald_key_remove(h, "https://t.example/u/1#k", &pending), HERALD_ERR_NOT_FOUND);
    T_EQ_INT(herald_key_remove(h, "", NULL), HERALD_ERR_INVALID);
    T_EQ_INT(herald_key_import(NULL, buf, strlen(buf), 0, NULL, NULL, NULL), HERALD_ERR_INVALID);
    herald_close(h);
    free(buf);
}

static char *slurp_data(const char *data, const char *name)
{
    char path[512];
    size_t len;
    char *p;
    snprintf(path, sizeof(path), "%s/%s", data, name);
    p = t_slurp(path, &len);
    T_OK(p != NULL);
    return p;
}

int main(void)
{
    char dir[] = "/tmp/hd-test-keyimport-XXXXXX", path[512];
    const char *data = getenv("HD_TEST_DATA");

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    rsa_a = slurp_data(data, "keys/test-only-rsa2048.pem");
    rsa_b = slurp_data(data, "sign/rsa2048-test.pem");
    rsa_weak = slurp_data(data, "keys/test-only-rsa1024.pem");
    ed = slurp_data(data, "sign/rfc9421-test-key-ed25519.pem");
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);

    test_import();
    test_remove();
    hd_store_close(st);
    test_api(dir);

    free(rsa_a);
    free(rsa_b);
    free(rsa_weak);
    free(ed);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}
