/* `herald key`: actors' signing keys in the store (keys.h); the signer checks a key before it
 * is stored (keyadd.h). Key material is never printed. */
#ifndef HD_CLI_KEY_H
#define HD_CLI_KEY_H

/* argv[0] is "key"; db is the store directory. Returns the process exit status: 0 ok,
 * 1 failure, 2 usage error. */
int hd_cli_key(const char *db, int argc, char **argv);

#endif
