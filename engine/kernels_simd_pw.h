/* kernels_simd_pw.h - the grouped 1x1 convolution (a GEMM with a fused epilogue) of the SIMD
 * kernel tables, included by kernels_simd.h (which defines the vector vocabulary, NR, AI and
 * imin/imax first): row blocks packed at load, column panels of NR, the micro-tiles, and the
 * narrow-tail and packed-panel variants some ISAs choose (PW_NARROW, PW_PACK). */
/* ---- grouped 1x1 convolution -----------------------------------------------------------
 * M is split into nb = ceil(M/MRMAX) blocks of nearly equal size (sizes differ by at most 1,
 * so no row is padded). Block b holds rows [m0, m0+mr) packed k-major: w[k*mr + i]. */

static size_t pw_packed_size(int M, int K) {
#ifdef PW_NARROW
    return (size_t)M * (size_t)K + VL; /* pw_narrow reads a whole vector at each k */
#else
    return (size_t)M * (size_t)K;
#endif
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

#ifndef PW_PACK /* the strided micro-tiles (AVX-512, NEON) */
/* One micro-tile: mr rows x NR columns. tail 0: all NR columns; 1: nc < NR columns; 2: nc <=
 * VL columns (one vector, the second accumulator row is left out). pf, if not NULL, is the
 * next column panel (same ld): its K rows are prefetched while this tile runs, so the panel
 * the other row blocks then reuse is in cache by the time they get to it. */
static AI void pw_tile(const int mr, const int tail, int K, const float *in, size_t ld,
                       const float *w, const float *bias, float *out, size_t out_ld,
                       const float *res, size_t res_ld, int relu, int nc, const float *pf) {
    V acc0[MRMAX], acc1[MRMAX];
    const int two = tail != 2;
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) acc0[i] = acc1[i] = vset1(bias[i]);
    int n0 = tail ? imin(nc, VL) : VL, n1 = tail ? imax(nc - VL, 0) : VL;
    for (int k = 0; k < K; k++) {
        const float *ip = in + (size_t)k * ld;
        if (pf) {
            const float *q = pf + (size_t)k * ld;
            __builtin_prefetch(q, 0, PW_PF_LOC);
            __builtin_prefetch(q + NR - 1, 0, PW_PF_LOC);
        }
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

#ifdef HVL
/* Narrow tails on a CPU whose FMA cost scales with the vector width (AVX-512 on Zen 4): the
 * last nc <= VL + HVL columns as one full vector (wide) and one masked half vector, so a
 * 49-column plane costs 56 lanes of work rather than 64. */
static AI void pw_tile_h(const int mr, const int wide, int K, const float *in, size_t ld,
                         const float *w, const float *bias, float *out, size_t out_ld,
                         const float *res, size_t res_ld, int relu, int nc) {
    V acc0[MRMAX];
    HV acc1[MRMAX];
    const int off = wide ? VL : 0, nh = nc - off;
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) {
        if (wide) acc0[i] = vset1(bias[i]);
        acc1[i] = hvset1(bias[i]);
    }
    for (int k = 0; k < K; k++) {
        const float *ip = in + (size_t)k * ld;
        V a0 = wide ? vload(ip) : vset1(0.0f);
        HV a1 = hvload_n(ip + off, nh);
        const float *wk = w + (size_t)k * mr;
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            if (wide) acc0[i] = vfma(vset1(wk[i]), a0, acc0[i]);
            acc1[i] = hvfma(hvset1(wk[i]), a1, acc1[i]);
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) {
        float *o = out + (size_t)i * out_ld;
        if (res) {
            const float *r = res + (size_t)i * res_ld;
            if (wide) acc0[i] = vadd(acc0[i], vload(r));
            acc1[i] = hvadd(acc1[i], hvload_n(r + off, nh));
        }
        if (relu) {
            if (wide) acc0[i] = vmax(acc0[i], vset1(0.0f));
            acc1[i] = hvmax(acc1[i], hvset1(0.0f));
        }
        if (wide) vstore(o, acc0[i]);
        hvstore_n(o + off, acc1[i], nh);
    }
}
#define PW_TILE_H(R)                                                                               \
    static void pw_hw_##R(int K, const float *in, size_t ld, const float *w, const float *bias,    \
                          float *out, size_t out_ld, const float *res, size_t res_ld, int relu,    \
                          int nc, const float *pf) {                                               \
        (void)pf;                                                                                  \
        pw_tile_h(R, 1, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc);                   \
    }                                                                                              \
    static void pw_hn_##R(int K, const float *in, size_t ld, const float *w, const float *bias,    \
                          float *out, size_t out_ld, const float *res, size_t res_ld, int relu,    \
                          int nc, const float *pf) {                                               \
        (void)pf;                                                                                  \
        pw_tile_h(R, 0, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc);                   \
    }
