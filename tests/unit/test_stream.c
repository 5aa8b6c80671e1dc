/* test_stream.c - decoding only the window (common/stream.c): the pixels handed over with
 * jpeg_crop_scanline + jpeg_skip_scanlines (and PNG's early stop) are bit-identical to a full
 * decode's, for JPEGs written here with libjpeg (odd sizes, 4:2:0/4:2:2/4:4:0/4:4:4, gray,
 * CMYK, progressive, arithmetic, restart markers, every EXIF orientation, every DCT scale M/8)
 * and for every image in ../shared/images; and the exact-mode tensor equals full decode +
 * preprocess. */
#include <criterion/criterion.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "common/image.h"
#include "common/input.h"
#include "common/jpegdc.h"
#include "common/preprocess.h"
#include "common/resize.h"
#include "common/stream.h"
#include "tests/unit/shared.h"

static char err[256];

/* ---- JPEGs made here ------------------------------------------------------------------- */

typedef struct {
    int w, h;
    int comps;  /* 1 gray, 3 YCbCr, 4 CMYK (Adobe) */
    int hs, vs; /* luma sampling factors (chroma 1x1) */
    int progressive, arith, restart, quality;
} jspec;

/* Huffman tables make_jpeg writes: 0 libjpeg's defaults; 1 optimized, with Cr coded with the
 * luma tables (not Cb's); 2 optimized. */
static int jpeg_tables;

/* Noise on top of gradients: every DCT coefficient and every chroma sample matters. */
static uint8_t *make_pixels(int w, int h, int comps, uint32_t seed) {
    uint8_t *p = malloc((size_t)w * h * comps);
    cr_assert_not_null(p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comps; c++) {
                seed = seed * 1664525u + 1013904223u;
                int v = (x * (3 + c) + y * (5 - c)) % 256 + (int)(seed >> 28) * 6 - 45;
                p[((size_t)y * w + x) * comps + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return p;
}

static uint8_t *make_jpeg(const jspec *s, size_t *len) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long n = 0;
    jpeg_mem_dest(&c, &out, &n);
    c.image_width = (JDIMENSION)s->w;
    c.image_height = (JDIMENSION)s->h;
    c.input_components = s->comps;
    c.in_color_space = s->comps == 1 ? JCS_GRAYSCALE : s->comps == 4 ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&c);
    if (s->comps == 4) jpeg_set_colorspace(&c, JCS_YCCK);
    jpeg_set_quality(&c, s->quality ? s->quality : 90, TRUE);
    if (s->comps >= 3) {
        c.comp_info[0].h_samp_factor = s->hs;
        c.comp_info[0].v_samp_factor = s->vs;
        for (int i = 1; i < c.num_components; i++)
            c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
        if (s->comps == 4)
            c.comp_info[3].h_samp_factor = s->hs, c.comp_info[3].v_samp_factor = s->vs;
    }
    if (jpeg_tables) c.optimize_coding = TRUE;
    if (jpeg_tables == 1 && s->comps == 3) c.comp_info[2].dc_tbl_no = c.comp_info[2].ac_tbl_no = 0;
    if (s->progressive) jpeg_simple_progression(&c);
    c.arith_code = s->arith ? TRUE : FALSE;
    if (s->restart) c.restart_in_rows = s->restart;
    uint8_t *px = make_pixels(s->w, s->h, s->comps, (uint32_t)(s->w * 31 + s->h));
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = px + (size_t)c.next_scanline * s->w * s->comps;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(px);
    *len = n;
    return out;
}

/* The same JPEG with an APP1 Exif segment carrying Orientation o, right after SOI. */
static uint8_t *with_orientation(const uint8_t *j, size_t n, int o, size_t *outlen) {
    static const uint8_t tiff_head[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0,
                                        3,   0,   0, 0,  1, 0, 0, 0, 0, 0, 0,    0,    0};
    uint8_t tiff[sizeof tiff_head];
    memcpy(tiff, tiff_head, sizeof tiff);
    tiff[19] = (uint8_t)o; /* value, big-endian SHORT in the first 2 bytes of the field */
    tiff[18] = 0;
    size_t seg = 2 + 6 + sizeof tiff;
    uint8_t *b = malloc(n + 2 + seg);
    memcpy(b, j, 2);
    b[2] = 0xff, b[3] = 0xe1, b[4] = (uint8_t)(seg >> 8), b[5] = (uint8_t)seg;
    memcpy(b + 6, "Exif\0\0", 6);
    memcpy(b + 12, tiff, sizeof tiff);
    memcpy(b + 12 + sizeof tiff, j + 2, n - 2);
    *outlen = n + 2 + seg;
    return b;
}

/* ---- a sink that records a rectangle ----------------------------------------------------- */

typedef struct {
    int x0, x1, y0, y1;
    uint8_t *pix;  /* (x1-x0) x (y1-y0) x 3 */
    uint8_t *seen; /* per pixel */
    int sparse;    /* reads only the rows (or, EXIF 5-8, the columns) sparse_line picks */
} rect;

static int all_rows(void *c, int y) {
    (void)c, (void)y;
    return 1;
}
/* Lines a sparse sink reads: gaps of 0 to 14 lines, like a downscale's filter taps, so the
 * decoder skips single rows, runs inside an iMCU row and whole iMCU rows. */
static int sparse_line(int v) {
    unsigned h = (unsigned)v * 2654435761u;
    return (h >> 28) < 3 || v % 13 == 0;
}
static int sparse_rows(void *c, int y) {
    (void)c;
    return sparse_line(y);
}
static void rect_row(void *c, int y, const uint8_t *px, ptrdiff_t xs) {
    rect *r = c;
    int w = r->x1 - r->x0;
    for (int x = 0; x < w; x++) {
        size_t i = (size_t)(y - r->y0) * w + x;
        memcpy(r->pix + i * 3, px + x * xs, 3);
        r->seen[i]++;
    }
}
static void rect_col(void *c, int x, const uint8_t *py, ptrdiff_t ys) {
    rect *r = c;
    int w = r->x1 - r->x0;
    for (int y = 0; y < r->y1 - r->y0; y++) {
        size_t i = (size_t)y * w + (x - r->x0);
        memcpy(r->pix + i * 3, py + y * ys, 3);
        r->seen[i]++;
    }
}

/* sn_stream_full_scale mode for the cropped decodes (0: the default), and whether the last
 * one used the full-scale sparse decoder. */
