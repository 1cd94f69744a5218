/* Independent verification of Herald's requests with OpenSSL 3 libcrypto: Content-Type, then
 * either draft-cavage-http-signatures-12 (Date, Digest (RFC 3230 SHA-256), Signature) or
 * RFC 9421 HTTP Message Signatures (Signature-Input, Signature, Content-Digest (RFC 9530),
 * created/expires or Date).
 * Deliberately shares no code with engine/sign/: a bug there must not be mirrored here. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "req.h"
#include "verify.h"

#define SIGNING_STRING_MAX 8192

struct vkey {
    char *id;
    EVP_PKEY *pkey;
    EVP_PKEY_CTX *pkcs1; /* RSA: verify context set up once (PKCS#1 v1.5, SHA-256) */
    int is_rsa;
};

struct fs_verifier {
    struct vkey *slots; /* open addressing on key id */
    size_t nslots, count;
    EVP_MD_CTX *md;
};

static const char *const badsig_names[FS_BAD_LAST] = {
    "none",         "content_type", "date",
    "digest",       "no_signature", "bad_signature_header",
    "headers_list", "unknown_key",  "algorithm",
    "signature",    "scheme",
};

const char *fs_badsig_name(enum fs_badsig b)
{
    return (b >= 0 && b < FS_BAD_LAST) ? badsig_names[b] : "?";
}

static uint64_t id_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a: key ids are few and short */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static struct vkey *find_key(const struct fs_verifier *v, const char *id, size_t n)
{
    size_t i;

    if (!v->nslots)
        return NULL;
    i = (size_t)id_hash(id, n) & (v->nslots - 1);
    while (v->slots[i].id) {
        if (strncmp(v->slots[i].id, id, n) == 0 && v->slots[i].id[n] == '\0')
            return &v->slots[i];
        i = (i + 1) & (v->nslots - 1);
    }
    return NULL;
}

static int insert_key(struct fs_verifier *v, char *id, EVP_PKEY *pkey)
{
    size_t i;

    if ((v->count + 1) * 2 > v->nslots) {
        size_t n = v->nslots ? v->nslots * 2 : 64;
        struct vkey *ns = calloc(n, sizeof(*ns));
        if (!ns)
            return -ENOMEM;
        for (size_t j = 0; j < v->nslots; j++) {
            if (!v->slots[j].id)
                continue;
            size_t k = (size_t)id_hash(v->slots[j].id, strlen(v->slots[j].id)) & (n - 1);
            while (ns[k].id)
                k = (k + 1) & (n - 1);
            ns[k] = v->slots[j];
        }
        free(v->slots);
        v->slots = ns;
        v->nslots = n;
    }
    struct vkey *old = find_key(v, id, strlen(id));
    if (old) {
        EVP_PKEY_free(old->pkey);
        EVP_PKEY_CTX_free(old->pkcs1);
        old->pkcs1 = NULL;
        old->pkey = pkey;
        old->is_rsa = EVP_PKEY_base_id(pkey) == EVP_PKEY_RSA;
        free(id);
        return 0;
    }
    i = (size_t)id_hash(id, strlen(id)) & (v->nslots - 1);
    while (v->slots[i].id)
        i = (i + 1) & (v->nslots - 1);
    v->slots[i].id = id;
    v->slots[i].pkey = pkey;
    v->slots[i].is_rsa = EVP_PKEY_base_id(pkey) == EVP_PKEY_RSA;
    v->count++;
    return 0;
}

void fs_verifier_free(struct fs_verifier *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nslots; i++) {
        free(v->slots[i].id);
        EVP_PKEY_CTX_free(v->slots[i].pkcs1);
        EVP_PKEY_free(v->slots[i].pkey);
    }
    free(v->slots);
    EVP_MD_CTX_free(v->md);
    free(v);
}

size_t fs_verifier_nkeys(const struct fs_verifier *v)
{
    return v ? v->count : 0;
}