#else
#define PW_TILE_H(R)
#endif

typedef void (*pw_tile_fn)(int K, const float *in, size_t ld, const float *w, const float *bias,
                           float *out, size_t out_ld, const float *res, size_t res_ld, int relu,
                           int nc, const float *pf);

#define PW_TILE(R)                                                                                 \
    static void pw_full_##R(int K, const float *in, size_t ld, const float *w, const float *bias,  \
                            float *out, size_t out_ld, const float *res, size_t res_ld, int relu,  \
                            int nc, const float *pf) {                                             \
        pw_tile(R, 0, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc, pf);                 \
    }                                                                                              \
    static void pw_tail_##R(int K, const float *in, size_t ld, const float *w, const float *bias,  \
                            float *out, size_t out_ld, const float *res, size_t res_ld, int relu,  \
                            int nc, const float *pf) {                                             \
        (void)pf;                                                                                  \
        pw_tile(R, 1, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc, NULL);               \
    }                                                                                              \
    static void pw_half_##R(int K, const float *in, size_t ld, const float *w, const float *bias,  \
                            float *out, size_t out_ld, const float *res, size_t res_ld, int relu,  \
                            int nc, const float *pf) {                                             \
        (void)pf;                                                                                  \
        pw_tile(R, 2, K, in, ld, w, bias, out, out_ld, res, res_ld, relu, nc, NULL);               \
    }                                                                                              \
    PW_TILE_H(R)
PW_TILE(1)
PW_TILE(2)
PW_TILE(3)
PW_TILE(4)
PW_TILE(5)
PW_TILE(6)
#if MRMAX > 6
PW_TILE(7)
PW_TILE(8)
#endif
#if MRMAX > 8
PW_TILE(9)
PW_TILE(10)
PW_TILE(11)
PW_TILE(12)
#endif
/* pw_x[mr]: the tile function for a row block of mr rows */
#define PW_TABLE(x)                                                                                \
    static const pw_tile_fn pw_##x[MRMAX + 1] = {NULL,       pw_##x##_1, pw_##x##_2, pw_##x##_3,   \
                                                 pw_##x##_4, pw_##x##_5, pw_##x##_6, PW_MORE(x)}
#if MRMAX > 8
#define PW_MORE(x) pw_##x##_7, pw_##x##_8, pw_##x##_9, pw_##x##_10, pw_##x##_11, pw_##x##_12
#elif MRMAX > 6
#define PW_MORE(x) pw_##x##_7, pw_##x##_8
#else
#define PW_MORE(x)
#endif
PW_TABLE(full);
PW_TABLE(tail);
PW_TABLE(half);
#ifdef HVL
PW_TABLE(hw);
PW_TABLE(hn);
#endif

#endif

#ifdef PW_NARROW
/* The last nc <= PW_NARROW columns (a 7x7 plane leaves 1 after three 16-column panels, a 14x14
 * one 4) on a CPU where each weight broadcast costs a load (AVX2): the vectors run over a row
 * block's mr <= VL rows instead, so one load of the k-th weights serves every column and a
 * column costs one broadcast and one FMA per k, where the column tile costs mr broadcasts for
 * one mostly empty vector. rb row blocks (rows m[r] .. m[r]+mr[r]-1) run together so that
 * rb * nc FMA chains hide the latency. Each output is bias, then one FMA per k in order, then
 * residual and ReLU: the operations of pw_tile in the same order, so an image gets the same
 * logits wherever its columns fall in a batch. */