static int full_mode, used_full;

/* Decode rectangle [x0,x1) x [y0,y1) at scale m, cropped (no_skip 0) or not. */
static sn_image_status decode_rect(const uint8_t *b, size_t n, int m, int no_skip, rect *r) {
    sn_stream *s;
    sn_stream_info si;
    sn_image_status st = sn_stream_open(b, n, 0, &s, &si, err, sizeof err);
    if (st != SN_IMG_OK) return st;
    size_t np = (size_t)(r->x1 - r->x0) * (r->y1 - r->y0);
    r->pix = calloc(np, 3);
    r->seen = calloc(np, 1);
    if (no_skip) sn_stream_no_skip(s);
    sn_stream_full_scale(s, full_mode);
    int (*pick)(void *, int) = r->sparse ? sparse_rows : all_rows;
    sn_sink k = {r->x0, r->x1, r->y0, r->y1, r, pick, pick, rect_row, rect_col};
    st = sn_stream_run(s, m, &k, err, sizeof err);
    used_full = sn_stream_used_full_scale(s);
    sn_stream_close(s);
    int w = r->x1 - r->x0;
    if (st == SN_IMG_OK)
        for (size_t i = 0; i < np; i++) {
            /* EXIF 5..8: displayed columns are stored rows, what a sparse sink thins out */
            int x = r->x0 + (int)(i % (size_t)w), y = r->y0 + (int)(i / (size_t)w);
            int want = !r->sparse || sparse_line(si.orientation >= 5 ? x : y);
            cr_assert_eq(r->seen[i], want, "pixel (%d,%d) fed %d times, not %d", x, y, r->seen[i],
                         want);
        }
    return st;
}

static void rect_free(rect *r) {
    free(r->pix);
    free(r->seen);
}

/* The full decode at scale m (no crop, no skip); at m = 8 also checked against
 * sn_image_decode's whole image. */
static rect full_decode(const uint8_t *b, size_t n, int m, const char *what) {
    sn_stream *s;
    sn_stream_info si;
    cr_assert_eq(sn_stream_open(b, n, 0, &s, &si, err, sizeof err), SN_IMG_OK, "%s: %s", what, err);
    int w, h;
    sn_stream_scaled_size(s, m, &w, &h);
    sn_stream_close(s);
    rect full = {0, w, 0, h, NULL, NULL, 0};
    cr_assert_eq(decode_rect(b, n, m, 1, &full), SN_IMG_OK, "%s: %s", what, err);
    if (m == 8) {
        sn_image im;
        cr_assert_eq(sn_image_decode(b, n, 0, 0, &im, err, sizeof err), SN_IMG_OK);
        cr_assert(im.width == w && im.height == h);
        cr_assert_eq(memcmp(im.rgb, full.pix, (size_t)w * h * 3), 0,
                     "%s: streamed full decode differs from sn_image_decode", what);
        sn_image_free(&im);
    }
    return full;
}

static int windows_full, windows_8; /* windows at 8/8, and those the sparse decoder took */

/* The window [x0,x1) x [y0,y1) of a cropped decode at scale m equals the same window of the
 * full decode at that scale. */
static void check_window(const uint8_t *b, size_t n, int m, const rect *full, int x0, int x1,
                         int y0, int y1, int sparse, const char *what) {
    int w = full->x1, h = full->y1;
    x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > w ? w : x1, y1 = y1 > h ? h : y1;
    rect win = {x0, x1, y0, y1, NULL, NULL, sparse};
    cr_assert_eq(decode_rect(b, n, m, 0, &win), SN_IMG_OK, "%s m=%d: %s", what, m, err);
    windows_8 += m == 8, windows_full += m == 8 && used_full;
    for (int y = y0; y < y1; y++) {
        const uint8_t *a = win.pix + (size_t)(y - y0) * (x1 - x0) * 3;
        const uint8_t *c = full->pix + ((size_t)y * w + x0) * 3;
        const uint8_t *seen = win.seen + (size_t)(y - y0) * (x1 - x0);
        for (int x = 0; x < x1 - x0; x++) {
            /* a sparse sink reads the pixels under its lines and columns only (the full-scale
             * decoder leaves the others unset) */
            if (!seen[x] || (sparse && !(sparse_line(x0 + x) && sparse_line(y))) ||
                memcmp(a + x * 3, c + x * 3, 3) == 0)
                continue;
            cr_assert_fail("%s, scale %d/8, window [%d,%d)x[%d,%d) of %dx%d%s: pixel (%d,%d) is "
                           "%d,%d,%d, full decode %d,%d,%d",
                           what, m, x0, x1, y0, y1, w, h, sparse ? ", sparse lines" : "", x0 + x, y,
                           a[x * 3], a[x * 3 + 1], a[x * 3 + 2], c[x * 3], c[x * 3 + 1],
                           c[x * 3 + 2]);
        }
    }
    rect_free(&win);
}

/* Windows of several shapes and places, at every scale in the mask. */
static void check_many(const uint8_t *b, size_t n, const char *what, int scales) {
    for (int m = 8; m >= 1; m--) {
        if (!(scales & (1 << m))) continue;
        rect full = full_decode(b, n, m, what);
        int w = full.x1, h = full.y1;
        int boxes[][4] = {{w / 7, w - w / 5, h / 6, h - h / 9},
                          {w / 2, w / 2 + 1, h / 3, h / 3 + 2},
                          {1, w - 1, 1, h - 1},
                          {0, w / 3 + 5, h / 2, h},
                          {w / 3 + 17, w, 0, h / 4 + 3},
                          {(w * 3) / 8 - 1, (w * 5) / 8 + 3, (h * 3) / 8 - 1, (h * 5) / 8 + 2}};
        for (size_t i = 0; i < sizeof boxes / sizeof boxes[0]; i++) {
            int *bx = boxes[i];
            if (bx[1] <= bx[0] || bx[3] <= bx[2]) continue;
            check_window(b, n, m, &full, bx[0], bx[1], bx[2], bx[3], 0, what);
            /* the same window read by a sink that skips lines: the lines it reads are unchanged */
            check_window(b, n, m, &full, bx[0], bx[1], bx[2], bx[3], 1, what);
        }
        rect_free(&full);
    }
}

