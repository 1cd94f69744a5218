/* Defederation rules: domain blocks (Mastodon's severities), allowlist mode, the snapshot that
 * decides per delivery, and Mastodon's CSV (rules_csv.c). Dropping what is already queued for
 * a host the rules refuse is enforcement, in policy/enforce.h.
 *
 * What each severity means for an outbound engine:
 *   suspend  nothing is sent: new deliveries are refused at enqueue, queued ones are dropped
 *            (counted in hd_counters.dropped) and the runner refuses any it still holds.
 *   silence  delivery continues. Silencing (Mastodon's "limit") is about what the platform
 *            shows its users from that server, not about what we send to it: followers on a
 *            silenced server still expect the posts they follow.
 *   noop     delivery continues; the row exists for its reject_media / reject_reports flags
 *            and comment, which the platform (not Herald) applies. Kept so that a Mastodon
 *            export round-trips through Herald unchanged.
 *
 * Matching: a rule for example.com covers example.com and every subdomain (a.b.example.com),
 * never badexample.com. A rule written "*.example.com" covers the subdomains only. In
 * allowlist mode a host receives deliveries only when an allow rule covers it and no
 * suspend rule does (a suspend always wins).
 *
 * Domains are normalised as inbox hosts are (lower case, IDN to A-labels, no trailing dot),
 * so a rule and a queue key compare byte for byte.
 */
#ifndef HD_RULES_H
#define HD_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "url.h"

enum hd_severity { HD_SEV_NOOP = 0, HD_SEV_SILENCE = 1, HD_SEV_SUSPEND = 2 };
enum hd_fed_mode { HD_MODE_OPEN = 0, HD_MODE_ALLOWLIST = 1 };

#define HD_DOMAIN_MAX (HD_HOST_MAX + 2) /* room for a "*." prefix */
#define HD_COMMENT_MAX 1024

struct hd_block {
    char domain[HD_DOMAIN_MAX]; /* normalised; "*." prefix: subdomains only */
    int severity;               /* enum hd_severity */
    int reject_media, reject_reports, obfuscate;
    char comment[HD_COMMENT_MAX]; /* Mastodon's public_comment */
    uint64_t created_ms;
};

/* Normalises a rule domain (optionally "*."-prefixed) into out (cap >= HD_DOMAIN_MAX).
 * Returns 0 or HD_ERR_INVALID (not a host name, or a bare "*"). */
int hd_rules_domain_norm(const char *in, char *out, size_t cap);

/* "suspend" / "silence" / "noop" (also Mastodon's older "none" for noop). Returns the
 * severity or -1. */
int hd_severity_parse(const char *s, size_t n);
const char *hd_severity_name(int sev);

/* ---- the store (all inside the caller's transaction; every change bumps the generation) */

/* Adds or replaces b (b->domain must be normalised). Returns 0 or a store error. */
int hd_block_put(struct hd_store *st, struct hd_txn *txn, const struct hd_block *b);
/* Removes the rule for domain (normalised). Returns 0, HD_ERR_NOT_FOUND or a store error. */
int hd_block_del(struct hd_store *st, struct hd_txn *txn, const char *domain);
/* Reads one rule. Returns 0, HD_ERR_NOT_FOUND or a store/codec error. */
int hd_block_get(struct hd_store *st, struct hd_txn *txn, const char *domain, struct hd_block *out);
typedef int (*hd_block_cb)(const struct hd_block *b, void *user_data);
/* Visits every block in domain order; cb returns nonzero to stop. Returns 0 or an error. */
int hd_block_foreach(struct hd_store *st, struct hd_txn *txn, hd_block_cb cb, void *user_data);

int hd_allow_put(struct hd_store *st, struct hd_txn *txn, const char *domain, uint64_t now_ms);
int hd_allow_del(struct hd_store *st, struct hd_txn *txn, const char *domain); /* HD_ERR_NOT_FOUND */
typedef int (*hd_allow_cb)(const char *domain, uint64_t created_ms, void *user_data);
int hd_allow_foreach(struct hd_store *st, struct hd_txn *txn, hd_allow_cb cb, void *user_data);

