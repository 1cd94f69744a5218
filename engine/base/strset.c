#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strset.h"

struct hd_strset {
    char **slot;
    size_t cap, len; /* cap is a power of two, load kept under 1/2 */
};

uint64_t hd_hash64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

int hd_strset_new(struct hd_strset **out, size_t hint)
{
    struct hd_strset *s = calloc(1, sizeof(*s));
    size_t cap = 16;
    if (!s)
        return -ENOMEM;
    while (cap < hint * 2)
        cap *= 2;
    s->slot = calloc(cap, sizeof(*s->slot));
    if (!s->slot) {
        free(s);
        return -ENOMEM;
    }
    s->cap = cap;
    *out = s;
    return 0;
}

void hd_strset_free(struct hd_strset *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
    free(s);
}

static size_t find(const struct hd_strset *s, const char *str)
{
    size_t m = s->cap - 1, i = hd_hash64(str, strlen(str)) & m;
    while (s->slot[i] && strcmp(s->slot[i], str) != 0)
        i = (i + 1) & m;
    return i;
}

static int grow(struct hd_strset *s)
{
    struct hd_strset n = {calloc(s->cap * 2, sizeof(char *)), s->cap * 2, s->len};
    if (!n.slot)
        return -ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i])
            n.slot[find(&n, s->slot[i])] = s->slot[i];
    free(s->slot);
    *s = n;
    return 0;
}

int hd_strset_add(struct hd_strset *s, const char *str)
{
    size_t i;
    if ((s->len + 1) * 2 > s->cap && grow(s) != 0)
        return -ENOMEM;
    i = find(s, str);
    if (s->slot[i])
        return 0;
    s->slot[i] = strdup(str);
    if (!s->slot[i])
        return -ENOMEM;
    s->len++;
    return 1;
}

int hd_strset_has(const struct hd_strset *s, const char *str)
{
    return s->slot[find(s, str)] != NULL;
}

size_t hd_strset_len(const struct hd_strset *s)
{
    return s->len;
}
