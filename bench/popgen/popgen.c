/* popgen: a Fediverse-like follower population for one actor, as `herald follow import`
 * input (JSON lines or CSV).
 *
 * Shape (deterministic for a seed):
 *  - the largest host holds --top-share of the follows (default 1/3);
 *  - every host has at least one follower, the rest follow a Zipf law over host rank
 *    (exponent --zipf, default 1.3), so the tail is a long run of single-follower hosts;
 *  - hosts are either "shared-inbox" software (Mastodon-like: https://H/inbox) or not; hosts
 *    without one are picked at random from the non-top hosts until their followers reach
 *    (100 - --shared-pct)% of the follows (default 5%), so 95% of followers have a shared
 *    inbox;
 *  - lines come out in a shuffled order, as follows accumulate over time.
 *
 *   popgen --actor URL [--follows N] [--hosts H] [--top-share F] [--zipf S] [--shared-pct P]
 *          [--seed N] [--format jsonl|csv] [--domain D] [--port P] [--out FILE]
 *          [--expect FILE --expect-id ACTIVITY_ID] [--summary FILE]
 *
 * --expect writes fedisim's --expect file: one {"id","inbox"} line per distinct delivery
 * inbox (shared inbox when the host has one, else the follower's inbox), i.e. exactly the
 * requests a post to these followers must produce. --summary writes a JSON summary.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
    const char *actor, *format, *domain, *out, *expect, *expect_id, *summary;
    unsigned long follows, hosts, port;
    double top_share, zipf, shared_pct;
    unsigned long long seed;
};

/* splitmix64: small, fast, good enough for shuffles. */
static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void usage(void)
{
    fprintf(stderr, "usage: popgen --actor URL [--follows N] [--hosts H] [--top-share F] "
                    "[--zipf S] [--shared-pct P] [--seed N] [--format jsonl|csv] [--domain D] "
                    "[--port P] [--out FILE] [--expect FILE --expect-id ID] [--summary FILE]\n");
}

