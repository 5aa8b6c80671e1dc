/* kernels_scalar.c - plain C kernels: the reference every SIMD kernel is tested against, and
 * the fallback on CPUs without AVX2. */
#include "engine/kernels.h"

#include <string.h>

static size_t pw_packed_size(int M, int K) {
    return (size_t)M * (size_t)K;
}

static void pack_pw(const float *w, int M, int K, float *packed) {
    memcpy(packed, w, (size_t)M * (size_t)K * sizeof(float));
}

static void pw(const sn_pw_args *a) {
    for (int m = 0; m < a->M; m++) {
        float *o = a->out + (size_t)m * a->out_ld;
        const float *r = a->res ? a->res + (size_t)m * a->res_ld : NULL;
        const float *wm = a->w + (size_t)m * a->K;
        for (size_t p = 0; p < a->P; p++) {
            float s = a->bias[m];
            for (int k = 0; k < a->K; k++) s += wm[k] * a->in[(size_t)k * a->in_ld + p];
            if (r) s += r[p];
            if (a->relu && s < 0) s = 0;
            o[p] = s;
        }
    }
}

static void dw(const sn_dw_args *a) {
    const int H = a->H, W = a->W, s = a->stride;
    for (int c = 0; c < a->C; c++) {
        const float *k = a->w + 9 * c;
        int oc = a->dst ? a->dst[c] : c;
        for (int i = 0; i < a->n; i++) {
            const float *src = a->in + (size_t)c * a->in_ld + (size_t)i * H * W;
            float *dstp = a->out + (size_t)oc * a->out_ld + (size_t)i * a->Ho * a->Wo;
            for (int y = 0; y < a->Ho; y++)
                for (int x = 0; x < a->Wo; x++) {
                    float acc = a->bias[c];
                    for (int dy = 0; dy < 3; dy++) {
                        int iy = y * s - 1 + dy;
                        if (iy < 0 || iy >= H) continue;
                        for (int dx = 0; dx < 3; dx++) {
                            int ix = x * s - 1 + dx;
                            if (ix < 0 || ix >= W) continue;
                            acc += k[dy * 3 + dx] * src[iy * W + ix];
                        }
                    }
                    dstp[y * a->Wo + x] = acc;
                }
        }
    }
}

static void avgpool_s2(const float *in, size_t in_ld, float *out, size_t out_ld, int C, int n,
                       int H, int W, int Ho, int Wo) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < n; i++) {
            const float *src = in + (size_t)c * in_ld + (size_t)i * H * W;
            float *d = out + (size_t)c * out_ld + (size_t)i * Ho * Wo;
            for (int y = 0; y < Ho; y++)
                for (int x = 0; x < Wo; x++) {
                    float acc = 0;
                    for (int dy = 0; dy < 3; dy++) {
                        int iy = 2 * y - 1 + dy;
                        if (iy < 0 || iy >= H) continue;
                        for (int dx = 0; dx < 3; dx++) {
                            int ix = 2 * x - 1 + dx;
                            if (ix >= 0 && ix < W) acc += src[iy * W + ix];
                        }
                    }
                    d[y * Wo + x] = acc * (1.0f / 9.0f);
                }
        }
}

/* Row by row: conv row y of every channel into srow, its horizontal 3-max into h; pooled row
 * py is the max of the h of conv rows 2py-1 (kept in prev), 2py (kept in cur) and 2py+1.
 * ReLU output is >= 0 and every window holds a real element, so padding reads as 0. */
static void stem_pool(const float *in, int n, int S, const float *w, const float *bias, int C,
                      float *out, size_t out_ld, int Ho, int Po, float *scratch) {
    size_t sld = SN_STEM_PAD(Ho), pld = SN_STEM_PAD(Po);
    float *srow = scratch, *cur = srow + (size_t)C * sld, *prev = cur + (size_t)C * pld;
    for (int i = 0; i < n; i++) {
        const float *img = in + (size_t)i * 3 * S * S;
        for (int y = 0; y < Ho; y++) {
            for (int c = 0; c < C; c++)
                for (int x = 0; x < Ho; x++) {
                    float acc = bias[c];
                    for (int ci = 0; ci < 3; ci++)
                        for (int dy = 0; dy < 3; dy++) {
                            int iy = 2 * y - 1 + dy;
                            if (iy < 0 || iy >= S) continue;
                            for (int dx = 0; dx < 3; dx++) {
                                int ix = 2 * x - 1 + dx;
                                if (ix < 0 || ix >= S) continue;
                                acc += w[((c * 3 + ci) * 3 + dy) * 3 + dx] *
                                       img[((size_t)ci * S + iy) * S + ix];
                            }
                        }
                    srow[c * sld + x] = acc > 0 ? acc : 0;
                }
            for (int c = 0; c < C; c++)
                for (int x = 0; x < Po; x++) {
                    const float *r = srow + c * sld;
                    float h = r[2 * x];
                    if (2 * x - 1 >= 0 && r[2 * x - 1] > h) h = r[2 * x - 1];
                    if (2 * x + 1 < Ho && r[2 * x + 1] > h) h = r[2 * x + 1];
                    float *cp = cur + c * pld + x, *pp = prev + c * pld + x;
                    float *o =
                        out + (size_t)c * out_ld + (size_t)i * Po * Po + (size_t)(y / 2) * Po;
                    if (y % 2 == 0) {
                        if (y > 0 && *pp > h) h = *pp;
                        *cp = h;
                        if (y == Ho - 1) o[x] = h;
                    } else {
                        o[x] = *cp > h ? *cp : h;
                        *pp = h;
                    }
                }
        }
    }
}

static void global_avgpool(const float *in, size_t in_ld, int C, int n, int HW, float *feat) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < n; i++) {
            const float *src = in + (size_t)c * in_ld + (size_t)i * HW;
            float s = 0;
            for (int p = 0; p < HW; p++) s += src[p];
            feat[(size_t)i * C + c] = s / (float)HW;
        }
}

static void fc(const float *feat, int n, int C, const float *w, const float *bias, int O,
               float *logits) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < O; o++) {
            float s = bias ? bias[o] : 0.0f;
            const float *wo = w + (size_t)o * C, *f = feat + (size_t)i * C;
            for (int c = 0; c < C; c++) s += wo[c] * f[c];
            logits[(size_t)i * O + o] = s;
        }
}

static size_t pw_scratch_size(int M, int K, size_t P) {
    (void)M, (void)K, (void)P;
    return 0;
}

const sn_kernels sn_kernels_scalar = {
    "scalar",   pw_packed_size, pack_pw,        pw, pw_scratch_size, dw,
    avgpool_s2, stem_pool,      global_avgpool, fc};
