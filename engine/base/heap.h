/* The process heap, for commands that build one large write transaction. */
#ifndef HD_HEAP_H
#define HD_HEAP_H

#include <stddef.h>

/* Prepares the heap for a short-lived command that allocates many small blocks at once (a
 * large LMDB write transaction allocates each dirty page with malloc): grows it by bytes of
 * address space backed by transparent huge pages where the system allows them (THP
 * "madvise" or "always"), so that faulting the memory in costs a fault per 2 MB rather than
 * per 4 KB page, and keeps freed memory in the heap. Nothing is touched here: the memory
 * counts in the resident size only once used. glibc only; elsewhere, or when the system
 * refuses, it does nothing. Call it once, before the work, from a command's main thread. */
void hd_heap_prepare_bulk(size_t bytes);

#endif
