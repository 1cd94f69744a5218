/* INI configuration (see config.h for the format and tools/herald.ini.example for every key). */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "log.h"

/* Parse state: inih does not pass line numbers to the handler in Debian's build, so the
 * line reader counts them (the handler always runs right after its line was read). */
struct parse {
    struct hd_config *c;
    const char *name;
    int line;
    int failed;
    char *err;
    size_t errlen;
    /* stream source */
    FILE *f;
    const char *s;
    /* scalar keys already seen in the current section (bit per key index) */
    char cur_section[HD_HOST_MAX + 16];
    uint64_t seen;
    struct hd_config_host *host; /* current [host] section, NULL otherwise */
    size_t hosts_cap;
    unsigned sections_seen;
};

static void fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct parse *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->failed++)
        return; /* the first error is the one to fix first */
    n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

void hd_config_defaults(struct hd_config *c)
{
    memset(c, 0, sizeof(*c));
    hd_run_opts_default(&c->run);
    c->drain_timeout_ms = 30000;
    c->max_queued = 10000000;
    c->retry_after_s = 5;
    c->max_body = 64u << 20;
    c->top_hosts = 50;
    c->log_level = HD_LOG_INFO;
    c->warn_interval_ms = 60000;
    c->cluster_partitions = 256;
    c->cluster_replicas = 1;
    c->cluster_lease_ms = 15000;
}

/* ---------------------------------------------------------------- value parsers */

/* A decimal number at the start of s (no sign, no space): *v, and *end after its digits. */
static int parse_digits(const char *s, unsigned long long *v, char **end)
{
    if (!isdigit((unsigned char)s[0]))
        return HD_ERR_INVALID;
    errno = 0;
    *v = strtoull(s, end, 10);
    return errno ? HD_ERR_INVALID : 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *e;
    unsigned long long v;

    if (parse_digits(s, &v, &e) != 0 || *e || v > max)
        return HD_ERR_INVALID;
    *out = v;
    return 0;
}

int hd_config_parse_duration(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1}};
    char *e;
    unsigned long long v;

    if (parse_digits(s, &v, &e) != 0)
        return HD_ERR_INVALID;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(e, units[i].unit) == 0) {
            if (v > UINT64_MAX / units[i].mul)
                return HD_ERR_INVALID;
            *ms = v * units[i].mul;
            return 0;
        }
    }
    return HD_ERR_INVALID;
}

/* Bytes with an optional k, K, M or G suffix (powers of 1024), at most max. */
static int parse_size(const char *s, uint64_t max, uint64_t *out);
int hd_config_parse_size(const char *s, uint64_t max, uint64_t *out)
{
    return parse_size(s, max, out);
}

static int parse_size(const char *s, uint64_t max, uint64_t *out)
{
    char tmp[32];
    size_t n = strlen(s);
    uint64_t mul = 1, v;

    if (n == 0 || n >= sizeof(tmp))
        return HD_ERR_INVALID;
    memcpy(tmp, s, n + 1);
    if (tmp[n - 1] == 'k' || tmp[n - 1] == 'K')
        mul = 1024;
    else if (tmp[n - 1] == 'M')
        mul = 1u << 20;
    else if (tmp[n - 1] == 'G')
        mul = 1u << 30;
    if (mul > 1)
        tmp[n - 1] = 0;
    if (parse_u64(tmp, max / mul, &v) != 0)
        return HD_ERR_INVALID;
    *out = v * mul;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on") || !strcmp(s, "1"))
        *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off") || !strcmp(s, "0"))
        *out = 0;
    else
        return HD_ERR_INVALID;
    return 0;
}

static int parse_rate(const char *s, double *out)
{
    char *e;
    double v;

    if (!isdigit((unsigned char)s[0]))
        return HD_ERR_INVALID;
    errno = 0;
    v = strtod(s, &e);
    if (errno || *e || !isfinite(v) || v < 0 || v > 1e6)
        return HD_ERR_INVALID;
    *out = v;
    return 0;
}

/* ---------------------------------------------------------------- key tables */

enum ktype { K_UINT, K_U64, K_DUR_U, K_DUR_U64, K_BOOL, K_STR, K_LIST, K_LEVEL, K_SIZE, K_DEADQ };

struct key {
    const char *section;
    const char *name;
    enum ktype type;
    size_t off;     /* offset in struct hd_config */
    uint64_t min, max;
};

