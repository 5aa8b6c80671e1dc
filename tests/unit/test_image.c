/* test_image.c - image decoding (server/image.c): formats, statuses, EXIF orientation, the
 * pixel budget, DCT downscale, and PNG variants written here with libpng. */
#include <criterion/criterion.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/image.h"
#include "tests/unit/shared.h"

static char err[256];

/* ../shared/images, or the test is skipped. */
static const char *images_dir(void) {
    static char dir[1100];
    snprintf(dir, sizeof dir, "%s/images", sn_test_shared("images/caffe_cat.jpg"));
    return dir;
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return sn_test_read(path, len);
}

static sn_image_status decode_file(const char *dir, const char *name, long long budget,
                                   int min_short, sn_image *im) {
    size_t n;
    uint8_t *b = slurp(dir, name, &n);
    sn_image_status st = sn_image_decode(b, n, budget, min_short, im, err, sizeof err);
    free(b);
    return st;
}

static sn_image must_decode(const char *dir, const char *name) {
    sn_image im;
    sn_image_status st = decode_file(dir, name, 0, 0, &im);
    cr_assert_eq(st, SN_IMG_OK, "%s: %s (%s)", name, sn_image_status_name(st), err);
    cr_assert_not_null(im.rgb);
    return im;
}

static double mean_abs_diff(const sn_image *a, const sn_image *b) {
    cr_assert_eq(a->width, b->width);
    cr_assert_eq(a->height, b->height);
    size_t n = (size_t)a->width * a->height * 3;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += abs((int)a->rgb[i] - (int)b->rgb[i]);
    return s / (double)n;
}

/* ---- statuses without any file --------------------------------------------------------- */

Test(image, sniff_magic_bytes) {
    cr_assert_eq(sn_image_sniff((const uint8_t *)"\xff\xd8\xff\xe0", 4), SN_FMT_JPEG);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"\x89PNG\r\n\x1a\n", 8), SN_FMT_PNG);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"\x89PNG\r\n\x1a\x0b", 8), SN_FMT_UNKNOWN);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"GIF89a", 6), SN_FMT_GIF);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"GIF87a", 6), SN_FMT_GIF);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"BM\x36\0\0\0", 6), SN_FMT_OTHER_IMAGE);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"RIFF\0\0\0\0WEBPVP8 ", 16), SN_FMT_OTHER_IMAGE);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"RIFF\0\0\0\0WAVEfmt ", 16), SN_FMT_UNKNOWN);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"II*\0", 4), SN_FMT_OTHER_IMAGE);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"MM\0*", 4), SN_FMT_OTHER_IMAGE);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"\xff\xd8", 2), SN_FMT_UNKNOWN);
    cr_assert_eq(sn_image_sniff((const uint8_t *)"hello", 5), SN_FMT_UNKNOWN);
    cr_assert_eq(sn_image_sniff(NULL, 0), SN_FMT_UNKNOWN);
}

static sn_image_status decode_bytes(const void *b, size_t n) {
    sn_image im;
    sn_image_status st = sn_image_decode(b, n, 40000000, 0, &im, err, sizeof err);
    if (st != SN_IMG_OK) {
        cr_assert_null(im.rgb);
        cr_assert_neq(err[0], '\0', "a failure must explain itself");
    }
    sn_image_free(&im);
    return st;
}

