/* HTTP/1.1 server side of a connection: keep-alive, pipelining (answered in order, one at a
 * time), Content-Length and chunked bodies, Expect: 100-continue, and a 505 for an h2 preface. */
#ifndef FS_H1_H
#define FS_H1_H

#include "conn.h"

extern const struct fs_proto_ops fs_h1_proto;

#endif
