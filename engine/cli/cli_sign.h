/* `herald sign`: prints the headers Herald would add to a request, for operators debugging
 * rejected signatures. */
#ifndef HD_CLI_SIGN_H
#define HD_CLI_SIGN_H

/* argv[0] is "sign". Returns the process exit status: 0 ok, 1 failure, 2 usage error. */
int hd_cli_sign(int argc, char **argv);

#endif
