/* test_preprocess.c - image -> network input (engine/preprocess.c): resized sizes, crop
 * offsets, channel order and mean/std, OpenCV INTER_LINEAR against the megvii reference
 * tensors, and the Pillow BILINEAR resampler's properties. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/image.h"
#include "tools/npy.h"
#include "common/preprocess.h"
#include "common/resize.h"
#include "tests/unit/shared.h"

#define CROP  224
#define PLANE (CROP * CROP)

static char err[256];

static const sn_preprocess megvii = {0,        SN_RESIZE_OPENCV_BILINEAR, 256, 1, 224, {0, 0, 0},
                                     {1, 1, 1}};
static const sn_preprocess mmpre = {1,
                                    SN_RESIZE_PILLOW_BILINEAR,
                                    256,
                                    0,
                                    224,
                                    {123.675f, 116.28f, 103.53f},
                                    {58.395f, 57.12f, 57.375f}};

/* A w x h RGB image from a seeded generator (deterministic). */
static uint8_t *random_image(int w, int h, uint32_t seed) {
    uint8_t *p = malloc((size_t)w * h * 3);
    cr_assert_not_null(p);
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        p[i] = (uint8_t)((seed = seed * 1664525u + 1013904223u) >> 24);
    return p;
}

static float *run(const sn_preprocess *p, const uint8_t *rgb, int w, int h) {
    float *out = malloc(sizeof(float) * 3 * PLANE);
    cr_assert_not_null(out);
    cr_assert_eq(sn_preprocess_image(p, rgb, w, h, out, err, sizeof err), 0, "%dx%d: %s", w, h,
                 err);
    return out;
}

static sn_preprocess raw(sn_resize_mode mode, int long_round) {
    sn_preprocess p = {1, mode, 256, long_round, CROP, {0, 0, 0}, {1, 1, 1}};
    return p;
}

Test(preprocess, resized_size) {
    static const struct {
        int w, h, round, rw, rh;
    } c[] = {
        {451, 300, 1, 385, 256}, /* int(256/300*451 + 0.5) = int(385.35) */
        {600, 400, 1, 384, 256}, {300, 451, 1, 256, 385}, {451, 300, 0, 384, 256},
        {600, 400, 0, 384, 256}, {741, 500, 1, 379, 256}, /* 379.39 */
        {741, 500, 0, 379, 256}, {548, 342, 1, 410, 256}, /* 410.20 */
        {8, 6, 1, 341, 256},     {8, 6, 0, 341, 256},     {6, 8, 1, 256, 341},
        {493, 356, 1, 355, 256}, /* 354.52 rounds up, 354 floored */
        {493, 356, 0, 354, 256}, {512, 512, 1, 256, 256}, {512, 512, 0, 256, 256},
        {640, 427, 1, 384, 256}, /* 383.70 */
        {640, 427, 0, 383, 256}, {1, 1, 1, 256, 256},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        sn_preprocess p = megvii;
        p.long_round = c[i].round;
        int rw, rh;
        sn_preprocess_resized_size(&p, c[i].w, c[i].h, &rw, &rh);
        cr_assert(rw == c[i].rw && rh == c[i].rh, "%dx%d (%s): got %dx%d, want %dx%d", c[i].w,
                  c[i].h, c[i].round ? "round" : "floor", rw, rh, c[i].rw, c[i].rh);
    }
    int rw = -1, rh = -1;
    sn_preprocess_resized_size(&megvii, 0, 10, &rw, &rh);
    cr_assert(rw == 0 && rh == 0);
}

/* An image whose pixels say where they are: R = x & 255, G = x >> 8, B = y. */
static uint8_t *coord_image(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    cr_assert_not_null(p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(x & 255), q[1] = (uint8_t)(x >> 8), q[2] = (uint8_t)y;
        }
    return p;
}

