/* Strict parsing of inbox URLs (absolute http/https only). */
#ifndef HD_URL_H
#define HD_URL_H

#include <stddef.h>
#include <stdint.h>

#define HD_URL_MAX 2048
#define HD_HOST_MAX 256

struct hd_url {
    int tls;                     /* 1 https, 0 http */
    char host[HD_HOST_MAX];      /* lower-case; IDN converted to A-labels; IPv6 without brackets */
    uint16_t port;               /* explicit or default (443/80) */
    char authority[HD_HOST_MAX + 8]; /* host[:port] as sent in Host: port only if not default; IPv6 bracketed */
    char path[HD_URL_MAX];       /* path and query ("/" if empty); fragment dropped */
};

/* Parses url. Rejects: other schemes, userinfo, empty host, bad port, control characters,
 * spaces, over-long parts. Returns 0 or HD_ERR_INVALID. */
int hd_url_parse(const char *url, struct hd_url *out);

/* hd_url_parse, and in *origin_len (if not NULL) the length of url's scheme and authority as
 * written: the part hd_url_parse_path takes as parsed. */
int hd_url_parse_origin(const char *url, struct hd_url *out, size_t *origin_len);

/* hd_url_parse(url, out) for a URL whose first origin_len characters are those of one that
 * hd_url_parse_origin parsed into same (origin_len its answer): only the rest is
 * parsed, the scheme, host, port and authority are same's. A host's inboxes share their
 * origin: a scan of its queue parses the host once. */
int hd_url_parse_path(const char *url, size_t origin_len, const struct hd_url *same,
                      struct hd_url *out);

/* Writes the normalised URL (scheme://authority/path) to buf. Returns 0 or HD_ERR_INVALID if cap too small. */
int hd_url_format(const struct hd_url *u, char *buf, size_t cap);

#endif
