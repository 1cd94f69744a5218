/* The ingest endpoint over HTTP/1.1 on a unix socket, spoken to byte by byte: routes and
 * methods, the token (also refused before the body is sent), 100-continue, keep-alive and
 * pipelining, the request caps (400, 405, 411, 413, 431, 505), backpressure (429) and drain
 * (503) with Retry-After, activities and follows, /metrics, /v1/hosts, /healthz, the idle
 * timeout, and the listen addresses it refuses. h2c is covered by integration.ingest_endpoint
 * (it needs an HTTP/2 client). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "ingestsrv.h"
#include "keyadd.h"
#include "metrics.h"
#include "store.h"
#include "t.h"

#define ACTOR "https://a.example/users/al"
#define TOKEN "s3cret-token"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"

/* One client connection with a buffer, so that pipelined answers are read one at a time. */
struct client {
    int fd;
    char buf[1 << 16];
    size_t n;
};

struct answer {
    int status;
    char head[4096];
    char body[1 << 15];
    size_t blen;
};

static void unix_addr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    T_OK(strlen(path) < sizeof(sa->sun_path));
    memcpy(sa->sun_path, path, strlen(path) + 1);
}

static void dial(struct client *c, const char *path)
{
    struct sockaddr_un sa;

    unix_addr(&sa, path);
    c->n = 0;
    c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    T_OK(c->fd >= 0);
    T_EQ_INT(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void say(struct client *c, const char *s)
{
    size_t n = strlen(s);
    T_EQ_INT(send(c->fd, s, n, MSG_NOSIGNAL), (long long)n);
}

/* Waits up to ms for more bytes; returns what recv returned (0: closed), or -1 on timeout. */
static ssize_t more(struct client *c, int ms)
{
    struct pollfd p = {c->fd, POLLIN, 0};
    ssize_t r;

    if (poll(&p, 1, ms) <= 0)
        return -1;
    r = recv(c->fd, c->buf + c->n, sizeof(c->buf) - c->n, 0);
    if (r > 0)
        c->n += (size_t)r;
    return r;
}

/* Reads one whole answer (headers and Content-Length body). Fails the test on a timeout. */
static void hear(struct client *c, struct answer *a)
{
    char *end, *cl;
    size_t hlen, blen = 0;

    memset(a, 0, sizeof(*a));
    for (;;) {
        c->buf[c->n] = 0;
        end = c->n ? memmem(c->buf, c->n, "\r\n\r\n", 4) : NULL;
        if (end) {
            hlen = (size_t)(end - c->buf) + 4;
            T_OK(hlen < sizeof(a->head));
            memcpy(a->head, c->buf, hlen);
            a->head[hlen] = 0;
            cl = strcasestr(a->head, "\r\ncontent-length:");
            blen = cl ? strtoul(cl + 17, NULL, 10) : 0;
            if (c->n >= hlen + blen)
                break;
        }
        if (more(c, 5000) <= 0)
            T_FAIL("no complete answer; have %zu bytes: %.*s", c->n, (int)c->n, c->buf);
    }
    T_OK(sscanf(a->head, "HTTP/1.1 %d", &a->status) == 1);
    T_OK(blen < sizeof(a->body));
    memcpy(a->body, c->buf + hlen, blen);
    a->body[blen] = 0;
    a->blen = blen;
    memmove(c->buf, c->buf + hlen + blen, c->n - hlen - blen);
    c->n -= hlen + blen;
}

/* The server closed the connection (after everything it had to say was read). */
static int closed(struct client *c)
{
    return c->n == 0 && more(c, 5000) == 0;
}

static void hang_up(struct client *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Sends req on a new connection and reads its answer. */
static void ask(const char *sock, const char *req, struct answer *a)
{
    struct client c;
    dial(&c, sock);
    say(&c, req);
    hear(&c, a);
    hang_up(&c);
}

static int has(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

static char *post(const char *path, const char *extra, const char *body)
{
    static char req[8192];
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: h\r\n%sContent-Length: %zu\r\n\r\n%s", path, extra,
             strlen(body), body);
    return req;
}

static const char *envelope(int n)
{
    static char env[512];
    snprintf(env, sizeof(env),
             "{\"activity\":{\"id\":\"https://a.example/a/%d\",\"type\":\"Create\",\"actor\":\"" ACTOR
             "\"},\"inboxes\":[\"https://b.example/inbox\"]}",
             n);
    return env;
}

static void test_token(const char *dir)
{
    char path[512], *tok = NULL;
    FILE *f;

    T_OK(hd_ingestsrv_token_eq("abc", 3, "abc", 3));
    T_OK(!hd_ingestsrv_token_eq("abd", 3, "abc", 3));
    T_OK(!hd_ingestsrv_token_eq("ab", 2, "abc", 3));
    T_OK(!hd_ingestsrv_token_eq("abcd", 4, "abc", 3));
    T_OK(!hd_ingestsrv_token_eq("", 0, "abc", 3));

    snprintf(path, sizeof(path), "%s/token", dir);
    f = fopen(path, "w");
    T_OK(f != NULL);
    fputs(TOKEN "  \n second line\n", f);
    fclose(f);
    T_EQ_INT(hd_ingestsrv_read_token(path, &tok), 0);
    T_EQ_STR(tok, TOKEN);
    free(tok);
    f = fopen(path, "w");
    T_OK(f != NULL);
    fputs(" \n", f);
    fclose(f);
    T_EQ_INT(hd_ingestsrv_read_token(path, &tok), HD_ERR_INVALID);
    snprintf(path, sizeof(path), "%s/absent", dir);
    T_EQ_INT(hd_ingestsrv_read_token(path, &tok), -ENOENT);
}

static void test_refused_starts(struct hd_store *st, const char *dir)
{
    struct hd_ingestsrv *s = NULL;
    struct hd_ingestsrv_opts o;
    char file[512], spec[600];
    const char *listen[1] = {spec};
    FILE *f;

    memset(&o, 0, sizeof(o));
    o.listen = listen;
    o.nlisten = 1;
    snprintf(spec, sizeof(spec), "unix:%s/x.sock", dir);
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), HD_ERR_INVALID); /* no token */
    o.token = TOKEN;
    o.nlisten = 0;
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), HD_ERR_INVALID); /* nothing to listen on */
    o.nlisten = 1;
    snprintf(spec, sizeof(spec), "nonsense");
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), HD_ERR_INVALID);
    snprintf(spec, sizeof(spec), "127.0.0.1:99999");
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), HD_ERR_INVALID);
    snprintf(spec, sizeof(spec), "[::1:80");
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), HD_ERR_INVALID);
    snprintf(spec, sizeof(spec), "unix:");
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), HD_ERR_INVALID);
    /* a unix socket path on a file that is not a socket: never replaced */
    snprintf(file, sizeof(file), "%s/plain", dir);
    f = fopen(file, "w");
    T_OK(f != NULL);
    fclose(f);
    snprintf(spec, sizeof(spec), "unix:%s", file);
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), -EEXIST);
    T_OK(access(file, F_OK) == 0);
    T_OK(s == NULL);
}