static AI void pw_narrow(const int nc, const int rb, const int *m, const int *mr,
                         const sn_pw_args *a, size_t p) {
    const int K = a->K;
    const float *in = a->in + p;
    V acc[8][PW_NARROW];
#pragma GCC unroll 8
    for (int r = 0; r < rb; r++)
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) acc[r][j] = vload_n(a->bias + m[r], 0, mr[r], 0.0f);
    for (int k = 0; k < K; k++) {
        const float *ip = in + (size_t)k * a->in_ld;
        V x[PW_NARROW];
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) x[j] = vset1(ip[j]);
#pragma GCC unroll 8
        for (int r = 0; r < rb; r++) {
            /* lanes past mr[r] hold the next weights (or padding): their sums are not stored */
            V wk = vload(a->w + (size_t)m[r] * K + (size_t)k * mr[r]);
#pragma GCC unroll 4
            for (int j = 0; j < nc; j++) acc[r][j] = vfma(wk, x[j], acc[r][j]);
        }
    }
    float t[VL];
    for (int r = 0; r < rb; r++)
        for (int j = 0; j < nc; j++) {
            vstore(t, acc[r][j]);
            for (int i = 0; i < mr[r]; i++) {
                size_t row = (size_t)(m[r] + i);
                float v = a->res ? t[i] + a->res[row * a->res_ld + p + j] : t[i];
                a->out[row * a->out_ld + p + j] = a->relu && v < 0 ? 0.0f : v;
            }
        }
}

/* pw_narrow on columns [p, p+nc) of every row block, 8 blocks at a time for 1 column, 4 for 2,
 * 2 for 3-4 (6-8 FMA chains, enough to cover the FMA latency; more would not fit 16
 * registers) */
static AI void pw_narrow_cols(const int nc, const sn_pw_args *a, size_t p, int nb, int base,
                              int extra) {
    const int group = nc == 1 ? 8 : nc == 2 ? 4 : 2;
    int m[8], mr[8];
    for (int b = 0, m0 = 0; b < nb;) {
        int rb = imin(group, nb - b), r = 0;
        for (int i = 0; i < rb; i++, b++) {
            m[i] = m0;
            mr[i] = base + (b < extra);
            m0 += mr[i];
        }
        if (rb == group) {
            pw_narrow(nc, group, m, mr, a, p);
            continue;
        }
        for (; r + 1 < rb; r += 2) pw_narrow(nc, 2, m + r, mr + r, a, p);
        if (r < rb) pw_narrow(nc, 1, m + r, mr + r, a, p);
    }
}

static void pw_narrow_1(const sn_pw_args *a, size_t p, int nb, int base, int extra) {
    pw_narrow_cols(1, a, p, nb, base, extra);
}
static void pw_narrow_2(const sn_pw_args *a, size_t p, int nb, int base, int extra) {
    pw_narrow_cols(2, a, p, nb, base, extra);
}
static void pw_narrow_3(const sn_pw_args *a, size_t p, int nb, int base, int extra) {
    pw_narrow_cols(3, a, p, nb, base, extra);
}
static void pw_narrow_4(const sn_pw_args *a, size_t p, int nb, int base, int extra) {
    pw_narrow_cols(4, a, p, nb, base, extra);
}
static void (*const pw_narrows[PW_NARROW + 1])(const sn_pw_args *, size_t, int, int, int) = {
    NULL, pw_narrow_1, pw_narrow_2, pw_narrow_3, pw_narrow_4};
_Static_assert(PW_NARROW == 4 && MRMAX <= VL, "pw_narrow: 1..4 columns, one vector of rows");
#endif

#ifdef PW_PACK
/* Packed panels (AVX2). Each column panel's K x NR inputs are copied once into a contiguous,
 * aligned buffer (zero past the panel's nc columns) that every row block then reads: rows of
 * the panel are 64 bytes apart instead of in_ld floats (no split cache lines, one page for 64
 * rows), and the micro-tile's k loop runs four k at a time with constant offsets from two
 * pointers. Per k that is 2 loads + mr broadcasts + 2*mr FMAs and a quarter of the loop
 * overhead: about 21 instructions per 12 FMAs for a 6-row block, against 25 with the strided
 * loads (and a prefetch test) of pw_tile. That matters on a core shared with a busy SMT
 * sibling, where instructions, not FMAs, are the limit (docs/kernels.md). */
