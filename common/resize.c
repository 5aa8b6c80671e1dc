/* resize.c - the resampling plan (resize.h): filter taps of the crop window for OpenCV
 * INTER_LINEAR and Pillow BILINEAR, the set of source rows and columns they read, the
 * horizontal pass on each fed line, the vertical pass and normalisation into the tensor.
 *
 * OpenCV: per destination column a source index and weights (1 - fx, fx) rounded to 11 bits,
 * fx from (dx + 0.5) * scale - 0.5 in double stored as float, clamped at the borders; the
 * vertical pass combines two rows. OpenCV's SIMD vertical kernel (what x86 builds run) rounds
 * differently from its scalar tail: it covers the first (resized width * 3) & ~7 interleaved
 * values of every row, the scalar tail the rest; both are reproduced (sn_rs_vline_*).
 * Pillow: a triangle filter whose support widens with the scale when downscaling, weights in
 * 22-bit fixed point, horizontal pass to 8 bits, then vertical; a pass whose size does not
 * change is an identity tap, as Pillow skips it. */
#include "common/resize.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/preprocess.h"
#include "engine/util.h"

#define CV_BITS  11
#define CV_ONE   (1 << CV_BITS)
#define PIL_BITS 22

struct sn_rs_plan {
    int pillow;
    int cw;     /* crop size: output is cw x cw */
    int sw, sh; /* source (displayed) size */
    int bx0, bx1, by0, by1;
    /* horizontal taps per output column i: hn[i] taps (x relative to bx0, weight) */
    int K, *hn, *hx, *hw;
    /* the same taps by source column: entries cst[x]..cst[x+1] of (ci, cwt) */
    int *cst, *ci, *cwt;
    /* needed rows: rank[y - by0] (-1: not read), ys[k] = y - by0 of rank k */
    int ny, *rank, *ys;
    /* vertical taps per output row j: vn[j] taps (rank, weight) */
    int KV, *vn, *vk, *vw;
    int split; /* OpenCV: interleaved values of a crop row under SIMD rounding */
    int32_t *cx0, *cx1, *cw0, *cw1; /* OpenCV: the taps as planes, for the line kernels */
    int32_t *ps, *w01;              /* OpenCV: the taps as pixel pairs (sn_rs_pairs) */
    int pairs;                      /* ps/w01 hold every output's taps */
    int32_t *h;                     /* [ny][3][cw] horizontal pass results */
    int zeroed;                     /* h cleared (feeding by columns) */
    /* Streaming (OpenCV, rows fed in order, sn_rs_begin): h is a ring of 2 rows and each
     * output row is written as soon as its two source rows are in, so the horizontal pass
     * never leaves the L1/L2 cache the network needs next. */
    int order;  /* +1 rows fed top-down, -1 bottom-up, 0 any (all rows kept) */
    int next_j; /* next output row to write when streaming */
    float *out;
    int src_ch[3];
    float mean[3], std[3];
    size_t bytes;
};

static int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Python's round((size - crop) / 2) for size >= crop: halves go to the even neighbour. */
static int crop_offset(int size, int crop) {
    int d = size - crop, q = d / 2;
    return (d % 2 == 1 && q % 2 == 1) ? q + 1 : q;
}

static void cv_coeff(int d, int ssize, double scale, int *s0, int *s1, int *w0, int *w1) {
    float f = (float)((d + 0.5) * scale - 0.5);
    int s = (int)floorf(f);
    f -= (float)s;
    if (s < 0) f = 0.f, s = 0;
    if (s >= ssize - 1) f = 0.f, s = ssize - 1;
    *s0 = s;
    *s1 = s + 1 < ssize ? s + 1 : s;
    *w0 = (int)lrintf((1.f - f) * CV_ONE);
    *w1 = (int)lrintf(f * CV_ONE);
}

static double pil_triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Pillow's coefficients for outputs [o0, o0 + on) of in_size -> out_size: first source index
 * lo[i], count n[i], weights k[i * ksize + t]. Identity taps when the size does not change. */