/* Federation mode (enum hd_fed_mode; HD_MODE_OPEN when never set). */
int hd_rules_mode_get(struct hd_store *st, struct hd_txn *txn, int *mode);
int hd_rules_mode_set(struct hd_store *st, struct hd_txn *txn, int mode);

/* The rules generation: bumped by every change above. 0 for a store that never had rules
 * (or on a read error). A runner polls it (one LMDB get) and reloads its snapshot when it
 * moves. */
uint64_t hd_rules_generation(struct hd_store *st, struct hd_txn *txn);

/* ---- the immutable snapshot used per delivery */

struct hd_rules;

/* Builds a snapshot of the rules visible in txn (read or write). Only what decides delivery
 * is kept: suspend blocks, allows and the mode. *out is owned by the caller (hd_rules_free)
 * and is independent of txn. Returns 0, -ENOMEM or a store error. */
int hd_rules_load(struct hd_store *st, struct hd_txn *txn, struct hd_rules **out);
void hd_rules_free(struct hd_rules *r); /* NULL ok */
/* 1: deliver to host; 0: refuse (a suspend covers it, or allowlist mode and no allow does).
 * host is an inbox host as hd_url_parse produces it (lower case, no trailing dot); upper
 * case and a trailing dot are tolerated. Cost: one hash lookup per dot-separated suffix.
 * Safe to call from many threads at once (the snapshot is never modified). */
int hd_rules_allows(const struct hd_rules *r, const char *host);
/* The generation the snapshot was built at. */
uint64_t hd_rules_snapshot_generation(const struct hd_rules *r);
/* The federation mode the snapshot was built with (enum hd_fed_mode). */
int hd_rules_snapshot_mode(const struct hd_rules *r);
/* Number of rules in the snapshot (suspend blocks + allows). */
size_t hd_rules_count(const struct hd_rules *r);

/* The same decision read straight from the store (a few LMDB gets per suffix), for callers
 * that check a few hosts and hold no snapshot, such as ingest. Returns 1, 0 or an error. */
int hd_rules_check(struct hd_store *st, struct hd_txn *txn, const char *host);

/* ---- Mastodon CSV (rules_csv.c) */

#define HD_BLOCKS_CSV_HEADER "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate"
#define HD_IMPORT_MAX_ROWS 1000000
#define HD_IMPORT_MAX_ERRORS 100

struct hd_import_err {
    size_t line; /* 1-based line where the bad record starts */
    char why[160];
};

struct hd_import {
    struct hd_block *blocks;
    size_t n, cap;
    struct hd_import_err *errs;
    size_t nerr;      /* errors recorded (at most HD_IMPORT_MAX_ERRORS) */
    size_t nerr_total; /* errors seen */
};

/* Parses a Mastodon domain-block CSV: an optional header row naming the columns (any
 * order; "#domain" or "domain"; unknown columns ignored), or, without a header, the
 * export's column order; RFC 4180 quoting ("" escapes, quoted line breaks); CRLF or LF;
 * blank lines skipped; booleans true/false (also 1/0, yes/no, empty = false); a missing
 * severity means suspend (Mastodon's import default). Rows are validated and normalised;
 * bad ones are recorded in out->errs with their line numbers. The caller applies out->blocks
 * only when out->nerr_total is 0. Returns 0 or -ENOMEM / HD_ERR_FULL (more rows than
 * HD_IMPORT_MAX_ROWS). Call hd_import_fini in every case. */
int hd_blocks_parse_csv(const char *buf, size_t len, struct hd_import *out);
void hd_import_fini(struct hd_import *im);

/* 1 if s[0..n) is well-formed UTF-8 (comments must be: they appear in JSON listings). */
int hd_rules_utf8_valid(const char *s, size_t n);

/* Formats b as one CSV row (no line end), quoting where needed. Returns the length, or
 * HD_ERR_FULL if cap is too small. */
int hd_block_csv_row(const struct hd_block *b, char *buf, size_t cap);

#endif
