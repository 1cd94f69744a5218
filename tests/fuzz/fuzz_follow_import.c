/* libFuzzer target: `herald follow import FILE` (engine/cli/cli_follow.c: the flat JSON-lines
 * scanner, the CSV header and rows, and hd_follow_batch_add / apply behind them) on a fresh
 * temporary store per input. The input is written to a file and imported exactly as the CLI
 * does; the exit status must be 0 or 1 (bad lines), never anything else. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_follow.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], db[96], file[96];

static void rm_store(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/data.mdb", db);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", db);
    unlink(p);
    rmdir(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[] = {"follow", "import", file, NULL};
    FILE *f;
    int rc;

    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/hd-fuzz-follow-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(db, sizeof(db), "%s/db", dir);
        snprintf(file, sizeof(file), "%s/in", dir);
        hd_log_level = HD_LOG_ERROR;
        if (!freopen("/dev/null", "w", stdout)) /* the import prints a summary per input */
            abort();
    }
    f = fopen(file, "w");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    rc = hd_cli_follow(db, 3, argv);
    if (rc != 0 && rc != 1)
        abort();
    rm_store();
    return 0;
}
