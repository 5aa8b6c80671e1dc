/* stream.h - decode only what the model sees. A JPEG or PNG is opened (header only: size,
 * EXIF orientation, pixel budget), the caller picks a DCT scale (JPEG: M/8, M = 1..8) and a
 * sink that says which displayed rows and columns it reads; sn_stream_run then decodes just
 * the stored rectangle under them (libjpeg-turbo's jpeg_crop_scanline for the columns,
 * jpeg_skip_scanlines for the rows above; PNG stops reading after the last needed row) and
 * hands each needed line to the sink in display orientation. Rows below the window are still
 * entropy-decoded (skipped, not dropped), so a JPEG cut short anywhere is refused as before.
 * Scale 1/8 of a baseline JPEG is decoded by common/jpegdc.c instead (same pixels as libjpeg
 * but for 4:2:0 chroma, which stays at its DC: jpegdc.h), and so is full scale when the sink
 * reads few of the pixels (libjpeg's pixels, bit for bit, where read).
 * Internal to common/: sn_input_from_bytes (input.h) is the one caller in the service. */
#ifndef SN_STREAM_H
#define SN_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/image.h"

/* What a decoded line goes to; coordinates are of the displayed image at the chosen scale.
 * A row is handed over as pixel (x, y) at px + (x - x0) * xstep for x in [x0, x1); a column
 * (EXIF orientations 5..8, whose displayed columns are stored rows) as pixel (x, y) at
 * py + (y - y0) * ystep for y in [y0, y1). */
typedef struct {
    int x0, x1, y0, y1; /* bounding box of what the sink reads */
    void *ctx;
    int (*row_needed)(void *ctx, int y);
    int (*col_needed)(void *ctx, int x);
    void (*feed_row)(void *ctx, int y, const uint8_t *px, ptrdiff_t xstep);
    void (*feed_col)(void *ctx, int x, const uint8_t *py, ptrdiff_t ystep);
} sn_sink;

typedef struct {
    sn_image_format format; /* SN_FMT_JPEG or SN_FMT_PNG */
    int width, height;      /* displayed (EXIF orientation applied), full size */
    int orientation;        /* 1..8 */
    int scalable;           /* 1: DCT scales M/8 available (JPEG) */
} sn_stream_info;

typedef struct sn_stream sn_stream;

/* Sniff and read the header; checks the pixel budget (max_pixels <= 0: only the 65535 side
 * limit). On failure *s is NULL and err says why. */
sn_image_status sn_stream_open(const uint8_t *data, size_t len, long long max_pixels, sn_stream **s,
                               sn_stream_info *info, char *err, size_t errlen);
/* Displayed size at scale m/8 (m = 8: full size; PNG ignores m). */
void sn_stream_scaled_size(const sn_stream *s, int m, int *w, int *h);
/* Bytes the decoder will allocate at scale m/8 reading columns [x0, x1) of the displayed
 * image (an estimate from the header, for the memory budget). */
size_t sn_stream_mem_estimate(const sn_stream *s, int m, const sn_sink *sink);
/* Decode at scale m/8 into the sink. Once per stream. */
sn_image_status sn_stream_run(sn_stream *s, int m, const sn_sink *sink, char *err, size_t errlen);
void sn_stream_close(sn_stream *s);

/* Tests: decode every row and column of this stream (no crop, no skip), the reference the
 * cropping path is compared with. Before sn_stream_run. */
void sn_stream_no_skip(sn_stream *s);
/* Tests: never use the skipping 1/8 decoder (jpegdc.h); whether the last run did; whether
 * its output would be libjpeg's bit for bit (not where libjpeg gives chroma a 2x2 IDCT). */
void sn_stream_no_dc(sn_stream *s);
int sn_stream_used_dc(const sn_stream *s);
int sn_stream_dc_same_as_libjpeg(const sn_stream *s);
/* Tests: full scale through the sparse decoder (jpegdc.h) always where it can (mode 1), never
 * (-1), or when the sink reads under 1/40 of the pixels (0, the default); whether the last
 * run did. */
void sn_stream_full_scale(sn_stream *s, int mode);
int sn_stream_used_full_scale(const sn_stream *s);

#endif
