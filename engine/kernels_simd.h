/* kernels_simd.h - the SIMD kernels, written once over a small vector vocabulary and included
 * by kernels_avx2.c (8 lanes), kernels_avx512.c (16 lanes) and kernels_neon.c (4 lanes), which
 * define:
 *
 *   V, VL                      vector type and its number of float lanes
 *   MRMAX                      rows (output channels) of a 1x1-conv micro-tile
 *   STEM_CB, STEM_NV           the stem's register tile: up to STEM_CB output channels x
 *                              STEM_NV vectors of columns per pass
 *   vset1(x) vload(p) vstore(p,v) vfma(a,b,c)=a*b+c vadd vmax vmul
 *   vload_n(p, lo, hi, fill)   lanes [lo,hi) from p[lane], the others = fill; lanes outside
 *                              [lo,hi) are never touched in memory
 *   vload_bits(p, bits)        lanes whose bit is set in bits from p[lane], the others 0
 *   vstore_n(p, v, n)          stores lanes [0,n)
 *   vdeint(a, b, &ev, &od)     even and odd elements of the 2*VL floats a:b
 *   vshift1(v, prev)           lanes prev[VL-1], v[0], ..., v[VL-2]
 *   vhsum(v)                   sum of the lanes
 *   SIMD_TABLE, SIMD_NAME      the table's symbol and name
 *   optionally PW_NARROW       4: 1x1-conv tails of <= 4 columns vectorised over rows
 *   optionally PW_PACK         1: 1x1-conv column panels copied into contiguous scratch first
 *   optionally DW_ROWSUMS      1: the flat depthwise sums each kernel row in its own chain
 *   optionally DW_COLMASK      1: the flat depthwise reads interior chunks with plain loads and
 *                              zeroes its edge columns with vand; vcolmask(x0, W, &lm, &rm):
 *                              all-ones masks of the lanes x0 + j (mod W) not in column 0 (lm)
 *                              and not in column W-1 (rm)
 *   optionally DW_S2_ROWS      1: stride-2 depthwise and 3x3 average pool from rows split
 *                              once into even and odd columns
 *   optionally STEM_SPLIT      1: the stem from input rows split once four ways, its conv
 *                              computing even and odd columns apart (needs STEM_NV 2)
 *   optionally HV, HVL         a half-width vector (hvset1 hvfma hvadd hvmax hvload_n(p, n)
 *                              hvstore_n(p, v, n)) for narrow 1x1-conv tails
 *
 * Layouts and argument meanings are those of kernels.h; the scalar twins in
 * kernels_scalar.c define the results (up to float rounding order). */

#include <stdint.h>

#define NR        (2 * VL) /* columns of a 1x1-conv micro-tile */
#define PW_PF_LOC 2        /* the next panel's prefetch goes to L2 */
#define AI        __attribute__((always_inline)) inline

static int imin(int a, int b) {
    return a < b ? a : b;
}
static int imax(int a, int b) {
    return a > b ? a : b;
}

#include "engine/kernels_simd_pw.h"

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

/* Stride 2: called for x0 = 0, VL, 2*VL, ... in order along one row. The centre and right
 * columns 2x, 2x+1 are the even and odd elements of columns [2*x0, 2*x0 + 2*VL); the left
 * column 2x-1 is the right one of the output before, so it is r shifted up one lane with the
 * previous call's r (kept in *carry, vset1(fill) before the first call) coming in. */
static AI void taps_s2(const float *row, int W, int x0, float fill, V *carry, V *l, V *c, V *r) {
    int s = 2 * x0;
    V a0 = load_cols(row, W, s, fill), a1 = load_cols(row, W, s + VL, fill);
    vdeint(a0, a1, c, r);
    *l = vshift1(*r, *carry);
    *carry = *r;
}

/* ---- depthwise 3x3 ---------------------------------------------------------------------- */

/* Stride 1 on planes of up to DW_FLAT_CHUNKS vectors: each plane is walked flat, VL outputs
 * at a time whatever the row width (7x7 and 14x14 planes fill the lanes), with the validity
 * of each of the 9 taps per chunk precomputed as lane bitmasks (padding and the plane's end). */
#define DW_FLAT_CHUNKS 512

#ifdef DW_COLMASK
/* VL outputs with one FMA chain per kernel column: bias + centre + (left + right). Interior
 * chunks (every tap's window inside the plane) load with plain loads and zero the left and
 * right sums in the lanes of columns 0 and W-1 (lm, rm: there those loads wrap to the
 * neighbouring row); the others load through the tap masks m, which never touch memory
 * outside the plane. Interior: 9 loads, 9 multiply-adds, 2 ands, 2 adds, no masked loads. */
static AI V dw_cols(const int interior, const V *k, V bias, const float *p, int W,
                    const unsigned *m, V lm, V rm) {
    V t[9];
#pragma GCC unroll 9
    for (int j = 0; j < 9; j++) {
        const float *q = p + (j / 3 - 1) * W + j % 3 - 1;
        t[j] = interior ? vload(q) : vload_bits(q, m[j]);
    }
    V l = vfma(k[6], t[6], vfma(k[3], t[3], vmul(k[0], t[0])));
    V c = vfma(k[7], t[7], vfma(k[4], t[4], vfma(k[1], t[1], bias)));
    V r = vfma(k[8], t[8], vfma(k[5], t[5], vmul(k[2], t[2])));
    if (interior) l = vand(l, lm), r = vand(r, rm);
    return vadd(c, vadd(l, r));
}

