/* preprocess.c - 8-bit RGB image -> network input tensor as the model's metadata says:
 * resize the short side (OpenCV INTER_LINEAR or Pillow BILINEAR, both reproduced in their
 * fixed-point arithmetic), centre crop with Python's round-half-to-even offsets, channel
 * order, (x - mean) / std. The work is the resampling plan's (common/resize.h): only the
 * pixels the crop window's filters read are touched. */
#include "common/preprocess.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/resize.h"

static int to_int(double v) {
    return v >= (double)INT_MAX ? INT_MAX : v <= 0 ? 0 : (int)v;
}

void sn_preprocess_resized_size(const sn_preprocess *p, int w, int h, int *rw, int *rh) {
    *rw = *rh = 0;
    if (!p || w <= 0 || h <= 0 || p->resize_short <= 0) return;
    int s = w < h ? w : h, l = w < h ? h : w;
    double r = p->resize_short;
    /* megvii: int(R / S * L + 0.5); mmpretrain: int(R * L / S). Python evaluates both in
     * double, left to right, and so does this. */
    int long_side = p->long_round ? to_int(r / s * l + 0.5) : to_int(r * l / s);
    if (w < h)
        *rw = p->resize_short, *rh = long_side;
    else
        *rw = long_side, *rh = p->resize_short;
}

int sn_preprocess_image(const sn_preprocess *p, const uint8_t *rgb, int w, int h, float *out,
                        char *err, size_t errlen) {
    if (!p || !rgb || !out || w <= 0 || h <= 0) {
        if (err && errlen) snprintf(err, errlen, "preprocess: bad arguments");
        return -1;
    }
    sn_rs_plan *pl = sn_rs_plan_new(p, w, h, err, errlen);
    if (!pl) return -1;
    if (sn_rs_begin(pl, out, 1) < 0) {
        sn_rs_plan_free(pl);
        if (err && errlen) snprintf(err, errlen, "preprocess: out of memory");
        return -1;
    }
    int x0, x1, y0, y1;
    sn_rs_plan_box(pl, &x0, &x1, &y0, &y1);
    /* The last row of rgb goes through a padded copy: the plan may read two bytes past the
     * last pixel of a row (resize.h). */
    uint8_t *last = NULL;
    for (int y = y0; y < y1; y++) {
        if (!sn_rs_row_needed(pl, y)) continue;
        const uint8_t *row = rgb + (size_t)y * w * 3;
        if (y == h - 1) {
            if (!(last = malloc((size_t)w * 3 + 4))) {
                sn_rs_plan_free(pl);
                if (err && errlen) snprintf(err, errlen, "preprocess: out of memory");
                return -1;
            }
            memcpy(last, row, (size_t)w * 3);
            row = last;
        }
        sn_rs_feed_row(pl, y, row + (size_t)x0 * 3, 3);
    }
    free(last);
    int rc = sn_rs_finish(pl, out);
    sn_rs_plan_free(pl);
    if (rc < 0 && err && errlen) snprintf(err, errlen, "preprocess: rows missing");
    return rc;
}