Test(image, statuses_for_non_images) {
    cr_assert_eq(decode_bytes("", 0), SN_IMG_EMPTY);
    cr_assert_eq(decode_bytes(NULL, 0), SN_IMG_EMPTY);
    const char *text = "{\"this\": \"is json, not an image\"}";
    cr_assert_eq(decode_bytes(text, strlen(text)), SN_IMG_UNSUPPORTED);
    const char gif[] = "GIF89a\x01\0\x01\0\x80\0\0\0\0\0\xff\xff\xff!\xf9\x04\x01\0\0\0\0,"
                       "\0\0\0\0\x01\0\x01\0\0\x02\x02\x44\x01\0;";
    cr_assert_eq(decode_bytes(gif, sizeof gif - 1), SN_IMG_UNSUPPORTED);
    cr_assert_eq(decode_bytes("BM\x36\0\0\0\0\0\0\0", 10), SN_IMG_UNSUPPORTED);

    uint8_t rnd[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 16);
    rnd[0] = 0x00; /* make sure it starts with no magic */
    cr_assert_eq(decode_bytes(rnd, sizeof rnd), SN_IMG_UNSUPPORTED);

    /* Right magic, nothing after it: corrupt, not unsupported. */
    cr_assert_eq(decode_bytes("\xff\xd8\xff", 3), SN_IMG_INVALID);
    cr_assert_eq(decode_bytes("\xff\xd8\xff\xe0\0\x10JFIF", 10), SN_IMG_INVALID);
    cr_assert_eq(decode_bytes("\x89PNG\r\n\x1a\n", 8), SN_IMG_INVALID);
    /* Random bytes behind the magic numbers. */
    memcpy(rnd, "\xff\xd8\xff", 3);
    cr_assert_eq(decode_bytes(rnd, sizeof rnd), SN_IMG_INVALID);
    memcpy(rnd, "\x89PNG\r\n\x1a\n", 8);
    cr_assert_eq(decode_bytes(rnd, sizeof rnd), SN_IMG_INVALID);
}

Test(image, status_names) {
    cr_assert_str_eq(sn_image_status_name(SN_IMG_OK), "ok");
    cr_assert_str_eq(sn_image_status_name(SN_IMG_TOO_LARGE), "too_large");
    cr_assert_str_eq(sn_image_status_name(SN_IMG_INVALID), "invalid");
}

/* ---- PNG variants written with libpng -------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep d, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->p = realloc(m->p, m->cap);
        cr_assert_not_null(m->p);
    }
    memcpy(m->p + m->len, d, n);
    m->len += n;
}

static void mem_flush(png_structp png) {
    (void)png;
}

/* Sample c of pixel (x, y) at the given bit depth, as stored in the test PNGs. */
static unsigned sample(int x, int y, int c, int depth) {
    unsigned v = (unsigned)(x * 37 + y * 11 + c * 101 + x * y);
    return depth == 16 ? (v * 257u + 13u) & 0xffff : v & ((1u << depth) - 1);
}

static const png_color palette[4] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 20, 30}};

static membuf make_png(int ctype, int depth, int interlace, int w, int h) {
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    cr_assert(png && info);
    if (setjmp(png_jmpbuf(png))) cr_assert_fail("libpng write failed");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        png_set_PLTE(png, info, palette, 4);
        png_byte trns[4] = {255, 0, 128, 255}; /* transparency must not leak into RGB */
        png_set_tRNS(png, info, trns, 4, NULL);
    } else if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_RGB) {
        png_color_16 key = {0, 1, 2, 3, 1}; /* a transparent colour, ignored too */
        png_set_tRNS(png, info, NULL, 0, &key);
    }
    png_write_info(png, info);
    if (depth < 8) png_set_packing(png);
    if (depth == 16) png_set_swap(png); /* rows below are little-endian 16-bit */
    int ch = png_get_channels(png, info);
    int bps = depth == 16 ? 2 : 1;
    uint8_t *row = malloc((size_t)w * ch * bps);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++)
                for (int c = 0; c < ch; c++) {
                    unsigned v = ctype == PNG_COLOR_TYPE_PALETTE ? (unsigned)(x + y) % 4
                                                                 : sample(x, y, c, depth);
                    if (bps == 2) {
                        row[(x * ch + c) * 2] = (uint8_t)(v & 0xff);
                        row[(x * ch + c) * 2 + 1] = (uint8_t)(v >> 8);
                    } else {
                        row[x * ch + c] = (uint8_t)v;
                    }
                }
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return m;
}

