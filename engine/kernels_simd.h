/* kernels_simd.h - the SIMD kernels, written once over a small vector vocabulary and included
 * by kernels_avx2.c (8 lanes) and kernels_avx512.c (16 lanes), which define:
 *
 *   V, VL                      vector type and its number of float lanes
 *   MRMAX                      rows (output channels) of a 1x1-conv micro-tile
 *   STEM_CB                    output channels the stem computes per pass
 *   vset1(x) vload(p) vstore(p,v) vfma(a,b,c)=a*b+c vadd vmax vmul
 *   vload_n(p, lo, hi, fill)   lanes [lo,hi) from p[lane], the others = fill; lanes outside
 *                              [lo,hi) are never touched in memory
 *   vload_bits(p, bits)        lanes whose bit is set in bits from p[lane], the others 0
 *   vstore_n(p, v, n)          stores lanes [0,n)
 *   vdeint(a, b, &ev, &od)     even and odd elements of the 2*VL floats a:b
 *   vhsum(v)                   sum of the lanes
 *   SIMD_TABLE, SIMD_NAME      the table's symbol and name
 *
 * Layouts and argument meanings are those of kernels.h; the scalar twins in
 * kernels_scalar.c define the results (up to float rounding order). */

#define NR (2 * VL) /* columns of a 1x1-conv micro-tile */
#define AI __attribute__((always_inline)) inline

static int imin(int a, int b) {
    return a < b ? a : b;
}
static int imax(int a, int b) {
    return a > b ? a : b;
}

/* ---- grouped 1x1 convolution -----------------------------------------------------------
 * M is split into nb = ceil(M/MRMAX) blocks of nearly equal size (sizes differ by at most 1,
 * so no row is padded). Block b holds rows [m0, m0+mr) packed k-major: w[k*mr + i]. */

static size_t pw_packed_size(int M, int K) {
    return (size_t)M * (size_t)K;
}

static void pack_pw(const float *w, int M, int K, float *packed) {
    int nb = (M + MRMAX - 1) / MRMAX, base = M / nb, extra = M % nb, m0 = 0;
    for (int b = 0; b < nb; b++) {
        int mr = base + (b < extra);
        for (int k = 0; k < K; k++)
            for (int i = 0; i < mr; i++)
                packed[(size_t)m0 * K + (size_t)k * mr + i] = w[(size_t)(m0 + i) * K + k];
        m0 += mr;
    }
}

/* One micro-tile: mr rows x NR columns. tail 0: all NR columns; 1: nc < NR columns; 2: nc <=
 * VL columns (one vector, the second accumulator row is left out). */
static AI void pw_tile(const int mr, const int tail, int K, const float *in, size_t ld,
                       const float *w, const float *bias, float *out, size_t out_ld,
                       const float *res, size_t res_ld, int relu, int nc) {
    V acc0[MRMAX], acc1[MRMAX];
    const int two = tail != 2;
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) acc0[i] = acc1[i] = vset1(bias[i]);
    int n0 = tail ? imin(nc, VL) : VL, n1 = tail ? imax(nc - VL, 0) : VL;
    for (int k = 0; k < K; k++) {
        const float *ip = in + (size_t)k * ld;
        V a0 = tail ? vload_n(ip, 0, n0, 0.0f) : vload(ip);
        V a1 = tail == 1 ? vload_n(ip + VL, 0, n1, 0.0f) : tail ? a0 : vload(ip + VL);
        const float *wk = w + (size_t)k * mr;
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            V b = vset1(wk[i]);
            acc0[i] = vfma(b, a0, acc0[i]);
            if (two) acc1[i] = vfma(b, a1, acc1[i]);
        }
    }
    V zero = vset1(0.0f);
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) {
        float *o = out + (size_t)i * out_ld;
        if (res) {
            const float *r = res + (size_t)i * res_ld;
            acc0[i] = vadd(acc0[i], tail ? vload_n(r, 0, n0, 0.0f) : vload(r));
            if (two) acc1[i] = vadd(acc1[i], tail ? vload_n(r + VL, 0, n1, 0.0f) : vload(r + VL));
        }
        if (relu) {
            acc0[i] = vmax(acc0[i], zero);
            if (two) acc1[i] = vmax(acc1[i], zero);
        }
        if (tail) {
            vstore_n(o, acc0[i], n0);
            if (two) vstore_n(o + VL, acc1[i], n1);
        } else {
            vstore(o, acc0[i]);
            vstore(o + VL, acc1[i]);
        }
    }
}

