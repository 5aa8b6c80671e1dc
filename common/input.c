/* input.c - sn_input_from_bytes: decode + preprocess, the one implementation. */
#include "common/input.h"

#include "common/preprocess.h"

sn_image_status sn_input_from_bytes(const sn_preprocess *pre, const sn_input_opts *o,
                                    const uint8_t *data, size_t len, float *out,
                                    sn_input_info *info, char *err, size_t errlen) {
    /* A JPEG is decoded at the largest DCT scale 1/2, 1/4 or 1/8 that keeps its short side
     * at least twice the resize target, so the bilinear resize never skips source pixels
     * by more than 2:1 (docs/DESIGN.md, "Preprocessing"). */
    sn_image img;
    sn_image_status st =
        sn_image_decode(data, len, o->max_pixels, 2 * pre->resize_short, &img, err, errlen);
    if (st != SN_IMG_OK) return st;
    if (info) {
        info->width = img.orig_width;
        info->height = img.orig_height;
    }
    int rc = sn_preprocess_image(pre, img.rgb, img.width, img.height, out, err, errlen);
    sn_image_free(&img);
    return rc < 0 ? SN_IMG_NOMEM : SN_IMG_OK;
}
