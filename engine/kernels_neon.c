/* kernels_neon.c - the ARM64 NEON kernel table (4 float lanes, 32 registers: 8 x 8 1x1-conv
 * micro-tiles and 6 x 8 stem tiles, 16 and 12 accumulators: GCC 12 spills at 24, since it
 * keeps each broadcast weight in a register of its own). NEON (ASIMD) is in every ARMv8-A
 * core, but dispatch.c still asks the kernel (getauxval HWCAP_ASIMD) before using it. The
 * kernels themselves are in kernels_simd.h; docs/kernels.md gives the instruction counts they
 * were designed for.
 *
 * NEON has no masked loads or stores, so the partial-vector helpers below go through a small
 * array: they run only at the edges of a row or plane, and never touch memory outside the
 * lanes asked for (a plane may end at the end of a page). */
#include "engine/kernels.h"

#if defined(__aarch64__)
#include <arm_neon.h>

typedef float32x4_t V;
#define VL         4
#define MRMAX      8
#define STEM_CB    6
#define STEM_NV    2
#define DW_ROWSUMS 1 /* 3 short FMA chains in the flat depthwise, as on AVX2 */

#define vset1(x)      vdupq_n_f32(x)
#define vload(p)      vld1q_f32(p)
#define vstore(p, v)  vst1q_f32(p, v)
#define vfma(a, b, c) vfmaq_f32(c, a, b)
#define vadd(a, b)    vaddq_f32(a, b)
#define vmax(a, b)    vmaxq_f32(a, b)
#define vmul(a, b)    vmulq_f32(a, b)
#define vhsum(v)      vaddvq_f32(v)

static inline V vload_n(const float *p, int lo, int hi, float fill) {
    float t[4];
    for (int j = 0; j < 4; j++) t[j] = j >= lo && j < hi ? p[j] : fill;
    return vld1q_f32(t);
}

static inline V vload_bits(const float *p, unsigned bits) {
    if ((bits & 15) == 15) return vld1q_f32(p);
    float t[4];
    for (int j = 0; j < 4; j++) t[j] = bits >> j & 1 ? p[j] : 0.0f;
    return vld1q_f32(t);
}

static inline void vstore_n(float *p, V v, int n) {
    float t[4];
    vst1q_f32(t, v);
    for (int j = 0; j < n; j++) p[j] = t[j];
}

static inline void vdeint(V a, V b, V *ev, V *od) {
    *ev = vuzp1q_f32(a, b);
    *od = vuzp2q_f32(a, b);
}

/* lanes prev[3], v[0], v[1], v[2] */
static inline V vshift1(V v, V prev) {
    return vextq_f32(prev, v, 3);
}

#define SIMD_TABLE sn_kernels_neon
#define SIMD_NAME  "neon"
#include "engine/kernels_simd.h"
#endif