static int pil_taps(int in_size, int out_size, int o0, int on, int *ksize, int **lo, int **n,
                    int **k) {
    int same = in_size == out_size;
    double scale = (double)in_size / out_size, fscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * fscale;
    int K = same ? 1 : (int)ceil(support) * 2 + 1;
    *ksize = K;
    *lo = malloc((size_t)on * sizeof **lo);
    *n = malloc((size_t)on * sizeof **n);
    *k = calloc((size_t)on * K, sizeof **k);
    double *w = malloc((size_t)K * sizeof *w);
    if (!*lo || !*n || !*k || !w) {
        free(w);
        return -1;
    }
    for (int i = 0; i < on; i++) {
        int *ki = *k + (size_t)i * K;
        if (same) {
            (*lo)[i] = o0 + i, (*n)[i] = 1, ki[0] = 1 << PIL_BITS;
            continue;
        }
        double center = (o0 + i + 0.5) * scale, ss = 1.0 / fscale, sum = 0.0;
        int l = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (l < 0) l = 0;
        if (hi > in_size) hi = in_size;
        int cnt = hi - l;
        if (cnt > K) cnt = K;
        if (cnt < 0) cnt = 0;
        for (int x = 0; x < cnt; x++) {
            w[x] = pil_triangle((x + l - center + 0.5) * ss);
            sum += w[x];
        }
        for (int x = 0; x < cnt; x++) {
            double v = sum != 0.0 ? w[x] / sum : 0.0;
            ki[x] = v < 0 ? (int)(-0.5 + v * (1 << PIL_BITS)) : (int)(0.5 + v * (1 << PIL_BITS));
        }
        (*lo)[i] = l;
        (*n)[i] = cnt;
    }
    free(w);
    return 0;
}

void sn_rs_plan_free(sn_rs_plan *pl) {
    if (!pl) return;
    free(pl->hn), free(pl->hx), free(pl->hw);
    free(pl->cst), free(pl->ci), free(pl->cwt);
    free(pl->rank), free(pl->ys);
    free(pl->vn), free(pl->vk), free(pl->vw);
    free(pl->h);
    free(pl->cx0);
    free(pl);
}

size_t sn_rs_plan_bytes(const sn_rs_plan *pl) {
    return pl ? pl->bytes : 0;
}

/* Taps of both passes in source coordinates; fills hn/hx/hw (x absolute for now) and
 * vn/vk/vw (y absolute for now). */
