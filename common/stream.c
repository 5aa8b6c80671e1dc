/* stream.c - decode only the stored rectangle a sink reads (stream.h).
 *
 * JPEG: after jpeg_start_decompress at scale M/8, jpeg_crop_scanline narrows decoding to the
 * iMCU columns that hold the window (libjpeg-turbo widens the request to iMCU boundaries),
 * jpeg_skip_scanlines passes the rows above it (whole iMCU rows are entropy-decoded only),
 * the window's rows are read (those no filter tap reads skipped within their iMCU row: no
 * colour conversion), and the rows below are skipped up to the last one, which is
 * read so that jpeg_finish_decompress still checks the data to EOI. Pixels inside the
 * window are the same as a full decode's (tests/unit/test_stream.c proves it for odd sizes,
 * every orientation, gray, CMYK, progressive, arithmetic, restart markers, 4:2:0/4:2:2/4:4:4).
 * At scale 1/8 a baseline JPEG goes first to the skipping decoder (jpegdc.h), which parses
 * the AC codes without decoding them and is 1.4-1.6x libjpeg's speed on 12 MP photos; at full
 * scale, when the sink reads under 1/40 of the pixels (a big photo in exact mode), to the
 * sparse one, which transforms only the samples read (full_path). Either declines anything it
 * does not handle as libjpeg would, and libjpeg then decodes as above.
 * PNG: rows are read one at a time up to the last needed one (interlaced images need every
 * pass, so they are read whole). Every libjpeg/libpng error ends in a status via longjmp. */
#include "common/stream.h"

#include <stdlib.h>
#include <string.h>

#include "common/jpegdc.h"
#include "common/jpegio.h"
#include "engine/util.h"

/* Extra stored columns decoded on each side of the window: jpeg_crop_scanline treats its
 * edges as the image's edges for fancy upsampling, so the outermost column of a 4:2:x crop
 * can differ from a full decode; the window never starts there (test_stream.c). */
#ifndef SN_CROP_MARGIN
#define SN_CROP_MARGIN 16
#endif

struct sn_stream {
    sn_stream_info info;
    int no_skip, no_dc, used_dc;
    int full_mode, used_full; /* sn_stream_full_scale; whether the last run used it */
    long long max_pixels;
    size_t len;
    /* JPEG */
    struct jpeg_decompress_struct ci;
    struct jpeg_progress_mgr pr;
    sn_jpeg_err jerr;
    int cmyk, jpeg_open;
    int sw, sh; /* stored size */
    /* PNG */
    sn_png_src src;
    png_structp png;
    png_infop pinfo;
    int interlaced;
};

void sn_stream_no_skip(sn_stream *s) {
    s->no_skip = 1;
}

void sn_stream_no_dc(sn_stream *s) {
    s->no_dc = 1;
}

int sn_stream_used_dc(const sn_stream *s) {
    return s->used_dc;
}

void sn_stream_full_scale(sn_stream *s, int mode) {
    s->full_mode = mode;
}

int sn_stream_used_full_scale(const sn_stream *s) {
    return s->used_full;
}

/* Scale 1/8 of a baseline JPEG goes to the skipping decoder (jpegdc.h) first; with no_skip
 * too (it reads every block anyway), so that a full decode at 1/8 is the same decoder's. */
static int dc_path(const sn_stream *s, int m) {
    return s->info.format == SN_FMT_JPEG && m == 1 && !s->no_dc && !s->cmyk &&
           sn_jdc_eligible(&s->ci);
}

int sn_stream_dc_same_as_libjpeg(const sn_stream *s) {
    return s->info.format != SN_FMT_JPEG || s->cmyk || !sn_jdc_eligible(&s->ci) ||
           sn_jdc_same_as_libjpeg(&s->ci);
}

static void close_codec(sn_stream *s) {
    if (s->jpeg_open) jpeg_destroy_decompress(&s->ci);
    s->jpeg_open = 0;
    if (s->png) png_destroy_read_struct(&s->png, &s->pinfo, NULL);
    s->png = NULL;
}

void sn_stream_close(sn_stream *s) {
    if (!s) return;
    close_codec(s);
    free(s);
}

