/* engine.c - an engine instance: the forward pass over a batch, and the activation workspace
 * planned for a maximum batch. No allocation happens in sn_engine_run.
 *
 * The network, in the order it runs (shapes per tile of n images; docs/DESIGN.md, "The engine"):
 *
 *   input     n x [3][S][S]                 NCHW, preprocessed, S = 224
 *   stem      conv 3x3/2 (3 -> C0) + ReLU, maxpool 3x3/2       -> X [C0][n][56*56]
 *   stages 2, 3, 4: repeats 4, 8, 4 units, the first of each with stride 2; one unit is
 *     A = ReLU(pw1(X))                      [mid][n][HW]     grouped 1x1 (unit 0: not grouped)
 *     B = shuffle(dw(A))                    [mid][n][HWo]    depthwise 3x3, stride 1 or 2;
 *                                                            channel c is written to dst[c]
 *     stride 1:  X = ReLU(X + pw2(B))       [C][n][HW]       in place (residual epilogue)
 *     stride 2:  Y = [avgpool(X) | ReLU(pw2(B))]  [Cin + outs][n][HWo], then X and Y swap
 *   feat = global average pool              [n][C_last]
 *   logits = fc(feat)                       [n][classes]
 *
 * BN is folded into every conv at load (model.c). Activations are planar [C][n][H*W] (see
 * shufflenet.h). A view of a tensor is (base, ld): channel c of image i starts at
 * base + c*ld + i*H*W, so images i0.. of a batch tensor are the view (base + i0*H*W, ld) and
 * every kernel runs on any contiguous run of images.
 *
 * Batch tiling: each stage s runs tile[s] images at a time (sn_engine_create: the stem and
 * stage 2 one image at a time, stages 3 and 4 in tiles sized to their activations when their
 * weights are too big to stay in L2 anyway, which widens their GEMMs and reuses each weight
 * across the tile). The stem writes the pooled stage-2 input directly (its conv output lives
 * only in a few rows of stem_scratch). The tiles nest: to run stage s on a tile, the stages
 * below run tile[s-1] images at a time until the tile's input is complete, so a stage boundary
 * buffer holds one tile of the next stage, not the whole batch. Inside a tile the four buffers
 * X, Y, A, B of the unit above suffice. The first unit of a stage reads its input straight
 * from the boundary buffer and the last unit writes straight into the next one, so the tiling
 * costs no copies. */
#include "engine/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct sn_engine {
    const sn_model *m;
    const sn_kernels *k;
    int max_batch;
    int tile[SN_MAX_STAGES];           /* images per tile of stage s (stage 2, 3, 4) */
    int first_unit[SN_MAX_STAGES + 1]; /* stage s runs units first_unit[s] .. first_unit[s+1]-1 */
    /* t below is the tile of the stage running; each buffer is sized for the largest stage */
    float *x;            /* [C][t][HW]    unit input; stride-1 units update it in place */
    float *y;            /* [C][t][HWo]   stride-2 unit output (then X and Y swap) */
    float *a;            /* [mid][t][HW]  first 1x1 output */
    float *b;            /* [mid][t][HWo] depthwise output, already shuffled */
    float *bnd[2];       /* [C_s][tile[s+1]][HW] output of stage 2 (bnd[0]), stage 3 (bnd[1]) */
    float *feat;         /* [max_batch][C_last] pooled features */
    float *stem_scratch; /* SN_STEM_SCRATCH(C0, stem_hw, pool_hw) floats */
    float *pw_scratch;   /* the largest pw_scratch_size of the model's 1x1 convs */
    const float **in;    /* [max_batch] image pointers, for sn_engine_run's contiguous input */
    void *block;         /* the one allocation x .. stem_scratch live in */
};

typedef struct {
    float *p;
    size_t ld;
} view;

/* ---- the forward pass ------------------------------------------------------------------- */

/* One grouped 1x1 conv: `groups` GEMMs over P columns. */
static void pointwise(const sn_engine *e, const float *w, size_t gs, const float *bias, int groups,
                      int cin, int cout, view in, view out, const float *res, size_t res_ld,
                      int relu, size_t P) {
    int K = cin / groups, M = cout / groups;
    for (int j = 0; j < groups; j++) {
        sn_pw_args a = {K,
                        M,
                        P,
                        in.p + (size_t)j * K * in.ld,
                        in.ld,
                        w + j * gs,
                        bias + (size_t)j * M,
                        out.p + (size_t)j * M * out.ld,
                        out.ld,
                        res ? res + (size_t)j * M * res_ld : NULL,
                        res_ld,
                        relu,
                        e->pw_scratch};
        e->k->pw(&a);
    }
}

