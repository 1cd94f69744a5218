/* Strict parsing of absolute http/https inbox URLs.
 *
 * Design choices (why):
 * - Inbox URLs come from remote actors' documents, so the parser refuses rather than
 *   repairs: any ASCII control character, space, backslash, userinfo, malformed
 *   percent-encoding, empty or out-of-range port is an error. WHATWG parsers silently strip
 *   tabs and newlines, turn '\' into '/' and accept "user@"; every such repair is a place
 *   where our idea of the destination could differ from another component's (the signer's
 *   request-target, the connection pool's origin key, an operator's block rule).
 * - The host is normalised once here (lower case, no trailing dot, IDN to A-labels,
 *   percent-decoded) so every consumer compares the same string: rules, the per-host
 *   scheduler, SNI, Host:, the resolver.
 * - Percent-encoding in the host is decoded (WHATWG does too) and the result must still
 *   be a valid host: "%2e" becomes '.', but "%00", "%2f" or a lone '%' are refused.
 * - A host whose last label looks numeric ("1.2.3.4", "0x7f.1", "2130706433") must be a
 *   strict dotted-quad IPv4 address. getaddrinfo-style resolvers accept octal, hex and
 *   short forms ("0177.1" is 127.0.0.1), which would let an address hide from rules that
 *   match on host names; we refuse them rather than guess.
 * - Non-ASCII hosts go through libidn2 (TR46 non-transitional, NFC): that is what browsers
 *   and Mastodon do, so "straße.example" reaches the same server as there. ASCII hosts skip
 *   libidn2 entirely (fast path, and underscores, common in real host names, survive).
 * - The path keeps its percent-encoding as received (re-encoding would change what the
 *   inbox owner signed and routes on); bytes that may not appear in an HTTP request line
 *   (non-ASCII, '"', '<', '>', '`', '{', '}', '|', '^') are percent-encoded. The fragment
 *   is dropped: it is never sent.
 * - Output is written only on success, built in a local copy.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <idn2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "url.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_ctl_or_space(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

static int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Validates an ASCII host name (already lower-cased, no trailing dot): labels of 1..63
 * letters, digits, '-' or '_', not starting or ending with '-'; total at most 253. */
static int valid_dns_name(const char *h)
{
    size_t len = strlen(h), lab = 0;
    const char *p;

    if (len == 0 || len > 253)
        return 0;
    for (p = h;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '.' || c == '\0') {
            if (lab == 0 || lab > 63 || p[-1] == '-' || p[-(long)lab] == '-')
                return 0;
            lab = 0;
            if (c == '\0')
                break;
            continue;
        }
        if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_'))
            return 0;
        lab++;
    }
    return 1;
}

/* Does the last label look like a number (decimal, or 0x-hex)? Then it is meant as IPv4. */
static int ends_in_number(const char *h)
{
    const char *last = strrchr(h, '.');
    const char *p;

    last = last ? last + 1 : h;
    if (*last == '\0')
        return 0;
    if (last[0] == '0' && (last[1] == 'x' || last[1] == 'X'))
        return 1;
    for (p = last; *p; p++)
        if (!is_digit((unsigned char)*p))
            return 0;
    return 1;
}

/* Host (reg-name or IPv4), length n, not bracketed. Writes the normalised host to out. */
static int parse_reg_host(const char *s, size_t n, char *out, size_t cap)
{
    char dec[HD_HOST_MAX * 3];
    size_t i, d = 0;
    int ascii = 1;
    struct in_addr a4;

    if (n == 0 || n >= sizeof(dec))
        return HD_ERR_INVALID;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return HD_ERR_INVALID; /* fewer than two characters follow */
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return HD_ERR_INVALID;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (is_ctl_or_space(c) || c == '%' || c == '/' || c == '\\' || c == '?' || c == '#' ||
            c == '@' || c == ':' || c == '[' || c == ']' || c == '<' || c == '>' || c == '^' ||
            c == '|' || c == '"' || c == '`' || c == '{' || c == '}')
            return HD_ERR_INVALID;
        if (c >= 0x80)
            ascii = 0;
        else if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        dec[d++] = (char)c;
    }
    dec[d] = '\0';
    /* One trailing dot names the same host; strip it so "a.example." and "a.example" are
     * one origin. */
    if (d > 1 && dec[d - 1] == '.')
        dec[--d] = '\0';
    if (!ascii) {
        char *alabel = NULL;
        int rv = idn2_to_ascii_8z(dec, &alabel, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
        if (rv == IDN2_MALLOC)
            return -ENOMEM;
        if (rv != IDN2_OK || !alabel)
            return HD_ERR_INVALID;
        if (strlen(alabel) >= sizeof(dec)) {
            idn2_free(alabel);
            return HD_ERR_INVALID;
        }
        strcpy(dec, alabel);
        idn2_free(alabel);
        for (i = 0; dec[i]; i++)
            if (dec[i] >= 'A' && dec[i] <= 'Z')
                dec[i] = (char)(dec[i] - 'A' + 'a');
    }
    if (ends_in_number(dec)) {
        if (inet_pton(AF_INET, dec, &a4) != 1)
            return HD_ERR_INVALID;
    } else if (!valid_dns_name(dec)) {
        return HD_ERR_INVALID;
    }
    if (strlen(dec) >= cap)
        return HD_ERR_INVALID;
    strcpy(out, dec);
    return 0;
}

