/* actors_bulk DB PEM N: stores a signing key for each of N actors,
 * https://social.example/users/u1 .. uN, key ids .../uI#main-key, all with the PEM in file
 * PEM (one key pair under N names is enough to fill a signer's key cache). Through the C API:
 * one store handle instead of N `herald key add` processes. Exit 0, or 1 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herald/herald.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = calloc(1, (size_t)n + 1)) != NULL && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b)
        *len = strlen(b);
    return b;
}

int main(int argc, char **argv)
{
    herald_store *h;
    size_t len;
    char *pem;
    long n;
    int rc;

    if (argc != 4 || (n = strtol(argv[3], NULL, 10)) <= 0) {
        fprintf(stderr, "usage: actors_bulk DB PEM N\n");
        return 2;
    }
    pem = slurp(argv[2], &len);
    if (!pem) {
        fprintf(stderr, "actors_bulk: cannot read %s\n", argv[2]);
        return 1;
    }
    rc = herald_open(argv[1], &h);
    if (rc) {
        fprintf(stderr, "actors_bulk: %s\n", herald_strerror(rc));
        return 1;
    }
    for (long i = 1; i <= n && rc == 0; i++) {
        char kid[160], actor[128];
        const char *why = NULL;

        snprintf(actor, sizeof(actor), "https://social.example/users/u%ld", i);
        snprintf(kid, sizeof(kid), "%s#main-key", actor);
        rc = herald_key_add(h, kid, actor, pem, len, &why);
        if (rc)
            fprintf(stderr, "actors_bulk: %s: %s\n", kid, why ? why : herald_strerror(rc));
    }
    herald_close(h);
    free(pem);
    return rc ? 1 : 0;
}
