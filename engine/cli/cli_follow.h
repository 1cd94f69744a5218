/* herald follow: add, remove, import and list an actor's followers (audience.h). */
#ifndef HD_CLI_FOLLOW_H
#define HD_CLI_FOLLOW_H

/* argv[0] is "follow". Returns the process exit status: 0 ok, 1 failure (or bad import
 * lines), 2 usage. */
int hd_cli_follow(const char *db, int argc, char **argv);

#endif