static int make_taps(sn_rs_plan *pl, const sn_preprocess *p, int rw, int rh, int left, int top) {
    int cw = pl->cw;
    if (!pl->pillow) {
        pl->K = pl->KV = 2;
        pl->hn = malloc((size_t)cw * sizeof(int));
        pl->hx = malloc((size_t)cw * 2 * sizeof(int));
        pl->hw = malloc((size_t)cw * 2 * sizeof(int));
        pl->vn = malloc((size_t)cw * sizeof(int));
        pl->vk = malloc((size_t)cw * 2 * sizeof(int));
        pl->vw = malloc((size_t)cw * 2 * sizeof(int));
        if (!pl->hn || !pl->hx || !pl->hw || !pl->vn || !pl->vk || !pl->vw) return -1;
        double scale_x = 1.0 / ((double)rw / pl->sw), scale_y = 1.0 / ((double)rh / pl->sh);
        for (int i = 0; i < cw; i++) {
            pl->hn[i] = 2;
            cv_coeff(left + i, pl->sw, scale_x, &pl->hx[2 * i], &pl->hx[2 * i + 1], &pl->hw[2 * i],
                     &pl->hw[2 * i + 1]);
        }
        for (int j = 0; j < cw; j++) {
            /* sy is not clamped for the weights, the rows are (as OpenCV does for linear) */
            float fy = (float)((top + j + 0.5) * scale_y - 0.5);
            int sy = (int)floorf(fy);
            fy -= (float)sy;
            pl->vn[j] = 2;
            pl->vw[2 * j] = (int)lrintf((1.f - fy) * CV_ONE);
            pl->vw[2 * j + 1] = (int)lrintf(fy * CV_ONE);
            pl->vk[2 * j] = clampi(sy, 0, pl->sh - 1);
            pl->vk[2 * j + 1] = clampi(sy + 1, 0, pl->sh - 1);
        }
        int split = ((rw * 3) & ~7) - left * 3;
        pl->split = split < 0 ? 0 : split > cw * 3 ? cw * 3 : split;
        (void)p;
        return 0;
    }
    int *lo = NULL, *n = NULL, *k = NULL;
    if (pil_taps(pl->sw, rw, left, cw, &pl->K, &lo, &n, &k)) goto fail;
    pl->hn = n, pl->hw = k;
    pl->hx = malloc((size_t)cw * pl->K * sizeof(int));
    if (!pl->hx) goto fail;
    for (int i = 0; i < cw; i++)
        for (int t = 0; t < pl->K; t++)
            pl->hx[i * pl->K + t] = clampi(lo[i] + (t < n[i] ? t : 0), 0, pl->sw - 1);
    free(lo);
    lo = NULL;
    if (pil_taps(pl->sh, rh, top, cw, &pl->KV, &lo, &pl->vn, &pl->vw)) goto fail;
    pl->vk = malloc((size_t)cw * pl->KV * sizeof(int));
    if (!pl->vk) goto fail;
    for (int j = 0; j < cw; j++)
        for (int t = 0; t < pl->KV; t++)
            pl->vk[j * pl->KV + t] = clampi(lo[j] + (t < pl->vn[j] ? t : 0), 0, pl->sh - 1);
    free(lo);
    return 0;
fail:
    free(lo);
    return -1;
}

