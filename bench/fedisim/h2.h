/* HTTP/2 server side of a connection: nghttp2 through mem_recv / mem_send, one stream per
 * request, GOAWAY after a profile's stream count. */
#ifndef FS_H2_H
#define FS_H2_H

#include "conn.h"

extern const struct fs_proto_ops fs_h2_proto;

#endif
