/* Host profiles: an INI file, one section per host pattern (see bench/README.md). */
#include <errno.h>
#include <fnmatch.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "profile.h"
#include "verify.h"

static void profile_defaults(struct fs_profile *p)
{
    memset(p, 0, sizeof(*p));
    p->status = 202;
    p->retry_after = 1;
    p->verify = -1;
    p->schemes = FS_SIG_ANY;
}

void fs_profiles_init(struct fs_profiles *p)
{
    memset(p, 0, sizeof(*p));
    profile_defaults(&p->dflt);
}

void fs_profiles_fini(struct fs_profiles *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i].pattern);
    free(p->v);
    free(p->dflt.pattern);
    p->v = NULL;
    p->n = 0;
}

struct load_ctx {
    struct fs_profiles *p;
    struct fs_profile *cur;
    char section[256];
    int err;
};

static struct fs_profile *section_profile(struct load_ctx *c, const char *section)
{
    struct fs_profiles *p = c->p;
    char pat[256];
    size_t n = strlen(section);

    if (n == 0 || n >= sizeof(pat))
        return NULL;
    for (size_t i = 0; i <= n; i++)
        pat[i] = (char)((section[i] >= 'A' && section[i] <= 'Z') ? section[i] + 32 : section[i]);
    if (strcmp(pat, "default") == 0 || strcmp(pat, "*") == 0) {
        if (!p->dflt.pattern)
            p->dflt.pattern = strdup("*");
        return &p->dflt;
    }
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->v[i].pattern, pat) == 0)
            return &p->v[i];
    struct fs_profile *nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
    if (!nv)
        return NULL;
    p->v = nv;
    profile_defaults(&p->v[p->n]);
    p->v[p->n].pattern = strdup(pat);
    if (!p->v[p->n].pattern)
        return NULL;
    return &p->v[p->n++];
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double d = strtod(s, &end);
    if (end == s || d < 0 || !isfinite(d))
        return -1;
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != '\0')
        return -1;
    *out = d;
    return 0;
}

/* "fixed 5" | "5" | "uniform 1 20" | "uniform 1..20" | "lognormal 10 200" (median p99) */
static int parse_latency(struct fs_profile *p, const char *v)
{
    char kind[16] = "";
    double a = 0, b = 0;
    int n;

    if (strcasecmp(v, "none") == 0) {
        p->lat = FS_LAT_NONE;
        return 0;
    }
    if (sscanf(v, "%lf", &a) == 1 && strspn(v, "0123456789. ") == strlen(v)) {
        p->lat = a > 0 ? FS_LAT_FIXED : FS_LAT_NONE;
        p->lat_a = a;
        return 0;
    }
    n = sscanf(v, "%15s %lf%*[ .]%lf", kind, &a, &b);
    if (n < 2 || a < 0 || b < 0)
        return -1;
    if (strcasecmp(kind, "fixed") == 0) {
        p->lat = FS_LAT_FIXED;
    } else if (strcasecmp(kind, "uniform") == 0 && n == 3 && b >= a) {
        p->lat = FS_LAT_UNIFORM;
    } else if (strcasecmp(kind, "lognormal") == 0 && n == 3 && b >= a && a > 0) {
        p->lat = FS_LAT_LOGNORMAL;
    } else if (strcasecmp(kind, "none") == 0) {
        p->lat = FS_LAT_NONE;
    } else {
        return -1;
    }
    p->lat_a = a;
    p->lat_b = b;
    return 0;
}

