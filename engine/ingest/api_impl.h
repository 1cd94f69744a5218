/* What the files of the public C API share (api.c, api_admin.c): the handle, and the
 * translation of internal codes to the stable HERALD_ERR_* ones. */
#ifndef HD_API_IMPL_H
#define HD_API_IMPL_H

#include "store.h"

struct herald_store {
    struct hd_store *st;
};

/* Internal code -> public code: errno values pass through, the public HD_ERR_* subset keeps
 * its value, every other internal code becomes HERALD_ERR_INTERNAL. */
int hd_api_pub_err(int rc);

#endif
