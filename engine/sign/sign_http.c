/* Signature formats over the signer (sign.c): Digest (RFC 3230) and Content-Digest
 * (RFC 9530), the HTTP Date, draft-cavage-http-signatures-12 and RFC 9421 HTTP Message
 * Signatures. Signing strings are built in the signer's scratch buffer, in place, with no
 * copy on the hot path; values that would need escaping are refused instead. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "b64.h"
#include "err.h"
#include "sign.h"
#include "sign_be.h"
#include "sign_impl.h"

/* ---- Digest, Date ---- */

#define DIGEST_CAP (8 + HD_B64_LEN(32) + 1)  /* "SHA-256=" base64 NUL */
#define CDIGEST_CAP (9 + HD_B64_LEN(32) + 2) /* "sha-256=:" base64 ":" NUL */

/* Writes the Digest value of the hash h (cap >= DIGEST_CAP); returns its length. */
static int put_digest(const uint8_t h[32], char *out, size_t cap)
{
    int n;

    memcpy(out, "SHA-256=", 8);
    n = hd_b64_encode(h, 32, out + 8, cap - 8);
    return n < 0 ? n : n + 8;
}

/* Writes the Content-Digest value of the hash h (cap >= CDIGEST_CAP); returns its length. */
static int put_content_digest(const uint8_t h[32], char *out, size_t cap)
{
    int n;

    memcpy(out, "sha-256=:", 9);
    n = hd_b64_encode(h, 32, out + 9, cap - 9);
    if (n < 0)
        return n;
    out[9 + n] = ':';
    out[10 + n] = '\0';
    return n + 10;
}

/* SHA-256 of body, written by put into out when cap >= need. */
static int hash_put(const uint8_t *body, size_t len, char *out, size_t cap, size_t need,
                    int (*put)(const uint8_t h[32], char *out, size_t cap))
{
    uint8_t h[32];

    if (cap < need)
        return HD_ERR_FULL;
    if (hd_sign_sha256(body, len, h) != 0)
        return HD_ERR_CRYPTO;
    return put(h, out, cap);
}

int hd_digest_sha256(const uint8_t *body, size_t len, char *out, size_t cap)
{
    return hash_put(body, len, out, cap, DIGEST_CAP, put_digest);
}

int hd_content_digest_sha256(const uint8_t *body, size_t len, char *out, size_t cap)
{
    return hash_put(body, len, out, cap, CDIGEST_CAP, put_content_digest);
}

int hd_digests_sha256(const uint8_t *body, size_t len, char *digest, size_t dcap,
                      char *cdigest, size_t ccap)
{
    uint8_t h[32];
    int n;

    if (dcap < DIGEST_CAP || ccap < CDIGEST_CAP)
        return HD_ERR_FULL;
    if (hd_sign_sha256(body, len, h) != 0)
        return HD_ERR_CRYPTO;
    n = put_digest(h, digest, dcap);
    if (n >= 0)
        n = put_content_digest(h, cdigest, ccap);
    return n < 0 ? n : 0;
}

void hd_http_date(time_t t, char *out, size_t cap)
{
    /* Fixed English names: strftime's %a/%b follow the locale, IMF-fixdate does not. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    if (cap == 0)
        return;
    if (!gmtime_r(&t, &tm)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- string building ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->err || b->cap - b->len <= n) {
        b->err = HD_ERR_FULL;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_lower(struct sbuf *b, const char *s, size_t n)
{
    size_t i, start = b->len;

    sb_put(b, s, n);
    if (b->err)
        return;
    for (i = start; i < b->len; i++)
        if (b->p[i] >= 'A' && b->p[i] <= 'Z')
            b->p[i] = (char)(b->p[i] - 'A' + 'a');
}

static void sb_i64(struct sbuf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

    sb_put(b, tmp, (size_t)n);
}

/* A value placed in a quoted string (keyId, keyid) or a signature line: refuse quotes,
 * backslashes and control characters rather than escape them, since peers disagree on
 * escaping and CR/LF would allow header injection. */
static int check_text(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
            return HD_ERR_INVALID;
    }
    return 0;
}

/* A method must be an RFC 9110 token (no spaces or separators, non-empty). */
static int check_token(const char *s)
{
    if (!*s)
        return HD_ERR_INVALID;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return HD_ERR_INVALID;
    return 0;
}

/* An sf-string value (RFC 8941): printable ASCII only, no '"' or '\\' (we do not escape). */
static int check_sf_string(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
            return HD_ERR_INVALID;
    return 0;
}

