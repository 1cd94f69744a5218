/* Adding a signing key (see keyadd.h). */
#include <string.h>

#include "err.h"
#include "keyadd.h"
#include "keys.h"
#include "sign.h"

int hd_keys_add(struct hd_store *st, const char *key_id, const char *actor, const char *pem,
                size_t pem_len, const char **why)
{
    int type = 0, rc;
    unsigned bits = 0;

    *why = NULL;
    if (!*key_id || !*actor || strlen(key_id) > 500 || strlen(actor) > 500) {
        *why = "key id and actor must be non-empty and at most 500 bytes";
        return HD_ERR_INVALID;
    }
    rc = hd_key_check(pem, pem_len, &type, &bits, why);
    if (rc)
        return rc;
    return hd_keys_put(st, key_id, actor, type, bits, pem, pem_len, why);
}
