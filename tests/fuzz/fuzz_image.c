/* fuzz_image.c - libFuzzer target: JPEG/PNG decoding with the pixel budget and EXIF parsing
 * (common/image.c), preprocessing of whatever decoded (common/preprocess.c), and the request
 * path itself: sn_input_from_bytes in fast and exact mode, i.e. the window decode with
 * jpeg_crop_scanline / jpeg_skip_scanlines at every DCT scale (common/stream.c) into the
 * resampling plan (common/resize.c), with a memory budget hook. The first byte picks the DCT
 * downscale target, the preprocessing preset and the mode. And a differential check: the
 * skipping 1/8 decoder (common/jpegdc.c) against libjpeg's own 1/8 decode: the same status,
 * and the same pixels where it promises them (all but 4:2:0 chroma), or abort; and the
 * full-scale sparse decoder of exact mode against libjpeg's full decode: the same status and
 * the same pixels under the rows and columns a sparse sink reads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/image.h"
#include "common/input.h"
#include "common/preprocess.h"
#include "common/stream.h"

static int reserve(void *ctx, long long n) {
    long long *held = ctx;
    if (*held + n > (256LL << 20)) return -1;
    *held += n;
    return 0;
}

static void release(void *ctx, long long n) {
    long long *held = ctx;
    *held -= n;
    if (*held < 0) abort(); /* released more than reserved */
}

typedef struct {
    int w;
    uint8_t *pix;
} eighth;

static int every(void *c, int i) {
    (void)c, (void)i;
    return 1;
}
static void put_row(void *c, int y, const uint8_t *px, ptrdiff_t xs) {
    eighth *e = c;
    for (int x = 0; x < e->w; x++) memcpy(e->pix + ((size_t)y * e->w + x) * 3, px + x * xs, 3);
}
static void put_col(void *c, int x, const uint8_t *py, ptrdiff_t ys) {
    (void)c, (void)x, (void)py, (void)ys;
    abort(); /* the test images are opened with orientation ignored below */
}

/* Scale 1/8 of the whole image, with or without the skipping decoder; *same: whether the
 * skipping decoder's pixels must be libjpeg's (not 4:2:0 chroma, jpegdc.h). */
static sn_image_status decode_eighth(const uint8_t *d, size_t n, int no_dc, uint8_t **pix, int *w,
                                     int *h, int *same) {
    sn_stream *s;
    sn_stream_info si;
    char err[256];
    *pix = NULL;
    sn_image_status st = sn_stream_open(d, n, 4000000, &s, &si, err, sizeof err);
    if (st != SN_IMG_OK) return st;
    sn_stream_scaled_size(s, 1, w, h);
    eighth e = {*w, calloc((size_t)*w * *h, 3)};
    if (!e.pix || si.orientation != 1) {
        free(e.pix);
        sn_stream_close(s);
        return SN_IMG_EMPTY; /* skip: EXIF orientation is covered by the unit tests */
    }
    if (no_dc) sn_stream_no_dc(s);
    *same = sn_stream_dc_same_as_libjpeg(s);
    sn_sink k = {0, *w, 0, *h, &e, every, every, put_row, put_col};
    st = sn_stream_run(s, 1, &k, err, sizeof err);
    sn_stream_close(s);
    *pix = e.pix;
    return st;
}

/* Lines a sparse sink reads (about 1 in 4, in irregular runs). */
static int sparse(void *c, int i) {
    (void)c;
    return ((unsigned)i * 2654435761u >> 28) < 4;
}

/* The whole image at full scale: with the sparse decoder forced (mode 1) and a sparse sink,
 * or libjpeg's full decode (no_skip). */
static sn_image_status decode_full(const uint8_t *d, size_t n, int ours, uint8_t **pix, int *w,
                                   int *h, int *used) {
    sn_stream *s;
    sn_stream_info si;
    char err[256];
    *pix = NULL;
    sn_image_status st = sn_stream_open(d, n, 1000000, &s, &si, err, sizeof err);
    if (st != SN_IMG_OK) return st;
    sn_stream_scaled_size(s, 8, w, h);
    eighth e = {*w, calloc((size_t)*w * *h, 3)};
    if (!e.pix || si.orientation != 1) {
        free(e.pix);
        sn_stream_close(s);
        return SN_IMG_EMPTY;
    }
    if (ours)
        sn_stream_full_scale(s, 1);
    else
        sn_stream_no_skip(s);
    sn_sink k = {0, *w, 0, *h, &e, ours ? sparse : every, ours ? sparse : every, put_row, put_col};
    st = sn_stream_run(s, 8, &k, err, sizeof err);
    *used = sn_stream_used_full_scale(s);
    sn_stream_close(s);
    *pix = e.pix;
    return st;
}

static void differential_full(const uint8_t *d, size_t n) {
    if (sn_image_sniff(d, n) != SN_FMT_JPEG) return;
    uint8_t *a, *b;
    int w, h, w2, h2, used, u2;
    sn_image_status sa = decode_full(d, n, 1, &a, &w, &h, &used);
    sn_image_status sb = decode_full(d, n, 0, &b, &w2, &h2, &u2);
    if (sa != sb) abort();
    if (sa == SN_IMG_OK)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w && sparse(NULL, y); x++)
                if (sparse(NULL, x) &&
                    memcmp(a + ((size_t)y * w + x) * 3, b + ((size_t)y * w + x) * 3, 3) != 0)
                    abort();
    free(a);
    free(b);
}

static void differential_eighth(const uint8_t *d, size_t n) {
    if (sn_image_sniff(d, n) != SN_FMT_JPEG) return;
    uint8_t *a, *b;
    int w, h, w2, h2, same = 1, same2;
    sn_image_status sa = decode_eighth(d, n, 0, &a, &w, &h, &same);
    sn_image_status sb = decode_eighth(d, n, 1, &b, &w2, &h2, &same2);
    if (sa != sb) abort();
    if (sa == SN_IMG_OK && same && memcmp(a, b, (size_t)w * h * 3) != 0) abort();
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0];
    sn_preprocess p = {(mode >> 1) & 1,
                       (mode >> 2) & 1 ? SN_RESIZE_PILLOW_BILINEAR : SN_RESIZE_OPENCV_BILINEAR,
                       40 + ((mode >> 5) & 3) * 9,
                       (mode >> 3) & 1,
                       32,
                       {0, 0, 0},
                       {1, 1, 1}};
    float *x = malloc(3 * 32 * 32 * sizeof(float));
    if (!x) return 0;
    char err[256];
    /* the request path, as the server runs it (4 MP budget keeps each execution fast) */
    long long held = 0;
    sn_input_opts o = {.max_pixels = 4000000,
                       .mode = (mode >> 4) & 1 ? SN_PRE_EXACT : SN_PRE_FAST,
                       .reserve = reserve,
                       .release = release,
                       .budget_ctx = &held};
    sn_input_info info;
    sn_input_from_bytes(&p, &o, data + 1, size - 1, x, &info, err, sizeof err);
    if (held != 0) abort(); /* every reservation given back */
    differential_eighth(data + 1, size - 1);
    differential_full(data + 1, size - 1);
    /* the whole-image decoder */
    sn_image img;
    if (sn_image_decode(data + 1, size - 1, 4000000, (mode & 1) ? 64 : 0, &img, err, sizeof(err)) ==
        SN_IMG_OK) {
        sn_preprocess_image(&p, img.rgb, img.width, img.height, x, err, sizeof(err));
        sn_image_free(&img);
    }
    free(x);
    return 0;
}
