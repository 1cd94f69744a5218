/* libFuzzer target: Mastodon domain-block CSV import (hd_blocks_parse_csv). Every row it
 * accepts must export (hd_block_csv_row) and parse back to the same domain and severity. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hd_import im;
    char row[8192];

    memset(&im, 0, sizeof(im));
    if (hd_blocks_parse_csv((const char *)data, size, &im) == 0 && im.nerr_total == 0) {
        for (size_t i = 0; i < im.n; i++) {
            struct hd_import back;
            static const char hdr[] =
                "#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n";
            int n = hd_block_csv_row(&im.blocks[i], row + sizeof(hdr) - 1,
                                     sizeof(row) - sizeof(hdr) + 1);
            if (n < 0)
                continue;
            memcpy(row, hdr, sizeof(hdr) - 1);
            n += (int)sizeof(hdr) - 1;
            memset(&back, 0, sizeof(back));
            if (hd_blocks_parse_csv(row, (size_t)n, &back) != 0 || back.nerr_total != 0 ||
                back.n != 1 || strcmp(back.blocks[0].domain, im.blocks[i].domain) != 0 ||
                back.blocks[0].severity != im.blocks[i].severity) {
                fprintf(stderr, "round trip failed for row: %.*s\n", n, row);
                abort();
            }
            hd_import_fini(&back);
        }
    }
    if (im.nerr > HD_IMPORT_MAX_ERRORS)
        abort();
    hd_import_fini(&im);
    return 0;
}