#define OFF(m) offsetof(struct hd_config, m)
#define DAY30 (30ull * 86400000)

/* Every key, with its bounds. Keep in the same order as tools/herald.ini.example. */
static const struct key keys[] = {
    {"run", "threads", K_UINT, OFF(run.threads), 0, 256},
    {"run", "max_inflight_host", K_UINT, OFF(run.max_inflight_host), 1, 100000},
    {"run", "max_inflight_thread", K_UINT, OFF(run.max_inflight_thread), 1, 10000000},
    {"run", "max_active_hosts", K_UINT, OFF(run.max_active_hosts), 1, 1000000},
    {"run", "slow_hosts", K_UINT, OFF(run.slow_hosts), 0, 1000000},
    {"run", "slow_after", K_DUR_U, OFF(run.slow_after_ms), 1, 3600000},
    {"run", "idle_timeout", K_DUR_U, OFF(run.idle_timeout_ms), 1, 3600000},
    {"run", "max_idle_conns", K_UINT, OFF(run.max_idle_conns), 0, 1000000},
    {"run", "max_idle_memory", K_SIZE, OFF(run.max_idle_memory), 0, 1ull << 40},
    {"run", "connect_timeout", K_DUR_U, OFF(run.connect_timeout_ms), 1, 3600000},
    {"run", "tls_timeout", K_DUR_U, OFF(run.tls_timeout_ms), 1, 3600000},
    {"run", "response_timeout", K_DUR_U, OFF(run.response_timeout_ms), 1, 3600000},
    {"run", "commit_interval", K_DUR_U, OFF(run.commit_interval_ms), 1, 10000},
    {"run", "commit_batch", K_UINT, OFF(run.commit_batch), 1, 1000000},
    {"run", "commit_gap", K_DUR_U, OFF(run.commit_gap_ms), 0, 10000},
    {"run", "retry_base", K_DUR_U64, OFF(run.retry.base_ms), 0, DAY30},
    {"run", "retry_cap", K_DUR_U64, OFF(run.retry.cap_ms), 0, DAY30},
    {"run", "max_attempts", K_UINT, OFF(run.retry.max_attempts), 1, 1000},
    {"run", "retry_after_cap", K_DUR_U64, OFF(run.retry.retry_after_cap_ms), 0, DAY30},
    {"run", "window_initial", K_UINT, OFF(run.hostpol.win_init), 1, 100000},
    {"run", "window_decrease_gap", K_DUR_U64, OFF(run.hostpol.decrease_gap_ms), 0, 3600000},
    {"run", "breaker_threshold", K_UINT, OFF(run.hostpol.breaker_threshold), 1, 100000},
    {"run", "breaker_probe", K_DUR_U64, OFF(run.hostpol.probe_base_ms), 1, DAY30},
    {"run", "breaker_probe_max", K_DUR_U64, OFF(run.hostpol.probe_max_ms), 1, DAY30},
    {"run", "dead_days", K_UINT, OFF(run.dead_days), 1, 3650},
    {"run", "dead_probe_interval", K_DUR_U64, OFF(run.hostpol.dead_probe_ms), 1, DAY30},
    {"run", "dead_host_queue", K_DEADQ, OFF(run.dead_queue_expire), 0, 1},
    {"run", "day_length", K_DUR_U64, OFF(run.day_ms), 1, DAY30},
    {"run", "max_age", K_DUR_U64, OFF(run.max_age_ms), 0, 365ull * 86400000},
    {"run", "drain_timeout", K_DUR_U64, OFF(drain_timeout_ms), 0, 3600000},
    {"run", "allow_private_addresses", K_BOOL, OFF(run.allow_private), 0, 1},
    {"run", "ca_file", K_STR, OFF(ca_file_buf), 0, 0},
    {"run", "user_agent", K_STR, OFF(user_agent_buf), 0, 0},
    {"run", "resolve", K_LIST, 0, 0, 0},
    {"run", "progress", K_BOOL, OFF(run.progress), 0, 1},
    {"run", "key_cache", K_UINT, OFF(run.key_cache), 1, 10000000},
    {"run", "collection_sync_url", K_STR, OFF(csync_url_buf), 0, 0},
    {"run", "collection_sync_followers", K_STR, OFF(csync_followers_buf), 0, 0},
    {"ingest", "listen", K_LIST, 0, 0, 0},
    {"ingest", "token_file", K_STR, OFF(token_file), 0, 0},
    {"ingest", "max_queued", K_U64, OFF(max_queued), 0, UINT64_MAX},
    {"ingest", "retry_after", K_UINT, OFF(retry_after_s), 1, 3600},
    {"ingest", "max_body", K_SIZE, OFF(max_body), 1024, 1ull << 30},
    {"metrics", "top_hosts", K_UINT, OFF(top_hosts), 0, 10000},
    {"log", "level", K_LEVEL, OFF(log_level), 0, 3},
    {"log", "warn_interval", K_DUR_U64, OFF(warn_interval_ms), 0, 86400000},
    {"cluster", "url", K_STR, OFF(cluster_url), 0, 0},
    {"cluster", "node", K_STR, OFF(cluster_node), 0, 0},
    {"cluster", "partitions", K_UINT, OFF(cluster_partitions), 1, 4096},
    {"cluster", "replicas", K_UINT, OFF(cluster_replicas), 1, 5},
    {"cluster", "lease", K_DUR_U64, OFF(cluster_lease_ms), 1000, 3600000},
    {"cluster", "creds", K_STR, OFF(cluster_creds), 0, 0},
    {"cluster", "ca", K_STR, OFF(cluster_ca), 0, 0},
};