int fs_verifier_new(struct fs_verifier **out, const char *keys_path)
{
    struct fs_verifier *v = calloc(1, sizeof(*v));
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int rv = 0;

    if (!v)
        return -ENOMEM;
    v->md = EVP_MD_CTX_new();
    if (!v->md) {
        rv = -ENOMEM;
        goto out;
    }
    if (!keys_path)
        goto out;
    f = fopen(keys_path, "r");
    if (!f) {
        rv = -errno;
        HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"cannot open --keys\" path=%s", keys_path);
        goto out;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t jerr;
        json_t *o, *id, *pem;
        BIO *bio;
        EVP_PKEY *pkey;
        char *ids;

        lineno++;
        if (n <= 1)
            continue;
        o = json_loadb(line, (size_t)n, 0, &jerr);
        id = o ? json_object_get(o, "key_id") : NULL;
        pem = o ? json_object_get(o, "public_pem") : NULL;
        if (!json_is_string(id) || !json_is_string(pem)) {
            HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"bad --keys line\" line=%lu", lineno);
            json_decref(o);
            rv = HD_ERR_INVALID;
            goto out;
        }
        bio = BIO_new_mem_buf(json_string_value(pem), (int)json_string_length(pem));
        pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        if (!pkey) {
            HD_LOG(HD_LOG_ERROR, "fedisim", "msg=\"bad public key in --keys\" line=%lu", lineno);
            json_decref(o);
            rv = HD_ERR_INVALID;
            goto out;
        }
        ids = strdup(json_string_value(id));
        json_decref(o);
        if (!ids || insert_key(v, ids, pkey) < 0) {
            free(ids);
            EVP_PKEY_free(pkey);
            rv = -ENOMEM;
            goto out;
        }
    }
out:
    free(line);
    if (f)
        fclose(f);
    if (rv < 0) {
        fs_verifier_free(v);
        return rv;
    }
    *out = v;
    return 0;
}

/* ---- the checks ---- */

static int ctype_ok(const char *ct)
{
    size_t n;

    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    n = strcspn(ct, "; ");
    return (n == 25 && strncasecmp(ct, "application/activity+json", 25) == 0) ||
           (n == 19 && strncasecmp(ct, "application/ld+json", 19) == 0) ||
           (n == 16 && strncasecmp(ct, "application/json", 16) == 0);
}

static int date_ok(const char *d, time_t now)
{
    struct tm tm;
    const char *end;
    time_t t;

    if (!d)
        return 0;
    memset(&tm, 0, sizeof(tm));
    end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0')
        return 0;
    t = timegm(&tm);
    return t != (time_t)-1 && t <= now + 300 && t >= now - 300;
}

static int digest_ok(const char *hdr, const uint8_t *body, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char b64[64];
    const char *p = hdr;

    if (!hdr)
        return 0;
    SHA256(body, len, md);
    EVP_EncodeBlock((unsigned char *)b64, md, sizeof(md));
    /* The header may list several digests: "SHA-256=...,SHA-512=..." */
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        if (n > 8 && strncasecmp(p, "SHA-256=", 8) == 0) {
            size_t vl = n - 8;
            while (vl > 0 && p[8 + vl - 1] == ' ')
                vl--;
            return vl == strlen(b64) && memcmp(p + 8, b64, vl) == 0;
        }
        p += n;
    }
    return 0;
}

struct sigparams {
    const char *key_id, *alg, *headers, *sig, *created, *expires;
    size_t key_id_len, alg_len, headers_len, sig_len, created_len, expires_len;
};

/* keyId="...",algorithm="...",headers="...",signature="..." (order free, created/expires
 * unquoted numbers allowed). */
static int parse_sig(const char *s, struct sigparams *sp)
{
    memset(sp, 0, sizeof(*sp));
    while (*s) {
        const char *k, *val;
        size_t kl, vl;

        while (*s == ' ' || *s == ',')
            s++;
        if (!*s)
            break;
        k = s;
        while (*s && *s != '=')
            s++;
        if (*s != '=')
            return -1;
        kl = (size_t)(s - k);
        s++;
        if (*s == '"') {
            val = ++s;
            while (*s && *s != '"')
                s++;
            if (*s != '"')
                return -1;
            vl = (size_t)(s - val);
            s++;
        } else {
            val = s;
            while (*s && *s != ',')
                s++;
            vl = (size_t)(s - val);
        }
#define KEY(name, f)                                                                               \
    if (kl == sizeof(name) - 1 && strncmp(k, name, kl) == 0) {                                     \
        sp->f = val;                                                                               \
        sp->f##_len = vl;                                                                          \
    }
        KEY("keyId", key_id)
        KEY("algorithm", alg)
        KEY("headers", headers)
        KEY("signature", sig)
        KEY("created", created)
        KEY("expires", expires)
#undef KEY
    }
    return sp->key_id && sp->sig ? 0 : -1;
}

