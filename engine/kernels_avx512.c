/* kernels_avx512.c - the AVX-512 kernel table (16 float lanes, 32 registers: 12 x 32 1x1-conv
 * micro-tiles). Compiled with -mavx512f/bw/vl/dq; only used when cpuid reports them. The
 * kernels themselves are in kernels_simd.h. */
#include "engine/kernels.h"

#include <immintrin.h>

typedef __m512 V;
#define VL      16
#define MRMAX   12
#define STEM_CB 24
#define STEM_NV 1

#define vset1(x)      _mm512_set1_ps(x)
#define vload(p)      _mm512_loadu_ps(p)
#define vstore(p, v)  _mm512_storeu_ps(p, v)
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vadd(a, b)    _mm512_add_ps(a, b)
#define vmax(a, b)    _mm512_max_ps(a, b)
#define vmul(a, b)    _mm512_mul_ps(a, b)
#define vhsum(v)      _mm512_reduce_add_ps(v)

static inline __mmask16 lanes(int lo, int hi) {
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

static inline V vload_n(const float *p, int lo, int hi, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), lanes(lo, hi), p);
}

static inline V vload_bits(const float *p, unsigned bits) {
    return _mm512_maskz_loadu_ps((__mmask16)bits, p);
}

static inline void vstore_n(float *p, V v, int n) {
    _mm512_mask_storeu_ps(p, lanes(0, n), v);
}

static inline void vdeint(V a, V b, V *ev, V *od) {
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *ev = _mm512_permutex2var_ps(a, ie, b);
    *od = _mm512_permutex2var_ps(a, io, b);
}

static inline V vshift1(V v, V prev) {
    return _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(v), _mm512_castps_si512(prev), 15));
}

/* 8-lane half vectors for narrow 1x1-conv tails (a ymm FMA is half a zmm one on Zen 4) */
typedef __m256 HV;
#define HVL                8
#define hvset1(x)          _mm256_set1_ps(x)
#define hvfma(a, b, c)     _mm256_fmadd_ps(a, b, c)
#define hvadd(a, b)        _mm256_add_ps(a, b)
#define hvmax(a, b)        _mm256_max_ps(a, b)
#define hvload_n(p, n)     _mm256_maskz_loadu_ps((__mmask8)((1u << (n)) - 1), p)
#define hvstore_n(p, v, n) _mm256_mask_storeu_ps(p, (__mmask8)((1u << (n)) - 1), v)

#define SIMD_TABLE sn_kernels_avx512
#define SIMD_NAME  "avx512"
#include "engine/kernels_simd.h"