/* Unit u on n images: input x; output into `dst` if given (the stage's last unit), else in
 * place (stride 1) or into the tile buffer Y (stride 2). Returns the output view. */
static view run_unit(sn_engine *e, int u, int n, view x, const view *dst) {
    const sn_model *m = e->m;
    const sn_kernels *k = e->k;
    const sn_unit *U = &m->units[u];
    int g = m->info.groups;
    size_t hw = (size_t)U->h * U->h, hwo = (size_t)U->ho * U->ho;
    view a = {e->a, n * hw}, b = {e->b, n * hwo};
    /* A [mid][n][HW] = ReLU(pw1(X)) */
    pointwise(e, U->pw1_w, U->pw1_gs, U->pw1_b, U->g1, U->cin, U->mid, x, a, NULL, 0, 1, n * hw);
    /* B [mid][n][HWo] = shuffle(dw(A)): channel c lands on dst[c] */
    sn_dw_args d = {U->mid, n,    U->h,    U->h,    U->ho, U->ho, U->stride,
                    a.p,    a.ld, U->dw_w, U->dw_b, b.p,   b.ld,  U->dst};
    k->dw(&d);
    if (U->stride == 1) { /* X [C][n][HW] = ReLU(X + pw2(B)), in place unless dst */
        view out = dst ? *dst : x;
        pointwise(e, U->pw2_w, U->pw2_gs, U->pw2_b, g, U->mid, U->outs, b, out, x.p, x.ld, 1,
                  n * hwo);
        return out;
    }
    /* Y [cin + outs][n][HWo] = [avgpool(X) | ReLU(pw2(B))] */
    view y = dst ? *dst : (view){x.p == e->x ? e->y : e->x, n * hwo};
    k->avgpool_s2(x.p, x.ld, y.p, y.ld, U->cin, n, U->h, U->h, U->ho, U->ho);
    view br = {y.p + (size_t)U->cin * y.ld, y.ld};
    pointwise(e, U->pw2_w, U->pw2_gs, U->pw2_b, g, U->mid, U->outs, b, br, NULL, 0, 1, n * hwo);
    return y;
}

/* Images [i0, i0+n) (n <= tile[s]) through stages 0..s. Stage s reads its input from
 * bnd[(s-1)&1], which the stages below fill first, tile[s-1] images at a time; its output goes
 * to *out, or for the last stage is pooled into feat. */
static void run_upto(sn_engine *e, int s, const float *const *in, int i0, int n, const view *out) {
    const sn_model *m = e->m;
    const sn_model_info *I = &m->info;
    const sn_kernels *k = e->k;
    int u0 = e->first_unit[s], u1 = e->first_unit[s + 1];
    view x;
    if (s == 0) {
        int S = I->input_size, sh = m->stem_hw, ph = m->pool_hw;
        x = (view){e->x, (size_t)n * ph * ph};
        for (int i = 0; i < n; i++) /* images need not be adjacent: one stem call each */
            k->stem_pool(in[i0 + i], 1, S, m->stem_w, m->stem_b, I->stem_channels,
                         x.p + (size_t)i * ph * ph, x.ld, sh, ph, e->stem_scratch);
    } else {
        size_t hw = (size_t)m->units[u0].h * m->units[u0].h;
        x = (view){e->bnd[(s - 1) & 1], n * hw};
        for (int j = 0; j < n; j += e->tile[s - 1]) {
            view d = {x.p + j * hw, x.ld};
            run_upto(e, s - 1, in, i0 + j, n - j < e->tile[s - 1] ? n - j : e->tile[s - 1], &d);
        }
    }
    for (int u = u0; u < u1; u++) x = run_unit(e, u, n, x, u == u1 - 1 ? out : NULL);
    if (!out) {
        int hw = m->final_hw * m->final_hw;
        k->global_avgpool(x.p, x.ld, m->final_channels, n, hw,
                          e->feat + (size_t)i0 * m->final_channels);
    }
}