static int parse_v6_host(const char *s, size_t n, char *out, size_t cap)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;

    /* No zone identifiers: a remote document must not pick our interface. */
    if (n == 0 || n >= sizeof(tmp) || memchr(s, '%', n))
        return HD_ERR_INVALID;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, &a6) != 1)
        return HD_ERR_INVALID;
    /* Canonical text form (RFC 5952: lower case, zeros compressed) so one address is one
     * origin however it was written. */
    if (!inet_ntop(AF_INET6, &a6, out, (socklen_t)cap))
        return HD_ERR_INVALID;
    return 0;
}

static int needs_encoding(unsigned char c)
{
    return c >= 0x80 || c == '"' || c == '<' || c == '>' || c == '`' || c == '{' || c == '}' ||
           c == '|' || c == '^';
}

static int parse_path(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (*s != '/' && *s != '?') {
        if (*s == '\0' || *s == '#') {
            s = ""; /* empty path: "/" */
        } else {
            return HD_ERR_INVALID;
        }
    }
    if (*s != '/') {
        if (cap < 2)
            return HD_ERR_INVALID;
        out[o++] = '/';
    }
    for (; *s && *s != '#'; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_ctl_or_space(c) || c == '\\')
            return HD_ERR_INVALID;
        if (c == '%' && (hexval((unsigned char)s[1]) < 0 || hexval((unsigned char)s[2]) < 0))
            return HD_ERR_INVALID;
        if (needs_encoding(c)) {
            if (o + 3 >= cap)
                return HD_ERR_INVALID;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            if (o + 1 >= cap)
                return HD_ERR_INVALID;
            out[o++] = (char)c;
        }
    }
    /* The fragment is dropped, but it must not carry what we refuse elsewhere either. */
    for (; *s; s++)
        if (is_ctl_or_space((unsigned char)*s) || *s == '\\')
            return HD_ERR_INVALID;
    out[o] = '\0';
    return 0;
}

/* host[:port] as sent in Host: / :authority (the port only when not the default; IPv6
 * bracketed). Written by hand: snprintf showed in per-delivery profiles. */
static int put_authority(const struct hd_url *u, char *out, size_t cap)
{
    size_t hl = strlen(u->host), o = 0, nl = 0;
    int v6 = strchr(u->host, ':') != NULL;
    char num[8];

    if (!((u->tls && u->port == 443) || (!u->tls && u->port == 80))) {
        char tmp[6];
        size_t k = 0;
        unsigned p = u->port;
        do {
            tmp[k++] = (char)('0' + p % 10);
            p /= 10;
        } while (p && k < sizeof(tmp));
        num[nl++] = ':';
        while (k)
            num[nl++] = tmp[--k];
    }
    if (hl + (v6 ? 2 : 0) + nl >= cap)
        return HD_ERR_INVALID;
    if (v6)
        out[o++] = '[';
    memcpy(out + o, u->host, hl);
    o += hl;
    if (v6)
        out[o++] = ']';
    memcpy(out + o, num, nl);
    o += nl;
    out[o] = '\0';
    return 0;
}

int hd_url_parse(const char *url, struct hd_url *out)
{
    return hd_url_parse_origin(url, out, NULL);
}