static int has_token(const char *list, size_t len, const char *tok)
{
    size_t tl = strlen(tok), i = 0;

    while (i < len) {
        while (i < len && list[i] == ' ')
            i++;
        size_t j = i;
        while (j < len && list[j] != ' ')
            j++;
        if (j - i == tl && strncasecmp(list + i, tok, tl) == 0)
            return 1;
        i = j;
    }
    return 0;
}

static int append(char *buf, size_t *len, const char *s, size_t n)
{
    if (*len + n >= SIGNING_STRING_MAX)
        return -1;
    memcpy(buf + *len, s, n);
    *len += n;
    return 0;
}

static int build_signing_string(const struct fs_req *r, const struct sigparams *sp, char *buf,
                                size_t *out_len)
{
    const char *list = sp->headers ? sp->headers : "date";
    size_t llen = sp->headers ? sp->headers_len : 4, i = 0, len = 0;
    int first = 1;

    while (i < llen) {
        char name[64];
        const char *val;

        while (i < llen && list[i] == ' ')
            i++;
        size_t j = i;
        while (j < llen && list[j] != ' ')
            j++;
        if (j == i)
            break;
        if (j - i >= sizeof(name))
            return -1;
        for (size_t k = 0; k < j - i; k++) {
            char c = list[i + k];
            name[k] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
        name[j - i] = '\0';
        i = j;
        if (!first && append(buf, &len, "\n", 1) < 0)
            return -1;
        first = 0;
        if (strcmp(name, "(request-target)") == 0) {
            const char *m = fs_req_field(r, r->method), *p = fs_req_field(r, r->path);
            if (append(buf, &len, "(request-target): ", 18) < 0)
                return -1;
            for (const char *c = m; *c; c++) {
                char lc = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
                if (append(buf, &len, &lc, 1) < 0)
                    return -1;
            }
            if (append(buf, &len, " ", 1) < 0 || append(buf, &len, p, strlen(p)) < 0)
                return -1;
            continue;
        }
        if (strcmp(name, "(created)") == 0 || strcmp(name, "(expires)") == 0) {
            const char *v = name[1] == 'c' ? sp->created : sp->expires;
            size_t vl = name[1] == 'c' ? sp->created_len : sp->expires_len;
            if (!v || append(buf, &len, name, strlen(name)) < 0 || append(buf, &len, ": ", 2) < 0 ||
                append(buf, &len, v, vl) < 0)
                return -1;
            continue;
        }
        val = fs_req_get(r, name);
        if (!val && strcmp(name, "host") == 0)
            val = r->authority >= 0 ? fs_req_field(r, r->authority) : NULL;
        if (!val)
            return -1;
        if (append(buf, &len, name, strlen(name)) < 0 || append(buf, &len, ": ", 2) < 0 ||
            append(buf, &len, val, strlen(val)) < 0)
            return -1;
    }
    *out_len = len;
    return 0;
}

/* RSA PKCS#1 v1.5 over SHA-256 with the key's cached EVP_PKEY_CTX: EVP_DigestVerifyInit per
 * request costs OpenSSL 3 a provider fetch and a context build, about 40% of a verify. */
static int verify_pkcs1(struct vkey *k, const unsigned char *sig, size_t siglen, const char *msg,
                        size_t msglen)
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    if (!k->pkcs1) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(k->pkey, NULL);
        if (!c || EVP_PKEY_verify_init(c) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
            EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1) {
            EVP_PKEY_CTX_free(c);
            return 0;
        }
        k->pkcs1 = c;
    }
    SHA256((const unsigned char *)msg, msglen, md);
    return EVP_PKEY_verify(k->pkcs1, sig, siglen, md, sizeof(md)) == 1;
}

