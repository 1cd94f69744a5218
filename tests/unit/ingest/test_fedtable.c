/* The federation table of the "public" choice (docs/operations.md, "Federation choice"): one
 * check per row, each through the whole enqueue path (hd_ingest_envelope) of an actor whose
 * choice is "public", and the same activity again for an actor whose choice is "all" (never
 * withheld). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "store.h"
#include "t.h"

#define PUBA "https://a.example/u/pub"
#define ALLA "https://a.example/u/all"
#define PUBLIC "\"https://www.w3.org/ns/activitystreams#Public\""
#define FOLLOWERS "\"https://a.example/u/pub/followers\""

static struct hd_store *st;
static int seqno;

struct row {
    const char *what;
    const char *type;
    const char *rest; /* the activity's members after id, type and actor */
    int withheld;
};

static const struct row rows[] = {
    /* Create, Update, Announce: withheld unless public */
    {"Create, public activity and object", "Create",
     "\"to\":[" PUBLIC "],\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC "]}", 0},
    {"Create, public object only", "Create", "\"object\":{\"type\":\"Note\",\"cc\":" PUBLIC "}", 0},
    {"Create, as:Public short form", "Create", "\"to\":\"as:Public\",\"object\":{\"type\":\"Note\"}",
     0},
    {"Create, followers-only", "Create",
     "\"to\":[" FOLLOWERS "],\"object\":{\"type\":\"Note\",\"to\":[" FOLLOWERS "]}", 1},
    {"Create, no addressing", "Create", "\"object\":{\"type\":\"Note\"}", 1},
    {"Create, direct (mention only)", "Create",
     "\"to\":[\"https://b.example/u/bo\"],\"object\":{\"type\":\"Note\",\"to\":[\"https://"
     "b.example/u/bo\"]}",
     1},
    {"Create, public activity wrapping a followers-only object", "Create",
     "\"to\":[" PUBLIC "],\"object\":{\"type\":\"Note\",\"to\":[" FOLLOWERS "]}", 1},
    {"Create by reference, not public", "Create", "\"object\":\"https://a.example/n/1\"", 1},
    {"Create by reference, public", "Create",
     "\"to\":[" PUBLIC "],\"object\":\"https://a.example/n/1\"", 0},
    {"Update, followers-only object", "Update",
     "\"object\":{\"type\":\"Note\",\"to\":[" FOLLOWERS "]}", 1},
    {"Update, public object", "Update", "\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC "]}", 0},
    {"Update of the actor (profile, keys), unaddressed", "Update",
     "\"object\":{\"type\":\"Person\",\"id\":\"" PUBA "\"}", 0},
    {"Update of a Service actor, followers-addressed", "Update",
     "\"to\":[" FOLLOWERS "],\"object\":{\"type\":\"Service\",\"id\":\"" PUBA "\"}", 0},
    {"Announce, public", "Announce",
     "\"to\":[" PUBLIC "],\"object\":\"https://b.example/n/9\"", 0},
    {"Announce, followers-only", "Announce",
     "\"to\":[" FOLLOWERS "],\"object\":\"https://a.example/n/2\"", 1},
    {"Announce, embedded followers-only object", "Announce",
     "\"to\":[" PUBLIC "],\"object\":{\"type\":\"Note\",\"to\":[" FOLLOWERS "]}", 1},
    /* quote posts (FEP-e232 quote, quoteUrl, Misskey _misskey_quote) */
    {"quote post (quote), followers-only", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" FOLLOWERS "],\"quote\":\"https://b.example/n/9\"}",
     1},
    {"quote post (quoteUrl), followers-only", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" FOLLOWERS "],\"quoteUrl\":\"https://b.example/n/9\"}",
     1},
    {"quote post (_misskey_quote), followers-only", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" FOLLOWERS
     "],\"_misskey_quote\":\"https://b.example/n/9\"}",
     1},
    {"quote post (quote), public, quoting by id", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC "],\"quote\":\"https://a.example/n/3\"}", 0},
    {"quote post (quoteUrl), public, quoting by id", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC "],\"quoteUrl\":\"https://a.example/n/3\"}",
     0},
    {"quote post (_misskey_quote), public, quoting by id", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC
     "],\"_misskey_quote\":\"https://a.example/n/3\"}",
     0},
    {"public quote post embedding a followers-only quoted post", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC "],\"quote\":{\"type\":\"Note\",\"id\":"
     "\"https://a.example/n/3\",\"to\":[" FOLLOWERS "]}}",
     1},
    {"public quote post (quoteUrl) embedding an unaddressed quoted post", "Update",
     "\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC "],\"quoteUrl\":{\"type\":\"Note\",\"id\":"
     "\"https://a.example/n/3\"}}",
     1},
    {"public quote post (_misskey_quote) embedding a public quoted post", "Create",
     "\"object\":{\"type\":\"Note\",\"to\":[" PUBLIC "],\"_misskey_quote\":{\"type\":\"Note\","
     "\"id\":\"https://a.example/n/3\",\"to\":[" PUBLIC "]}}",
     0},
    /* these go out whatever their addressing */
    {"Like", "Like", "\"object\":\"https://b.example/n/9\"", 0},
    {"EmojiReact", "EmojiReact", "\"content\":\"x\",\"object\":\"https://b.example/n/9\"", 0},
    {"Follow", "Follow", "\"object\":\"https://b.example/u/bo\"", 0},
    {"Accept", "Accept",
     "\"object\":{\"type\":\"Follow\",\"actor\":\"https://b.example/u/bo\",\"object\":\"" PUBA
     "\"}",
     0},
    {"Reject", "Reject", "\"object\":\"https://b.example/f/1\"", 0},
    {"Undo (of a Like)", "Undo",
     "\"object\":{\"type\":\"Like\",\"object\":\"https://b.example/n/9\"}", 0},
    {"Undo (of a followers-only Announce)", "Undo",
     "\"object\":{\"type\":\"Announce\",\"to\":[" FOLLOWERS "],\"object\":\"https://a.example/n/2\"}",
     0},
    {"Delete of a followers-only post", "Delete",
     "\"to\":[" FOLLOWERS "],\"object\":{\"type\":\"Tombstone\",\"id\":\"https://a.example/n/2\"}",
     0},
    {"Delete, unaddressed", "Delete", "\"object\":\"https://a.example/n/2\"", 0},
};

