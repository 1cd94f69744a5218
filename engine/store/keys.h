/* Signing keys and actors in the store. Private keys are stored as PEM in the keys DBI
 * (file mode 0600) and are only ever handed to the signer; listings show ids and actors. */
#ifndef HD_KEYS_H
#define HD_KEYS_H

#include "codec.h"
#include "keytype.h"
#include "store.h"

#define HD_FED_ALL 0
#define HD_FED_PUBLIC 1
#define HD_FED_NONE 2

struct hd_key_info {
    struct hd_slice key_id, actor;
    int type;      /* HD_KEY_RSA / HD_KEY_ED25519 (keytype.h) */
    unsigned bits;
};

/* Stores pem, a key of type (HD_KEY_RSA / HD_KEY_ED25519 of keytype.h) and bits that the
 * caller has already checked (hd_keys_add in ingest/keyadd.h does both), under key_id for
 * actor, making it the actor's signing key (an Ed25519 key becomes its RFC 9421 key).
 * Returns 0, HD_ERR_INVALID (with *why set to a static reason), or a store error. */
int hd_keys_put(struct hd_store *st, const char *key_id, const char *actor, int type,
                unsigned bits, const char *pem, size_t pem_len, const char **why);

/* hd_keys_put inside the caller's write txn (a group of keys in one transaction). A key id
 * that already belongs to another actor is refused (HD_ERR_INVALID, *why set). */
int hd_keys_put_txn(struct hd_store *st, struct hd_txn *txn, const char *key_id, const char *actor,
                    int type, unsigned bits, const char *pem, size_t pem_len, const char **why);

/* Removes key_id. Deliveries read their actor's key when they are signed, so removing a key
 * that is no longer the actor's key, or one of two (RSA and Ed25519: the other serves), takes
 * effect at once. Removing an actor's only key is refused with HD_ERR_BUSY and *pending set
 * to the deliveries (queued, retrying, dead letters) of the actor that still need it; with
 * none, the key is removed and the actor has no key (enqueue refuses it until one is added).
 * Returns 0, HD_ERR_NOT_FOUND, HD_ERR_BUSY, or a store error. */
int hd_keys_remove(struct hd_store *st, const char *key_id, uint64_t *pending, const char **why);

typedef int (*hd_key_list_cb)(const struct hd_key_info *k, void *user_data);
/* Calls cb for each key in key-id order (stop when cb returns nonzero). */
int hd_keys_list(struct hd_store *st, hd_key_list_cb cb, void *user_data);

/* Reads the PEM of key_id inside txn (valid until txn ends). */
int hd_keys_get_pem(struct hd_store *st, struct hd_txn *txn, const char *key_id, struct hd_slice *pem);

/* Reads an actor's signing key id and federation choice inside txn (valid until txn ends).
 * Returns 0 or HD_ERR_NOT_FOUND. */
int hd_actor_get(struct hd_store *st, struct hd_txn *txn, const char *actor, size_t actor_len,
                 struct hd_slice *key_id, int *federation);
/* Reads an actor's Ed25519 key id (for RFC 9421), {NULL,0} when it has none. */
int hd_actor_get_ed(struct hd_store *st, struct hd_txn *txn, const char *actor, size_t actor_len,
                    struct hd_slice *ed_key_id);
/* Sets an actor's federation choice (creating the actor record if needed). */
int hd_actor_set_federation(struct hd_store *st, struct hd_txn *txn, const char *actor, int federation);

#endif
