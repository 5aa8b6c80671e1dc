/* fuzz_image.c - libFuzzer target: JPEG/PNG decoding with the pixel budget and EXIF parsing
 * (server/image.c), then preprocessing of whatever decoded (engine/preprocess.c). The first
 * byte picks the DCT downscale target and the preprocessing preset. */
#include <stdint.h>
#include <stdlib.h>

#include "common/image.h"
#include "common/preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0];
    sn_image img;
    char err[256];
    /* 4 MP budget keeps each execution fast; the budget logic is the same at 40 MP. */
    if (sn_image_decode(data + 1, size - 1, 4000000, (mode & 1) ? 64 : 0, &img, err, sizeof(err)) !=
        SN_IMG_OK)
        return 0;
    sn_preprocess p = {(mode >> 1) & 1,
                       (mode >> 2) & 1 ? SN_RESIZE_PILLOW_BILINEAR : SN_RESIZE_OPENCV_BILINEAR,
                       40,
                       (mode >> 3) & 1,
                       32,
                       {0, 0, 0},
                       {1, 1, 1}};
    float *x = malloc(3 * 32 * 32 * sizeof(float));
    if (x) sn_preprocess_image(&p, img.rgb, img.width, img.height, x, err, sizeof(err));
    free(x);
    sn_image_free(&img);
    return 0;
}
