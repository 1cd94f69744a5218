/* What the command-line modules share (main.c and cli_*.c): opening the store with the usual
 * message, printing JSON lines, reading an input file, and the walk over host records with
 * the live figures a running engine publishes (`herald stats`, `herald top`, `herald host`). */
#ifndef HD_CLI_UTIL_H
#define HD_CLI_UTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hostctl.h"
#include "queue.h"
#include "store.h"

/* Opens the store at db; on failure prints "herald CMD: cannot open store DB: reason" to
 * stderr and returns 1 (an exit status), else 0 with *st set. cmd may be NULL. */
int hd_cli_open_store(const char *db, struct hd_store **st, const char *cmd);

/* Prints o as one compact JSON line on stdout and releases it (NULL ok). */
void hd_cli_print_json(json_t *o);

#define HD_CLI_READ_STDIN 1 /* the path "-" means standard input */

/* Reads the whole file at path (at most max bytes) into a new NUL-terminated buffer (*buf,
 * *len without the NUL; free with free()). The buffer may hold key material: every copy
 * left behind while growing is wiped, and nothing is left on failure. Returns 0, -EFBIG
 * (longer than max), -ENOMEM, -EIO (read error) or -errno from fopen. */
int hd_cli_read_file(const char *path, size_t max, int flags, char **buf, size_t *len);

/* Reads host's live record as a running engine published it; it counts only when written in
 * the last HD_LIVE_FRESH_MS before now_ms. Returns 1 with *out filled when fresh, else 0 with
 * *out zeroed (absent, stale or unreadable: the engine is not running). */
int hd_cli_live_get(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t now_ms,
                    struct hd_live *out);

/* One host of the walk: its record, and its live figures (NULL when not fresh). Borrowed for
 * the call only. */
typedef int (*hd_cli_host_cb)(const char *host, const struct hd_host_rec *rec,
                              const struct hd_live *live, void *user_data);

/* Visits the host records inside txn in host-name order, at most limit of them (0: all),
 * with their fresh live records. cb returning nonzero stops the walk with that value.
 * Returns 0, cb's value, or a store error. */
int hd_cli_hosts_walk(struct hd_store *st, struct hd_txn *txn, size_t limit, hd_cli_host_cb cb,
                      void *user_data);

#endif
