/* Mastodon's domain-block CSV: parsing an import (RFC 4180, header or export column order)
 * into validated, normalised blocks, and formatting one block as a row (see rules.h). No
 * store access: the commands apply what this returns with hd_block_put. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "rules.h"

enum { COL_DOMAIN, COL_SEVERITY, COL_MEDIA, COL_REPORTS, COL_COMMENT, COL_OBFUSCATE, NCOLS };
static const char *const col_names[NCOLS] = {"domain",         "severity",      "reject_media",
                                             "reject_reports", "public_comment", "obfuscate"};

#define CSV_MAX_FIELDS 32
#define CSV_SCRATCH 16384

struct csv_rec {
    size_t line;
    size_t nf;
    size_t off[CSV_MAX_FIELDS], len[CSV_MAX_FIELDS];
    char buf[CSV_SCRATCH];
    size_t used;
    const char *err;
};

static void import_error(struct hd_import *im, size_t line, const char *fmt, const char *arg)
{
    im->nerr_total++;
    if (im->nerr >= HD_IMPORT_MAX_ERRORS)
        return;
    if (!im->errs) {
        im->errs = calloc(HD_IMPORT_MAX_ERRORS, sizeof(*im->errs));
        if (!im->errs)
            return;
    }
    im->errs[im->nerr].line = line;
    snprintf(im->errs[im->nerr].why, sizeof(im->errs[0].why), fmt, arg ? arg : "");
    im->nerr++;
}

static void rec_put(struct csv_rec *r, char c)
{
    if (r->used + 1 >= CSV_SCRATCH) {
        r->err = "record longer than 16 KiB";
        return;
    }
    r->buf[r->used++] = c;
}

/* Reads one record starting at buf[*i]; advances *i and *line. Returns 0, or -1 when the
 * rest of the input cannot be parsed (unterminated quote). */
static int csv_read(const char *buf, size_t len, size_t *i, size_t *line, struct csv_rec *r)
{
    size_t p = *i;

    r->line = *line;
    r->nf = 0;
    r->used = 0;
    r->err = NULL;
    for (;;) {
        size_t start = r->used;
        if (p < len && buf[p] == '"') {
            p++;
            for (;;) {
                if (p >= len) {
                    r->err = "unterminated quoted field";
                    *i = len;
                    return -1;
                }
                if (buf[p] == '"') {
                    if (p + 1 < len && buf[p + 1] == '"') {
                        rec_put(r, '"');
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (buf[p] == '\n')
                    (*line)++;
                rec_put(r, buf[p++]);
            }
            if (p < len && buf[p] == '\r' && p + 1 < len && buf[p + 1] == '\n')
                p++;
            if (p < len && buf[p] != ',' && buf[p] != '\n') {
                r->err = "characters after a closing quote";
                while (p < len && buf[p] != '\n')
                    p++;
            }
        } else {
            while (p < len && buf[p] != ',' && buf[p] != '\n') {
                if (buf[p] == '"' && !r->err)
                    r->err = "quote inside an unquoted field";
                rec_put(r, buf[p++]);
            }
            if (r->used > start && r->buf[r->used - 1] == '\r' && (p >= len || buf[p] == '\n'))
                r->used--;
        }
        if (r->nf < CSV_MAX_FIELDS) {
            r->off[r->nf] = start;
            r->len[r->nf] = r->used - start;
            r->nf++;
        } else if (!r->err) {
            r->err = "too many columns";
        }
        if (p < len && buf[p] == ',') {
            p++;
            continue;
        }
        if (p < len && buf[p] == '\n') {
            p++;
            (*line)++;
        }
        break;
    }
    *i = p;
    return 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*n)--;
    }
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

static int parse_bool(const char *p, size_t n)
{
    trim(&p, &n);
    if (n == 0)
        return 0;
    if ((n == 4 && !strncasecmp(p, "true", 4)) || (n == 1 && (*p == '1' || *p == 't' || *p == 'T')) ||
        (n == 3 && !strncasecmp(p, "yes", 3)))
        return 1;
    if ((n == 5 && !strncasecmp(p, "false", 5)) || (n == 1 && (*p == '0' || *p == 'f' || *p == 'F')) ||
        (n == 2 && !strncasecmp(p, "no", 2)))
        return 0;
    return -1;
}

/* Comments end up in JSON listings: only well-formed UTF-8 (no overlongs, surrogates or
 * code points past U+10FFFF) is accepted. */
int hd_rules_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p++;
        size_t more;
        unsigned cp, min;
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return 0;
        }
        if ((size_t)(e - p) < more)
            return 0;
        for (size_t i = 0; i < more; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        p += more;
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
}