_Static_assert(sizeof(keys) / sizeof(keys[0]) <= 64, "struct parse.seen has one bit per key");

static int set_string(struct parse *p, char **dst, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

static int add_list(struct parse *p, const char *name, const char *value)
{
    struct hd_config *c = p->c;
    char *s;

    if (!strcmp(name, "listen")) {
        if (c->nlisten >= HD_CONFIG_MAX_LISTEN) {
            fail(p, "at most %d listen addresses", HD_CONFIG_MAX_LISTEN);
            return HD_ERR_INVALID;
        }
        if (strncmp(value, "unix:", 5) != 0 && !strchr(value, ':')) {
            fail(p, "listen must be unix:PATH or ADDR:PORT, got '%s'", value);
            return HD_ERR_INVALID;
        }
        s = strdup(value);
        if (!s)
            return -ENOMEM;
        c->listen[c->nlisten++] = s;
        return 0;
    }
    /* resolve: HOST:PORT:ADDR, checked again by the resolver at start */
    if (c->run.nresolve >= HD_CONFIG_MAX_RESOLVE) {
        fail(p, "at most %d resolve entries", HD_CONFIG_MAX_RESOLVE);
        return HD_ERR_INVALID;
    }
    if (!strchr(value, ':') || strchr(value, ':') == strrchr(value, ':')) {
        fail(p, "resolve must be HOST:PORT:ADDR, got '%s'", value);
        return HD_ERR_INVALID;
    }
    if (!c->resolve_buf) {
        c->resolve_buf = calloc(HD_CONFIG_MAX_RESOLVE, sizeof(char *));
        if (!c->resolve_buf)
            return -ENOMEM;
    }
    s = strdup(value);
    if (!s)
        return -ENOMEM;
    c->resolve_buf[c->run.nresolve++] = s;
    c->run.resolve = (const char *const *)c->resolve_buf;
    return 0;
}

/* Reads value as key k's type into *v. Returns 0 or HD_ERR_INVALID (k's bounds are checked
 * by the caller). */
static int parse_value(struct parse *p, const struct key *k, const char *value, uint64_t *v)
{
    int b = 0, rc;

    switch (k->type) {
    case K_UINT:
    case K_U64:
        return parse_u64(value, k->max, v);
    case K_SIZE:
        return parse_size(value, k->max, v);
    case K_DUR_U:
    case K_DUR_U64:
        return hd_config_parse_duration(value, v);
    case K_BOOL:
        rc = parse_bool(value, &b);
        *v = (uint64_t)b;
        return rc;
    case K_DEADQ:
        *v = strcmp(value, "expire") == 0;
        return *v || strcmp(value, "keep") == 0 ? 0 : HD_ERR_INVALID;
    case K_LEVEL:
        b = hd_log_parse_level(value);
        p->c->log_level_set = 1;
        *v = (uint64_t)b;
        return b < 0 ? HD_ERR_INVALID : 0;
    default:
        return HD_ERR_INVALID; /* strings and lists are not numbers */
    }
}

/* What a bad value for k should have looked like. */
static void bad_value(struct parse *p, const struct key *k, const char *value)
{
    if (k->type == K_DUR_U || k->type == K_DUR_U64)
        fail(p, "bad value for %s: '%s' (a duration such as 250ms, 10s, 5m, 6h, 2d)", k->name,
             value);
    else if (k->type == K_BOOL)
        fail(p, "bad value for %s: '%s' (true or false)", k->name, value);
    else if (k->type == K_LEVEL)
        fail(p, "bad value for %s: '%s' (error, warn, info or debug)", k->name, value);
    else if (k->type == K_DEADQ)
        fail(p, "bad value for %s: '%s' (keep or expire)", k->name, value);
    else
        fail(p, "bad value for %s: '%s' (an integer from %llu to %llu)", k->name, value,
             (unsigned long long)k->min, (unsigned long long)k->max);
}

/* Writes v into the field of struct hd_config that k names, in that field's type. */
static void store_value(struct hd_config *c, const struct key *k, uint64_t v)
{
    char *base = (char *)c;

    switch (k->type) {
    case K_UINT:
    case K_DUR_U:
        *(unsigned *)(base + k->off) = (unsigned)v;
        break;
    case K_BOOL:
    case K_LEVEL:
    case K_DEADQ:
        *(int *)(base + k->off) = (int)v;
        break;
    case K_SIZE:
        *(size_t *)(base + k->off) = (size_t)v;
        break;
    default:
        *(uint64_t *)(base + k->off) = v;
        break;
    }
}

static int set_key(struct parse *p, const struct key *k, const char *value)
{
    uint64_t v = 0;

    if (k->type == K_STR) {
        if (!value[0]) {
            fail(p, "%s must not be empty", k->name);
            return HD_ERR_INVALID;
        }
        return set_string(p, (char **)((char *)p->c + k->off), value);
    }
    if (k->type == K_LIST)
        return add_list(p, k->name, value);
    if (parse_value(p, k, value, &v) != 0 || v < k->min || v > k->max) {
        bad_value(p, k, value);
        return HD_ERR_INVALID;
    }
    store_value(p->c, k, v);
    return 0;
}

/* "host \"example.social\"" or "host:example.social" -> example.social (lower-cased). */
static int host_section_name(const char *section, char *out, size_t outlen)
{
    const char *s;
    size_t n;

    if (!strncmp(section, "host:", 5)) {
        s = section + 5;
        n = strlen(s);
    } else if (!strncmp(section, "host ", 5)) {
        s = section + 5;
        while (*s == ' ')
            s++;
        n = strlen(s);
        if (n < 2 || s[0] != '"' || s[n - 1] != '"')
            return HD_ERR_INVALID;
        s++;
        n -= 2;
    } else {
        return HD_ERR_NOT_FOUND;
    }
    if (n == 0 || n >= outlen)
        return HD_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            /* An internationalised name ([host "bücher.example"]): its A-label form
             * (xn--bcher-kva.example), as inbox hosts are keyed. */
            char url[HD_HOST_MAX + 16];
            struct hd_url u;
            if (memchr(s, '/', n) || memchr(s, '@', n) || memchr(s, ':', n) ||
                memchr(s, '?', n) || memchr(s, '#', n) || memchr(s, '%', n))
                return HD_ERR_INVALID;
            snprintf(url, sizeof(url), "https://%.*s/", (int)n, s);
            if (hd_url_parse(url, &u) != 0 || strlen(u.host) >= outlen)
                return HD_ERR_INVALID;
            memcpy(out, u.host, strlen(u.host) + 1);
            return 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == ':' || ch == '[' ||
              ch == ']'))
            return HD_ERR_INVALID;
        out[i] = (char)tolower(ch);
    }
    out[n] = 0;
    return 0;
}

