/* resize_avx2.c - the OpenCV line passes of resize.h in AVX2, 8 values at a time: the
 * horizontal pass (2 taps per output, gathered) and the vertical pass + normalisation.
 * Compiled with -mavx2 and called only when the CPU has AVX2. Same arithmetic as the scalar
 * twins in resize.c: 32-bit lanes, arithmetic shifts, IEEE subtract and divide, so the bits are
 * the same (tests/unit/test_preprocess.c compares them). */
#include "common/resize.h"

#include <immintrin.h>

static float one_scalar(int32_t a, int32_t b, int simd, int w0, int w1, float mean, float std) {
    int v = simd ? ((((a >> 4) * w0) >> 16) + (((b >> 4) * w1) >> 16) + 2) >> 2
                 : (a * w0 + b * w1 + (1 << 21)) >> 22;
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    return ((float)v - mean) / std;
}

/* (v - mean) / std; with mean 0 and std 1 (megvii) that is v exactly, without the divide. */
static inline __m256 norm(__m256i v, __m256 M, __m256 S, int ident) {
    __m256 f = _mm256_cvtepi32_ps(v);
    return ident ? f : _mm256_div_ps(_mm256_sub_ps(f, M), S);
}

void sn_rs_vline_avx2(const int32_t *a, const int32_t *b, int n, int split, int w0, int w1,
                      float mean, float std, float *out) {
    const int ident = mean == 0.f && std == 1.f;
    const __m256i W0 = _mm256_set1_epi32(w0), W1 = _mm256_set1_epi32(w1);
    const __m256i two = _mm256_set1_epi32(2), half = _mm256_set1_epi32(1 << 21);
    const __m256i zero = _mm256_setzero_si256(), max = _mm256_set1_epi32(255);
    const __m256 M = _mm256_set1_ps(mean), S = _mm256_set1_ps(std);
    if (split > n) split = n;
    int i = 0;
    for (; i + 8 <= split; i += 8) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        x = _mm256_srai_epi32(_mm256_mullo_epi32(_mm256_srai_epi32(x, 4), W0), 16);
        y = _mm256_srai_epi32(_mm256_mullo_epi32(_mm256_srai_epi32(y, 4), W1), 16);
        __m256i v = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(x, y), two), 2);
        v = _mm256_min_epi32(_mm256_max_epi32(v, zero), max);
        _mm256_storeu_ps(out + i, norm(v, M, S, ident));
    }
    for (; i < split; i++) out[i] = one_scalar(a[i], b[i], 1, w0, w1, mean, std);
    for (; i + 8 <= n; i += 8) {
        __m256i x = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(a + i)), W0);
        __m256i y = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(b + i)), W1);
        __m256i v = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(x, y), half), 22);
        v = _mm256_min_epi32(_mm256_max_epi32(v, zero), max);
        _mm256_storeu_ps(out + i, norm(v, M, S, ident));
    }
    for (; i < n; i++) out[i] = one_scalar(a[i], b[i], 0, w0, w1, mean, std);
}

void sn_rs_hline_avx2(const uint8_t *px, ptrdiff_t xstep, const int32_t *x0, const int32_t *x1,
                      const int32_t *w0, const int32_t *w1, int n, int32_t *hr, int32_t *hg,
                      int32_t *hb) {
    const __m256i step = _mm256_set1_epi32((int)xstep), ff = _mm256_set1_epi32(0xff);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        /* 4 bytes at each pixel: R, G, B and one byte past it (the caller pads) */
        __m256i o0 = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(x0 + i)), step);
        __m256i o1 = _mm256_mullo_epi32(_mm256_loadu_si256((const __m256i *)(x1 + i)), step);
        __m256i p0 = _mm256_i32gather_epi32((const int *)px, o0, 1);
        __m256i p1 = _mm256_i32gather_epi32((const int *)px, o1, 1);
        __m256i a = _mm256_loadu_si256((const __m256i *)(w0 + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(w1 + i));
        for (int c = 0; c < 3; c++) {
            __m256i u = _mm256_and_si256(_mm256_srli_epi32(p0, 8 * c), ff);
            __m256i v = _mm256_and_si256(_mm256_srli_epi32(p1, 8 * c), ff);
            __m256i h = _mm256_add_epi32(_mm256_mullo_epi32(u, a), _mm256_mullo_epi32(v, b));
            _mm256_storeu_si256((__m256i *)((c == 0 ? hr : c == 1 ? hg : hb) + i), h);
        }
    }
    for (; i < n; i++) {
        const uint8_t *p = px + x0[i] * xstep, *q = px + x1[i] * xstep;
        hr[i] = p[0] * w0[i] + q[0] * w1[i];
        hg[i] = p[1] * w0[i] + q[1] * w1[i];
        hb[i] = p[2] * w0[i] + q[2] * w1[i];
    }
}

/* Pairs of adjacent pixels (sn_rs_pairs): one 8-byte load per output (R G B R' G' B' and two
 * bytes past) instead of two 4-byte ones, 4 per gather; byte shuffles put each channel's two
 * values into one 32-bit lane as 16-bit halves, and one multiply-add of 16-bit pairs gives
 * lo * v + hi * v', exactly the scalar sum (both values and weights fit 16 bits). */
void sn_rs_hpair_avx2(const uint8_t *px, const int32_t *ps, const int32_t *w01, int n, int32_t *hr,
                      int32_t *hg, int32_t *hb) {
    /* outputs 0 1 4 5 in the first gather, 2 3 6 7 in the second: after the per-lane shuffles
     * an unpack of 64-bit halves puts them back in order */
    const __m256i perm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    const __m256i rg = _mm256_setr_epi8(0, -1, 3, -1, 8, -1, 11, -1, 1, -1, 4, -1, 9, -1, 12, -1, 0,
                                        -1, 3, -1, 8, -1, 11, -1, 1, -1, 4, -1, 9, -1, 12, -1);
    const __m256i bb =
        _mm256_setr_epi8(2, -1, 5, -1, 10, -1, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, -1, 5, -1,
                         10, -1, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const long long *base = (const long long *)px;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i o = _mm256_loadu_si256((const __m256i *)(ps + i));
        o = _mm256_permutevar8x32_epi32(_mm256_add_epi32(o, _mm256_add_epi32(o, o)), perm);
        __m256i qa = _mm256_i32gather_epi64(base, _mm256_castsi256_si128(o), 1);
        __m256i qb = _mm256_i32gather_epi64(base, _mm256_extracti128_si256(o, 1), 1);
        __m256i ra = _mm256_shuffle_epi8(qa, rg), rb = _mm256_shuffle_epi8(qb, rg);
        __m256i ba = _mm256_shuffle_epi8(qa, bb), bq = _mm256_shuffle_epi8(qb, bb);
        __m256i w = _mm256_loadu_si256((const __m256i *)(w01 + i));
        _mm256_storeu_si256((__m256i *)(hr + i),
                            _mm256_madd_epi16(_mm256_unpacklo_epi64(ra, rb), w));
        _mm256_storeu_si256((__m256i *)(hg + i),
                            _mm256_madd_epi16(_mm256_unpackhi_epi64(ra, rb), w));
        _mm256_storeu_si256((__m256i *)(hb + i),
                            _mm256_madd_epi16(_mm256_unpacklo_epi64(ba, bq), w));
    }
    if (i < n) sn_rs_hpair_scalar(px, ps + i, w01 + i, n - i, hr + i, hg + i, hb + i);
}
