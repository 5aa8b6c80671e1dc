/* fmapeak.c - the FMA peak probe behind `shufflenet bench`'s "% of peak": the fp32 FMA
 * throughput this core really sustains, measured rather than taken from a data sheet.
 * Compiled with -mavx2 -mfma; called only when the CPU reports both. */
#include "tools/cli.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int sn_fma_peak_available(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Twelve independent chains of 256-bit FMAs (enough to cover 2 pipes x 4 cycles latency)
 * for about `ms` milliseconds; returns the best GFLOP/s of a few short runs. */
double sn_fma_peak_gflops(double ms) {
    __m256 a[12];
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    double best = 0, end = now_s() + ms * 1e-3;
    long iters = 20000;
    do {
        double t0 = now_s();
        for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
            for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
        }
        double dt = now_s() - t0, g = 12.0 * 16 * iters / dt * 1e-9;
        if (g > best) best = g;
    } while (now_s() < end);
    /* keep the result alive */
    float s[8] = {0};
    for (int i = 1; i < 12; i++) a[0] = _mm256_add_ps(a[0], a[i]);
    _mm256_storeu_ps(s, a[0]);
    if (s[0] == 12345.678f) best += 1e-9;
    return best;
}
#else
int sn_fma_peak_available(void) {
    return 0;
}
double sn_fma_peak_gflops(double ms) {
    (void)ms;
    return 0;
}
#endif
