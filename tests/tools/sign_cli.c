/* Stand-in for `herald sign` until main.c dispatches to it: sign_cli ARGS == herald sign ARGS. */
#include "cli_sign.h"

int main(int argc, char **argv)
{
    return hd_cli_sign(argc - 1, argv + 1);
}