static void host_name(char *buf, size_t cap, const struct opts *o, unsigned long h)
{
    if (o->port)
        snprintf(buf, cap, "h%lu.%s:%lu", h, o->domain, o->port);
    else
        snprintf(buf, cap, "h%lu.%s", h, o->domain);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"actor", 1, 0, 'a'},     {"follows", 1, 0, 'n'},    {"hosts", 1, 0, 'H'},
        {"top-share", 1, 0, 't'}, {"zipf", 1, 0, 'z'},       {"shared-pct", 1, 0, 's'},
        {"seed", 1, 0, 'S'},      {"format", 1, 0, 'f'},     {"domain", 1, 0, 'd'},
        {"port", 1, 0, 'p'},      {"out", 1, 0, 'o'},        {"expect", 1, 0, 'e'},
        {"expect-id", 1, 0, 'i'}, {"summary", 1, 0, 'y'},    {0, 0, 0, 0}};
    struct opts o = {NULL, "jsonl", "fedi.test", NULL, NULL, NULL, NULL, 1000000, 20000, 0,
                     1.0 / 3.0, 1.3, 95.0, 1};
    unsigned long *count, *user, h, rest, noshared_follows = 0, singles = 0, nshared_hosts = 0;
    unsigned char *shared;
    uint32_t *host_of, *order;
    double wsum = 0;
    uint64_t rs;
    FILE *out = stdout;
    int c;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'a': o.actor = optarg; break;
        case 'n': o.follows = strtoul(optarg, NULL, 10); break;
        case 'H': o.hosts = strtoul(optarg, NULL, 10); break;
        case 't': o.top_share = atof(optarg); break;
        case 'z': o.zipf = atof(optarg); break;
        case 's': o.shared_pct = atof(optarg); break;
        case 'S': o.seed = strtoull(optarg, NULL, 10); break;
        case 'f': o.format = optarg; break;
        case 'd': o.domain = optarg; break;
        case 'p': o.port = strtoul(optarg, NULL, 10); break;
        case 'o': o.out = optarg; break;
        case 'e': o.expect = optarg; break;
        case 'i': o.expect_id = optarg; break;
        case 'y': o.summary = optarg; break;
        default: usage(); return 2;
        }
    }
    if (!o.actor || o.hosts == 0 || o.follows < o.hosts || o.top_share <= 0 ||
        o.top_share >= 1 || (strcmp(o.format, "jsonl") && strcmp(o.format, "csv")) ||
        (o.expect && !o.expect_id) || o.port > 65535) {
        usage();
        fprintf(stderr, "popgen: need --actor, follows >= hosts > 0, 0 < top-share < 1\n");
        return 2;
    }
    count = calloc(o.hosts, sizeof(*count));
    user = calloc(o.hosts, sizeof(*user));
    shared = calloc(o.hosts, 1);
    host_of = malloc(o.follows * sizeof(*host_of));
    order = malloc(o.hosts * sizeof(*order));
    if (!count || !user || !shared || !host_of || !order) {
        fprintf(stderr, "popgen: out of memory\n");
        return 1;
    }

    /* Host sizes: the top host gets its share; every other host max(1, round(its Zipf share
     * of the rest)) over ranks 2..H, so the tail is single-follower hosts; the second host
     * absorbs the rounding difference so the total is exact. */
    count[0] = (unsigned long)(o.follows * o.top_share);
    if (count[0] < 1)
        count[0] = 1;
    if (count[0] + (o.hosts - 1) > o.follows)
        count[0] = o.follows - (o.hosts - 1);
    rest = o.follows - count[0];
    for (h = 1; h < o.hosts; h++)
        wsum += pow((double)(h + 1), -o.zipf);
    if (o.hosts > 1) {
        unsigned long given = 0;
        for (h = 1; h < o.hosts; h++) {
            double share = rest * pow((double)(h + 1), -o.zipf) / wsum;
            count[h] = share < 1.5 ? 1 : (unsigned long)(share + 0.5);
            given += count[h];
        }
        if (given > rest && count[1] <= given - rest) {
            fprintf(stderr, "popgen: too many hosts for these follows and this skew\n");
            return 2;
        }
        count[1] = count[1] + rest - given; /* unsigned wrap-around is exact here */
    } else {
        count[0] = o.follows;
    }

    /* Shared inboxes: all hosts have one, then random non-top hosts lose it until their
     * followers reach the wanted share. */
    rs = o.seed;
    memset(shared, 1, o.hosts);
    for (h = 0; h < o.hosts; h++)
        order[h] = (uint32_t)h;
    for (h = o.hosts - 1; h > 0; h--) {
        unsigned long j = rnd(&rs) % (h + 1);
        uint32_t t = order[h];
        order[h] = order[j];
        order[j] = t;
    }
    {
        double want = o.follows * (100.0 - o.shared_pct) / 100.0;
        for (h = 0; h < o.hosts && noshared_follows + 0.5 < want; h++) {
            uint32_t x = order[h];
            if (x == 0 || noshared_follows + count[x] > want + count[x] / 2)
                continue;
            shared[x] = 0;
            noshared_follows += count[x];
        }
    }

    /* One slot per follow, shuffled. */
    {
        unsigned long i = 0;
        for (h = 0; h < o.hosts; h++)
            for (unsigned long k = 0; k < count[h]; k++)
                host_of[i++] = (uint32_t)h;
        for (i = o.follows - 1; i > 0; i--) {
            unsigned long j = rnd(&rs) % (i + 1);
            uint32_t t = host_of[i];
            host_of[i] = host_of[j];
            host_of[j] = t;
        }
    }

    if (o.out && !(out = fopen(o.out, "w"))) {
        perror(o.out);
        return 1;
    }
    if (!strcmp(o.format, "csv"))
        fprintf(out, "actor,follower,inbox,shared_inbox\n");
    for (unsigned long i = 0; i < o.follows; i++) {
        char hn[300];
        unsigned long hh = host_of[i], u = user[hh]++;
        host_name(hn, sizeof(hn), &o, hh);
        if (!strcmp(o.format, "csv")) {
            if (shared[hh])
                fprintf(out, "%s,https://%s/users/u%lu,https://%s/users/u%lu/inbox,https://%s/inbox\n",
                        o.actor, hn, u, hn, u, hn);
            else
                fprintf(out, "%s,https://%s/users/u%lu,https://%s/users/u%lu/inbox,\n", o.actor, hn,
                        u, hn, u);
        } else if (shared[hh]) {
            fprintf(out,
                    "{\"actor\":\"%s\",\"follower\":\"https://%s/users/u%lu\",\"inbox\":\"https://"
                    "%s/users/u%lu/inbox\",\"shared_inbox\":\"https://%s/inbox\"}\n",
                    o.actor, hn, u, hn, u, hn);
        } else {
            fprintf(out,
                    "{\"actor\":\"%s\",\"follower\":\"https://%s/users/u%lu\",\"inbox\":\"https://"
                    "%s/users/u%lu/inbox\",\"shared_inbox\":null}\n",
                    o.actor, hn, u, hn, u);
        }
    }
    if (out != stdout && fclose(out) != 0) {
        perror(o.out);
        return 1;
    }

    for (h = 0; h < o.hosts; h++) {
        singles += count[h] == 1;
        nshared_hosts += shared[h];
    }
    if (o.expect) {
        FILE *e = fopen(o.expect, "w");
        if (!e) {
            perror(o.expect);
            return 1;
        }
        for (h = 0; h < o.hosts; h++) {
            char hn[300];
            host_name(hn, sizeof(hn), &o, h);
            if (shared[h])
                fprintf(e, "{\"id\":\"%s\",\"inbox\":\"https://%s/inbox\"}\n", o.expect_id, hn);
            else
                for (unsigned long u = 0; u < count[h]; u++)
                    fprintf(e, "{\"id\":\"%s\",\"inbox\":\"https://%s/users/u%lu/inbox\"}\n",
                            o.expect_id, hn, u);
        }
        if (fclose(e) != 0) {
            perror(o.expect);
            return 1;
        }
    }
    {
        FILE *s = o.summary ? fopen(o.summary, "w") : stderr;
        if (!s) {
            perror(o.summary);
            return 1;
        }
        fprintf(s,
                "{\"follows\":%lu,\"hosts\":%lu,\"top_host_follows\":%lu,\"top_share\":%.4f,"
                "\"second_host_follows\":%lu,\"single_follower_hosts\":%lu,"
                "\"shared_inbox_hosts\":%lu,\"followers_with_shared_inbox\":%lu,"
                "\"shared_pct\":%.2f,\"distinct_delivery_inboxes\":%lu}\n",
                o.follows, o.hosts, count[0], (double)count[0] / o.follows,
                o.hosts > 1 ? count[1] : 0, singles, nshared_hosts,
                o.follows - noshared_follows,
                100.0 * (o.follows - noshared_follows) / o.follows,
                nshared_hosts + noshared_follows);
        if (s != stderr)
            fclose(s);
    }
    free(count);
    free(user);
    free(shared);
    free(host_of);
    free(order);
    return 0;
}
