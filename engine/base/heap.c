/* See heap.h. */
#include "heap.h"

#include <stdint.h>
#include <stdlib.h>

#ifdef __GLIBC__
#include <malloc.h>
#include <sys/mman.h>
#endif

#define HUGE_2M ((uintptr_t)2 << 20)
#define CHUNK ((size_t)16 << 20) /* below glibc's largest mmap threshold (32 MB) */
#define NCHUNK_MAX 16

void hd_heap_prepare_bulk(size_t bytes)
{
#ifdef __GLIBC__
    void *p[NCHUNK_MAX];
    size_t n = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;

    if (bytes < CHUNK)
        return;
    /* The blocks must come from the main heap (sbrk), one after the other, and the heap must
     * keep them once freed. */
    if (!mallopt(M_MMAP_THRESHOLD, 32 << 20) || !mallopt(M_TRIM_THRESHOLD, INT32_MAX))
        return;
    while (n < NCHUNK_MAX && n * CHUNK < bytes && (p[n] = malloc(CHUNK)) != NULL) {
        uintptr_t a = (uintptr_t)p[n];
        lo = a < lo ? a : lo;
        hi = a + CHUNK > hi ? a + CHUNK : hi;
        n++;
    }
    /* Only one contiguous piece of heap (blocks found elsewhere: leave it). */
    int contiguous = n && hi - lo <= n * (CHUNK + 64);
    lo = (lo + HUGE_2M - 1) & ~(HUGE_2M - 1);
    hi &= ~(HUGE_2M - 1);
    if (contiguous && hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* refused: 4 KB pages, as before */
    while (n)
        free(p[--n]);
#else
    (void)bytes;
#endif
}