static int add_block(struct hd_import *im, const struct hd_block *b)
{
    if (im->n == im->cap) {
        size_t nc = im->cap ? im->cap * 2 : 64;
        struct hd_block *p;
        if (im->n >= HD_IMPORT_MAX_ROWS)
            return HD_ERR_FULL;
        p = realloc(im->blocks, nc * sizeof(*p));
        if (!p)
            return -ENOMEM;
        im->blocks = p;
        im->cap = nc;
    }
    im->blocks[im->n++] = *b;
    return 0;
}

/* Validates one data record into a block. Returns 0, 1 (bad: error recorded), or <0. */
static int import_row(struct hd_import *im, const struct csv_rec *r, const int *map)
{
    struct hd_block b;
    char dom[HD_DOMAIN_MAX + 1];
    const char *p;
    size_t n;
    int v;

    memset(&b, 0, sizeof(b));
    b.severity = HD_SEV_SUSPEND;
    for (int c = 0; c < NCOLS; c++) {
        if (map[c] < 0 || (size_t)map[c] >= r->nf) {
            if (c == COL_DOMAIN) {
                import_error(im, r->line, "no domain%s", NULL);
                return 1;
            }
            continue;
        }
        p = r->buf + r->off[map[c]];
        n = r->len[map[c]];
        switch (c) {
        case COL_DOMAIN:
            trim(&p, &n);
            if (n >= sizeof(dom)) {
                import_error(im, r->line, "domain too long%s", NULL);
                return 1;
            }
            memcpy(dom, p, n);
            dom[n] = 0;
            if (hd_rules_domain_norm(dom, b.domain, sizeof(b.domain)) != 0) {
                import_error(im, r->line, "invalid domain \"%.100s\"", dom);
                return 1;
            }
            break;
        case COL_SEVERITY:
            trim(&p, &n);
            if (n == 0)
                break; /* Mastodon's import default */
            v = hd_severity_parse(p, n);
            if (v < 0) {
                char sev[64];
                snprintf(sev, sizeof(sev), "%.*s", (int)(n < 40 ? n : 40), p);
                import_error(im, r->line, "unknown severity \"%s\" (suspend, silence or noop)",
                             sev);
                return 1;
            }
            b.severity = v;
            break;
        case COL_COMMENT:
            if (n >= sizeof(b.comment)) {
                import_error(im, r->line, "public comment longer than 1023 bytes%s", NULL);
                return 1;
            }
            if (!hd_rules_utf8_valid(p, n) || memchr(p, 0, n)) {
                import_error(im, r->line, "public comment is not valid UTF-8 text%s", NULL);
                return 1;
            }
            memcpy(b.comment, p, n);
            b.comment[n] = 0;
            break;
        default:
            v = parse_bool(p, n);
            if (v < 0) {
                import_error(im, r->line, "%s must be true or false", col_names[c]);
                return 1;
            }
            if (c == COL_MEDIA)
                b.reject_media = v;
            else if (c == COL_REPORTS)
                b.reject_reports = v;
            else
                b.obfuscate = v;
        }
    }
    return add_block(im, &b);
}

/* A header row names a "#domain" column (Mastodon's spelling) and nothing but column names
 * ("#anything" or a known name), so a data row cannot be taken for one even when a comment
 * says "#domain". "domain" without '#' counts only next to another known column name, so a
 * block of the one-label domain "domain" ("domain,suspend,...") still reads as data. */
static int is_header(const struct csv_rec *r)
{
    int hash_domain = 0, plain_domain = 0, other_col = 0;
    for (size_t f = 0; f < r->nf; f++) {
        const char *p = r->buf + r->off[f];
        size_t n = r->len[f];
        int hash = 0, known = 0;
        trim(&p, &n);
        if (n == 0)
            continue;
        if (*p == '#') {
            hash = 1;
            p++;
            n--;
        }
        for (int c = 0; c < NCOLS; c++)
            if (strlen(col_names[c]) == n && !strncasecmp(p, col_names[c], n))
                known = c == COL_DOMAIN ? 1 : 2;
        if (known == 1 && hash)
            hash_domain = 1;
        else if (known == 1)
            plain_domain = 1;
        else if (known == 2)
            other_col = 1;
        else if (!hash)
            return 0; /* a value, not a column name */
    }
    return hash_domain || (plain_domain && other_col);
}

