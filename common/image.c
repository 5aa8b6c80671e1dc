/* image.c - decodes uploaded JPEG (libjpeg-turbo) and PNG (libpng) images from memory into
 * 8-bit interleaved RGB, with the EXIF orientation applied. The pixel budget is checked on
 * the header's width and height before any pixel buffer exists, both libraries have their
 * own memory capped, and every library error (and every libjpeg warning about corrupt or
 * truncated data) ends in a status code, never in exit() or a half-decoded image. */
#include "common/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jpegio.h"
#include "engine/util.h"

const char *sn_image_status_name(sn_image_status s) {
    switch (s) {
    case SN_IMG_OK:
        return "ok";
    case SN_IMG_EMPTY:
        return "empty";
    case SN_IMG_UNSUPPORTED:
        return "unsupported";
    case SN_IMG_INVALID:
        return "invalid";
    case SN_IMG_TOO_LARGE:
        return "too_large";
    case SN_IMG_NOMEM:
        return "nomem";
    }
    return "unknown";
}

sn_image_format sn_image_sniff(const uint8_t *d, size_t len) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    if (!d) return SN_FMT_UNKNOWN;
    if (len >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return SN_FMT_JPEG;
    if (len >= 4 && memcmp(d, png_sig, len < 8 ? len : 8) == 0) return SN_FMT_PNG;
    if (len >= 4 && memcmp(d, "GIF8", 4) == 0) return SN_FMT_GIF;
    if (len >= 2 && d[0] == 'B' && d[1] == 'M') return SN_FMT_OTHER_IMAGE; /* BMP */
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
        return SN_FMT_OTHER_IMAGE; /* WebP */
    if (len >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
        return SN_FMT_OTHER_IMAGE; /* TIFF */
    return SN_FMT_UNKNOWN;
}

void sn_image_free(sn_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

/* ---- EXIF orientation --------------------------------------------------------------- */

/* The displayed image for orientation o (2..8) of a stored w x h image. Orientations 2-4
 * keep the size and are done in place (returns src); 5-8 swap the sides and need a new
 * buffer (src is freed). NULL when that allocation fails (src is then still owned). */
static uint8_t *apply_orientation(uint8_t *src, int w, int h, int o) {
    size_t W = (size_t)w, H = (size_t)h;
    if (o == 2 || o == 3) { /* mirror each row; 3 also reverses the row order */
        for (size_t y = 0; y < H; y++) {
            uint8_t *r = src + y * W * 3;
            for (size_t a = 0, b = W - 1; a < b; a++, b--)
                for (int c = 0; c < 3; c++) {
                    uint8_t t = r[a * 3 + c];
                    r[a * 3 + c] = r[b * 3 + c];
                    r[b * 3 + c] = t;
                }
        }
    }
    if (o == 3 || o == 4) { /* reverse the row order */
        for (size_t a = 0, b = H - 1; a < b; a++, b--)
            for (size_t i = 0; i < W * 3; i++) {
                uint8_t t = src[a * W * 3 + i];
                src[a * W * 3 + i] = src[b * W * 3 + i];
                src[b * W * 3 + i] = t;
            }
    }
    if (o < 5) return src;

    /* Displayed image is h wide and w high; D(x, y) = S(sx, sy). */
    uint8_t *dst = malloc(W * H * 3);
    if (!dst) return NULL;
    for (size_t y = 0; y < W; y++) {
        uint8_t *d = dst + y * H * 3;
        for (size_t x = 0; x < H; x++, d += 3) {
            size_t sx, sy;
            switch (o) {
            case 5:
                sx = y, sy = x;
                break; /* transpose */
            case 6:
                sx = y, sy = H - 1 - x;
                break; /* rotate 90 CW */
            case 7:
                sx = W - 1 - y, sy = H - 1 - x;
                break; /* transverse */
            default:
                sx = W - 1 - y, sy = x;
                break; /* 8: rotate 90 CCW */
            }
            const uint8_t *s = src + (sy * W + sx) * 3;
            d[0] = s[0], d[1] = s[1], d[2] = s[2];
        }
    }
    free(src);
    return dst;
}

/* ---- JPEG --------------------------------------------------------------------------- */

static sn_image_status decode_jpeg(const uint8_t *data, size_t len, long long max_pixels,
                                   int min_short, sn_image *out, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    sn_jpeg_err jerr;
    uint8_t *volatile pix = NULL;
    uint8_t *volatile row4 = NULL; /* CMYK scanline */

    memset(&cinfo, 0, sizeof cinfo);
    memset(&progress, 0, sizeof progress);
    memset(&jerr, 0, sizeof jerr);
    if (setjmp(jerr.jb)) {
        free(pix);
        free(row4);
        jpeg_destroy_decompress(&cinfo);
        sn_jpeg_errmsg(&jerr, err, errlen);
        return jerr.status;
    }
    sn_jpeg_setup(&cinfo, &jerr, &progress, max_pixels, data, len);
    jpeg_read_header(&cinfo, TRUE);
    sn_jpeg_check_size(&cinfo, max_pixels);
    long long w = cinfo.image_width, h = cinfo.image_height;
    int orient = sn_jpeg_orientation(&cinfo);
    int cmyk = sn_jpeg_set_color(&cinfo);

    /* DCT-domain downscale: the largest 1/d that keeps the short side >= min_short. */
    int denom = 1;
    if (min_short > 0) {
        long long s = w < h ? w : h;
        for (int d = 8; d >= 2; d /= 2)
            if ((s + d - 1) / d >= min_short) {
                denom = d;
                break;
            }
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned)denom;

    jpeg_start_decompress(&cinfo);
    int ow = (int)cinfo.output_width, oh = (int)cinfo.output_height;
    if (ow <= 0 || oh <= 0 || cinfo.output_components != (cmyk ? 4 : 3)) {
        snprintf(jerr.msg, sizeof jerr.msg, "unexpected output format");
        sn_jpeg_fail(&cinfo, SN_IMG_INVALID);
    }
    pix = malloc((size_t)ow * (size_t)oh * 3);
    if (cmyk) row4 = malloc((size_t)ow * 4);
    if (!pix || (cmyk && !row4)) sn_jpeg_fail(&cinfo, SN_IMG_NOMEM);

    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = pix + (size_t)cinfo.output_scanline * (size_t)ow * 3;
        JSAMPROW row = cmyk ? row4 : dst;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            snprintf(jerr.msg, sizeof jerr.msg, "no scanline returned");
            sn_jpeg_fail(&cinfo, SN_IMG_INVALID);
        }
        if (cmyk) sn_jpeg_cmyk_to_rgb(row4, dst, ow, cinfo.saw_Adobe_marker);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row4);

    uint8_t *rgb = pix;
    if (orient > 1) {
        rgb = apply_orientation(pix, ow, oh, orient);
        if (!rgb) {
            free(pix);
            sn_errf(err, errlen, "out of memory applying EXIF orientation");
            return SN_IMG_NOMEM;
        }
    }
    int swap = orient >= 5;
    out->rgb = rgb;
    out->width = swap ? oh : ow;
    out->height = swap ? ow : oh;
    out->orig_width = (int)(swap ? h : w);
    out->orig_height = (int)(swap ? w : h);
    out->orientation = orient;
    out->dct_denom = denom;
    return SN_IMG_OK;
}

