/* kernels_avx2.c - the AVX2 + FMA kernel table (8 float lanes, 16 registers: 6 x 16 1x1-conv
 * micro-tiles). Compiled with -mavx2 -mfma; only used when cpuid reports both. The kernels
 * themselves are in kernels_simd.h. */
#include "engine/kernels.h"

#include <immintrin.h>

typedef __m256 V;
#define VL         8
#define MRMAX      6
#define STEM_CB    6
#define STEM_NV    2
#define PW_NARROW  4 /* see pw_narrow */
#define PW_PACK    1 /* packed column panels, see kernels_simd_pw.h */
#define DW_ROWSUMS 1
#define DW_COLMASK 1
#define DW_S2_ROWS 1
#define STEM_SPLIT 1

#define vset1(x)      _mm256_set1_ps(x)
#define vload(p)      _mm256_loadu_ps(p)
#define vstore(p, v)  _mm256_storeu_ps(p, v)
#define vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vadd(a, b)    _mm256_add_ps(a, b)
#define vmax(a, b)    _mm256_max_ps(a, b)
#define vmul(a, b)    _mm256_mul_ps(a, b)
#define vand(a, b)    _mm256_and_ps(a, b)

static inline __m256i lanes(int lo, int hi) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i ge = _mm256_cmpgt_epi32(iota, _mm256_set1_epi32(lo - 1));
    __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), iota);
    return _mm256_and_si256(ge, lt);
}

static inline V vload_n(const float *p, int lo, int hi, float fill) {
    __m256i m = lanes(lo, hi);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}

/* maskload reads only each lane's sign bit: shift bit j of bits up to bit 31 of lane j */
static inline V vload_bits(const float *p, unsigned bits) {
    const __m256i up = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
    return _mm256_maskload_ps(p, _mm256_sllv_epi32(_mm256_set1_epi32((int)bits), up));
}

/* the lanes of a flat chunk starting in column x0 of rows W wide: lm all ones where the column
 * is not 0, rm where it is not W-1 */
static inline void vcolmask(int x0, int W, V *lm, V *rm) {
    __m256i x = _mm256_add_epi32(_mm256_set1_epi32(x0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i w = _mm256_set1_epi32(W), wm1 = _mm256_set1_epi32(W - 1);
    for (int r = 0; r * W < VL; r++) /* wrap into [0, W) */
        x = _mm256_sub_epi32(x, _mm256_and_si256(_mm256_cmpgt_epi32(x, wm1), w));
    *lm = _mm256_castsi256_ps(_mm256_cmpgt_epi32(x, _mm256_setzero_si256()));
    *rm = _mm256_castsi256_ps(_mm256_cmpgt_epi32(wm1, x));
}

static inline void vstore_n(float *p, V v, int n) {
    _mm256_maskstore_ps(p, lanes(0, n), v);
}

static inline void vdeint(V a, V b, V *ev, V *od) {
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    *ev = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    *od = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline V vshift1(V v, V prev) {
    __m256 t = _mm256_permute2f128_ps(prev, v, 0x21); /* prev[4..7], v[0..3] */
    return _mm256_castsi256_ps(
        _mm256_alignr_epi8(_mm256_castps_si256(v), _mm256_castps_si256(t), 12));
}

static inline float vhsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define SIMD_TABLE sn_kernels_avx2
#define SIMD_NAME  "avx2"
#include "engine/kernels_simd.h"