/* chunk ch of a plane through its tap masks (the first and last rows, the plane's end) */
static AI void dw_cols_edge(const V *k, V bias, const float *src, float *dst, int W, int HW,
                            const unsigned *m, int ch) {
    V z = vset1(0.0f), acc = dw_cols(0, k, bias, src + ch * VL, W, m, z, z);
    if (ch * VL + VL <= HW)
        vstore(dst + ch * VL, acc);
    else
        vstore_n(dst + ch * VL, acc, HW - ch * VL);
}
#endif

static void dw_s1_flat(const sn_dw_args *a) {
    const int H = a->H, W = a->W, HW = H * W, nch = (HW + VL - 1) / VL;
    unsigned mk[DW_FLAT_CHUNKS][9];
#ifdef DW_COLMASK
    /* chunks [ilo, ihi) read all nine taps with plain loads (no tap masks needed); lm/rm zero
     * their lanes in columns 0 and W-1, where the left and right taps fall outside the row */
    int ilo = imin(nch, (W + 1 + VL - 1) / VL);
    int ihi = imax(ilo, imin(nch, (HW - W - 1 - VL) / VL + 1));
    V lm[DW_FLAT_CHUNKS], rm[DW_FLAT_CHUNKS];
    for (int ch = ilo; ch < ihi; ch++) vcolmask(ch * VL % W, W, &lm[ch - ilo], &rm[ch - ilo]);
#endif
    for (int ch = 0, y = 0, x = 0; ch < nch; ch++) {
#ifdef DW_COLMASK
        if (ch == ilo && ihi > ilo) { /* skip the interior */
            ch = ihi, y = ch * VL / W, x = ch * VL % W;
            if (ch == nch) break;
        }
#endif
        /* rows[dy], cols[dx]: the lanes whose row y+dy-1 and column x+dx-1 are inside */
        unsigned rows[3] = {0, 0, 0}, cols[3] = {0, 0, 0};
        for (int j = 0, q = ch * VL; j < VL && q < HW; j++, q++) {
            unsigned b = 1u << j;
            rows[0] |= y > 0 ? b : 0, rows[1] |= b, rows[2] |= y < H - 1 ? b : 0;
            cols[0] |= x > 0 ? b : 0, cols[1] |= b, cols[2] |= x < W - 1 ? b : 0;
            if (++x == W) x = 0, y++;
        }
        for (int t = 0; t < 9; t++) mk[ch][t] = rows[t / 3] & cols[t % 3];
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
#ifdef DW_COLMASK
            int ch = 0;
            for (; ch < ilo; ch++) dw_cols_edge(k, bias, src, dst, W, HW, mk[ch], ch);
            for (; ch < ihi; ch++)
                vstore(dst + ch * VL,
                       dw_cols(1, k, bias, src + ch * VL, W, NULL, lm[ch - ilo], rm[ch - ilo]));
            for (; ch < nch; ch++) dw_cols_edge(k, bias, src, dst, W, HW, mk[ch], ch);
#else
            for (int ch = 0; ch < nch; ch++) {
                const float *p = src + ch * VL;
#ifdef DW_ROWSUMS
                /* one FMA chain per kernel row, summed at the end: 3 + 2 deep instead of 9 */
                V acc = bias, r1 = vset1(0.0f), r2 = vset1(0.0f);
#pragma GCC unroll 3
                for (int t = 0; t < 3; t++) {
                    acc = vfma(k[t], vload_bits(p - W + t - 1, mk[ch][t]), acc);
                    r1 = vfma(k[t + 3], vload_bits(p + t - 1, mk[ch][t + 3]), r1);
                    r2 = vfma(k[t + 6], vload_bits(p + W + t - 1, mk[ch][t + 6]), r2);
                }
                acc = vadd(acc, vadd(r1, r2));
#else
                V acc = bias;
#pragma GCC unroll 9
                for (int t = 0; t < 9; t++)
                    acc = vfma(k[t], vload_bits(p + (t / 3 - 1) * W + t % 3 - 1, mk[ch][t]), acc);
#endif
                if (ch * VL + VL <= HW)
                    vstore(dst + ch * VL, acc);
                else
                    vstore_n(dst + ch * VL, acc, HW - ch * VL);
            }
#endif
        }
    }
}

#ifdef DW_S2_ROWS
/* Stride 2 from deinterleaved rows: each input row is split once into its even columns E, its
 * odd columns O and the odd columns one place to the right L (L[x] = O[x-1], L[0] = 0; zero
 * past the row's end), so output column x reads L[x], E[x], O[x] with plain loads, each at the
 * very address one store of the split wrote (a load across two pending stores is not
 * forwarded and waits for them to reach the cache, which at 7-28 columns a row is most of the
 * time). Per output vector: 9 loads and 9 multiply-adds, no shuffles or masks. The depthwise
 * conv and the 3x3 average pool both run on it. Row buffers hold up to DW_S2_MAXW outputs;
 * wider planes take the generic walk. */
