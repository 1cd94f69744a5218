/* Files compiled into the binary and served by the endpoint as they are: the dashboard
 * (engine/ops/web/) and the OpenAPI description (docs/openapi.yaml, converted to JSON at
 * build time by tools/embed_web.py). Nothing is fetched at run time. */
#ifndef HD_WEB_H
#define HD_WEB_H

#include <stddef.h>

struct hd_web_asset {
    const char *path;  /* request path: "/", "/dashboard.js", "/v1/openapi.json" */
    const char *ctype; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

extern const struct hd_web_asset hd_web_assets[];
extern const size_t hd_web_nassets;

#endif