int hd_url_parse_origin(const char *url, struct hd_url *out, size_t *origin_len)
{
    struct hd_url u;
    const char *p, *auth, *auth_end, *host, *host_end, *port_s = NULL;
    size_t len, i;
    int rv;

    if (!url || !out)
        return HD_ERR_INVALID;
    len = strnlen(url, HD_URL_MAX);
    if (len == 0 || len >= HD_URL_MAX)
        return HD_ERR_INVALID;
    for (i = 0; i < len; i++)
        if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f || url[i] == ' ')
            return HD_ERR_INVALID;
    /* Not memset: the three strings are always written NUL-terminated before success, and
     * this runs once per delivery (2.6 KB of zeroes and copies showed in profiles). */
    u.host[0] = u.authority[0] = u.path[0] = '\0';
    if (strncasecmp(url, "https://", 8) == 0) {
        u.tls = 1;
        u.port = 443;
        p = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        u.tls = 0;
        u.port = 80;
        p = url + 7;
    } else {
        return HD_ERR_INVALID;
    }
    auth = p;
    auth_end = auth + strcspn(auth, "/?#\\");
    if (*auth_end == '\\')
        return HD_ERR_INVALID;
    if (memchr(auth, '@', (size_t)(auth_end - auth)))
        return HD_ERR_INVALID; /* userinfo */
    if (auth == auth_end)
        return HD_ERR_INVALID;
    if (*auth == '[') {
        host = auth + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end)
            return HD_ERR_INVALID;
        if (host_end + 1 < auth_end) {
            if (host_end[1] != ':')
                return HD_ERR_INVALID;
            port_s = host_end + 2;
        }
        rv = parse_v6_host(host, (size_t)(host_end - host), u.host, sizeof(u.host));
    } else {
        host = auth;
        host_end = memchr(host, ':', (size_t)(auth_end - host));
        if (host_end)
            port_s = host_end + 1;
        else
            host_end = auth_end;
        rv = parse_reg_host(host, (size_t)(host_end - host), u.host, sizeof(u.host));
    }
    if (rv)
        return rv;
    if (port_s) {
        unsigned long port = 0;
        const char *q;
        if (port_s == auth_end || auth_end - port_s > 5)
            return HD_ERR_INVALID;
        for (q = port_s; q < auth_end; q++) {
            if (!is_digit((unsigned char)*q))
                return HD_ERR_INVALID;
            port = port * 10 + (unsigned long)(*q - '0');
        }
        if (port == 0 || port > 65535)
            return HD_ERR_INVALID;
        u.port = (uint16_t)port;
    }
    rv = put_authority(&u, u.authority, sizeof(u.authority));
    if (rv)
        return rv;
    rv = parse_path(auth_end, u.path, sizeof(u.path));
    if (rv)
        return rv;
    out->tls = u.tls;
    out->port = u.port;
    memcpy(out->host, u.host, strlen(u.host) + 1);
    memcpy(out->authority, u.authority, strlen(u.authority) + 1);
    memcpy(out->path, u.path, strlen(u.path) + 1);
    if (origin_len)
        *origin_len = (size_t)(auth_end - url);
    return 0;
}

int hd_url_parse_path(const char *url, size_t origin_len, const struct hd_url *same,
                      struct hd_url *out)
{
    size_t len, i;
    char c;

    if (!url || !same || !out)
        return HD_ERR_INVALID;
    if (out == same)
        return hd_url_parse(url, out);
    len = strnlen(url, HD_URL_MAX);
    if (len == 0 || len >= HD_URL_MAX || origin_len == 0 || origin_len > len)
        return HD_ERR_INVALID;
    c = url[origin_len];
    if (c != '/' && c != '?' && c != '#' && c != '\0')
        return hd_url_parse(url, out); /* the authority goes on: another origin */
    for (i = origin_len; i < len; i++) /* the origin's characters were checked with it */
        if ((unsigned char)url[i] < 0x20 || url[i] == 0x7f || url[i] == ' ')
            return HD_ERR_INVALID;
    if (parse_path(url + origin_len, out->path, sizeof(out->path)) != 0) {
        out->path[0] = '\0';
        return HD_ERR_INVALID;
    }
    out->tls = same->tls;
    out->port = same->port;
    memcpy(out->host, same->host, strlen(same->host) + 1);
    memcpy(out->authority, same->authority, strlen(same->authority) + 1);
    return 0;
}

int hd_url_format(const struct hd_url *u, char *buf, size_t cap)
{
    int n;

    if (!u || !buf)
        return HD_ERR_INVALID;
    n = snprintf(buf, cap, "%s://%s%s", u->tls ? "https" : "http", u->authority, u->path);
    if (n < 0 || (size_t)n >= cap)
        return HD_ERR_INVALID;
    return 0;
}
