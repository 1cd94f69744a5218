/* PEM / DER parsing of private keys, and hd_key_inspect.
 *
 * Why parse here rather than in each backend: keys arrive as PEM in two containers (PKCS#1
 * and PKCS#8) and two types; unwrapping them once into a neutral form (PKCS#1 DER or an
 * Ed25519 seed) gives one set of validation rules (size limits, encrypted keys refused)
 * whatever backend signs, and lets sign.c know the type and size before choosing one.
 * Only the outer structure is checked here; the backend's import validates the numbers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "err.h"
#include "sign.h"
#include "sign_be.h"

/* Largest PEM body we accept: an RSA-16384 PKCS#8 key is ~9.5 KB of DER. */
#define KEY_DER_MAX 16384

static const uint8_t oid_rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t oid_rsa_pss[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a};
static const uint8_t oid_ed25519[] = {0x2b, 0x65, 0x70};

/* Reads one DER TLV with the expected tag at *p; advances *p past it. */
static int der_get(const uint8_t **p, const uint8_t *end, uint8_t tag, const uint8_t **val,
                   size_t *len)
{
    const uint8_t *q = *p;
    size_t l;

    if (end - q < 2 || q[0] != tag)
        return -1;
    l = q[1];
    q += 2;
    if (l & 0x80) {
        size_t nb = l & 0x7f;

        if (nb == 0 || nb > 3 || (size_t)(end - q) < nb)
            return -1;
        l = 0;
        while (nb--)
            l = (l << 8) | *q++;
    }
    if ((size_t)(end - q) < l)
        return -1;
    *val = q;
    *len = l;
    *p = q + l;
    return 0;
}

/* RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dP, dQ, qInv }: finds n and e. */
static int parse_rsa_private(const uint8_t *der, size_t len, struct hd_sign_parsed *out)
{
    const uint8_t *p = der, *end = der + len, *seq, *v;
    size_t seq_len, vl, i;

    if (der_get(&p, end, 0x30, &seq, &seq_len) != 0)
        return HD_ERR_INVALID;
    p = seq;
    end = seq + seq_len;
    if (der_get(&p, end, 0x02, &v, &vl) != 0 || vl != 1 || v[0] != 0)
        return HD_ERR_INVALID; /* two-prime keys only (version 0) */
    if (der_get(&p, end, 0x02, &out->n, &out->n_len) != 0 ||
        der_get(&p, end, 0x02, &out->e, &out->e_len) != 0)
        return HD_ERR_INVALID;
    /* Six more INTEGERs must follow (d, p, q, dP, dQ, qInv). */
    for (i = 0; i < 6; i++)
        if (der_get(&p, end, 0x02, &v, &vl) != 0)
            return HD_ERR_INVALID;
    v = out->n;
    vl = out->n_len;
    while (vl > 0 && v[0] == 0) {
        v++;
        vl--;
    }
    if (vl == 0 || (out->n[0] & 0x80) || out->e_len == 0 || out->e_len > 8)
        return HD_ERR_INVALID;
    out->bits = (unsigned)(vl - 1) * 8;
    for (i = v[0]; i; i >>= 1)
        out->bits++;
    out->type = HD_KEY_RSA;
    out->key = der;
    out->key_len = (size_t)(seq + seq_len - der);
    return 0;
}

/* PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING privateKey, ... } */
static int parse_pkcs8(const uint8_t *der, size_t len, struct hd_sign_parsed *out)
{
    const uint8_t *p = der, *end = der + len, *seq, *v, *alg, *oid, *pk;
    size_t seq_len, vl, alg_len, oid_len, pk_len;

    if (der_get(&p, end, 0x30, &seq, &seq_len) != 0)
        return HD_ERR_INVALID;
    p = seq;
    end = seq + seq_len;
    if (der_get(&p, end, 0x02, &v, &vl) != 0 || vl != 1 || v[0] > 1)
        return HD_ERR_INVALID;
    if (der_get(&p, end, 0x30, &alg, &alg_len) != 0 || der_get(&p, end, 0x04, &pk, &pk_len) != 0)
        return HD_ERR_INVALID;
    v = alg;
    if (der_get(&v, alg + alg_len, 0x06, &oid, &oid_len) != 0)
        return HD_ERR_INVALID;
    if ((oid_len == sizeof(oid_rsa) && memcmp(oid, oid_rsa, oid_len) == 0) ||
        (oid_len == sizeof(oid_rsa_pss) && memcmp(oid, oid_rsa_pss, oid_len) == 0))
        return parse_rsa_private(pk, pk_len, out);
    if (oid_len == sizeof(oid_ed25519) && memcmp(oid, oid_ed25519, oid_len) == 0) {
        /* RFC 8410: the privateKey OCTET STRING wraps CurvePrivateKey, an OCTET STRING. */
        const uint8_t *q = pk, *seed;
        size_t seed_len;

        if (der_get(&q, pk + pk_len, 0x04, &seed, &seed_len) != 0 || seed_len != 32)
            return HD_ERR_INVALID;
        out->type = HD_KEY_ED25519;
        out->bits = 256;
        out->key = seed;
        out->key_len = 32;
        return 0;
    }
    return HD_ERR_INVALID;
}