static int enter_section(struct parse *p, const char *section)
{
    struct hd_config *c = p->c;
    char name[HD_HOST_MAX];
    int rc;

    static const char *const plain[] = {"run", "ingest", "metrics", "log", "cluster"};

    snprintf(p->cur_section, sizeof(p->cur_section), "%s", section);
    p->seen = 0;
    p->host = NULL;
    for (unsigned i = 0; i < 5; i++) {
        if (strcmp(section, plain[i]) == 0) {
            if (p->sections_seen & (1u << i)) {
                fail(p, "section [%s] appears twice", section);
                return HD_ERR_INVALID;
            }
            p->sections_seen |= 1u << i;
            return 0;
        }
    }
    rc = host_section_name(section, name, sizeof(name));
    if (rc == HD_ERR_NOT_FOUND) {
        fail(p, "unknown section [%s] (run, ingest, metrics, log, cluster, host \"NAME\")", section);
        return HD_ERR_INVALID;
    }
    if (rc) {
        fail(p, "bad host section [%s] (write [host \"example.social\"])", section);
        return rc;
    }
    for (size_t i = 0; i < c->nhosts; i++) {
        if (!strcmp(c->hosts[i].name, name)) {
            fail(p, "host %s has two sections", name);
            return HD_ERR_INVALID;
        }
    }
    if (c->nhosts == p->hosts_cap) {
        size_t ncap = p->hosts_cap ? p->hosts_cap * 2 : 16;
        struct hd_config_host *nh;
        if (ncap > HD_CONFIG_MAX_HOSTS) {
            fail(p, "more than %d host sections", HD_CONFIG_MAX_HOSTS);
            return HD_ERR_INVALID;
        }
        nh = realloc(c->hosts, ncap * sizeof(*nh));
        if (!nh)
            return -ENOMEM;
        c->hosts = nh;
        p->hosts_cap = ncap;
    }
    p->host = &c->hosts[c->nhosts++];
    memset(p->host, 0, sizeof(*p->host));
    memcpy(p->host->name, name, strlen(name) + 1);
    return 0;
}