static int verify_with(struct fs_verifier *v, EVP_PKEY *pkey, const EVP_MD *md, int pad,
                       const unsigned char *sig, size_t siglen, const char *msg, size_t msglen)
{
    EVP_PKEY_CTX *pctx = NULL;
    int ok;

    EVP_MD_CTX_reset(v->md);
    if (EVP_DigestVerifyInit(v->md, &pctx, md, NULL, pkey) != 1)
        return 0;
    if (pad && EVP_PKEY_CTX_set_rsa_padding(pctx, pad) != 1)
        return 0;
    if (pad == RSA_PKCS1_PSS_PADDING && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -2) != 1)
        return 0;
    ok = EVP_DigestVerify(v->md, sig, siglen, (const unsigned char *)msg, msglen) == 1;
    return ok;
}

static int decode_sig(const char *b64, size_t len, unsigned char *sig, size_t cap, size_t *out)
{
    int n;

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap)
        return -1;
    n = EVP_DecodeBlock(sig, (const unsigned char *)b64, (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts '=' padding as zero bytes: trim them. */
    if (b64[len - 1] == '=')
        n--;
    if (b64[len - 2] == '=')
        n--;
    *out = (size_t)n;
    return 0;
}

/* Verifies sig over msg with k. alg: NULL (by key type: RSA PKCS#1 v1.5 SHA-256, then PSS
 * SHA-512; Ed25519), or an RFC 9421 / cavage algorithm name. */
static enum fs_badsig verify_alg(struct fs_verifier *v, struct vkey *k, const char *alg,
                                 size_t alg_len, const unsigned char *sig, size_t siglen,
                                 const char *msg, size_t msglen)
{
#define ALG_IS(s) (alg_len == sizeof(s) - 1 && strncasecmp(alg, s, alg_len) == 0)
    if (alg && (ALG_IS("rsa-sha256") || ALG_IS("rsa-v1_5-sha256"))) {
        if (!k->is_rsa)
            return FS_BAD_ALGORITHM;
        return verify_pkcs1(k, sig, siglen, msg, msglen) ? FS_BAD_NONE : FS_BAD_SIGNATURE;
    }
    if (alg && ALG_IS("rsa-pss-sha512")) {
        if (!k->is_rsa)
            return FS_BAD_ALGORITHM;
        return verify_with(v, k->pkey, EVP_sha512(), RSA_PKCS1_PSS_PADDING, sig, siglen, msg,
                           msglen)
                   ? FS_BAD_NONE
                   : FS_BAD_SIGNATURE;
    }
    if (alg && ALG_IS("ed25519") && k->is_rsa)
        return FS_BAD_ALGORITHM;
    if (alg && !ALG_IS("hs2019") && !ALG_IS("ed25519"))
        return FS_BAD_ALGORITHM;
#undef ALG_IS
    if (k->is_rsa) {
        if (verify_pkcs1(k, sig, siglen, msg, msglen))
            return FS_BAD_NONE;
        /* hs2019 (or no alg) with an RSA key may also mean RSASSA-PSS with SHA-512. */
        if (verify_with(v, k->pkey, EVP_sha512(), RSA_PKCS1_PSS_PADDING, sig, siglen, msg, msglen))
            return FS_BAD_NONE;
        return FS_BAD_SIGNATURE;
    }
    return verify_with(v, k->pkey, NULL, 0, sig, siglen, msg, msglen) ? FS_BAD_NONE
                                                                      : FS_BAD_SIGNATURE;
}

static enum fs_badsig verify_cavage(struct fs_verifier *v, const struct fs_req *r, time_t now)
{
    struct sigparams sp;
    struct vkey *k;
    const char *sighdr;
    char sstr[SIGNING_STRING_MAX];
    unsigned char sig[1024];
    size_t slen, siglen;

    if (!date_ok(fs_req_get(r, "date"), now))
        return FS_BAD_DATE;
    if (!digest_ok(fs_req_get(r, "digest"), r->body, r->body_len))
        return FS_BAD_DIGEST;
    sighdr = fs_req_get(r, "signature");
    if (!sighdr) {
        /* "Authorization: Signature keyId=..." is the draft's other carrier. */
        const char *auth = fs_req_get(r, "authorization");
        if (auth && strncasecmp(auth, "Signature ", 10) == 0)
            sighdr = auth + 10;
    }
    if (!sighdr)
        return FS_BAD_NO_SIGNATURE;
    if (parse_sig(sighdr, &sp) < 0)
        return FS_BAD_SIG_HEADER;
    if (!sp.headers || !has_token(sp.headers, sp.headers_len, "(request-target)") ||
        !has_token(sp.headers, sp.headers_len, "host") ||
        !has_token(sp.headers, sp.headers_len, "date") ||
        !has_token(sp.headers, sp.headers_len, "digest"))
        return FS_BAD_HEADERS_LIST;
    k = find_key(v, sp.key_id, sp.key_id_len);
    if (!k)
        return FS_BAD_UNKNOWN_KEY;
    if (build_signing_string(r, &sp, sstr, &slen) < 0)
        return FS_BAD_HEADERS_LIST;
    if (decode_sig(sp.sig, sp.sig_len, sig, sizeof(sig), &siglen) < 0)
        return FS_BAD_SIGNATURE;
    return verify_alg(v, k, sp.alg, sp.alg ? sp.alg_len : 0, sig, siglen, sstr, slen);
}

/* ---- RFC 9421 ---- */

#define MAX_COMPONENTS 24

struct sig9421 {
    const char *label;
    size_t label_len;
    const char *comp[MAX_COMPONENTS]; /* component names, without quotes */
    size_t comp_len[MAX_COMPONENTS];
    int ncomp;
    const char *params; /* "(...);created=..;keyid=..": the @signature-params value */
    size_t params_len;
    const char *keyid, *alg;
    size_t keyid_len, alg_len;
    long long created, expires; /* -1: absent */
};

static int is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
           c == '*';
}

