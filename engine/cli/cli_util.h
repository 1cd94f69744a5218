/* What the command-line modules share (main.c and cli_*.c): opening the store with the usual
 * message, printing JSON lines, reading an input file, and the walk over host records with
 * the live figures a running engine publishes (`herald stats`, `herald top`, `herald host`). */
#ifndef HD_CLI_UTIL_H
#define HD_CLI_UTIL_H

#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hostctl.h"
#include "queue.h"
#include "store.h"

/* Opens the store at db; on failure prints "herald CMD: cannot open store DB: reason" to
 * stderr and returns 1 (an exit status), else 0 with *st set. cmd may be NULL. */
int hd_cli_open_store(const char *db, struct hd_store **st, const char *cmd);

/* Opens the store at db for a command that only reads: nothing is created. A missing store
 * prints "herald CMD: no store at DB (--db or $HERALD_DB)" and returns 1; other failures are
 * reported as hd_cli_open_store does. Returns 0 with *st set, else 1. */
int hd_cli_open_store_ro(const char *db, struct hd_store **st, const char *cmd);

/* Argument handling shared by every subcommand. A command's usage text is one string that
 * starts with "usage: herald ..." and ends in a newline.
 *
 * hd_cli_help: when argv[1..argc) holds --help or -h before a "--", prints usage on stdout
 * and returns 1 (the command then exits 0); else returns 0. */
int hd_cli_help(int argc, char **argv, const char *usage);

#define HD_CLI_USAGE_EXIT 2 /* the exit status of a usage error */

/* Prints "herald CMD: <message>" and the first line of the usage text (when not NULL) on
 * stderr, and returns HD_CLI_USAGE_EXIT. */
int hd_cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A command group (argv[0]) given no subcommand, or one it does not know (argv[1]): says so,
 * listing the expected ones, and returns HD_CLI_USAGE_EXIT. */
int hd_cli_bad_sub(const char *cmd, const char *usage, int argc, char **argv,
                   const char *expected);

/* getopt_long over argv[0..argc) (argv[0] is the command's own name) without getopt's own
 * messages. Set optind = 0 before the first call. Returns the next option's value, -1 at the
 * end, or '?' after printing which argument is wrong (an unknown option, a flag without its
 * value, or a value given to a flag that takes none) with the usage: the caller then returns
 * HD_CLI_USAGE_EXIT. */
int hd_cli_getopt(const char *cmd, const char *usage, int argc, char **argv, const char *shortopts,
                  const struct option *lo);

/* Checks that argv[optind..argc) holds between min and max positional arguments; else prints
 * what is missing or unexpected and returns HD_CLI_USAGE_EXIT. Returns 0 when fine. */
int hd_cli_positional(const char *cmd, const char *usage, int argc, char **argv, int min, int max);

/* For commands whose only flag is --json (json not NULL; set to 1 when given) or that take
 * no flag at all (json NULL): reads argv[0..argc) (argv[0] is the command's name) and checks
 * for min to max positional arguments, which are then argv[optind..argc). Returns 0, or
 * HD_CLI_USAGE_EXIT after saying what is wrong. */
int hd_cli_simple_args(const char *cmd, const char *usage, int argc, char **argv, int *json,
                       int min, int max);

/* A duration: 250ms, 10s, 5m, 1h or 2d; a bare number is in bare_ms units (each flag keeps
 * the unit it documents: 1 for milliseconds, 1000 for seconds). The result must lie in
 * [min_ms, max_ms]. Returns 0 with *ms set, or -1. */
int hd_cli_duration(const char *s, uint64_t bare_ms, uint64_t min_ms, uint64_t max_ms,
                    uint64_t *ms);

/* ms since the epoch as ISO 8601 UTC ("2026-12-07T03:46:04Z") into buf (cap >= 21), or "-"
 * for 0 (never happened). Returns buf. */
const char *hd_cli_iso_time(uint64_t ms, char *buf, size_t cap);

/* A whole number in [min, max] (decimal digits only). Returns 0 with *out set, or -1. */
int hd_cli_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Prints "herald CMD: invalid value for --FLAG: VALUE (what)" on stderr and returns
 * HD_CLI_USAGE_EXIT. what may be NULL. */
int hd_cli_bad_value(const char *cmd, const char *flag, const char *value, const char *what);

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

/* --dry-run: the queued deliveries per host inside a write transaction before a change, to
 * print what the change (made in the same transaction, then aborted) would drop. */
struct hd_cli_qsnap {
    char (*host)[HD_HOST_MAX];
    uint64_t *queued;
    size_t n, cap;
};

/* Records every host's queued count inside txn. Returns 0, -ENOMEM or a store error (snap is
 * then empty but may be passed to hd_cli_qsnap_fini). */
int hd_cli_qsnap_take(struct hd_store *st, struct hd_txn *txn, struct hd_cli_qsnap *snap);

/* Prints on stdout, for every host whose queue is now shorter inside txn, "  HOST  N" (at most
 * max lines; then "  ... and K more hosts"), and returns the total difference through *total
 * and the number of hosts through *hosts. Returns 0 or a store error. */
int hd_cli_qsnap_diff(struct hd_store *st, struct hd_txn *txn, const struct hd_cli_qsnap *snap,
                      size_t max, uint64_t *total, uint64_t *hosts);

void hd_cli_qsnap_fini(struct hd_cli_qsnap *snap);

#endif
