/* image.c - decodes uploaded JPEG (libjpeg-turbo) and PNG (libpng) images from memory into
 * 8-bit interleaved RGB, with the EXIF orientation applied. The pixel budget is checked on
 * the header's width and height before any pixel buffer exists, both libraries have their
 * own memory capped, and every library error (and every libjpeg warning about corrupt or
 * truncated data) ends in a status code, never in exit() or a half-decoded image. */
#include "common/image.h"
#include "engine/util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#define SN_JPEG_MAX_SCANS 1000      /* a progressive JPEG needs ~10; thousands = a DoS attempt */
#define SN_DIM_MAX        65535     /* largest width or height either decoder accepts */
#define SN_PNG_CHUNK_MAX  (8 << 20) /* largest ancillary PNG chunk (after decompression) */

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

static unsigned rd16(const uint8_t *p, int le) {
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | (unsigned)p[1];
}

static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)rd16(p, 1) | (uint32_t)rd16(p + 2, 1) << 16
              : (uint32_t)rd16(p, 0) << 16 | (uint32_t)rd16(p + 2, 0);
}

/* Orientation (1..8) from a TIFF structure (the APP1 payload after "Exif\0\0"); 1 when it
 * is absent, out of range or anything about the structure is off. */
static int exif_orientation(const uint8_t *p, size_t n) {
    if (n < 8) return 1;
    int le;
    if (p[0] == 'I' && p[1] == 'I')
        le = 1;
    else if (p[0] == 'M' && p[1] == 'M')
        le = 0;
    else
        return 1;
    if (rd16(p + 2, le) != 42) return 1;
    uint32_t ifd = rd32(p + 4, le);
    if (ifd < 8 || (size_t)ifd > n - 2) return 1;
    unsigned count = rd16(p + ifd, le);
    for (unsigned i = 0; i < count; i++) {
        size_t off = (size_t)ifd + 2 + (size_t)i * 12;
        if (off + 12 > n) break;
        if (rd16(p + off, le) != 0x0112) continue;
        unsigned type = rd16(p + off + 2, le);
        uint32_t cnt = rd32(p + off + 4, le);
        if (type != 3 || cnt < 1) return 1; /* Orientation is one SHORT */
        unsigned v = rd16(p + off + 8, le);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

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

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg sees only this */
    jmp_buf jb;
    sn_image_status status;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_fail(j_common_ptr cinfo, sn_image_status st) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->status = st;
    longjmp(e->jb, 1);
}

/* libjpeg's fatal errors: never exit(), jump back to the decoder with the message. */
static void jpeg_error_exit_cb(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    switch (cinfo->err->msg_code) {
    case JERR_OUT_OF_MEMORY:
        jpeg_fail(cinfo, SN_IMG_NOMEM);
        break;
    /* libjpeg's own memory would pass the cap derived from the pixel budget */
    case JERR_NO_BACKING_STORE:
        jpeg_fail(cinfo, SN_IMG_TOO_LARGE);
        break;
    default:
        jpeg_fail(cinfo, SN_IMG_INVALID);
    }
}

/* Warnings (level -1) about corrupt or truncated data are errors here: libjpeg would go on
 * and fill the rest with gray, a silently wrong picture. Harmless ones are ignored, and
 * trace messages (level >= 0) are never printed. */
static void jpeg_emit_cb(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    switch (cinfo->err->msg_code) {
    case JWRN_ADOBE_XFORM:     /* unknown Adobe transform: libjpeg guesses from components */
    case JWRN_JFIF_MAJOR:      /* JFIF version number */
    case JWRN_EXTRANEOUS_DATA: /* junk between markers, skipped without touching pixels */
    case JWRN_BOGUS_ICC:       /* ICC profile, not used */
        return;
    default:
        jpeg_error_exit_cb(cinfo);
    }
}

static void jpeg_output_cb(j_common_ptr cinfo) {
    (void)cinfo;
}

static void jpeg_progress_cb(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    if (((j_decompress_ptr)cinfo)->input_scan_number > SN_JPEG_MAX_SCANS) {
        jpeg_err *e = (jpeg_err *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans", SN_JPEG_MAX_SCANS);
        jpeg_fail(cinfo, SN_IMG_INVALID);
    }
}

/* Adobe CMYK/YCCK JPEGs store 255 - ink, so a channel's light is about C*K/255. The
 * rounding is OpenCV's (k - ((255 - c) * k >> 8)), so pixels match cv2.imread exactly; a
 * CMYK JPEG without the Adobe marker stores plain ink amounts and is inverted first. */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted) {
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        unsigned k = inverted ? in[3] : 255u - in[3];
        for (int c = 0; c < 3; c++) {
            unsigned v = inverted ? in[c] : 255u - in[c];
            out[c] = (uint8_t)(k - ((255u - v) * k >> 8));
        }
    }
}

