/* Adding a signing key: the signer checks the PEM, the store keeps it. */
#ifndef HD_KEYADD_H
#define HD_KEYADD_H

#include <stddef.h>

#include "store.h"

/* Validates pem (RSA >= 2048 bits, PKCS#1 or PKCS#8; or Ed25519 PKCS#8) and stores it under
 * key_id for actor, making it the actor's signing key. Returns 0, HD_ERR_INVALID (with *why
 * set to a static reason), or a store error. */
int hd_keys_add(struct hd_store *st, const char *key_id, const char *actor, const char *pem,
                size_t pem_len, const char **why);

#endif