Test(preprocess, crop_offsets_round_half_to_even) {
    /* Long sides that need no resize (short side already 256), so the crop shows the
     * offset directly. Python: round(65.5) = 66, round(77.5) = 78, round(80.5) = 80,
     * round(16.5) = 16, round(17.5) = 18, round(32.5) = 32, round(33.5) = 34. */
    static const struct {
        int size, off;
    } c[] = {{355, 66}, {379, 78}, {385, 80}, {384, 80}, {257, 16},
             {259, 18}, {256, 16}, {289, 32}, {291, 34}};
    for (int mode = 0; mode < 2; mode++)
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
            for (int portrait = 0; portrait < 2; portrait++) {
                int w = portrait ? 256 : c[i].size, h = portrait ? c[i].size : 256;
                sn_preprocess p = raw((sn_resize_mode)mode, 1);
                int rw, rh;
                sn_preprocess_resized_size(&p, w, h, &rw, &rh);
                cr_assert(rw == w && rh == h);
                uint8_t *img = coord_image(w, h);
                float *out = run(&p, img, w, h);
                int left = portrait ? 16 : c[i].off, top = portrait ? c[i].off : 16;
                for (int y = 0; y < CROP; y++)
                    for (int x = 0; x < CROP; x++) {
                        const uint8_t *s = img + ((size_t)(y + top) * w + x + left) * 3;
                        for (int ch = 0; ch < 3; ch++)
                            cr_assert_eq(out[ch * PLANE + y * CROP + x], (float)s[ch],
                                         "size %d %s mode %d at (%d,%d)", c[i].size,
                                         portrait ? "tall" : "wide", mode, x, y);
                    }
                free(img);
                free(out);
            }
}

Test(preprocess, channel_order_mean_std) {
    uint8_t *img = random_image(256, 256, 7);
    sn_preprocess rgb = mmpre;
    rgb.resize = SN_RESIZE_OPENCV_BILINEAR; /* identity at 256x256 in both modes */
    sn_preprocess bgr = rgb;
    bgr.rgb = 0;
    const float bm[3] = {10.5f, -3.0f, 200.0f}, bs[3] = {2.0f, 0.5f, 64.0f};
    memcpy(bgr.mean, bm, sizeof bm);
    memcpy(bgr.std, bs, sizeof bs);
    for (int mode = 0; mode < 2; mode++) {
        rgb.resize = bgr.resize = (sn_resize_mode)mode;
        float *o1 = run(&rgb, img, 256, 256), *o2 = run(&bgr, img, 256, 256);
        for (int y = 0; y < CROP; y++)
            for (int x = 0; x < CROP; x++) {
                const uint8_t *s = img + ((size_t)(y + 16) * 256 + x + 16) * 3;
                for (int c = 0; c < 3; c++) {
                    /* plane c is R,G,B for rgb; B,G,R for bgr; mean/std follow the plane */
                    float e1 = ((float)s[c] - mmpre.mean[c]) / mmpre.std[c];
                    float e2 = ((float)s[2 - c] - bm[c]) / bs[c];
                    cr_assert_eq(o1[c * PLANE + y * CROP + x], e1, "rgb plane %d (%d,%d)", c, x, y);
                    cr_assert_eq(o2[c * PLANE + y * CROP + x], e2, "bgr plane %d (%d,%d)", c, x, y);
                }
            }
        free(o1);
        free(o2);
    }
    free(img);
}

/* ---- against reference files ----------------------------------------------------------- */

/* ../shared, or the test is skipped. */
static const char *shared_dir(void) {
    return sn_test_shared("images/skimage_chelsea.png");
}

Test(preprocess, megvii_matches_opencv_reference) {
    const char *sh = shared_dir();
    const char *names[] = {"chelsea", "coffee"};
    for (int k = 0; k < 2; k++) {
        char path[1200];
        size_t n;
        snprintf(path, sizeof path, "%s/images/skimage_%s.png", sh, names[k]);
        uint8_t *png = sn_test_read(path, &n);
        sn_image im;
        cr_assert_eq(sn_image_decode(png, n, 0, 0, &im, err, sizeof err), SN_IMG_OK, "%s", err);
        free(png);
        float *out = run(&megvii, im.rgb, im.width, im.height);
        snprintf(path, sizeof path, "%s/models/reference/megvii-g3-0.5x/%s_input_nchw_bgr0-255.f32",
                 sh, names[k]);
        float *ref = (float *)sn_test_read(path, &n);
        cr_assert_eq(n, sizeof(float) * 3 * PLANE);
        int ndiff = 0;
        float maxd = 0;
        for (int i = 0; i < 3 * PLANE; i++) {
            float d = fabsf(out[i] - ref[i]);
            ndiff += d != 0;
            maxd = d > maxd ? d : maxd;
        }
        cr_log_info("%s: max abs diff %g, %d of %d values differ\n", names[k], maxd, ndiff,
                    3 * PLANE);
        cr_assert_eq(ndiff, 0, "%s: max abs diff %g, %d values differ", names[k], maxd, ndiff);
        free(ref);
        free(out);
        sn_image_free(&im);
    }
}

