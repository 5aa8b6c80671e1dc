/* kernel-ab.c - one ISA's kernels against an older build of the same kernels, in one process.
 * It reaches into the engine's kernel tables, so it lives with the tests (the layers allow
 * engine internals only there); bench/kernel-ab.sh builds and runs it.
 *
 * bench/kernel-ab.sh compiles an older commit's kernel file for the ISA with its table renamed
 * to sn_kernels_base and links it here beside the current one. Both run alternately, call by
 * call, on the same data in the same process, so the drift of a shared machine (10-30% here
 * between runs of separate processes) hits them alike; printed are medians of the per-pair
 * ratios new/base. Kernels: stride-2 depthwise, 3x3 average pool, the stem, and 1x1 GEMMs of
 * the shapes the 0.5x and 1x networks run; then whole networks (one engine per kernel table,
 * run alternately; thread CPU time), with the largest logit difference between the two.
 *
 * usage: kernel-ab [--rounds R] [MODEL.safetensors ...] */
#include "engine/kernels.h"
#include "engine/shufflenet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const sn_kernels sn_kernels_base; /* the older build, see kernel-ab.sh */
extern const sn_kernels SN_AB_TABLE;     /* the current one (-DSN_AB_TABLE=sn_kernels_avx2) */

static const sn_kernels *K[2] = {&sn_kernels_base, &SN_AB_TABLE};
static int rounds = 201;

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static float *filled(size_t n, unsigned seed) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 127) / 64 * 64);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((seed + i * 2654435761u) >> 22 & 255) / 128.0f - 1;
    return p;
}

typedef void (*kernel_call)(const sn_kernels *k, void *ctx);

/* times call(K[v]) reps times, alternating v, `rounds` pairs; prints base and new medians (us)
 * and the median of the per-pair ratios */
static void ab(const char *what, kernel_call call, void *ctx, int reps) {
    double *t[2] = {malloc(sizeof(double) * rounds), malloc(sizeof(double) * rounds)};
    double *q = malloc(sizeof(double) * rounds);
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < 2; v++) {
            double t0 = now(CLOCK_MONOTONIC);
            for (int i = 0; i < reps; i++) call(K[v], ctx);
            t[v][r] = (now(CLOCK_MONOTONIC) - t0) / reps;
        }
    for (int r = 0; r < rounds; r++) q[r] = t[1][r] / t[0][r];
    qsort(t[0], rounds, sizeof(double), cmp_d);
    qsort(t[1], rounds, sizeof(double), cmp_d);
    qsort(q, rounds, sizeof(double), cmp_d);
    printf("%-34s base %8.1f us  new %8.1f us  new/base %.3f (p25 %.3f, p75 %.3f)\n", what,
           t[0][rounds / 2] * 1e6, t[1][rounds / 2] * 1e6, q[rounds / 2], q[rounds / 4],
           q[3 * rounds / 4]);
    free(t[0]), free(t[1]), free(q);
}

typedef struct {
    sn_dw_args d;
    int avg;
} plane_ctx;

static void call_plane(const sn_kernels *k, void *p) {
    plane_ctx *c = p;
    const sn_dw_args *d = &c->d;
    if (c->avg)
        k->avgpool_s2(d->in, d->in_ld, d->out, d->out_ld, d->C, d->n, d->H, d->W, d->Ho, d->Wo);
    else
        k->dw(d);
}

static void bench_planes(int C, int H, int avg) {
    int Ho = (H - 1) / 2 + 1;
    float *w = filled((size_t)9 * C, 1), *b = filled((size_t)C, 2);
    plane_ctx c = {{C, 1, H, H, Ho, Ho, 2, filled((size_t)C * H * H, 3), (size_t)H * H, w, b,
                    filled((size_t)C * Ho * Ho, 4), (size_t)Ho * Ho, NULL},
                   avg};
    char what[64];
    snprintf(what, sizeof(what), "%s C=%d %dx%d", avg ? "avgpool 3x3/2" : "depthwise 3x3/2", C, H,
             H);
    ab(what, call_plane, &c, 20);
    free(w), free(b), free((void *)c.d.in), free(c.d.out);
}

typedef struct {
    const float *in, *w, *b;
    float *out, *scratch;
    int C, S, Ho, Po;
} stem_ctx;

static void call_stem(const sn_kernels *k, void *p) {
    stem_ctx *c = p;
    k->stem_pool(c->in, 1, c->S, c->w, c->b, c->C, c->out, (size_t)c->Po * c->Po, c->Ho, c->Po,
                 c->scratch);
}

typedef struct {
    sn_pw_args a[2]; /* weights packed by each table */
} pw_ctx;

static void call_pw(const sn_kernels *k, void *p) {
    pw_ctx *c = p;
    k->pw(&c->a[k == K[1]]);
}