/* GEMMs with K <= PW_ROWS_K and all panels packed in at most PW_ROWS_FLOATS run row block by
 * row block instead (pw_rows). */
#define PW_ROWS_K      96
#define PW_ROWS_FLOATS (160 * 256) /* 160 KiB, well inside a 512 KiB L2 */
/* When M has at most PW_DIRECT_NB row blocks (M <= 24) and K <= PW_ROWS_K, a panel is read by
 * so few row blocks that copying it costs more than it saves (a copy is 2 loads + 2 stores per
 * k against 2 loads + mr broadcasts + 2*mr FMAs per row block): the row blocks read the full
 * panels in place, rows in_ld apart (mode 3), in pw_rows and in pw alike; only a tail panel is
 * packed. On Zen 3 such GEMMs take 0.78-0.92 of the time (docs/kernels.md). */
#define PW_DIRECT_NB 4

static size_t pw_scratch_size(int M, int K, size_t P) {
    (void)M;
    size_t all = (size_t)K * ((P + NR - 1) / NR * NR), one = (size_t)K * NR;
    /* a call with fewer columns may pack all of them where one with P would not */
    size_t rows = all < PW_ROWS_FLOATS ? all : PW_ROWS_FLOATS;
    return (K <= PW_ROWS_K && rows > one ? rows : one) + 16; /* + alignment */
}

/* A tail panel (nc < NR columns) into buf, zero past nc. Full panels are copied by their first
 * row block as it reads them (pw_ptile, mode 2). */
static void pw_pack_tail(const float *in, size_t ld, int K, int nc, float *buf) {
    int n0 = imin(nc, VL), n1 = imax(nc - VL, 0);
    for (int k = 0; k < K; k++) {
        const float *s = in + (size_t)k * ld;
        vstore(buf + (size_t)k * NR, vload_n(s, 0, n0, 0.0f));
        vstore(buf + (size_t)k * NR + VL, n1 ? vload_n(s + VL, 0, n1, 0.0f) : vset1(0.0f));
    }
}

/* The epilogue of a micro-tile: residual, ReLU, store. tail 0: all NR columns; 1: nc < NR
 * columns; 2: nc <= VL columns, in acc0 only. */
static AI void pw_epi(const int mr, const int tail, V *acc0, V *acc1, float *out, size_t out_ld,
                      const float *res, size_t res_ld, int relu, int nc) {
    const int two = tail != 2;
    int n0 = tail ? imin(nc, VL) : VL, n1 = tail ? imax(nc - VL, 0) : VL;
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

/* mr rows x NR columns. mode 0: one vector of columns (nc <= VL) from the packed panel x;
 * 1: two vectors from the packed panel; 2: a full panel read from the activations (x, rows ld
 * apart) and copied into buf on the way, with the next panel prefetched into L2, so the
 * panel is packed by the FMA-bound first row block at the cost of 2 stores per k; 3: a full
 * panel read from the activations in place (rows ld apart), nothing copied. Each output
 * is bias, then one FMA per k in order, then residual and ReLU, as in pw_narrow (so an image
 * gets the same logits wherever its columns fall in a batch). */
static AI void pw_ptile(const int mr, const int mode, int K, const float *x, size_t ld, float *buf,
                        const float *w, const float *bias, float *out, size_t out_ld,
                        const float *res, size_t res_ld, int relu, int nc) {
    const int two = mode != 0;
    V acc0[MRMAX], acc1[MRMAX];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++) acc0[i] = acc1[i] = vset1(bias[i]);
    /* unrolled by GCC with constant offsets (written as one loop: a hand-unrolled body made GCC
     * 12 rotate registers and spill accumulators) */
    const size_t step = mode >= 2 ? ld : NR;
#pragma GCC unroll 4
    for (int k = 0; k < K; k++, x += step, w += mr) {
        V a0 = vload(x), a1 = two ? vload(x + VL) : a0;
        if (mode == 2) {
            __builtin_prefetch(x + NR, 0, PW_PF_LOC);
            vstore(buf, a0);
            vstore(buf + VL, a1);
            buf += NR;
        }
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            V b = vset1(w[i]);
            acc0[i] = vfma(b, a0, acc0[i]);
            if (two) acc1[i] = vfma(b, a1, acc1[i]);
        }
    }
    if (mode == 0)
        pw_epi(mr, 2, acc0, acc1, out, out_ld, res, res_ld, relu, nc);
    else if (nc == NR)
        pw_epi(mr, 0, acc0, acc1, out, out_ld, res, res_ld, relu, nc);
    else
        pw_epi(mr, 1, acc0, acc1, out, out_ld, res, res_ld, relu, nc);
}