/* An sf-string at *p (opening quote); sets its content span. No escapes are expected in
 * component names or key ids; they are accepted but kept raw. */
static int sf_string(const char **p, const char **v, size_t *vl)
{
    const char *s = *p + 1;

    *v = s;
    while (*s && *s != '"') {
        if (*s == '\\' && s[1])
            s++;
        s++;
    }
    if (*s != '"')
        return -1;
    *vl = (size_t)(s - *v);
    *p = s + 1;
    return 0;
}

/* Parses the first member of a Signature-Input dictionary. */
static int parse_sig_input(const char *s, struct sig9421 *o)
{
    memset(o, 0, sizeof(*o));
    o->created = o->expires = -1;
    while (*s == ' ' || *s == '\t')
        s++;
    o->label = s;
    while (is_key_char(*s))
        s++;
    o->label_len = (size_t)(s - o->label);
    if (o->label_len == 0 || *s != '=' || s[1] != '(')
        return -1;
    s++;
    o->params = s;
    s++;
    for (;;) {
        while (*s == ' ')
            s++;
        if (*s == ')') {
            s++;
            break;
        }
        if (*s != '"' || o->ncomp >= MAX_COMPONENTS)
            return -1;
        if (sf_string(&s, &o->comp[o->ncomp], &o->comp_len[o->ncomp]) < 0)
            return -1;
        if (*s == ';')
            return -1; /* component parameters (;sf ;key ;req ...) are not supported */
        o->ncomp++;
    }
    while (*s == ';') {
        const char *k = ++s, *val = NULL;
        size_t kl, vl = 0;
        while (is_key_char(*s))
            s++;
        kl = (size_t)(s - k);
        if (kl == 0)
            return -1;
        if (*s == '=') {
            s++;
            if (*s == '"') {
                if (sf_string(&s, &val, &vl) < 0)
                    return -1;
            } else {
                val = s;
                while (*s && *s != ';' && *s != ',' && *s != ' ')
                    s++;
                vl = (size_t)(s - val);
            }
        }
        if (kl == 5 && memcmp(k, "keyid", 5) == 0 && val) {
            o->keyid = val;
            o->keyid_len = vl;
        } else if (kl == 3 && memcmp(k, "alg", 3) == 0 && val) {
            o->alg = val;
            o->alg_len = vl;
        } else if (kl == 7 && memcmp(k, "created", 7) == 0 && val) {
            o->created = strtoll(val, NULL, 10);
        } else if (kl == 7 && memcmp(k, "expires", 7) == 0 && val) {
            o->expires = strtoll(val, NULL, 10);
        }
    }
    o->params_len = (size_t)(s - o->params);
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '\0' && *s != ',')
        return -1;
    return o->keyid ? 0 : -1;
}

