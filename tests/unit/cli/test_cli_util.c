/* What the command-line modules share: reading an input file up to a size (exactly the
 * maximum is allowed, one byte more is not; "-" is standard input only when asked), and the
 * walk over host records with live figures only when fresh, in name order, up to a limit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_util.h"
#include "clock.h"
#include "err.h"
#include "hostctl.h"
#include "ingest.h"
#include "keyadd.h"
#include "store.h"
#include "t.h"

#define ACTOR "https://a.example/users/al"

static void write_bytes(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    T_OK(f != NULL);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

static void test_read_file(const char *dir)
{
    char path[512], *buf = NULL;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/f", dir);
    /* sizes around the first buffer (64 KiB) and around the maximum */
    {
        static const struct {
            size_t size, max;
            int rc;
        } cases[] = {
            {0, 10, 0},           {10, 10, 0},           {11, 10, -EFBIG},
            {65535, 65536, 0},    {65536, 65536, 0},     {65537, 65536, -EFBIG},
            {65537, 1 << 20, 0},  {1 << 20, 1 << 20, 0}, {(1 << 20) + 1, 1 << 20, -EFBIG},
            {300000, 300000, 0},  {300001, 300000, -EFBIG},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            write_bytes(path, cases[i].size);
            buf = NULL;
            len = 7;
            T_EQ_INT(hd_cli_read_file(path, cases[i].max, 0, &buf, &len), cases[i].rc);
            if (cases[i].rc) {
                T_OK(buf == NULL);
                T_EQ_INT(len, 7); /* untouched on failure */
                continue;
            }
            T_EQ_INT(len, cases[i].size);
            T_EQ_INT(buf[len], 0);
            for (size_t k = 0; k < len; k++)
                if (buf[k] != 'a' + (int)(k % 26))
                    T_FAIL("byte %zu of %zu differs", k, len);
            free(buf);
        }
    }
    snprintf(path, sizeof(path), "%s/absent", dir);
    T_EQ_INT(hd_cli_read_file(path, 10, 0, &buf, &len), -ENOENT);
    /* a directory opens but cannot be read */
    T_EQ_INT(hd_cli_read_file(dir, 10, 0, &buf, &len), -EIO);
    /* "-" is a file name unless standard input is asked for */
    T_EQ_INT(hd_cli_read_file("-", 10, 0, &buf, &len), -ENOENT);
    snprintf(path, sizeof(path), "%s/in", dir);
    {
        FILE *f = fopen(path, "w");
        T_OK(f != NULL);
        fputs("from stdin\n", f);
        fclose(f);
        T_OK(freopen(path, "r", stdin) != NULL);
    }
    T_EQ_INT(hd_cli_read_file("-", 100, HD_CLI_READ_STDIN, &buf, &len), 0);
    T_EQ_STR(buf, "from stdin\n");
    free(buf);
}

struct seen {
    char names[8][64];
    int live[8];
    uint32_t in_flight[8];
    size_t n;
    size_t stop_at; /* return nonzero on this call (1-based); 0 never */
};

static int on_host(const char *host, const struct hd_host_rec *rec, const struct hd_live *live,
                   void *user_data)
{
    struct seen *s = user_data;
    (void)rec;
    T_OK(s->n < 8);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", host);
    s->live[s->n] = live != NULL;
    s->in_flight[s->n] = live ? live->in_flight : 0;
    s->n++;
    return s->n == s->stop_at ? 42 : 0;
}

static void test_hosts_walk(const char *dir, const char *data)
{
    char path[512], *pem;
    const char *why = NULL;
    struct hd_store *st;
    struct hd_txn *txn;
    struct hd_counters c;
    struct hd_ingest_result r;
    struct hd_live l;
    struct seen s;
    size_t len;
    uint64_t now = hd_wall_ms();
    const char *env =
        "{\"activity\":{\"id\":\"https://a.example/a/1\",\"type\":\"Create\",\"actor\":\"" ACTOR
        "\"},\"inboxes\":[\"https://c.example/inbox\",\"https://a.example/inbox\","
        "\"https://b.example/inbox\"]}";

    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 0), 0);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &len);
    T_OK(pem != NULL);
    T_EQ_INT(hd_keys_add(st, ACTOR "#main-key", ACTOR, pem, len, &why), 0);
    free(pem);

    T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
    T_EQ_INT(hd_counters_get(st, txn, &c), 0);
    T_EQ_INT(hd_ingest_envelope(st, txn, &c, env, strlen(env), now, &r), 0);
    T_EQ_INT(hd_counters_put(st, txn, &c), 0);
    memset(&l, 0, sizeof(l));
    l.in_flight = 3;
    l.updated_ms = now; /* fresh */
    T_EQ_INT(hd_live_put(st, txn, "a.example", &l), 0);
    l.in_flight = 9;
    l.updated_ms = now - HD_LIVE_FRESH_MS - 1000; /* stale: the engine stopped */
    T_EQ_INT(hd_live_put(st, txn, "b.example", &l), 0);
    T_EQ_INT(hd_store_commit(txn), 0);

    T_EQ_INT(hd_store_begin(st, 0, &txn), 0);
    T_EQ_INT(hd_cli_live_get(st, txn, "a.example", now, &l), 1);
    T_EQ_INT(l.in_flight, 3);
    T_EQ_INT(hd_cli_live_get(st, txn, "b.example", now, &l), 0);
    T_EQ_INT(l.in_flight, 0); /* zeroed */
    T_EQ_INT(hd_cli_live_get(st, txn, "c.example", now, &l), 0);

    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_cli_hosts_walk(st, txn, 0, on_host, &s), 0);
    T_EQ_INT(s.n, 3);
    T_EQ_STR(s.names[0], "a.example");
    T_EQ_STR(s.names[1], "b.example");
    T_EQ_STR(s.names[2], "c.example");
    T_EQ_INT(s.live[0], 1);
    T_EQ_INT(s.in_flight[0], 3);
    T_EQ_INT(s.live[1], 0);
    T_EQ_INT(s.live[2], 0);

    memset(&s, 0, sizeof(s));
    T_EQ_INT(hd_cli_hosts_walk(st, txn, 2, on_host, &s), 0);
    T_EQ_INT(s.n, 2);

    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    T_EQ_INT(hd_cli_hosts_walk(st, txn, 0, on_host, &s), 42);
    T_EQ_INT(s.n, 2);
    hd_store_abort(txn);
    hd_store_close(st);
}

int main(void)
{
    char dir[] = "/tmp/hd-test-cli-util-XXXXXX", cmd[600];
    const char *data = getenv("HD_TEST_DATA");

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    test_read_file(dir);
    test_hosts_walk(dir, data);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    T_EQ_INT(system(cmd), 0);
    T_DONE();
}