static sn_image_status open_jpeg(sn_stream *s, const uint8_t *data, size_t len, char *err,
                                 size_t errlen) {
    if (setjmp(s->jerr.jb)) {
        sn_jpeg_errmsg(&s->jerr, err, errlen);
        return s->jerr.status;
    }
    s->jpeg_open = 1;
    sn_jpeg_setup(&s->ci, &s->jerr, &s->pr, s->max_pixels, data, len);
    jpeg_read_header(&s->ci, TRUE);
    sn_jpeg_check_size(&s->ci, s->max_pixels);
    s->cmyk = sn_jpeg_set_color(&s->ci);
    s->sw = (int)s->ci.image_width, s->sh = (int)s->ci.image_height;
    s->info.orientation = sn_jpeg_orientation(&s->ci);
    int swap = s->info.orientation >= 5;
    s->info.width = swap ? s->sh : s->sw;
    s->info.height = swap ? s->sw : s->sh;
    s->info.scalable = 1;
    return SN_IMG_OK;
}

static sn_image_status open_png(sn_stream *s, const uint8_t *data, size_t len, char *err,
                                size_t errlen) {
    s->src = (sn_png_src){data, len, 0, ""};
    s->png = sn_png_reader(&s->src, &s->pinfo);
    if (!s->png) {
        sn_errf(err, errlen, "out of memory decoding PNG");
        return SN_IMG_NOMEM;
    }
    if (setjmp(png_jmpbuf(s->png))) {
        sn_errf(err, errlen, "invalid PNG: %s", s->src.msg);
        return SN_IMG_INVALID;
    }
    png_read_info(s->png, s->pinfo);
    png_uint_32 w = png_get_image_width(s->png, s->pinfo),
                h = png_get_image_height(s->png, s->pinfo);
    if (s->max_pixels > 0 && (long long)w * (long long)h > s->max_pixels) {
        sn_errf(err, errlen, "image too large: %ux%u is %lld pixels, the limit is %lld",
                (unsigned)w, (unsigned)h, (long long)w * h, s->max_pixels);
        return SN_IMG_TOO_LARGE;
    }
    s->interlaced = png_get_interlace_type(s->png, s->pinfo) != PNG_INTERLACE_NONE;
    sn_png_to_rgb(s->png, s->pinfo);
    s->sw = s->info.width = (int)w;
    s->sh = s->info.height = (int)h;
    s->info.orientation = 1;
    return SN_IMG_OK;
}

sn_image_status sn_stream_open(const uint8_t *data, size_t len, long long max_pixels,
                               sn_stream **out, sn_stream_info *info, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    *out = NULL;
    if (!data || len == 0) {
        sn_errf(err, errlen, "empty image");
        return SN_IMG_EMPTY;
    }
    sn_image_format f = sn_image_sniff(data, len);
    if (f != SN_FMT_JPEG && f != SN_FMT_PNG) {
        sn_image im; /* the whole-image decoder names the format */
        return sn_image_decode(data, len, max_pixels, 0, &im, err, errlen);
    }
    sn_stream *s = calloc(1, sizeof *s);
    if (!s) {
        sn_errf(err, errlen, "out of memory");
        return SN_IMG_NOMEM;
    }
    s->max_pixels = max_pixels;
    s->len = len;
    s->info.format = f;
    sn_image_status st = f == SN_FMT_JPEG ? open_jpeg(s, data, len, err, errlen)
                                          : open_png(s, data, len, err, errlen);
    if (st != SN_IMG_OK) {
        sn_stream_close(s);
        return st;
    }
    *info = s->info;
    *out = s;
    return SN_IMG_OK;
}

/* Stored size at scale m/8: libjpeg-turbo's ceil(size * m / 8). */
static void stored_scaled(const sn_stream *s, int m, int *w, int *h) {
    if (s->info.format != SN_FMT_JPEG || m < 1 || m > 8) m = 8;
    *w = (int)(((long long)s->sw * m + 7) / 8);
    *h = (int)(((long long)s->sh * m + 7) / 8);
}

void sn_stream_scaled_size(const sn_stream *s, int m, int *w, int *h) {
    int sw, sh;
    stored_scaled(s, m, &sw, &sh);
    int swap = s->info.orientation >= 5;
    *w = swap ? sh : sw;
    *h = swap ? sw : sh;
}

