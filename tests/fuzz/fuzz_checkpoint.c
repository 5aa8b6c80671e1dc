/* fuzz_checkpoint.c - libFuzzer target: the torch-free checkpoint reader (tools/pickle.c:
 * legacy and zip containers, the pickle VM, tensor rebuilding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    sn_pt_checkpoint ck;
    char err[256];
    if (sn_pt_parse(buf, size, &ck, err, sizeof(err)) == 0) sn_pt_free(&ck);
    return 0;
}