#define DW_S2_MAXW 512
/* floats between E, O and L of one split row: not a multiple of 1 KiB, so that the 15 arrays
 * of the five row buffers start at least 256 bytes apart modulo 4 KiB (a load whose address
 * matches a pending store's in its low 12 bits waits for it: "4K aliasing") */
#define DW_S2_LD (DW_S2_MAXW + 32)

/* The split of a plane's rows W wide: chunks x0 < xt load whole vectors inside the row; the one
 * chunk at xt (if xt < Wo) loads lanes b0 and b1 (bit masks) of its two vectors. */
typedef struct {
    int H, W, Wo, xt;
    unsigned b0, b1;
} dw_s2_geom;

static dw_s2_geom dw_s2_geom_of(int H, int W, int Wo) {
    dw_s2_geom g = {H, W, Wo, W / (2 * VL) * VL, 0, 0};
    int n0 = imin(VL, W - 2 * g.xt), n1 = imax(0, W - 2 * g.xt - VL);
    g.b0 = (1u << n0) - 1, g.b1 = (1u << n1) - 1;
    return g;
}

/* input row iy (zeros outside [0, H)) into buf: E, O, L at buf, + DW_S2_LD, + 2 * DW_S2_LD */
static AI void dw_s2_split(const float *src, const dw_s2_geom *g, int iy, float *buf) {
    float *e = buf, *o = buf + DW_S2_LD, *l = o + DW_S2_LD;
    if (iy < 0 || iy >= g->H) {
        for (int x0 = 0; x0 < g->Wo; x0 += VL)
            vstore(e + x0, vset1(0.0f)), vstore(o + x0, vset1(0.0f)), vstore(l + x0, vset1(0.0f));
        return;
    }
    const float *row = src + (size_t)iy * g->W;
    V carry = vset1(0.0f), ev, od;
    int x0 = 0;
    for (; x0 < g->xt; x0 += VL) {
        vdeint(vload(row + 2 * x0), vload(row + 2 * x0 + VL), &ev, &od);
        vstore(e + x0, ev), vstore(o + x0, od), vstore(l + x0, vshift1(od, carry));
        carry = od;
    }
    if (x0 < g->Wo) {
        V a1 = g->b1 ? vload_bits(row + 2 * x0 + VL, g->b1) : vset1(0.0f);
        vdeint(vload_bits(row + 2 * x0, g->b0), a1, &ev, &od);
        vstore(e + x0, ev), vstore(o + x0, od), vstore(l + x0, vshift1(od, carry));
    }
}

/* One output row from the split rows r0, r1, r2 (input rows 2y-1, 2y, 2y+1). avg: the mean of
 * the 9 (padding counted as zero), summed in the scalar twin's order; else the depthwise conv
 * with weights k and bias. room: floats from out to the end of the plane. Whole vectors are
 * stored wherever they fit in it: what spills past the row's end lands in the rows below,
 * which are written afterwards. */
static AI void dw_s2_row(const int avg, const V *k, V bias, float *const *r, int Wo, float *out,
                         int room) {
    for (int x0 = 0; x0 < Wo; x0 += VL) {
        V v;
        if (avg) {
            v = vset1(0.0f);
#pragma GCC unroll 3
            for (int dy = 0; dy < 3; dy++) {
                const float *e = r[dy] + x0;
                v = vadd(vadd(vadd(v, vload(e + 2 * DW_S2_LD)), vload(e)), vload(e + DW_S2_LD));
            }
            v = vmul(v, vset1(1.0f / 9.0f));
        } else {
            V acc[3];
#pragma GCC unroll 3
            for (int dy = 0; dy < 3; dy++) {
                const float *e = r[dy] + x0, *o = e + DW_S2_LD, *l = o + DW_S2_LD;
                acc[dy] = vfma(k[3 * dy + 2], vload(o),
                               vfma(k[3 * dy + 1], vload(e),
                                    dy ? vmul(k[3 * dy], vload(l)) : vfma(k[0], vload(l), bias)));
            }
            v = vadd(acc[0], vadd(acc[1], acc[2]));
        }
        if (x0 + VL <= room)
            vstore(out + x0, v);
        else
            vstore_n(out + x0, v, Wo - x0);
    }
}

/* C planes of n images, output channel perm[c] (or c); avg: 3x3 mean, else the depthwise conv
 * with weights w (9 per channel) and bias */
