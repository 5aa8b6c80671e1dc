/* test_kernels.c - every SIMD kernel table against the scalar twins on odd shapes (tails,
 * channel counts that are not multiples of any vector width, odd and tiny planes, stride 1
 * and 2, residual in place and out of place, output permutations), then whole networks: each
 * ISA against scalar on synthetic models of every group count and several batch sizes and
 * tilings, and the real megvii reference logits under every ISA. Tables this CPU cannot run
 * are skipped (sn_kernels_by_name returns NULL); `make test-arm64` runs this file for NEON. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/convert.h"
#include "engine/kernels.h"
#include "tools/npy.h"
#include "engine/shufflenet.h"
#include "engine/synth.h"

static const char *simd_names[] = {"avx2", "avx512", "neon"};
#define NSIMD ((int)(sizeof(simd_names) / sizeof(*simd_names)))

static unsigned long long rs = 777;
static float frand(void) {
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rnd(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    cr_assert(p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static float *copy(const float *x, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    cr_assert(p);
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* |a-b| <= tol * (1 + |b|) everywhere, with a message naming the first bad element. */
static void expect_close(const float *a, const float *b, size_t n, double tol, const char *what) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= tol * (1 + fabs(b[i]))))
            cr_assert_fail("%s: element %zu: %.9g vs scalar %.9g", what, i, a[i], b[i]);
    }
}

/* ---- 1x1 conv ------------------------------------------------------------------------- */

static void check_pw(const sn_kernels *k, int K, int M, size_t P, int res_mode, int relu) {
    size_t in_ld = P + 3, out_ld = P + 5;
    float *in = rnd((size_t)K * in_ld), *w = rnd((size_t)M * K), *bias = rnd((size_t)M);
    float *out0 = rnd((size_t)M * out_ld), *out1 = copy(out0, (size_t)M * out_ld);
    float *res = rnd((size_t)M * (P + 7));
    float *pk = malloc(k->pw_packed_size(M, K) * sizeof(float));
    k->pack_pw(w, M, K, pk);
    /* res_mode 0: none, 1: separate buffer (ld P+7), 2: in place (res == out) */
    size_t ns = k->pw_scratch_size(M, K, P);
    float *scr = rnd(ns); /* garbage: nothing may depend on what it held */
    sn_pw_args a = {K, M, P, in, in_ld, w, bias, out0, out_ld, NULL, 0, relu, ns ? scr : NULL};
    if (res_mode == 1) a.res = res, a.res_ld = P + 7;
    if (res_mode == 2) a.res = out0, a.res_ld = out_ld;
    sn_kernels_scalar.pw(&a);
    a.w = pk;
    a.out = out1;
    if (res_mode == 2) a.res = out1;
    k->pw(&a);
    char what[128];
    snprintf(what, sizeof(what), "%s pw K=%d M=%d P=%zu res=%d relu=%d", k->name, K, M, P, res_mode,
             relu);
    /* includes the columns past P: they must be left untouched */
    expect_close(out1, out0, (size_t)M * out_ld, 1e-5 * (1 + K), what);
    free(in), free(w), free(bias), free(out0), free(out1), free(res), free(pk), free(scr);
}

Test(kernels, pw_matches_scalar) {
    /* K up to 96 with few columns: AVX2 runs row block by row block (pw_rows), reading the
     * panels in place for M <= 24 and packing them all first above; K > 96, or K x P past its
     * scratch bound (P = 999 with K = 48, 70): panel by panel */
    static const int Ks[] = {1, 3, 5, 12, 17, 48, 70, 97, 150};
    static const int Ms[] = {1, 5, 6, 7, 12, 13, 25, 36, 48};
    static const size_t Ps[] = {1, 7, 15, 16, 17, 31, 32, 33, 49, 100, 999};
    for (int t = 0; t < NSIMD; t++) {
        const sn_kernels *k = sn_kernels_by_name(simd_names[t]);
        if (!k) continue;
        for (size_t i = 0; i < sizeof(Ks) / sizeof(*Ks); i++)
            for (size_t j = 0; j < sizeof(Ms) / sizeof(*Ms); j++)
                for (size_t p = 0; p < sizeof(Ps) / sizeof(*Ps); p++)
                    check_pw(k, Ks[i], Ms[j], Ps[p], (int)((i + j + p) % 3), (int)((i + p) & 1));
    }
}

/* ---- depthwise, pools, stem ----------------------------------------------------------- */