int sn_engine_run_ptrs(sn_engine *e, const float *const *inputs, int N, float *logits) {
    if (N < 1 || N > e->max_batch) return -1;
    const sn_model *m = e->m;
    int last = m->info.num_stages - 1, T = e->tile[last];
    for (int i = 0; i < N; i += T) run_upto(e, last, inputs, i, N - i < T ? N - i : T, NULL);
    e->k->fc(e->feat, N, m->final_channels, m->fc_w, m->fc_b, m->info.num_classes, logits);
    return 0;
}

int sn_engine_run(sn_engine *e, const float *input, int N, float *logits) {
    if (N < 1 || N > e->max_batch) return -1;
    size_t isz = (size_t)3 * e->m->info.input_size * e->m->info.input_size;
    for (int i = 0; i < N; i++) e->in[i] = input + (size_t)i * isz;
    return sn_engine_run_ptrs(e, e->in, N, logits);
}

/* ---- the workspace ---------------------------------------------------------------------- */

/* Activation bytes a tile of stages 3 and 4 may use: 2.5 x this core's L2 (sn_cache_size: 1.25
 * MiB on a 512 KiB Zen 3, 2.5 MiB on a 1 MiB Zen 4), and the most images in one. Measured batch-8
 * runs do best with the stem and stage 2 one image at a time (large planes, nothing to gain in
 * GEMM width) and tiles of up to 4 images after it (wider GEMMs, each weight reused across the
 * tile), even past the L2 size. */
#define TILE_BUDGET(l2) ((l2)*5 / 2)
#define TILE_MAX        4
/* A stage whose weights take fewer bytes than the L2 keeps them there from one image to the
 * next anyway: tiling it only spreads its activations out of L1/L2 (measured on the 0.5x
 * models). */
#define TILE_WEIGHTS(l2) (l2)

/* The workspace starts on a 2 MiB boundary and asks for transparent huge pages: a 1x1 conv
 * reads its input K rows of a plane apart (3 KB at 28x28), so with 4 KiB pages nearly every
 * row of a column panel is a TLB miss. */
#define BLOCK_ALIGN ((size_t)2 << 20)

static size_t round16(size_t n) {
    return (n + 15) & ~(size_t)15;
}

static size_t maxz(size_t a, size_t b) {
    return a > b ? a : b;
}