/* Finds "-----BEGIN <label>-----" ... "-----END <label>-----" blocks; returns the first
 * whose label is one we take, with its body. */
static int pem_find(const char *pem, size_t len, int *pkcs8, const char **body, size_t *body_len)
{
    const char *p = pem, *end = pem + len;
    static const char begin[] = "-----BEGIN ";

    while (p < end) {
        const char *b = memmem(p, (size_t)(end - p), begin, sizeof(begin) - 1);
        const char *label, *label_end, *e;
        char endmark[64];
        size_t ll;
        int n;

        if (!b)
            return HD_ERR_INVALID;
        label = b + sizeof(begin) - 1;
        label_end = memmem(label, (size_t)(end - label), "-----", 5);
        if (!label_end)
            return HD_ERR_INVALID;
        ll = (size_t)(label_end - label);
        p = label_end + 5;
        if (ll == 15 && memcmp(label, "RSA PRIVATE KEY", 15) == 0)
            *pkcs8 = 0;
        else if (ll == 11 && memcmp(label, "PRIVATE KEY", 11) == 0)
            *pkcs8 = 1;
        else
            continue; /* e.g. "EC PARAMETERS", "ENCRYPTED PRIVATE KEY": look further */
        n = snprintf(endmark, sizeof(endmark), "-----END %.*s-----", (int)ll, label);
        e = memmem(p, (size_t)(end - p), endmark, (size_t)n);
        if (!e)
            return HD_ERR_INVALID;
        /* A ':' means RFC 1421 headers (Proc-Type: 4,ENCRYPTED): encrypted, refuse. */
        if (memchr(p, ':', (size_t)(e - p)))
            return HD_ERR_INVALID;
        *body = p;
        *body_len = (size_t)(e - p);
        return 0;
    }
    return HD_ERR_INVALID;
}

void hd_sign_parsed_fini(struct hd_sign_parsed *p)
{
    if (!p)
        return;
    if (p->buf) {
        explicit_bzero(p->buf, p->buf_len);
        free(p->buf);
    }
    memset(p, 0, sizeof(*p));
}

