/* `herald host`, `herald dead` and `herald gone`: the per-host operator view and controls
 * (hostctl.h). */
#ifndef HD_CLI_HOST_H
#define HD_CLI_HOST_H

/* argv[0] is the command name ("host", "dead", "gone"); db is the store directory.
 * Each returns the process exit status: 0 ok, 1 failure, 2 usage error. */
int hd_cli_host(const char *db, int argc, char **argv);
int hd_cli_dead(const char *db, int argc, char **argv);
int hd_cli_gone(const char *db, int argc, char **argv);

#endif
