/* Request decisions (profile, rate limit, verification, JSON) and counting. Protocol-free:
 * h1.c and h2.c hand in a complete struct fs_req and write out the struct fs_resp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "fedisim.h"
#include "handle.h"
#include "json_id.h"
#include "profile.h"
#include "req.h"
#include "stats.h"
#include "verify.h"

/* ---- decisions ---- */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_retry_after(const struct fs_profile *p, struct fs_resp *out)
{
    if (p->retry_after_date) {
        struct tm tm;
        time_t t = time(NULL) + p->retry_after;
        gmtime_r(&t, &tm);
        strftime(out->retry_after, sizeof(out->retry_after), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    } else {
        snprintf(out->retry_after, sizeof(out->retry_after), "%d", p->retry_after);
    }
}

static int take_token(struct fs_host *h, const struct fs_profile *p, uint64_t now_ms)
{
    struct fs_tokens *b = &h->bucket;

    if (p->rate <= 0)
        return 1;
    if (b->tokens < 0) {
        b->tokens = p->burst;
        b->last_ms = now_ms;
    }
    b->tokens += (double)(now_ms - b->last_ms) * p->rate / 1000.0;
    if (b->tokens > p->burst)
        b->tokens = p->burst;
    b->last_ms = now_ms;
    if (b->tokens < 1.0)
        return 0;
    b->tokens -= 1.0;
    return 1;
}

static int should_verify(struct fs_worker *w, const struct fs_profile *p)
{
    if (!w->verifier)
        return 0;
    if (p->verify >= 0)
        return p->verify;
    switch (w->srv->verify_mode) {
    case FS_VERIFY_ALL:
        return 1;
    case FS_VERIFY_SAMPLE:
        return (w->verify_counter++ % w->srv->verify_sample) == 0;
    default:
        return 0;
    }
}

static void respond_text(struct fs_resp *out, int status, const char *text)
{
    out->act = FS_ACT_RESPOND;
    out->status = status;
    if (text) {
        out->body = strdup(text);
        out->body_len = out->body ? strlen(text) : 0;
        out->ctype = "text/plain";
    }
}

static int control_request(struct fs_server *srv, struct fs_req *r, struct fs_resp *out)
{
    const char *path = fs_req_field(r, r->path);
    const char *m = fs_req_field(r, r->method);

    if (strncmp(path, "/_fedisim/", 10) != 0)
        return 0;
    out->control = 1;
    if (strcmp(path + 10, "stats") == 0 && strcmp(m, "GET") == 0) {
        json_t *o;
        FS_LOCK(srv);
        o = fs_stats_report(&srv->stats, 50);
        FS_UNLOCK(srv);
        out->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        out->status = out->body ? 200 : 500;
        out->body_len = out->body ? strlen(out->body) : 0;
        out->ctype = "application/json";
    } else if (strcmp(path + 10, "reset") == 0 && strcmp(m, "POST") == 0) {
        FS_LOCK(srv);
        fs_stats_reset(&srv->stats);
        if (srv->accept_log) { /* the log starts again with the counters */
            fflush(srv->accept_log);
            if (ftruncate(fileno(srv->accept_log), 0) == 0)
                rewind(srv->accept_log);
        }
        FS_UNLOCK(srv);
        respond_text(out, 200, "reset\n");
    } else {
        respond_text(out, 404, "unknown control path\n");
    }
    return 1;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The shared part of a decision, under srv->lock: host entry, counters, dead hosts, size
 * caps, method, rate limit and the failure draw. Returns 1 when the answer is decided. */
static int decide_locked(struct fs_worker *w, struct fs_req *r, const char *hostname, size_t hl,
                         struct fs_resp *out, int *verify)
{
    struct fs_server *srv = w->srv;
    struct fs_stats *st = &srv->stats;
    const struct fs_profile *p;
    struct fs_host *h;
    double u, acc;

    h = fs_stats_host(st, &srv->profiles, hostname, hl);
    p = h->prof;
    out->host = h;
    st->requests++;
    h->requests++;
    st->last_request_ms = wall_ms();
    if (!st->first_request_ms)
        st->first_request_ms = st->last_request_ms;
    h->last_ms = st->last_request_ms;
    if (!h->first_ms)
        h->first_ms = h->last_ms;
    if (r->proto == FS_PROTO_H2)
        st->h2++;
    else
        st->h1++;
    st->body_bytes += r->body_len;

    if (p->dead == FS_DEAD_REFUSE) {
        out->act = FS_ACT_CLOSE;
        st->conns_refused++;
        return 1;
    }
    if (p->dead == FS_DEAD_HANG) {
        out->act = FS_ACT_HANG;
        st->hangs++;
        return 1;
    }
    out->delay_ms = fs_profile_latency(p, &w->rng);
    if (r->headers_too_large) {
        respond_text(out, 431, "request headers too large\n");
        st->too_large++;
        return 1;
    }
    if (r->body_too_large) {
        respond_text(out, 413, "request body too large\n");
        st->too_large++;
        return 1;
    }
    if (strcmp(fs_req_field(r, r->method), "POST") != 0) {
        respond_text(out, 405, "POST only\n");
        return 1;
    }
    if (!take_token(h, p, mono_ms())) {
        respond_text(out, 429, "rate limited\n");
        set_retry_after(p, out);
        out->rate_limited = 1;
        return 1;
    }

    u = fs_rng_unit(&w->rng);
    acc = p->hang;
    if (u < acc) {
        out->act = FS_ACT_HANG;
        st->hangs++;
        return 1;
    }
    acc += p->reset;
    if (u < acc) {
        out->act = FS_ACT_RESET;
        st->resets++;
        return 1;
    }
    acc += p->close;
    if (u < acc) {
        out->act = FS_ACT_CLOSE;
        st->closes++;
        return 1;
    }
    for (int i = 0; i < p->nerrs; i++) {
        acc += p->errs[i].frac;
        if (u < acc) {
            respond_text(out, p->errs[i].status, "injected error\n");
            if (out->status == 429 || out->status == 503)
                set_retry_after(p, out);
            return 1;
        }
    }
    *verify = should_verify(w, p);
    if (!*verify)
        st->unverified++;
    return 0;
}

void fs_handle(struct fs_worker *w, struct fs_req *r, struct fs_resp *out)
{
    struct fs_server *srv = w->srv;
    const struct fs_profile *p;
    char hostname[256];
    size_t hl;
    int verify = 0, decided;
    char id[4096];
    size_t idlen;

    memset(out, 0, sizeof(*out));
    out->act = FS_ACT_RESPOND;
    if (control_request(srv, r, out))
        return;

    hl = fs_host_from_authority(fs_req_field(r, r->authority), hostname, sizeof(hostname));
    FS_LOCK(srv);
    decided = decide_locked(w, r, hostname, hl, out, &verify);
    FS_UNLOCK(srv);
    if (decided)
        return;
    p = out->host->prof;

    /* Verification and the JSON scan, the costly parts, run outside the lock. */
    if (verify) {
        enum fs_sig_scheme used;
        enum fs_badsig bad = fs_verify(w->verifier, r, time(NULL), p->schemes, &used);
        FS_LOCK(srv);
        srv->stats.verified++;
        if (bad == FS_BAD_NONE && used == FS_SIG_RFC9421)
            srv->stats.verified_rfc9421++;
        else if (bad == FS_BAD_NONE)
            srv->stats.verified_cavage++;
        FS_UNLOCK(srv);
        if (bad != FS_BAD_NONE) {
            respond_text(out, 401, fs_badsig_name(bad));
            out->badsig = (int)bad;
            if (p->accept_signature[0])
                out->accept_signature = p->accept_signature;
            return;
        }
    }

    if (fs_json_activity_id(r->body, r->body_len, id, sizeof(id), &idlen) < 0) {
        respond_text(out, 400, "body is not an activity with an id\n");
        FS_COUNT(srv, srv->stats.bad_json++);
        return;
    }
    out->status = p->status;
    if (p->status >= 200 && p->status < 300) {
        char inbox[FS_MAX_HEADER_BYTES + 16];
        int n = snprintf(inbox, sizeof(inbox), "%s://%s%s", r->tls ? "https" : "http",
                         fs_req_field(r, r->authority), fs_req_field(r, r->path));
        if (n > 0 && (size_t)n < sizeof(inbox)) {
            /* The authority's case does not name another inbox. */
            for (char *c = inbox + (r->tls ? 8 : 7); *c && *c != '/'; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c + 32);
            fs_pair_hash(id, idlen, inbox, (size_t)n, &out->pa, &out->pb);
            out->have_pair = 1;
            if (srv->accept_log && !memchr(id, '\n', idlen) && !memchr(id, ' ', idlen)) {
                out->pair_text = malloc(idlen + (size_t)n + 2);
                if (out->pair_text) {
                    memcpy(out->pair_text, id, idlen);
                    out->pair_text[idlen] = ' ';
                    memcpy(out->pair_text + idlen + 1, inbox, (size_t)n + 1);
                }
            }
        }
    }
}

void fs_commit(struct fs_server *srv, struct fs_resp *resp, enum fs_proto proto)
{
    struct fs_stats *st = &srv->stats;
    struct fs_host *h = resp->host;
    int s = resp->status;

    if (resp->control || resp->act != FS_ACT_RESPOND)
        return;
    FS_LOCK(srv);
    if (s >= 100 && s < 600)
        st->by_status[s]++;
    if (resp->badsig) {
        st->bad_signature++;
        st->badsig_reason[resp->badsig]++;
        if (h)
            h->bad_signature++;
    }
    if (resp->rate_limited) {
        st->rate_limited++;
        if (h)
            h->rate_limited++;
    }
    if (h) {
        if (s >= 400 && s < 500)
            h->s4xx++;
        else if (s >= 500)
            h->s5xx++;
    }
    if (s >= 200 && s < 300 && resp->have_pair) {
        int rv = fs_pairset_add(&st->pairs, resp->pa, resp->pb);
        st->accepted++;
        st->last_accept_ms = wall_ms();
        if (!st->first_accept_ms)
            st->first_accept_ms = st->last_accept_ms;
        if (h)
            h->accepted++;
        if (rv == 0)
            st->duplicates++;
        else if (rv == 1 && srv->accept_log && resp->pair_text)
            fprintf(srv->accept_log, "%llu %s\n", (unsigned long long)st->last_accept_ms,
                    resp->pair_text);
        if (st->expect) {
            if (!fs_pairset_has(st->expect, resp->pa, resp->pb))
                st->unexpected++;
            else if (rv == 1)
                st->expected_seen++;
        }
    }
    FS_UNLOCK(srv);
}

void fs_resp_fini(struct fs_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
    free(resp->pair_text);
    resp->pair_text = NULL;
}
