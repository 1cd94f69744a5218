/* `herald activity cancel ID` and `herald activity show ID [--json]`: takedown and delivery
 * status of one activity, named by its id URL or its sequence number (activity.h). */
#ifndef HD_CLI_ACTIVITY_H
#define HD_CLI_ACTIVITY_H

/* argv[0] is "activity"; db is the store directory. Returns the process exit status: 0 ok,
 * 1 failure (no such activity, store error), 2 usage. */
int hd_cli_activity(const char *db, int argc, char **argv);

#endif
