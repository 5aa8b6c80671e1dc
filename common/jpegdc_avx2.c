/* jpegdc_avx2.c - the full-scale decoder's IDCT (jpegdc.h: sn_jdc_idct_rows_*) in AVX2.
 * Each row read is two rounds of four 16-bit multiply-adds over 8 lanes: pass 1 takes the
 * block's rows k, k+1 interleaved against the pair m[r][k], m[r][k+1]; pass 2 the row's
 * values u, u+1 broadcast against m[c][u], m[c][u+1] for the 8 columns c. Every product and
 * sum is exact in 32 bits (|dq| <= 8191, |m| <= 11363), so the bytes are the scalar twin's
 * (tests/unit/test_stream.c compares them). Compiled with -mavx2; called only when the CPU
 * has AVX2. */
#include "common/jpegdc.h"

#include <immintrin.h>

int sn_jdc_idct_rows_avx2(const sn_jdc_idct *t, const int16_t *dq, unsigned rows,
                          uint8_t out[8][8]) {
    __m256i pk[4]; /* rows 2p, 2p+1 of the block interleaved: lane u = (dq[2p][u], dq[2p+1][u]) */
    for (int p = 0; p < 4; p++) {
        __m128i a = _mm_loadu_si128((const __m128i *)(dq + 16 * p));
        __m128i b = _mm_loadu_si128((const __m128i *)(dq + 16 * p + 8));
        pk[p] = _mm256_set_m128i(_mm_unpackhi_epi16(a, b), _mm_unpacklo_epi16(a, b));
    }
    __m256i pc[4];
    for (int p = 0; p < 4; p++) pc[p] = _mm256_loadu_si256((const __m256i *)t->pc[p]);
    const __m256i wmax = _mm256_set1_epi32(SN_JDC_WS_MAX), pmax = _mm256_set1_epi32(511),
                  pmin = _mm256_set1_epi32(-512), r1 = _mm256_set1_epi32(1024),
                  r2 = _mm256_set1_epi32(1 << 17), c128 = _mm256_set1_epi32(128);
    __m256i bad = _mm256_setzero_si256();
    for (; rows; rows &= rows - 1) {
        int r = __builtin_ctz(rows);
        __m256i acc = _mm256_madd_epi16(pk[0], _mm256_set1_epi32(t->pc[0][r]));
        for (int p = 1; p < 4; p++)
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pk[p], _mm256_set1_epi32(t->pc[p][r])));
        __m256i ws = _mm256_srai_epi32(_mm256_add_epi32(acc, r1), 11);
        bad = _mm256_or_si256(bad, _mm256_cmpgt_epi32(_mm256_abs_epi32(ws), wmax));
        /* per 128-bit lane: ws0..3 (ws4..7) as 16 bits, twice; pair p sits in 32-bit element
         * 0, 1 (p = 0, 1) of the low lane and 4, 5 (p = 2, 3) */
        __m256i w16 = _mm256_packs_epi32(ws, ws);
        __m256i o =
            _mm256_madd_epi16(_mm256_permutevar8x32_epi32(w16, _mm256_set1_epi32(0)), pc[0]);
        o = _mm256_add_epi32(
            o, _mm256_madd_epi16(_mm256_permutevar8x32_epi32(w16, _mm256_set1_epi32(1)), pc[1]));
        o = _mm256_add_epi32(
            o, _mm256_madd_epi16(_mm256_permutevar8x32_epi32(w16, _mm256_set1_epi32(4)), pc[2]));
        o = _mm256_add_epi32(
            o, _mm256_madd_epi16(_mm256_permutevar8x32_epi32(w16, _mm256_set1_epi32(5)), pc[3]));
        __m256i px = _mm256_srai_epi32(_mm256_add_epi32(o, r2), 18);
        bad = _mm256_or_si256(
            bad, _mm256_or_si256(_mm256_cmpgt_epi32(px, pmax), _mm256_cmpgt_epi32(pmin, px)));
        /* + 128, clamped to 0..255 (libjpeg's range limit within -512..511) */
        __m256i v = _mm256_packs_epi32(_mm256_add_epi32(px, c128), _mm256_setzero_si256());
        v = _mm256_permute4x64_epi64(v, 0xD8); /* px0..3, px4..7 in the low 128 bits */
        __m128i b8 = _mm_packus_epi16(_mm256_castsi256_si128(v), _mm_setzero_si128());
        _mm_storel_epi64((__m128i *)out[r], b8);
    }
    return _mm256_testz_si256(bad, bad) ? 0 : -1;
}