/* ---- PNG ---------------------------------------------------------------------------- */

static sn_image_status decode_png(const uint8_t *data, size_t len, long long max_pixels,
                                  sn_image *out, char *err, size_t errlen) {
    sn_png_src src = {data, len, 0, ""};
    png_infop info;
    png_structp png = sn_png_reader(&src, &info);
    if (!png) {
        sn_errf(err, errlen, "out of memory decoding PNG");
        return SN_IMG_NOMEM;
    }
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;

    if (setjmp(png_jmpbuf(png))) {
        free(pix);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        sn_errf(err, errlen, "invalid PNG: %s", src.msg);
        return SN_IMG_INVALID;
    }
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (max_pixels > 0 && (long long)w * (long long)h > max_pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        sn_errf(err, errlen, "image too large: %ux%u is %lld pixels, the limit is %lld",
                (unsigned)w, (unsigned)h, (long long)w * h, max_pixels);
        return SN_IMG_TOO_LARGE;
    }
    sn_png_to_rgb(png, info);

    pix = malloc((size_t)w * h * 3);
    rows = malloc((size_t)h * sizeof *rows);
    if (!pix || !rows) {
        free(pix);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        sn_errf(err, errlen, "out of memory decoding PNG");
        return SN_IMG_NOMEM;
    }
    for (size_t y = 0; y < h; y++) rows[y] = pix + y * (size_t)w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);

    out->rgb = pix;
    out->width = out->orig_width = (int)w;
    out->height = out->orig_height = (int)h;
    out->orientation = 1;
    out->dct_denom = 1;
    return SN_IMG_OK;
}

/* ---- entry point -------------------------------------------------------------------- */

sn_image_status sn_image_decode(const uint8_t *data, size_t len, long long max_pixels,
                                int min_short, sn_image *out, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!out) {
        sn_errf(err, errlen, "no output image");
        return SN_IMG_INVALID;
    }
    memset(out, 0, sizeof *out);
    if (!data || len == 0) {
        sn_errf(err, errlen, "empty image");
        return SN_IMG_EMPTY;
    }
    switch (sn_image_sniff(data, len)) {
    case SN_FMT_JPEG:
        return decode_jpeg(data, len, max_pixels, min_short, out, err, errlen);
    case SN_FMT_PNG:
        return decode_png(data, len, max_pixels, out, err, errlen);
    case SN_FMT_GIF:
        sn_errf(err, errlen, "GIF images are not supported (JPEG or PNG only)");
        return SN_IMG_UNSUPPORTED;
    case SN_FMT_OTHER_IMAGE:
        sn_errf(err, errlen, "unsupported image format (JPEG or PNG only)");
        return SN_IMG_UNSUPPORTED;
    default:
        sn_errf(err, errlen, "not a JPEG or PNG image");
        return SN_IMG_UNSUPPORTED;
    }
}
