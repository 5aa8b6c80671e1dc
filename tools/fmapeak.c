/* fmapeak.c - the FMA peak probe behind `shufflenet bench`'s "% of peak": the fp32 FMA
 * throughput this core really sustains, measured rather than taken from a data sheet.
 * x86: 256-bit FMAs (the width of the AVX2 kernels), compiled with -mavx2 -mfma and called only
 * when the CPU reports both. ARM64: 128-bit NEON FMAs. */
#include "tools/cli.h"

#if defined(__x86_64__)
#include <immintrin.h>
typedef __m256 PV;
#define PV_LANES        8
#define PV_CHAINS       12 /* enough to cover 2 pipes x 4 cycles latency */
#define pv_set1(x)      _mm256_set1_ps(x)
#define pv_fma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define pv_add(a, b)    _mm256_add_ps(a, b)
#define pv_first(v)     _mm256_cvtss_f32(v)
int sn_fma_peak_available(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#elif defined(__aarch64__)
#include <arm_neon.h>
typedef float32x4_t PV;
#define PV_LANES        4
#define PV_CHAINS       16 /* 4 pipes x 4 cycles on the widest cores */
#define pv_set1(x)      vdupq_n_f32(x)
#define pv_fma(a, b, c) vfmaq_f32(c, a, b)
#define pv_add(a, b)    vaddq_f32(a, b)
#define pv_first(v)     vgetq_lane_f32(v, 0)
int sn_fma_peak_available(void) {
    return 1;
}
#endif

#ifdef PV_LANES
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* PV_CHAINS independent chains of FMAs for about `ms` milliseconds; returns the best GFLOP/s
 * of a few short runs. */
double sn_fma_peak_gflops(double ms) {
    PV a[PV_CHAINS];
    PV m = pv_set1(0.999999f), c = pv_set1(1e-7f);
    for (int i = 0; i < PV_CHAINS; i++) a[i] = pv_set1((float)i);
    double best = 0, end = now_s() + ms * 1e-3;
    long iters = 20000;
    do {
        double t0 = now_s();
        for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
            for (int i = 0; i < PV_CHAINS; i++) a[i] = pv_fma(a[i], m, c);
        }
        double dt = now_s() - t0, g = PV_CHAINS * 2.0 * PV_LANES * iters / dt * 1e-9;
        if (g > best) best = g;
    } while (now_s() < end);
    /* keep the result alive */
    for (int i = 1; i < PV_CHAINS; i++) a[0] = pv_add(a[0], a[i]);
    if (pv_first(a[0]) == 12345.678f) best += 1e-9;
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
