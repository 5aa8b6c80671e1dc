/* input.c - sn_input_from_bytes: open the image (header), pick the DCT scale the mode allows,
 * plan the resize + crop at that size, reserve the memory, decode only the lines the plan
 * reads straight into it, and write the tensor. The one implementation. */
#include "common/input.h"

#include <string.h>

#include "common/resize.h"
#include "common/stream.h"
#include "engine/util.h"

const char *sn_pre_mode_name(sn_pre_mode m) {
    return m == SN_PRE_EXACT ? "exact" : "fast";
}

int sn_pre_mode_parse(const char *s, sn_pre_mode *m) {
    if (s && strcmp(s, "fast") == 0)
        *m = SN_PRE_FAST;
    else if (s && strcmp(s, "exact") == 0)
        *m = SN_PRE_EXACT;
    else
        return -1;
    return 0;
}

/* Decode cost of scale m/8 relative to full size, measured with libjpeg-turbo 2.1.5
 * (Debian bookworm) on 640x480 and 4000x3000 JPEGs, AMD EPYC (docs/request-path.md): only
 * 1/8, 2/8, 4/8 and 8/8 have SIMD IDCTs; 3/8, 5/8, 6/8 and 7/8 run C IDCTs (and upsample
 * chroma through larger ones) and cost more than a full-size decode. */
static const double scale_cost[9] = {0, 0.58, 0.67, 0.78, 0.72, 1.10, 1.30, 1.87, 1.00};

int sn_input_scale(const sn_preprocess *pre, sn_pre_mode mode, int w, int h) {
    if (mode == SN_PRE_EXACT || !pre || pre->crop <= 0) return 8;
    /* fast: of the scales whose displayed short side still covers the crop (so the resize
     * never stretches fewer decoded pixels than the crop has over it by more than
     * resize_short / crop), the cheapest to decode. */
    long long s = w < h ? w : h;
    int best = 8;
    for (int m = 1; m < 8; m++)
        if ((s * m + 7) / 8 >= pre->crop && scale_cost[m] < scale_cost[best]) best = m;
    return best;
}

/* The plan as a stream sink. */
static int row_needed(void *c, int y) {
    return sn_rs_row_needed(c, y);
}
static int col_needed(void *c, int x) {
    return sn_rs_col_needed(c, x);
}
static void feed_row(void *c, int y, const uint8_t *px, ptrdiff_t xs) {
    sn_rs_feed_row(c, y, px, xs);
}
static void feed_col(void *c, int x, const uint8_t *py, ptrdiff_t ys) {
    sn_rs_feed_col(c, x, py, ys);
}

sn_image_status sn_input_from_bytes(const sn_preprocess *pre, const sn_input_opts *o,
                                    const uint8_t *data, size_t len, float *out,
                                    sn_input_info *info, char *err, size_t errlen) {
    sn_stream *s;
    sn_stream_info si;
    sn_image_status st = sn_stream_open(data, len, o->max_pixels, &s, &si, err, errlen);
    if (st != SN_IMG_OK) return st;
    int m = si.scalable ? sn_input_scale(pre, o->mode, si.width, si.height) : 8;
    int w, h;
    sn_stream_scaled_size(s, m, &w, &h);
    sn_rs_plan *pl = sn_rs_plan_new(pre, w, h, err, errlen);
    if (!pl) {
        sn_stream_close(s);
        return SN_IMG_NOMEM;
    }
    sn_sink k = {0, 0, 0, 0, pl, row_needed, col_needed, feed_row, feed_col};
    sn_rs_plan_box(pl, &k.x0, &k.x1, &k.y0, &k.y1);
    long long mem = (long long)(sn_stream_mem_estimate(s, m, &k) + sn_rs_plan_bytes(pl));
    if (o->reserve && o->reserve(o->budget_ctx, mem) != 0) {
        sn_errf(err, errlen, "over the memory budget: decoding this %dx%d image needs %lld bytes",
                si.width, si.height, mem);
        sn_rs_plan_free(pl);
        sn_stream_close(s);
        return SN_IMG_NOMEM;
    }
    /* rows come top-down for EXIF orientations 1-2, bottom-up for 3-4; 5-8 feed columns */
    int order = si.orientation <= 2 ? 1 : si.orientation <= 4 ? -1 : 0;
    if (sn_rs_begin(pl, out, order) < 0) {
        sn_errf(err, errlen, "out of memory");
        st = SN_IMG_NOMEM;
    } else {
        st = sn_stream_run(s, m, &k, err, errlen);
    }
    if (st == SN_IMG_OK && sn_rs_finish(pl, out) < 0) {
        sn_errf(err, errlen, "decoder did not deliver every row"); /* a bug, not bad input */
        st = SN_IMG_INVALID;
    }
    int own = sn_stream_used_dc(s) ? 1 : sn_stream_used_full_scale(s) ? 2 : 0;
    sn_rs_plan_free(pl);
    sn_stream_close(s);
    if (o->release) o->release(o->budget_ctx, mem);
    if (info) {
        info->own_decoder = own;
        info->width = si.width;
        info->height = si.height;
        info->scale_num = m;
        info->dec_x0 = k.x0, info->dec_x1 = k.x1, info->dec_y0 = k.y0, info->dec_y1 = k.y1;
        info->mem_bytes = mem;
    }
    return st;
}
