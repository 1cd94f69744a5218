/* A validating one-pass JSON scanner that returns the top-level "id" of an object.
 *
 * Why not jansson here: at 2 KB activities jansson's json_loadb took ~70% of fedisim's CPU
 * (it builds the whole tree, a strbuffer per string). This scanner checks the same grammar
 * (RFC 8259: strings with escapes and well-formed UTF-8, numbers, literals, nesting up to
 * FS_JSON_MAX_DEPTH), refuses a second top-level "id", and allocates nothing; jansson is
 * still used for keys, --expect and reports. Duplicate keys other than "id" are not looked
 * for (jansson, by default, does not either). */
#include <string.h>

#include "json_id.h"

#define FS_JSON_MAX_DEPTH 64

struct scan {
    const unsigned char *p, *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_u4(struct scan *s, unsigned *out)
{
    unsigned v = 0;

    if (s->end - s->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    s->p += 4;
    *out = v;
    return 0;
}

static int put(char *out, size_t cap, size_t *n, unsigned char c)
{
    if (!out)
        return 0;
    if (*n + 1 >= cap)
        return -1;
    out[(*n)++] = (char)c;
    return 0;
}

static int put_utf8(char *out, size_t cap, size_t *n, unsigned cp)
{
    int rv = 0;

    if (cp < 0x80) {
        rv |= put(out, cap, n, (unsigned char)cp);
    } else if (cp < 0x800) {
        rv |= put(out, cap, n, (unsigned char)(0xc0 | (cp >> 6)));
        rv |= put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        rv |= put(out, cap, n, (unsigned char)(0xe0 | (cp >> 12)));
        rv |= put(out, cap, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        rv |= put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3f)));
    } else {
        rv |= put(out, cap, n, (unsigned char)(0xf0 | (cp >> 18)));
        rv |= put(out, cap, n, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
        rv |= put(out, cap, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
        rv |= put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3f)));
    }
    return rv;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Scans a string starting at the opening quote. When out is not NULL the decoded value is
 * written there (NUL-terminated) and its length to *outlen; -1 if it does not fit. */
static int scan_string(struct scan *s, char *out, size_t cap, size_t *outlen)
{
    size_t n = 0;

    s->p++; /* opening quote */
    for (;;) {
        const unsigned char *q = s->p;
        /* Fast path: a run of plain ASCII bytes. */
        while (q < s->end && *q != '"' && *q != '\\' && *q >= 0x20 && *q < 0x80)
            q++;
        if (out) {
            if (n + (size_t)(q - s->p) + 1 > cap)
                return -1;
            memcpy(out + n, s->p, (size_t)(q - s->p));
        }
        n += (size_t)(q - s->p);
        s->p = q;
        if (s->p >= s->end || *s->p < 0x20)
            return -1;
        if (*s->p >= 0x80) {
            size_t n8 = utf8_len(s->p, s->end);
            if (n8 == 0)
                return -1;
            for (size_t i = 0; i < n8; i++)
                if (put(out, cap, &n, s->p[i]) < 0)
                    return -1;
            s->p += n8;
            continue;
        }
        if (*s->p == '"') {
            s->p++;
            break;
        }
        /* Escape. */
        s->p++;
        if (s->p >= s->end)
            return -1;
        unsigned char e = *s->p++, c;
        switch (e) {
        case '"':
            c = '"';
            break;
        case '\\':
            c = '\\';
            break;
        case '/':
            c = '/';
            break;
        case 'b':
            c = '\b';
            break;
        case 'f':
            c = '\f';
            break;
        case 'n':
            c = '\n';
            break;
        case 'r':
            c = '\r';
            break;
        case 't':
            c = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (read_u4(s, &cp) < 0)
                return -1;
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
                    return -1;
                s->p += 2;
                if (read_u4(s, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if ((cp >= 0xdc00 && cp < 0xe000) || cp == 0) {
                return -1; /* a lone low surrogate; NUL, which jansson refuses too */
            }
            if (put_utf8(out, cap, &n, cp) < 0)
                return -1;
            continue;
        }
        default:
            return -1;
        }
        if (put(out, cap, &n, c) < 0)
            return -1;
    }
    if (out) {
        out[n] = '\0';
        *outlen = n;
    }
    return 0;
}

static int scan_number(struct scan *s)
{
    const unsigned char *p = s->p, *e = s->end;

    if (p < e && *p == '-')
        p++;
    if (p >= e)
        return -1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    } else {
        return -1;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || *p < '0' || *p > '9')
            return -1;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    return 0;
}

static int scan_lit(struct scan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

/* Scans one value. At depth 0 (the top-level object) the member "id" is decoded into out. */
static int scan_value(struct scan *s, int depth, char *out, size_t cap, size_t *outlen, int *found)
{
    if (depth > FS_JSON_MAX_DEPTH)
        return -1;
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return 0;
        }
        for (;;) {
            const unsigned char *k;
            int is_id;
            skip_ws(s);
            if (s->p >= s->end || *s->p != '"')
                return -1;
            k = s->p;
            if (scan_string(s, NULL, 0, NULL) < 0)
                return -1;
            /* Only the raw form "id" counts: an escaped spelling of id is not what any
             * ActivityPub server emits. */
            is_id = depth == 0 && s->p - k == 4 && memcmp(k, "\"id\"", 4) == 0;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            skip_ws(s);
            if (is_id && *found)
                return -1; /* a second top-level "id": ambiguous, refused */
            if (is_id && s->p < s->end && *s->p == '"') {
                if (scan_string(s, out, cap, outlen) < 0)
                    return -1;
                *found = 1;
            } else if (scan_value(s, depth + 1, out, cap, outlen, found) < 0) {
                return -1;
            }
            skip_ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (s->p < s->end && *s->p == '}') {
                s->p++;
                return 0;
            }
            return -1;
        }
    case '[':
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return 0;
        }
        for (;;) {
            if (scan_value(s, depth + 1, out, cap, outlen, found) < 0)
                return -1;
            skip_ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (s->p < s->end && *s->p == ']') {
                s->p++;
                return 0;
            }
            return -1;
        }
    case '"':
        return scan_string(s, NULL, 0, NULL);
    case 't':
        return scan_lit(s, "true", 4);
    case 'f':
        return scan_lit(s, "false", 5);
    case 'n':
        return scan_lit(s, "null", 4);
    default:
        return scan_number(s);
    }
}

int fs_json_activity_id(const uint8_t *body, size_t len, char *out, size_t cap, size_t *outlen)
{
    struct scan s = {body, body + len};
    int found = 0;

    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return -1;
    if (scan_value(&s, 0, out, cap, outlen, &found) < 0)
        return -1;
    skip_ws(&s);
    if (s.p != s.end)
        return -1;
    return found ? 0 : -1;
}
