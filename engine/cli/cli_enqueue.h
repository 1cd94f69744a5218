/* `herald enqueue [FILE|-]`: JSON-lines envelopes (ingest.h) into the store, one JSON result
 * line each on stdout. */
#ifndef HD_CLI_ENQUEUE_H
#define HD_CLI_ENQUEUE_H

/* argv[0] is "enqueue"; db is the store directory. Returns the process exit status: 0 when
 * every line was stored, 1 when one was refused or the store failed. */
int hd_cli_enqueue(const char *db, int argc, char **argv);

#endif
