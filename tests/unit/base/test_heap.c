/* hd_heap_prepare_bulk: the heap still serves and frees everything afterwards, and where the
 * system offers transparent huge pages on request, memory used after it is backed by them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"

#include "heap.h"

#if defined(__SANITIZE_ADDRESS__)
#define HD_T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HD_T_ASAN 1
#endif
#endif

#define NBLK 8192 /* 32 MB of 4 KB blocks, as a large write transaction's dirty pages */

/* The system's THP mode allows huge pages on request ("always" or "madvise" selected). */
static int thp_on_request(void)
{
    char b[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return 0;
    if (!fgets(b, sizeof(b), f))
        b[0] = 0;
    fclose(f);
    return strstr(b, "[always]") != NULL || strstr(b, "[madvise]") != NULL;
}

/* AnonHugePages of this process, in kB (smaps_rollup), or -1. */
static long anon_huge_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

int main(void)
{
    static void *blk[NBLK];
    long before = anon_huge_kb();

    hd_heap_prepare_bulk(0);         /* too small: nothing to do */
    hd_heap_prepare_bulk((size_t)64 << 20);
    hd_heap_prepare_bulk((size_t)64 << 20); /* twice is harmless */
    for (size_t i = 0; i < NBLK; i++) {
        blk[i] = malloc(4096);
        T_OK(blk[i] != NULL);
        memset(blk[i], (int)(i & 0xff), 4096);
    }
    for (size_t i = 0; i < NBLK; i += 997)
        T_EQ_INT(((unsigned char *)blk[i])[4095], (int)(i & 0xff));
#ifndef HD_T_ASAN /* ASan's allocator is not glibc's heap */
    if (thp_on_request() && before >= 0) {
        long after = anon_huge_kb();
        T_OK(after >= before + 4096); /* at least two 2 MB pages of the 32 MB used */
    } else {
        fprintf(stderr, "note: transparent huge pages not offered here; usage checked only\n");
    }
#else
    (void)before;
    (void)thp_on_request;
#endif
    for (size_t i = 0; i < NBLK; i++)
        free(blk[i]);
    T_DONE();
}
