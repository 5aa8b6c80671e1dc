/* image.h - decoding uploaded images (JPEG via libjpeg-turbo, PNG via libpng) into 8-bit
 * RGB pixels, with EXIF orientation applied and a pixel budget checked from the header
 * before anything large is allocated. Shared by the server and the `shufflenet` CLI. */
#ifndef SN_IMAGE_H
#define SN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SN_IMG_OK = 0,
    SN_IMG_EMPTY,       /* zero bytes */
    SN_IMG_UNSUPPORTED, /* not JPEG or PNG (GIF, text, ...) -> HTTP 415 */
    SN_IMG_INVALID,     /* JPEG/PNG but corrupt or truncated -> HTTP 400 */
    SN_IMG_TOO_LARGE,   /* width*height over the pixel budget -> HTTP 413 */
    SN_IMG_NOMEM        /* allocation failed -> HTTP 503 */
} sn_image_status;

typedef struct {
    int width, height; /* of rgb[], after orientation and any DCT downscale */
    int orig_width;    /* as displayed (after EXIF orientation), before downscale */
    int orig_height;
    uint8_t *rgb;    /* width*height*3 bytes, R,G,B interleaved, rows top to bottom */
    int orientation; /* EXIF orientation that was applied (1 = none), 1..8 */
    int dct_denom;   /* JPEG DCT-domain downscale used: 1 (none), 2, 4 or 8 */
} sn_image;

typedef enum {
    SN_FMT_UNKNOWN = 0,
    SN_FMT_JPEG,
    SN_FMT_PNG,
    SN_FMT_GIF,
    SN_FMT_OTHER_IMAGE
} sn_image_format;

/* Format from magic bytes; never trusts a Content-Type. */
sn_image_format sn_image_sniff(const uint8_t *data, size_t len);

/* Decode data into out. max_pixels: reject (SN_IMG_TOO_LARGE) when width*height of the
 * stored image exceeds it, decided from the header before decoding (<= 0: no budget, but
 * sides over 65535 are still refused). min_short: when > 0, a JPEG is downscaled in the DCT
 * domain by the largest of 1/2, 1/4, 1/8 that keeps the short side of the result
 * >= min_short; 0 decodes at full size. Truncated or corrupt data (also what libjpeg only
 * warns about) is SN_IMG_INVALID. On failure out is zeroed and err gets one line; on
 * success free out with sn_image_free(). Thread-safe (no shared state). */
sn_image_status sn_image_decode(const uint8_t *data, size_t len, long long max_pixels,
                                int min_short, sn_image *out, char *err, size_t errlen);
void sn_image_free(sn_image *img);
const char *sn_image_status_name(sn_image_status s);

#endif