static sn_image_status decode_jpeg(const uint8_t *data, size_t len, long long max_pixels,
                                   int min_short, sn_image *out, char *err, size_t errlen) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    jpeg_err jerr;
    uint8_t *volatile pix = NULL;
    uint8_t *volatile row4 = NULL; /* CMYK scanline */

    memset(&cinfo, 0, sizeof cinfo);
    memset(&progress, 0, sizeof progress);
    memset(&jerr, 0, sizeof jerr);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_error_exit_cb;
    jerr.pub.emit_message = jpeg_emit_cb;
    jerr.pub.output_message = jpeg_output_cb;
    jerr.status = SN_IMG_INVALID;

    if (setjmp(jerr.jb)) {
        free(pix);
        free(row4);
        jpeg_destroy_decompress(&cinfo);
        if (jerr.status == SN_IMG_TOO_LARGE && jerr.msg[0] == '\0')
            sn_errf(err, errlen, "image too large");
        else if (jerr.status == SN_IMG_TOO_LARGE)
            sn_errf(err, errlen, "image too large: %s", jerr.msg);
        else if (jerr.status == SN_IMG_NOMEM)
            sn_errf(err, errlen, "out of memory decoding JPEG");
        else
            sn_errf(err, errlen, "invalid JPEG: %s", jerr.msg);
        return jerr.status;
    }

    jpeg_create_decompress(&cinfo);
    /* libjpeg's own buffers (a progressive image keeps all its coefficients, 2 bytes per
     * sample): capped in proportion to the pixel budget; past it libjpeg errors out. */
    long long cap = 64LL << 20;
    if (max_pixels > 0)
        cap += 8 * max_pixels;
    else
        cap = 4LL << 30;
    cinfo.mem->max_memory_to_use = (long)cap;
    progress.progress_monitor = jpeg_progress_cb;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&cinfo, TRUE);

    long long w = cinfo.image_width, h = cinfo.image_height;
    if (w > SN_DIM_MAX || h > SN_DIM_MAX || (max_pixels > 0 && w * h > max_pixels)) {
        snprintf(jerr.msg, sizeof jerr.msg, "%lldx%lld is %lld pixels, the limit is %lld", w, h,
                 w * h, max_pixels > 0 ? max_pixels : (long long)SN_DIM_MAX * SN_DIM_MAX);
        jpeg_fail((j_common_ptr)&cinfo, SN_IMG_TOO_LARGE);
    }

    int orient = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0) {
            orient = exif_orientation(m->data + 6, m->data_length - 6);
            break;
        }
    }

    int cmyk = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        snprintf(jerr.msg, sizeof jerr.msg, "unsupported color space (%d components)",
                 cinfo.num_components);
        jpeg_fail((j_common_ptr)&cinfo, SN_IMG_INVALID);
    }

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
        jpeg_fail((j_common_ptr)&cinfo, SN_IMG_INVALID);
    }
    pix = malloc((size_t)ow * (size_t)oh * 3);
    if (cmyk) row4 = malloc((size_t)ow * 4);
    if (!pix || (cmyk && !row4)) jpeg_fail((j_common_ptr)&cinfo, SN_IMG_NOMEM);

    while (cinfo.output_scanline < cinfo.output_height) {
        uint8_t *dst = pix + (size_t)cinfo.output_scanline * (size_t)ow * 3;
        JSAMPROW row = cmyk ? row4 : dst;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            snprintf(jerr.msg, sizeof jerr.msg, "no scanline returned");
            jpeg_fail((j_common_ptr)&cinfo, SN_IMG_INVALID);
        }
        if (cmyk) cmyk_to_rgb(row4, dst, ow, cinfo.saw_Adobe_marker);
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

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    char msg[160];
} png_src;

static void png_read_cb(png_structp png, png_bytep out, size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated file");
    memcpy(out, s->p + s->pos, n);
    s->pos += n;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
    (void)png, (void)msg;
}

static sn_image_status decode_png(const uint8_t *data, size_t len, long long max_pixels,
                                  sn_image *out, char *err, size_t errlen) {
    png_src src = {data, len, 0, ""};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
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
    png_set_user_limits(png, SN_DIM_MAX, SN_DIM_MAX);
    png_set_chunk_malloc_max(png, SN_PNG_CHUNK_MAX);
    png_set_chunk_cache_max(png, 128);
    png_set_read_fn(png, &src, png_read_cb);
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, ctype, ilace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &ilace, NULL, NULL);
    if (max_pixels > 0 && (long long)w * (long long)h > max_pixels) {
        png_destroy_read_struct(&png, &info, NULL);
        sn_errf(err, errlen, "image too large: %ux%u is %lld pixels, the limit is %lld",
                (unsigned)w, (unsigned)h, (long long)w * h, max_pixels);
        return SN_IMG_TOO_LARGE;
    }

    /* To 8-bit RGB the way OpenCV's IMREAD_COLOR does it: palette expanded, gray
     * replicated, 16-bit reduced to the high byte, alpha dropped (not composited). */
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png);
    /* palette_to_rgb also turns tRNS into an alpha channel: strip that too */
    if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)w * 3)
        png_error(png, "unexpected pixel format after conversion");

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