Test(stream, crop_is_identical_to_full_decode) {
    static const jspec specs[] = {
        {333, 257, 3, 2, 2, 0, 0, 0, 90}, /* 4:2:0, odd sizes */
        {333, 257, 3, 2, 1, 0, 0, 0, 90}, /* 4:2:2 */
        {333, 257, 3, 1, 2, 0, 0, 0, 90}, /* 4:4:0 */
        {333, 257, 3, 1, 1, 0, 0, 0, 90}, /* 4:4:4 */
        {301, 199, 1, 1, 1, 0, 0, 0, 85}, /* grayscale */
        {259, 171, 4, 1, 1, 0, 0, 0, 92}, /* Adobe CMYK (YCCK) */
        {259, 171, 4, 2, 2, 0, 0, 0, 92}, /* YCCK with 4:2:0 */
        {347, 263, 3, 2, 2, 1, 0, 0, 90}, /* progressive 4:2:0 */
        {347, 263, 3, 1, 1, 1, 0, 0, 90}, /* progressive 4:4:4 */
        {347, 263, 3, 2, 2, 0, 1, 0, 90}, /* arithmetic */
        {347, 263, 3, 2, 2, 1, 1, 0, 90}, /* progressive arithmetic */
        {347, 263, 3, 2, 2, 0, 0, 1, 90}, /* restart markers every MCU row */
        {347, 263, 3, 1, 1, 0, 0, 2, 75}, /* 4:4:4 with restart markers */
        {1001, 75, 3, 2, 2, 0, 0, 0, 80}, /* wide */
        {75, 1001, 3, 2, 1, 0, 0, 0, 80}, /* tall */
        {17, 9, 3, 2, 2, 0, 0, 0, 90},    /* smaller than two iMCUs */
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        size_t n;
        uint8_t *b = make_jpeg(&specs[i], &n);
        char what[128];
        snprintf(what, sizeof what, "JPEG %dx%d comps %d sampling %dx%d%s%s%s", specs[i].w,
                 specs[i].h, specs[i].comps, specs[i].hs, specs[i].vs,
                 specs[i].progressive ? " progressive" : "", specs[i].arith ? " arithmetic" : "",
                 specs[i].restart ? " restart" : "");
        check_many(b, n, what, 0x1fe); /* every scale 1/8 .. 8/8 */
        free(b);
    }
}

Test(stream, crop_with_every_orientation) {
    static const jspec specs[] = {{333, 257, 3, 2, 2, 0, 0, 0, 90},
                                  {259, 171, 4, 2, 1, 0, 0, 0, 90},
                                  {301, 199, 1, 1, 1, 1, 0, 0, 85}};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        size_t n;
        uint8_t *b = make_jpeg(&specs[i], &n);
        sn_image ref;
        cr_assert_eq(sn_image_decode(b, n, 0, 0, &ref, err, sizeof err), SN_IMG_OK);
        for (int o = 1; o <= 8; o++) {
            size_t on;
            uint8_t *ob = with_orientation(b, n, o, &on);
            sn_image im;
            cr_assert_eq(sn_image_decode(ob, on, 0, 0, &im, err, sizeof err), SN_IMG_OK);
            cr_assert_eq(im.orientation, o);
            sn_image_free(&im);
            char what[96];
            snprintf(what, sizeof what, "spec %zu orientation %d", i, o);
            check_many(ob, on, what, (1 << 8) | (1 << 5) | (1 << 3) | (1 << 1));
            free(ob);
        }
        sn_image_free(&ref);
        free(b);
    }
}

/* The full-scale decoder of exact mode (jpegdc.h), forced on for every window: libjpeg's pixels
 * bit for bit under every row and column a sink reads, for each way libjpeg-turbo upsamples
 * (fancy 2h1v, 1h2v, 2h2v; box for 4:1:1 and for chroma 2 samples wide), odd and tiny sizes,
 * restart markers, gray, 4 EXIF orientations. Files it does not take (progressive, arithmetic,
 * CMYK) go to libjpeg as before. */
Test(stream, full_scale_decoder_is_libjpeg_bit_for_bit) {
    static const struct {
        jspec s;
        int takes;
    } specs[] = {
        {{333, 257, 3, 2, 2, 0, 0, 0, 90}, 1}, {{333, 257, 3, 2, 1, 0, 0, 0, 90}, 1},
        {{333, 257, 3, 1, 2, 0, 0, 0, 90}, 1}, {{333, 257, 3, 1, 1, 0, 0, 0, 97}, 1},
        {{333, 257, 3, 4, 1, 0, 0, 0, 90}, 1}, {{301, 199, 1, 1, 1, 0, 0, 0, 85}, 1},
        {{347, 263, 3, 2, 2, 0, 0, 1, 90}, 1}, {{347, 263, 3, 1, 1, 0, 0, 2, 75}, 1},
        {{3, 21, 3, 2, 2, 0, 0, 0, 90}, 1},    {{5, 7, 3, 2, 1, 0, 0, 0, 90}, 1},
        {{17, 9, 3, 2, 2, 0, 0, 0, 100}, 1},   {{1001, 75, 3, 2, 2, 0, 0, 0, 80}, 1},
        {{334, 256, 3, 2, 2, 0, 0, 0, 90}, 1}, {{200, 150, 3, 1, 2, 0, 0, 0, 90}, 1},
        {{347, 263, 3, 2, 2, 1, 0, 0, 90}, 0}, {{347, 263, 3, 2, 2, 0, 1, 0, 90}, 0},
        {{259, 171, 4, 2, 2, 0, 0, 0, 92}, 0},
    };
    static const int orients[] = {1, 3, 6, 8};
    full_mode = 1;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        size_t n;
        uint8_t *b = make_jpeg(&specs[i].s, &n);
        for (size_t j = 0; j < sizeof orients / sizeof orients[0]; j++) {
            size_t on;
            uint8_t *ob = with_orientation(b, n, orients[j], &on);
            char what[128];
            snprintf(what, sizeof what,
                     "full scale: JPEG %dx%d comps %d sampling %dx%d%s%s%s%s o%d", specs[i].s.w,
                     specs[i].s.h, specs[i].s.comps, specs[i].s.hs, specs[i].s.vs,
                     specs[i].s.progressive ? " progressive" : "",
                     specs[i].s.arith ? " arithmetic" : "", specs[i].s.restart ? " restart" : "",
                     specs[i].s.quality == 100 ? " q100" : "", orients[j]);
            windows_8 = windows_full = 0;
            check_many(ob, on, what, 1 << 8);
            cr_assert_gt(windows_8, 0, "%s", what);
            cr_assert_eq(windows_full, specs[i].takes ? windows_8 : 0,
                         "%s: %d of %d windows through the full-scale decoder", what, windows_full,
                         windows_8);
            free(ob);
        }
        free(b);
    }
    full_mode = 0;
}