/* What the decoder must return for pixel (x, y), channel c (R, G, B). */
static unsigned expected(int ctype, int depth, int x, int y, int c) {
    if (ctype == PNG_COLOR_TYPE_PALETTE) {
        const png_color *p = &palette[(x + y) % 4];
        return c == 0 ? p->red : c == 1 ? p->green : p->blue;
    }
    int gray = !(ctype & PNG_COLOR_MASK_COLOR);
    unsigned v = sample(x, y, gray ? 0 : c, depth);
    if (depth == 16) return v >> 8;
    if (depth < 8) return v * 255u / ((1u << depth) - 1); /* bit replication */
    return v;
}

Test(image, png_variants) {
    static const struct {
        int ctype, depth;
    } kinds[] = {
        {PNG_COLOR_TYPE_GRAY, 1},        {PNG_COLOR_TYPE_GRAY, 2},
        {PNG_COLOR_TYPE_GRAY, 4},        {PNG_COLOR_TYPE_GRAY, 8},
        {PNG_COLOR_TYPE_GRAY, 16},       {PNG_COLOR_TYPE_GRAY_ALPHA, 8},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 16}, {PNG_COLOR_TYPE_RGB, 8},
        {PNG_COLOR_TYPE_RGB, 16},        {PNG_COLOR_TYPE_RGB_ALPHA, 8},
        {PNG_COLOR_TYPE_RGB_ALPHA, 16},  {PNG_COLOR_TYPE_PALETTE, 2},
        {PNG_COLOR_TYPE_PALETTE, 8},
    };
    const int w = 13, h = 7;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (int il = 0; il < 2; il++) {
            int ct = kinds[k].ctype, d = kinds[k].depth;
            membuf m = make_png(ct, d, il, w, h);
            sn_image im;
            sn_image_status st = sn_image_decode(m.p, m.len, 1000, 0, &im, err, sizeof err);
            cr_assert_eq(st, SN_IMG_OK, "ctype %d depth %d interlace %d: %s", ct, d, il, err);
            cr_assert_eq(im.width, w);
            cr_assert_eq(im.height, h);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int c = 0; c < 3; c++)
                        cr_assert_eq(im.rgb[(y * w + x) * 3 + c], expected(ct, d, x, y, c),
                                     "ctype %d depth %d interlace %d at (%d,%d,%d)", ct, d, il, x,
                                     y, c);
            sn_image_free(&im);
            cr_assert_null(im.rgb);

            /* The same file cut short anywhere after the signature is invalid, and a flipped
             * byte in the image data breaks the CRC. */
            size_t cuts[] = {8, 20, 33, m.len / 2, m.len - 13, m.len - 1};
            for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
                cr_assert_eq(sn_image_decode(m.p, cuts[i], 1000, 0, &im, err, sizeof err),
                             SN_IMG_INVALID, "cut at %zu of %zu", cuts[i], m.len);
            m.p[m.len - 20] ^= 0x40;
            cr_assert_eq(sn_image_decode(m.p, m.len, 1000, 0, &im, err, sizeof err),
                         SN_IMG_INVALID);
            /* Budget: 91 pixels. */
            m.p[m.len - 20] ^= 0x40;
            cr_assert_eq(sn_image_decode(m.p, m.len, w * h, 0, &im, err, sizeof err), SN_IMG_OK);
            sn_image_free(&im);
            cr_assert_eq(sn_image_decode(m.p, m.len, w * h - 1, 0, &im, err, sizeof err),
                         SN_IMG_TOO_LARGE);
            cr_assert_null(im.rgb);
            free(m.p);
        }
}

/* ---- EXIF orientation on a spliced-in APP1 segment -------------------------------------- */

/* caffe_cat.jpg with an APP1 Exif segment (the given TIFF payload) right after SOI. */
static uint8_t *with_exif(const uint8_t *jpg, size_t n, const uint8_t *tiff, size_t tlen,
                          size_t *outlen) {
    size_t seg = 2 + 6 + tlen; /* length field counts itself */
    uint8_t *o = malloc(n + 2 + seg);
    cr_assert_not_null(o);
    memcpy(o, jpg, 2);
    o[2] = 0xff, o[3] = 0xe1, o[4] = (uint8_t)(seg >> 8), o[5] = (uint8_t)seg;
    memcpy(o + 6, "Exif\0\0", 6);
    memcpy(o + 12, tiff, tlen);
    memcpy(o + 12 + tlen, jpg + 2, n - 2);
    *outlen = n + 2 + seg;
    return o;
}