typedef void (*pw_ptile_fn)(int K, const float *x, size_t ld, float *buf, const float *w,
                            const float *bias, float *out, size_t out_ld, const float *res,
                            size_t res_ld, int relu, int nc);
#define PW_PTILE_M(R, MODE)                                                                        \
    static void pw_p##MODE##_##R(int K, const float *x, size_t ld, float *buf, const float *w,     \
                                 const float *bias, float *out, size_t out_ld, const float *res,   \
                                 size_t res_ld, int relu, int nc) {                                \
        pw_ptile(R, MODE, K, x, ld, buf, w, bias, out, out_ld, res, res_ld, relu, nc);             \
    }
#define PW_PTILE(R) PW_PTILE_M(R, 0) PW_PTILE_M(R, 1) PW_PTILE_M(R, 2)
PW_PTILE(1)
PW_PTILE(2)
PW_PTILE(3)
PW_PTILE(4)
PW_PTILE(5)
PW_PTILE(6)
_Static_assert(MRMAX == 6, "pw_ptiles: rows 1..6");
static const pw_ptile_fn pw_ptiles[3][MRMAX + 1] = {
    {NULL, pw_p0_1, pw_p0_2, pw_p0_3, pw_p0_4, pw_p0_5, pw_p0_6},
    {NULL, pw_p1_1, pw_p1_2, pw_p1_3, pw_p1_4, pw_p1_5, pw_p1_6},
    {NULL, pw_p2_1, pw_p2_2, pw_p2_3, pw_p2_4, pw_p2_5, pw_p2_6}};

/* One row block of mr rows along n full panels, the j-th read at x + j * xs (mode 1: packed,
 * xs = K * NR; mode 3: in place, rows ld apart, xs = NR), its outputs at out + j * NR: the
 * tiles inlined into one loop, without a call per tile. */
static AI void pw_sweep(const int mr, const int mode, size_t n, int K, const float *x, size_t xs,
                        size_t ld, const float *w, const float *bias, float *out, size_t out_ld,
                        const float *res, size_t res_ld, int relu) {
    for (size_t j = 0; j < n; j++, x += xs, out += NR, res = res ? res + NR : NULL)
        pw_ptile(mr, mode, K, x, ld, NULL, w, bias, out, out_ld, res, res_ld, relu, NR);
}
typedef void (*pw_sweep_fn)(size_t n, int K, const float *x, size_t xs, size_t ld, const float *w,
                            const float *bias, float *out, size_t out_ld, const float *res,
                            size_t res_ld, int relu);
#define PW_SWEEP_M(R, MODE)                                                                        \
    static void pw_s##MODE##_##R(size_t n, int K, const float *x, size_t xs, size_t ld,            \
                                 const float *w, const float *bias, float *out, size_t out_ld,     \
                                 const float *res, size_t res_ld, int relu) {                      \
        pw_sweep(R, MODE, n, K, x, xs, ld, w, bias, out, out_ld, res, res_ld, relu);               \
    }

/* n row blocks of mr rows over one full panel at x (mode 1: packed; 3: in place, rows ld
 * apart), block by block down the weights, bias, output and residual rows */
static AI void pw_bsweep(const int mr, const int mode, int n, int K, const float *x, size_t ld,
                         const float *w, const float *bias, float *out, size_t out_ld,
                         const float *res, size_t res_ld, int relu) {
    for (int b = 0; b < n; b++) {
        pw_ptile(mr, mode, K, x, ld, NULL, w, bias, out, out_ld, res, res_ld, relu, NR);
        w += (size_t)mr * K, bias += mr, out += (size_t)mr * out_ld;
        res = res ? res + (size_t)mr * res_ld : NULL;
    }
}
typedef void (*pw_bsweep_fn)(int n, int K, const float *x, size_t ld, const float *w,
                             const float *bias, float *out, size_t out_ld, const float *res,
                             size_t res_ld, int relu);