/* ---- the shared images ------------------------------------------------------------------- */

static const char *shared(void) {
    return sn_test_shared_dir();
}

static uint8_t *slurp(const char *name, size_t *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/images/%s", shared(), name);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)l);
    cr_assert_eq(fread(b, 1, (size_t)l, f), (size_t)l);
    fclose(f);
    *n = (size_t)l;
    return b;
}

static const char *photos[] = {
    "caffe_cat.jpg",
    "caffe_cat_gray.jpg",
    "edge_444_restart_caffe_cat.jpg",
    "edge_arithmetic_caffe_cat.jpg",
    "edge_cmyk_chelsea.jpg",
    "edge_exif6_coffee.jpg",
    "edge_progressive_caffe_cat.jpg",
    "edge_tiny_8x6_caffe_cat.jpg",
    "exif_Landscape_3.jpg",
    "exif_Landscape_6.jpg",
    "exif_Landscape_8.jpg",
    "exif_Portrait_6.jpg",
    "matplotlib_grace_hopper.jpg",
    "opencv_baboon.jpg",
    "opencv_butterfly.jpg",
    "opencv_fruits.jpg",
    "opencv_messi5.jpg",
    "opencv_orange.jpg",
    "opencv_squirrel_cls.jpg",
    "qengineering_cat.jpg",
    "qengineering_vulture.jpg",
    "skimage_rocket.jpg",
    "sklearn_china.jpg",
    "skimage_chelsea.png",
    "skimage_coffee.png",
    "skimage_camera.png",
    "edge_rgba_chelsea.png",
    "opencv_chicky_512.png",
    "skimage_motorcycle_left.png",
    "edge_huge_6000x4000_coffee.jpg",
};

/* Where the decoder puts a row: libjpeg-turbo's SIMD colour converters switch to non-temporal
 * stores for a row that starts on a 16-byte (SSE2) or 32-byte (AVX2) boundary, and then the
 * resampler reads every row back from memory (stream.c, SN_ROW_SKEW). A sink reading whole
 * rows gets them from the start of the decoder's row buffer, which must be off both. */
typedef struct {
    int rows, aligned;
} row_addrs;
static void note_row(void *c, int y, const uint8_t *px, ptrdiff_t xs) {
    row_addrs *r = c;
    (void)y, (void)xs;
    r->rows++;
    r->aligned += ((uintptr_t)px & 15) == 0;
}
static void note_col(void *c, int x, const uint8_t *py, ptrdiff_t ys) {
    note_row(c, x, py, ys);
}

Test(stream, decoded_rows_are_off_simd_store_alignment) {
    static const jspec specs[] = {{333, 257, 3, 2, 2, 0, 0, 0, 90}, /* 4:2:0 (merged upsampling) */
                                  {320, 240, 3, 1, 1, 0, 0, 0, 90}, /* 4:4:4, 16-byte rows */
                                  {301, 199, 1, 1, 1, 1, 0, 0, 85}};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        size_t n;
        uint8_t *b = make_jpeg(&specs[i], &n);
        for (int m = 8; m >= 1; m -= 3) {
            /* allocations of odd sizes in between move malloc's next block around */
            void *pad = malloc(16 * (size_t)m + 8);
            sn_stream *s;
            sn_stream_info si;
            cr_assert_eq(sn_stream_open(b, n, 0, &s, &si, err, sizeof err), SN_IMG_OK);
            int w, h;
            sn_stream_scaled_size(s, m, &w, &h);
            row_addrs r = {0, 0};
            sn_sink k = {0, w, 0, h, &r, all_rows, all_rows, note_row, note_col};
            cr_assert_eq(sn_stream_run(s, m, &k, err, sizeof err), SN_IMG_OK, "%s", err);
            sn_stream_close(s);
            free(pad);
            cr_assert_eq(r.rows, h, "spec %zu scale %d/8: %d of %d rows", i, m, r.rows, h);
            cr_assert_eq(r.aligned, 0, "spec %zu scale %d/8: %d rows start 16-byte aligned", i, m,
                         r.aligned);
        }
        free(b);
    }
}

Test(stream, shared_images_crop_is_identical) {
    sn_test_shared("images/caffe_cat.jpg");
    size_t n;
    int sparse_photos = 0;
    for (size_t i = 0; i < sizeof photos / sizeof photos[0]; i++) {
        uint8_t *b = slurp(photos[i], &n);
        cr_assert_not_null(b, "%s missing", photos[i]);
        int huge = strstr(photos[i], "huge") != NULL;
        check_many(b, n, photos[i], huge ? (1 << 1) : (1 << 8) | (1 << 5) | (1 << 4));
        if (!huge) { /* and the full-scale sparse decoder on every window of the real photo */
            full_mode = 1;
            windows_8 = windows_full = 0;
            check_many(b, n, photos[i], 1 << 8);
            full_mode = 0;
            cr_assert(windows_full == 0 || windows_full == windows_8, "%s: %d of %d windows",
                      photos[i], windows_full, windows_8);
            sparse_photos += windows_full > 0;
        }
        free(b);
    }
    cr_assert_geq(sparse_photos, 15, "only %d photos through the full-scale decoder",
                  sparse_photos);
}

/* The megvii preset (OpenCV, BGR, no normalisation) and a torchvision-style one (Pillow). */
static const sn_preprocess presets[2] = {
    {0, SN_RESIZE_OPENCV_BILINEAR, 256, 1, 224, {0, 0, 0}, {1, 1, 1}},
    {1,
     SN_RESIZE_PILLOW_BILINEAR,
     256,
     0,
     224,
     {123.675f, 116.28f, 103.53f},
     {58.395f, 57.12f, 57.375f}}};

/* By default a big photo in exact mode goes to the full-scale sparse decoder (it reads 0.8%
 * of a 6000x4000 image's pixels), and the tensor is that of libjpeg's whole decode resized:
 * bit for bit, both presets, and with the EXIF-rotated photo too. */
