/* http_probe: drives hd_http_client on one hd_loop and prints a JSON summary.
 *
 *   http_probe --url https://host:port/path [--count N] [--concurrency C]
 *              [--resolve HOST:PORT:ADDR]... [--ca-file F] [--allow-private-addresses]
 *              [--body FILE] [--method M] [--header "name: value"]...
 *              [--connect-timeout-ms N] [--tls-timeout-ms N] [--response-timeout-ms N]
 *              [--idle-timeout-ms N] [--max-idle-conns N] [--max-streams N] [--max-h1-conns N] [--max-body N]
 *              [--max-header-bytes N] [--deadline-ms N] [--rounds R] [--pause-ms N] [-v]
 *
 * Submits N requests keeping at most C in flight (new ones are submitted from on_done), then
 * shuts the client down and waits for it to be idle. --rounds repeats the batch R times on
 * the same client with --pause-ms of loop time in between (to exercise idle and reuse).
 * Output: {"count":..,"ok2xx":..,"statuses":{..},"errors":{..},"versions":{..},...}
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "loop.h"

#define MAX_HDRS 32

struct probe {
    struct hd_loop *loop;
    struct hd_http_client *client;
    struct hd_http_req req;
    long count, submitted, done, inflight, concurrency;
    long statuses[600];
    long versions[3];
    long errors[64]; /* index: HD_ERR_BASE - err, or 63 for errno */
    long ok2xx;
    uint64_t max_latency;
    size_t body_bytes;
    int verbose;
    int first_error;
    char retry_after[128];      /* last Retry-After seen */
    char accept_signature[256]; /* last Accept-Signature seen */
};

static const char *err_name(int err)
{
    switch (err) {
    case HD_ERR_DNS: return "dns";
    case HD_ERR_DNS_NXDOMAIN: return "nxdomain";
    case HD_ERR_PRIVATE_ADDR: return "private_addr";
    case HD_ERR_CONNECT: return "connect";
    case HD_ERR_TLS: return "tls";
    case HD_ERR_TLS_VERIFY: return "tls_verify";
    case HD_ERR_TIMEOUT_CONNECT: return "timeout_connect";
    case HD_ERR_TIMEOUT_TLS: return "timeout_tls";
    case HD_ERR_TIMEOUT_RESPONSE: return "timeout_response";
    case HD_ERR_PROTOCOL: return "protocol";
    case HD_ERR_RESET: return "reset";
    case HD_ERR_TOO_LARGE: return "too_large";
    case HD_ERR_CANCELLED: return "cancelled";
    case HD_ERR_REFUSED_STREAM: return "refused_stream";
    case HD_ERR_INVALID: return "invalid";
    case HD_ERR_FULL: return "full";
    default: return "other";
    }
}

static void submit_more(struct probe *p);

static void on_done(const struct hd_http_resp *resp, void *ud)
{
    struct probe *p = ud;

    p->done++;
    p->inflight--;
    if (resp->error) {
        int i = HD_ERR_BASE - resp->error;
        if (i < 0 || i >= 63)
            i = 63;
        p->errors[i]++;
        if (!p->first_error)
            p->first_error = resp->error;
        if (p->verbose)
            fprintf(stderr, "probe: error %s (%s) v%d after %llu ms\n", err_name(resp->error),
                    hd_strerror(resp->error), resp->http_version,
                    (unsigned long long)resp->latency_ms);
    } else {
        if (resp->status >= 0 && resp->status < 600)
            p->statuses[resp->status]++;
        if (resp->status >= 200 && resp->status < 300)
            p->ok2xx++;
        if (p->verbose)
            fprintf(stderr, "probe: status %d v%d body=%zu retry-after=%s\n", resp->status,
                    resp->http_version, resp->body_len,
                    resp->retry_after ? resp->retry_after : "-");
    }
    /* Copies: the strings are only valid during this call. Quotes are not expected in the
     * test values and are replaced to keep the JSON valid. */
    if (resp->retry_after)
        snprintf(p->retry_after, sizeof(p->retry_after), "%s", resp->retry_after);
    if (resp->accept_signature)
        snprintf(p->accept_signature, sizeof(p->accept_signature), "%s",
                 resp->accept_signature);
    for (char *q = p->accept_signature; *q; q++)
        if (*q == '"' || *q == '\\')
            *q = '\'';
    for (char *q = p->retry_after; *q; q++)
        if (*q == '"' || *q == '\\')
            *q = '\'';
    if (resp->http_version >= 0 && resp->http_version <= 2)
        p->versions[resp->http_version]++;
    if (resp->latency_ms > p->max_latency)
        p->max_latency = resp->latency_ms;
    p->body_bytes += resp->body_len;
    submit_more(p);
}

static void submit_more(struct probe *p)
{
    while (p->submitted < p->count && p->inflight < p->concurrency) {
        int rv = hd_http_submit(p->client, &p->req);
        if (rv != 0) {
            fprintf(stderr, "probe: submit: %s\n", hd_strerror(rv));
            exit(2);
        }
        p->submitted++;
        p->inflight++;
    }
}