/* Finds label=:base64: in a Signature dictionary. */
static int find_sig_value(const char *s, const char *label, size_t ll, const char **b64,
                          size_t *len)
{
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        const char *k = s;
        while (is_key_char(*s))
            s++;
        if (*s != '=' || s[1] != ':')
            return -1;
        const char *v = s + 2, *e = strchr(v, ':');
        if (!e)
            return -1;
        if ((size_t)(s - k) == ll && memcmp(k, label, ll) == 0) {
            *b64 = v;
            *len = (size_t)(e - v);
            return 0;
        }
        s = e + 1;
        while (*s && *s != ',')
            s++;
    }
    return -1;
}

static int content_digest_ok(const char *hdr, const uint8_t *body, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char b64[64];
    const char *p = hdr;

    if (!hdr)
        return 0;
    SHA256(body, len, md);
    EVP_EncodeBlock((unsigned char *)b64, md, sizeof(md));
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        if (n > 10 && strncasecmp(p, "sha-256=:", 9) == 0) {
            const char *e = memchr(p + 9, ':', n - 9);
            return e && (size_t)(e - p - 9) == strlen(b64) && memcmp(p + 9, b64, strlen(b64)) == 0;
        }
        p += n;
    }
    return 0;
}

static int comp_is(const struct sig9421 *s, int i, const char *name)
{
    size_t n = strlen(name);
    return s->comp_len[i] == n && memcmp(s->comp[i], name, n) == 0;
}

static int covers(const struct sig9421 *s, const char *name)
{
    for (int i = 0; i < s->ncomp; i++)
        if (comp_is(s, i, name))
            return 1;
    return 0;
}