Test(stream, exact_mode_uses_the_sparse_decoder_on_a_big_photo) {
    sn_test_shared("images/edge_huge_6000x4000_coffee.jpg");
    size_t n;
    uint8_t *b = slurp("edge_huge_6000x4000_coffee.jpg", &n);
    cr_assert_not_null(b);
    float *a = malloc(3 * 224 * 224 * sizeof(float)), *c = malloc(3 * 224 * 224 * sizeof(float));
    for (int o = 1; o <= 6; o += 5) {
        size_t on;
        uint8_t *ob = with_orientation(b, n, o, &on);
        sn_image im;
        cr_assert_eq(sn_image_decode(ob, on, 0, 0, &im, err, sizeof err), SN_IMG_OK, "%s", err);
        for (int p = 0; p < 2; p++) {
            sn_input_opts opt = {.max_pixels = 0, .mode = SN_PRE_EXACT};
            sn_input_info info;
            cr_assert_eq(sn_input_from_bytes(&presets[p], &opt, ob, on, a, &info, err, sizeof err),
                         SN_IMG_OK, "%s", err);
            /* OpenCV reads 2 taps per output; Pillow's filter widens with the downscale and
             * reads most of the window: there libjpeg is faster and keeps it */
            cr_assert_eq(info.own_decoder, p == 0 ? 2 : 0, "orientation %d preset %d", o, p);
            cr_assert_eq(
                sn_preprocess_image(&presets[p], im.rgb, im.width, im.height, c, err, sizeof err),
                0);
            cr_assert_eq(memcmp(a, c, 3 * 224 * 224 * sizeof(float)), 0,
                         "orientation %d preset %d: tensors differ", o, p);
        }
        sn_image_free(&im);
        free(ob);
    }
    free(a);
    free(c);
    free(b);
}

/* The full-scale decoder's IDCT (jpegdc.h): the AVX2 twin gives the scalar one's bytes and
 * status on random blocks (sparse, dense, near and past the bounds where it declines) at
 * random sets of rows. */
Test(stream, full_scale_idct_avx2_is_scalar) {
    if (!sn_rs_have_avx2()) cr_skip_test("SKIP: no AVX2 on this CPU");
    sn_jdc_idct t;
    sn_jdc_idct_init(&t);
    uint32_t seed = 20261205;
    int declined = 0, taken = 0;
    for (int it = 0; it < 40000; it++) {
        int16_t dq[64] = {0};
        int kind = it % 4, lim = kind == 0 ? 64 : kind == 1 ? 1024 : kind == 2 ? 8191 : 2048;
        int count = kind == 0 ? 3 : kind == 3 ? 1 : 64;
        for (int i = 0; i < count; i++) {
            seed = seed * 1664525u + 1013904223u;
            int pos = kind == 3 ? 0 : (int)(seed >> 26);
            seed = seed * 1664525u + 1013904223u;
            dq[pos] = (int16_t)((int)(seed >> 8) % (2 * lim + 1) - lim);
        }
        seed = seed * 1664525u + 1013904223u;
        unsigned rows = seed >> 24;
        uint8_t x[8][8], y[8][8];
        memset(x, 0xA5, sizeof x), memset(y, 0xA5, sizeof y);
        int rx = sn_jdc_idct_rows_scalar(&t, dq, rows, x),
            ry = sn_jdc_idct_rows_avx2(&t, dq, rows, y);
        cr_assert_eq(rx, ry, "block %d: status %d vs %d", it, rx, ry);
        if (rx < 0) {
            declined++;
            continue;
        }
        taken++;
        for (int r = 0; r < 8; r++)
            if (rows >> r & 1)
                cr_assert_eq(memcmp(x[r], y[r], 8), 0, "block %d row %d differs", it, r);
    }
    cr_assert(declined > 100 && taken > 10000, "declined %d, taken %d", declined, taken);
}

/* The exact-mode tensor (window decode + plan) equals the whole image decoded and then
 * preprocessed, for both presets, bit for bit. */
Test(stream, exact_tensor_equals_full_decode_then_preprocess) {
    static const jspec specs[] = {{333, 257, 3, 2, 2, 0, 0, 0, 90},
                                  {259, 371, 4, 1, 1, 0, 0, 0, 90},
                                  {301, 299, 1, 1, 1, 1, 0, 0, 85},
                                  {517, 301, 3, 2, 1, 0, 1, 1, 90},
                                  /* over 3x the output: most rows skipped, whole iMCU rows too */
                                  {1203, 917, 3, 2, 2, 0, 0, 0, 90},
                                  {991, 1187, 3, 2, 1, 1, 0, 0, 90}};
    float *a = malloc(3 * 224 * 224 * sizeof(float)), *c = malloc(3 * 224 * 224 * sizeof(float));
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        size_t n;
        uint8_t *b = make_jpeg(&specs[i], &n);
        for (int o = 1; o <= 8; o++) {
            size_t on;
            uint8_t *ob = with_orientation(b, n, o, &on);
            sn_image im;
            cr_assert_eq(sn_image_decode(ob, on, 0, 0, &im, err, sizeof err), SN_IMG_OK);
            for (int p = 0; p < 2; p++) {
                sn_input_opts opt = {.max_pixels = 0, .mode = SN_PRE_EXACT};
                sn_input_info info;
                cr_assert_eq(
                    sn_input_from_bytes(&presets[p], &opt, ob, on, a, &info, err, sizeof err),
                    SN_IMG_OK, "%s", err);
                cr_assert_eq(info.scale_num, 8);
                cr_assert_eq(sn_preprocess_image(&presets[p], im.rgb, im.width, im.height, c, err,
                                                 sizeof err),
                             0);
                cr_assert_eq(memcmp(a, c, 3 * 224 * 224 * sizeof(float)), 0,
                             "spec %zu orientation %d preset %d: tensors differ", i, o, p);
            }
            sn_image_free(&im);
            free(ob);
        }
        free(b);
    }
    free(a);
    free(c);
}

/* ---- the skipping 1/8 decoder (common/jpegdc.c) ------------------------------------------- */

/* The whole image at scale 1/8 through a sink reading every row, with or without the
 * skipping decoder; *used says whether it ran. NULL with the status on failure. */
