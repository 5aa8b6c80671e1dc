/* jpegio.c - libjpeg-turbo and libpng plumbing shared by image.c and stream.c (jpegio.h).
 * Every library error, and every libjpeg warning about corrupt or truncated data, ends in a
 * status code through a longjmp, never in exit() or a half-decoded image. */
#include "common/jpegio.h"

#include <string.h>

#include <jerror.h>

#include "engine/util.h"

#define SN_JPEG_MAX_SCANS 1000      /* a progressive JPEG needs ~10; thousands = a DoS attempt */
#define SN_PNG_CHUNK_MAX  (8 << 20) /* largest ancillary PNG chunk (after decompression) */

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

int sn_jpeg_orientation(struct jpeg_decompress_struct *ci) {
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return exif_orientation(m->data + 6, m->data_length - 6);
    return 1;
}

/* ---- JPEG errors -------------------------------------------------------------------- */

void sn_jpeg_fail(struct jpeg_decompress_struct *ci, sn_image_status st) {
    sn_jpeg_err *e = (sn_jpeg_err *)ci->err;
    e->status = st;
    longjmp(e->jb, 1);
}

/* libjpeg's fatal errors: never exit(), jump back to the decoder with the message. */
static void error_exit_cb(j_common_ptr cinfo) {
    sn_jpeg_err *e = (sn_jpeg_err *)cinfo->err;
    cinfo->err->format_message(cinfo, e->msg);
    e->status = cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? SN_IMG_NOMEM
                /* libjpeg's own memory would pass the cap derived from the pixel budget */
                : cinfo->err->msg_code == JERR_NO_BACKING_STORE ? SN_IMG_TOO_LARGE
                                                                : SN_IMG_INVALID;
    longjmp(e->jb, 1);
}

/* Warnings (level -1) about corrupt or truncated data are errors here: libjpeg would go on
 * and fill the rest with gray, a silently wrong picture. Harmless ones are ignored, and
 * trace messages (level >= 0) are never printed. */
static void emit_cb(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    switch (cinfo->err->msg_code) {
    case JWRN_ADOBE_XFORM:     /* unknown Adobe transform: libjpeg guesses from components */
    case JWRN_JFIF_MAJOR:      /* JFIF version number */
    case JWRN_EXTRANEOUS_DATA: /* junk between markers, skipped without touching pixels */
    case JWRN_BOGUS_ICC:       /* ICC profile, not used */
        return;
    default:
        error_exit_cb(cinfo);
    }
}

static void output_cb(j_common_ptr cinfo) {
    (void)cinfo;
}

static void progress_cb(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    if (((j_decompress_ptr)cinfo)->input_scan_number > SN_JPEG_MAX_SCANS) {
        sn_jpeg_err *e = (sn_jpeg_err *)cinfo->err;
        snprintf(e->msg, sizeof e->msg, "more than %d scans", SN_JPEG_MAX_SCANS);
        sn_jpeg_fail((j_decompress_ptr)cinfo, SN_IMG_INVALID);
    }
}

void sn_jpeg_setup(struct jpeg_decompress_struct *ci, sn_jpeg_err *e, struct jpeg_progress_mgr *pr,
                   long long max_pixels, const uint8_t *data, size_t len) {
    ci->err = jpeg_std_error(&e->pub);
    e->pub.error_exit = error_exit_cb;
    e->pub.emit_message = emit_cb;
    e->pub.output_message = output_cb;
    e->status = SN_IMG_INVALID;
    jpeg_create_decompress(ci);
    /* libjpeg's own buffers (a progressive image keeps all its coefficients, 2 bytes per
     * sample): capped in proportion to the pixel budget; past it libjpeg errors out. */
    long long cap = 64LL << 20;
    if (max_pixels > 0)
        cap += 8 * max_pixels;
    else
        cap = 4LL << 30;
    ci->mem->max_memory_to_use = (long)cap;
    pr->progress_monitor = progress_cb;
    ci->progress = pr;
    jpeg_mem_src(ci, data, (unsigned long)len);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xffff);
}

void sn_jpeg_check_size(struct jpeg_decompress_struct *ci, long long max_pixels) {
    long long w = ci->image_width, h = ci->image_height;
    if (w > SN_DIM_MAX || h > SN_DIM_MAX || (max_pixels > 0 && w * h > max_pixels)) {
        sn_jpeg_err *e = (sn_jpeg_err *)ci->err;
        snprintf(e->msg, sizeof e->msg, "%lldx%lld is %lld pixels, the limit is %lld", w, h, w * h,
                 max_pixels > 0 ? max_pixels : (long long)SN_DIM_MAX * SN_DIM_MAX);
        sn_jpeg_fail(ci, SN_IMG_TOO_LARGE);
    }
}

int sn_jpeg_set_color(struct jpeg_decompress_struct *ci) {
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        ci->out_color_space = JCS_RGB;
        return 0;
    case JCS_CMYK:
    case JCS_YCCK:
        ci->out_color_space = JCS_CMYK;
        return 1;
    default: {
        sn_jpeg_err *e = (sn_jpeg_err *)ci->err;
        snprintf(e->msg, sizeof e->msg, "unsupported color space (%d components)",
                 ci->num_components);
        sn_jpeg_fail(ci, SN_IMG_INVALID);
        return 0;
    }
    }
}

/* Adobe CMYK/YCCK JPEGs store 255 - ink, so a channel's light is about C*K/255. The
 * rounding is OpenCV's (k - ((255 - c) * k >> 8)), so pixels match cv2.imread exactly; a
 * CMYK JPEG without the Adobe marker stores plain ink amounts and is inverted first. */
void sn_jpeg_cmyk_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted) {
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        unsigned k = inverted ? in[3] : 255u - in[3];
        for (int c = 0; c < 3; c++) {
            unsigned v = inverted ? in[c] : 255u - in[c];
            out[c] = (uint8_t)(k - ((255u - v) * k >> 8));
        }
    }
}

void sn_jpeg_errmsg(const sn_jpeg_err *e, char *err, size_t errlen) {
    if (e->status == SN_IMG_TOO_LARGE && e->msg[0] == '\0')
        sn_errf(err, errlen, "image too large");
    else if (e->status == SN_IMG_TOO_LARGE)
        sn_errf(err, errlen, "image too large: %s", e->msg);
    else if (e->status == SN_IMG_NOMEM)
        sn_errf(err, errlen, "out of memory decoding JPEG");
    else
        sn_errf(err, errlen, "invalid JPEG: %s", e->msg);
}

/* ---- PNG ---------------------------------------------------------------------------- */

static void png_read_cb(png_structp png, png_bytep out, size_t n) {
    sn_png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated file");
    memcpy(out, s->p + s->pos, n);
    s->pos += n;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
    sn_png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
    (void)png, (void)msg;
}

png_structp sn_png_reader(sn_png_src *src, png_infop *info) {
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, src, png_error_cb, png_warning_cb);
    *info = png ? png_create_info_struct(png) : NULL;
    if (!*info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return NULL;
    }
    png_set_user_limits(png, SN_DIM_MAX, SN_DIM_MAX);
    png_set_chunk_malloc_max(png, SN_PNG_CHUNK_MAX);
    png_set_chunk_cache_max(png, 128);
    png_set_read_fn(png, src, png_read_cb);
    return png;
}

void sn_png_to_rgb(png_structp png, png_infop info) {
    png_uint_32 w, h;
    int depth, ctype, ilace;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &ilace, NULL, NULL);
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
}