sn_rs_plan *sn_rs_plan_new(const sn_preprocess *p, int w, int h, char *err, size_t errlen) {
    if (!p || w <= 0 || h <= 0) {
        sn_errf(err, errlen, "preprocess: bad arguments");
        return NULL;
    }
    int crop = p->crop;
    if (crop <= 0 || p->resize_short < crop) {
        sn_errf(err, errlen, "preprocess: crop %d does not fit resize_short %d", crop,
                p->resize_short);
        return NULL;
    }
    for (int c = 0; c < 3; c++)
        if (!(p->std[c] != 0.f) || !isfinite(p->std[c]) || !isfinite(p->mean[c])) {
            sn_errf(err, errlen, "preprocess: bad mean/std for channel %d", c);
            return NULL;
        }
    if (p->resize != SN_RESIZE_OPENCV_BILINEAR && p->resize != SN_RESIZE_PILLOW_BILINEAR) {
        sn_errf(err, errlen, "preprocess: unknown resize mode %d", (int)p->resize);
        return NULL;
    }
    int rw, rh;
    sn_preprocess_resized_size(p, w, h, &rw, &rh);
    if (rw < crop || rh < crop || rw == INT_MAX || rh == INT_MAX) {
        sn_errf(err, errlen, "preprocess: %dx%d resizes to %dx%d, cannot crop %dx%d", w, h, rw, rh,
                crop, crop);
        return NULL;
    }
    sn_rs_plan *pl = calloc(1, sizeof *pl);
    if (!pl) goto oom;
    pl->pillow = p->resize == SN_RESIZE_PILLOW_BILINEAR;
    pl->cw = crop;
    pl->sw = w, pl->sh = h;
    pl->src_ch[0] = p->rgb ? 0 : 2, pl->src_ch[1] = 1, pl->src_ch[2] = p->rgb ? 2 : 0;
    for (int c = 0; c < 3; c++) pl->mean[c] = p->mean[c], pl->std[c] = p->std[c];
    if (make_taps(pl, p, rw, rh, crop_offset(rw, crop), crop_offset(rh, crop))) goto oom;

    /* bounding boxes of the taps (zero-weight Pillow padding taps repeat a real one) */
    int cw = crop, K = pl->K, KV = pl->KV;
    pl->bx0 = INT_MAX, pl->bx1 = 0, pl->by0 = INT_MAX, pl->by1 = 0;
    for (int i = 0; i < cw * K; i++) {
        if (pl->hx[i] < pl->bx0) pl->bx0 = pl->hx[i];
        if (pl->hx[i] + 1 > pl->bx1) pl->bx1 = pl->hx[i] + 1;
    }
    for (int j = 0; j < cw * KV; j++) {
        if (pl->vk[j] < pl->by0) pl->by0 = pl->vk[j];
        if (pl->vk[j] + 1 > pl->by1) pl->by1 = pl->vk[j] + 1;
    }
    for (int i = 0; i < cw * K; i++) pl->hx[i] -= pl->bx0;
    int bw = pl->bx1 - pl->bx0, bh = pl->by1 - pl->by0;

    /* taps by source column, for feeding by columns; zero-count taps are skipped */
    pl->cst = calloc((size_t)bw + 1, sizeof(int));
    pl->ci = malloc((size_t)cw * K * sizeof(int));
    pl->cwt = malloc((size_t)cw * K * sizeof(int));
    pl->rank = malloc((size_t)bh * sizeof(int));
    pl->ys = malloc((size_t)bh * sizeof(int));
    if (!pl->cst || !pl->ci || !pl->cwt || !pl->rank || !pl->ys) goto oom;
    for (int i = 0; i < cw; i++)
        for (int t = 0; t < pl->hn[i]; t++) pl->cst[pl->hx[i * K + t] + 1]++;
    for (int x = 0; x < bw; x++) pl->cst[x + 1] += pl->cst[x];
    int *fill = malloc((size_t)bw * sizeof(int));
    if (!fill) goto oom;
    memcpy(fill, pl->cst, (size_t)bw * sizeof(int));
    for (int i = 0; i < cw; i++)
        for (int t = 0; t < pl->hn[i]; t++) {
            int x = pl->hx[i * K + t], e = fill[x]++;
            pl->ci[e] = i, pl->cwt[e] = pl->hw[i * K + t];
        }
    free(fill);

    /* rows read by the vertical taps, ranked top to bottom */
    for (int y = 0; y < bh; y++) pl->rank[y] = -1;
    for (int j = 0; j < cw; j++)
        for (int t = 0; t < pl->vn[j]; t++) pl->rank[pl->vk[j * KV + t] - pl->by0] = 0;
    for (int y = 0; y < bh; y++)
        if (pl->rank[y] >= 0) pl->ys[pl->ny] = y, pl->rank[y] = pl->ny++;
    for (int j = 0; j < cw * KV; j++) pl->vk[j] = pl->rank[pl->vk[j] - pl->by0];

    if (!pl->pillow) {
        pl->cx0 = malloc((size_t)cw * 6 * sizeof(int32_t));
        if (!pl->cx0) goto oom;
        pl->cx1 = pl->cx0 + cw, pl->cw0 = pl->cx0 + 2 * cw, pl->cw1 = pl->cx0 + 3 * cw;
        pl->ps = pl->cx0 + 4 * cw, pl->w01 = pl->cx0 + 5 * cw;
        for (int i = 0; i < cw; i++) {
            pl->cx0[i] = pl->hx[2 * i], pl->cx1[i] = pl->hx[2 * i + 1];
            pl->cw0[i] = pl->hw[2 * i], pl->cw1[i] = pl->hw[2 * i + 1];
        }
        pl->pairs = sn_rs_pairs(pl->cx0, pl->cx1, pl->cw0, pl->cw1, cw, bw, pl->ps, pl->w01);
    }
    size_t hbytes = (size_t)pl->ny * 3 * cw * sizeof(int32_t);
    /* hn, vn; hx, hw, ci, cwt; vk, vw; OpenCV's six tap planes (cx0 .. w01) */
    pl->bytes = sizeof *pl + hbytes + (size_t)(bw + bh * 2) * sizeof(int) +
                (size_t)cw * (2 + K * 4 + KV * 2 + (pl->pillow ? 0 : 6)) * sizeof(int);
    return pl;
oom:
    sn_rs_plan_free(pl);
    sn_errf(err, errlen, "preprocess: out of memory");
    return NULL;
}