static int parse_url(const char *url, struct hd_http_req *req, char *host, size_t hcap,
                     char *auth, size_t acap)
{
    const char *s = url, *hs, *he, *ps;
    unsigned long port;

    if (strncmp(s, "https://", 8) == 0) {
        req->tls = 1;
        s += 8;
        port = 443;
    } else if (strncmp(s, "http://", 7) == 0) {
        req->tls = 0;
        s += 7;
        port = 80;
    } else {
        return -1;
    }
    ps = strchr(s, '/');
    if (!ps)
        ps = s + strlen(s);
    if ((size_t)(ps - s) >= acap)
        return -1;
    memcpy(auth, s, (size_t)(ps - s));
    auth[ps - s] = 0;
    if (auth[0] == '[') {
        hs = auth + 1;
        he = strchr(auth, ']');
        if (!he)
            return -1;
        if (he[1] == ':')
            port = strtoul(he + 2, NULL, 10);
    } else {
        hs = auth;
        he = strchr(auth, ':');
        if (he)
            port = strtoul(he + 1, NULL, 10);
        else
            he = auth + strlen(auth);
    }
    if ((size_t)(he - hs) >= hcap || port == 0 || port > 65535)
        return -1;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = 0;
    req->host = host;
    req->port = (uint16_t)port;
    req->authority = auth;
    req->path = *ps ? ps : "/";
    return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    static struct probe p;
    static char host[256], auth[300], hbuf[MAX_HDRS][512];
    static struct hd_http_header hdrs[MAX_HDRS];
    const char *resolves[16];
    size_t nres = 0, nh = 0;
    struct hd_http_opts opts;
    struct hd_dns_opts dopts;
    struct hd_dns *dns;
    const char *url = NULL, *ca = NULL, *bodyfile = NULL;
    uint64_t deadline_ms = 60000, start, pause_ms = 0;
    long rounds = 1;
    int rv, ver = 0;
    unsigned maxs = 0;

    hd_http_opts_default(&opts);
    p.count = 1;
    p.concurrency = 1;
    p.req.method = "POST";
    hd_log_level = HD_LOG_WARN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
        if (ARG("--url"))
            url = v;
        else if (ARG("--count"))
            p.count = atol(v);
        else if (ARG("--concurrency"))
            p.concurrency = atol(v);
        else if (ARG("--resolve") && nres < 16)
            resolves[nres++] = v;
        else if (ARG("--ca-file"))
            ca = v;
        else if (strcmp(a, "--allow-private-addresses") == 0)
            opts.allow_private = 1;
        else if (ARG("--body"))
            bodyfile = v;
        else if (ARG("--method"))
            p.req.method = v;
        else if (ARG("--header") && nh < MAX_HDRS) {
            const char *colon = strchr(v, ':');
            if (!colon || (size_t)(colon - v) >= 256)
                return 2;
            snprintf(hbuf[nh], sizeof(hbuf[nh]), "%.*s", (int)(colon - v), v);
            hdrs[nh].name = hbuf[nh];
            hdrs[nh].value = colon[1] == ' ' ? colon + 2 : colon + 1;
            nh++;
        } else if (ARG("--connect-timeout-ms"))
            opts.connect_timeout_ms = (unsigned)atol(v);
        else if (ARG("--tls-timeout-ms"))
            opts.tls_timeout_ms = (unsigned)atol(v);
        else if (ARG("--response-timeout-ms"))
            opts.response_timeout_ms = (unsigned)atol(v);
        else if (ARG("--idle-timeout-ms"))
            opts.idle_timeout_ms = (unsigned)atol(v);
        else if (ARG("--max-idle-conns"))
            opts.max_idle_conns = (unsigned)atol(v);
        else if (ARG("--max-streams"))
            opts.max_streams_per_host = (unsigned)atol(v);
        else if (ARG("--max-h1-conns"))
            opts.max_h1_conns_per_host = (unsigned)atol(v);
        else if (ARG("--max-body"))
            opts.max_body = (size_t)atol(v);
        else if (ARG("--max-header-bytes"))
            opts.max_header_bytes = (size_t)atol(v);
        else if (ARG("--deadline-ms"))
            deadline_ms = (uint64_t)atol(v);
        else if (ARG("--rounds"))
            rounds = atol(v);
        else if (ARG("--pause-ms"))
            pause_ms = (uint64_t)atol(v);
        else if (strcmp(a, "-v") == 0)
            p.verbose = 1, hd_log_level = HD_LOG_DEBUG;
        else {
            fprintf(stderr, "usage: see the comment at the top of http_probe.c (bad: %s)\n", a);
            return 2;
        }
#undef ARG
    }
    if (!url || parse_url(url, &p.req, host, sizeof(host), auth, sizeof(auth)) != 0) {
        fprintf(stderr, "probe: --url http(s)://host[:port]/path required\n");
        return 2;
    }
    p.req.headers = hdrs;
    p.req.nheaders = nh;
    if (bodyfile) {
        p.req.body = read_file(bodyfile, &p.req.body_len);
        if (!p.req.body) {
            fprintf(stderr, "probe: cannot read %s\n", bodyfile);
            return 2;
        }
    } else {
        p.req.body = (const uint8_t *)"{\"type\":\"Create\"}";
        p.req.body_len = strlen((const char *)p.req.body);
    }
    p.req.on_done = on_done;
    p.req.user_data = &p;

    rv = hd_loop_new(&p.loop, 4096);
    if (rv < 0) {
        fprintf(stderr, "probe: io_uring unavailable: %s\n", hd_strerror(rv));
        return 77;
    }
    hd_dns_opts_default(&dopts);
    if (hd_dns_new(&dns, p.loop, &dopts) != 0)
        return 2;
    for (size_t i = 0; i < nres; i++) {
        if (hd_dns_add_override(dns, resolves[i]) != 0) {
            fprintf(stderr, "probe: bad --resolve %s\n", resolves[i]);
            return 2;
        }
    }
    opts.dns = dns;
    opts.ca_file = ca;
    rv = hd_http_client_new(&p.client, p.loop, &opts);
    if (rv != 0) {
        fprintf(stderr, "probe: client: %s\n", hd_strerror(rv));
        return 2;
    }
    start = hd_loop_update_now(p.loop);
    {
        long total = p.count * rounds;
        p.count = 0;
        for (long r = 0; r < rounds; r++) {
            uint64_t until;
            p.count += total / rounds;
            submit_more(&p);
            while (p.done < p.count && hd_loop_now_ms(p.loop) - start < deadline_ms)
                hd_loop_run_once(p.loop, 100);
            until = hd_loop_now_ms(p.loop) + (r + 1 < rounds ? pause_ms : 0);
            while (hd_loop_now_ms(p.loop) < until)
                hd_loop_run_once(p.loop, 50);
        }
    }
    hd_http_origin_info(p.client, host, p.req.port, p.req.tls, &ver, &maxs);
    struct hd_http_stats st;
    hd_http_stats(p.client, &st);
    uint64_t elapsed = hd_loop_now_ms(p.loop) - start;
    hd_http_client_shutdown(p.client);
    for (int i = 0; i < 200 && !hd_http_client_idle(p.client); i++)
        hd_loop_run_once(p.loop, 50);
    int idle = hd_http_client_idle(p.client);

    printf("{\"count\":%ld,\"done\":%ld,\"ok2xx\":%ld,\"elapsed_ms\":%llu,\"max_latency_ms\":%llu,"
           "\"body_bytes\":%zu,\"origin_version\":%d,\"max_streams\":%u,\"idle_after_shutdown\":%d,"
           "\"versions\":{\"0\":%ld,\"1\":%ld,\"2\":%ld},\"statuses\":{",
           p.count, p.done, p.ok2xx, (unsigned long long)elapsed,
           (unsigned long long)p.max_latency, p.body_bytes, ver, maxs, idle, p.versions[0],
           p.versions[1], p.versions[2]);
    int first = 1;
    for (int s = 0; s < 600; s++) {
        if (p.statuses[s]) {
            printf("%s\"%d\":%ld", first ? "" : ",", s, p.statuses[s]);
            first = 0;
        }
    }
    printf("},\"errors\":{");
    first = 1;
    for (int i = 0; i < 64; i++) {
        if (p.errors[i]) {
            printf("%s\"%s\":%ld", first ? "" : ",", i == 63 ? "errno" : err_name(HD_ERR_BASE - i),
                   p.errors[i]);
            first = 0;
        }
    }
    printf("},\"retry_after\":\"%s\",\"accept_signature\":\"%s\",", p.retry_after,
           p.accept_signature);
    printf("\"stats\":{\"conns_opened\":%llu,\"conns_h2\":%llu,\"conns_h1\":%llu,"
           "\"tls_handshakes\":%llu,\"tls_resumed\":%llu,\"setup_failures\":%llu,"
           "\"retries\":%llu,\"goaways\":%llu,\"response_timeouts\":%llu}}\n",
           (unsigned long long)st.conns_opened, (unsigned long long)st.conns_h2,
           (unsigned long long)st.conns_h1, (unsigned long long)st.tls_handshakes,
           (unsigned long long)st.tls_resumed, (unsigned long long)st.setup_failures,
           (unsigned long long)st.retries, (unsigned long long)st.goaways,
           (unsigned long long)st.response_timeouts);
    if (idle)
        hd_http_client_free(p.client);
    hd_dns_free(dns);
    hd_loop_free(p.loop);
    if (bodyfile)
        free((void *)p.req.body);
    return p.done == p.count ? 0 : 3;
}
