/* libFuzzer target: Retry-After values as a receiver sends them (hd_policy_retry_after):
 * delta-seconds or an IMF-fixdate. The result must respect the cap whatever the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t caps[] = {0, 1000, 6 * 3600 * 1000ull, UINT64_MAX};
    char *v = malloc(size + 1);
    uint64_t d;

    if (!v)
        return 0;
    memcpy(v, data, size);
    v[size] = 0; /* header values reach the policy NUL-terminated */
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        d = 12345;
        if (hd_policy_retry_after(v, 1700000000, caps[i], &d) == 0 && d > caps[i])
            abort();
    }
    free(v);
    return 0;
}