/* A key of a [host "NAME"] section: max_inflight or rate. Returns 1 to go on, 0 after fail. */
static int host_entry(struct parse *p, const char *section, const char *name, const char *value)
{
    uint64_t v;

    if (!strcmp(name, "max_inflight")) {
        if (p->seen & 1) {
            fail(p, "max_inflight set twice in [%s]", section);
            return 0;
        }
        p->seen |= 1;
        if (parse_u64(value, 100000, &v) || v == 0) {
            fail(p, "bad value for max_inflight: '%s' (an integer from 1 to 100000)", value);
            return 0;
        }
        p->host->max_inflight = (unsigned)v;
    } else if (!strcmp(name, "rate")) {
        if (p->seen & 2) {
            fail(p, "rate set twice in [%s]", section);
            return 0;
        }
        p->seen |= 2;
        if (parse_rate(value, &p->host->rate)) {
            fail(p, "bad value for rate: '%s' (requests per second, 0 = unlimited)", value);
            return 0;
        }
    } else {
        fail(p, "unknown key %s in [%s] (max_inflight, rate)", name, section);
    }
    return 0 == p->failed;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    int rc;

    if (p->failed)
        return 0;
    if (!section[0]) {
        fail(p, "key %s outside of any section", name);
        return 0;
    }
    /* Sections were entered by read_line, which sees every header, even of an empty section. */
    if (!name || strcmp(section, p->cur_section) != 0)
        return 1;
    if (p->host)
        return host_entry(p, section, name, value);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i].section, section) != 0 || strcmp(keys[i].name, name) != 0)
            continue;
        if (keys[i].type != K_LIST) {
            if (p->seen & (1ull << i)) {
                fail(p, "%s set twice in [%s]", name, section);
                return 0;
            }
            p->seen |= 1ull << i;
        }
        rc = set_key(p, &keys[i], value);
        if (rc == -ENOMEM)
            fail(p, "out of memory");
        return rc == 0;
    }
    fail(p, "unknown key %s in [%s]", name, section);
    return 0;
}

/* A "[name]" line: enter the section here, so that an unknown or empty section is still
 * checked (inih only reports sections that hold keys). Mirrors inih: leading whitespace is
 * skipped, the name runs to the first ']' and is trimmed. */
static void section_header(struct parse *p, const char *line)
{
    const char *s = line, *e;
    char name[sizeof(p->cur_section)];
    size_t n;
    int rc;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '[' || p->failed)
        return;
    s++;
    e = strchr(s, ']');
    if (!e)
        return; /* inih reports the syntax error */
    while (s < e && (*s == ' ' || *s == '\t'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    n = (size_t)(e - s);
    if (n >= sizeof(name)) {
        fail(p, "section name too long");
        return;
    }
    memcpy(name, s, n);
    name[n] = 0;
    rc = enter_section(p, name);
    if (rc == -ENOMEM)
        fail(p, "out of memory");
}

/* Line reader for ini_parse_stream: counts lines for error messages. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    char *r;

    if (p->f) {
        r = fgets(str, num, p->f);
    } else {
        size_t n = 0;
        if (!*p->s)
            return NULL;
        while (p->s[n] && p->s[n] != '\n' && n + 1 < (size_t)num - 1)
            n++;
        if (p->s[n] == '\n')
            n++;
        memcpy(str, p->s, n);
        str[n] = 0;
        p->s += n;
        r = str;
    }
    if (r) {
        size_t n = strlen(r);
        /* A line longer than inih's buffer would be split and misparsed: refuse it. */
        if (n > 0 && r[n - 1] != '\n' && ((p->f && !feof(p->f)) || (!p->f && *p->s))) {
            p->line++;
            fail(p, "line too long (at most %d bytes)", num - 2);
            return NULL;
        }
        p->line++;
        section_header(p, r);
    }
    return r;
}