int main(void)
{
    char dir[] = "/tmp/hd-test-ingestsrv-XXXXXX", path[512], sock[512], spec[600], key[512];
    const char *data = getenv("HD_TEST_DATA"), *why = NULL;
    const char *listen[1] = {spec};
    struct hd_ingestsrv_opts o;
    struct hd_ingestsrv *s;
    struct hd_metrics *m;
    struct hd_store *st;
    struct answer a, b;
    struct client c;
    struct stat sb;
    char *pem, big[20000];
    size_t len;

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(hd_store_open(&st, path, 0), 0);
    snprintf(key, sizeof(key), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(key, &len);
    T_OK(pem != NULL);
    T_EQ_INT(hd_keys_add(st, ACTOR "#main-key", ACTOR, pem, len, &why), 0);
    free(pem);
    T_EQ_INT(hd_metrics_new(&m), 0);

    test_token(dir);
    test_refused_starts(st, dir);

    snprintf(sock, sizeof(sock), "%s/in.sock", dir);
    snprintf(spec, sizeof(spec), "unix:%s", sock);
    /* a stale socket file is replaced */
    {
        struct sockaddr_un sa;
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        unix_addr(&sa, sock);
        T_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
    }
    memset(&o, 0, sizeof(o));
    o.listen = listen;
    o.nlisten = 1;
    o.token = TOKEN;
    o.max_body = 4096;
    o.idle_timeout_ms = 300;
    o.metrics = m;
    T_EQ_INT(hd_ingestsrv_start(&s, st, &o), 0);
    T_EQ_INT(stat(sock, &sb), 0);
    T_OK(S_ISSOCK(sb.st_mode));

    /* GET routes: /healthz and /metrics need no token, /v1/hosts does */
    ask(sock, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", &a);
    T_EQ_INT(a.status, 200);
    T_EQ_STR(a.body, "ok\n");
    T_OK(has(a.head, "Content-Type: text/plain\r\n"));
    ask(sock, "GET /metrics HTTP/1.1\r\n\r\n", &a);
    T_EQ_INT(a.status, 200);
    T_OK(has(a.head, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    T_OK(has(a.body, "# TYPE herald_deliveries_total counter\n"));
    T_OK(has(a.body, "herald_activities_total 0\n"));
    ask(sock, "GET /v1/hosts?limit=1 HTTP/1.1\r\n\r\n", &a);
    T_EQ_INT(a.status, 401); /* the host view needs the token */
    ask(sock, "GET /v1/hosts?limit=1 HTTP/1.1\r\nAuthorization: Bearer wrong\r\n\r\n", &a);
    T_EQ_INT(a.status, 401);
    ask(sock, "GET /v1/hosts?limit=1 HTTP/1.1\r\n" AUTH "\r\n", &a);
    T_EQ_INT(a.status, 200);
    T_OK(has(a.head, "Content-Type: application/json\r\n"));
    T_OK(has(a.body, "\"totals\":{") && has(a.body, "\"hosts\":[]"));
    ask(sock, "GET /nope HTTP/1.1\r\n\r\n", &a);
    T_EQ_INT(a.status, 404);
    T_EQ_STR(a.body, "{\"error\":\"not found\"}\n");

    /* methods */
    ask(sock, "PUT /v1/activities HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &a);
    T_EQ_INT(a.status, 405);
    T_OK(has(a.head, "\r\nAllow: POST\r\n"));
    ask(sock, "DELETE /v1/activities HTTP/1.1\r\n" AUTH "\r\n", &a);
    T_EQ_INT(a.status, 405);
    ask(sock, "GET /v1/follows HTTP/1.1\r\n\r\n", &a);
    T_EQ_INT(a.status, 405);
    T_OK(has(a.head, "\r\nAllow: POST, DELETE\r\n"));
    ask(sock, "GET /healthz?x=1 HTTP/1.1\r\n\r\n", &a); /* a query does not change the path */
    T_EQ_INT(a.status, 200);

    /* the token */
    ask(sock, post("/v1/activities", "", envelope(1)), &a);
    T_EQ_INT(a.status, 401);
    T_OK(has(a.head, "WWW-Authenticate: Bearer realm=\"herald\"\r\n"));
    T_EQ_STR(a.body, "{\"error\":\"a valid bearer token is required\"}\n");
    ask(sock, post("/v1/activities", "Authorization: Bearer wrong\r\n", envelope(1)), &a);
    T_EQ_INT(a.status, 401);
    ask(sock, post("/v1/follows", "Authorization: Basic " TOKEN "\r\n", "{}"), &a);
    T_EQ_INT(a.status, 401);
    /* refused before the body is sent, and the connection closes */
    dial(&c, sock);
    say(&c, "POST /v1/activities HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    hear(&c, &a);
    T_EQ_INT(a.status, 401);
    T_OK(has(a.head, "Connection: close\r\n"));
    T_OK(closed(&c));
    hang_up(&c);
    /* 100-continue: without a token no 100; with one, 100 then the answer */
    dial(&c, sock);
    say(&c, "POST /v1/activities HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    hear(&c, &a);
    T_EQ_INT(a.status, 401);
    hang_up(&c);
    dial(&c, sock);
    {
        char req[1024];
        snprintf(req, sizeof(req),
                 "POST /v1/activities HTTP/1.1\r\n" AUTH "Content-Type: application/json\r\n"
                 "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                 strlen(envelope(1)));
        say(&c, req);
    }
    T_OK(more(&c, 5000) > 0);
    T_OK(c.n == 25 && memcmp(c.buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    c.n = 0;
    say(&c, envelope(1));
    hear(&c, &a);
    T_EQ_INT(a.status, 202);
    T_OK(has(a.body, "\"accepted\":1,\"duplicates\":0,\"refused\":0"));
    T_OK(has(a.body, "\"results\":[{\"line\":1,\"ok\":true,\"seq\":1,\"deliveries\":1}]"));
    /* keep-alive: the same connection again, a duplicate this time */
    say(&c, post("/v1/activities", AUTH "Content-Type: application/json; charset=utf-8\r\n",
                 envelope(1)));
    hear(&c, &a);
    T_EQ_INT(a.status, 200);
    T_OK(has(a.body, "\"duplicates\":1"));
    T_OK(has(a.body, "{\"line\":1,\"ok\":true,\"duplicate\":true,\"seq\":1}"));
    T_OK(!has(a.head, "Connection: close"));
    hang_up(&c);

    /* JSON lines: line numbers kept, blank lines skipped, a refused line reported */
    {
        char body[2048], e2[512];
        snprintf(e2, sizeof(e2), "%s", envelope(2));
        snprintf(body, sizeof(body), "%s\n\n{oops\n%s\n", e2, envelope(3));
        ask(sock, post("/v1/activities", AUTH, body), &a);
        T_EQ_INT(a.status, 202);
        if (!has(a.body, "\"accepted\":2,\"duplicates\":0,\"refused\":1"))
            T_FAIL("%s", a.body);
        T_OK(has(a.body, "{\"line\":3,\"ok\":false,\"error\":"));
        T_OK(has(a.body, "{\"line\":4,\"ok\":true,\"seq\":3,"));
        ask(sock, post("/v1/activities", AUTH, "{oops\n"), &a);
        T_EQ_INT(a.status, 400);
        ask(sock, post("/v1/activities", AUTH, " \n"), &a);
        T_EQ_INT(a.status, 400);
        T_OK(has(a.body, "empty body"));
    }

    /* pipelining: two requests in one write, two answers in order */
    dial(&c, sock);
    say(&c, "GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
    hear(&c, &a);
    hear(&c, &b);
    T_EQ_INT(a.status, 200);
    T_EQ_INT(b.status, 404);
    hang_up(&c);
    /* Connection: close and HTTP/1.0 end the connection after the answer */
    dial(&c, sock);
    say(&c, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    hear(&c, &a);
    T_EQ_INT(a.status, 200);
    T_OK(has(a.head, "Connection: close\r\n"));
    T_OK(closed(&c));
    hang_up(&c);
    dial(&c, sock);
    say(&c, "GET /healthz HTTP/1.0\r\n\r\n");
    hear(&c, &a);
    T_EQ_INT(a.status, 200);
    T_OK(closed(&c));
    hang_up(&c);

    /* the caps: each answered, then the connection closes */
    {
        static const struct {
            const char *req;
            int status;
            const char *msg;
        } bad[] = {
            {"GARBAGE\r\n\r\n", 400, "malformed request"},
            {"GET /healthz HTTP/2.0\r\n\r\n", 505, "HTTP/1.x only"},
            {"POST /v1/activities HTTP/1.1\r\n" AUTH "Transfer-Encoding: chunked\r\n\r\n", 411,
             "chunked request bodies are not supported: send Content-Length"},
            {"POST /v1/activities HTTP/1.1\r\n" AUTH "Content-Length: 4097\r\n\r\n", 413,
             "request body too large"},
            {"POST /v1/activities HTTP/1.1\r\n" AUTH "Content-Length: x\r\n\r\n", 400,
             "malformed request"},
            {"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed request"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char want[256];
            dial(&c, sock);
            say(&c, bad[i].req);
            hear(&c, &a);
            T_EQ_INT(a.status, bad[i].status);
            snprintf(want, sizeof(want), "{\"error\":\"%s\"}\n", bad[i].msg);
            T_EQ_STR(a.body, want);
            T_OK(closed(&c));
            hang_up(&c);
        }
        /* headers over 16 KiB, sent without their end */
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
        dial(&c, sock);
        say(&c, big);
        hear(&c, &a);
        T_EQ_INT(a.status, 431);
        T_OK(closed(&c));
        hang_up(&c);
    }

    /* follows */
    ask(sock,
        post("/v1/follows", AUTH,
             "{\"actor\":\"" ACTOR "\",\"follower\":\"https://f.example/u/1\",\"inbox\":"
             "\"https://f.example/u/1/inbox\",\"shared_inbox\":\"https://f.example/inbox\"}\n"),
        &a);
    T_EQ_INT(a.status, 200);
    T_EQ_STR(a.body, "{\"added\":1,\"updated\":0,\"unchanged\":0,\"removed\":0,\"absent\":0}\n");
    ask(sock, post("/v1/follows", AUTH, "{\"actor\":\"" ACTOR "\",\"follower\":\"x\"}\n"), &a);
    T_EQ_INT(a.status, 400);
    T_EQ_STR(a.body, "{\"error\":\"line 1: actor, follower and inbox are required\"}\n");
    ask(sock, post("/v1/follows", AUTH, "[1]\n"), &a);
    T_EQ_INT(a.status, 400);
    T_EQ_STR(a.body, "{\"error\":\"line 1: not a JSON object\"}\n");
    {
        char req[1024];
        const char *body = "{\"actor\":\"" ACTOR "\",\"follower\":\"https://f.example/u/1\"}\n";
        snprintf(req, sizeof(req), "DELETE /v1/follows HTTP/1.1\r\n" AUTH
                                   "Content-Length: %zu\r\n\r\n%s",
                 strlen(body), body);
        ask(sock, req, &a);
        T_EQ_INT(a.status, 200);
        T_EQ_STR(a.body, "{\"added\":0,\"updated\":0,\"unchanged\":0,\"removed\":1,\"absent\":0}\n");
    }

    /* what the views show now */
    ask(sock, "GET /metrics HTTP/1.1\r\n\r\n", &a);
    T_OK(has(a.body, "herald_activities_total 3\n"));
    T_OK(has(a.body, "herald_ingest_total{result=\"accepted\"} 3\n"));
    T_OK(has(a.body, "herald_ingest_total{result=\"duplicate\"} 1\n"));
    T_OK(has(a.body, "herald_ingest_total{result=\"refused\"} 2\n"));
    ask(sock, "GET /v1/hosts HTTP/1.1\r\n" AUTH "\r\n", &a);
    T_OK(has(a.body, "\"host\":\"b.example\",\"backlog\":3,"));

    /* backpressure: at the bound, 429 with Retry-After, nothing stored */
    hd_ingestsrv_set_limits(s, 3, 7);
    ask(sock, post("/v1/activities", AUTH, envelope(9)), &a);
    T_EQ_INT(a.status, 429);
    T_OK(has(a.head, "\r\nRetry-After: 7\r\n"));
    T_EQ_STR(a.body, "{\"error\":\"queue over its bound; retry later\"}\n");
    hd_ingestsrv_set_limits(s, 0, 0);
    /* draining: writes 503 with Retry-After (default 5), reads still answered */
    hd_ingestsrv_set_draining(s, 1);
    ask(sock, post("/v1/activities", AUTH, envelope(9)), &a);
    T_EQ_INT(a.status, 503);
    T_OK(has(a.head, "\r\nRetry-After: 5\r\n"));
    T_EQ_STR(a.body, "{\"error\":\"shutting down; retry later\"}\n");
    ask(sock, post("/v1/follows", AUTH, "{}\n"), &a);
    T_EQ_INT(a.status, 503);
    ask(sock, "GET /healthz HTTP/1.1\r\n\r\n", &a);
    T_EQ_INT(a.status, 200);
    T_EQ_STR(a.body, "draining\n");
    ask(sock, "GET /metrics HTTP/1.1\r\n\r\n", &a);
    T_OK(has(a.body, "herald_ingest_throttled_total 3\n"));
    T_OK(has(a.body, "herald_activities_total 3\n"));
    hd_ingestsrv_set_draining(s, 0);

    /* an idle connection is closed after idle_timeout_ms */
    dial(&c, sock);
    T_OK(closed(&c));
    hang_up(&c);

    hd_ingestsrv_stop(s);
    T_OK(stat(sock, &sb) != 0); /* the socket file is removed */
    hd_metrics_free(m);
    hd_store_close(st);
    {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        T_EQ_INT(system(cmd), 0);
    }
    T_DONE();
}