static AI void dw_s2_planes(const int avg, const float *in, size_t in_ld, const float *w,
                            const float *bias, const int *perm, float *out, size_t out_ld, int C,
                            int n, int H, int W, int Ho, int Wo) {
    float rows[5][3 * DW_S2_LD];
    const dw_s2_geom g = dw_s2_geom_of(H, W, Wo);
    for (int c = 0; c < C; c++) {
        V k[9], b = vset1(0.0f);
        if (!avg) {
            for (int j = 0; j < 9; j++) k[j] = vset1(w[9 * c + j]);
            b = vset1(bias[c]);
        }
        int oc = perm ? perm[c] : c;
        for (int i = 0; i < n; i++) {
            const float *src = in + (size_t)c * in_ld + (size_t)i * H * W;
            float *dst = out + (size_t)oc * out_ld + (size_t)i * Ho * Wo;
            /* r: the five row buffers, r[j] holding input row 2y-1+j */
            float *r[5] = {rows[0], rows[1], rows[2], rows[3], rows[4]};
            for (int j = 0; j < 3; j++) dw_s2_split(src, &g, j - 1, r[j]);
            for (int y = 0; y < Ho; y++) {
                /* the next output row's two new input rows first, so that this row's loads
                 * find their stores done */
                if (y + 1 < Ho) {
                    dw_s2_split(src, &g, 2 * y + 2, r[3]);
                    dw_s2_split(src, &g, 2 * y + 3, r[4]);
                }
                dw_s2_row(avg, k, b, r, Wo, dst + (size_t)y * Wo, (Ho - y) * Wo);
                float *t0 = r[0], *t1 = r[1];
                r[0] = r[2], r[1] = r[3], r[2] = r[4], r[3] = t0, r[4] = t1;
            }
        }
    }
}

static void dw_s2(const sn_dw_args *a) {
    dw_s2_planes(0, a->in, a->in_ld, a->w, a->bias, a->dst, a->out, a->out_ld, a->C, a->n, a->H,
                 a->W, a->Ho, a->Wo);
}
#endif