/* Stored pixel of displayed (x, y) for orientation o; ow x oh is the stored size. */
static void to_stored(int o, int ow, int oh, int x, int y, int *sx, int *sy) {
    switch (o) {
    case 2:
        *sx = ow - 1 - x, *sy = y;
        break;
    case 3:
        *sx = ow - 1 - x, *sy = oh - 1 - y;
        break;
    case 4:
        *sx = x, *sy = oh - 1 - y;
        break;
    case 5:
        *sx = y, *sy = x;
        break;
    case 6:
        *sx = y, *sy = oh - 1 - x;
        break;
    case 7:
        *sx = ow - 1 - y, *sy = oh - 1 - x;
        break;
    case 8:
        *sx = ow - 1 - y, *sy = x;
        break;
    default:
        *sx = x, *sy = y;
    }
}

/* The stored rectangle [sx0, sx1) x [sy0, sy1) under the sink's displayed box. */
static void stored_box(const sn_stream *s, int ow, int oh, const sn_sink *k, int *sx0, int *sx1,
                       int *sy0, int *sy1) {
    int ax, ay, bx, by, o = s->info.orientation;
    to_stored(o, ow, oh, k->x0, k->y0, &ax, &ay);
    to_stored(o, ow, oh, k->x1 - 1, k->y1 - 1, &bx, &by);
    *sx0 = ax < bx ? ax : bx, *sx1 = (ax < bx ? bx : ax) + 1;
    *sy0 = ay < by ? ay : by, *sy1 = (ay < by ? by : ay) + 1;
}

static int full_path(const sn_stream *s, int m, const sn_sink *k);
static void count_needed(const sn_stream *s, const sn_sink *k, int *rows, int *cols);

size_t sn_stream_mem_estimate(const sn_stream *s, int m, const sn_sink *k) {
    int ow, oh, sx0, sx1, sy0, sy1;
    stored_scaled(s, m, &ow, &oh);
    stored_box(s, ow, oh, k, &sx0, &sx1, &sy0, &sy1);
    size_t cw = (size_t)(sx1 - sx0) + 2 * SN_CROP_MARGIN + 32;
    if (s->info.format == SN_FMT_PNG)
        return s->interlaced ? (size_t)ow * oh * 3 + (size_t)oh * sizeof(void *) + (64 << 10)
                             : (size_t)ow * 6 + (64 << 10);
    size_t n = cw * 4 * 64 + cw * 7; /* libjpeg's row groups + our line buffers */
    if (jpeg_has_multiple_scans((j_decompress_ptr)&s->ci)) /* whole-image coefficients */
        for (int c = 0; c < s->ci.num_components; c++)
            n += (size_t)s->ci.comp_info[c].width_in_blocks * s->ci.comp_info[c].height_in_blocks *
                 sizeof(JBLOCK);
    if (dc_path(s, m)) { /* one or the other, never both at once */
        size_t d = sn_jdc_mem(&s->ci, s->len);
        if (d > n) n = d;
    }
    if (full_path(s, m, k)) {
        int rows, cols;
        count_needed(s, k, &rows, &cols);
        size_t d = sn_jdc_full_mem(&s->ci, s->len, rows, cols);
        if (d > n) n = d;
    }
    return n;
}

/* The displayed line stored row sy is: a row for orientations 1-4, a column for 5-8. */
static int displayed_line(int o, int oh, int sy) {
    return o == 1 || o == 2 || o == 5 || o == 8 ? sy : oh - 1 - sy;
}

/* Whether the sink reads stored row sy. */
static int stored_row_needed(const sn_stream *s, const sn_sink *k, int oh, int sy) {
    int o = s->info.orientation, v = displayed_line(o, oh, sy);
    if (o <= 4) return v >= k->y0 && v < k->y1 && k->row_needed(k->ctx, v);
    return v >= k->x0 && v < k->x1 && k->col_needed(k->ctx, v);
}

/* Whether the sink reads stored column sx (of ow). */
static int stored_col_needed(const sn_stream *s, const sn_sink *k, int ow, int sx) {
    int o = s->info.orientation;
    int v = o == 2 || o == 3 || o == 7 || o == 8 ? ow - 1 - sx : sx;
    if (o <= 4) return v >= k->x0 && v < k->x1 && k->col_needed(k->ctx, v);
    return v >= k->y0 && v < k->y1 && k->row_needed(k->ctx, v);
}

/* Stored rows and columns the sink reads at full scale. */
static void count_needed(const sn_stream *s, const sn_sink *k, int *rows, int *cols) {
    *rows = *cols = 0;
    for (int y = 0; y < s->sh; y++) *rows += stored_row_needed(s, k, s->sh, y);
    for (int x = 0; x < s->sw; x++) *cols += stored_col_needed(s, k, s->sw, x);
}