typedef void (*pw_tile_fn)(int K, const float *in, size_t ld, const float *w, const float *bias,
                           float *out, size_t out_ld, const float *res, size_t res_ld, int relu,
                           int nc);

#define PW_TILE(R)                                                                                 \
    static void pw_full_##R(int K, const float *in, size_t ld, const float *w, const float *bias,  \
                            float *out, size_t out_ld, const float *res, size_t res_ld, int relu,  \
                            int nc) {                                                              \
        pw_tile(R, 0, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc);                     \
    }                                                                                              \
    static void pw_tail_##R(int K, const float *in, size_t ld, const float *w, const float *bias,  \
                            float *out, size_t out_ld, const float *res, size_t res_ld, int relu,  \
                            int nc) {                                                              \
        pw_tile(R, 1, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc);                     \
    }                                                                                              \
    static void pw_half_##R(int K, const float *in, size_t ld, const float *w, const float *bias,  \
                            float *out, size_t out_ld, const float *res, size_t res_ld, int relu,  \
                            int nc) {                                                              \
        pw_tile(R, 2, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc);                     \
    }
PW_TILE(1)
PW_TILE(2)
PW_TILE(3)
PW_TILE(4)
PW_TILE(5)
PW_TILE(6)
#if MRMAX > 6
PW_TILE(7)
PW_TILE(8)
PW_TILE(9)
PW_TILE(10)
PW_TILE(11)
PW_TILE(12)
static const pw_tile_fn pw_full[MRMAX + 1] = {
    NULL,      pw_full_1, pw_full_2, pw_full_3,  pw_full_4,  pw_full_5, pw_full_6,
    pw_full_7, pw_full_8, pw_full_9, pw_full_10, pw_full_11, pw_full_12};
static const pw_tile_fn pw_tail[MRMAX + 1] = {
    NULL,      pw_tail_1, pw_tail_2, pw_tail_3,  pw_tail_4,  pw_tail_5, pw_tail_6,
    pw_tail_7, pw_tail_8, pw_tail_9, pw_tail_10, pw_tail_11, pw_tail_12};
static const pw_tile_fn pw_half[MRMAX + 1] = {
    NULL,      pw_half_1, pw_half_2, pw_half_3,  pw_half_4,  pw_half_5, pw_half_6,
    pw_half_7, pw_half_8, pw_half_9, pw_half_10, pw_half_11, pw_half_12};
#else
static const pw_tile_fn pw_full[MRMAX + 1] = {NULL,      pw_full_1, pw_full_2, pw_full_3,
                                              pw_full_4, pw_full_5, pw_full_6};
static const pw_tile_fn pw_tail[MRMAX + 1] = {NULL,      pw_tail_1, pw_tail_2, pw_tail_3,
                                              pw_tail_4, pw_tail_5, pw_tail_6};
static const pw_tile_fn pw_half[MRMAX + 1] = {NULL,      pw_half_1, pw_half_2, pw_half_3,
                                              pw_half_4, pw_half_5, pw_half_6};
#endif

static void pw(const sn_pw_args *a) {
    int M = a->M, K = a->K, nb = (M + MRMAX - 1) / MRMAX, base = M / nb, extra = M % nb;
    size_t P = a->P, ld = a->out_ld;
    for (size_t p = 0; p < P; p += NR) {
        int nc = P - p < NR ? (int)(P - p) : NR;
        const pw_tile_fn *fn = nc == NR ? pw_full : nc > VL ? pw_tail : pw_half;
        int m0 = 0;
        for (int b = 0; b < nb; b++) {
            int mr = base + (b < extra);
            fn[mr](K, a->in + p, a->in_ld, a->w + (size_t)m0 * K, a->bias + m0,
                   a->out + (size_t)m0 * ld + p, ld,
                   a->res ? a->res + (size_t)m0 * a->res_ld + p : NULL, a->res_ld, a->relu, nc);
            m0 += mr;
        }
    }
}