static uint8_t *decode_eighth(const uint8_t *b, size_t n, int no_dc, int *used,
                              sn_image_status *st) {
    sn_stream *s;
    sn_stream_info si;
    *used = 0;
    if ((*st = sn_stream_open(b, n, 0, &s, &si, err, sizeof err)) != SN_IMG_OK) return NULL;
    if (no_dc) sn_stream_no_dc(s);
    int w, h;
    sn_stream_scaled_size(s, 1, &w, &h);
    rect r = {0, w, 0, h, NULL, NULL, 0};
    size_t np = (size_t)w * h;
    r.pix = calloc(np, 3);
    r.seen = calloc(np, 1);
    sn_sink k = {0, w, 0, h, &r, all_rows, all_rows, rect_row, rect_col};
    *st = sn_stream_run(s, 1, &k, err, sizeof err);
    *used = sn_stream_used_dc(s);
    sn_stream_close(s);
    free(r.seen);
    if (*st != SN_IMG_OK) {
        free(r.pix);
        return NULL;
    }
    return r.pix;
}

/* What the skipping decoder must give, from libjpeg's own entropy decoding: every block's DC
 * coefficient (jpeg_read_coefficients) as (DC * q + 4) >> 3 + 128 clamped, each component
 * box-upsampled to the 1/8 grid, YCbCr -> RGB in libjpeg's fixed point (jdcolor.c). */
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
} ref_err;
static void ref_exit(j_common_ptr c) {
    longjmp(((ref_err *)c->err)->jb, 1);
}
static uint8_t *dc_reference(const uint8_t *b, size_t n) {
    struct jpeg_decompress_struct ci;
    ref_err e;
    ci.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = ref_exit;
    uint8_t *out = NULL;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&ci);
        free(out);
        return NULL;
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, b, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    jvirt_barray_ptr *coefs = jpeg_read_coefficients(&ci);
    int ow = (int)(ci.image_width + 7) / 8, oh = (int)(ci.image_height + 7) / 8;
    int nc = ci.num_components;
    out = malloc((size_t)ow * oh * 3);
    uint8_t *plane[3];
    int pw[3];
    for (int c = 0; c < nc; c++) {
        jpeg_component_info *cp = &ci.comp_info[c];
        pw[c] = (int)cp->width_in_blocks;
        plane[c] = malloc((size_t)cp->width_in_blocks * cp->height_in_blocks);
        for (JDIMENSION by = 0; by < cp->height_in_blocks; by++) {
            JBLOCKARRAY row = (*ci.mem->access_virt_barray)((j_common_ptr)&ci, coefs[c], by, 1, 0);
            for (JDIMENSION bx = 0; bx < cp->width_in_blocks; bx++) {
                int v = ((int)row[0][bx][0] * (int16_t)cp->quant_table->quantval[0] + 4) >> 3;
                v += 128;
                plane[c][by * cp->width_in_blocks + bx] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            int s[3];
            for (int c = 0; c < nc; c++) {
                jpeg_component_info *cp = &ci.comp_info[c];
                int px = nc == 1 ? x : x * cp->h_samp_factor / ci.max_h_samp_factor;
                int py = nc == 1 ? y : y * cp->v_samp_factor / ci.max_v_samp_factor;
                s[c] = plane[c][py * pw[c] + px];
            }
            uint8_t *o = out + ((size_t)y * ow + x) * 3;
            if (nc == 1) {
                o[0] = o[1] = o[2] = (uint8_t)s[0];
            } else if (ci.jpeg_color_space == JCS_RGB) {
                o[0] = (uint8_t)s[0], o[1] = (uint8_t)s[1], o[2] = (uint8_t)s[2];
            } else {
                long cb = s[1] - 128, cr = s[2] - 128;
                long r = s[0] + ((91881L * cr + 32768) >> 16);
                long g = s[0] + ((-22554L * cb + 32768 - 46802L * cr) >> 16);
                long bl = s[0] + ((116130L * cb + 32768) >> 16);
                o[0] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
                o[1] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
                o[2] = (uint8_t)(bl < 0 ? 0 : bl > 255 ? 255 : bl);
            }
        }
    for (int c = 0; c < nc; c++) free(plane[c]);
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return out;
}

static int dc_same_as_libjpeg(const uint8_t *b, size_t n) {
    sn_stream *s;
    sn_stream_info si;
    cr_assert_eq(sn_stream_open(b, n, 0, &s, &si, err, sizeof err), SN_IMG_OK);
    int same = sn_stream_dc_same_as_libjpeg(s);
    sn_stream_close(s);
    return same;
}

static void cmp_pixels(const uint8_t *a, const uint8_t *ref, const uint8_t *b, size_t n,
                       const char *against, const char *what) {
    sn_stream *s;
    sn_stream_info si;
    cr_assert_eq(sn_stream_open(b, n, 0, &s, &si, err, sizeof err), SN_IMG_OK);
    int w, h;
    sn_stream_scaled_size(s, 1, &w, &h);
    sn_stream_close(s);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        if (a[i] != ref[i])
            cr_assert_fail("%s: 1/8 pixel (%zu,%zu) channel %zu is %d, %s %d", what,
                           i / 3 % (size_t)w, i / 3 / (size_t)w, i % 3, a[i], against, ref[i]);
}

/* Decode at 1/8 with and without the skipping decoder: the same status, and where it did
 * the work its pixels are libjpeg-turbo's own 1/8 decode where that takes every component at
 * its DC, and libjpeg's DC terms (dc_reference) everywhere. Returns the status; *used:
 * whether the skipping decoder ran. */
static sn_image_status compare_eighth(const uint8_t *b, size_t n, const char *what, int *used) {
    int used_ref;
    sn_image_status st, st_ref;
    uint8_t *a = decode_eighth(b, n, 0, used, &st);
    uint8_t *ref = decode_eighth(b, n, 1, &used_ref, &st_ref);
    cr_assert_eq(st, st_ref, "%s: status %d, libjpeg %d (%s)", what, st, st_ref, err);
    cr_assert_eq(used_ref, 0);
    if (st == SN_IMG_OK && (!*used || dc_same_as_libjpeg(b, n)))
        cmp_pixels(a, ref, b, n, "libjpeg's 1/8 decode", what);
    if (st == SN_IMG_OK && *used) {
        uint8_t *dc = dc_reference(b, n);
        cr_assert_not_null(dc, "%s", what);
        cmp_pixels(a, dc, b, n, "libjpeg's DC terms", what);
        free(dc);
    }
    free(a);
    free(ref);
    return st;
}

static void check_dc_same(const uint8_t *b, size_t n, int expect_used, const char *what) {
    int used;
    compare_eighth(b, n, what, &used);
    cr_assert_eq(used, expect_used, "%s: skipping decoder used %d, expected %d", what, used,
                 expect_used);
}

Test(stream, eighth_scale_decoder_is_libjpeg_bit_for_bit) {
    static const struct {
        jspec s;
        int used, same;
    } cases[] = {
        {{333, 257, 3, 2, 1, 0, 0, 0, 90}, 1, 1},  /* 4:2:2: box upsampling, as libjpeg */
        {{333, 257, 3, 1, 2, 0, 0, 0, 90}, 1, 1},  /* 4:4:0 */
        {{333, 257, 3, 1, 1, 0, 0, 0, 100}, 1, 1}, /* 4:4:4, every AC term coded */
        {{333, 257, 3, 4, 1, 0, 0, 0, 90}, 1, 1},  /* 4:1:1 */
        {{301, 199, 1, 1, 1, 0, 0, 0, 85}, 1, 1},  /* gray */
        {{347, 263, 3, 1, 1, 0, 0, 3, 30}, 1, 1},  /* restart markers, low quality */
        {{75, 1001, 3, 2, 1, 0, 0, 0, 97}, 1, 1},  /* tall */
        {{7, 5, 1, 1, 1, 0, 0, 0, 90}, 1, 1},      /* smaller than a block */
        {{333, 257, 3, 2, 2, 0, 0, 0, 90}, 1, 0},  /* 4:2:0: libjpeg's chroma is 2x2 IDCTs */
        {{333, 257, 3, 4, 2, 0, 0, 0, 90}, 1, 0},  /* 4:2:0 sideways */
        {{347, 263, 3, 2, 2, 0, 0, 1, 90}, 1, 0},  /* 4:2:0, restart every MCU row */
        {{1001, 75, 3, 2, 2, 0, 0, 0, 50}, 1, 0},  /* wide */
        {{17, 9, 3, 2, 2, 0, 0, 0, 90}, 1, 0},     /* one MCU and a bit */
        {{347, 263, 3, 2, 2, 1, 0, 0, 90}, 0, 1},  /* progressive: libjpeg */
        {{347, 263, 3, 2, 2, 0, 1, 0, 90}, 0, 1},  /* arithmetic: libjpeg */
        {{259, 171, 4, 2, 2, 0, 0, 0, 92}, 0, 1},  /* YCCK: libjpeg */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *b = make_jpeg(&cases[i].s, &n);
        char what[96];
        snprintf(what, sizeof what, "case %zu (%dx%d, %d comps, %dx%d)", i, cases[i].s.w,
                 cases[i].s.h, cases[i].s.comps, cases[i].s.hs, cases[i].s.vs);
        cr_assert_eq(dc_same_as_libjpeg(b, n), cases[i].same, "%s", what);
        check_dc_same(b, n, cases[i].used, what);
        free(b);
    }
}

/* Other Huffman table layouts: the 1/8 decoder keeps one copy per table pair, so Cr on the luma
 * tables must find them; optimized tables have long codes and codes whose extra bits pass the
 * 12-bit window. */
Test(stream, eighth_scale_decoder_with_other_huffman_tables) {
    static const jspec specs[] = {
        {333, 257, 3, 2, 1, 0, 0, 0, 90},
        {333, 257, 3, 1, 1, 0, 0, 0, 98},
        {347, 263, 3, 2, 2, 0, 0, 2, 90}, /* 4:2:0 (chroma differs from libjpeg's 2x2) */
        {301, 199, 1, 1, 1, 0, 0, 0, 95}};
    for (jpeg_tables = 1; jpeg_tables <= 2; jpeg_tables++)
        for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
            size_t n;
            uint8_t *b = make_jpeg(&specs[i], &n);
            char what[96];
            snprintf(what, sizeof what, "tables %d, spec %zu", jpeg_tables, i);
            check_dc_same(b, n, 1, what);
            free(b);
        }
    jpeg_tables = 0;
}

