/* One request as fedisim received it, protocol-free: header fields (names lower-cased) and a
 * capped body. h1.c and h2.c fill it in; handle.c and verify.c read it. */
#ifndef FS_REQ_H
#define FS_REQ_H

#include <stddef.h>
#include <stdint.h>

#define FS_MAX_BODY (1024u * 1024u)       /* request bodies above this get 413 */
#define FS_MAX_HEADER_BYTES (16u * 1024u) /* request header block above this gets 431 */
#define FS_MAX_HEADERS 64                 /* header fields kept per request */

enum fs_proto { FS_PROTO_H1 = 1, FS_PROTO_H2 = 2 };

struct fs_hdr {
    uint32_t name, name_len, value, value_len; /* offsets into fs_req.mem */
};

struct fs_req {
    char *mem; /* header names/values, NUL-terminated each, capped at FS_MAX_HEADER_BYTES */
    size_t mem_len, mem_cap;
    struct fs_hdr h[FS_MAX_HEADERS];
    int nh;
    int method, path, authority; /* header index of pseudo fields (or -1) */
    uint8_t *body;
    size_t body_len, body_cap;
    unsigned headers_too_large : 1, body_too_large : 1, tls : 1;
    enum fs_proto proto;
};

void fs_req_init(struct fs_req *r);
void fs_req_fini(struct fs_req *r);
void fs_req_clear(struct fs_req *r); /* keeps allocations */
/* Adds a header (name lower-cased here). Pseudo names ":method", ":path", ":authority" are
 * remembered. Returns 0, or HD_ERR_TOO_LARGE (headers_too_large set). */
int fs_req_add(struct fs_req *r, const char *name, size_t nlen, const char *value, size_t vlen);
int fs_req_body(struct fs_req *r, const uint8_t *data, size_t len);
/* Value of the first header named name (lower-case), or NULL. */
const char *fs_req_get(const struct fs_req *r, const char *name);
const char *fs_req_field(const struct fs_req *r, int idx); /* value at index or "" */

/* Splits "host:port" / "[v6]:port" into the lower-cased host in out. Returns its length. */
size_t fs_host_from_authority(const char *auth, char *out, size_t cap);

#endif
