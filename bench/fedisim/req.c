/* Requests as received (see req.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "req.h"

void fs_req_init(struct fs_req *r)
{
    memset(r, 0, sizeof(*r));
    r->method = r->path = r->authority = -1;
}

void fs_req_fini(struct fs_req *r)
{
    free(r->mem);
    free(r->body);
    r->mem = NULL;
    r->body = NULL;
}

void fs_req_clear(struct fs_req *r)
{
    r->mem_len = 0;
    r->nh = 0;
    r->method = r->path = r->authority = -1;
    r->body_len = 0;
    r->headers_too_large = 0;
    r->body_too_large = 0;
}

static int mem_put(struct fs_req *r, const char *s, size_t n, uint32_t *off)
{
    if (r->mem_len + n + 1 > FS_MAX_HEADER_BYTES)
        return HD_ERR_TOO_LARGE;
    if (r->mem_len + n + 1 > r->mem_cap) {
        size_t cap = r->mem_cap ? r->mem_cap : 1024;
        while (cap < r->mem_len + n + 1)
            cap *= 2;
        char *m = realloc(r->mem, cap);
        if (!m)
            return -ENOMEM;
        r->mem = m;
        r->mem_cap = cap;
    }
    memcpy(r->mem + r->mem_len, s, n);
    r->mem[r->mem_len + n] = '\0';
    *off = (uint32_t)r->mem_len;
    r->mem_len += n + 1;
    return 0;
}

int fs_req_add(struct fs_req *r, const char *name, size_t nlen, const char *value, size_t vlen)
{
    struct fs_hdr *h;
    int rv;

    if (r->nh >= FS_MAX_HEADERS) {
        /* Extra fields are dropped, not fatal: none of them matter to us beyond 64. */
        return 0;
    }
    h = &r->h[r->nh];
    rv = mem_put(r, name, nlen, &h->name);
    if (rv == 0)
        rv = mem_put(r, value, vlen, &h->value);
    if (rv < 0) {
        r->headers_too_large = 1;
        return HD_ERR_TOO_LARGE;
    }
    h->name_len = (uint32_t)nlen;
    h->value_len = (uint32_t)vlen;
    for (size_t i = 0; i < nlen; i++) {
        char *c = r->mem + h->name + i;
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c + 32);
    }
    if (nlen > 1 && name[0] == ':') {
        const char *n = r->mem + h->name;
        if (strcmp(n, ":method") == 0)
            r->method = r->nh;
        else if (strcmp(n, ":path") == 0)
            r->path = r->nh;
        else if (strcmp(n, ":authority") == 0)
            r->authority = r->nh;
    } else if (nlen == 4 && r->authority < 0 && strncasecmp(name, "host", 4) == 0) {
        r->authority = r->nh;
    }
    r->nh++;
    return 0;
}

int fs_req_body(struct fs_req *r, const uint8_t *data, size_t len)
{
    if (r->body_too_large)
        return 0;
    if (r->body_len + len > FS_MAX_BODY) {
        r->body_too_large = 1;
        return 0;
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + len)
            cap *= 2;
        uint8_t *b = realloc(r->body, cap);
        if (!b)
            return -ENOMEM;
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    return 0;
}

const char *fs_req_get(const struct fs_req *r, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < r->nh; i++)
        if (r->h[i].name_len == nl && memcmp(r->mem + r->h[i].name, name, nl) == 0)
            return r->mem + r->h[i].value;
    return NULL;
}

const char *fs_req_field(const struct fs_req *r, int idx)
{
    return (idx >= 0 && idx < r->nh) ? r->mem + r->h[idx].value : "";
}

size_t fs_host_from_authority(const char *auth, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = auth;

    if (cap == 0)
        return 0;
    if (*p == '[') {
        p++;
        while (*p && *p != ']' && n + 1 < cap)
            out[n++] = *p++;
    } else {
        while (*p && *p != ':' && n + 1 < cap) {
            char c = *p++;
            out[n++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        }
    }
    /* A trailing dot names the same host. */
    if (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return n;
}
