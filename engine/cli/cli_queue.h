/* `herald queue list|flush|shape`: the queued deliveries one by one (inbox, state, attempts,
 * next due, last error; paged with a cursor), "retry now", and counts by host and age, as
 * Postfix's postqueue -p, postqueue -f and qshape do for mail. */
#ifndef HD_CLI_QUEUE_H
#define HD_CLI_QUEUE_H

/* argv[0] is "queue"; db is the store directory. Returns the exit status: 0 ok, 1 failure,
 * 2 usage error. */
int hd_cli_queue(const char *db, int argc, char **argv);

#endif