/* ---- 3x3 windows along a row -----------------------------------------------------------
 * For outputs x0 .. x0+VL-1 of a 3x3 window with pad 1, the input columns s*x-1, s*x, s*x+1
 * of one input row of width W, as three vectors; columns outside [0, W) read as fill. */

static AI void taps_s1(const float *row, int W, int x0, float fill, V *l, V *c, V *r) {
    if (x0 > 0 && x0 + VL + 1 <= W) {
        *l = vload(row + x0 - 1);
        *c = vload(row + x0);
        *r = vload(row + x0 + 1);
    } else {
        *l = vload_n(row + x0 - 1, x0 == 0 ? 1 : 0, imin(VL, W - x0 + 1), fill);
        *c = vload_n(row + x0, 0, imin(VL, W - x0), fill);
        *r = vload_n(row + x0 + 1, 0, imax(0, imin(VL, W - x0 - 1)), fill);
    }
}

/* lanes [lo,hi) of the VL floats at row+s, clipped to columns [0, W) */
static AI V load_cols(const float *row, int W, int s, float fill) {
    if (s >= 0 && s + VL <= W) return vload(row + s);
    int lo = imax(0, -s), hi = imin(VL, W - s);
    if (hi <= lo) return vset1(fill);
    return vload_n(row + s, lo, hi, fill);
}

static AI void taps_s2(const float *row, int W, int x0, float fill, V *l, V *c, V *r) {
    int s = 2 * x0;
    V a0 = load_cols(row, W, s, fill), a1 = load_cols(row, W, s + VL, fill);
    V b0 = load_cols(row, W, s - 2, fill), b1 = load_cols(row, W, s - 2 + VL, fill);
    V junk;
    vdeint(a0, a1, c, r);
    vdeint(b0, b1, &junk, l);
}

/* ---- depthwise 3x3 ---------------------------------------------------------------------- */

/* Stride 1 on planes of up to DW_FLAT_CHUNKS vectors: each plane is walked flat, VL outputs
 * at a time whatever the row width (7x7 and 14x14 planes fill the lanes), with the validity
 * of each of the 9 taps per chunk precomputed as lane bitmasks (padding and the plane's end). */
#define DW_FLAT_CHUNKS 512

static void dw_s1_flat(const sn_dw_args *a) {
    const int H = a->H, W = a->W, HW = H * W, nch = (HW + VL - 1) / VL;
    unsigned mk[DW_FLAT_CHUNKS][9];
    for (int ch = 0; ch < nch; ch++)
        for (int t = 0; t < 9; t++) {
            unsigned bits = 0;
            for (int j = 0; j < VL; j++) {
                int q = ch * VL + j, y = q / W + t / 3 - 1, x = q % W + t % 3 - 1;
                if (q < HW && y >= 0 && y < H && x >= 0 && x < W) bits |= 1u << j;
            }
            mk[ch][t] = bits;
        }
    for (int c = 0; c < a->C; c++) {
        const float *wc = a->w + 9 * c;
        V k[9];
        for (int j = 0; j < 9; j++) k[j] = vset1(wc[j]);
        V bias = vset1(a->bias[c]);
        int oc = a->dst ? a->dst[c] : c;
        for (int i = 0; i < a->n; i++) {
            const float *src = a->in + (size_t)c * a->in_ld + (size_t)i * HW;
            float *dst = a->out + (size_t)oc * a->out_ld + (size_t)i * HW;
            for (int ch = 0; ch < nch; ch++) {
                const float *p = src + ch * VL;
                V acc = bias;
#pragma GCC unroll 9
                for (int t = 0; t < 9; t++)
                    acc = vfma(k[t], vload_bits(p + (t / 3 - 1) * W + t % 3 - 1, mk[ch][t]), acc);
                if (ch * VL + VL <= HW)
                    vstore(dst + ch * VL, acc);
                else
                    vstore_n(dst + ch * VL, acc, HW - ch * VL);
            }
        }
    }
}