/* Full scale goes to the sparse decoder (jpegdc.h) when the sink reads under 1/40 of the
 * pixels and the file is one it takes; sn_stream_full_scale forces it on or off. Every block
 * is still entropy-decoded and a read block costs it more than libjpeg's SIMD path, so it
 * pays only when few blocks are read: a 4000x3000 photo resized to 256 (1.7% of its pixels
 * read) decodes in 0.8x libjpeg's time, one of 2560x1920 (4.1%) in 1.6x (build/decode-ab
 * --exact; docs/request-path.md). */
static int full_path(const sn_stream *s, int m, const sn_sink *k) {
    if (s->info.format != SN_FMT_JPEG || m != 8 || s->no_skip || s->cmyk || s->full_mode < 0 ||
        !sn_jdc_eligible(&s->ci))
        return 0;
    if (s->full_mode > 0) return 1;
    int rows, cols;
    count_needed(s, k, &rows, &cols);
    return (long long)rows * cols * 40 < (long long)s->sw * s->sh;
}

/* How many rows from stored row sy on (all before `last`) the sink does not read and
 * jpeg_skip_scanlines can pass without changing a later row. In libjpeg-turbo (2.1 and
 * later) a skip that ends inside the current iMCU row either reads and discards the rows with
 * colour conversion switched off (when the upsampler needs context rows: 4:2:0 and 4:4:0
 * with fancy upsampling) or moves the main buffer's row-group counter on by whole row groups
 * of max_v_samp_factor rows, which is right only when the skip starts at a row group's first
 * row (the upsampler has handed out the previous group). So: only from the first row of a row
 * group, and only within the iMCU row (skips that crossed into the next iMCU row changed
 * later pixels of 4:2:2 images at 8/8 with 2.1.5; test_stream.c decodes every window twice,
 * by a sink reading every row and by one skipping irregular runs of rows). */
static int skippable_rows(const sn_stream *s, const sn_sink *k, int oh, int sy, int last) {
    const struct jpeg_decompress_struct *ci = &s->ci;
    int group = ci->max_v_samp_factor, imcu = group * ci->min_DCT_scaled_size;
    if (sy % group) return 0;
    int end = (sy / imcu + 1) * imcu - 1; /* strictly inside the iMCU row */
    if (end > last - 1) end = last - 1;   /* the window's last row is read */
    int gap = 0;
    while (sy + gap < end && !stored_row_needed(s, k, oh, sy + gap)) gap++;
    return gap;
}

/* One decoded stored row sy (pixel sx at buf + (sx - xoff) * 3) to the sink. */
static void deliver(const sn_stream *s, const sn_sink *k, int ow, int oh, int sy,
                    const uint8_t *buf, int xoff) {
    if (!stored_row_needed(s, k, oh, sy)) return;
    int o = s->info.orientation, v = displayed_line(o, oh, sy);
    if (o <= 4) {
        int flip = o == 2 || o == 3, sx = flip ? ow - 1 - k->x0 : k->x0;
        k->feed_row(k->ctx, v, buf + (ptrdiff_t)(sx - xoff) * 3, flip ? -3 : 3);
    } else {
        int flip = o == 7 || o == 8, sx = flip ? ow - 1 - k->y0 : k->y0;
        k->feed_col(k->ctx, v, buf + (ptrdiff_t)(sx - xoff) * 3, flip ? -3 : 3);
    }
}

/* Where a decoded row starts: SN_ROW_SKEW bytes past a cache line. libjpeg-turbo's SIMD
 * colour converters write a row that starts on a 16-byte (SSE2) or 32-byte (AVX2) boundary
 * with non-temporal stores, which send it past the cache to memory; the resampler reads the
 * row right after, and every row would then come back from DRAM (a 640x480 request's
 * horizontal pass took 6x as long whenever malloc happened to return a 32-byte aligned
 * buffer; docs/request-path.md). A row off both alignments gets ordinary stores. */
#define SN_ROW_SKEW 8

static uint8_t *row_start(uint8_t *buf) {
    return buf + ((64 - ((uintptr_t)buf & 63)) & 63) + SN_ROW_SKEW;
}

