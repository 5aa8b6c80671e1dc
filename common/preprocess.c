/* preprocess.c - 8-bit RGB image -> network input tensor as the model's metadata says:
 * resize the short side (OpenCV INTER_LINEAR or Pillow BILINEAR, both reproduced in their
 * fixed-point arithmetic), centre crop with Python's round-half-to-even offsets, channel
 * order, (x - mean) / std. Only the crop window of the resized image is ever computed. */
#include "common/preprocess.h"
#include "engine/util.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

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

/* Python's round((size - crop) / 2) for size >= crop: halves go to the even neighbour. */
static int crop_offset(int size, int crop) {
    int d = size - crop, q = d / 2;
    return (d % 2 == 1 && q % 2 == 1) ? q + 1 : q;
}

/* ---- OpenCV INTER_LINEAR, 8-bit ----------------------------------------------------------
 * cv::resize's fixed-point path: per destination column a source index sx and weights
 * (1 - fx, fx) rounded to 11 bits (INTER_RESIZE_COEF_SCALE = 2048), fx from
 * (dx + 0.5) * scale - 0.5 computed in double and stored as float, clamped at the borders;
 * the horizontal pass keeps ints, the vertical one combines two rows. OpenCV's SIMD vertical
 * kernel (128-bit universal intrinsics, what x86 builds run) does not round like its scalar
 * tail: it shifts each row right by 4, keeps the high 16 bits of the product with the
 * weight, adds, then rounds away 2 bits. It covers the first (width * 3) & ~7 values of
 * every row; the scalar tail rounds (a * b0 + b * b1 + 2^21) >> 22. Both are reproduced. */

#define CV_COEF_BITS  11
#define CV_COEF_SCALE (1 << CV_COEF_BITS)

static void cv_coeff(int d, int ssize, double scale, int *s0, int *s1, int *w0, int *w1) {
    float f = (float)((d + 0.5) * scale - 0.5);
    int s = (int)floorf(f);
    f -= (float)s;
    if (s < 0) f = 0.f, s = 0;
    if (s >= ssize - 1) f = 0.f, s = ssize - 1;
    *s0 = s;
    *s1 = s + 1 < ssize ? s + 1 : s;
    *w0 = (int)lrintf((1.f - f) * CV_COEF_SCALE);
    *w1 = (int)lrintf(f * CV_COEF_SCALE);
}

/* Horizontal pass of one source row into h (cw*3 values). */
static void cv_hrow(const uint8_t *row, const int *xs, int cw, int *h) {
    for (int i = 0; i < cw; i++) {
        const uint8_t *a = row + xs[4 * i], *b = row + xs[4 * i + 1];
        int w0 = xs[4 * i + 2], w1 = xs[4 * i + 3];
        h[3 * i] = a[0] * w0 + b[0] * w1;
        h[3 * i + 1] = a[1] * w0 + b[1] * w1;
        h[3 * i + 2] = a[2] * w0 + b[2] * w1;
    }
}