/* Appends the values of every header named name (n bytes, any case), trimmed of optional
 * whitespace and joined with ", " (RFC 9110 field combination; cavage-12 section 2.3).
 * Returns 0, HD_ERR_INVALID when absent or a value holds CR/LF/NUL-ish control bytes. */
static int sb_header_value(struct sbuf *b, const struct hd_sign_header *h, size_t nh,
                           const char *name, size_t n)
{
    size_t i, found = 0;

    for (i = 0; i < nh; i++) {
        const char *v, *e;

        if (!h[i].name || strlen(h[i].name) != n || strncasecmp(h[i].name, name, n) != 0)
            continue;
        v = h[i].value ? h[i].value : "";
        while (*v == ' ' || *v == '\t')
            v++;
        e = v + strlen(v);
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        for (const char *q = v; q < e; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t')
                return HD_ERR_INVALID;
        if (found++)
            sb_put(b, ", ", 2);
        sb_put(b, v, (size_t)(e - v));
    }
    return found ? 0 : HD_ERR_INVALID;
}

/* Next space-separated token of list; returns its length (0 at the end). */
static size_t next_token(const char **list, const char **tok)
{
    const char *p = *list;
    size_t n = 0;

    while (*p == ' ' || *p == '\t')
        p++;
    *tok = p;
    while (p[n] && p[n] != ' ' && p[n] != '\t')
        n++;
    *list = p + n;
    return n;
}

static int tok_is(const char *tok, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(tok, lit, n) == 0;
}

/* Signs base[0..len) with k and appends the base64 signature to out. */
static int sign_b64(struct hd_signer *s, struct hd_sign_key *k, int alg, const char *base,
                    size_t len, struct sbuf *out)
{
    uint8_t sig[HD_SIGN_SIG_MAX];
    size_t sig_len = sizeof(sig);
    int rc, n;

    rc = hd_sign_key_sign(s, k, alg, (const uint8_t *)base, len, sig, &sig_len);
    if (rc != 0)
        return rc;
    if (out->err || out->cap - out->len < HD_B64_LEN(sig_len) + 1)
        return HD_ERR_FULL;
    n = hd_b64_encode(sig, sig_len, out->p + out->len, out->cap - out->len);
    if (n < 0)
        return n;
    out->len += (size_t)n;
    return 0;
}

/* ---- draft-cavage-http-signatures-12 ---- */

int hd_sign_cavage_ex(struct hd_signer *s, const struct hd_sign_req *req, int64_t created,
                      int64_t expires, char *out, size_t cap)
{
    struct sbuf base = {hd_signer_scratch(s), 0, HD_SIGN_BASE_MAX, 0};
    struct sbuf hdrs, o = {out, 0, cap, 0};
    char hbuf[1024];
    const char *list, *tok;
    struct hd_sign_key *k;
    size_t n;
    int rc, hs2019 = 0;

    if (!req->key_id || !req->components || check_text(req->key_id) != 0)
        return HD_ERR_INVALID;
    k = hd_signer_key_use(s, req->key_id);
    if (!k)
        return HD_ERR_NOT_FOUND;
    hdrs = (struct sbuf){hbuf, 0, sizeof(hbuf), 0};
    base.p[0] = hbuf[0] = '\0';
    list = req->components;
    while ((n = next_token(&list, &tok)) > 0) {
        if (base.len)
            sb_put(&base, "\n", 1);
        if (hdrs.len)
            sb_put(&hdrs, " ", 1);
        sb_lower(&hdrs, tok, n);
        if (tok_is(tok, n, "(request-target)")) {
            if (!req->method || !req->target || check_token(req->method) != 0 ||
                check_text(req->target) != 0)
                return HD_ERR_INVALID;
            sb_str(&base, "(request-target): ");
            sb_lower(&base, req->method, strlen(req->method));
            sb_put(&base, " ", 1);
            sb_str(&base, req->target);
        } else if (tok_is(tok, n, "(created)") || tok_is(tok, n, "(expires)")) {
            int64_t v = tok_is(tok, n, "(created)") ? created : expires;

            if (v < 0)
                return HD_ERR_INVALID;
            hs2019 = 1;
            sb_lower(&base, tok, n);
            sb_put(&base, ": ", 2);
            sb_i64(&base, v);
        } else if (tok[0] == '(' || tok[0] == '"') {
            return HD_ERR_INVALID;
        } else {
            sb_lower(&base, tok, n);
            sb_put(&base, ": ", 2);
            rc = sb_header_value(&base, req->headers, req->nheaders, tok, n);
            if (rc != 0)
                return rc;
        }
        if (base.err || hdrs.err)
            return HD_ERR_FULL;
    }
    if (hdrs.len == 0)
        return HD_ERR_INVALID;
    /* created/expires parameters belong to hs2019 (cavage-12 2.1.4-2.1.5 and 2.3: they are
     * errors with algorithms starting "rsa"), as does Ed25519. */
    if (hd_sign_key_type(k) == HD_KEY_ED25519 || created >= 0 || expires >= 0)
        hs2019 = 1;
    sb_str(&o, "keyId=\"");
    sb_str(&o, req->key_id);
    sb_str(&o, hs2019 ? "\",algorithm=\"hs2019\"," : "\",algorithm=\"rsa-sha256\",");
    if (created >= 0) {
        sb_str(&o, "created=");
        sb_i64(&o, created);
        sb_put(&o, ",", 1);
    }
    if (expires >= 0) {
        sb_str(&o, "expires=");
        sb_i64(&o, expires);
        sb_put(&o, ",", 1);
    }
    sb_str(&o, "headers=\"");
    sb_put(&o, hdrs.p, hdrs.len);
    sb_str(&o, "\",signature=\"");
    if (o.err)
        return HD_ERR_FULL;
    /* hs2019 with RSA keys: RSASSA-PKCS1-v1_5 SHA-256 as Mastodon and most peers use;
     * with Ed25519: pure Ed25519. */
    rc = sign_b64(s, k, hd_sign_default_alg(hd_sign_key_type(k)), base.p, base.len, &o);
    if (rc != 0)
        return rc;
    sb_put(&o, "\"", 1);
    if (o.err)
        return HD_ERR_FULL;
    return (int)o.len;
}

int hd_sign_cavage(struct hd_signer *s, const struct hd_sign_req *req, char *out, size_t cap)
{
    return hd_sign_cavage_ex(s, req, -1, -1, out, cap);
}

/* ---- RFC 9421 HTTP Message Signatures ---- */

/* Appends the value of one component identifier (name without quotes, n bytes). */
static int rfc9421_value(struct sbuf *b, const struct hd_sign9421_req *r, const char *name,
                         size_t n)
{
    const char *q;

    if (name[0] != '@')
        return sb_header_value(b, r->headers, r->nheaders, name, n);
    if (!r->target || check_text(r->target) != 0)
        return HD_ERR_INVALID;
    q = strchr(r->target, '?');
    if (tok_is(name, n, "@method")) {
        if (!r->method || check_token(r->method) != 0)
            return HD_ERR_INVALID;
        sb_str(b, r->method); /* case-sensitive, not normalised (RFC 9421 2.2.1) */
    } else if (tok_is(name, n, "@authority")) {
        if (!r->authority || check_text(r->authority) != 0)
            return HD_ERR_INVALID;
        sb_lower(b, r->authority, strlen(r->authority));
    } else if (tok_is(name, n, "@scheme")) {
        if (!r->scheme || check_text(r->scheme) != 0)
            return HD_ERR_INVALID;
        sb_lower(b, r->scheme, strlen(r->scheme));
    } else if (tok_is(name, n, "@target-uri")) {
        if (!r->scheme || !r->authority || check_text(r->scheme) || check_text(r->authority))
            return HD_ERR_INVALID;
        sb_lower(b, r->scheme, strlen(r->scheme));
        sb_str(b, "://");
        sb_lower(b, r->authority, strlen(r->authority));
        sb_str(b, r->target);
    } else if (tok_is(name, n, "@request-target")) {
        sb_str(b, r->target);
    } else if (tok_is(name, n, "@path")) {
        size_t plen = q ? (size_t)(q - r->target) : strlen(r->target);

        if (plen == 0)
            sb_put(b, "/", 1); /* an empty path is "/" (RFC 9421 2.2.6) */
        else
            sb_put(b, r->target, plen);
    } else if (tok_is(name, n, "@query")) {
        sb_str(b, q ? q : "?"); /* no query: "?" (RFC 9421 2.2.7) */
    } else {
        return HD_ERR_INVALID; /* @status, @query-param, unknown */
    }
    return 0;
}

/* Does the space-separated list of quoted identifiers [list, list + len) contain item? */
static int component_repeated(const char *list, size_t len, const char *item, size_t ilen)
{
    size_t i = 0;

    while (i + ilen <= len) {
        if (memcmp(list + i, item, ilen) == 0 && (i + ilen == len || list[i + ilen] == ' '))
            return 1;
        while (i < len && list[i] != ' ')
            i++;
        i++;
    }
    return 0;
}

int hd_sign_rfc9421(struct hd_signer *s, const struct hd_sign9421_req *req, char *input,
                    size_t input_cap, char *sig, size_t sig_cap)
{
    struct sbuf base = {hd_signer_scratch(s), 0, HD_SIGN_BASE_MAX, 0};
    struct sbuf in = {input, 0, input_cap, 0}, o = {sig, 0, sig_cap, 0};
    const char *label = req->label ? req->label : "sig1";
    const char *list, *tok, *p;
    struct hd_sign_key *k;
    size_t n, params_at, i;
    int rc, alg;

    if (!req->key_id || !req->components || check_sf_string(req->key_id) != 0)
        return HD_ERR_INVALID;
    /* Labels are sf-key: lcalpha / "*" then lcalpha, digit, "_", "-", ".", "*". */
    if (!(label[0] >= 'a' && label[0] <= 'z') && label[0] != '*')
        return HD_ERR_INVALID;
    for (p = label; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("_-.*", *p)))
            return HD_ERR_INVALID;
    k = hd_signer_key_use(s, req->key_id);
    if (!k)
        return HD_ERR_NOT_FOUND;
    alg = req->alg ? hd_sign_alg_from_name(req->alg) : hd_sign_default_alg(hd_sign_key_type(k));
    if (alg < 0 || (alg == HD_SIGN_ALG_ED25519) != (hd_sign_key_type(k) == HD_KEY_ED25519))
        return HD_ERR_INVALID;

    /* Signature-Input: label=("c1" "c2");params. The inner list is also the value of the
     * @signature-params line, so build it once in input and copy it into the base. */
    base.p[0] = '\0';
    sb_str(&in, label);
    sb_str(&in, "=(");
    params_at = in.len;
    list = req->components;
    while ((n = next_token(&list, &tok)) > 0) {
        const char *name = tok;
        size_t nl = n;

        if (n >= 2 && tok[0] == '"' && tok[n - 1] == '"') {
            name = tok + 1;
            nl = n - 2;
        }
        if (nl == 0 || memchr(name, '"', nl) || memchr(name, ';', nl))
            return HD_ERR_INVALID; /* empty, or with parameters: unsupported */
        for (i = 0; i < nl; i++)
            if ((unsigned char)name[i] <= 0x20 || (unsigned char)name[i] >= 0x7f)
                return HD_ERR_INVALID;
        if (in.len > params_at)
            sb_put(&in, " ", 1);
        /* RFC 9421 2.5: a component identifier must not be repeated. Look for the same
         * quoted, lower-cased name already written into the inner list. */
        if (!in.err) {
            size_t at = in.len;

            sb_put(&in, "\"", 1);
            sb_lower(&in, name, nl);
            sb_put(&in, "\"", 1);
            if (!in.err &&
                component_repeated(input + params_at, at - params_at, input + at, in.len - at))
                return HD_ERR_INVALID;
            in.len = at;
        }
        sb_put(&in, "\"", 1);
        sb_lower(&in, name, nl);
        sb_put(&in, "\"", 1);
        /* Base line: "name": value */
        sb_put(&base, "\"", 1);
        sb_lower(&base, name, nl);
        sb_str(&base, "\": ");
        rc = rfc9421_value(&base, req, name, nl);
        if (rc != 0)
            return rc;
        sb_put(&base, "\n", 1);
        if (base.err || in.err)
            return HD_ERR_FULL;
    }
    sb_put(&in, ")", 1);
    if (req->created >= 0) {
        sb_str(&in, ";created=");
        sb_i64(&in, req->created);
    }
    sb_str(&in, ";keyid=\"");
    sb_str(&in, req->key_id);
    sb_put(&in, "\"", 1);
    if (req->alg && !req->omit_alg_param) {
        sb_str(&in, ";alg=\"");
        sb_str(&in, req->alg);
        sb_put(&in, "\"", 1);
    }
    if (req->expires >= 0) {
        sb_str(&in, ";expires=");
        sb_i64(&in, req->expires);
    }
    if (in.err)
        return HD_ERR_FULL;
    sb_str(&base, "\"@signature-params\": ");
    sb_str(&base, input + strlen(label) + 1);
    if (base.err)
        return HD_ERR_FULL;

    sb_str(&o, label);
    sb_str(&o, "=:");
    if (o.err)
        return HD_ERR_FULL;
    rc = sign_b64(s, k, alg, base.p, base.len, &o);
    if (rc != 0)
        return rc;
    sb_put(&o, ":", 1);
    if (o.err)
        return HD_ERR_FULL;
    return (int)o.len;
}
