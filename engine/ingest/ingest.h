/* Ingest: validate an envelope, expand its audience, persist the activity and its deliveries.
 *
 * Envelope (one JSON object, one per line in batches):
 *   {"activity": {...}, "inboxes": ["https://host/inbox", ...], "to_followers": false}
 * The activity needs string "id", "type" and "actor" (or an actor object with "id"); the
 * actor needs a signing key. The activity is stored byte for byte as it appears in the
 * envelope. Unknown envelope keys are refused (a typo must not silently drop recipients).
 * The same inbox twice is one delivery. Used by the CLI, the ingest endpoint and the C API.
 *
 * Recipients: each "inboxes" entry is an inbox URL string or {"inbox": URL, "shared_inbox":
 * URL|null} (delivered to the shared inbox when there is one). "to_followers": true adds the
 * actor's distinct delivery inboxes (audience.h) at enqueue time. Every distinct delivery
 * inbox gets exactly one delivery: an explicit recipient whose shared inbox (or inbox) is
 * already in the set adds none.
 *
 * Optional keys: "not_before" (epoch ms, or an RFC 3339 string): a hold, nothing is due
 * before then; "priority" ("high", "normal", "low"); "to_known_hosts" (true: also every
 * host that took a delivery and is neither dead nor gone, at its known inbox, known.h;
 * priority low unless given). See the README (enqueue).
 */
#ifndef HD_INGEST_H
#define HD_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define HD_INGEST_MAX_LINE (1u << 20) /* 1 MiB per envelope */

struct hd_ingest_result {
    int rc;             /* 0 accepted, HD_ERR_DUPLICATE, HD_ERR_INVALID, HD_ERR_NO_KEY, ... */
    uint64_t seq;       /* accepted: new seq; duplicate: the original seq */
    size_t deliveries;  /* deliveries persisted */
    size_t withheld;    /* 1 if withheld by the actor's federation choice */
    size_t refused_rules; /* inboxes refused by defederation rules (rules.h): not queued */
    char why[256];      /* reason when rc != 0 */
};

/* Processes one envelope inside the write txn `txn` (as a nested transaction, so a refused
 * line changes nothing). c are the counters read in txn; the caller writes them back before
 * committing. Returns res->rc. */
int hd_ingest_envelope(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c, const char *line,
                       size_t len, uint64_t now_ms, struct hd_ingest_result *res);

/* Cluster mode (engine/cluster/): keep(host) says which destinations this node owns (1 keep,
 * 0 leave to another node); local_id, when not NULL, is the id the local store de-duplicates
 * on instead of the activity's own (the body is unchanged). An envelope none of whose
 * destinations are kept stores nothing and returns 0 with deliveries 0 and seq 0. */
struct hd_ingest_filter {
    int (*keep)(const char *host, size_t host_len, void *user_data);
    void *user_data;
    const char *local_id;
};
int hd_ingest_envelope_filtered(struct hd_store *st, struct hd_txn *txn, struct hd_counters *c,
                                const char *line, size_t len, uint64_t now_ms,
                                const struct hd_ingest_filter *f, struct hd_ingest_result *res);

/* Finds the raw text of the value of top-level key `key` in the JSON object text. Returns 0
 * with *start and *vlen set, or HD_ERR_NOT_FOUND / HD_ERR_INVALID. */
int hd_json_raw_member(const char *text, size_t len, const char *key, size_t *start,
                       size_t *vlen);

#endif
