/* fuzz_multipart.c - libFuzzer target for the multipart parser (server/multipart.c).
 * Build: clang -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Iserver
 * tests/fuzz/fuzz_multipart.c server/multipart.c. The first input byte picks the boundary length.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char alphabet[] = "----WebKitFormBoundary0123456789abcdefghijklmnopqrstuvwxyzAB";
    if (size < 1) return 0;
    char boundary[SN_MP_MAX_BOUNDARY + 1];
    size_t bl = 1 + data[0] % SN_MP_MAX_BOUNDARY;
    if (bl > sizeof alphabet - 1) bl = sizeof alphabet - 1;
    memcpy(boundary, alphabet, bl);
    boundary[bl] = 0;
    sn_part parts[8];
    char err[256];
    int n = sn_multipart_parse(boundary, data + 1, size - 1, parts, 8, err, sizeof err);
    for (int i = 0; i < n; i++) /* every part must lie inside the input */
        if (parts[i].data < data + 1 || parts[i].data + parts[i].len > data + size)
            __builtin_trap();
    char ct[300];
    size_t cl = size - 1 < sizeof ct - 1 ? size - 1 : sizeof ct - 1;
    memcpy(ct, data + 1, cl);
    ct[cl] = 0;
    sn_multipart_boundary(ct, boundary, sizeof boundary, err, sizeof err);
    return 0;
}