static void dw(const sn_dw_args *a) {
    if (a->stride == 1 && a->H * a->W <= DW_FLAT_CHUNKS * VL) {
        dw_s1_flat(a);
        return;
    }
#ifdef DW_S2_ROWS
    if (a->stride == 2 && a->Wo <= DW_S2_MAXW) {
        dw_s2(a);
        return;
    }
#endif
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
            for (int y = 0; y < Ho; y++) {
                V carry[3] = {vset1(0.0f), vset1(0.0f), vset1(0.0f)};
                for (int x0 = 0; x0 < Wo; x0 += VL) {
                    V acc = bias;
                    for (int dy = 0; dy < 3; dy++) {
                        int iy = y * s - 1 + dy;
                        if (iy < 0 || iy >= H) continue;
                        V l, m, r;
                        if (s == 1)
                            taps_s1(src + (size_t)iy * W, W, x0, 0.0f, &l, &m, &r);
                        else
                            taps_s2(src + (size_t)iy * W, W, x0, 0.0f, &carry[dy], &l, &m, &r);
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
}

/* ---- pooling ---------------------------------------------------------------------------- */

/* AvgPool 3x3 stride 2 pad 1, the mean of 9 (padding counted as zero): the three input rows
 * are summed first (deinterleaving is linear), then split into the three taps once. */
static void avgpool_s2(const float *in, size_t in_ld, float *out, size_t out_ld, int C, int n,
                       int H, int W, int Ho, int Wo) {
#ifdef DW_S2_ROWS
    if (Wo <= DW_S2_MAXW) {
        dw_s2_planes(1, in, in_ld, NULL, NULL, NULL, out, out_ld, C, n, H, W, Ho, Wo);
        return;
    }
#endif
    V ninth = vset1(1.0f / 9.0f);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < n; i++) {
            const float *src = in + (size_t)c * in_ld + (size_t)i * H * W;
            float *d = out + (size_t)c * out_ld + (size_t)i * Ho * Wo;
            for (int y = 0; y < Ho; y++) {
                int y0 = imax(2 * y - 1, 0), y1 = imin(2 * y + 1, H - 1);
                V carry = vset1(0.0f);
                for (int x0 = 0; x0 < Wo; x0 += VL) {
                    int s = 2 * x0;
                    V a0 = vset1(0.0f), a1 = vset1(0.0f), l, m, r;
                    for (int iy = y0; iy <= y1; iy++) {
                        a0 = vadd(a0, load_cols(src + (size_t)iy * W, W, s, 0.0f));
                        a1 = vadd(a1, load_cols(src + (size_t)iy * W, W, s + VL, 0.0f));
                    }
                    vdeint(a0, a1, &m, &r);
                    l = vshift1(r, carry);
                    carry = r;
                    V acc = vmul(vadd(vadd(l, m), r), ninth);
                    if (x0 + VL <= Wo)
                        vstore(d + (size_t)y * Wo + x0, acc);
                    else
                        vstore_n(d + (size_t)y * Wo + x0, acc, Wo - x0);
                }
            }
        }
}

/* ---- stem: 3x3 stride 2 conv, 3 -> C channels, + bias + ReLU, fused with the maxpool -----
 * Per conv row: the 27 taps (input channel, dy, dx) of every output column are gathered once
 * into tap rows T[t] (stride-2 deinterleave), then each block of cb <= STEM_CB channels runs
 * STEM_NV*VL columns at a time with cb*STEM_NV accumulators in registers: per tap, STEM_NV
 * loads and cb weight broadcasts feed cb*STEM_NV FMAs. The ReLU
 * row goes to srow; the maxpool follows as in the scalar twin (horizontal max of the row,
 * vertical max over three rows kept in cur/prev). */

static AI void stem_blk(const int cb, int Ho, const float *T, size_t tld, const float *wl,
                        const float *bl, float *srow, size_t sld) {
    V zero = vset1(0.0f);
    /* rows are padded to 16 floats (SN_STEM_PAD), so the last block of columns stays inside */
    for (int x0 = 0; x0 < Ho; x0 += STEM_NV * VL) {
        V acc[STEM_NV][STEM_CB];
#pragma GCC unroll 24
        for (int j = 0; j < cb; j++)
#pragma GCC unroll 2
            for (int v = 0; v < STEM_NV; v++) acc[v][j] = vset1(bl[j]);
        for (int t = 0; t < 27; t++) {
            V a[STEM_NV];
#pragma GCC unroll 2
            for (int v = 0; v < STEM_NV; v++) a[v] = vload(T + t * tld + x0 + v * VL);
#pragma GCC unroll 24
            for (int j = 0; j < cb; j++) {
                V w = vset1(wl[t * cb + j]);
#pragma GCC unroll 2
                for (int v = 0; v < STEM_NV; v++) acc[v][j] = vfma(w, a[v], acc[v][j]);
            }
        }
#pragma GCC unroll 24
        for (int j = 0; j < cb; j++)
#pragma GCC unroll 2
            for (int v = 0; v < STEM_NV; v++)
                vstore(srow + j * sld + x0 + v * VL, vmax(acc[v][j], zero));
    }
}
_Static_assert(16 % (STEM_NV * VL) == 0, "stem rows are padded to 16 floats");

typedef void (*stem_blk_fn)(int Ho, const float *T, size_t tld, const float *wl, const float *bl,
                            float *srow, size_t sld);
#define STEM_BLK(R)                                                                                \
    static void stem_blk_##R(int Ho, const float *T, size_t tld, const float *wl, const float *bl, \
                             float *srow, size_t sld) {                                            \
        stem_blk(R, Ho, T, tld, wl, bl, srow, sld);                                                \
    }
STEM_BLK(1)
STEM_BLK(2)
STEM_BLK(3)
STEM_BLK(4)
STEM_BLK(5)
STEM_BLK(6)
#if STEM_CB > 6
STEM_BLK(7)
STEM_BLK(8)
STEM_BLK(9)
STEM_BLK(10)
STEM_BLK(11)
STEM_BLK(12)
#endif
#if STEM_CB > 12
STEM_BLK(13)
STEM_BLK(14)
STEM_BLK(15)
STEM_BLK(16)
STEM_BLK(17)
STEM_BLK(18)
STEM_BLK(19)
STEM_BLK(20)
STEM_BLK(21)
STEM_BLK(22)
STEM_BLK(23)
STEM_BLK(24)
#endif
static const stem_blk_fn stem_blks[STEM_CB + 1] = {
    NULL,        stem_blk_1,  stem_blk_2,  stem_blk_3,  stem_blk_4,  stem_blk_5,  stem_blk_6,
#if STEM_CB > 6
    stem_blk_7,  stem_blk_8,  stem_blk_9,  stem_blk_10, stem_blk_11, stem_blk_12,
#endif
#if STEM_CB > 12
    stem_blk_13, stem_blk_14, stem_blk_15, stem_blk_16, stem_blk_17, stem_blk_18, stem_blk_19,
    stem_blk_20, stem_blk_21, stem_blk_22, stem_blk_23, stem_blk_24,
#endif
};

#ifdef STEM_SPLIT
/* The vertical half of the stem's maxpool for the VL pooled columns at x0 of conv row y, h
 * being that row's horizontal 3-max: pooled row py is the max of conv rows 2py-1 (kept in
 * prev), 2py (kept in cur) and 2py+1, stored to o once complete (odd y, or the last row).
 * The interleaved stem below does the same inline, left as it was so that the AVX-512 and NEON
 * builds' code does not change. */
static AI void stem_pool_vert(V h, int y, int last, float *cp, float *pp, float *o, int x0,
                              int Po) {
    V v;
    if (y & 1) {
        v = vmax(h, vload(cp + x0));
        vstore(pp + x0, h);
    } else {
        v = y > 0 ? vmax(h, vload(pp + x0)) : h;
        vstore(cp + x0, v);
        if (!last) return;
    }
    if (x0 + VL <= Po)
        vstore(o + x0, v);
    else
        vstore_n(o + x0, v, Po - x0);
}

/* The stem on rows split four ways. Conv column x reads input columns 2x-1, 2x, 2x+1: for an
 * even x = 2u those are P3[u-1], P0[u], P1[u] and for an odd x = 2u+1 P1[u], P2[u], P3[u], where
 * Pk[u] is input column 4u+k. So each input row is split once (it serves two conv rows) into
 * P0..P3 and L = P3 one place to the right (L[0] = 0, the padding column), and every tap of
 * every conv column is a plain load from one of them. The conv then computes the even and the
 * odd columns of 8 u at a time (STEM_NV = 2 vectors) and stores them apart, E and O, which is
 * the order the 3-wide stride-2 max wants: pooled column u = max(O[u-1], E[u], O[u]), three
 * plain loads, where an interleaved row needed a deinterleave and a lane shift per vector. */
_Static_assert(STEM_NV == 2, "the split stem computes even and odd columns as its 2 vectors");

/* input row iy of plane src (zeros outside [0, S)) split into P0 P1 P2 P3 L at d, ud apart;
 * nu u's (a multiple of VL); 4u+k >= S reads as 0 */
static void stem_split(const float *src, int S, int iy, int nu, size_t ud, float *d) {
    if (iy < 0 || iy >= S) {
        for (int a = 0; a < 5; a++)
            for (int u = 0; u < nu; u += VL) vstore(d + a * ud + u, vset1(0.0f));
        return;
    }
    const float *row = src + (size_t)iy * S;
    V carry = vset1(0.0f);
    for (int u = 0; u < nu; u += VL) {
        V a[4], e1, o1, e2, o2, p[4];
        for (int v = 0; v < 4; v++) {
            int c0 = 4 * u + v * VL; /* first input column of this vector */
            if (c0 + VL <= S)
                a[v] = vload(row + c0);
            else
                a[v] = c0 < S ? vload_bits(row + c0, (1u << (S - c0)) - 1) : vset1(0.0f);
        }
        vdeint(a[0], a[1], &e1, &o1); /* columns 0 2 4 .. and 1 3 5 .. of a[0]:a[1] */
        vdeint(a[2], a[3], &e2, &o2);
        vdeint(e1, e2, &p[0], &p[2]); /* 4u and 4u+2 */
        vdeint(o1, o2, &p[1], &p[3]); /* 4u+1 and 4u+3 */
        for (int k = 0; k < 4; k++) vstore(d + k * ud + u, p[k]);
        vstore(d + 4 * ud + u, vshift1(p[3], carry));
        carry = p[3];
    }
}

/* cb channels of one conv row: even columns 2u from the taps te[t] + u, odd 2u+1 from to[t] + u,
 * ReLU'd into se / so (channel j at + j * sld) */
static AI void stem_blk2(const int cb, int nu, const float *const *te, const float *const *to,
                         const float *wl, const float *bl, float *se, float *so, size_t sld) {
    V zero = vset1(0.0f);
    for (int u0 = 0; u0 < nu; u0 += VL) {
        V acc[2][STEM_CB];
#pragma GCC unroll 24
        for (int j = 0; j < cb; j++) acc[0][j] = acc[1][j] = vset1(bl[j]);
#pragma GCC unroll 27
        for (int t = 0; t < 27; t++) {
            V a0 = vload(te[t] + u0), a1 = vload(to[t] + u0);
#pragma GCC unroll 24
            for (int j = 0; j < cb; j++) {
                V w = vset1(wl[t * cb + j]);
                acc[0][j] = vfma(w, a0, acc[0][j]);
                acc[1][j] = vfma(w, a1, acc[1][j]);
            }
        }
#pragma GCC unroll 24
        for (int j = 0; j < cb; j++) {
            vstore(se + j * sld + u0, vmax(acc[0][j], zero));
            vstore(so + j * sld + u0, vmax(acc[1][j], zero));
        }
    }
}

typedef void (*stem_blk2_fn)(int nu, const float *const *te, const float *const *to,
                             const float *wl, const float *bl, float *se, float *so, size_t sld);
#define STEM_BLK2(R)                                                                               \
    static void stem_blk2_##R(int nu, const float *const *te, const float *const *to,              \
                              const float *wl, const float *bl, float *se, float *so,              \
                              size_t sld) {                                                        \
        stem_blk2(R, nu, te, to, wl, bl, se, so, sld);                                             \
    }