/* The skipping decoder's view of the sink: stored rows [sy0, sy1) the sink reads. */
typedef struct {
    const sn_stream *s;
    const sn_sink *k;
    int ow, oh, sy0, sy1;
} dc_ctx;

static int dc_need(void *c, int sy) {
    const dc_ctx *d = c;
    return sy >= d->sy0 && sy < d->sy1 && stored_row_needed(d->s, d->k, d->oh, sy);
}

static void dc_row(void *c, int sy, const uint8_t *rgb) {
    const dc_ctx *d = c;
    deliver(d->s, d->k, d->ow, d->oh, sy, rgb, 0);
}

static int dc_need_col(void *c, int sx) {
    const dc_ctx *d = c;
    return stored_col_needed(d->s, d->k, d->ow, sx);
}

static sn_image_status run_jpeg(sn_stream *s, int m, const sn_sink *k, char *err, size_t errlen) {
    struct jpeg_decompress_struct *ci = &s->ci;
    int full = full_path(s, m, k);
    s->used_dc = s->used_full = 0;
    if (full || dc_path(s, m)) {
        dc_ctx d = {s, k, 0, 0, 0, 0};
        int sx0, sx1;
        stored_scaled(s, m, &d.ow, &d.oh);
        stored_box(s, d.ow, d.oh, k, &sx0, &sx1, &d.sy0, &d.sy1);
        sn_jdc_out out = {&d, dc_need, dc_row, dc_need_col};
        sn_jdc_status st = full ? sn_jdc_decode_full(ci, &out) : sn_jdc_decode(ci, &out);
        if (st == SN_JDC_DONE) {
            s->used_dc = !full, s->used_full = full;
            return SN_IMG_OK;
        }
        if (st == SN_JDC_NOMEM) {
            sn_errf(err, errlen, "out of memory decoding JPEG");
            return SN_IMG_NOMEM;
        }
        /* declined: libjpeg decodes it (and names the fault, if there is one) */
    }
    uint8_t *volatile line = NULL, *volatile rgb = NULL;
    if (setjmp(s->jerr.jb)) {
        free(line);
        free(rgb);
        sn_jpeg_errmsg(&s->jerr, err, errlen);
        return s->jerr.status;
    }
    int ow, oh;
    stored_scaled(s, m, &ow, &oh);
    ci->scale_num = (unsigned)(m >= 1 && m <= 8 ? m : 8);
    ci->scale_denom = 8;
    jpeg_start_decompress(ci);
    if ((int)ci->output_width != ow || (int)ci->output_height != oh ||
        ci->output_components != (s->cmyk ? 4 : 3)) {
        snprintf(s->jerr.msg, sizeof s->jerr.msg, "unexpected output format");
        sn_jpeg_fail(ci, SN_IMG_INVALID);
    }
    int sx0, sx1, sy0, sy1;
    stored_box(s, ow, oh, k, &sx0, &sx1, &sy0, &sy1);
    JDIMENSION xoff = 0, cw = (JDIMENSION)ow;
    if (!s->no_skip) {
        int a = sx0 - SN_CROP_MARGIN < 0 ? 0 : sx0 - SN_CROP_MARGIN;
        int b = sx1 + SN_CROP_MARGIN > ow ? ow : sx1 + SN_CROP_MARGIN;
        xoff = (JDIMENSION)a, cw = (JDIMENSION)(b - a);
        if (a > 0 || b < ow) jpeg_crop_scanline(ci, &xoff, &cw);
    } else {
        sy0 = 0;
    }
    /* + 4: the resampler's AVX2 passes read up to two bytes past a pixel (resize.h); + 64 +
     * SN_ROW_SKEW: row_start */
    line = malloc((size_t)cw * (s->cmyk ? 4 : 3) + 4 + 64 + SN_ROW_SKEW);
    if (s->cmyk) rgb = malloc((size_t)cw * 3 + 4);
    if (!line || (s->cmyk && !rgb)) sn_jpeg_fail(ci, SN_IMG_NOMEM);
    uint8_t *row0 = row_start(line);
    if (sy0 > 0 && jpeg_skip_scanlines(ci, (JDIMENSION)sy0) != (JDIMENSION)sy0) {
        snprintf(s->jerr.msg, sizeof s->jerr.msg, "cannot skip to row %d", sy0);
        sn_jpeg_fail(ci, SN_IMG_INVALID);
    }
    int last = s->no_skip ? oh : sy1;
    while ((int)ci->output_scanline < last) {
        int sy = (int)ci->output_scanline;
        /* Rows of the window no filter tap reads (a downscale reads ~2 of every `scale`) are
         * skipped, which spares their colour conversion; see skippable_rows. */
        int gap = s->no_skip ? 0 : skippable_rows(s, k, oh, sy, last);
        if (gap > 0) {
            if (jpeg_skip_scanlines(ci, (JDIMENSION)gap) != (JDIMENSION)gap) {
                snprintf(s->jerr.msg, sizeof s->jerr.msg, "cannot skip to row %d", sy + gap);
                sn_jpeg_fail(ci, SN_IMG_INVALID);
            }
            continue;
        }
        JSAMPROW row = row0;
        if (jpeg_read_scanlines(ci, &row, 1) != 1) {
            snprintf(s->jerr.msg, sizeof s->jerr.msg, "no scanline returned");
            sn_jpeg_fail(ci, SN_IMG_INVALID);
        }
        const uint8_t *px = row0;
        if (s->cmyk) {
            sn_jpeg_cmyk_to_rgb(row0, rgb, (int)cw, ci->saw_Adobe_marker);
            px = rgb;
        }
        if (sy >= sy0 && sy < sy1) deliver(s, k, ow, oh, sy, px, (int)xoff);
    }
    /* Skip to the last row and read it: skipping to the very end would mark EOI reached
     * without reading the data, and a file cut short below the window would pass. */
    int left = oh - 1 - (int)ci->output_scanline;
    if (left > 0 && jpeg_skip_scanlines(ci, (JDIMENSION)left) != (JDIMENSION)left) {
        snprintf(s->jerr.msg, sizeof s->jerr.msg, "cannot skip to the last row");
        sn_jpeg_fail(ci, SN_IMG_INVALID);
    }
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = row0;
        if (jpeg_read_scanlines(ci, &row, 1) != 1) {
            snprintf(s->jerr.msg, sizeof s->jerr.msg, "no scanline returned");
            sn_jpeg_fail(ci, SN_IMG_INVALID);
        }
    }
    jpeg_finish_decompress(ci);
    free(line);
    free(rgb);
    return SN_IMG_OK;
}