static int on_kv(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *c = user;
    struct fs_profile *p;
    double d;
    int status;

    if (!section || !*section) {
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"profile key outside a section\" key=%s", name);
        c->err = 1;
        return 0;
    }
    p = section_profile(c, section);
    if (!p) {
        c->err = 1;
        return 0;
    }
    if (strcasecmp(name, "latency") == 0) {
        if (parse_latency(p, value) < 0)
            goto bad;
    } else if (strcasecmp(name, "status") == 0) {
        status = atoi(value);
        if (status < 100 || status > 599)
            goto bad;
        p->status = status;
    } else if ((strncasecmp(name, "error_", 6) == 0 || strncasecmp(name, "status_", 7) == 0)) {
        status = atoi(strchr(name, '_') + 1);
        if (status < 100 || status > 599 || parse_double(value, &d) < 0 || d > 1)
            goto bad;
        if (p->nerrs >= FS_PROFILE_MAX_ERRS)
            goto bad;
        p->errs[p->nerrs].status = status;
        p->errs[p->nerrs].frac = d;
        p->nerrs++;
    } else if (strcasecmp(name, "retry_after") == 0) {
        p->retry_after = atoi(value);
        if (p->retry_after < 0)
            goto bad;
    } else if (strcasecmp(name, "retry_after_format") == 0) {
        if (strcasecmp(value, "date") == 0)
            p->retry_after_date = 1;
        else if (strcasecmp(value, "seconds") == 0)
            p->retry_after_date = 0;
        else
            goto bad;
    } else if (strcasecmp(name, "rate") == 0) {
        if (parse_double(value, &p->rate) < 0)
            goto bad;
    } else if (strcasecmp(name, "burst") == 0) {
        if (parse_double(value, &p->burst) < 0)
            goto bad;
    } else if (strcasecmp(name, "dead") == 0) {
        if (strcasecmp(value, "refuse") == 0 || strcasecmp(value, "yes") == 0)
            p->dead = FS_DEAD_REFUSE;
        else if (strcasecmp(value, "hang") == 0)
            p->dead = FS_DEAD_HANG;
        else if (strcasecmp(value, "no") == 0)
            p->dead = FS_DEAD_NO;
        else
            goto bad;
    } else if (strcasecmp(name, "hang") == 0) {
        if (parse_double(value, &p->hang) < 0 || p->hang > 1)
            goto bad;
    } else if (strcasecmp(name, "reset") == 0) {
        if (parse_double(value, &p->reset) < 0 || p->reset > 1)
            goto bad;
    } else if (strcasecmp(name, "close") == 0) {
        if (parse_double(value, &p->close) < 0 || p->close > 1)
            goto bad;
    } else if (strcasecmp(name, "goaway_after") == 0) {
        if (parse_double(value, &d) < 0)
            goto bad;
        p->goaway_after = (unsigned)d;
    } else if (strcasecmp(name, "accept_signature") == 0) {
        if (strlen(value) >= sizeof(p->accept_signature) || strpbrk(value, "\r\n"))
            goto bad;
        snprintf(p->accept_signature, sizeof(p->accept_signature), "%s", value);
    } else if (strcasecmp(name, "signature") == 0) {
        if (strcasecmp(value, "any") == 0)
            p->schemes = FS_SIG_ANY;
        else if (strcasecmp(value, "cavage") == 0)
            p->schemes = FS_SIG_CAVAGE;
        else if (strcasecmp(value, "rfc9421") == 0)
            p->schemes = FS_SIG_RFC9421;
        else
            goto bad;
    } else if (strcasecmp(name, "verify") == 0) {
        if (strcasecmp(value, "yes") == 0 || strcmp(value, "1") == 0)
            p->verify = 1;
        else if (strcasecmp(value, "no") == 0 || strcmp(value, "0") == 0)
            p->verify = 0;
        else
            goto bad;
    } else {
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"unknown profile key\" section=%s key=%s", section,
               name);
        c->err = 1;
        return 0;
    }
    return 1;
bad:
    HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"bad profile value\" section=%s key=%s value=\"%s\"",
           section, name, value);
    c->err = 1;
    return 0;
}

