/* `herald sign`: builds the headers Herald would send for one request and prints them, one
 * "Name: value" per line, for operators debugging signatures a peer rejects.
 *
 * It goes through exactly the engine calls the scheduler uses (hd_signer_add_key,
 * hd_sign_cavage_ex / hd_sign_rfc9421, hd_digest_sha256, hd_content_digest_sha256), so
 * what it prints is what Herald sends. Keys of any RSA size are accepted here (min bits 0)
 * so that published test vectors (1024-bit) can be reproduced.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli_sign.h"
#include "cli_util.h"
#include "err.h"
#include "log.h"
#include "sign.h"

#define CLI_MAX_HEADERS 64
#define CLI_PEM_MAX (64 * 1024)
#define CLI_BODY_MAX (16 * 1024 * 1024)
#define CLI_OUT_MAX (HD_SIGN_BASE_MAX + 4096)

struct cli_sign {
    const char *pem_file, *key_id, *method, *url, *body_file, *components, *scheme, *alg;
    const char *label, *backend;
    int64_t created, expires;
    int show_base, no_alg_param;
    struct hd_sign_header hdr[CLI_MAX_HEADERS + 4];
    char *hdr_store[CLI_MAX_HEADERS]; /* "Name\0value" copies owned here */
    size_t nhdr;
    /* From the URL. */
    int tls;
    char authority[300];
    char target[4096];
};

static const char sign_usage[] =
    "usage: herald sign --pem FILE --key-id ID --method M --url URL\n"
          "         [--header \"Name: value\"]... [--body FILE] [--components LIST]\n"
          "         [--scheme cavage|rfc9421] [--alg rsa-v1_5-sha256|rsa-pss-sha512|ed25519]\n"
          "         [--label NAME] [--created UNIX] [--expires UNIX]\n"
          "         [--backend auto|openssl|wolfssl] [--show-base] [--no-alg-param]\n"
          "Prints the headers Herald would add (Host if absent, Date, Digest or\n"
          "Content-Digest when covered, Signature / Signature-Input). --show-base writes the\n"
          "signing string (signature base) to stderr.\n"
          "cavage default components: \"(request-target) host date\", plus \"digest\n"
          "content-type\" with --body (what the engine signs). rfc9421 default, what the engine\n"
          "signs: \"@method\" \"@target-uri\" \"content-type\" \"content-digest\" \"date\" with\n"
          "alg=\"rsa-v1_5-sha256\" or \"ed25519\" after the key (the digest of an empty body\n"
          "without --body).\n";

static void usage(FILE *f)
{
    fputs(sign_usage, f);
}

/* Splits an absolute http(s) URL into authority (lower-case, default port dropped) and
 * request target (path and query, "/" if empty; fragment dropped). */