void sn_rs_plan_box(const sn_rs_plan *pl, int *x0, int *x1, int *y0, int *y1) {
    *x0 = pl->bx0, *x1 = pl->bx1, *y0 = pl->by0, *y1 = pl->by1;
}

int sn_rs_row_needed(const sn_rs_plan *pl, int y) {
    return y >= pl->by0 && y < pl->by1 && pl->rank[y - pl->by0] >= 0;
}

int sn_rs_col_needed(const sn_rs_plan *pl, int x) {
    return x >= pl->bx0 && x < pl->bx1 && pl->cst[x - pl->bx0 + 1] > pl->cst[x - pl->bx0];
}

int sn_rs_pairs(const int32_t *x0, const int32_t *x1, const int32_t *w0, const int32_t *w1, int n,
                int bw, int32_t *ps, int32_t *w01) {
    for (int i = 0; i < n; i++) {
        int a = x0[i], b = x1[i], lo = w0[i], hi = w1[i];
        if (lo < 0 || lo > 0x7fff || hi < 0 || hi > 0x7fff || a < 0 || a >= bw) return 0;
        if (b == a + 1 && b < bw) /* the usual case */
            ps[i] = a, w01[i] = lo | hi << 16;
        else if (hi == 0 && a >= 1) /* x1 unused: the pair ending at x0 */
            ps[i] = a - 1, w01[i] = lo << 16;
        else if (hi == 0 && a + 1 < bw) /* the pair starting at x0 */
            ps[i] = a, w01[i] = lo;
        else
            return 0;
    }
    return 1;
}

void sn_rs_hpair_scalar(const uint8_t *px, const int32_t *ps, const int32_t *w01, int n,
                        int32_t *hr, int32_t *hg, int32_t *hb) {
    for (int i = 0; i < n; i++) {
        const uint8_t *a = px + (ptrdiff_t)ps[i] * 3;
        int32_t lo = w01[i] & 0xffff, hi = w01[i] >> 16;
        hr[i] = a[0] * lo + a[3] * hi;
        hg[i] = a[1] * lo + a[4] * hi;
        hb[i] = a[2] * lo + a[5] * hi;
    }
}

void sn_rs_hline_scalar(const uint8_t *restrict px, ptrdiff_t xstep, const int32_t *restrict x0,
                        const int32_t *restrict x1, const int32_t *restrict w0,
                        const int32_t *restrict w1, int n, int32_t *restrict hr,
                        int32_t *restrict hg, int32_t *restrict hb) {
    for (int i = 0; i < n; i++) {
        const uint8_t *a = px + x0[i] * xstep, *b = px + x1[i] * xstep;
        hr[i] = a[0] * w0[i] + b[0] * w1[i];
        hg[i] = a[1] * w0[i] + b[1] * w1[i];
        hb[i] = a[2] * w0[i] + b[2] * w1[i];
    }
}

/* The OpenCV vertical pass of output row j into the tensor, from rows h0 and h1. */
static void cv_emit(sn_rs_plan *pl, int j, const int32_t *h0, const int32_t *h1, float *out) {
    int cw = pl->cw;
    size_t plane = (size_t)cw * cw;
    void (*vline)(const int32_t *, const int32_t *, int, int, int, int, float, float, float *) =
        sn_rs_have_avx2() ? sn_rs_vline_avx2 : sn_rs_vline_scalar;
    for (int p = 0; p < 3; p++) {
        int c = pl->src_ch[p];
        /* interleaved value 3 * i + c is under SIMD rounding when < split */
        int sc = pl->split > c ? (pl->split - c + 2) / 3 : 0;
        vline(h0 + (size_t)c * cw, h1 + (size_t)c * cw, cw, sc, pl->vw[2 * j], pl->vw[2 * j + 1],
              pl->mean[p], pl->std[p], out + p * plane + (size_t)j * cw);
    }
}

