/* Key types, shared by the signer (sign/) and the key records of the store (store/keys.c),
 * which writes these values to disk: they are frozen. */
#ifndef HD_KEYTYPE_H
#define HD_KEYTYPE_H

enum hd_key_type { HD_KEY_RSA = 1, HD_KEY_ED25519 = 2 };

#endif
