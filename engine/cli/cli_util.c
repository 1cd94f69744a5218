#include <stdio.h>
#include <stdlib.h>

#include "cli_util.h"
#include "err.h"

int hd_cli_open_store(const char *db, struct hd_store **st, const char *cmd)
{
    int rc = hd_store_open(st, db, 0);
    if (rc) {
        fprintf(stderr, "herald%s%s: cannot open store %s: %s\n", cmd ? " " : "", cmd ? cmd : "",
                db, hd_strerror(rc));
        return 1;
    }
    return 0;
}

void hd_cli_print_json(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}