static void dw(const sn_dw_args *a) {
    if (a->stride == 1 && a->H * a->W <= DW_FLAT_CHUNKS * VL) {
        dw_s1_flat(a);
        return;
    }
    const int H = a->H, W = a->W, Ho = a->Ho, Wo = a->Wo, s = a->stride;
    for (int c = 0; c < a->C; c++) {
        const float *wc = a->w + 9 * c;
        V k[9];
        for (int j = 0; j < 9; j++) k[j] = vset1(wc[j]);
        V bias = vset1(a->bias[c]);
        int oc = a->dst ? a->dst[c] : c;
        for (int i = 0; i < a->n; i++) {
            const float *src = a->in + (size_t)c * a->in_ld + (size_t)i * H * W;
            float *dst = a->out + (size_t)oc * a->out_ld + (size_t)i * Ho * Wo;
            for (int y = 0; y < Ho; y++)
                for (int x0 = 0; x0 < Wo; x0 += VL) {
                    V acc = bias;
                    for (int dy = 0; dy < 3; dy++) {
                        int iy = y * s - 1 + dy;
                        if (iy < 0 || iy >= H) continue;
                        V l, m, r;
                        if (s == 1)
                            taps_s1(src + (size_t)iy * W, W, x0, 0.0f, &l, &m, &r);
                        else
                            taps_s2(src + (size_t)iy * W, W, x0, 0.0f, &l, &m, &r);
                        acc = vfma(k[3 * dy], l, acc);
                        acc = vfma(k[3 * dy + 1], m, acc);
                        acc = vfma(k[3 * dy + 2], r, acc);
                    }
                    if (x0 + VL <= Wo)
                        vstore(dst + (size_t)y * Wo + x0, acc);
                    else
                        vstore_n(dst + (size_t)y * Wo + x0, acc, Wo - x0);
                }
        }
    }
}

/* ---- pooling ---------------------------------------------------------------------------- */

/* 3x3 stride-2 pooling, pad 1: the mean of 9 (padding counted as zero) or the maximum
 * (padding ignored). */
static AI void pool_s2(const int is_max, const float *in, size_t in_ld, float *out, size_t out_ld,
                       int C, int n, int H, int W, int Ho, int Wo) {
    const float fill = is_max ? -__builtin_inff() : 0.0f;
    V ninth = vset1(1.0f / 9.0f);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < n; i++) {
            const float *src = in + (size_t)c * in_ld + (size_t)i * H * W;
            float *d = out + (size_t)c * out_ld + (size_t)i * Ho * Wo;
            for (int y = 0; y < Ho; y++)
                for (int x0 = 0; x0 < Wo; x0 += VL) {
                    V acc = vset1(fill);
                    for (int dy = 0; dy < 3; dy++) {
                        int iy = 2 * y - 1 + dy;
                        if (iy < 0 || iy >= H) continue;
                        V l, m, r;
                        taps_s2(src + (size_t)iy * W, W, x0, fill, &l, &m, &r);
                        if (is_max)
                            acc = vmax(acc, vmax(vmax(l, m), r));
                        else
                            acc = vadd(acc, vadd(vadd(l, m), r));
                    }
                    if (!is_max) acc = vmul(acc, ninth);
                    if (x0 + VL <= Wo)
                        vstore(d + (size_t)y * Wo + x0, acc);
                    else
                        vstore_n(d + (size_t)y * Wo + x0, acc, Wo - x0);
                }
        }
}

static void avgpool_s2(const float *in, size_t in_ld, float *out, size_t out_ld, int C, int n,
                       int H, int W, int Ho, int Wo) {
    pool_s2(0, in, in_ld, out, out_ld, C, n, H, W, Ho, Wo);
}

static void maxpool_s2(const float *in, size_t in_ld, float *out, size_t out_ld, int C, int n,
                       int H, int W, int Ho, int Wo) {
    pool_s2(1, in, in_ld, out, out_ld, C, n, H, W, Ho, Wo);
}

/* ---- stem: 3x3 stride 2 conv, 3 -> C channels, + bias + ReLU ----------------------------
 * STEM_CB output channels per pass share the 27 input windows; the block's weights are
 * copied (zero-padded) into wl[tap][STEM_CB] so the inner loop is branch-free. */

