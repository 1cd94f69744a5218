/* Minimal test assertions: a failing check prints where and exits 1. Exit 77 skips. */
#ifndef HD_T_H
#define HD_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_checks;

#define T_FAIL(...)                                                                                \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                                      \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)
#define T_OK(cond)                                                                                 \
    do {                                                                                           \
        t_checks++;                                                                                \
        if (!(cond))                                                                               \
            T_FAIL("%s", #cond);                                                                   \
    } while (0)
#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        t_checks++;                                                                                \
        if (t_a_ != t_b_)                                                                          \
            T_FAIL("%s == %s: %lld != %lld", #a, #b, t_a_, t_b_);                                  \
    } while (0)
#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        t_checks++;                                                                                \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                                             \
            T_FAIL("%s == %s:\n  got:  %s\n  want: %s", #a, #b, t_a_ ? t_a_ : "(null)",              \
                   t_b_ ? t_b_ : "(null)");                                                        \
    } while (0)
#define T_SKIP(...)                                                                                \
    do {                                                                                           \
        fprintf(stderr, "SKIP: " __VA_ARGS__);                                                     \
        fprintf(stderr, "\n");                                                                     \
        exit(77);                                                                                  \
    } while (0)
#define T_DONE()                                                                                   \
    do {                                                                                           \
        printf("%s: %d checks passed\n", __FILE__, t_checks);                                      \
        return 0;                                                                                  \
    } while (0)

/* Reads a whole file into a NUL-terminated buffer (the caller frees it). NULL when the file
 * cannot be opened; a short read fails the test. */
static inline char *t_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = calloc(1, (size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        T_FAIL("read %s", path);
    fclose(f);
    *len = (size_t)n;
    return b;
}

#endif