STEM_BLK2(1)
STEM_BLK2(2)
STEM_BLK2(3)
STEM_BLK2(4)
STEM_BLK2(5)
STEM_BLK2(6)
_Static_assert(STEM_CB == 6, "stem_blk2s: blocks of 1..6 channels");
static const stem_blk2_fn stem_blk2s[STEM_CB + 1] = {
    NULL, stem_blk2_1, stem_blk2_2, stem_blk2_3, stem_blk2_4, stem_blk2_5, stem_blk2_6};

/* Scratch (floats, within SN_STEM_SCRATCH): 4 ring slots x 3 planes x 5 split arrays of ud,
 * one zero row's 5 arrays, the conv row (E and O per channel, sld apart, O[-1] = 0 before
 * each O), the pooled rows cur and prev, the weights by channel block and the bias. The
 * weights are laid out, and the vertical max done, as in the interleaved stem below, whose
 * code is left as it was so that the AVX-512 and NEON objects do not change (a shared helper
 * moved registers in the AVX-512 build). */
static void stem_pool(const float *in, int n, int S, const float *w, const float *bias, int C,
                      float *out, size_t out_ld, int Ho, int Po, float *scratch) {
    /* u runs over the even conv columns, Ne = Po of them; No = Ho / 2 odd ones */
    const int nu = (Po + VL - 1) / VL * VL, No = Ho / 2;
    const size_t ud = (size_t)nu, pld = SN_STEM_PAD(Po), sld = 2 * ud + VL;
    float *ring = scratch, *zrow = ring + 60 * ud, *srow = zrow + 5 * ud;
    float *cur = srow + (size_t)C * sld, *prev = cur + (size_t)C * pld,
          *wl = prev + (size_t)C * pld;
    float *bl = wl + 27 * SN_STEM_PAD(C);
    const int nb = (C + STEM_CB - 1) / STEM_CB, base = C / nb, extra = C % nb;
    for (int b = 0, c0 = 0; b < nb; b++) {
        int cb = base + (b < extra);
        for (int t = 0; t < 27; t++)
            for (int j = 0; j < cb; j++) wl[c0 * 27 + t * cb + j] = w[(size_t)(c0 + j) * 27 + t];
        c0 += cb;
    }
    for (int c = 0; c < C; c++) bl[c] = bias[c];
    for (size_t u = 0; u < 5 * ud; u++) zrow[u] = 0.0f;
    /* channel c's E at srow + c*sld, its O at + ud + VL, with O[-1] = 0 (never stored to) */
    for (int c = 0; c < C; c++) srow[(size_t)c * sld + ud + VL - 1] = 0.0f;
    for (int i = 0; i < n; i++) {
        const float *img = in + (size_t)i * 3 * S * S;
        for (int y = 0; y < Ho; y++) {
            /* input rows 2y-1, 2y, 2y+1 of each plane: the first is split already (slot of row
             * iy: (iy + 1) % 4; row -1 is the zero row) */
            const float *te[27], *to[27];
            for (int ci = 0; ci < 3; ci++) {
                const float *plane = img + (size_t)ci * S * S;
                for (int dy = 0; dy < 3; dy++) {
                    int iy = 2 * y - 1 + dy;
                    float *d = ring + ((size_t)((iy + 1) & 3) * 3 + ci) * 5 * ud;
                    const float *r = iy < 0 || iy >= S ? zrow : d;
                    if (dy > 0 && r == d) stem_split(plane, S, iy, nu, ud, d);
                    const float *P0 = r, *P1 = r + ud, *P2 = r + 2 * ud, *P3 = r + 3 * ud,
                                *L = r + 4 * ud;
                    int t = ci * 9 + dy * 3;
                    te[t] = L, te[t + 1] = P0, te[t + 2] = P1;
                    to[t] = P1, to[t + 1] = P2, to[t + 2] = P3;
                }
            }
            /* conv row y = 0 needs row -1 (zero) and rows 0, 1; row 2y-1 of y > 0 was split
             * as row 2(y-1)+1 */
            for (int b = 0, c0 = 0; b < nb; b++) {
                int cb = base + (b < extra);
                float *se = srow + (size_t)c0 * sld;
                stem_blk2s[cb](nu, te, to, wl + c0 * 27, bl + c0, se, se + ud + VL, sld);
                c0 += cb;
            }
            const int last = y == Ho - 1;
            for (int c = 0; c < C; c++) {
                const float *E = srow + (size_t)c * sld, *O = E + ud + VL;
                /* with Ho odd the last odd column is past the row: padding, 0 under the max */
                if (No < Po) ((float *)O)[No] = 0.0f;
                float *cp = cur + c * pld, *pp = prev + c * pld;
                float *o = out + (size_t)c * out_ld + (size_t)i * Po * Po + (size_t)(y / 2) * Po;
                for (int x0 = 0; x0 < Po; x0 += VL)
                    stem_pool_vert(vmax(vmax(vload(O + x0 - 1), vload(E + x0)), vload(O + x0)), y,
                                   last, cp, pp, o, x0, Po);
            }
        }
    }
}
#else
static void stem_pool(const float *in, int n, int S, const float *w, const float *bias, int C,
                      float *out, size_t out_ld, int Ho, int Po, float *scratch) {
    const size_t tld = SN_STEM_PAD(Ho), pld = SN_STEM_PAD(Po);
    float *T = scratch, *srow = T + 27 * tld, *cur = srow + (size_t)C * tld;
    float *prev = cur + (size_t)C * pld, *wl = prev + (size_t)C * pld,
          *bl = wl + 27 * SN_STEM_PAD(C);
    /* channel blocks of nearly equal size; block b's weights are wl[c0*27 + t*cb + j] */
    const int nb = (C + STEM_CB - 1) / STEM_CB, base = C / nb, extra = C % nb;
    for (int b = 0, c0 = 0; b < nb; b++) {
        int cb = base + (b < extra);
        for (int t = 0; t < 27; t++)
            for (int j = 0; j < cb; j++) wl[c0 * 27 + t * cb + j] = w[(size_t)(c0 + j) * 27 + t];
        c0 += cb;
    }
    for (int c = 0; c < C; c++) bl[c] = bias[c];
    for (int i = 0; i < n; i++) {
        const float *img = in + (size_t)i * 3 * S * S;
        for (int y = 0; y < Ho; y++) {
            for (int ci = 0; ci < 3; ci++)
                for (int dy = 0; dy < 3; dy++) {
                    float *Tr = T + (size_t)((ci * 3 + dy) * 3) * tld;
                    int iy = 2 * y - 1 + dy;
                    if (iy < 0 || iy >= S) {
                        for (size_t x = 0; x < 3 * tld; x++) Tr[x] = 0.0f;
                        continue;
                    }
                    const float *row = img + ((size_t)ci * S + iy) * S;
                    V carry = vset1(0.0f);
                    for (int x0 = 0; x0 < Ho; x0 += VL) {
                        V l, m, r;
                        taps_s2(row, S, x0, 0.0f, &carry, &l, &m, &r);
                        vstore(Tr + x0, l);
                        vstore(Tr + tld + x0, m);
                        vstore(Tr + 2 * tld + x0, r);
                    }
                }
            /* the two input rows conv row y+2 adds, into L2 (at batch > 1 the images come from L3;
             * prefetching into L1 instead stalls on the miss buffers) */
            for (int ci = 0; ci < 3; ci++)
                for (int iy = 2 * y + 4; iy < imin(2 * y + 6, S); iy++)
                    for (int x = 0; x < S; x += 16)
                        __builtin_prefetch(img + ((size_t)ci * S + iy) * S + x, 0, 2);
            for (int b = 0, c0 = 0; b < nb; b++) {
                int cb = base + (b < extra);
                stem_blks[cb](Ho, T, tld, wl + c0 * 27, bl + c0, srow + c0 * tld, tld);
                c0 += cb;
            }
            const int odd = y & 1, last = y == Ho - 1;
            for (int c = 0; c < C; c++) {
                const float *sr = srow + c * tld;
                float *cp = cur + c * pld, *pp = prev + c * pld;
                float *o = out + (size_t)c * out_ld + (size_t)i * Po * Po + (size_t)(y / 2) * Po;
                V carry = vset1(0.0f);
                for (int x0 = 0; x0 < Po; x0 += VL) {
                    V l, m, r, v;
                    taps_s2(sr, Ho, x0, 0.0f, &carry, &l, &m, &r);
                    V h = vmax(vmax(l, m), r);
                    if (odd) {
                        v = vmax(h, vload(cp + x0));
                        vstore(pp + x0, h);
                    } else {
                        v = y > 0 ? vmax(h, vload(pp + x0)) : h;
                        vstore(cp + x0, v);
                        if (!last) continue;
                    }
                    if (x0 + VL <= Po)
                        vstore(o + x0, v);
                    else
                        vstore_n(o + x0, v, Po - x0);
                }
            }
        }
    }
}