static int check(struct parse *p)
{
    struct hd_config *c = p->c;
    if (c->run.retry.cap_ms < c->run.retry.base_ms) {
        fail(p, "retry_cap is smaller than retry_base");
        return HD_ERR_INVALID;
    }
    return 0;
}

static int host_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hd_config_host *)a)->name,
                  ((const struct hd_config_host *)b)->name);
}

static int load(struct parse *p, const char *name, struct hd_config **out)
{
    struct hd_config *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return -ENOMEM;
    hd_config_defaults(c);
    c->path = strdup(name);
    if (!c->path) {
        free(c);
        return -ENOMEM;
    }
    p->c = c;
    p->name = name;
    rc = ini_parse_stream(read_line, p, on_entry, p);
    if (rc != 0 && !p->failed) {
        /* inih's own syntax error (no '=' or ']'), or -1/-2 for I/O and memory */
        if (rc > 0) {
            p->line = rc;
            fail(p, "syntax error (expected [section] or key = value)");
        } else {
            fail(p, "cannot read the file");
        }
    }
    if (!p->failed)
        check(p);
    if (p->failed) {
        hd_config_free(c);
        return HD_ERR_INVALID;
    }
    /* One operator setting, two consumers: the runner reads both copies. */
    c->run.hostpol.win_max = c->run.max_inflight_host;
    c->run.hostpol.retry_after_cap_ms = c->run.retry.retry_after_cap_ms;
    if (c->ca_file_buf)
        c->run.ca_file = c->ca_file_buf;
    if (c->user_agent_buf)
        c->run.user_agent = c->user_agent_buf;
    if (c->csync_url_buf)
        c->run.collection_sync_url = c->csync_url_buf;
    if (c->csync_followers_buf)
        c->run.collection_sync_followers = c->csync_followers_buf;
    if (c->nhosts)
        qsort(c->hosts, c->nhosts, sizeof(*c->hosts), host_cmp);
    *out = c;
    return 0;
}

int hd_config_load(const char *path, struct hd_config **out, char *err, size_t errlen)
{
    struct parse p;
    int rc;

    memset(&p, 0, sizeof(p));
    p.err = err;
    p.errlen = errlen;
    if (errlen)
        err[0] = 0;
    p.f = fopen(path, "r");
    if (!p.f) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return rc;
    }
    rc = load(&p, path, out);
    fclose(p.f);
    return rc;
}

int hd_config_load_string(const char *text, const char *name, struct hd_config **out, char *err,
                          size_t errlen)
{
    struct parse p;

    memset(&p, 0, sizeof(p));
    p.err = err;
    p.errlen = errlen;
    if (errlen)
        err[0] = 0;
    p.s = text;
    return load(&p, name, out);
}

void hd_config_free(struct hd_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nlisten; i++)
        free(c->listen[i]);
    if (c->resolve_buf) {
        for (size_t i = 0; i < c->run.nresolve; i++)
            free(c->resolve_buf[i]);
        free(c->resolve_buf);
    }
    free(c->token_file);
    free(c->hosts);
    free(c->ca_file_buf);
    free(c->user_agent_buf);
    free(c->csync_url_buf);
    free(c->csync_followers_buf);
    free(c->cluster_url);
    free(c->cluster_node);
    free(c->cluster_creds);
    free(c->cluster_ca);
    free(c->path);
    free(c);
}