/* The mmpretrain reference image (RGB 0..255, already cropped) placed inside a 256x256
 * frame comes back out of the crop, normalised exactly as PyTorch did it in float32. */
Test(preprocess, mmpretrain_normalisation_matches_reference) {
    const char *sh = shared_dir();
    char path[1200];
    float *img = NULL, *ref = NULL;
    int64_t shape[SN_NPY_MAX_DIMS];
    int nd;
    snprintf(path, sizeof path, "%s/models/reference/mmpretrain-g3-0.5x-synthetic/%s", sh,
             "input_rgb0-255.npy");
    cr_assert_eq(sn_npy_read(path, &img, shape, &nd, err, sizeof err), 0, "%s", err);
    cr_assert(nd == 4 && shape[1] == 3 && shape[2] == CROP && shape[3] == CROP);
    snprintf(path, sizeof path, "%s/models/reference/mmpretrain-g3-0.5x-synthetic/%s", sh,
             "input.npy");
    cr_assert_eq(sn_npy_read(path, &ref, shape, &nd, err, sizeof err), 0, "%s", err);
    uint8_t *frame = random_image(256, 256, 99);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < CROP; y++)
            for (int x = 0; x < CROP; x++)
                frame[((size_t)(y + 16) * 256 + x + 16) * 3 + c] =
                    (uint8_t)img[c * PLANE + y * CROP + x];
    float *out = run(&mmpre, frame, 256, 256);
    cr_assert_eq(memcmp(out, ref, sizeof(float) * 3 * PLANE), 0);
    free(out);
    free(frame);
    free(img);
    free(ref);
}

Test(preprocess, tiny_jpeg_both_presets) {
    const char *sh = shared_dir();
    char path[1200];
    size_t n;
    snprintf(path, sizeof path, "%s/images/edge_tiny_8x6_caffe_cat.jpg", sh);
    uint8_t *jpg = sn_test_read(path, &n);
    sn_image im;
    cr_assert_eq(sn_image_decode(jpg, n, 0, 512, &im, err, sizeof err), SN_IMG_OK, "%s", err);
    free(jpg);
    cr_assert(im.width == 8 && im.height == 6);
    const sn_preprocess *ps[2] = {&megvii, &mmpre};
    for (int k = 0; k < 2; k++) {
        float *out = run(ps[k], im.rgb, 8, 6);
        for (int c = 0; c < 3; c++) {
            float lo = (0 - ps[k]->mean[c]) / ps[k]->std[c],
                  hi = (255 - ps[k]->mean[c]) / ps[k]->std[c];
            float mn = INFINITY, mx = -INFINITY;
            for (int i = 0; i < PLANE; i++) {
                float v = out[c * PLANE + i];
                cr_assert(v >= lo && v <= hi, "preset %d plane %d value %f", k, c, v);
                mn = fminf(mn, v), mx = fmaxf(mx, v);
            }
            cr_assert_lt(mn, mx, "an 8x6 photo upscaled is not flat");
        }
        free(out);
    }
    sn_image_free(&im);
}

/* ---- resampler properties ---------------------------------------------------------------- */

/* 512x512 -> 256x256 (crop at 16): OpenCV INTER_LINEAR samples between pixel pairs, i.e.
 * the 2x2 mean, (sum + 2) >> 2; Pillow's antialiased triangle spans 4 pixels with weights
 * 1/8, 3/8, 3/8, 1/8 per axis, rounded to 8 bits after each pass. */