int hd_blocks_parse_csv(const char *buf, size_t len, struct hd_import *out)
{
    struct csv_rec *r = malloc(sizeof(*r));
    size_t i = 0, line = 1;
    int map[NCOLS], have_map = 0, rc = 0;

    memset(out, 0, sizeof(*out));
    if (!r)
        return -ENOMEM;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        i = 3; /* UTF-8 byte order mark (spreadsheet exports) */
    for (int c = 0; c < NCOLS; c++)
        map[c] = c;
    while (i < len && rc >= 0) {
        int stop = csv_read(buf, len, &i, &line, r);
        const char *f0 = r->buf + (r->nf ? r->off[0] : 0);
        size_t n0 = r->nf ? r->len[0] : 0;
        if (r->err) {
            import_error(out, r->line, "%s", r->err);
            if (stop)
                break;
            continue;
        }
        trim(&f0, &n0);
        if (r->nf == 1 && n0 == 0)
            continue; /* blank line */
        if (!have_map && is_header(r)) {
            /* Header row: columns by name, in any order. */
            have_map = 1;
            for (int c = 0; c < NCOLS; c++)
                map[c] = -1;
            for (size_t f = 0; f < r->nf; f++) {
                const char *p = r->buf + r->off[f];
                size_t n = r->len[f];
                trim(&p, &n);
                if (n && *p == '#') {
                    p++;
                    n--;
                }
                for (int c = 0; c < NCOLS; c++)
                    if (strlen(col_names[c]) == n && !strncasecmp(p, col_names[c], n))
                        map[c] = (int)f;
            }
            if (map[COL_DOMAIN] < 0) {
                import_error(out, r->line, "header row has no #domain column%s", NULL);
                break;
            }
            continue;
        }
        if (n0 > 0 && f0[0] == '#')
            continue; /* a comment line (domains never start with '#') */
        have_map = 1; /* a header may come only before the first data row */
        rc = import_row(out, r, map);
        if (rc > 0)
            rc = 0;
    }
    free(r);
    return rc < 0 ? rc : 0;
}

void hd_import_fini(struct hd_import *im)
{
    free(im->blocks);
    free(im->errs);
    memset(im, 0, sizeof(*im));
}

static int csv_needs_quotes(const char *s)
{
    size_t n = strlen(s);
    if (n && (s[0] == ' ' || s[n - 1] == ' ' || s[0] == '#'))
        return 1;
    return strpbrk(s, ",\"\r\n") != NULL;
}

int hd_block_csv_row(const struct hd_block *b, char *buf, size_t cap)
{
    size_t n = 0;
    int w = snprintf(buf, cap, "%s,%s,%s,%s,", b->domain, hd_severity_name(b->severity),
                     b->reject_media ? "true" : "false", b->reject_reports ? "true" : "false");
    if (w < 0 || (size_t)w >= cap)
        return HD_ERR_FULL;
    n = (size_t)w;
    if (csv_needs_quotes(b->comment)) {
        if (n + 1 >= cap)
            return HD_ERR_FULL;
        buf[n++] = '"';
        for (const char *p = b->comment; *p; p++) {
            if (n + 2 >= cap)
                return HD_ERR_FULL;
            if (*p == '"')
                buf[n++] = '"';
            buf[n++] = *p;
        }
        if (n + 1 >= cap)
            return HD_ERR_FULL;
        buf[n++] = '"';
    } else {
        size_t cl = strlen(b->comment);
        if (n + cl >= cap)
            return HD_ERR_FULL;
        memcpy(buf + n, b->comment, cl);
        n += cl;
    }
    w = snprintf(buf + n, cap - n, ",%s", b->obfuscate ? "true" : "false");
    if (w < 0 || (size_t)w >= cap - n)
        return HD_ERR_FULL;
    return (int)(n + (size_t)w);
}
