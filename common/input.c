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

int sn_input_scale(const sn_preprocess *pre, sn_pre_mode mode, int w, int h) {
    if (mode == SN_PRE_EXACT || !pre || pre->resize_short <= 0) return 8;
    long long s = w < h ? w : h;
    for (int m = 1; m < 8; m++)
        if ((s * m + 7) / 8 >= pre->resize_short) return m;
    return 8;
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
    st = sn_stream_run(s, m, &k, err, errlen);
    if (st == SN_IMG_OK) sn_rs_finish(pl, out);
    sn_rs_plan_free(pl);
    sn_stream_close(s);
    if (o->release) o->release(o->budget_ctx, mem);
    if (info) {
        info->width = si.width;
        info->height = si.height;
        info->scale_num = m;
        info->dec_x0 = k.x0, info->dec_x1 = k.x1, info->dec_y0 = k.y0, info->dec_y1 = k.y1;
        info->mem_bytes = mem;
    }
    return st;
}
