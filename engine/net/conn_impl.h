/* What conn.c and conn_idle.c share; not for other modules. */
#ifndef HD_CONN_IMPL_H
#define HD_CONN_IMPL_H

#include "conn.h"

/* Arms conn's one timer for kind after ms (0: disarms it, keeping kind). */
void hd_conn_arm(struct hd_conn *conn, enum hd_conn_timer kind, unsigned ms);
/* Disarms conn's timer (kind none). */
void hd_conn_disarm(struct hd_conn *conn);
/* Takes conn off the idle list, if it is on it. */
void hd_conn_idle_unlink(struct hd_conn *conn);
/* Closes an idle connection: h2 says goodbye first (GOAWAY; hd_conn_flush closes once it
 * has left, or a 1 s timer does), h1 just closes. */
void hd_conn_idle_close(struct hd_conn *conn);
/* Closes conn at the end of this loop iteration if it is still idle then (idle_closing). */
void hd_conn_close_at_turn_end(struct hd_conn *conn);

#endif
