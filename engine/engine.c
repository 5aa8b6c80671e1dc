/* engine.c - an engine instance: the activation workspace planned for a maximum batch, and
 * the forward pass over a batch. No allocation happens in sn_engine_run.
 *
 * The batch is run in tiles of up to `tile` images; inside a tile every activation is
 * planar [C][n][H*W] (see shufflenet.h), so each grouped 1x1 conv is one GEMM per group over
 * n*H*W columns. Four buffers suffice: X and Y hold the unit input/output (stride-1 units
 * update X in place through the residual epilogue; stride-2 units write avgpool(X) and the
 * branch into the two slices of Y, then swap), A holds the first 1x1's output and B the
 * depthwise output, already shuffled. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sn_engine {
    const sn_model *m;
    const sn_kernels *k;
    int max_batch, tile;
    float *x, *y, *a, *b, *feat;
    void *block;
};

static size_t round16(size_t n) {
    return (n + 15) & ~(size_t)15;
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
    const char *t = getenv("SHUFFLENET_TILE");
    e->tile = t && atoi(t) > 0 ? atoi(t) : max_batch;
    if (e->tile > max_batch) e->tile = max_batch;
    /* Per-image sizes of the largest activation and the largest bottleneck tensor. */
    size_t act = (size_t)I->stem_channels * m->pool_hw * m->pool_hw;
    size_t mid = (size_t)I->stem_channels * m->stem_hw * m->stem_hw;
    for (int u = 0; u < I->num_units; u++) {
        const sn_unit *U = &m->units[u];
        size_t in = (size_t)U->cin * U->h * U->h;
        size_t out = (size_t)(U->stride == 2 ? U->cin + U->outs : U->outs) * U->ho * U->ho;
        size_t md = (size_t)U->mid * U->h * U->h;
        if (in > act) act = in;
        if (out > act) act = out;
        if (md > mid) mid = md;
    }
    size_t T = (size_t)e->tile;
    size_t nx = round16(act * T), na = round16(mid * T), nf = round16(T * m->final_channels);
    size_t total = 2 * nx + 2 * na + nf;
    if (posix_memalign(&e->block, 64, total * sizeof(float))) {
        snprintf(err, errlen, "out of memory (%zu MB workspace)", total * 4 >> 20);
        free(e);
        return NULL;
    }
    memset(e->block, 0, total * sizeof(float)); /* touch the pages now, not in the first run */
    e->x = e->block;
    e->y = e->x + nx;
    e->a = e->y + nx;
    e->b = e->a + na;
    e->feat = e->b + na;
    return e;
}

int sn_engine_max_batch(const sn_engine *e) {
    return e->max_batch;
}

void sn_engine_free(sn_engine *e) {
    if (!e) return;
    free(e->block);
    free(e);
}

/* One grouped 1x1 conv: `groups` GEMMs. */
static void pointwise(const sn_kernels *k, const float *w, size_t gs, const float *bias, int groups,
                      int cin, int cout, const float *in, size_t in_ld, float *out, size_t out_ld,
                      const float *res, int relu, size_t P) {
    int K = cin / groups, M = cout / groups;
    for (int j = 0; j < groups; j++) {
        sn_pw_args a = {K,
                        M,
                        P,
                        in + (size_t)j * K * in_ld,
                        in_ld,
                        w + j * gs,
                        bias + (size_t)j * M,
                        out + (size_t)j * M * out_ld,
                        out_ld,
                        res ? res + (size_t)j * M * out_ld : NULL,
                        relu};
        k->pw(&a);
    }
}

static void run_tile(sn_engine *e, const float *input, int n, float *logits) {
    const sn_model *m = e->m;
    const sn_model_info *I = &m->info;
    const sn_kernels *k = e->k;
    float *x = e->x, *y = e->y, *a = e->a, *b = e->b;
    int S = I->input_size, sh = m->stem_hw, ph = m->pool_hw;

    k->stem(input, n, S, m->stem_w, m->stem_b, I->stem_channels, a, (size_t)n * sh * sh, sh, sh);
    k->maxpool_s2(a, (size_t)n * sh * sh, x, (size_t)n * ph * ph, I->stem_channels, n, sh, sh, ph,
                  ph);
    for (int u = 0; u < I->num_units; u++) {
        const sn_unit *U = &m->units[u];
        size_t hw = (size_t)U->h * U->h, hwo = (size_t)U->ho * U->ho;
        size_t ldx = n * hw, lda = n * hw, ldb = n * hwo;
        pointwise(k, U->pw1_w, U->pw1_gs, U->pw1_b, U->g1, U->cin, U->mid, x, ldx, a, lda, NULL, 1,
                  n * hw);
        sn_dw_args d = {U->mid, n,   U->h,    U->h,    U->ho, U->ho, U->stride,
                        a,      lda, U->dw_w, U->dw_b, b,     ldb,   U->dst};
        k->dw(&d);
        if (U->stride == 1) {
            pointwise(k, U->pw2_w, U->pw2_gs, U->pw2_b, I->groups, U->mid, U->outs, b, ldb, x, ldx,
                      x, 1, n * hwo);
        } else {
            size_t ldy = n * hwo;
            k->avgpool_s2(x, ldx, y, ldy, U->cin, n, U->h, U->h, U->ho, U->ho);
            pointwise(k, U->pw2_w, U->pw2_gs, U->pw2_b, I->groups, U->mid, U->outs, b, ldb,
                      y + (size_t)U->cin * ldy, ldy, NULL, 1, n * hwo);
            float *t = x;
            x = y;
            y = t;
        }
    }
    int hw = m->final_hw * m->final_hw;
    k->global_avgpool(x, (size_t)n * hw, m->final_channels, n, hw, e->feat);
    k->fc(e->feat, n, m->final_channels, m->fc_w, m->fc_b, I->num_classes, logits);
}

int sn_engine_run(sn_engine *e, const float *input, int n, float *logits) {
    if (n < 1 || n > e->max_batch) return -1;
    const sn_model_info *I = &e->m->info;
    size_t img = (size_t)3 * I->input_size * I->input_size;
    for (int i = 0; i < n; i += e->tile) {
        int nt = n - i < e->tile ? n - i : e->tile;
        run_tile(e, input + (size_t)i * img, nt, logits + (size_t)i * I->num_classes);
    }
    return 0;
}
