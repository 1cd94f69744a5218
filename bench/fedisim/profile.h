/* Host profiles (an INI file, one section per host pattern; see bench/README.md): how each
 * simulated host answers. Also the small deterministic RNG the answers are drawn with. */
#ifndef FS_PROFILE_H
#define FS_PROFILE_H

#include <stddef.h>
#include <stdint.h>

enum fs_lat { FS_LAT_NONE = 0, FS_LAT_FIXED, FS_LAT_UNIFORM, FS_LAT_LOGNORMAL };
enum fs_dead { FS_DEAD_NO = 0, FS_DEAD_REFUSE, FS_DEAD_HANG };

#define FS_PROFILE_MAX_ERRS 16

struct fs_profile {
    char *pattern; /* "host", "*.suffix" or "*" */
    enum fs_lat lat;
    double lat_a, lat_b; /* fixed: a; uniform: a..b; lognormal: median a, p99 b (ms) */
    int status;          /* success status, default 202 */
    struct {
        int status;
        double frac;
    } errs[FS_PROFILE_MAX_ERRS];
    int nerrs;
    int retry_after;      /* seconds for 429/503 Retry-After; default 1 */
    int retry_after_date; /* nonzero: send Retry-After as an HTTP-date */
    double rate;          /* requests/s per host before 429 (0: unlimited) */
    double burst;         /* token bucket depth (default: rate, at least 1) */
    enum fs_dead dead;
    double hang;           /* fraction of requests never answered */
    double reset;          /* fraction reset mid-request (h2: RST_STREAM, h1: close) */
    double close;          /* fraction answered by closing the connection (both protocols) */
    unsigned goaway_after; /* h2: GOAWAY after this many streams on a connection (0: never);
                            * h1: Connection: close after this many requests */
    int verify;            /* -1: follow --verify; 0: never; 1: always */
    unsigned schemes;      /* FS_SIG_* accepted when verifying; default FS_SIG_ANY */
    char accept_signature[160]; /* sent as Accept-Signature with 401s (RFC 9421 sec. 5.1) */
};

struct fs_profiles {
    struct fs_profile *v;
    size_t n;
    struct fs_profile dflt; /* "*" when not given: answer 202 at once */
};

/* Loads an INI profile file (see bench/README.md). Returns 0, -errno or HD_ERR_INVALID
 * (message already logged). */
int fs_profiles_load(struct fs_profiles *p, const char *path);
void fs_profiles_init(struct fs_profiles *p);
void fs_profiles_fini(struct fs_profiles *p);
/* Most specific profile for host (lower-case, without port): an exact name, else the
 * matching pattern with the most literal characters ("*.suffix" matches any depth of
 * subdomain; other globs use fnmatch), else "*". Never NULL. */
const struct fs_profile *fs_profiles_match(const struct fs_profiles *p, const char *host);

/* ---- small deterministic RNG (xoshiro-style), one per server ---- */
struct fs_rng {
    uint64_t s[2];
};
void fs_rng_seed(struct fs_rng *r, uint64_t seed);
double fs_rng_unit(struct fs_rng *r); /* [0, 1) */
/* Samples a latency in ms from the profile's distribution. */
unsigned fs_profile_latency(const struct fs_profile *p, struct fs_rng *r);

#endif