sn_engine *sn_engine_create(const sn_model *m, int max_batch, char *err, size_t errlen) {
    if (max_batch < 1 || max_batch > 4096) {
        snprintf(err, errlen, "max batch %d out of range [1, 4096]", max_batch);
        return NULL;
    }
    sn_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    const sn_model_info *I = &m->info;
    e->m = m;
    e->k = m->kernels;
    e->max_batch = max_batch;
    /* SHUFFLENET_TILE=T or T2,T3,T4 forces the tile sizes (for experiments). */
    int forced[SN_MAX_STAGES] = {0};
    const char *t = getenv("SHUFFLENET_TILE");
    for (int s = 0; t && *t && s < SN_MAX_STAGES; s++) {
        forced[s] = atoi(t);
        const char *c = strchr(t, ',');
        if (c) t = c + 1;
    }
    /* Per-image floats of each stage's largest activation (X/Y) and bottleneck (A/B), and of
     * each stage's output (the whole-batch boundary buffers). */
    size_t act[SN_MAX_STAGES] = {0}, mid[SN_MAX_STAGES] = {0}, bnd[SN_MAX_STAGES] = {0};
    size_t wts[SN_MAX_STAGES] = {0}; /* weight floats of each stage */
    size_t nw = 0;                   /* pw scratch floats */
    act[0] = (size_t)I->stem_channels * m->pool_hw * m->pool_hw;
    int u = 0;
    for (int s = 0; s < I->num_stages; s++) {
        e->first_unit[s] = u;
        for (int r = 0; r < I->stage_repeats[s]; r++, u++) {
            const sn_unit *U = &m->units[u];
            size_t in = (size_t)U->cin * U->h * U->h;
            size_t out = (size_t)(U->stride == 2 ? U->cin + U->outs : U->outs) * U->ho * U->ho;
            /* the first unit of stages 3, 4 reads the whole-batch buffer, not the tile's */
            act[s] = maxz(act[s], s > 0 && r == 0 ? out : maxz(in, out));
            mid[s] = maxz(mid[s], (size_t)U->mid * U->h * U->h);
            wts[s] += (size_t)U->cin * U->mid / U->g1 + (size_t)U->mid * U->outs / I->groups +
                      10 * (size_t)U->mid;
            if (r == I->stage_repeats[s] - 1) bnd[s] = out;
        }
    }
    e->first_unit[I->num_stages] = u;
    size_t nx = 0, na = 0, l2 = sn_cache_size(2);
    for (int s = 0; s < I->num_stages; s++) {
        /* A tile's working set: X (and Y in stage 2, whose input is a tile buffer), A, B. */
        size_t per = 4 * ((s == 0 ? 2 : 1) * act[s] + 2 * mid[s]);
        int tl = forced[s] > 0                             ? forced[s]
                 : s == 0 || 4 * wts[s] < TILE_WEIGHTS(l2) ? 1
                                                           : (int)(TILE_BUDGET(l2) / per);
        if (tl < 1) tl = 1;
        if (tl > TILE_MAX && !forced[s]) tl = TILE_MAX;
        if (tl > max_batch) tl = max_batch;
        e->tile[s] = tl;
    }
    /* even runs over what each stage is handed (the batch for the last stage, a tile of the
     * next stage for the others): 8 images with room for 5 go as 4 + 4, not 5 + 3, and a tile
     * of 4 with room for 3 below it as 2 + 2, not 3 + 1 */
    for (int s = I->num_stages - 1; s >= 0; s--) {
        int tl = e->tile[s], of = s == I->num_stages - 1 ? max_batch : e->tile[s + 1];
        if (tl > of) tl = of;
        if (!forced[s]) tl = (of + (of + tl - 1) / tl - 1) / ((of + tl - 1) / tl);
        e->tile[s] = tl;
        nx = maxz(nx, round16(act[s] * tl));
        na = maxz(na, round16(mid[s] * tl));
    }
    /* the 1x1 convs' scratch, for the most columns each runs (a tile of its stage) */
    for (int s = 0; s < I->num_stages; s++)
        for (int v = e->first_unit[s]; v < e->first_unit[s + 1]; v++) {
            const sn_unit *U = &m->units[v];
            size_t n = (size_t)e->tile[s];
            nw = maxz(nw, e->k->pw_scratch_size(U->mid / U->g1, U->cin / U->g1, n * U->h * U->h));
            nw = maxz(nw, e->k->pw_scratch_size(U->outs / I->groups, U->mid / I->groups,
                                                n * U->ho * U->ho));
        }
    /* bnd[j] holds stage j's output for one tile of stage j+1 */
    size_t nb0 = round16(bnd[0] * e->tile[1]), nb1 = round16(bnd[1] * e->tile[2]);
    size_t nf = round16((size_t)max_batch * m->final_channels);
    size_t ns = round16(SN_STEM_SCRATCH(I->stem_channels, m->stem_hw, m->pool_hw));
    nw = round16(nw);
    size_t total = 2 * nx + 2 * na + nb0 + nb1 + nf + ns + nw;
    e->in = malloc((size_t)max_batch * sizeof *e->in);
    if (!e->in || posix_memalign(&e->block, BLOCK_ALIGN, total * sizeof(float))) {
        snprintf(err, errlen, "out of memory (%zu MB workspace)", total * 4 >> 20);
        free(e->in);
        free(e);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(e->block, total * sizeof(float), MADV_HUGEPAGE); /* advice only: may fail */
#endif
    memset(e->block, 0, total * sizeof(float)); /* touch the pages now, not in the first run */
    e->x = e->block;
    e->y = e->x + nx;
    e->a = e->y + nx;
    e->b = e->a + na;
    e->bnd[0] = e->b + na;
    e->bnd[1] = e->bnd[0] + nb0;
    e->feat = e->bnd[1] + nb1;
    e->stem_scratch = e->feat + nf;
    e->pw_scratch = e->stem_scratch + ns;
    return e;
}

int sn_engine_max_batch(const sn_engine *e) {
    return e->max_batch;
}

void sn_engine_free(sn_engine *e) {
    if (!e) return;
    free(e->block);
    free(e->in);
    free(e);
}