Test(preprocess, exact_2x_downscale) {
    uint8_t *img = random_image(512, 512, 3);
    sn_preprocess cv = raw(SN_RESIZE_OPENCV_BILINEAR, 1), pil = raw(SN_RESIZE_PILLOW_BILINEAR, 0);
    float *o1 = run(&cv, img, 512, 512), *o2 = run(&pil, img, 512, 512);
#define PX(x, y, c) ((int)img[((size_t)(y)*512 + (x)) * 3 + (c)])
    for (int y = 0; y < CROP; y++)
        for (int x = 0; x < CROP; x++)
            for (int c = 0; c < 3; c++) {
                int sx = 2 * (x + 16), sy = 2 * (y + 16);
                int avg = (PX(sx, sy, c) + PX(sx + 1, sy, c) + PX(sx, sy + 1, c) +
                           PX(sx + 1, sy + 1, c) + 2) >>
                          2;
                cr_assert_eq(o1[c * PLANE + y * CROP + x], (float)avg, "opencv (%d,%d,%d)", x, y,
                             c);
                int col[4];
                for (int r = 0; r < 4; r++) {
                    int yy = sy - 1 + r;
                    col[r] = (PX(sx - 1, yy, c) + 3 * PX(sx, yy, c) + 3 * PX(sx + 1, yy, c) +
                              PX(sx + 2, yy, c) + 4) >>
                             3;
                }
                int v = (col[0] + 3 * col[1] + 3 * col[2] + col[3] + 4) >> 3;
                cr_assert_eq(o2[c * PLANE + y * CROP + x], (float)v, "pillow (%d,%d,%d)", x, y, c);
            }
#undef PX
    free(o1);
    free(o2);
    free(img);
}

Test(preprocess, pillow_identity_at_scale_one) {
    /* 256x300 with the long side floored: int(256 * 300 / 256) = 300, no resampling. */
    uint8_t *img = random_image(256, 300, 11);
    sn_preprocess p = raw(SN_RESIZE_PILLOW_BILINEAR, 0);
    float *out = run(&p, img, 256, 300);
    int top = 38; /* round(76 / 2) */
    for (int y = 0; y < CROP; y++)
        for (int x = 0; x < CROP; x++)
            for (int c = 0; c < 3; c++)
                cr_assert_eq(out[c * PLANE + y * CROP + x],
                             (float)img[((size_t)(y + top) * 256 + x + 16) * 3 + c]);
    free(out);
    free(img);
}

Test(preprocess, constant_image_stays_constant) {
    static const int sizes[][2] = {{451, 300}, {8, 6}, {6, 8}, {2000, 1500}, {300, 257}, {1, 1}};
    for (int mode = 0; mode < 2; mode++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            int w = sizes[i][0], h = sizes[i][1];
            uint8_t *img = malloc((size_t)w * h * 3);
            for (size_t k = 0; k < (size_t)w * h; k++)
                img[k * 3] = 137, img[k * 3 + 1] = 0, img[k * 3 + 2] = 255;
            sn_preprocess p = raw((sn_resize_mode)mode, mode == 0);
            float *out = run(&p, img, w, h);
            for (int k = 0; k < PLANE; k++)
                cr_assert(out[k] == 137 && out[PLANE + k] == 0 && out[2 * PLANE + k] == 255,
                          "mode %d %dx%d at %d: %f %f %f", mode, w, h, k, out[k], out[PLANE + k],
                          out[2 * PLANE + k]);
            free(out);
            free(img);
        }
}

Test(preprocess, pillow_mirror_symmetric) {
    /* 600x400 -> 384x256, crop at (80, 16): margins equal on both sides, so mirroring the
     * input mirrors the output. */
    int w = 600, h = 400;
    uint8_t *img = random_image(w, h, 5), *mir = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(mir + ((size_t)y * w + x) * 3, img + ((size_t)y * w + (w - 1 - x)) * 3, 3);
    sn_preprocess p = raw(SN_RESIZE_PILLOW_BILINEAR, 0);
    float *a = run(&p, img, w, h), *b = run(&p, mir, w, h);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < CROP; y++)
            for (int x = 0; x < CROP; x++)
                cr_assert_eq(a[c * PLANE + y * CROP + x], b[c * PLANE + y * CROP + CROP - 1 - x],
                             "(%d,%d,%d)", x, y, c);
    free(a);
    free(b);
    free(img);
    free(mir);
}

