/* `herald block`, `herald allow` and `herald federation`: defederation rules (rules.h). */
#ifndef HD_CLI_BLOCK_H
#define HD_CLI_BLOCK_H

/* argv[0] is the command name ("block", "allow", "federation"); db is the store directory.
 * Each returns the process exit status: 0 ok, 1 failure, 2 usage error. */
int hd_cli_block(const char *db, int argc, char **argv);
int hd_cli_allow(const char *db, int argc, char **argv);
int hd_cli_federation(const char *db, int argc, char **argv);

struct hd_import;

/* Reads (path "-": standard input, at most 64 MiB) and parses a block CSV for `block import`
 * into im. On a bad file or line it prints why (file:line) to stderr, followed by
 * "nothing <what>", and returns 1 with im finished; 0 on success (the caller finishes im). */
int hd_cli_block_csv_load(const char *path, const char *what, struct hd_import *im);

#endif