int hd_sign_parse_pem(const char *pem, size_t len, struct hd_sign_parsed *out)
{
    struct hd_sign_parsed p = {0};
    const char *body;
    size_t body_len, cap;
    int pkcs8, rc;

    if (!pem)
        return HD_ERR_INVALID;
    rc = pem_find(pem, len, &pkcs8, &body, &body_len);
    if (rc != 0)
        return rc;
    cap = body_len / 4 * 3 + 3;
    if (cap > KEY_DER_MAX)
        return HD_ERR_INVALID;
    p.buf = malloc(cap);
    if (!p.buf)
        return -ENOMEM;
    p.buf_len = cap;
    rc = hd_b64_decode(body, body_len, p.buf, cap, &body_len);
    if (rc != 0) {
        hd_sign_parsed_fini(&p);
        return HD_ERR_INVALID;
    }
    rc = pkcs8 ? parse_pkcs8(p.buf, body_len, &p) : parse_rsa_private(p.buf, body_len, &p);
    if (rc != 0) {
        hd_sign_parsed_fini(&p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- SubjectPublicKeyInfo output ---- */

struct der_w {
    uint8_t *p;
    size_t len, cap;
};

static size_t der_hdr_len(size_t len)
{
    return len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : 5;
}

static void der_put_hdr(struct der_w *w, uint8_t tag, size_t len)
{
    uint8_t *q = w->p + w->len;

    if (w->len + der_hdr_len(len) > w->cap) {
        w->len = w->cap + 1; /* overflow marker */
        return;
    }
    *q++ = tag;
    if (len < 0x80) {
        *q++ = (uint8_t)len;
    } else if (len < 0x100) {
        *q++ = 0x81;
        *q++ = (uint8_t)len;
    } else if (len < 0x10000) {
        *q++ = 0x82;
        *q++ = (uint8_t)(len >> 8);
        *q++ = (uint8_t)len;
    } else {
        *q++ = 0x83;
        *q++ = (uint8_t)(len >> 16);
        *q++ = (uint8_t)(len >> 8);
        *q++ = (uint8_t)len;
    }
    w->len = (size_t)(q - w->p);
}

static void der_put(struct der_w *w, const void *data, size_t len)
{
    if (w->len > w->cap || w->cap - w->len < len) {
        w->len = w->cap + 1;
        return;
    }
    memcpy(w->p + w->len, data, len);
    w->len += len;
}

static int spki_der(const struct hd_sign_parsed *k, const uint8_t *ed_pub, uint8_t *buf, size_t cap,
                    size_t *out_len)
{
    struct der_w w = {buf, 0, cap};

    if (k->type == HD_KEY_RSA) {
        static const uint8_t null_der[] = {0x05, 0x00};
        size_t n_tlv = der_hdr_len(k->n_len) + k->n_len;
        size_t e_tlv = der_hdr_len(k->e_len) + k->e_len;
        size_t rpk = der_hdr_len(n_tlv + e_tlv) + n_tlv + e_tlv;
        size_t bits = 1 + rpk;
        size_t algid = 2 + sizeof(oid_rsa) + sizeof(null_der);
        size_t total = der_hdr_len(algid) + algid + der_hdr_len(bits) + bits;

        der_put_hdr(&w, 0x30, total);
        der_put_hdr(&w, 0x30, algid);
        der_put_hdr(&w, 0x06, sizeof(oid_rsa));
        der_put(&w, oid_rsa, sizeof(oid_rsa));
        der_put(&w, null_der, sizeof(null_der));
        der_put_hdr(&w, 0x03, bits);
        der_put(&w, "", 1); /* no unused bits */
        der_put_hdr(&w, 0x30, n_tlv + e_tlv);
        der_put_hdr(&w, 0x02, k->n_len);
        der_put(&w, k->n, k->n_len);
        der_put_hdr(&w, 0x02, k->e_len);
        der_put(&w, k->e, k->e_len);
    } else {
        /* RFC 8410: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING { 0, pub } } */
        der_put_hdr(&w, 0x30, 42);
        der_put_hdr(&w, 0x30, 5);
        der_put_hdr(&w, 0x06, sizeof(oid_ed25519));
        der_put(&w, oid_ed25519, sizeof(oid_ed25519));
        der_put_hdr(&w, 0x03, 33);
        der_put(&w, "", 1);
        der_put(&w, ed_pub, 32);
    }
    if (w.len > cap)
        return HD_ERR_FULL;
    *out_len = w.len;
    return 0;
}

/* Writes DER as a "PUBLIC KEY" PEM with 64-column lines. */
static int pem_write(const uint8_t *der, size_t len, char *out, size_t cap)
{
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n";
    static const char tail[] = "-----END PUBLIC KEY-----\n";
    size_t o = 0, i;

    if (cap < sizeof(head))
        return HD_ERR_FULL;
    memcpy(out, head, sizeof(head) - 1);
    o = sizeof(head) - 1;
    for (i = 0; i < len; i += 48) {
        size_t chunk = len - i < 48 ? len - i : 48;
        int n = hd_b64_encode(der + i, chunk, out + o, cap - o);

        if (n < 0 || cap - o - (size_t)n < 2)
            return HD_ERR_FULL;
        o += (size_t)n;
        out[o++] = '\n';
    }
    if (cap - o < sizeof(tail))
        return HD_ERR_FULL;
    memcpy(out + o, tail, sizeof(tail));
    return 0;
}

int hd_key_inspect(const char *pem, size_t pem_len, int *type, unsigned *bits, char *pub,
                   size_t pub_cap)
{
    struct hd_sign_parsed k;
    uint8_t der[2200], ed_pub[32];
    char tmp[3200]; /* PEM of the largest SPKI der[] holds */
    size_t der_len;
    int rc;

    rc = hd_sign_parse_pem(pem, pem_len, &k);
    if (rc != 0)
        return rc == -ENOMEM ? rc : HD_ERR_INVALID;
    if (pub) {
        if (k.type == HD_KEY_ED25519) {
            rc = hd_sign_be_wolf.ed25519_pub(k.key, ed_pub);
            if (rc != 0) {
                rc = HD_ERR_INVALID;
                goto out;
            }
        }
        /* Build into a local buffer so pub is written only on success. */
        rc = spki_der(&k, ed_pub, der, sizeof(der), &der_len);
        if (rc == 0)
            rc = pem_write(der, der_len, tmp, sizeof(tmp));
        if (rc == 0 && strlen(tmp) + 1 > pub_cap)
            rc = HD_ERR_FULL;
        if (rc != 0)
            goto out;
        memcpy(pub, tmp, strlen(tmp) + 1);
    }
    *type = k.type;
    *bits = k.bits;
out:
    hd_sign_parsed_fini(&k);
    return rc;
}

int hd_key_check(const char *pem, size_t pem_len, int *type, unsigned *bits, const char **why)
{
    int t = 0;
    unsigned b = 0;

    if (hd_key_inspect(pem, pem_len, &t, &b, NULL, 0) != 0) {
        *why = "not a PEM private key Herald can use (RSA PKCS#1/PKCS#8, or Ed25519 PKCS#8)";
        return HD_ERR_INVALID;
    }
    if (t == HD_KEY_RSA && b < 2048) {
        *why = "RSA keys must have at least 2048 bits";
        return HD_ERR_INVALID;
    }
    *type = t;
    *bits = b;
    return 0;
}