const struct hd_config_host *hd_config_host_find(const struct hd_config *c, const char *host)
{
    size_t lo = 0, hi = c->nhosts;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(host, c->hosts[mid].name);
        if (r == 0)
            return &c->hosts[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static int streq_null(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

int hd_config_restart_diff(const struct hd_config *a, const struct hd_config *b, char *buf,
                           size_t len)
{
    int n = 0;
    size_t used = 0;
    const char *names[16];
    int same_listen = a->nlisten == b->nlisten, same_resolve = a->run.nresolve == b->run.nresolve;

    for (size_t i = 0; same_listen && i < a->nlisten; i++)
        same_listen = !strcmp(a->listen[i], b->listen[i]);
    for (size_t i = 0; same_resolve && i < a->run.nresolve; i++)
        same_resolve = !strcmp(a->run.resolve[i], b->run.resolve[i]);
    if (a->run.threads != b->run.threads)
        names[n++] = "threads";
    if (a->run.max_inflight_thread != b->run.max_inflight_thread)
        names[n++] = "max_inflight_thread";
    if (a->run.connect_timeout_ms != b->run.connect_timeout_ms)
        names[n++] = "connect_timeout";
    if (a->run.tls_timeout_ms != b->run.tls_timeout_ms)
        names[n++] = "tls_timeout";
    if (a->run.response_timeout_ms != b->run.response_timeout_ms)
        names[n++] = "response_timeout";
    if (a->run.allow_private != b->run.allow_private)
        names[n++] = "allow_private_addresses";
    if (!streq_null(a->run.ca_file, b->run.ca_file))
        names[n++] = "ca_file";
    if (!streq_null(a->run.user_agent, b->run.user_agent))
        names[n++] = "user_agent";
    if (!streq_null(a->run.collection_sync_url, b->run.collection_sync_url))
        names[n++] = "collection_sync_url";
    if (!streq_null(a->run.collection_sync_followers, b->run.collection_sync_followers))
        names[n++] = "collection_sync_followers";
    if (!same_resolve)
        names[n++] = "resolve";
    if (!same_listen)
        names[n++] = "listen";
    if (!streq_null(a->token_file, b->token_file))
        names[n++] = "token_file";
    if (len)
        buf[0] = 0;
    for (int i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? "," : "", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return n;
}

/* ---------------------------------------------------------------- holder */

#define HOLDER_MAX_OLD 1024

struct hd_config_holder {
    _Atomic(struct hd_config *) cur;
    struct hd_config **old; /* superseded configs, freed with the holder */
    size_t nold, capold;
    atomic_uint generation;
};

int hd_config_holder_new(struct hd_config_holder **out, struct hd_config *c)
{
    struct hd_config_holder *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    atomic_init(&h->cur, c);
    atomic_init(&h->generation, 0);
    *out = h;
    return 0;
}

void hd_config_holder_free(struct hd_config_holder *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->nold; i++)
        hd_config_free(h->old[i]);
    free(h->old);
    hd_config_free(atomic_load(&h->cur));
    free(h);
}

const struct hd_config *hd_config_current(const struct hd_config_holder *h)
{
    return atomic_load_explicit(&((struct hd_config_holder *)h)->cur, memory_order_acquire);
}

unsigned hd_config_generation(const struct hd_config_holder *h)
{
    return atomic_load(&((struct hd_config_holder *)h)->generation);
}

int hd_config_reload(struct hd_config_holder *h, char *msg, size_t msglen)
{
    struct hd_config *cur = atomic_load(&h->cur), *nc;
    char diff[256];
    int rc;

    if (h->nold >= HOLDER_MAX_OLD) {
        snprintf(msg, msglen, "too many reloads (%d) in one run; restart to reload again",
                 HOLDER_MAX_OLD);
        return -ENOSPC;
    }
    if (h->nold == h->capold) {
        size_t ncap = h->capold ? h->capold * 2 : 8;
        struct hd_config **no = realloc(h->old, ncap * sizeof(*no));
        if (!no) {
            snprintf(msg, msglen, "out of memory");
            return -ENOMEM;
        }
        h->old = no;
        h->capold = ncap;
    }
    rc = hd_config_load(cur->path, &nc, msg, msglen);
    if (rc)
        return rc;
    if (hd_config_restart_diff(cur, nc, diff, sizeof(diff)) > 0)
        snprintf(msg, msglen, "reloaded %s; these settings take effect only at restart: %s",
                 cur->path, diff);
    else
        snprintf(msg, msglen, "reloaded %s", cur->path);
    h->old[h->nold++] = cur;
    atomic_store_explicit(&h->cur, nc, memory_order_release);
    atomic_fetch_add(&h->generation, 1);
    return 0;
}
