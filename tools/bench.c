/* bench.c - `shufflenet bench`: engine speed on one thread. Warm-up, then N timed runs of one
 * batch; reports the median (and p10/p90) ms per batch and per image, images/s and GFLOP/s
 * (2 x MACs per image), and that as a share of this core's FMA peak, measured by a short
 * probe (sn_fma_peak_gflops) before the timed runs. */
#include "tools/cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(bench_clock, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sn_cmd_bench(int argc, char **argv) {
    const char *model = NULL;
    int batch = 1, iters = 30, warmup = 3, json = 0, peak_ms = 200, inputs = 8;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (sn_cli_is_help(argv[i])) {
            printf("usage: shufflenet bench --model FILE [--batch B] [--iterations N] "
                   "[--warmup W] [--json] [--cpu-time] [--peak-ms MS] [--inputs N]\n"
                   "  Times sn_engine_run on one thread with a deterministic input: W warm-up\n"
                   "  runs, then N timed runs (default 30). Prints the median ms per batch and\n"
                   "  per image, images/s, GFLOP/s and %% of the measured FMA peak. --json:\n"
                   "  ms_per_batch, ms_per_image (the medians), p10/p90, images_per_s, gflops,\n"
                   "  peak_gflops, pct_peak, isa, batch, iterations, runs_ms (every run).\n"
                   "  --peak-ms: how long the FMA peak probe runs (default 200, 0 skips it).\n"
                   "  --inputs N: distinct input images cycled through (default 8, rounded up\n"
                   "  to whole batches): each run reads images the previous run did not, as a\n"
                   "  server would, so batch 1 and batch 8 both start from cold input. 1 = the\n"
                   "  same batch every run (its input stays warm in cache).\n"
                   "  --cpu-time: time with the thread's CPU clock instead of the wall clock\n"
                   "  (ignores time spent descheduled on a busy machine).\n"
                   "  SHUFFLENET_ISA=scalar|avx2|avx512|neon forces a kernel set.\n");
            return 0;
        } else if ((v = sn_cli_opt(argc, argv, &i, "--model")))
            model = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--batch")))
            batch = (int)sn_cli_int("--batch", v, 1, 1024);
        else if ((v = sn_cli_opt(argc, argv, &i, "--iterations")))
            iters = (int)sn_cli_int("--iterations", v, 1, 1000000);
        else if ((v = sn_cli_opt(argc, argv, &i, "--warmup")))
            warmup = (int)sn_cli_int("--warmup", v, 0, 1000000);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if ((v = sn_cli_opt(argc, argv, &i, "--peak-ms")))
            peak_ms = (int)sn_cli_int("--peak-ms", v, 0, 10000);
        else if ((v = sn_cli_opt(argc, argv, &i, "--inputs")))
            inputs = (int)sn_cli_int("--inputs", v, 1, 4096);
        else if (!strcmp(argv[i], "--cpu-time"))
            bench_clock = CLOCK_THREAD_CPUTIME_ID;
        else {
            fprintf(stderr, "shufflenet bench: unknown argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    sn_model *m = sn_cli_load_model(model);
    const sn_model_info *I = sn_model_info_of(m);
    char err[SN_ERRLEN];
    sn_engine *e = sn_engine_create(m, batch, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "shufflenet: %s\n", err);
        return 2;
    }
    size_t isz = (size_t)3 * I->input_size * I->input_size;
    int nb = (inputs + batch - 1) / batch; /* batches in the input pool */
    float *x = malloc(isz * batch * nb * sizeof(float));
    float *out = malloc((size_t)batch * I->num_classes * sizeof(float));
    double *t = malloc((size_t)iters * sizeof(double));
    if (!x || !out || !t) {
        fprintf(stderr, "shufflenet bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < isz * batch * nb; i++) x[i] = (float)((i * 2654435761u >> 8) % 256);
    /* The probe runs first: it also brings the core out of any idle clock state. */
    double peak = sn_fma_peak_available() && peak_ms ? sn_fma_peak_gflops(peak_ms) : 0;
    for (int i = 0; i < warmup; i++) sn_engine_run(e, x + isz * batch * (i % nb), batch, out);
    int tty = !json && isatty(2);
    for (int i = 0; i < iters; i++) {
        const float *in = x + isz * batch * ((warmup + i) % nb);
        double t0 = now_ms();
        sn_engine_run(e, in, batch, out);
        t[i] = now_ms() - t0;
        if (tty) fprintf(stderr, "\r  run %d/%d: %.2f ms", i + 1, iters, t[i]);
    }
    if (tty) fprintf(stderr, "\r\033[K");
    json_t *runs = json_array();
    for (int i = 0; i < iters; i++) json_array_append_new(runs, json_real(t[i]));
    qsort(t, (size_t)iters, sizeof(double), cmp_d);
    double med = t[iters / 2], p10 = t[iters / 10], p90 = t[(iters * 9) / 10];
    double per = med / batch, gflops = 2.0 * (double)I->macs * batch / (med * 1e-3) / 1e9;
    double pct = peak > 0 ? 100.0 * gflops / peak : 0;
    if (json) {
        json_t *j =
            json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o}", "isa",
                      sn_isa_name(), "batch", batch, "iterations", iters, "ms_per_batch", med,
                      "ms_per_image", per, "p10_ms_per_batch", p10, "p90_ms_per_batch", p90,
                      "images_per_s", 1000.0 / per, "gflops", gflops, "mmacs", I->macs / 1e6,
                      "peak_gflops", peak, "pct_peak", pct, "runs_ms", runs);
        runs = NULL;
        char *s = json_dumps(j, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        puts(s);
        free(s);
        json_decref(j);
    } else {
        printf("%s  g=%d width=%g batch=%d isa=%s: median %.3f ms/batch (p10 %.3f, p90 %.3f), "
               "%.3f ms/image, %.1f images/s, %.1f GFLOP/s (%.0f%% of the measured %.1f "
               "GFLOP/s FMA peak)\n",
               model, I->groups, I->width, batch, sn_isa_name(), med, p10, p90, per, 1000.0 / per,
               gflops, pct, peak);
    }
    json_decref(runs);
    free(x);
    free(out);
    free(t);
    sn_engine_free(e);
    sn_model_free(m);
    return 0;
}