/* 4:2:0 photos: luma is libjpeg's exactly, chroma a 16x16 average instead of an 8x8 one; the
 * RGB difference to libjpeg's 1/8 decode stays small on a real photo. */
Test(stream, eighth_scale_decoder_on_a_420_photo) {
    sn_test_shared("images/caffe_cat.jpg");
    size_t n;
    uint8_t *b = slurp("edge_huge_6000x4000_coffee.jpg", &n);
    cr_assert_not_null(b);
    check_dc_same(b, n, 1, "edge_huge_6000x4000_coffee.jpg");
    int used, used_ref;
    sn_image_status st, st_ref;
    uint8_t *a = decode_eighth(b, n, 0, &used, &st);
    uint8_t *ref = decode_eighth(b, n, 1, &used_ref, &st_ref);
    cr_assert(st == SN_IMG_OK && st_ref == SN_IMG_OK && used);
    size_t np = (size_t)750 * 500 * 3;
    double sum = 0;
    for (size_t i = 0; i < np; i++) sum += abs((int)a[i] - (int)ref[i]);
    cr_assert_lt(sum / np, 3.0, "mean |RGB - libjpeg's| %.2f", sum / np);
    free(a);
    free(ref);
    free(b);
}

/* Corrupt and cut-short files: the skipping decoder declines whatever libjpeg would refuse
 * (libjpeg then names the fault), and what it accepts it decodes as libjpeg does. */
/* Where a JPEG's entropy-coded data starts: after its SOS segment (0: none). */
static size_t scan_start(const uint8_t *b, size_t n) {
    for (size_t j = 2; j + 3 < n; j++)
        if (b[j] == 0xFF && b[j + 1] == 0xDA) return j + 2 + ((size_t)b[j + 2] << 8 | b[j + 3]);
    return 0;
}

/* Damage kind k (0 a flipped bit, 1 a byte, 2 a marker, 3 cut short, 4 a fill byte before
 * the first stuffed FF 00 from there on) at a random place of b's entropy data (from sos), into
 * c (n + 1 bytes); the new length (n when kind 4 found no FF 00). */
static size_t damage(const uint8_t *b, size_t n, size_t sos, int k, uint32_t *seed, uint8_t *c,
                     size_t *at_out) {
    memcpy(c, b, n);
    size_t len = n;
    *seed = *seed * 1664525u + 1013904223u;
    size_t at = sos + (*seed >> 8) % (n - sos);
    switch (k) {
    case 0:
        c[at] ^= (uint8_t)(1u << (*seed & 7));
        break;
    case 1:
        c[at] = (uint8_t)(*seed >> 3);
        break;
    case 2:
        c[at] = 0xFF, c[at + 1 < n ? at + 1 : at] = (uint8_t)(0xD0 + (*seed & 15));
        break;
    case 3:
        len = at;
        break;
    default:
        for (size_t j = at; j + 1 < n; j++)
            if (b[j] == 0xFF && b[j + 1] == 0) {
                memcpy(c + j + 1, b + j, n - j);
                len = n + 1;
                break;
            }
    }
    *at_out = at;
    return len;
}

