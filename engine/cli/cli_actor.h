/* `herald actor set`: an actor's federation choice (all, public, none), kept with its keys
 * in the store (keys.h) and applied when its activities are enqueued. */
#ifndef HD_CLI_ACTOR_H
#define HD_CLI_ACTOR_H

/* argv[0] is "actor"; db is the store directory. Returns the process exit status: 0 ok,
 * 1 failure, 2 usage error. */
int hd_cli_actor(const char *db, int argc, char **argv);

#endif