/* A minimal TIFF: header, IFD0 with one entry (tag, type, count=1, value). */
static size_t make_tiff(uint8_t *t, int le, unsigned tag, unsigned type, unsigned value,
                        uint32_t ifd_off) {
    memset(t, 0, 64);
#define P16(p, v)                                                                                  \
    (le ? ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8))                                    \
        : ((p)[0] = (uint8_t)((v) >> 8), (p)[1] = (uint8_t)(v)))
#define P32(p, v)                                                                                  \
    (le ? (P16(p, (v)&0xffff), P16((p) + 2, (v) >> 16))                                            \
        : (P16(p, (v) >> 16), P16((p) + 2, (v)&0xffff)))
    memcpy(t, le ? "II" : "MM", 2);
    P16(t + 2, 42);
    P32(t + 4, ifd_off);
    uint8_t *e = t + 8;
    P16(e, 2); /* two entries: an unrelated one first */
    P16(e + 2, 0x010f), P16(e + 4, 2), P32(e + 6, 4u), memcpy(e + 10, "abc", 4);
    P16(e + 14, tag), P16(e + 16, type), P32(e + 18, 1u), P16(e + 22, value);
    P32(e + 26, 0u);
#undef P16
#undef P32
    return 8 + 2 + 24 + 4;
}

/* Stored pixel (sx, sy) that displayed pixel (x, y) shows, per the EXIF specification. */
static void source_of(int o, int w, int h, int x, int y, int *sx, int *sy) {
    switch (o) {
    case 2:
        *sx = w - 1 - x, *sy = y;
        break;
    case 3:
        *sx = w - 1 - x, *sy = h - 1 - y;
        break;
    case 4:
        *sx = x, *sy = h - 1 - y;
        break;
    case 5:
        *sx = y, *sy = x;
        break;
    case 6:
        *sx = y, *sy = h - 1 - x;
        break;
    case 7:
        *sx = w - 1 - y, *sy = h - 1 - x;
        break;
    case 8:
        *sx = w - 1 - y, *sy = x;
        break;
    default:
        *sx = x, *sy = y;
    }
}