static int put_lower(char *buf, size_t *len, const char *s, size_t n)
{
    if (*len + n >= SIGNING_STRING_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        buf[*len + i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    *len += n;
    return 0;
}

static int build_base_9421(const struct fs_req *r, const struct sig9421 *s, char *buf,
                           size_t *out_len)
{
    const char *target = fs_req_field(r, r->path), *q = strchr(target, '?');
    const char *auth = fs_req_field(r, r->authority), *scheme = r->tls ? "https" : "http";
    size_t len = 0;

    for (int i = 0; i < s->ncomp; i++) {
        const char *name = s->comp[i];
        size_t nl = s->comp_len[i];
        int rv = 0;

        if (append(buf, &len, "\"", 1) < 0 || put_lower(buf, &len, name, nl) < 0 ||
            append(buf, &len, "\": ", 3) < 0)
            return -1;
        if (comp_is(s, i, "@method")) {
            const char *m = fs_req_field(r, r->method);
            rv = append(buf, &len, m, strlen(m));
        } else if (comp_is(s, i, "@authority")) {
            rv = put_lower(buf, &len, auth, strlen(auth));
        } else if (comp_is(s, i, "@scheme")) {
            rv = append(buf, &len, scheme, strlen(scheme));
        } else if (comp_is(s, i, "@target-uri")) {
            rv = append(buf, &len, scheme, strlen(scheme));
            rv |= append(buf, &len, "://", 3);
            rv |= put_lower(buf, &len, auth, strlen(auth));
            rv |= append(buf, &len, target, strlen(target));
        } else if (comp_is(s, i, "@request-target")) {
            rv = append(buf, &len, target, strlen(target));
        } else if (comp_is(s, i, "@path")) {
            size_t pl = q ? (size_t)(q - target) : strlen(target);
            rv = pl ? append(buf, &len, target, pl) : append(buf, &len, "/", 1);
        } else if (comp_is(s, i, "@query")) {
            rv = q ? append(buf, &len, q, strlen(q)) : append(buf, &len, "?", 1);
        } else if (nl > 0 && name[0] == '@') {
            return -1; /* @status, @query-param or unknown */
        } else {
            char hn[64];
            const char *val;
            if (nl >= sizeof(hn))
                return -1;
            for (size_t j = 0; j < nl; j++)
                hn[j] = (char)((name[j] >= 'A' && name[j] <= 'Z') ? name[j] + 32 : name[j]);
            hn[nl] = '\0';
            val = fs_req_get(r, hn);
            if (!val && strcmp(hn, "host") == 0 && r->authority >= 0)
                val = auth;
            if (!val)
                return -1;
            rv = append(buf, &len, val, strlen(val));
        }
        if (rv < 0 || append(buf, &len, "\n", 1) < 0)
            return -1;
    }
    if (append(buf, &len, "\"@signature-params\": ", 21) < 0 ||
        append(buf, &len, s->params, s->params_len) < 0)
        return -1;
    *out_len = len;
    return 0;
}

static enum fs_badsig verify_9421(struct fs_verifier *v, const struct fs_req *r, time_t now)
{
    struct sig9421 s;
    struct vkey *k;
    const char *sighdr = fs_req_get(r, "signature"), *b64;
    char base[SIGNING_STRING_MAX];
    unsigned char sig[1024];
    size_t blen, b64len, siglen;

    if (parse_sig_input(fs_req_get(r, "signature-input"), &s) < 0)
        return FS_BAD_SIG_HEADER;
    if (!sighdr)
        return FS_BAD_NO_SIGNATURE;
    if (find_sig_value(sighdr, s.label, s.label_len, &b64, &b64len) < 0)
        return FS_BAD_SIG_HEADER;
    /* Freshness: the created parameter, else a covered-or-not Date header. */
    if (s.created >= 0) {
        if (s.created > now + 300 || s.created < now - 300)
            return FS_BAD_DATE;
    } else if (!date_ok(fs_req_get(r, "date"), now)) {
        return FS_BAD_DATE;
    }
    if (s.expires >= 0 && s.expires < now)
        return FS_BAD_DATE;
    if (r->body_len > 0 &&
        !content_digest_ok(fs_req_get(r, "content-digest"), r->body, r->body_len))
        return FS_BAD_DIGEST;
    /* What must be covered: the method, the target (whole URI, or authority and path), and
     * the body through Content-Digest. */
    if (!covers(&s, "@method") ||
        !(covers(&s, "@target-uri") ||
          (covers(&s, "@authority") && (covers(&s, "@path") || covers(&s, "@request-target")))) ||
        (r->body_len > 0 && !covers(&s, "content-digest")))
        return FS_BAD_HEADERS_LIST;
    k = find_key(v, s.keyid, s.keyid_len);
    if (!k)
        return FS_BAD_UNKNOWN_KEY;
    if (build_base_9421(r, &s, base, &blen) < 0)
        return FS_BAD_HEADERS_LIST;
    if (decode_sig(b64, b64len, sig, sizeof(sig), &siglen) < 0)
        return FS_BAD_SIGNATURE;
    return verify_alg(v, k, s.alg, s.alg ? s.alg_len : 0, sig, siglen, base, blen);
}

enum fs_badsig fs_verify(struct fs_verifier *v, const struct fs_req *r, time_t now,
                         unsigned schemes, enum fs_sig_scheme *used)
{
    int is9421 = fs_req_get(r, "signature-input") != NULL;

    *used = is9421 ? FS_SIG_RFC9421 : FS_SIG_CAVAGE;
    if (!ctype_ok(fs_req_get(r, "content-type")))
        return FS_BAD_CONTENT_TYPE;
    if (!(schemes & (unsigned)*used))
        return FS_BAD_SCHEME;
    return is9421 ? verify_9421(v, r, now) : verify_cavage(v, r, now);
}