Test(preprocess, upscaling_is_smooth_and_bounded) {
    /* An 8x6 horizontal ramp upscaled (341x256): values stay inside the ramp's range, do
     * not decrease left to right, and every row is the same (Pillow; OpenCV within 1). */
    int w = 8, h = 6;
    uint8_t img[8 * 6 * 3];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) img[(y * w + x) * 3 + c] = (uint8_t)(20 + 30 * x + c);
    for (int mode = 0; mode < 2; mode++) {
        sn_preprocess p = raw((sn_resize_mode)mode, 1);
        float *o = run(&p, img, w, h);
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < CROP; y++)
                for (int x = 0; x < CROP; x++) {
                    float v = o[c * PLANE + y * CROP + x];
                    cr_assert(v >= 20 + c && v <= 20 + 30 * 7 + c);
                    if (x) cr_assert_geq(v, o[c * PLANE + y * CROP + x - 1]);
                    /* OpenCV's SIMD vertical pass truncates twice: rows may differ by 1 */
                    cr_assert_leq(fabsf(v - o[c * PLANE + x]), mode == 0 ? 1.f : 0.f,
                                  "rows differ (mode %d)", mode);
                }
        /* and it does interpolate: many distinct values, not 8 nearest-neighbour steps */
        int distinct = 1;
        for (int x = 1; x < CROP; x++) distinct += o[x] != o[x - 1];
        cr_assert_gt(distinct, 100, "mode %d: %d distinct values", mode, distinct);
        free(o);
    }
}

Test(preprocess, rejects_bad_arguments) {
    uint8_t *img = random_image(300, 300, 1);
    float *out = malloc(sizeof(float) * 3 * PLANE);
    sn_preprocess p = megvii;
    cr_assert_eq(sn_preprocess_image(&p, NULL, 300, 300, out, err, sizeof err), -1);
    cr_assert_eq(sn_preprocess_image(&p, img, 0, 300, out, err, sizeof err), -1);
    cr_assert_eq(sn_preprocess_image(NULL, img, 300, 300, out, err, sizeof err), -1);
    p.crop = 300; /* larger than resize_short: the crop cannot fit */
    cr_assert_eq(sn_preprocess_image(&p, img, 300, 300, out, err, sizeof err), -1);
    cr_assert(strstr(err, "crop") != NULL, "%s", err);
    p = megvii;
    p.std[1] = 0;
    cr_assert_eq(sn_preprocess_image(&p, img, 300, 300, out, err, sizeof err), -1);
    p = megvii;
    p.resize = (sn_resize_mode)7;
    cr_assert_eq(sn_preprocess_image(&p, img, 300, 300, out, err, sizeof err), -1);
    free(out);
    free(img);
}

/* The AVX2 vertical pass + normalisation and its scalar twin give the same bits on odd
 * lengths, every split point and extreme inputs. */
Test(preprocess, vline_avx2_equals_scalar) {
    if (!sn_rs_have_avx2()) cr_skip_test("no AVX2 on this CPU");
    uint32_t s = 7;
    int32_t a[300], b[300];
    float o1[300], o2[300];
    for (int n = 1; n <= 67; n += 3)
        for (int split = 0; split <= n + 2; split += 1 + n / 7)
            for (int t = 0; t < 4; t++) {
                for (int i = 0; i < n; i++) {
                    s = s * 1664525u + 1013904223u;
                    a[i] = t == 3 ? 255 * 2048 : (int32_t)(s >> 12) % (255 * 2048 + 1);
                    s = s * 1664525u + 1013904223u;
                    b[i] = t == 2 ? 0 : (int32_t)(s >> 12) % (255 * 2048 + 1);
                }
                int w0 = (int)(s % 2049), w1 = 2048 - w0;
                float mean = t & 1 ? 123.675f : 0.f, sd = t & 1 ? 58.395f : 1.f;
                sn_rs_vline_scalar(a, b, n, split, w0, w1, mean, sd, o1);
                sn_rs_vline_avx2(a, b, n, split, w0, w1, mean, sd, o2);
                cr_assert_eq(memcmp(o1, o2, (size_t)n * sizeof(float)), 0, "n %d split %d case %d",
                             n, split, t);
            }
}