Test(image, exif_orientation_all_values) {
    const char *dir = images_dir();
    size_t n;
    uint8_t *jpg = slurp(dir, "caffe_cat.jpg", &n);
    sn_image ref = must_decode(dir, "caffe_cat.jpg");
    int W = ref.width, H = ref.height;
    uint8_t tiff[64];
    for (int le = 0; le < 2; le++)
        for (int o = 0; o <= 9; o++) {
            size_t tl = make_tiff(tiff, le, 0x0112, 3, (unsigned)o, 8), len;
            uint8_t *b = with_exif(jpg, n, tiff, tl, &len);
            sn_image im;
            cr_assert_eq(sn_image_decode(b, len, 0, 0, &im, err, sizeof err), SN_IMG_OK, "%s", err);
            int eo = o >= 1 && o <= 8 ? o : 1; /* 0 and 9 are invalid: no change */
            cr_assert_eq(im.orientation, eo);
            int sw = eo >= 5;
            cr_assert_eq(im.width, sw ? H : W, "orientation %d", o);
            cr_assert_eq(im.height, sw ? W : H);
            cr_assert_eq(im.orig_width, im.width);
            cr_assert_eq(im.orig_height, im.height);
            for (int y = 0; y < im.height; y++)
                for (int x = 0; x < im.width; x++) {
                    int sx, sy;
                    source_of(eo, W, H, x, y, &sx, &sy);
                    cr_assert(memcmp(im.rgb + ((size_t)y * im.width + x) * 3,
                                     ref.rgb + ((size_t)sy * W + sx) * 3, 3) == 0,
                              "orientation %d (%s) at (%d,%d)", o, le ? "II" : "MM", x, y);
                }
            sn_image_free(&im);
            free(b);
        }

    /* Malformed EXIF is ignored, never trusted: IFD offset past the end, a wrong type, a
     * truncated payload, a bad byte-order mark. */
    struct {
        int le;
        unsigned tag, type;
        uint32_t ifd;
        size_t cut;
    } bad[] = {{1, 0x0112, 3, 60000, 0}, {1, 0x0112, 3, 0xffffffffu, 0}, {0, 0x0112, 4, 8, 0},
               {1, 0x0112, 3, 8, 30},    {1, 0x0112, 3, 8, 5},           {0, 0x0112, 3, 2, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t tl = make_tiff(tiff, bad[i].le, bad[i].tag, bad[i].type, 6, bad[i].ifd), len;
        if (bad[i].cut) tl = bad[i].cut;
        uint8_t *b = with_exif(jpg, n, tiff, tl, &len);
        sn_image im;
        cr_assert_eq(sn_image_decode(b, len, 0, 0, &im, err, sizeof err), SN_IMG_OK, "%s", err);
        cr_assert_eq(im.orientation, 1, "bad EXIF case %zu", i);
        cr_assert_eq(im.width, W);
        sn_image_free(&im);
        free(b);
    }
    tiff[0] = 'X';
    size_t len;
    uint8_t *b = with_exif(jpg, n, tiff, 38, &len);
    sn_image im;
    cr_assert_eq(sn_image_decode(b, len, 0, 0, &im, err, sizeof err), SN_IMG_OK);
    cr_assert_eq(im.orientation, 1);
    sn_image_free(&im);
    free(b);
    sn_image_free(&ref);
    free(jpg);
}

/* ---- the shared test images --------------------------------------------------------------- */

Test(image, every_shared_image) {
    const char *dir = images_dir();
    /* Displayed sizes from ../shared/images/README.md. */
    static const struct {
        const char *name;
        sn_image_status st;
        int w, h;
    } cases[] = {
        {"caffe_cat.jpg", SN_IMG_OK, 480, 360},
        {"caffe_cat_gray.jpg", SN_IMG_OK, 480, 360},
        {"edge_444_restart_caffe_cat.jpg", SN_IMG_OK, 480, 360},
        {"edge_arithmetic_caffe_cat.jpg", SN_IMG_OK, 480, 360},
        {"edge_bomb_12000x12000_gray.jpg", SN_IMG_TOO_LARGE, 0, 0},
        {"edge_cmyk_chelsea.jpg", SN_IMG_OK, 451, 300},
        {"edge_exif6_coffee.jpg", SN_IMG_OK, 600, 400},
        {"edge_huge_6000x4000_coffee.jpg", SN_IMG_OK, 6000, 4000},
        {"edge_progressive_caffe_cat.jpg", SN_IMG_OK, 480, 360},
        {"edge_rgba_chelsea.png", SN_IMG_OK, 451, 300},
        {"edge_tiny_8x6_caffe_cat.jpg", SN_IMG_OK, 8, 6},
        {"exif_Landscape_0.jpg", SN_IMG_OK, 1800, 1200},
        {"exif_Landscape_3.jpg", SN_IMG_OK, 1800, 1200},
        {"exif_Landscape_6.jpg", SN_IMG_OK, 1800, 1200},
        {"exif_Landscape_8.jpg", SN_IMG_OK, 1800, 1200},
        {"exif_Portrait_6.jpg", SN_IMG_OK, 1200, 1800},
        {"matplotlib_grace_hopper.jpg", SN_IMG_OK, 512, 600},
        {"opencv_baboon.jpg", SN_IMG_OK, 512, 512},
        {"opencv_butterfly.jpg", SN_IMG_OK, 493, 356},
        {"opencv_chicky_512.png", SN_IMG_OK, 512, 512},
        {"opencv_fruits.jpg", SN_IMG_OK, 512, 480},
        {"opencv_messi5.jpg", SN_IMG_OK, 548, 342},
        {"opencv_orange.jpg", SN_IMG_OK, 512, 512},
        {"opencv_squirrel_cls.jpg", SN_IMG_OK, 535, 426},
        {"qengineering_cat.jpg", SN_IMG_OK, 480, 320},
        {"qengineering_vulture.jpg", SN_IMG_OK, 251, 201},
        {"skimage_camera.png", SN_IMG_OK, 512, 512},
        {"skimage_chelsea.png", SN_IMG_OK, 451, 300},
        {"skimage_coffee.png", SN_IMG_OK, 600, 400},
        {"skimage_motorcycle_left.png", SN_IMG_OK, 741, 500},
        {"skimage_rocket.jpg", SN_IMG_OK, 640, 427},
        {"skimage_truncated.jpg", SN_IMG_INVALID, 0, 0},
        {"sklearn_china.jpg", SN_IMG_OK, 640, 427},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sn_image im;
        /* The huge one is decoded at 1/8 (the DCT-downscale test covers it); orig_* still
         * reports the full size. */
        int big = strstr(cases[i].name, "huge") != NULL;
        sn_image_status st = decode_file(dir, cases[i].name, 40000000, big ? 400 : 0, &im);
        cr_assert_eq(st, cases[i].st, "%s: %s, expected %s (%s)", cases[i].name,
                     sn_image_status_name(st), sn_image_status_name(cases[i].st), err);
        if (st == SN_IMG_OK) {
            cr_assert_eq(im.orig_width, cases[i].w, "%s width %d", cases[i].name, im.orig_width);
            cr_assert_eq(im.orig_height, cases[i].h, "%s height", cases[i].name);
            if (!big) {
                cr_assert_eq(im.width, cases[i].w);
                cr_assert_eq(im.height, cases[i].h);
            }
        } else {
            cr_assert_null(im.rgb);
            cr_assert_neq(err[0], '\0');
        }
        sn_image_free(&im);
    }
}

Test(image, truncated_and_corrupt_jpeg) {
    const char *dir = images_dir();
    sn_image im;
    cr_assert_eq(decode_file(dir, "skimage_truncated.jpg", 40000000, 0, &im), SN_IMG_INVALID);
    cr_assert_null(im.rgb);

    size_t n;
    uint8_t *b = slurp(dir, "caffe_cat.jpg", &n);
    size_t cuts[] = {3, 100, 600, n / 3, n / 2, n - 100, n - 2};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(sn_image_decode(b, cuts[i], 0, 0, &im, err, sizeof err), SN_IMG_INVALID,
                     "cut at %zu of %zu", cuts[i], n);
        cr_assert_null(im.rgb);
    }
    free(b);
    /* Progressive data cut short: libjpeg only warns, we refuse. */
    b = slurp(dir, "edge_progressive_caffe_cat.jpg", &n);
    cr_assert_eq(sn_image_decode(b, n * 2 / 3, 0, 0, &im, err, sizeof err), SN_IMG_INVALID);
    free(b);
}