#endif /* STEM_SPLIT */

/* ---- global average pool and FC ---------------------------------------------------------- */

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

/* FC: blocks of FC_R output rows x up to FC_I images, FC_R*FC_I accumulators. The FC_R weight
 * rows stream in together (several sequential streams keep more misses in flight: at batch 1
 * the weights come from L3) and each weight vector serves FC_I images. */
#define FC_R 4
#define FC_I (VL == 16 ? 4 : 2)

static AI void fc_blk(const int ni, const float *feat, int C, const float *w, int o, int O,
                      const float *bias, float *logits) {
    V acc[FC_R][4]; /* FC_I <= 4 */
    const float *wr[FC_R];
    for (int r = 0; r < FC_R; r++) wr[r] = w + (size_t)(o + r < O ? o + r : o) * C;
#pragma GCC unroll 4
    for (int r = 0; r < FC_R; r++)
#pragma GCC unroll 4
        for (int i = 0; i < ni; i++) acc[r][i] = vset1(0.0f);
    int c = 0;
    for (; c + VL <= C; c += VL) {
        V f[4];
#pragma GCC unroll 4
        for (int i = 0; i < ni; i++) f[i] = vload(feat + (size_t)i * C + c);
#pragma GCC unroll 4
        for (int r = 0; r < FC_R; r++) {
            /* the same columns of the next block's rows, into L2: at batch 1 they come from L3 or
             * memory (prefetching into L1 stalls on the miss buffers: half the bandwidth) */
            __builtin_prefetch(wr[r] + (size_t)FC_R * C + c, 0, 2);
            V wv = vload(wr[r] + c);
#pragma GCC unroll 4
            for (int i = 0; i < ni; i++) acc[r][i] = vfma(wv, f[i], acc[r][i]);
        }
    }
    if (c < C) {
        int m = C - c;
#pragma GCC unroll 4
        for (int r = 0; r < FC_R; r++) {
            V wv = vload_n(wr[r] + c, 0, m, 0.0f);
#pragma GCC unroll 4
            for (int i = 0; i < ni; i++)
                acc[r][i] = vfma(wv, vload_n(feat + (size_t)i * C + c, 0, m, 0.0f), acc[r][i]);
        }
    }
    for (int r = 0; r < FC_R && o + r < O; r++)
        for (int i = 0; i < ni; i++)
            logits[(size_t)i * O + o + r] = (bias ? bias[o + r] : 0.0f) + vhsum(acc[r][i]);
}

static void fc(const float *feat, int n, int C, const float *w, const float *bias, int O,
               float *logits) {
    for (int o = 0; o < O; o += FC_R)
        for (int i = 0; i < n; i += FC_I) {
            int ni = imin(FC_I, n - i);
            const float *f = feat + (size_t)i * C;
            float *l = logits + (size_t)i * O;
            if (ni == FC_I)
                fc_blk(FC_I, f, C, w, o, O, bias, l);
            else if (ni == 1)
                fc_blk(1, f, C, w, o, O, bias, l);
            else if (ni == 2)
                fc_blk(2, f, C, w, o, O, bias, l);
            else
                fc_blk(3, f, C, w, o, O, bias, l);
        }
}

const sn_kernels SIMD_TABLE = {SIMD_NAME,  pw_packed_size, pack_pw,        pw, pw_scratch_size, dw,
                               avgpool_s2, stem_pool,      global_avgpool, fc};
