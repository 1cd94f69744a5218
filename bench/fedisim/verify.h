/* Independent verification of Herald's signatures (OpenSSL): draft-cavage and RFC 9421. */
#ifndef FS_VERIFY_H
#define FS_VERIFY_H

#include <stddef.h>
#include <time.h>

struct fs_req;

enum fs_badsig {
    FS_BAD_NONE = 0,
    FS_BAD_CONTENT_TYPE,
    FS_BAD_DATE,
    FS_BAD_DIGEST,
    FS_BAD_NO_SIGNATURE,
    FS_BAD_SIG_HEADER,
    FS_BAD_HEADERS_LIST,
    FS_BAD_UNKNOWN_KEY,
    FS_BAD_ALGORITHM,
    FS_BAD_SIGNATURE,
    FS_BAD_SCHEME, /* a signature scheme the host's profile does not accept */
    FS_BAD_LAST
};

enum fs_sig_scheme { FS_SIG_CAVAGE = 1, FS_SIG_RFC9421 = 2, FS_SIG_ANY = 3 };

struct fs_verifier;
int fs_verifier_new(struct fs_verifier **out, const char *keys_path);
void fs_verifier_free(struct fs_verifier *v);
size_t fs_verifier_nkeys(const struct fs_verifier *v);
/* Checks the content type, then, when r has a Signature-Input header, RFC 9421 (freshness by
 * created/expires or Date, Content-Digest, Signature), else draft-cavage (Date, Digest,
 * Signature). schemes: the FS_SIG_* bits the host accepts (else FS_BAD_SCHEME). Writes the
 * scheme the request used to *used. Returns FS_BAD_NONE or the first failed check.
 * now: wall clock. */
enum fs_badsig fs_verify(struct fs_verifier *v, const struct fs_req *r, time_t now,
                         unsigned schemes, enum fs_sig_scheme *used);
const char *fs_badsig_name(enum fs_badsig b);

#endif