#define PW_BSWEEP_M(R, MODE)                                                                       \
    static void pw_b##MODE##_##R(int n, int K, const float *x, size_t ld, const float *w,          \
                                 const float *bias, float *out, size_t out_ld, const float *res,   \
                                 size_t res_ld, int relu) {                                        \
        pw_bsweep(R, MODE, n, K, x, ld, w, bias, out, out_ld, res, res_ld, relu);                  \
    }
#define PW_SWEEP(R) PW_SWEEP_M(R, 1) PW_SWEEP_M(R, 3) PW_BSWEEP_M(R, 1) PW_BSWEEP_M(R, 3)
PW_SWEEP(1)
PW_SWEEP(2)
PW_SWEEP(3)
PW_SWEEP(4)
PW_SWEEP(5)
PW_SWEEP(6)
static const pw_sweep_fn pw_sweeps[2][MRMAX + 1] = {
    {NULL, pw_s1_1, pw_s1_2, pw_s1_3, pw_s1_4, pw_s1_5, pw_s1_6},
    {NULL, pw_s3_1, pw_s3_2, pw_s3_3, pw_s3_4, pw_s3_5, pw_s3_6}};
static const pw_bsweep_fn pw_bsweeps[2][MRMAX + 1] = {
    {NULL, pw_b1_1, pw_b1_2, pw_b1_3, pw_b1_4, pw_b1_5, pw_b1_6},
    {NULL, pw_b3_1, pw_b3_2, pw_b3_3, pw_b3_4, pw_b3_5, pw_b3_6}};

/* Small K: every panel packed first (K x NR each, in order), then each row block runs along
 * all of them, so its weights stay in L1 and its output and residual rows are walked in
 * order (a few sequential streams the prefetcher follows, where panel by panel each tile
 * starts mr new rows); the packed panels stream from L2 in order. */
static void pw_rows(const sn_pw_args *a, float *buf, int nb, int base, int extra) {
    const int K = a->K;
    const size_t P = a->P, ld = a->out_ld, pk = (size_t)K * NR;
    const size_t nfull = P / NR; /* full panels */
    const int tail = (int)(P - nfull * NR);
#ifdef PW_NARROW
    const int packed_tail = tail > PW_NARROW;
#else
    const int packed_tail = tail > 0;
#endif
    const size_t np = nfull + (size_t)packed_tail; /* packed panels */
    const int direct = nb <= PW_DIRECT_NB;         /* full panels read in place (mode 3) */
    /* Full panels, one input row at a time: each row k is read left to right (one sequential
     * stream the prefetcher follows) and scattered into the panels (writes into this buffer,
     * which stays in L2), where panel by panel the K rows would be K strided streams. */
    for (int k = 0; k < K && !direct; k++) {
        const float *s = a->in + (size_t)k * a->in_ld;
        float *d = buf + (size_t)k * NR;
        for (size_t j = 0; j < nfull; j++, s += NR, d += pk) {
            vstore(d, vload(s));
            vstore(d + VL, vload(s + VL));
        }
    }
    float *tbuf = direct ? buf : buf + nfull * pk; /* the packed tail panel */
    if (packed_tail) pw_pack_tail(a->in + nfull * NR, a->in_ld, K, tail, tbuf);
    for (int b = 0, m0 = 0; b < nb; b++) {
        int mr = base + (b < extra);
        const float *w = a->w + (size_t)m0 * K, *bias = a->bias + m0;
        float *out = a->out + (size_t)m0 * ld;
        const float *res = a->res ? a->res + (size_t)m0 * a->res_ld : NULL;
        if (nfull)
            pw_sweeps[direct][mr](nfull, K, direct ? a->in : buf, direct ? NR : pk, a->in_ld, w,
                                  bias, out, ld, res, a->res_ld, a->relu);
        if (packed_tail) {
            size_t p = nfull * NR;
            pw_ptiles[tail <= VL ? 0 : 1][mr](K, tbuf, 0, NULL, w, bias, out + p, ld,
                                              res ? res + p : NULL, a->res_ld, a->relu, tail);
        }
        m0 += mr;
    }
#ifdef PW_NARROW
    size_t p = np * NR;
    if (p < P) pw_narrows[P - p](a, p, nb, base, extra);
#endif
}

