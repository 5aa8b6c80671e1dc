/* jpegdc.h - a baseline JPEG at scale 1/8 without libjpeg's entropy decoder, for fast mode.
 * At 1/8 each 8x8 block becomes one pixel, its DC term, so most of the work of a 12 MP decode
 * is parsing the Huffman codes of AC terms nobody reads. This decoder parses them several
 * codes per table lookup and keeps only the DC terms. Its output is libjpeg-turbo's 1/8 output
 * bit for bit (the same rounding, range limit, box upsampling and colour conversion) for every
 * layout where libjpeg also takes each component at its DC: gray, 4:4:4, 4:2:2, 4:4:0, 4:1:1.
 * For 4:2:0 libjpeg gives chroma a 2x2 IDCT of 25 coefficients instead; here chroma stays at
 * its DC, upsampled 2x2 (half libjpeg's chroma resolution at 1/8; luma is identical). The
 * tests check both against libjpeg's own decoding. Anything it does not handle the way libjpeg
 * would (progressive, arithmetic, CMYK, 12-bit, odd sampling, a bad code, a misplaced marker,
 * a short file) makes it decline before a row is handed out, and the caller decodes with
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
} sn_jdc_out;

typedef enum {
    SN_JDC_DONE = 0, /* every row decoded; `need`ed rows handed to `row` */
    SN_JDC_DECLINE,  /* not decoded and no row handed out: decode with libjpeg */
    SN_JDC_NOMEM,
} sn_jdc_status;

/* Decode the scan whose header ci has read (ci->src points at the entropy-coded data) at
 * scale 1/8. ci is only read: after SN_JDC_DECLINE, jpeg_start_decompress still works. */
sn_jdc_status sn_jdc_decode(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out);

#endif