/* The pair form of the horizontal pass (sn_rs_pairs + sn_rs_hpair_*) gives the sums of
 * sn_rs_hline_scalar on odd lengths and box widths, right- and left-edge taps (x1 = x0, w1 = 0)
 * and 16-bit extreme weights; the line buffer has exactly the two bytes of padding the
 * contract promises (ASan checks the AVX2 loads stay inside it). Taps it cannot pair are
 * refused. */
Test(preprocess, hpair_equals_hline) {
    uint32_t s = 11;
    int32_t x0[80], x1[80], w0[80], w1[80], ps[80], w01[80];
    int32_t r[3][80], q[3][80], v[3][80];
    for (int bw = 1; bw <= 41; bw += 4)
        for (int n = 1; n <= 67; n += 3) {
            uint8_t *px = malloc((size_t)bw * 3 + 2);
            for (int i = 0; i < bw * 3 + 2; i++)
                px[i] = (uint8_t)((s = s * 1664525u + 1013904223u) >> 24);
            for (int i = 0; i < n; i++) {
                s = s * 1664525u + 1013904223u;
                int a = (int)(s >> 8) % bw, kind = (int)(s >> 4) % 5;
                x0[i] = a, x1[i] = a + 1 < bw ? a + 1 : a;
                w0[i] = (int32_t)(s >> 16) % 2049, w1[i] = 2048 - w0[i];
                if (kind == 0 || x1[i] == a) x1[i] = a, w1[i] = 0; /* a clamped tap */
                if (kind == 1) w0[i] = 0x7fff, w1[i] = x1[i] == a ? 0 : 0x7fff;
            }
            if (bw == 1) {
                cr_assert_eq(sn_rs_pairs(x0, x1, w0, w1, n, bw, ps, w01), 0, "one pixel: no pair");
                free(px);
                continue;
            }
            cr_assert_eq(sn_rs_pairs(x0, x1, w0, w1, n, bw, ps, w01), 1, "bw %d n %d", bw, n);
            sn_rs_hline_scalar(px, 3, x0, x1, w0, w1, n, r[0], r[1], r[2]);
            sn_rs_hpair_scalar(px, ps, w01, n, q[0], q[1], q[2]);
            if (sn_rs_have_avx2())
                sn_rs_hpair_avx2(px, ps, w01, n, v[0], v[1], v[2]);
            else
                memcpy(v, r, sizeof v); /* no AVX2 on this CPU: the scalar twin only */
            for (int c = 0; c < 3; c++) {
                cr_assert_eq(memcmp(r[c], q[c], (size_t)n * 4), 0, "scalar bw %d n %d", bw, n);
                cr_assert_eq(memcmp(r[c], v[c], (size_t)n * 4), 0, "avx2 bw %d n %d", bw, n);
            }
            free(px);
        }
    /* taps two pixels apart, or a negative weight, do not pair */
    int32_t a0[1] = {0}, a1[1] = {2}, b0[1] = {1024}, b1[1] = {1024}, bn[1] = {-1};
    cr_assert_eq(sn_rs_pairs(a0, a1, b0, b1, 1, 5, ps, w01), 0);
    cr_assert_eq(sn_rs_pairs(a0, a0, bn, b1, 1, 5, ps, w01), 0);
}

/* The whole preprocessing gives the same tensor with the AVX2 kernel and without it. */
Test(preprocess, avx2_and_scalar_tensors_agree) {
    if (!sn_rs_have_avx2()) cr_skip_test("no AVX2 on this CPU");
    static const int sizes[][2] = {{451, 300}, {333, 257}, {1001, 75}, {225, 224}, {8, 6}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int w = sizes[k][0], h = sizes[k][1];
        uint8_t *img = random_image(w, h, (uint32_t)k + 3);
        float *a = run(&megvii, img, w, h);
        setenv("SN_NO_AVX2", "1", 1);
        sn_rs_reset_isa();
        float *b = run(&megvii, img, w, h);
        unsetenv("SN_NO_AVX2");
        sn_rs_reset_isa();
        cr_assert(sn_rs_have_avx2());
        cr_assert_eq(memcmp(a, b, sizeof(float) * 3 * PLANE), 0, "%dx%d", w, h);
        free(a), free(b), free(img);
    }
}