static void set_fed(const char *actor, int fed)
{
    struct hd_txn *txn;
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_actor_set_federation(st, txn, actor, fed), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
}

static int enqueue(const char *actor, const struct row *r, struct hd_ingest_result *res)
{
    char env[2048];
    struct hd_txn *txn;
    struct hd_counters c;

    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/act/%d\",\"type\":\"%s\",\"actor\":\"%s\","
             "%s},\"inboxes\":[\"https://b.example/inbox\"]}",
             ++seqno, r->type, actor, r->rest);
    memset(res, 0, sizeof(*res));
    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    hd_ingest_envelope(st, txn, &c, env, strlen(env), 1000, res);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    T_EQ_INT(hd_store_commit(txn), 0);
    return res->rc;
}

int main(void)
{
    char dir[] = "/tmp/hd-test-fedtable-XXXXXX", path[512], *pem;
    const char *data = getenv("HD_TEST_DATA"), *why;
    struct hd_ingest_result res;
    size_t len, i;
    int bad = 0;

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 64), 0);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &len);
    T_OK(pem != NULL);
    T_EQ_INT(hd_keys_add(st, PUBA "#key", PUBA, pem, len, &why), 0);
    T_EQ_INT(hd_keys_add(st, ALLA "#key", ALLA, pem, len, &why), 0);
    free(pem);
    set_fed(PUBA, HD_FED_PUBLIC);
    set_fed(ALLA, HD_FED_ALL);

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        int rc = enqueue(PUBA, r, &res);
        int got = rc == HD_ERR_INVALID && res.withheld == 1;
        t_checks++;
        if (got != r->withheld || (!r->withheld && (rc != 0 || res.deliveries != 1))) {
            fprintf(stderr, "row \"%s\": want %s, got rc=%d withheld=%zu (%s)\n", r->what,
                    r->withheld ? "withheld" : "sent", rc, res.withheld, res.why);
            bad++;
        }
        /* "all" never withholds */
        T_EQ_INT(enqueue(ALLA, r, &res), 0);
        T_EQ_INT(res.withheld, 0);
    }
    T_EQ_INT(bad, 0);
    hd_store_close(st);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}