static void check_dw(const sn_kernels *k, int C, int n, int H, int W, int stride, int perm) {
    int Ho = (H - 1) / stride + 1, Wo = (W - 1) / stride + 1;
    size_t in_ld = (size_t)n * H * W + 2, out_ld = (size_t)n * Ho * Wo + 3;
    float *in = rnd(C * in_ld), *w = rnd((size_t)C * 9), *bias = rnd((size_t)C);
    float *o0 = rnd(C * out_ld), *o1 = copy(o0, C * out_ld);
    int *dst = malloc((size_t)C * sizeof(int));
    for (int c = 0; c < C; c++) dst[c] = (c * 5 + 2) % C; /* a permutation when gcd(5,C)=1 */
    if (C % 5 == 0)
        for (int c = 0; c < C; c++) dst[c] = C - 1 - c;
    sn_dw_args a = {C, n, H, W, Ho, Wo, stride, in, in_ld, w, bias, o0, out_ld, perm ? dst : NULL};
    sn_kernels_scalar.dw(&a);
    a.out = o1;
    k->dw(&a);
    char what[128];
    snprintf(what, sizeof(what), "%s dw C=%d n=%d %dx%d s=%d perm=%d", k->name, C, n, H, W, stride,
             perm);
    expect_close(o1, o0, C * out_ld, 1e-5, what);
    free(in), free(w), free(bias), free(o0), free(o1), free(dst);
}

static void check_pools(const sn_kernels *k, int C, int n, int H, int W) {
    int Ho = (H - 1) / 2 + 1, Wo = (W - 1) / 2 + 1;
    size_t in_ld = (size_t)n * H * W + 1, out_ld = (size_t)n * Ho * Wo + 2;
    float *in = rnd(C * in_ld), *o0 = rnd(C * out_ld), *o1 = copy(o0, C * out_ld);
    char what[128];
    sn_kernels_scalar.avgpool_s2(in, in_ld, o0, out_ld, C, n, H, W, Ho, Wo);
    k->avgpool_s2(in, in_ld, o1, out_ld, C, n, H, W, Ho, Wo);
    snprintf(what, sizeof(what), "%s avgpool C=%d n=%d %dx%d", k->name, C, n, H, W);
    expect_close(o1, o0, C * out_ld, 1e-6, what);
    free(in), free(o0), free(o1);
}

/* The fused stem conv + maxpool against the scalar twin, and the scalar twin against a plain
 * conv then maxpool written here. Scratch is filled with garbage first: nothing may depend on
 * what it held. */
static void check_stem(const sn_kernels *k, int C, int n, int S) {
    int Ho = (S - 1) / 2 + 1, Po = (Ho - 1) / 2 + 1;
    size_t out_ld = (size_t)n * Po * Po + 4, ns = SN_STEM_SCRATCH(C, Ho, Po);
    float *in = rnd((size_t)n * 3 * S * S), *w = rnd((size_t)C * 27), *bias = rnd((size_t)C);
    float *o0 = rnd(C * out_ld), *o1 = copy(o0, C * out_ld), *scr = rnd(ns);
    float *conv = malloc((size_t)C * n * Ho * Ho * sizeof(float)), *o2 = copy(o0, C * out_ld);
    cr_assert(conv);
    sn_kernels_scalar.stem_pool(in, n, S, w, bias, C, o0, out_ld, Ho, Po, scr);
    for (size_t j = 0; j < ns; j++) scr[j] = frand();
    k->stem_pool(in, n, S, w, bias, C, o1, out_ld, Ho, Po, scr);
    char what[128];
    snprintf(what, sizeof(what), "%s stem C=%d n=%d S=%d", k->name, C, n, S);
    expect_close(o1, o0, C * out_ld, 1e-5, what);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < n; i++)
            for (int y = 0; y < Ho; y++)
                for (int x = 0; x < Ho; x++) {
                    double acc = bias[c];
                    for (int t = 0; t < 27; t++) {
                        int ci = t / 9, iy = 2 * y - 1 + t / 3 % 3, ix = 2 * x - 1 + t % 3;
                        if (iy >= 0 && iy < S && ix >= 0 && ix < S)
                            acc += w[c * 27 + t] * in[(((size_t)i * 3 + ci) * S + iy) * S + ix];
                    }
                    conv[(((size_t)c * n + i) * Ho + y) * Ho + x] = acc > 0 ? (float)acc : 0;
                }
    for (int c = 0; c < C; c++)
        for (int i = 0; i < n; i++)
            for (int y = 0; y < Po; y++)
                for (int x = 0; x < Po; x++) {
                    float mx = -1;
                    for (int t = 0; t < 9; t++) {
                        int iy = 2 * y - 1 + t / 3, ix = 2 * x - 1 + t % 3;
                        if (iy >= 0 && iy < Ho && ix >= 0 && ix < Ho) {
                            float v = conv[(((size_t)c * n + i) * Ho + iy) * Ho + ix];
                            if (v > mx) mx = v;
                        }
                    }
                    o2[c * out_ld + (size_t)i * Po * Po + y * Po + x] = mx;
                }
    snprintf(what, sizeof(what), "scalar stem C=%d n=%d S=%d vs conv+maxpool", C, n, S);
    expect_close(o0, o2, C * out_ld, 1e-5, what);
    free(in), free(w), free(bias), free(o0), free(o1), free(o2), free(scr), free(conv);
}