Test(image, budget_from_header) {
    const char *dir = images_dir();
    sn_image im;
    /* 144 MP of gray in 1.7 MB: refused from the header (a full decode would take seconds
     * under ASan and 144 MB). */
    cr_assert_eq(decode_file(dir, "edge_bomb_12000x12000_gray.jpg", 40000000, 0, &im),
                 SN_IMG_TOO_LARGE);
    cr_assert_null(im.rgb);
    cr_assert(strstr(err, "12000x12000") != NULL, "%s", err);
    /* Exactly at the budget passes, one below fails, for JPEG and PNG. */
    cr_assert_eq(decode_file(dir, "caffe_cat.jpg", 480 * 360, 0, &im), SN_IMG_OK);
    sn_image_free(&im);
    cr_assert_eq(decode_file(dir, "caffe_cat.jpg", 480 * 360 - 1, 0, &im), SN_IMG_TOO_LARGE);
    cr_assert_eq(decode_file(dir, "skimage_chelsea.png", 451 * 300, 0, &im), SN_IMG_OK);
    sn_image_free(&im);
    cr_assert_eq(decode_file(dir, "skimage_chelsea.png", 451 * 300 - 1, 0, &im), SN_IMG_TOO_LARGE);
    /* The budget is on the stored image, also when a DCT downscale would shrink it. */
    cr_assert_eq(decode_file(dir, "edge_huge_6000x4000_coffee.jpg", 20000000, 500, &im),
                 SN_IMG_TOO_LARGE);
}

