/* Small helpers shared by the command-line modules (main.c, cli_*.c). */
#ifndef HD_CLI_UTIL_H
#define HD_CLI_UTIL_H

#include <jansson.h>

#include "store.h"

/* Opens the store at db; on failure prints "herald CMD: cannot open store DB: reason" to
 * stderr and returns 1 (an exit status), else 0 with *st set. cmd may be NULL. */
int hd_cli_open_store(const char *db, struct hd_store **st, const char *cmd);

/* Prints o as one compact JSON line on stdout and releases it (NULL ok). */
void hd_cli_print_json(json_t *o);

#endif