Test(kernels, dw_pools_stem_match_scalar) {
    /* widths around the stride-2 split's vector boundaries: 16 and 32 split into whole vectors
     * only, 14, 35 and 40 end in a masked chunk, 1-9 are all tail */
    static const int sizes[][2] = {{1, 1},    {2, 3},   {5, 5},   {7, 7},  {14, 14},
                                   {17, 9},   {28, 28}, {33, 35}, {8, 40}, {56, 56},
                                   {100, 90}, {6, 16},  {9, 32}};
    for (int t = 0; t < NSIMD; t++) {
        const sn_kernels *k = sn_kernels_by_name(simd_names[t]);
        if (!k) continue;
        for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
            int H = sizes[s][0], W = sizes[s][1], n = 1 + (int)s % 3, C = 3 + (int)s % 5;
            check_dw(k, C, n, H, W, 1, (int)s & 1);
            check_dw(k, C, n, H, W, 2, !((int)s & 1));
            check_pools(k, C, n, H, W);
        }
        static const int stems[][3] = {{1, 1, 3},  {5, 2, 7},   {13, 1, 33}, {24, 2, 40},
                                       {8, 1, 64}, {25, 1, 18}, {49, 2, 9},  {16, 3, 30}};
        for (int s = 0; s < 8; s++) check_stem(k, stems[s][0], stems[s][1], stems[s][2]);
    }
}

Test(kernels, pool_and_fc_match_scalar) {
    for (int t = 0; t < NSIMD; t++) {
        const sn_kernels *k = sn_kernels_by_name(simd_names[t]);
        if (!k) continue;
        for (int C = 1; C < 40; C += 7)
            for (int n = 1; n <= 9; n++) { /* every remainder of the FC image blocks */
                int HW = 1 + C % 50;
                float *in = rnd((size_t)C * (n * HW + 1)), f0[400], f1[400];
                sn_kernels_scalar.global_avgpool(in, (size_t)n * HW + 1, C, n, HW, f0);
                k->global_avgpool(in, (size_t)n * HW + 1, C, n, HW, f1);
                expect_close(f1, f0, (size_t)C * n, 1e-5, "global_avgpool");
                int O = 3 + C;
                float *w = rnd((size_t)O * C), *b = rnd((size_t)O), l0[9 * 50], l1[9 * 50];
                sn_kernels_scalar.fc(f0, n, C, w, (C & 1) ? b : NULL, O, l0);
                k->fc(f0, n, C, w, (C & 1) ? b : NULL, O, l1);
                expect_close(l1, l0, (size_t)n * O, 1e-5 * C, "fc");
                free(in), free(w), free(b);
            }
    }
}

/* ---- whole networks -------------------------------------------------------------------- */

