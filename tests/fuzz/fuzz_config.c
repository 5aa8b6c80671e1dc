/* fuzz_config.c - libFuzzer target: the server's JSON config parser and validation
 * (server/config.c, sn_config_parse). */
#include <stdint.h>

#include "server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sn_config c; /* large: keep it off the stack */
    char err[512];
    sn_config_parse(&c, (const char *)data, size, "fuzz", err, sizeof(err));
    return 0;
}