/* Each spec's JPEG damaged `tries` times (kinds 0 .. kinds-1 of damage(), in turn), decoded by
 * cmp (our decoder against libjpeg); counts of files it accepted and refused. A fill byte in
 * the data (kind 4) always goes to libjpeg. */
typedef sn_image_status (*cmp_fn)(const uint8_t *, size_t, const char *, int *);
static void damaged(const jspec *specs, size_t nspecs, int kinds, int tries, uint32_t seed,
                    cmp_fn cmp, int *accepted, int *refused, int *fills) {
    for (size_t i = 0; i < nspecs; i++) {
        size_t n;
        uint8_t *b = make_jpeg(&specs[i], &n);
        size_t sos = scan_start(b, n);
        cr_assert(sos > 0 && sos < n);
        uint8_t *c = malloc(n + 1);
        for (int t = 0; t < tries; t++) {
            size_t at, len = damage(b, n, sos, t % kinds, &seed, c, &at);
            char what[96];
            snprintf(what, sizeof what, "spec %zu damage %d at byte %zu of %zu", i, t % kinds, at,
                     n);
            int used = 0;
            if (cmp(c, len, what, &used) == SN_IMG_OK)
                *accepted += used;
            else
                ++*refused;
            *fills += len == n + 1;
            if (len == n + 1) cr_assert_eq(used, 0, "%s: a fill byte must go to libjpeg", what);
        }
        free(c);
        free(b);
    }
}

Test(stream, eighth_scale_decoder_on_damaged_files) {
    static const jspec specs[] = {{333, 257, 3, 2, 2, 0, 0, 0, 90},
                                  {347, 263, 3, 1, 1, 0, 0, 1, 75},
                                  {333, 257, 3, 2, 1, 0, 0, 0, 90},
                                  {301, 199, 1, 1, 1, 0, 0, 0, 85}};
    int accepted = 0, refused = 0, fills = 0;
    damaged(specs, 4, 5, 60, 12345, compare_eighth, &accepted, &refused, &fills);
    /* both kinds happened: a flipped bit often still decodes */
    cr_assert(accepted > 0 && refused > 0 && fills > 0, "accepted %d, refused %d, fills %d",
              accepted, refused, fills);
}

/* The full-scale decoder on the same kinds of damage, and on a fill byte before a stuffed FF
 * (FF FF 00), where libjpeg-turbo's own output is not the data's: libjpeg's status always, and
 * its pixels under every row and column a sparse sink reads where it accepts. */
static sn_image_status compare_full(const uint8_t *b, size_t n, const char *what, int *used) {
    sn_stream *s;
    sn_stream_info si;
    sn_image_status st = sn_stream_open(b, n, 0, &s, &si, err, sizeof err);
    if (st != SN_IMG_OK) return st;
    int w, h;
    sn_stream_scaled_size(s, 8, &w, &h);
    sn_stream_close(s);
    rect ref = {0, w, 0, h, NULL, NULL, 0}, ours = {0, w, 0, h, NULL, NULL, 1};
    sn_image_status sr = decode_rect(b, n, 8, 1, &ref);
    full_mode = 1;
    sn_image_status so = decode_rect(b, n, 8, 0, &ours);
    full_mode = 0;
    *used = used_full;
    cr_assert_eq(so, sr, "%s: status %d, libjpeg's %d", what, so, sr);
    if (so == SN_IMG_OK)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (sparse_line(x) && sparse_line(y))
                    cr_assert_eq(memcmp(ours.pix + ((size_t)y * w + x) * 3,
                                        ref.pix + ((size_t)y * w + x) * 3, 3),
                                 0, "%s: pixel (%d,%d) differs", what, x, y);
    rect_free(&ref);
    rect_free(&ours);
    return so;
}

Test(stream, full_scale_decoder_on_damaged_files) {
    static const jspec specs[] = {{333, 257, 3, 2, 2, 0, 0, 0, 90},
                                  {347, 263, 3, 1, 1, 0, 0, 1, 75},
                                  {301, 199, 1, 1, 1, 0, 0, 0, 85}};
    int accepted = 0, refused = 0, fills = 0;
    damaged(specs, 3, 5, 50, 54321, compare_full, &accepted, &refused, &fills);
    cr_assert(accepted > 0 && refused > 0 && fills > 0, "accepted %d, refused %d, fills %d",
              accepted, refused, fills);
}

/* A Huffman table with more codes of a length than the length allows (libjpeg: "Bogus Huffman
 * table definition"): both of our decoders refuse it before filling their lookup tables (the
 * fuzzer found the 1/8 one writing past its table first; ASan/UBSan builds would catch it),
 * and the status is libjpeg's. */
Test(stream, over_subscribed_huffman_table) {
    jspec sp = {96, 64, 3, 2, 2, 0, 0, 0, 90};
    size_t n;
    uint8_t *b = make_jpeg(&sp, &n);
    int patched = 0;
    for (size_t j = 2; j + 21 < n && !patched; j++) {
        if (b[j] != 0xFF || b[j + 1] != 0xC4) continue;
        uint8_t *bits = b + j + 5; /* after FF C4, length, Tc/Th: counts of lengths 1..16 */
        for (int l = 15; l >= 2; l--)
            if (bits[l] >= 3 && bits[0] == 0) { /* 3 codes moved to length 1, total unchanged */
                bits[l] -= 3, bits[0] += 3, patched = 1;
                break;
            }
    }
    cr_assert(patched);
    for (int m = 1; m <= 8; m += 7) {
        rect ref = {0, 1, 0, 1, NULL, NULL, 0}, ours = {0, 1, 0, 1, NULL, NULL, 0};
        sn_image_status sr = decode_rect(b, n, m, 1, &ref);
        full_mode = 1;
        sn_image_status so = decode_rect(b, n, m, 0, &ours);
        full_mode = 0;
        cr_assert_neq(sr, SN_IMG_OK, "libjpeg took the bogus table");
        cr_assert_eq(so, sr, "scale %d/8: status %d, libjpeg's %d", m, so, sr);
        rect_free(&ref);
        rect_free(&ours);
    }
    free(b);
}