/* Logits of n images under table k (NULL: scalar), with SHUFFLENET_TILE = tile (NULL: auto). */
static float *forward(const char *path, const sn_kernels *k, const float *x, int n,
                      const char *tile) {
    sn_kernels_force(k ? k : &sn_kernels_scalar);
    char err[SN_ERRLEN];
    sn_model *m = sn_model_load(path, err, sizeof(err));
    cr_assert(m, "%s", err);
    if (tile)
        setenv("SHUFFLENET_TILE", tile, 1);
    else
        unsetenv("SHUFFLENET_TILE");
    sn_engine *e = sn_engine_create(m, n, err, sizeof(err));
    cr_assert(e, "%s", err);
    int O = sn_model_info_of(m)->num_classes;
    float *out = malloc((size_t)n * O * sizeof(float));
    cr_assert_eq(sn_engine_run(e, x, n, out), 0);
    sn_engine_free(e);
    sn_model_free(m);
    return out;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

Test(kernels, networks_match_scalar_every_isa_group_batch_and_tile, .timeout = 120) {
    static const int groups[] = {1, 2, 3, 4, 8};
    const int n = 5, O = 1000, S = 224;
    float *x = rnd((size_t)n * 3 * S * S);
    for (size_t i = 0; i < (size_t)n * 3 * S * S; i++) x[i] = 128 + 100 * x[i];
    for (int gi = 0; gi < 5; gi++) {
        char path[128], err[SN_ERRLEN];
        snprintf(path, sizeof(path), "/tmp/sn_test_kernels_%d_g%d.safetensors", (int)getpid(),
                 groups[gi]);
        cr_assert_eq(sn_synth_model(groups[gi], 0.25, 7 + gi, path, err, sizeof(err)), 0, "%s",
                     err);
        float *ref = forward(path, NULL, x, n, NULL);
        double tol = 1e-4 * max_abs(ref, (size_t)n * O);
        for (int t = 0; t < NSIMD; t++) {
            const sn_kernels *k = sn_kernels_by_name(simd_names[t]);
            if (!k) continue;
            char what[96];
            static const char *tiles[] = {NULL, "1", "2,3,4", "5"};
            for (int ti = 0; ti < 4; ti++) {
                float *got = forward(path, k, x, n, tiles[ti]);
                snprintf(what, sizeof(what), "%s g=%d batch %d tile %s", k->name, groups[gi], n,
                         tiles[ti] ? tiles[ti] : "auto");
                for (size_t i = 0; i < (size_t)n * O; i++)
                    cr_assert_leq(fabs(got[i] - ref[i]), tol, "%s: logit %zu: %g vs %g", what, i,
                                  got[i], ref[i]);
                free(got);
            }
            /* image 3 alone gives the same logits as inside the batch */
            float *one = forward(path, k, x + (size_t)3 * 3 * S * S, 1, NULL);
            float *all = forward(path, k, x, n, "2");
            for (int i = 0; i < O; i++)
                cr_assert_leq(fabs(one[i] - all[3 * O + i]), 1e-6 * (1 + fabs(one[i])),
                              "%s g=%d: image 3 alone differs from in a batch", k->name,
                              groups[gi]);
            free(one), free(all);
        }
        free(ref);
        unlink(path);
    }
    free(x);
}

Test(kernels, megvii_reference_logits_every_isa, .timeout = 120) {
    const char *shared = getenv("SN_SHARED") ? getenv("SN_SHARED") : "../shared";
    static const int gs[] = {3, 8};
    for (int gi = 0; gi < 2; gi++) {
        char ckpt[512], in[512], ref[512], path[128], err[SN_ERRLEN];
        snprintf(ckpt, sizeof(ckpt), "%s/models/megvii-shufflenet-v1-g%d-0.5x.pth.tar", shared,
                 gs[gi]);
        snprintf(in, sizeof(in),
                 "%s/models/reference/megvii-g%d-0.5x/chelsea_input_nchw_bgr0-255.npy", shared,
                 gs[gi]);
        snprintf(ref, sizeof(ref), "%s/models/reference/megvii-g%d-0.5x/chelsea_logits.npy", shared,
                 gs[gi]);
        if (access(ckpt, R_OK) || access(in, R_OK) || access(ref, R_OK)) {
            printf("SKIP: ../shared not found\n");
            return;
        }
        snprintf(path, sizeof(path), "/tmp/sn_test_kernels_%d_mg%d.safetensors", (int)getpid(),
                 gs[gi]);
        cr_assert_eq(sn_convert_checkpoint(ckpt, path, NULL, NULL, err, sizeof(err)), 0, "%s", err);
        float *x, *want;
        int64_t shp[SN_NPY_MAX_DIMS];
        int nd;
        cr_assert_eq(sn_npy_read(in, &x, shp, &nd, err, sizeof(err)), 0, "%s", err);
        cr_assert_eq(sn_npy_read(ref, &want, shp, &nd, err, sizeof(err)), 0, "%s", err);
        double tol = 1e-4 * max_abs(want, 1000);
        static const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
        for (int t = 0; t < 4; t++) {
            const sn_kernels *k = sn_kernels_by_name(isas[t]);
            if (!k) continue;
            float *got = forward(path, k, x, 1, NULL);
            for (int i = 0; i < 1000; i++)
                cr_assert_leq(fabs(got[i] - want[i]), tol, "%s g%d: logit %d: %g vs %g", isas[t],
                              gs[gi], i, got[i], want[i]);
            int a[5], b[5];
            sn_topk(got, 1000, 5, a);
            sn_topk(want, 1000, 5, b);
            cr_assert_arr_eq(a, b, sizeof(a), "%s g%d: top-5 differs", isas[t], gs[gi]);
            free(got);
        }
        free(x), free(want);
        unlink(path);
    }
}