static void stem(const float *in, int n, int S, const float *w, const float *bias, int C,
                 float *out, size_t out_ld, int Ho, int Wo) {
    float wl[27][STEM_CB], bl[STEM_CB];
    V zero = vset1(0.0f);
    for (int c0 = 0; c0 < C; c0 += STEM_CB) {
        int nc = imin(STEM_CB, C - c0);
        for (int j = 0; j < STEM_CB; j++) {
            bl[j] = j < nc ? bias[c0 + j] : 0.0f;
            for (int t = 0; t < 27; t++) wl[t][j] = j < nc ? w[(size_t)(c0 + j) * 27 + t] : 0.0f;
        }
        for (int i = 0; i < n; i++) {
            const float *img = in + (size_t)i * 3 * S * S;
            for (int y = 0; y < Ho; y++)
                for (int x0 = 0; x0 < Wo; x0 += VL) {
                    V acc[STEM_CB];
#pragma GCC unroll 16
                    for (int j = 0; j < STEM_CB; j++) acc[j] = vset1(bl[j]);
                    for (int ci = 0; ci < 3; ci++)
                        for (int dy = 0; dy < 3; dy++) {
                            int iy = 2 * y - 1 + dy;
                            if (iy < 0 || iy >= S) continue;
                            V l, m, r;
                            taps_s2(img + ((size_t)ci * S + iy) * S, S, x0, 0.0f, &l, &m, &r);
                            const float *wt = wl[(ci * 3 + dy) * 3];
#pragma GCC unroll 16
                            for (int j = 0; j < STEM_CB; j++) {
                                acc[j] = vfma(vset1(wt[j]), l, acc[j]);
                                acc[j] = vfma(vset1(wt[STEM_CB + j]), m, acc[j]);
                                acc[j] = vfma(vset1(wt[2 * STEM_CB + j]), r, acc[j]);
                            }
                        }
                    size_t off = (size_t)i * Ho * Wo + (size_t)y * Wo + x0;
                    for (int j = 0; j < nc; j++) {
                        float *d = out + (size_t)(c0 + j) * out_ld + off;
                        V v = vmax(acc[j], zero);
                        if (x0 + VL <= Wo)
                            vstore(d, v);
                        else
                            vstore_n(d, v, Wo - x0);
                    }
                }
        }
    }
}

/* ---- global average pool and FC ---------------------------------------------------------- */

static float dot(const float *a, const float *b, int n) {
    V s0 = vset1(0.0f), s1 = vset1(0.0f);
    int j = 0;
    for (; j + 2 * VL <= n; j += 2 * VL) {
        s0 = vfma(vload(a + j), vload(b + j), s0);
        s1 = vfma(vload(a + j + VL), vload(b + j + VL), s1);
    }
    for (; j < n; j += VL) {
        int m = imin(VL, n - j);
        s0 = vfma(vload_n(a + j, 0, m, 0.0f), vload_n(b + j, 0, m, 0.0f), s0);
    }
    return vhsum(vadd(s0, s1));
}

static void global_avgpool(const float *in, size_t in_ld, int C, int n, int HW, float *feat) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < n; i++) {
            const float *src = in + (size_t)c * in_ld + (size_t)i * HW;
            V s = vset1(0.0f);
            int p = 0;
            for (; p + VL <= HW; p += VL) s = vadd(s, vload(src + p));
            if (p < HW) s = vadd(s, vload_n(src + p, 0, HW - p, 0.0f));
            feat[(size_t)i * C + c] = vhsum(s) / (float)HW;
        }
}

static void fc(const float *feat, int n, int C, const float *w, const float *bias, int O,
               float *logits) {
    for (int o = 0; o < O; o++) {
        const float *wo = w + (size_t)o * C;
        for (int i = 0; i < n; i++)
            logits[(size_t)i * O + o] = (bias ? bias[o] : 0.0f) + dot(wo, feat + (size_t)i * C, C);
    }
}

const sn_kernels SIMD_TABLE = {SIMD_NAME, pw_packed_size, pack_pw,        pw, dw, avgpool_s2,
                               stem,      maxpool_s2,     global_avgpool, fc};
