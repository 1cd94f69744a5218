/* The activity id of a request body, by a validating one-pass JSON scan. */
#ifndef FS_JSON_ID_H
#define FS_JSON_ID_H

#include <stddef.h>
#include <stdint.h>

/* Validates body as JSON (RFC 8259) and copies the top-level object's "id" string, decoded,
 * into out (NUL-terminated, length in *outlen). Returns 0, or -1 if the body is not a JSON
 * object with a string "id" or the id does not fit in cap. */
int fs_json_activity_id(const uint8_t *body, size_t len, char *out, size_t cap, size_t *outlen);

#endif
