/* input.h - encoded image bytes -> the model's input tensor. This is the one path from an
 * upload to a tensor: the server's workers, the `shufflenet classify` CLI and the tests all
 * call sn_input_from_bytes, so they agree by construction (docs/DESIGN.md, "Preprocessing"). */
#ifndef SN_INPUT_H
#define SN_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/image.h"
#include "engine/shufflenet.h"

typedef struct {
    long long max_pixels; /* pixel budget of the stored image, checked before decoding */
} sn_input_opts;

typedef struct {
    int width, height; /* the image as displayed (EXIF orientation applied), before scaling */
} sn_input_info;

/* Sniff, check the pixel budget, decode (JPEG DCT-domain downscale as the resize allows),
 * and preprocess as pre says into out ([3][crop][crop] floats). Returns SN_IMG_OK, or the
 * failure's status with err naming the problem. Thread-safe. */
sn_image_status sn_input_from_bytes(const sn_preprocess *pre, const sn_input_opts *o,
                                    const uint8_t *data, size_t len, float *out,
                                    sn_input_info *info, char *err, size_t errlen);

#endif
