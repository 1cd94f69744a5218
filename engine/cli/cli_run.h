/* `herald run`: the delivery engine in the foreground (runner.h), with the operator's
 * surroundings (daemon.h: --config, the ingest endpoint, reload, drain), until SIGINT or
 * SIGTERM, or until the queue is empty with --until-idle. Prints a summary line on stderr. */
#ifndef HD_CLI_RUN_H
#define HD_CLI_RUN_H

/* argv[0] is "run"; db is the store directory. Returns the process exit status: 0 after a
 * clean stop, 1 on failure (another run holds the store, the store or endpoint failed),
 * 2 for a bad flag. */
int hd_cli_run(const char *db, int argc, char **argv);

#endif
