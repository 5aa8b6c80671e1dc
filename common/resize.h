/* resize.h - the resampling plan: resize + centre crop + channel order + normalisation of a
 * displayed image straight into the model's input tensor, reading only the pixels that survive.
 *
 * A plan is made for one source size. It knows which displayed rows and columns the crop
 * window's filter taps touch (sn_rs_plan_box, sn_rs_row_needed, sn_rs_col_needed); a decoder
 * feeds exactly those, as whole displayed rows (sn_rs_feed_row) or, for EXIF orientations 5-8
 * whose displayed rows are stored columns, as displayed columns (sn_rs_feed_col). Each fed
 * line is run through the horizontal filter at once into int32 planes [3][crop], so no
 * decoded image is ever held. OpenCV plans fed rows in order keep 2 such rows and write each
 * output row as soon as its source rows are in; others keep every needed row and write the
 * tensor in sn_rs_finish. OpenCV INTER_LINEAR (with its SIMD vertical rounding) and Pillow BILINEAR
 * are both bit-exact with a resize of the whole image (tests/unit/test_preprocess.c). */
#ifndef SN_RESIZE_H
#define SN_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/shufflenet.h"

typedef struct sn_rs_plan sn_rs_plan;

/* Plan for a w x h displayed image. NULL with err filled on bad arguments or no memory. */
sn_rs_plan *sn_rs_plan_new(const sn_preprocess *p, int w, int h, char *err, size_t errlen);
void sn_rs_plan_free(sn_rs_plan *pl);
/* Bytes the plan holds (for the memory budget). */
size_t sn_rs_plan_bytes(const sn_rs_plan *pl);

/* Before feeding: the tensor to write (out, [3][crop][crop]) and the order the rows will come
 * in: +1 top to bottom, -1 bottom to top (OpenCV plans then write each output row as soon as
 * its two source rows are in, holding 2 rows instead of all), 0 any order or by columns.
 * Returns 0, or -1 when out of memory. */
int sn_rs_begin(sn_rs_plan *pl, float *out, int order);
/* Bounding box of the pixels the plan reads: columns [x0, x1), rows [y0, y1). */
void sn_rs_plan_box(const sn_rs_plan *pl, int *x0, int *x1, int *y0, int *y1);
/* 1 when displayed row y (column x) is read by the filters. */
int sn_rs_row_needed(const sn_rs_plan *pl, int y);
int sn_rs_col_needed(const sn_rs_plan *pl, int x);

/* Feed displayed row y (sn_rs_row_needed): the pixel (x, y), R,G,B, is at
 * px + (x - box x0) * xstep for x in the box. Each needed row exactly once. Two bytes past
 * the highest-addressed pixel of the box must be readable (the AVX2 passes load 4 bytes per
 * pixel, or 8 per pair of pixels): decoders pad their line buffers. */
void sn_rs_feed_row(sn_rs_plan *pl, int y, const uint8_t *px, ptrdiff_t xstep);
/* Feed displayed column x (sn_rs_col_needed): pixel (x, y) is at py + (y - box y0) * ystep.
 * Each needed column exactly once; a plan is fed by rows or by columns, not both. */
void sn_rs_feed_col(sn_rs_plan *pl, int x, const uint8_t *py, ptrdiff_t ystep);
/* Vertical pass, channel order, (x - mean) / std into out [3][crop][crop] (the tensor given
 * to sn_rs_begin). Returns 0, or -1 when a streamed plan did not get all its rows. */
int sn_rs_finish(sn_rs_plan *pl, float *out);

/* The OpenCV vertical pass + normalisation of one output line of one channel: for i < n,
 * v = the SIMD rounding of (a[i], b[i]) with weights (w0, w1) when i < split, the scalar
 * rounding otherwise, clamped to 0..255; out[i] = (v - mean) / std. The AVX2 version is used
 * when the CPU has it (sn_rs_vline picks); both give the same bits (test_preprocess.c). */
void sn_rs_vline_scalar(const int32_t *a, const int32_t *b, int n, int split, int w0, int w1,
                        float mean, float std, float *out);
void sn_rs_vline_avx2(const int32_t *a, const int32_t *b, int n, int split, int w0, int w1,
                      float mean, float std, float *out);
/* The OpenCV horizontal pass of one line, 2 taps per output column (x0/x1 source indexes in
 * pixels from px, steps of xstep bytes; w0/w1 weights) into the planes hr/hg/hb. */
void sn_rs_hline_scalar(const uint8_t *px, ptrdiff_t xstep, const int32_t *x0, const int32_t *x1,
                        const int32_t *w0, const int32_t *w1, int n, int32_t *hr, int32_t *hg,
                        int32_t *hb);
void sn_rs_hline_avx2(const uint8_t *px, ptrdiff_t xstep, const int32_t *x0, const int32_t *x1,
                      const int32_t *w0, const int32_t *w1, int n, int32_t *hr, int32_t *hg,
                      int32_t *hb);
/* The same pass when every output's taps are a pair of adjacent pixels of a packed RGB line
 * (xstep 3): output i reads pixels ps[i] and ps[i] + 1 with the 16-bit weights
 * w01[i] = lo | hi << 16. sn_rs_pairs makes ps/w01 from x0/x1/w0/w1 for a box bw pixels wide,
 * giving the same sums as sn_rs_hline_* (a right-edge tap x1 = x0 with w1 = 0 becomes the pair
 * x0 - 1, x0 with weights 0, w0); it returns 0 when some output cannot be written so. The AVX2
 * kernel loads 8 bytes per pair: two bytes past the box's last pixel are read. */
int sn_rs_pairs(const int32_t *x0, const int32_t *x1, const int32_t *w0, const int32_t *w1, int n,
                int bw, int32_t *ps, int32_t *w01);
void sn_rs_hpair_scalar(const uint8_t *px, const int32_t *ps, const int32_t *w01, int n,
                        int32_t *hr, int32_t *hg, int32_t *hb);
void sn_rs_hpair_avx2(const uint8_t *px, const int32_t *ps, const int32_t *w01, int n, int32_t *hr,
                      int32_t *hg, int32_t *hb);
/* 1 when the plan uses the AVX2 kernels (CPU has AVX2 and SN_NO_AVX2 is unset). */
int sn_rs_have_avx2(void);
/* Tests: look at the CPU and SN_NO_AVX2 again on the next call. */
void sn_rs_reset_isa(void);

#endif
