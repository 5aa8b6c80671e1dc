/* fuzz_image.c - libFuzzer target: JPEG/PNG decoding with the pixel budget and EXIF parsing
 * (common/image.c), preprocessing of whatever decoded (common/preprocess.c), and the request
 * path itself: sn_input_from_bytes in fast and exact mode, i.e. the window decode with
 * jpeg_crop_scanline / jpeg_skip_scanlines at every DCT scale (common/stream.c) into the
 * resampling plan (common/resize.c), with a memory budget hook. The first byte picks the DCT
 * downscale target, the preprocessing preset and the mode. */
#include <stdint.h>
#include <stdlib.h>

#include "common/image.h"
#include "common/input.h"
#include "common/preprocess.h"

static int reserve(void *ctx, long long n) {
    long long *held = ctx;
    if (*held + n > (256LL << 20)) return -1;
    *held += n;
    return 0;
}

static void release(void *ctx, long long n) {
    long long *held = ctx;
    *held -= n;
    if (*held < 0) abort(); /* released more than reserved */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0];
    sn_preprocess p = {(mode >> 1) & 1,
                       (mode >> 2) & 1 ? SN_RESIZE_PILLOW_BILINEAR : SN_RESIZE_OPENCV_BILINEAR,
                       40 + ((mode >> 5) & 3) * 9,
                       (mode >> 3) & 1,
                       32,
                       {0, 0, 0},
                       {1, 1, 1}};
    float *x = malloc(3 * 32 * 32 * sizeof(float));
    if (!x) return 0;
    char err[256];
    /* the request path, as the server runs it (4 MP budget keeps each execution fast) */
    long long held = 0;
    sn_input_opts o = {.max_pixels = 4000000,
                       .mode = (mode >> 4) & 1 ? SN_PRE_EXACT : SN_PRE_FAST,
                       .reserve = reserve,
                       .release = release,
                       .budget_ctx = &held};
    sn_input_info info;
    sn_input_from_bytes(&p, &o, data + 1, size - 1, x, &info, err, sizeof err);
    if (held != 0) abort(); /* every reservation given back */
    /* the whole-image decoder */
    sn_image img;
    if (sn_image_decode(data + 1, size - 1, 4000000, (mode & 1) ? 64 : 0, &img, err, sizeof(err)) ==
        SN_IMG_OK) {
        sn_preprocess_image(&p, img.rgb, img.width, img.height, x, err, sizeof(err));
        sn_image_free(&img);
    }
    free(x);
    return 0;
}
