/* A set of strings (open addressing, FNV-1a), used to de-duplicate inboxes. */
#ifndef HD_STRSET_H
#define HD_STRSET_H

#include <stddef.h>
#include <stdint.h>

struct hd_strset;

/* Creates a set sized for about `hint` strings. Returns 0 or -ENOMEM. */
int hd_strset_new(struct hd_strset **out, size_t hint);
void hd_strset_free(struct hd_strset *s); /* NULL ok */
/* Adds a copy of str. Returns 1 if added, 0 if already present, -ENOMEM. */
int hd_strset_add(struct hd_strset *s, const char *str);
int hd_strset_has(const struct hd_strset *s, const char *str);
size_t hd_strset_len(const struct hd_strset *s);
uint64_t hd_hash64(const void *p, size_t n);

#endif