static int resize_opencv(const uint8_t *src, int sw, int sh, int dw, int dh, int x0, int y0, int cw,
                         int ch, uint8_t *dst) {
    int n = cw * 3;
    int *xs = malloc((size_t)cw * 4 * sizeof *xs); /* byte offsets s0*3, s1*3, w0, w1 */
    int *hrow = malloc((size_t)n * 2 * sizeof *hrow);
    if (!xs || !hrow) {
        free(xs);
        free(hrow);
        return -1;
    }
    double scale_x = 1.0 / ((double)dw / sw), scale_y = 1.0 / ((double)dh / sh);
    for (int i = 0; i < cw; i++) {
        cv_coeff(x0 + i, sw, scale_x, &xs[4 * i], &xs[4 * i + 1], &xs[4 * i + 2], &xs[4 * i + 3]);
        xs[4 * i] *= 3;
        xs[4 * i + 1] *= 3;
    }
    /* Values [0, split) of each output row take the SIMD kernel's rounding, the rest the
     * scalar tail's (see above). */
    int split = ((dw * 3) & ~7) - x0 * 3;
    if (split < 0) split = 0;
    if (split > n) split = n;
    int have[2] = {-1, -1}; /* source row held in hrow[0..n) and hrow[n..2n) */

    for (int j = 0; j < ch; j++) {
        /* vertical weights: sy is not clamped, rows are (as OpenCV does for linear) */
        float fy = (float)((y0 + j + 0.5) * scale_y - 0.5);
        int sy = (int)floorf(fy);
        fy -= (float)sy;
        int b0 = (int)lrintf((1.f - fy) * CV_COEF_SCALE), b1 = (int)lrintf(fy * CV_COEF_SCALE);
        int r0 = clampi(sy, 0, sh - 1), r1 = clampi(sy + 1, 0, sh - 1);
        /* Reuse horizontal rows the previous output row already computed. */
        if (have[0] != r0 && have[1] == r0) {
            memcpy(hrow, hrow + n, (size_t)n * sizeof *hrow);
            have[0] = r0;
        }
        if (have[0] != r0) cv_hrow(src + (size_t)r0 * sw * 3, xs, cw, hrow), have[0] = r0;
        if (have[1] != r1) cv_hrow(src + (size_t)r1 * sw * 3, xs, cw, hrow + n), have[1] = r1;
        const int *h0 = hrow, *h1 = hrow + n;
        uint8_t *out = dst + (size_t)j * n;
        for (int i = 0; i < split; i++) {
            int v = ((((h0[i] >> 4) * b0) >> 16) + (((h1[i] >> 4) * b1) >> 16) + 2) >> 2;
            out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        for (int i = split; i < n; i++) {
            int v = (h0[i] * b0 + h1[i] * b1 + (1 << (2 * CV_COEF_BITS - 1))) >> (2 * CV_COEF_BITS);
            out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
    free(xs);
    free(hrow);
    return 0;
}

/* ---- Pillow BILINEAR -----------------------------------------------------------------------
 * Pillow's Resample.c: a triangle filter whose support widens with the scale when
 * downscaling (antialiasing), normalised weights turned into fixed point with
 * PRECISION_BITS = 32 - 8 - 2 (rounded half away from zero), accumulation from 1 << 21,
 * result >> 22 clamped to 0..255. Horizontal pass first into 8-bit rows, then vertical;
 * a pass whose size does not change is skipped, as Pillow does. */

#define PIL_BITS 22

typedef struct {
    int ksize;
    int *lo, *n; /* per output: first source index and tap count */
    int *k;      /* per output: ksize weights */
} pil_coeffs;

static void pil_free(pil_coeffs *c) {
    free(c->lo);
    free(c->n);
    free(c->k);
}

static double pil_triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Coefficients for outputs [o0, o0 + on) of an in_size -> out_size resize. */
static int pil_coeffs_make(pil_coeffs *c, int in_size, int out_size, int o0, int on) {
    double scale = (double)in_size / out_size, fscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * fscale;
    memset(c, 0, sizeof *c);
    c->ksize = (int)ceil(support) * 2 + 1;
    c->lo = malloc((size_t)on * sizeof *c->lo);
    c->n = malloc((size_t)on * sizeof *c->n);
    c->k = malloc((size_t)on * c->ksize * sizeof *c->k);
    double *w = malloc((size_t)c->ksize * sizeof *w);
    if (!c->lo || !c->n || !c->k || !w) {
        free(w);
        pil_free(c);
        return -1;
    }
    for (int i = 0; i < on; i++) {
        double center = (o0 + i + 0.5) * scale, ss = 1.0 / fscale, sum = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int cnt = hi - lo;
        if (cnt > c->ksize) cnt = c->ksize;
        for (int x = 0; x < cnt; x++) {
            w[x] = pil_triangle((x + lo - center + 0.5) * ss);
            sum += w[x];
        }
        int *k = c->k + (size_t)i * c->ksize;
        for (int x = 0; x < c->ksize; x++) {
            double v = x < cnt && sum != 0.0 ? w[x] / sum : 0.0;
            k[x] = v < 0 ? (int)(-0.5 + v * (1 << PIL_BITS)) : (int)(0.5 + v * (1 << PIL_BITS));
        }
        c->lo[i] = lo;
        c->n[i] = cnt < 0 ? 0 : cnt;
    }
    free(w);
    return 0;
}

static uint8_t pil_clip(int v) {
    v >>= PIL_BITS; /* arithmetic shift: floor, as Pillow's table lookup */
    return (uint8_t)clampi(v, 0, 255);
}

static int resize_pillow(const uint8_t *src, int sw, int sh, int dw, int dh, int x0, int y0, int cw,
                         int ch, uint8_t *dst) {
    int need_h = dw != sw, need_v = dh != sh;
    pil_coeffs cx = {0}, cy = {0};
    uint8_t *tmp = NULL;
    int rc = -1;
    if ((need_h && pil_coeffs_make(&cx, sw, dw, x0, cw)) ||
        (need_v && pil_coeffs_make(&cy, sh, dh, y0, ch)))
        goto done;

    /* Source rows the vertical pass reads: [r0, r1). */
    int r0 = y0, r1 = y0 + ch;
    if (need_v) {
        r0 = INT_MAX, r1 = 0;
        for (int j = 0; j < ch; j++) {
            if (cy.n[j] == 0) continue;
            if (cy.lo[j] < r0) r0 = cy.lo[j];
            if (cy.lo[j] + cy.n[j] > r1) r1 = cy.lo[j] + cy.n[j];
        }
        if (r1 <= r0) r0 = r1 = 0;
    }
    /* Horizontal pass (or a copy of the window's columns) into tmp: rows r0..r1, cw wide. */
    int rows = r1 - r0 > 0 ? r1 - r0 : 1;
    tmp = malloc((size_t)rows * cw * 3);
    if (!tmp) goto done;
    for (int y = r0; y < r1; y++) {
        const uint8_t *in = src + (size_t)y * sw * 3;
        uint8_t *o = tmp + (size_t)(y - r0) * cw * 3;
        if (!need_h) {
            memcpy(o, in + (size_t)x0 * 3, (size_t)cw * 3);
            continue;
        }
        for (int i = 0; i < cw; i++) {
            const int *k = cx.k + (size_t)i * cx.ksize;
            const uint8_t *p = in + (size_t)cx.lo[i] * 3;
            int s0 = 1 << (PIL_BITS - 1), s1 = s0, s2 = s0;
            for (int t = 0; t < cx.n[i]; t++, p += 3) {
                s0 += p[0] * k[t];
                s1 += p[1] * k[t];
                s2 += p[2] * k[t];
            }
            o[i * 3] = pil_clip(s0), o[i * 3 + 1] = pil_clip(s1), o[i * 3 + 2] = pil_clip(s2);
        }
    }
    /* Vertical pass (or a copy of the window's rows). */
    for (int j = 0; j < ch; j++) {
        uint8_t *o = dst + (size_t)j * cw * 3;
        if (!need_v) {
            memcpy(o, tmp + (size_t)j * cw * 3, (size_t)cw * 3);
            continue;
        }
        const int *k = cy.k + (size_t)j * cy.ksize;
        for (int i = 0; i < cw * 3; i++) {
            int s = 1 << (PIL_BITS - 1);
            for (int t = 0; t < cy.n[j]; t++)
                s += tmp[(size_t)(cy.lo[j] + t - r0) * cw * 3 + i] * k[t];
            o[i] = pil_clip(s);
        }
    }
    rc = 0;
done:
    pil_free(&cx);
    pil_free(&cy);
    free(tmp);
    return rc;
}

/* ---- entry point ------------------------------------------------------------------------ */

int sn_preprocess_image(const sn_preprocess *p, const uint8_t *rgb, int w, int h, float *out,
                        char *err, size_t errlen) {
    if (!p || !rgb || !out || w <= 0 || h <= 0) {
        sn_errf(err, errlen, "preprocess: bad arguments");
        return -1;
    }
    int crop = p->crop;
    if (crop <= 0 || p->resize_short < crop) {
        sn_errf(err, errlen, "preprocess: crop %d does not fit resize_short %d", crop,
                p->resize_short);
        return -1;
    }
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] != 0.f) || !isfinite(p->std[c]) || !isfinite(p->mean[c])) {
            sn_errf(err, errlen, "preprocess: bad mean/std for channel %d", c);
            return -1;
        }
    if (p->resize != SN_RESIZE_OPENCV_BILINEAR && p->resize != SN_RESIZE_PILLOW_BILINEAR) {
        sn_errf(err, errlen, "preprocess: unknown resize mode %d", (int)p->resize);
        return -1;
    }
    int rw, rh;
    sn_preprocess_resized_size(p, w, h, &rw, &rh);
    if (rw < crop || rh < crop || rw == INT_MAX || rh == INT_MAX) {
        sn_errf(err, errlen, "preprocess: %dx%d resizes to %dx%d, cannot crop %dx%d", w, h, rw, rh,
                crop, crop);
        return -1;
    }
    int left = crop_offset(rw, crop), top = crop_offset(rh, crop);

    uint8_t *win = malloc((size_t)crop * crop * 3);
    if (!win) {
        sn_errf(err, errlen, "preprocess: out of memory");
        return -1;
    }
    int rc = p->resize == SN_RESIZE_OPENCV_BILINEAR
                 ? resize_opencv(rgb, w, h, rw, rh, left, top, crop, crop, win)
                 : resize_pillow(rgb, w, h, rw, rh, left, top, crop, crop, win);
    if (rc) {
        free(win);
        sn_errf(err, errlen, "preprocess: out of memory");
        return -1;
    }
    size_t plane = (size_t)crop * crop;
    float *o0 = out, *o1 = out + plane, *o2 = out + 2 * plane;
    int s0 = p->rgb ? 0 : 2, s2 = 2 - s0; /* source channel of output planes 0 and 2 */
    if (p->mean[0] == 0 && p->mean[1] == 0 && p->mean[2] == 0 && p->std[0] == 1 && p->std[1] == 1 &&
        p->std[2] == 1) {
        for (size_t i = 0; i < plane; i++) { /* (x - 0) / 1 == x exactly */
            o0[i] = win[i * 3 + s0];
            o1[i] = win[i * 3 + 1];
            o2[i] = win[i * 3 + s2];
        }
    } else {
        float m0 = p->mean[0], m1 = p->mean[1], m2 = p->mean[2];
        float d0 = p->std[0], d1 = p->std[1], d2 = p->std[2];
        for (size_t i = 0; i < plane; i++) {
            o0[i] = ((float)win[i * 3 + s0] - m0) / d0;
            o1[i] = ((float)win[i * 3 + 1] - m1) / d1;
            o2[i] = ((float)win[i * 3 + s2] - m2) / d2;
        }
    }
    free(win);
    return 0;
}
