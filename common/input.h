/* input.h - encoded image bytes -> the model's input tensor. This is the one path from an
 * upload to a tensor: the server's workers, the `shufflenet classify` CLI and the tests all
 * call sn_input_from_bytes, so they agree by construction (docs/request-path.md). */
#ifndef SN_INPUT_H
#define SN_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/image.h"
#include "engine/shufflenet.h"

/* How much of the reference pipeline to reproduce (docs/request-path.md, "The modes"). */
typedef enum {
    SN_PRE_FAST = 0, /* JPEG decoded at the cheapest DCT scale M/8 whose displayed short
                        side still covers the crop (sn_input_scale), then the model's
                        resize + crop */
    SN_PRE_EXACT = 1 /* full-resolution decode as OpenCV does: the reference pixels */
} sn_pre_mode;

typedef struct {
    long long max_pixels; /* pixel budget of the stored image, checked before decoding */
    sn_pre_mode mode;
    /* Memory budget hooks (optional): reserve(ctx, n) before the decoder's buffers exist
     * (0 = granted, else the image is refused with SN_IMG_NOMEM), release(ctx, n) after. */
    int (*reserve)(void *ctx, long long bytes);
    void (*release)(void *ctx, long long bytes);
    void *budget_ctx;
} sn_input_opts;

typedef struct {
    int width, height; /* the image as displayed (EXIF orientation applied), before scaling */
    int scale_num;     /* JPEG DCT scale used: scale_num / 8 (8 = full size; PNG: 8) */
    int dec_x0, dec_y0, dec_x1, dec_y1; /* displayed window decoded, at the scale used */
    long long mem_bytes;                /* decoder + resampler memory reserved for it */
    int own_decoder; /* which of our JPEG decoders ran (jpegdc.h): 0 none (libjpeg, libpng),
                      * 1 the skipping 1/8 one, 2 the full-scale sparse one */
} sn_input_info;

/* Sniff, check the pixel budget, decode only the pixels the crop window reads (at the DCT
 * scale the mode allows), and preprocess as pre says into out ([3][crop][crop] floats).
 * Returns SN_IMG_OK, or the failure's status with err naming the problem. Thread-safe. */
sn_image_status sn_input_from_bytes(const sn_preprocess *pre, const sn_input_opts *o,
                                    const uint8_t *data, size_t len, float *out,
                                    sn_input_info *info, char *err, size_t errlen);

/* The DCT scale numerator (1..8, over 8) mode picks for a displayed w x h image. */
int sn_input_scale(const sn_preprocess *pre, sn_pre_mode mode, int w, int h);
/* "fast" / "exact"; parse returns -1 for anything else. */
const char *sn_pre_mode_name(sn_pre_mode m);
int sn_pre_mode_parse(const char *s, sn_pre_mode *m);

#endif
