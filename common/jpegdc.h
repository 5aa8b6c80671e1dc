/* jpegdc.h - our own decoder for baseline JPEGs, where libjpeg does work nobody reads.
 * Scale 1/8 (fast mode, sn_jdc_decode): each 8x8 block becomes one pixel, its DC term, so most
 * of the work of a 12 MP decode is parsing the Huffman codes of AC terms nobody reads. This
 * decoder parses them several codes per table lookup and keeps only the DC terms. Its output
 * is libjpeg-turbo's 1/8 output bit for bit (the same rounding, range limit, box upsampling and
 * colour conversion) for every layout where libjpeg also takes each component at its DC: gray,
 * 4:4:4, 4:2:2, 4:4:0, 4:1:1. For 4:2:0 libjpeg gives chroma a 2x2 IDCT of 25 coefficients
 * instead; here chroma stays at its DC, upsampled 2x2 (half libjpeg's chroma resolution at
 * 1/8; luma is identical). Full scale (exact mode, sn_jdc_decode_full): below. The tests check
 * both against libjpeg's own decoding. Anything it does not handle the way libjpeg would
 * (progressive, arithmetic, CMYK, 12-bit, odd sampling, a bad code, a misplaced marker, a
 * short file) makes it decline before a row is handed out, and the caller decodes with
 * libjpeg as before, which reports the error if there is one. Internal to common/. */
#ifndef SN_JPEGDC_H
#define SN_JPEGDC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jpeglib.h>

/* Whether the header just read (jpeg_read_header done, out_color_space RGB) is one this
 * decoder takes at scale 1/8. */
int sn_jdc_eligible(const struct jpeg_decompress_struct *ci);
/* Whether its output is libjpeg-turbo's 1/8 output bit for bit (no 2x2 chroma IDCT there). */
int sn_jdc_same_as_libjpeg(const struct jpeg_decompress_struct *ci);
/* Bytes sn_jdc_decode allocates for this header and `len` bytes of file. */
size_t sn_jdc_mem(const struct jpeg_decompress_struct *ci, size_t len);

/* A decoded row: stored row sy (0 .. ceil(height/8) - 1) as ceil(width/8) RGB pixels, with
 * 4 readable bytes past the last one. */
typedef struct {
    void *ctx;
    int (*need)(void *ctx, int sy);
    void (*row)(void *ctx, int sy, const uint8_t *rgb);
    int (*need_col)(void *ctx, int sx); /* full scale: stored column sx is read */
} sn_jdc_out;

typedef enum {
    SN_JDC_DONE = 0, /* every row decoded; `need`ed rows handed to `row` */
    SN_JDC_DECLINE,  /* not decoded and no row handed out: decode with libjpeg */
    SN_JDC_NOMEM,
} sn_jdc_status;

/* Decode the scan whose header ci has read (ci->src points at the entropy-coded data) at
 * scale 1/8. ci is only read: after SN_JDC_DECLINE, jpeg_start_decompress still works. */
sn_jdc_status sn_jdc_decode(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out);

/* Full scale (8/8), for exact mode: every block is entropy-decoded, but only the samples under
 * the rows (`need`) and columns (`need_col`) the caller reads are inverse-transformed,
 * upsampled and colour-converted, libjpeg-turbo's way (ISLOW IDCT, fancy upsampling), so
 * those pixels are libjpeg's bit for bit; `row` gets a stored row (0 .. height - 1) of
 * width RGB pixels where only the read columns are set. A 12 MP photo resized to 256 reads
 * ~2% of its pixels. Same eligibility, declining and errors as sn_jdc_decode; it also
 * declines coefficients large enough that libjpeg's SIMD and C IDCTs could differ. */
sn_jdc_status sn_jdc_decode_full(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out);
/* Bytes it allocates, for a caller reading `rows` rows and `cols` columns. */
size_t sn_jdc_full_mem(const struct jpeg_decompress_struct *ci, size_t len, int rows, int cols);

/* The full-scale decoder's transform: libjpeg's ISLOW IDCT (jidctint.c) of one block, at the
 * rows it reads only. Its 1-D butterfly is linear and exact in integers, so it is a matrix:
 * m[r][k] is output r before the descale for input k = 1 (|m| <= 11363), and pc[p][c] packs
 * m[c][2p], m[c][2p + 1] as two 16-bit halves for multiply-add in pairs. */
typedef struct {
    int16_t m[8][8];
    int32_t pc[4][8];
} sn_jdc_idct;
void sn_jdc_idct_init(sn_jdc_idct *t);
#define SN_JDC_DQ_MAX 8191  /* |coefficient x quantizer| taken */
#define SN_JDC_WS_MAX 16383 /* |value between the passes| taken */
/* Rows `rows` (bit r) of the IDCT of dq (dequantized, natural order, |dq| <= SN_JDC_DQ_MAX):
 * out[r][0..7], libjpeg's pixels. -1 when a value between the passes exceeds SN_JDC_WS_MAX or
 * a pixel falls outside -512..511 before its range limit: bounds within which libjpeg-turbo's
 * SIMD IDCTs (16-bit lanes, saturating) and its C IDCT (a wrapping range table) agree, so the
 * caller declines rather than guess. The AVX2 twin gives the same bytes and status. */
int sn_jdc_idct_rows_scalar(const sn_jdc_idct *t, const int16_t *dq, unsigned rows,
                            uint8_t out[8][8]);
int sn_jdc_idct_rows_avx2(const sn_jdc_idct *t, const int16_t *dq, unsigned rows,
                          uint8_t out[8][8]);

#endif