Test(image, dct_downscale) {
    const char *dir = images_dir();
    static const struct {
        const char *name;
        int min_short, w, h, denom;
    } cases[] = {
        {"edge_huge_6000x4000_coffee.jpg", 512, 1500, 1000, 4}, /* 1/8 would be 500 < 512 */
        {"edge_huge_6000x4000_coffee.jpg", 500, 750, 500, 8},
        {"edge_huge_6000x4000_coffee.jpg", 1001, 3000, 2000, 2},
        {"caffe_cat.jpg", 180, 240, 180, 2},
        {"caffe_cat.jpg", 181, 480, 360, 1},
        {"caffe_cat.jpg", 45, 60, 45, 8},
        {"edge_exif6_coffee.jpg", 200, 300, 200, 2}, /* stored 400x600, displayed 600x400 */
        {"edge_tiny_8x6_caffe_cat.jpg", 1, 1, 1, 8},
        {"skimage_coffee.png", 100, 600, 400, 1}, /* PNG: never downscaled */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sn_image im;
        cr_assert_eq(decode_file(dir, cases[i].name, 40000000, cases[i].min_short, &im), SN_IMG_OK,
                     "%s", err);
        cr_assert_eq(im.width, cases[i].w, "%s min_short %d: %dx%d", cases[i].name,
                     cases[i].min_short, im.width, im.height);
        cr_assert_eq(im.height, cases[i].h);
        cr_assert_eq(im.dct_denom, cases[i].denom);
        cr_assert_geq(im.width < im.height ? im.width : im.height, cases[i].min_short);
        sn_image_free(&im);
    }
    /* A 1/2 downscale looks like the full image averaged 2x2. */
    sn_image full = must_decode(dir, "caffe_cat.jpg"), half;
    cr_assert_eq(decode_file(dir, "caffe_cat.jpg", 0, 180, &half), SN_IMG_OK);
    double s = 0;
    for (int y = 0; y < half.height; y++)
        for (int x = 0; x < half.width; x++)
            for (int c = 0; c < 3; c++) {
                int a = 0;
                for (int k = 0; k < 4; k++)
                    a += full.rgb[((size_t)(2 * y + k / 2) * full.width + 2 * x + k % 2) * 3 + c];
                s += abs(half.rgb[((size_t)y * half.width + x) * 3 + c] - (a + 2) / 4);
            }
    s /= (double)half.width * half.height * 3;
    cr_assert_lt(s, 3.0, "mean abs diff of the 1/2 DCT decode vs 2x2 average: %f", s);
    sn_image_free(&full);
    sn_image_free(&half);
}

Test(image, orientation_of_real_files) {
    const char *dir = images_dir();
    /* edge_exif6_coffee.jpg holds coffee.png rotated 90 CCW with Orientation 6. */
    sn_image rot = must_decode(dir, "edge_exif6_coffee.jpg");
    sn_image png = must_decode(dir, "skimage_coffee.png");
    cr_assert_eq(rot.orientation, 6);
    double d = mean_abs_diff(&rot, &png);
    cr_log_info("edge_exif6_coffee.jpg vs skimage_coffee.png: mean abs diff %.3f\n", d);
    cr_assert_lt(d, 5.0, "mean abs diff %f", d);
    sn_image_free(&rot);
    sn_image_free(&png);

    /* The recurser examples show the same landscape stored in different orientations. */
    sn_image l0 = must_decode(dir, "exif_Landscape_0.jpg");
    cr_assert_eq(l0.orientation, 1); /* 0 is invalid: treated as 1 */
    const char *others[] = {"exif_Landscape_3.jpg", "exif_Landscape_6.jpg", "exif_Landscape_8.jpg"};
    for (int i = 0; i < 3; i++) {
        sn_image li = must_decode(dir, others[i]);
        d = mean_abs_diff(&li, &l0);
        cr_assert_lt(d, 10.0, "%s vs exif_Landscape_0.jpg: mean abs diff %f", others[i], d);
        sn_image_free(&li);
    }
    sn_image_free(&l0);
}

