/* Configuration: one INI file (inih) parsed into an immutable struct hd_config.
 *
 * Sections (every key is documented, with its default, in tools/herald.ini.example):
 *   [run]                     every tunable of struct hd_run_opts, the retry policy and the
 *                             drain deadline
 *   [ingest]                  the local ingest endpoint: listen, token_file, backpressure
 *   [metrics]                 top_hosts (per-host series only for the N largest backlogs)
 *   [log]                     level, per-host warning interval
 *   [host "example.social"]   per-host overrides: max_inflight, rate (also [host:NAME])
 *
 * Strict: an unknown section or key, a repeated scalar key or a bad value is an error that
 * names file:line. Durations take a unit (ms, s, m, h, d); a bare number means milliseconds.
 *
 * Reload: a loaded config is never modified. hd_config_holder publishes the current one
 * through an atomic pointer; a reload that fails keeps the old config and returns why.
 * Superseded configs stay allocated until the holder is freed, so a reader that loaded the
 * pointer may keep using it without any lock (reloads are rare: a few per day at most). */
#ifndef HD_CONFIG_H
#define HD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "runner.h"
#include "url.h"

#define HD_CONFIG_MAX_LISTEN 4
#define HD_CONFIG_MAX_RESOLVE 256
#define HD_CONFIG_MAX_HOSTS 65536
#define HD_CONFIG_ERR_MAX 512

struct hd_config_host {
    char name[HD_HOST_MAX]; /* lower-case host name */
    unsigned max_inflight;  /* 0 = the [run] max_inflight_host */
    double rate;            /* requests per second; 0 = unlimited */
};

struct hd_config {
    /* [run]: the strings inside (resolve, ca_file, user_agent) point into this struct. */
    struct hd_run_opts run;
    uint64_t drain_timeout_ms; /* SIGTERM: finish in-flight deliveries up to this long */

    /* [ingest] */
    char *listen[HD_CONFIG_MAX_LISTEN]; /* "unix:PATH" or "ADDR:PORT" */
    size_t nlisten;
    char *token_file;
    uint64_t max_queued;       /* backpressure bound on queued deliveries; 0 = none */
    unsigned retry_after_s;    /* Retry-After sent with 429/503 */
    size_t max_body;           /* request body cap in bytes */

    /* [metrics] */
    unsigned top_hosts;

    /* [log] */
    int log_level;             /* HD_LOG_* */
    int log_level_set;         /* the file set it (else --log-level stands) */
    uint64_t warn_interval_ms; /* per-host warnings: at most one per host per interval */

    /* [cluster] (docs/cluster.md): url NULL = single node */
    char *cluster_url, *cluster_node, *cluster_creds, *cluster_ca;
    unsigned cluster_partitions, cluster_replicas;
    uint64_t cluster_lease_ms;

    /* [host "..."] sorted by name */
    struct hd_config_host *hosts;
    size_t nhosts;

    /* owned storage */
    char *ca_file_buf, *user_agent_buf;
    char *csync_url_buf, *csync_followers_buf; /* run.collection_sync_url, _followers */
    char **resolve_buf;
    char *path;
};

/* Fills c with the defaults (no file). The result must still be released with
 * hd_config_fini. */
void hd_config_defaults(struct hd_config *c);

/* Parses the INI file at path into a new config (defaults for absent keys). Returns 0 with
 * *out set (free with hd_config_free), -errno if the file cannot be read, HD_ERR_INVALID
 * with a "path:line: reason" message in err (cap errlen) for any unknown or bad entry, or
 * -ENOMEM. *out is written only on success. */
int hd_config_load(const char *path, struct hd_config **out, char *err, size_t errlen);

/* Same as hd_config_load on a string; name is used in messages. */
int hd_config_load_string(const char *text, const char *name, struct hd_config **out, char *err,
                          size_t errlen);

void hd_config_free(struct hd_config *c); /* NULL ok */

/* Finds the [host] section for host (exact, lower-case), or NULL. The result lives as
 * long as c. */
const struct hd_config_host *hd_config_host_find(const struct hd_config *c, const char *host);

/* Describes, in buf, the settings that differ between a and b but take effect only at
 * restart (threads, listen, ...). Returns the number of such settings. */
int hd_config_restart_diff(const struct hd_config *a, const struct hd_config *b, char *buf,
                           size_t len);

/* Parses a duration ("250ms", "10s", "5m", "6h", "2d", bare number = ms). Returns 0 or
 * HD_ERR_INVALID. */
int hd_config_parse_duration(const char *s, uint64_t *ms);
/* Parses bytes with an optional k, K, M or G suffix (powers of 1024), at most max. Returns 0
 * or HD_ERR_INVALID. */
int hd_config_parse_size(const char *s, uint64_t max, uint64_t *out);

/* ---- live reload ---- */
struct hd_config_holder;

/* Takes ownership of c (not NULL). Returns 0 or -ENOMEM (c is then still the caller's). */
int hd_config_holder_new(struct hd_config_holder **out, struct hd_config *c);
/* Frees the holder and every config it ever published. NULL ok. */
void hd_config_holder_free(struct hd_config_holder *h);
/* The current config: valid until hd_config_holder_free. Safe from any thread. */
const struct hd_config *hd_config_current(const struct hd_config_holder *h);
/* Loads the file of the current config again. On success publishes the new config and
 * returns 0 (msg says what changed that needs a restart, if anything); on failure keeps the
 * old one and returns the error with msg saying why. Call from one thread at a time. */
int hd_config_reload(struct hd_config_holder *h, char *msg, size_t msglen);
/* Number of successful reloads (for metrics and tests). */
unsigned hd_config_generation(const struct hd_config_holder *h);

#endif
