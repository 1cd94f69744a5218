/* Hosts that know us: a host took at least one of our deliveries. The store keeps one inbox
 * per such host (hostinbox table), its shared inbox once a delivery there succeeded, so that
 * an envelope with "to_known_hosts" (an account Delete) reaches every one of them. */
#ifndef HD_KNOWN_H
#define HD_KNOWN_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "url.h"

/* A delivery to inbox (inbox_len bytes; shared: a shared inbox) at host succeeded: the host's
 * known inbox is recorded when it has none, or replaced when this one is shared and the
 * recorded one is not. Returns 0, -ENOMEM or a store error. */
int hd_known_note(struct hd_store *st, struct hd_txn *txn, const char *host, const char *inbox,
                  size_t inbox_len, int shared);

/* host's known inbox into buf (cap bytes, NUL-terminated), *shared whether it is a shared
 * inbox. Returns 0, HD_ERR_NOT_FOUND (none recorded), HD_ERR_FULL (buf too small) or a store
 * error. */
int hd_known_get(struct hd_store *st, struct hd_txn *txn, const char *host, char *buf, size_t cap,
                 int *shared);

#endif
