/* libFuzzer target: the configuration file (engine/ops/config.h, INI through inih), strict
 * parsing of every section, key, duration and per-host override; a config that loads is
 * compared with itself for restart-only differences (there must be none). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hd_config *c = NULL;
    char err[HD_CONFIG_ERR_MAX], diff[512], *text;
    uint64_t ms;

    hd_log_level = HD_LOG_ERROR;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    if (hd_config_load_string(text, "fuzz.ini", &c, err, sizeof(err)) == 0) {
        if (hd_config_restart_diff(c, c, diff, sizeof(diff)) != 0)
            abort();
        for (size_t i = 0; i < c->nhosts; i++)
            if (hd_config_host_find(c, c->hosts[i].name) == NULL)
                abort();
        hd_config_free(c);
    } else if (memchr(err, 0, sizeof(err)) == NULL) {
        abort();
    }
    (void)hd_config_parse_duration(text, &ms);
    free(text);
    return 0;
}