static void pw(const sn_pw_args *a) {
    int M = a->M, K = a->K, nb = (M + MRMAX - 1) / MRMAX, base = M / nb, extra = M % nb;
    size_t P = a->P, ld = a->out_ld;
    float *buf = (float *)(((uintptr_t)a->scratch + 63) & ~(uintptr_t)63);
    if (K <= PW_ROWS_K && (size_t)K * ((P + NR - 1) / NR * NR) <= PW_ROWS_FLOATS) {
        pw_rows(a, buf, nb, base, extra);
        return;
    }
    /* few row blocks and a small K (a batch's wider GEMM): full panels read in place, as in
     * pw_rows */
    const int direct = nb <= PW_DIRECT_NB && K <= PW_ROWS_K;
    for (size_t p = 0; p < P; p += NR) {
        int nc = P - p < NR ? (int)(P - p) : NR;
#ifdef PW_NARROW
        if (nc <= PW_NARROW) {
            pw_narrows[nc](a, p, nb, base, extra);
            continue;
        }
#endif
        if (nc == NR) {
            /* the first row block packs the panel (unless direct), then the blocks of base + 1
             * rows and those of base rows each in one sweep */
            int m0 = 0, b = 0;
            const float *x = direct ? a->in + p : buf;
            const float *res = a->res ? a->res + p : NULL;
            if (!direct) {
                pw_ptiles[2][base + (extra > 0)](K, a->in + p, a->in_ld, buf, a->w, a->bias,
                                                 a->out + p, ld, res, a->res_ld, a->relu, NR);
                m0 = base + (extra > 0), b = 1;
            }
            for (int g = 0; g < 2; g++) {
                int mr = g ? base : base + 1, n = g ? nb - imax(b, extra) : extra - b;
                if (n <= 0) continue;
                pw_bsweeps[direct][mr](n, K, x, a->in_ld, a->w + (size_t)m0 * K, a->bias + m0,
                                       a->out + (size_t)m0 * ld + p, ld,
                                       res ? res + (size_t)m0 * a->res_ld : NULL, a->res_ld,
                                       a->relu);
                m0 += n * mr, b += n;
            }
            continue;
        }
        pw_pack_tail(a->in + p, a->in_ld, K, nc, buf);
        int m0 = 0;
        for (int b = 0; b < nb; b++) {
            int mr = base + (b < extra);
            pw_ptiles[nc <= VL ? 0 : 1][mr](K, buf, a->in_ld, buf, a->w + (size_t)m0 * K,
                                            a->bias + m0, a->out + (size_t)m0 * ld + p, ld,
                                            a->res ? a->res + (size_t)m0 * a->res_ld + p : NULL,
                                            a->res_ld, a->relu, nc);
            m0 += mr;
        }
    }
}
#else
static size_t pw_scratch_size(int M, int K, size_t P) {
    (void)M, (void)K, (void)P;
    return 0;
}

static void pw(const sn_pw_args *a) {
    int M = a->M, K = a->K, nb = (M + MRMAX - 1) / MRMAX, base = M / nb, extra = M % nb;
    size_t P = a->P, ld = a->out_ld;
    for (size_t p = 0; p < P; p += NR) {
        int nc = P - p < NR ? (int)(P - p) : NR;
        const pw_tile_fn *fn = nc == NR ? pw_full : nc > VL ? pw_tail : pw_half;
#ifdef HVL
        if (nc < NR) fn = nc > VL + HVL ? pw_tail : nc > VL ? pw_hw : nc > HVL ? pw_half : pw_hn;
#endif
        /* the first row block prefetches the next full panel */
        const float *pf = p + 2 * NR <= P ? a->in + p + NR : NULL;
        int m0 = 0;
        for (int b = 0; b < nb; b++) {
            int mr = base + (b < extra);
            fn[mr](K, a->in + p, a->in_ld, a->w + (size_t)m0 * K, a->bias + m0,
                   a->out + (size_t)m0 * ld + p, ld,
                   a->res ? a->res + (size_t)m0 * a->res_ld + p : NULL, a->res_ld, a->relu, nc,
                   b == 0 ? pf : NULL);
            m0 += mr;
        }
    }
}
#endif