static sn_image_status run_png(sn_stream *s, const sn_sink *k, char *err, size_t errlen) {
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(s->png))) {
        free(pix);
        free(rows);
        sn_errf(err, errlen, "invalid PNG: %s", s->src.msg);
        return SN_IMG_INVALID;
    }
    size_t stride = (size_t)s->sw * 3;
    if (s->interlaced) {                  /* every pass touches every row: read it whole */
        pix = malloc(stride * s->sh + 4); /* + 4: see run_jpeg */
        rows = malloc((size_t)s->sh * sizeof *rows);
        if (!pix || !rows) png_error(s->png, "out of memory");
        for (int y = 0; y < s->sh; y++) rows[y] = pix + y * stride;
        png_read_image(s->png, rows);
        png_read_end(s->png, NULL);
        for (int y = k->y0; y < k->y1; y++)
            if (k->row_needed(k->ctx, y)) k->feed_row(k->ctx, y, rows[y] + (size_t)k->x0 * 3, 3);
    } else {
        pix = malloc(stride + 4);
        if (!pix) png_error(s->png, "out of memory");
        int last = s->no_skip ? s->sh : k->y1;
        for (int y = 0; y < last; y++) {
            png_read_row(s->png, pix, NULL);
            if (y >= k->y0 && y < k->y1 && k->row_needed(k->ctx, y))
                k->feed_row(k->ctx, y, pix + (size_t)k->x0 * 3, 3);
        }
        if (s->no_skip) png_read_end(s->png, NULL);
    }
    free(pix);
    free(rows);
    return SN_IMG_OK;
}

sn_image_status sn_stream_run(sn_stream *s, int m, const sn_sink *k, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    int w, h;
    sn_stream_scaled_size(s, m, &w, &h);
    if (k->x0 < 0 || k->y0 < 0 || k->x1 > w || k->y1 > h || k->x0 >= k->x1 || k->y0 >= k->y1) {
        sn_errf(err, errlen, "decode window outside the %dx%d image", w, h);
        return SN_IMG_INVALID;
    }
    return s->info.format == SN_FMT_JPEG ? run_jpeg(s, m, k, err, errlen)
                                         : run_png(s, k, err, errlen);
}
