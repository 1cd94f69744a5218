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

/* Key import: JSON lines {"key_id","actor","pem"}, stored in groups of `group` keys per write
 * transaction (one commit per group, so 200,000 keys cost 200,000/group commits). A bad line
 * (not a JSON object, a missing or non-string field, a weak or malformed key, a key id of
 * another actor) is reported through bad(lineno, why, user_data) and skipped; the other lines
 * of its group are stored. Line numbers count every line, blank ones included, from 1. Each
 * key becomes its actor's signing key (rotation: requests signed from then on use it). A store
 * error stops the import: the groups committed before it stay (importing the same file again
 * is harmless: a key is stored again under its id). */
#define HD_KEY_IMPORT_GROUP 1000
#define HD_KEY_IMPORT_LINE_MAX (64u * 1024)

struct hd_key_import_stats {
    size_t lines;    /* lines read, blank ones included */
    size_t imported; /* keys stored and committed */
    size_t bad;      /* lines reported and skipped */
};

typedef void (*hd_key_import_bad_cb)(size_t lineno, const char *why, void *user_data);

struct hd_key_import;

/* group 0 means HD_KEY_IMPORT_GROUP. bad may be NULL. */
int hd_key_import_new(struct hd_store *st, size_t group, hd_key_import_bad_cb bad,
                      void *user_data, struct hd_key_import **out);
/* One line (without its newline). Returns 0 (stored or reported bad), or a store error. */
int hd_key_import_line(struct hd_key_import *imp, const char *line, size_t len);
/* Commits the last group and fills *stats. Returns 0 or a store error. */
int hd_key_import_finish(struct hd_key_import *imp, struct hd_key_import_stats *stats);
/* Aborts an unfinished group (keys of committed groups stay) and frees imp. */
void hd_key_import_free(struct hd_key_import *imp);

/* The whole of buf (JSON lines) in one call: new, every line, finish, free. */
int hd_key_import_buf(struct hd_store *st, const char *buf, size_t len, size_t group,
                      hd_key_import_bad_cb bad, void *user_data,
                      struct hd_key_import_stats *stats);

#endif