int sn_rs_begin(sn_rs_plan *pl, float *out, int order) {
    pl->order = !pl->pillow && out ? order : 0;
    pl->out = out;
    size_t rows = pl->order ? 2 : (size_t)pl->ny;
    pl->h = malloc(rows * 3 * pl->cw * sizeof(int32_t) + 1);
    pl->next_j = pl->order < 0 ? pl->cw - 1 : 0;
    return pl->h ? 0 : -1;
}

/* Row slot of rank k in h. */
static int32_t *hrow(sn_rs_plan *pl, int k) {
    return pl->h + (size_t)(pl->order ? (k & 1) : k) * 3 * pl->cw;
}

void sn_rs_feed_row(sn_rs_plan *pl, int y, const uint8_t *px, ptrdiff_t xstep) {
    int cw = pl->cw, K = pl->K, k = pl->rank[y - pl->by0];
    int32_t *h = hrow(pl, k);
    int32_t *hr = h, *hg = h + cw, *hb = h + 2 * cw;
    const int *tx = pl->hx, *tw = pl->hw;
    if (!pl->pillow) {
        if (!sn_rs_have_avx2())
            sn_rs_hline_scalar(px, xstep, pl->cx0, pl->cx1, pl->cw0, pl->cw1, cw, hr, hg, hb);
        else if (xstep == 3 && pl->pairs) /* packed RGB, rows fed left to right */
            sn_rs_hpair_avx2(px, pl->ps, pl->w01, cw, hr, hg, hb);
        else
            sn_rs_hline_avx2(px, xstep, pl->cx0, pl->cx1, pl->cw0, pl->cw1, cw, hr, hg, hb);
        /* Streaming: write every output row whose two rows (ranks k-1..k top-down,
         * k..k+1 bottom-up) are in. */
        if (pl->order > 0)
            for (int j; (j = pl->next_j) < cw && pl->vk[2 * j + 1] <= k && pl->vk[2 * j] <= k;
                 pl->next_j++)
                cv_emit(pl, j, hrow(pl, pl->vk[2 * j]), hrow(pl, pl->vk[2 * j + 1]), pl->out);
        else if (pl->order < 0)
            for (int j; (j = pl->next_j) >= 0 && pl->vk[2 * j] >= k && pl->vk[2 * j + 1] >= k;
                 pl->next_j--)
                cv_emit(pl, j, hrow(pl, pl->vk[2 * j]), hrow(pl, pl->vk[2 * j + 1]), pl->out);
        return;
    }
    for (int i = 0; i < cw; i++) {
        int32_t s0 = 0, s1 = 0, s2 = 0;
        for (int t = 0; t < pl->hn[i]; t++) {
            const uint8_t *q = px + tx[i * K + t] * xstep;
            int w = tw[i * K + t];
            s0 += q[0] * w, s1 += q[1] * w, s2 += q[2] * w;
        }
        hr[i] = s0, hg[i] = s1, hb[i] = s2;
    }
}

void sn_rs_feed_col(sn_rs_plan *pl, int x, const uint8_t *py, ptrdiff_t ystep) {
    if (!pl->zeroed) { /* columns accumulate; rows overwrite and need no clearing */
        memset(pl->h, 0, (size_t)pl->ny * 3 * pl->cw * sizeof(int32_t));
        pl->zeroed = 1;
    }
    int cw = pl->cw, e0 = pl->cst[x - pl->bx0], e1 = pl->cst[x - pl->bx0 + 1];
    for (int k = 0; k < pl->ny; k++) {
        const uint8_t *q = py + pl->ys[k] * ystep;
        int32_t *h = pl->h + (size_t)k * 3 * cw;
        for (int e = e0; e < e1; e++) {
            int i = pl->ci[e], w = pl->cwt[e];
            h[i] += q[0] * w;
            h[cw + i] += q[1] * w;
            h[2 * cw + i] += q[2] * w;
        }
    }
}