int fs_profiles_load(struct fs_profiles *p, const char *path)
{
    struct load_ctx c = {.p = p};
    double sum;
    int rv = ini_parse(path, on_kv, &c);

    if (rv < 0) {
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"cannot open profiles\" path=%s", path);
        return -ENOENT;
    }
    if (rv > 0 || c.err) {
        if (rv > 0)
            HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"profile parse error\" path=%s line=%d", path,
                   rv);
        return HD_ERR_INVALID;
    }
    for (size_t i = 0; i <= p->n; i++) {
        struct fs_profile *q = i < p->n ? &p->v[i] : &p->dflt;
        sum = q->hang + q->reset + q->close;
        for (int j = 0; j < q->nerrs; j++)
            sum += q->errs[j].frac;
        if (sum > 1.0 + 1e-9) {
            HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"fractions add up to more than 1\" section=%s",
                   q->pattern ? q->pattern : "*");
            return HD_ERR_INVALID;
        }
        if (q->rate > 0 && q->burst < 1)
            q->burst = q->rate < 1 ? 1 : q->rate;
    }
    return 0;
}

const struct fs_profile *fs_profiles_match(const struct fs_profiles *p, const char *host)
{
    const struct fs_profile *best = NULL;
    size_t best_len = 0, hl = strlen(host);

    for (size_t i = 0; i < p->n; i++) {
        const char *pat = p->v[i].pattern;
        size_t lit;
        int hit;

        if (!strpbrk(pat, "*?")) {
            if (strcmp(pat, host) == 0)
                return &p->v[i];
            continue;
        }
        /* Specificity: the literal characters of the pattern; the most specific match wins. */
        lit = strlen(pat);
        for (const char *c = pat; *c; c++)
            lit -= (*c == '*' || *c == '?');
        if (pat[0] == '*' && pat[1] == '.' && !strpbrk(pat + 1, "*?")) {
            /* "*.fedi.test" matches "a.fedi.test" and "a.b.fedi.test", not "fedi.test". */
            size_t sl = strlen(pat + 1);
            hit = hl > sl && strcmp(host + hl - sl, pat + 1) == 0;
        } else {
            /* Other globs ("mid-*.fedi.test"): '*' matches any run of characters, dots too. */
            hit = fnmatch(pat, host, 0) == 0;
        }
        if (hit && (!best || lit > best_len)) {
            best = &p->v[i];
            best_len = lit;
        }
    }
    return best ? best : &p->dflt;
}

/* ---- RNG and latency ---- */

void fs_rng_seed(struct fs_rng *r, uint64_t seed)
{
    /* splitmix64 to spread the seed over both words. */
    for (int i = 0; i < 2; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        r->s[i] = z ^ (z >> 31);
    }
    if (!r->s[0] && !r->s[1])
        r->s[0] = 1;
}

static uint64_t rng_next(struct fs_rng *r)
{
    /* xorshift128+ */
    uint64_t s1 = r->s[0];
    const uint64_t s0 = r->s[1];
    r->s[0] = s0;
    s1 ^= s1 << 23;
    r->s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return r->s[1] + s0;
}

double fs_rng_unit(struct fs_rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

unsigned fs_profile_latency(const struct fs_profile *p, struct fs_rng *r)
{
    double ms = 0;

    switch (p->lat) {
    case FS_LAT_NONE:
        return 0;
    case FS_LAT_FIXED:
        ms = p->lat_a;
        break;
    case FS_LAT_UNIFORM:
        ms = p->lat_a + (p->lat_b - p->lat_a) * fs_rng_unit(r);
        break;
    case FS_LAT_LOGNORMAL: {
        /* median = e^mu, p99 = e^(mu + 2.326 sigma); Box-Muller for the normal draw. */
        double mu = log(p->lat_a), sigma = log(p->lat_b / p->lat_a) / 2.3263;
        double u1 = fs_rng_unit(r), u2 = fs_rng_unit(r);
        if (u1 < 1e-12)
            u1 = 1e-12;
        double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
        ms = exp(mu + sigma * z);
        break;
    }
    }
    if (ms > 3600e3)
        ms = 3600e3;
    return (unsigned)(ms + 0.5);
}
