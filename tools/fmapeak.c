/* fmapeak.c - the FMA peak probe behind `shufflenet bench`'s "% of peak": the fp32 FMA
 * throughput this core really sustains, measured rather than taken from a data sheet, at the
 * vector width of the kernels in use (sn_isa_name()). x86: 256-bit FMAs for the AVX2 and
 * scalar tables, 512-bit FMAs for the AVX-512 one (compiled with -mavx2 -mfma, the 512-bit
 * loop with a target attribute; called only when the CPU reports them). The two differ by
 * the core: a Zen 4 runs a 512-bit FMA as two 256-bit halves (same peak), an Intel core with
 * two 512-bit FMA units doubles it. ARM64: 128-bit NEON FMAs. */
#include "tools/cli.h"

#include <string.h>
#include <time.h>

#include "engine/shufflenet.h"

#if defined(__x86_64__) || defined(__aarch64__)
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
#endif

/* PEAK_BODY: CHAINS independent chains of FMAs for about `ms` milliseconds; the best GFLOP/s
 * of a few short runs. One body for every width, instantiated per vector type below. */
#define PEAK_BODY(V, LANES, CHAINS, SET1, FMA, ADD, FIRST)                                         \
    V a[CHAINS];                                                                                   \
    V m = SET1(0.999999f), c = SET1(1e-7f);                                                        \
    for (int i = 0; i < CHAINS; i++) a[i] = SET1((float)i);                                        \
    double best = 0, end = now_s() + ms * 1e-3;                                                    \
    long iters = 20000;                                                                            \
    do {                                                                                           \
        double t0 = now_s();                                                                       \
        for (long it = 0; it < iters; it++) {                                                      \
            _Pragma("GCC unroll 16") for (int i = 0; i < CHAINS; i++) a[i] = FMA(a[i], m, c);      \
        }                                                                                          \
        double dt = now_s() - t0, g = CHAINS * 2.0 * LANES * iters / dt * 1e-9;                    \
        if (g > best) best = g;                                                                    \
    } while (now_s() < end);                                                                       \
    /* keep the result alive */                                                                    \
    for (int i = 1; i < CHAINS; i++) a[0] = ADD(a[0], a[i]);                                       \
    if (FIRST(a[0]) == 12345.678f) best += 1e-9;                                                   \
    return best;

#if defined(__x86_64__)
#include <immintrin.h>
int sn_fma_peak_available(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* 12 chains cover 2 pipes x 4 cycles of latency (and Zen's 2 x 3 or 4). */
static double peak256(double ms) {
    PEAK_BODY(__m256, 8, 12, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_cvtss_f32)
}

__attribute__((target("avx512f"))) static double peak512(double ms) {
    PEAK_BODY(__m512, 16, 12, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_cvtss_f32)
}

double sn_fma_peak_gflops(double ms) {
    if (!strcmp(sn_isa_name(), "avx512") && __builtin_cpu_supports("avx512f")) return peak512(ms);
    return peak256(ms);
}
#elif defined(__aarch64__)
#include <arm_neon.h>
int sn_fma_peak_available(void) {
    return 1;
}

static inline float32x4_t neon_fma(float32x4_t a, float32x4_t b, float32x4_t c) {
    return vfmaq_f32(c, a, b);
}
static inline float neon_first(float32x4_t v) {
    return vgetq_lane_f32(v, 0);
}

/* 16 chains: 4 pipes x 4 cycles on the widest cores. */
double sn_fma_peak_gflops(double ms) {
    PEAK_BODY(float32x4_t, 4, 16, vdupq_n_f32, neon_fma, vaddq_f32, neon_first)
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