static int parse_url(struct cli_sign *c)
{
    const char *u = c->url, *a, *ae, *p, *pe;
    size_t alen, i;
    int n;

    if (strncasecmp(u, "https://", 8) == 0) {
        c->tls = 1;
        a = u + 8;
    } else if (strncasecmp(u, "http://", 7) == 0) {
        c->tls = 0;
        a = u + 7;
    } else {
        return HD_ERR_INVALID;
    }
    ae = a + strcspn(a, "/?#");
    if (ae == a || memchr(a, '@', (size_t)(ae - a)))
        return HD_ERR_INVALID;
    alen = (size_t)(ae - a);
    /* Drop an explicit default port, as browsers and Mastodon's Host handling do. */
    if (c->tls && alen > 4 && memcmp(ae - 4, ":443", 4) == 0)
        alen -= 4;
    else if (!c->tls && alen > 3 && memcmp(ae - 3, ":80", 3) == 0)
        alen -= 3;
    if (alen >= sizeof(c->authority))
        return HD_ERR_INVALID;
    for (i = 0; i < alen; i++) {
        char ch = a[i];

        if ((unsigned char)ch <= 0x20 || (unsigned char)ch >= 0x7f)
            return HD_ERR_INVALID;
        c->authority[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    c->authority[alen] = '\0';
    p = ae;
    pe = p + strcspn(p, "#");
    for (const char *q = p; q < pe; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            return HD_ERR_INVALID;
    n = snprintf(c->target, sizeof(c->target), "%s%.*s", *p == '/' ? "" : "/", (int)(pe - p), p);
    if (n < 0 || (size_t)n >= sizeof(c->target))
        return HD_ERR_INVALID;
    return 0;
}

static int add_header(struct cli_sign *c, const char *arg)
{
    const char *colon = strchr(arg, ':');
    size_t nl;
    char *copy;

    if (!colon || colon == arg || c->nhdr >= CLI_MAX_HEADERS)
        return HD_ERR_INVALID;
    nl = (size_t)(colon - arg);
    for (size_t i = 0; i < nl; i++)
        if ((unsigned char)arg[i] <= 0x20 || (unsigned char)arg[i] >= 0x7f)
            return HD_ERR_INVALID;
    copy = strdup(arg);
    if (!copy)
        return -ENOMEM;
    copy[nl] = '\0';
    c->hdr_store[c->nhdr] = copy;
    c->hdr[c->nhdr].name = copy;
    arg = copy + nl + 1;
    while (*arg == ' ' || *arg == '\t')
        arg++;
    c->hdr[c->nhdr].value = arg; /* trailing whitespace is trimmed when signing */
    c->nhdr++;
    return 0;
}

static const char *find_header(const struct cli_sign *c, const char *name)
{
    for (size_t i = 0; i < c->nhdr; i++)
        if (strcasecmp(c->hdr[i].name, name) == 0)
            return c->hdr[i].value;
    return NULL;
}

/* Does the component list cover this name (header or derived), quoted or not? */
static int covers(const char *list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list;

    while (*p) {
        const char *t;
        size_t tl;

        while (*p == ' ' || *p == '\t')
            p++;
        t = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        tl = (size_t)(p - t);
        if (tl >= 2 && t[0] == '"' && t[tl - 1] == '"') {
            t++;
            tl -= 2;
        }
        if (tl == n && strncasecmp(t, name, n) == 0)
            return 1;
    }
    return 0;
}

static void print_header(const char *name, const char *value)
{
    printf("%s: %s\n", name, value);
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return HD_ERR_INVALID;
    *out = v;
    return 0;
}

static int run(struct cli_sign *c, struct hd_signer *s)
{
    char *pem = NULL, *body = NULL, *out = NULL, *input = NULL;
    char date[40], digest[80];
    size_t pem_len = 0, body_len = 0;
    int rfc = c->scheme && strcmp(c->scheme, "rfc9421") == 0;
    const char *comps = c->components;
    int rc;

    if (c->scheme && !rfc && strcmp(c->scheme, "cavage") != 0) {
        fprintf(stderr, "herald sign: --scheme must be cavage or rfc9421\n");
        return 2;
    }
    if (parse_url(c) != 0) {
        fprintf(stderr, "herald sign: invalid --url (absolute http or https URL expected)\n");
        return 2;
    }
    rc = hd_cli_read_file(c->pem_file, CLI_PEM_MAX, 0, &pem, &pem_len);
    if (rc != 0) {
        fprintf(stderr, "herald sign: cannot read --pem file: %s\n", hd_strerror(rc));
        return 1;
    }
    rc = hd_signer_add_key(s, c->key_id, pem, pem_len, 0);
    explicit_bzero(pem, pem_len);
    free(pem);
    if (rc != 0) {
        fprintf(stderr,
                "herald sign: key not usable (%s): RSA PKCS#1/PKCS#8 or Ed25519 "
                "PKCS#8 PEM, unencrypted, expected\n",
                hd_strerror(rc));
        return 1;
    }
    if (c->body_file) {
        rc = hd_cli_read_file(c->body_file, CLI_BODY_MAX, 0, &body, &body_len);
        if (rc != 0) {
            fprintf(stderr, "herald sign: cannot read --body file: %s\n", hd_strerror(rc));
            return 1;
        }
    }
    if (!comps) {
        if (rfc) {
            /* What the engine signs (engine/sched/send.c), with the alg parameter it sends. */
            int kt = 0;
            unsigned kb = 0;
            comps = "\"@method\" \"@target-uri\" \"content-type\" \"content-digest\" \"date\"";
            hd_signer_key_info(s, c->key_id, &kt, &kb);
            if (!c->alg)
                c->alg = kt == HD_KEY_ED25519 ? "ed25519" : "rsa-v1_5-sha256";
        } else
            comps = body ? "(request-target) host date digest content-type"
                         : "(request-target) host date";
    }

    /* Headers Herald adds: Host (from the URL) and Date (now) unless given; the body digest
     * when covered and not given; Content-Type when covered and not given. */
    rc = 1;
    if (!find_header(c, "host")) {
        c->hdr[c->nhdr++] = (struct hd_sign_header){"Host", c->authority};
        print_header("Host", c->authority);
    }
    if (!find_header(c, "date")) {
        hd_http_date(time(NULL), date, sizeof(date));
        c->hdr[c->nhdr++] = (struct hd_sign_header){"Date", date};
    }
    print_header("Date", find_header(c, "date"));
    if (!rfc && covers(comps, "digest") && !find_header(c, "digest")) {
        if (hd_digest_sha256((const uint8_t *)(body ? body : ""), body_len, digest,
                             sizeof(digest)) < 0)
            goto out;
        c->hdr[c->nhdr++] = (struct hd_sign_header){"Digest", digest};
        print_header("Digest", digest);
    }
    if (rfc && covers(comps, "content-digest") && !find_header(c, "content-digest")) {
        if (hd_content_digest_sha256((const uint8_t *)(body ? body : ""), body_len, digest,
                                     sizeof(digest)) < 0)
            goto out;
        c->hdr[c->nhdr++] = (struct hd_sign_header){"Content-Digest", digest};
        print_header("Content-Digest", digest);
    }
    if (covers(comps, "content-type") && !find_header(c, "content-type")) {
        c->hdr[c->nhdr++] = (struct hd_sign_header){"Content-Type", "application/activity+json"};
        print_header("Content-Type", "application/activity+json");
    }

    out = malloc(CLI_OUT_MAX);
    input = malloc(CLI_OUT_MAX);
    if (!out || !input)
        goto out;
    if (rfc) {
        struct hd_sign9421_req r = {
            .method = c->method,
            .scheme = c->tls ? "https" : "http",
            .authority = c->authority,
            .target = c->target,
            .headers = c->hdr,
            .nheaders = c->nhdr,
            .components = comps,
            .key_id = c->key_id,
            .label = c->label,
            .alg = c->alg,
            .created = c->created == -2 ? (int64_t)time(NULL) : c->created,
            .expires = c->expires,
            .omit_alg_param = c->no_alg_param,
        };

        rc = hd_sign_rfc9421(s, &r, input, CLI_OUT_MAX, out, CLI_OUT_MAX);
        if (rc >= 0) {
            print_header("Signature-Input", input);
            print_header("Signature", out);
        }
    } else {
        struct hd_sign_req r = {
            .method = c->method,
            .target = c->target,
            .headers = c->hdr,
            .nheaders = c->nhdr,
            .components = comps,
            .key_id = c->key_id,
        };

        rc = hd_sign_cavage_ex(s, &r, c->created == -2 ? -1 : c->created, c->expires, out,
                               CLI_OUT_MAX);
        if (rc >= 0)
            print_header("Signature", out);
    }
    if (rc < 0) {
        fprintf(stderr, "herald sign: signing failed: %s%s\n", hd_strerror(rc),
                rc == HD_ERR_INVALID ? " (a covered header missing, a bad component, or "
                                       "--alg not suited to the key)"
                                     : "");
        rc = 1;
        goto out;
    }
    if (c->show_base)
        fprintf(stderr, "%s\n", hd_signer_last_base(s));
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(out);
    free(input);
    free(body);
    return rc;
}

int hd_cli_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pem", required_argument, NULL, 'p'},
        {"key-id", required_argument, NULL, 'k'},
        {"method", required_argument, NULL, 'm'},
        {"url", required_argument, NULL, 'u'},
        {"header", required_argument, NULL, 'H'},
        {"body", required_argument, NULL, 'b'},
        {"components", required_argument, NULL, 'c'},
        {"scheme", required_argument, NULL, 's'},
        {"alg", required_argument, NULL, 'a'},
        {"label", required_argument, NULL, 'l'},
        {"created", required_argument, NULL, 'C'},
        {"expires", required_argument, NULL, 'E'},
        {"backend", required_argument, NULL, 'B'},
        {"no-alg-param", no_argument, NULL, 'N'},
        {"show-base", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_sign c = {.created = -2, .expires = -1};
    struct hd_signer *s = NULL;
    int opt, rc = 2;

    if (hd_cli_help(argc, argv, sign_usage))
        return 0;
    optind = 0; /* GNU: full re-initialisation, in case another subcommand used getopt */
    while ((opt = hd_cli_getopt("sign", sign_usage, argc, argv, "p:k:m:u:H:b:c:s:a:l:C:E:B:NSh",
                                opts)) != -1) {
        switch (opt) {
        case 'p':
            c.pem_file = optarg;
            break;
        case 'k':
            c.key_id = optarg;
            break;
        case 'm':
            c.method = optarg;
            break;
        case 'u':
            c.url = optarg;
            break;
        case 'b':
            c.body_file = optarg;
            break;
        case 'c':
            c.components = optarg;
            break;
        case 's':
            c.scheme = optarg;
            break;
        case 'a':
            c.alg = optarg;
            break;
        case 'l':
            c.label = optarg;
            break;
        case 'B':
            c.backend = optarg;
            break;
        case 'S':
            c.show_base = 1;
            break;
        case 'N':
            c.no_alg_param = 1;
            break;
        case 'H':
            if (add_header(&c, optarg) != 0) {
                fprintf(stderr, "herald sign: bad --header (\"Name: value\", at most %d)\n",
                        CLI_MAX_HEADERS);
                goto out;
            }
            break;
        case 'C':
        case 'E':
            if (parse_i64(optarg, opt == 'C' ? &c.created : &c.expires) != 0) {
                fprintf(stderr, "herald sign: --created/--expires take a UNIX time\n");
                goto out;
            }
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            goto out;
        }
    }
    if (hd_cli_positional("sign", sign_usage, argc, argv, 0, 0))
        goto out;
    if (!c.pem_file || !c.key_id || !c.method || !c.url) {
        hd_cli_usage_error("sign", sign_usage, "--pem, --key-id, --method and --url are required");
        goto out;
    }
    /* A one-shot tool whose stderr may carry the signature base (--show-base): keep the
     * signer's informational lines (backend chosen) out of it. Set before any thread. */
    if (hd_log_level > HD_LOG_WARN)
        hd_log_level = HD_LOG_WARN;
    rc = hd_signer_new_ex(&s, c.backend);
    if (rc != 0) {
        fprintf(stderr, "herald sign: cannot create signer: %s\n", hd_strerror(rc));
        rc = rc == HD_ERR_INVALID ? 2 : 1;
        goto out;
    }
    rc = run(&c, s);
out:
    hd_signer_free(s);
    for (size_t i = 0; i < CLI_MAX_HEADERS; i++)
        free(c.hdr_store[i]);
    return rc;
}