Test(image, colour_spaces_and_codings) {
    const char *dir = images_dir();
    /* Adobe CMYK (stored inverted) must still be the cat. */
    sn_image cmyk = must_decode(dir, "edge_cmyk_chelsea.jpg");
    sn_image chelsea = must_decode(dir, "skimage_chelsea.png");
    double d = mean_abs_diff(&cmyk, &chelsea);
    cr_log_info("edge_cmyk_chelsea.jpg vs skimage_chelsea.png: mean abs diff %.3f\n", d);
    cr_assert_lt(d, 4.0, "mean abs diff %f", d);
    /* Alpha is dropped, the RGB kept as stored (the alpha ramp was added to chelsea.png). */
    sn_image rgba = must_decode(dir, "edge_rgba_chelsea.png");
    cr_assert_eq(memcmp(rgba.rgb, chelsea.rgb, (size_t)451 * 300 * 3), 0);
    sn_image_free(&cmyk);
    sn_image_free(&chelsea);
    sn_image_free(&rgba);

    /* Lossless jpegtran variants decode to the same pixels; the re-encoded one is close. */
    sn_image cat = must_decode(dir, "caffe_cat.jpg");
    const char *same[] = {"edge_progressive_caffe_cat.jpg", "edge_arithmetic_caffe_cat.jpg"};
    for (int i = 0; i < 2; i++) {
        sn_image v = must_decode(dir, same[i]);
        cr_assert_eq(mean_abs_diff(&v, &cat), 0.0, "%s", same[i]);
        sn_image_free(&v);
    }
    sn_image rst = must_decode(dir, "edge_444_restart_caffe_cat.jpg");
    d = mean_abs_diff(&rst, &cat);
    cr_assert_lt(d, 4.0, "restart-marker version: mean abs diff %f", d);
    sn_image_free(&rst);

    /* Grayscale JPEG and PNG come out as R = G = B; the gray cat is the colour cat's
     * picture (correlated with its luma; its tone curve differs, so no pixel distance). */
    sn_image gray = must_decode(dir, "caffe_cat_gray.jpg");
    double sg = 0, sl = 0, sgg = 0, sll = 0, sgl = 0, np = 480.0 * 360;
    for (size_t i = 0; i < (size_t)480 * 360; i++) {
        const uint8_t *p = gray.rgb + i * 3, *q = cat.rgb + i * 3;
        cr_assert(p[0] == p[1] && p[1] == p[2], "gray pixel %zu not gray", i);
        double g = p[0], l = 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2];
        sg += g, sl += l, sgg += g * g, sll += l * l, sgl += g * l;
    }
    double cov = sgl / np - sg / np * sl / np;
    double corr = cov / sqrt((sgg / np - sg / np * sg / np) * (sll / np - sl / np * sl / np));
    cr_assert_gt(corr, 0.9, "gray vs luma of the colour cat: correlation %f", corr);
    sn_image_free(&gray);
    sn_image_free(&cat);
    sn_image cam = must_decode(dir, "skimage_camera.png");
    int distinct = 0;
    for (size_t i = 0; i < (size_t)512 * 512; i++) {
        const uint8_t *p = cam.rgb + i * 3;
        cr_assert(p[0] == p[1] && p[1] == p[2]);
        distinct |= p[0] != cam.rgb[0];
    }
    cr_assert(distinct, "the camera man is not a flat image");
    sn_image_free(&cam);
}