void sn_rs_vline_scalar(const int32_t *a, const int32_t *b, int n, int split, int w0, int w1,
                        float mean, float std, float *out) {
    int i = 0;
    for (; i < split && i < n; i++) {
        int v = ((((a[i] >> 4) * w0) >> 16) + (((b[i] >> 4) * w1) >> 16) + 2) >> 2;
        out[i] = ((float)clampi(v, 0, 255) - mean) / std;
    }
    for (; i < n; i++) {
        int v = (a[i] * w0 + b[i] * w1 + (1 << (2 * CV_BITS - 1))) >> (2 * CV_BITS);
        out[i] = ((float)clampi(v, 0, 255) - mean) / std;
    }
}

static _Atomic int have = -1;

void sn_rs_reset_isa(void) {
    have = -1;
}

#if defined(__x86_64__) || defined(__i386__)
int sn_rs_have_avx2(void) {
    if (have < 0) {
        const char *no = getenv("SN_NO_AVX2");
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx2") && !(no && *no && *no != '0');
    }
    return have;
}
#else
/* Other architectures (ARM64) build without resize_avx2.c: the scalar passes only. */
int sn_rs_have_avx2(void) {
    return 0;
}

void sn_rs_vline_avx2(const int32_t *a, const int32_t *b, int n, int split, int w0, int w1,
                      float mean, float std, float *out) {
    sn_rs_vline_scalar(a, b, n, split, w0, w1, mean, std, out);
}

void sn_rs_hline_avx2(const uint8_t *px, ptrdiff_t xstep, const int32_t *x0, const int32_t *x1,
                      const int32_t *w0, const int32_t *w1, int n, int32_t *hr, int32_t *hg,
                      int32_t *hb) {
    sn_rs_hline_scalar(px, xstep, x0, x1, w0, w1, n, hr, hg, hb);
}

void sn_rs_hpair_avx2(const uint8_t *px, const int32_t *ps, const int32_t *w01, int n, int32_t *hr,
                      int32_t *hg, int32_t *hb) {
    sn_rs_hpair_scalar(px, ps, w01, n, hr, hg, hb);
}
#endif

static uint8_t pil_clip(int32_t v) {
    v >>= PIL_BITS; /* arithmetic shift: floor, as Pillow's table lookup */
    return (uint8_t)clampi(v, 0, 255);
}

int sn_rs_finish(sn_rs_plan *pl, float *out) {
    int cw = pl->cw;
    size_t plane = (size_t)cw * cw;
    if (pl->order) /* streamed: every row must have been written */
        return pl->out == out && (pl->order > 0 ? pl->next_j == cw : pl->next_j == -1) ? 0 : -1;
    if (!pl->pillow) {
        for (int j = 0; j < cw; j++)
            cv_emit(pl, j, hrow(pl, pl->vk[2 * j]), hrow(pl, pl->vk[2 * j + 1]), out);
        return 0;
    }
    /* Pillow: the horizontal pass ends in 8 bits, then the vertical taps. */
    size_t n = (size_t)pl->ny * 3 * cw;
    for (size_t i = 0; i < n; i++) pl->h[i] = pil_clip(pl->h[i] + (1 << (PIL_BITS - 1)));
    int KV = pl->KV;
    for (int j = 0; j < cw; j++)
        for (int p = 0; p < 3; p++) {
            int c = pl->src_ch[p];
            float *o = out + p * plane + (size_t)j * cw;
            for (int i = 0; i < cw; i++) {
                int32_t s = 1 << (PIL_BITS - 1);
                for (int t = 0; t < pl->vn[j]; t++)
                    s += pl->h[((size_t)pl->vk[j * KV + t] * 3 + c) * cw + i] * pl->vw[j * KV + t];
                o[i] = ((float)pil_clip(s) - pl->mean[p]) / pl->std[p];
            }
        }
    return 0;
}