static void bench_pw(int M, int Kd, size_t P) {
    pw_ctx c;
    float *w = filled((size_t)M * Kd, 5), *in = filled((size_t)Kd * P, 6);
    float *out = filled((size_t)M * P, 7), *b = filled((size_t)M, 8);
    for (int v = 0; v < 2; v++) {
        float *pk = aligned_alloc(64, (K[v]->pw_packed_size(M, Kd) * 4 + 127) / 64 * 64);
        K[v]->pack_pw(w, M, Kd, pk);
        size_t ns = K[v]->pw_scratch_size(M, Kd, P);
        /* residual when M > K (an expand GEMM), as in the network */
        c.a[v] = (sn_pw_args){Kd,
                              M,
                              P,
                              in,
                              P,
                              pk,
                              b,
                              out,
                              P,
                              M > Kd ? out : NULL,
                              P,
                              1,
                              ns ? filled(ns + 16, 9) : NULL};
    }
    char what[64];
    snprintf(what, sizeof(what), "1x1 M=%d K=%d P=%zu", M, Kd, P);
    ab(what, call_pw, &c, (int)(2e6 / ((double)M * Kd * P)) + 1);
    for (int v = 0; v < 2; v++) free((void *)c.a[v].w), free(c.a[v].scratch);
    free(w), free(in), free(out), free(b);
}

static void bench_net(const char *path, int B) {
    char err[256];
    sn_model *m[2];
    sn_engine *e[2];
    for (int v = 0; v < 2; v++) {
        sn_kernels_force(K[v]); /* a model is packed for, and runs with, the table in force */
        m[v] = sn_model_load(path, err, sizeof(err));
        e[v] = m[v] ? sn_engine_create(m[v], B, err, sizeof(err)) : NULL;
        if (!e[v]) {
            fprintf(stderr, "kernel-ab: %s: %s\n", path, err);
            exit(1);
        }
    }
    float *in = filled((size_t)3 * 224 * 224 * B, 10), *lg[2];
    int nr = rounds / 2 + 1;
    double *t[2] = {malloc(sizeof(double) * nr), malloc(sizeof(double) * nr)};
    double *q = malloc(sizeof(double) * nr);
    for (int v = 0; v < 2; v++) lg[v] = malloc(sizeof(float) * 1000 * B);
    for (int r = 0; r < nr; r++)
        for (int v = 0; v < 2; v++) {
            double t0 = now(CLOCK_THREAD_CPUTIME_ID);
            sn_engine_run(e[v], in, B, lg[v]);
            t[v][r] = now(CLOCK_THREAD_CPUTIME_ID) - t0;
        }
    double md = 0;
    int classes = sn_model_info_of(m[0])->num_classes;
    for (int i = 0; i < classes * B; i++) {
        double d = (double)lg[0][i] - lg[1][i];
        if ((d < 0 ? -d : d) > md) md = d < 0 ? -d : d;
    }
    for (int r = 0; r < nr; r++) q[r] = t[1][r] / t[0][r];
    qsort(t[0], nr, sizeof(double), cmp_d);
    qsort(t[1], nr, sizeof(double), cmp_d);
    qsort(q, nr, sizeof(double), cmp_d);
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    printf("network %s batch %d: base %.3f ms/img  new %.3f ms/img  new/base %.3f (p25 %.3f, "
           "p75 %.3f)  max |dlogit| %.2g\n",
           name, B, t[0][nr / 2] * 1e3 / B, t[1][nr / 2] * 1e3 / B, q[nr / 2], q[nr / 4],
           q[3 * nr / 4], md);
    for (int v = 0; v < 2; v++) sn_engine_free(e[v]), sn_model_free(m[v]), free(lg[v]), free(t[v]);
    free(in), free(q);
}

int main(int argc, char **argv) {
    int a = 1;
    if (a + 1 < argc && !strcmp(argv[a], "--rounds")) rounds = atoi(argv[a + 1]), a += 2;
    if (rounds < 5 || (a < argc && argv[a][0] == '-')) {
        fprintf(stderr, "usage: kernel-ab [--rounds R >= 5] [MODEL.safetensors ...]\n");
        return 2;
    }
    printf("kernels: base = %s (older build), new = %s; %d alternated pairs each\n", K[0]->name,
           K[1]->name, rounds);
    static const int planes[][2] = {{36, 56}, {72, 28}, {144, 14}};
    for (int i = 0; i < 3; i++) bench_planes(planes[i][0], planes[i][1], 0);
    static const int pools[][2] = {{24, 56}, {120, 28}, {240, 14}, {144, 28}, {288, 14}};
    for (int i = 0; i < 5; i++) bench_planes(pools[i][0], pools[i][1], 1);
    stem_ctx s = {filled((size_t)3 * 224 * 224, 11),
                  filled(27 * 24, 12),
                  filled(24, 13),
                  filled((size_t)24 * 56 * 56, 14),
                  filled(SN_STEM_SCRATCH(24, 112, 56), 15),
                  24,
                  224,
                  112,
                  56};
    ab("stem 224 -> 24 x 56x56", call_stem, &s, 4);
    static const int gemms[][3] = {{10, 40, 784}, {20, 80, 196},  {20, 80, 784},  {12, 48, 784},
                                   {24, 96, 196}, {36, 144, 784}, {144, 36, 784}, {144, 576, 49}};
    for (int i = 0; i < 8; i++) bench_pw(gemms[i][0], gemms[i][1], (size_t)gemms[i][2]);
    for (; a < argc; a++) {
        bench_net(argv[a], 1);
        bench_net(argv[a], 8);
    }
    return 0;
}
