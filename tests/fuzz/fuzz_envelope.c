/* libFuzzer target: the enqueue envelope, as `herald enqueue`, the ingest endpoint and the C
 * API receive it: hd_json_raw_member (the raw scanner that keeps the activity byte for byte)
 * and hd_ingest_envelope (validation, URL normalisation, rules, persistence) on a temporary
 * store with one actor key. Each input runs in a write transaction that is aborted, so the
 * store stays as set up and every input is judged alone. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "log.h"
#include "store.h"

#ifndef HD_FUZZ_KEY
#define HD_FUZZ_KEY "tests/data/keys/test-only-rsa2048.pem"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct hd_store *setup(void)
{
    static struct hd_store *st;
    char dir[] = "/tmp/hd-fuzz-envelope-XXXXXX", pem[8192];
    const char *why = NULL;
    FILE *f;
    size_t n;

    if (st)
        return st;
    hd_log_level = HD_LOG_ERROR;
    f = fopen(HD_FUZZ_KEY, "r");
    if (!f || !mkdtemp(dir)) {
        fprintf(stderr, "fuzz_envelope: cannot read %s or make a temp dir\n", HD_FUZZ_KEY);
        abort();
    }
    n = fread(pem, 1, sizeof(pem), f);
    fclose(f);
    if (hd_store_open(&st, dir, 1024) != 0 ||
        hd_keys_add(st, "https://social.example/users/alice#main-key",
                    "https://social.example/users/alice", pem, n, &why) != 0) {
        fprintf(stderr, "fuzz_envelope: store set-up failed (%s)\n", why ? why : "store");
        abort();
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {"activity", "inboxes", "to_followers", "id", "actor"};
    struct hd_store *st = setup();
    struct hd_ingest_result res;
    struct hd_counters c;
    struct hd_txn *txn;
    size_t start, vlen;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (hd_json_raw_member((const char *)data, size, keys[i], &start, &vlen) == 0 &&
            (start > size || vlen > size - start))
            abort();
    if (size > HD_INGEST_MAX_LINE)
        return 0;
    if (hd_store_begin(st, 1, &txn) != 0)
        abort();
    if (hd_counters_get(st, txn, &c) != 0)
        abort();
    memset(&res, 0, sizeof(res));
    (void)hd_ingest_envelope(st, txn, &c, (const char *)data, size, 1700000000000ull, &res);
    if (!memchr(res.why, 0, sizeof(res.why)))
        abort();
    hd_store_abort(txn);
    return 0;
}
