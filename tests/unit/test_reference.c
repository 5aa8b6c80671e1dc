/* test_reference.c - end to end on the real checkpoints in ../shared/models: convert each
 * fixture (legacy .pth.tar, zip .pth, mmpretrain layout), run the exact reference inputs and
 * compare with the reference logits (1e-4 x max|logit|, same top-5); then the whole image
 * pipeline (decode, preprocess, run) on real photos and edge cases. Skips when ../shared is
 * absent. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/convert.h"
#include "common/input.h"
#include "tools/npy.h"
#include "engine/util.h"
#include "tests/unit/shared.h"
#include "engine/shufflenet.h"

static const char *shared_dir(void) {
    return sn_test_shared_dir();
}

/* Skips the test when ../shared is absent. */
static void need_shared(void) {
    sn_test_shared("models/megvii-shufflenet-v1-g3-0.5x.pth.tar");
}

/* Converts ../shared/models/<ckpt> into a temp file and loads it. */
static sn_model *convert_and_load(const char *ckpt, char *tmp, size_t tmplen) {
    char in[512], err[256];
    snprintf(in, sizeof(in), "%s/models/%s", shared_dir(), ckpt);
    snprintf(tmp, tmplen, "/tmp/sn_ref_%d_%s.safetensors", (int)getpid(), ckpt);
    cr_assert_eq(sn_convert_checkpoint(in, tmp, NULL, NULL, err, sizeof(err)), 0, "%s", err);
    sn_model *m = sn_model_load(tmp, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    return m;
}

static void top5(const float *x, int n, int *idx) {
    sn_topk(x, n, 5, idx);
}

static void check_logits(sn_model *m, const char *input, const char *logits, const char *what) {
    char err[256];
    float *x, *ref;
    int64_t sx[8], sr[8];
    int nx, nr;
    cr_assert_eq(sn_npy_read(input, &x, sx, &nx, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(sn_npy_read(logits, &ref, sr, &nr, err, sizeof(err)), 0, "%s", err);
    const sn_model_info *I = sn_model_info_of(m);
    cr_assert_eq(sr[nr - 1], I->num_classes);
    sn_engine *e = sn_engine_create(m, 1, err, sizeof(err));
    cr_assert_not_null(e, "%s", err);
    float *out = malloc((size_t)I->num_classes * sizeof(float));
    cr_assert_eq(sn_engine_run(e, x, 1, out), 0);
    double mx = 0, d = 0;
    for (int k = 0; k < I->num_classes; k++) {
        mx = fmax(mx, fabs(ref[k]));
        d = fmax(d, fabs(ref[k] - out[k]));
    }
    int a[5], b[5];
    top5(out, I->num_classes, a);
    top5(ref, I->num_classes, b);
    printf("%s: max |dlogit| %.3g (%.3g of max |logit|), top-1 %d\n", what, d, d / mx, a[0]);
    cr_assert(d <= 1e-4 * mx, "%s: max |d| %g > 1e-4 x %g", what, d, mx);
    for (int k = 0; k < 5; k++) cr_assert_eq(a[k], b[k], "%s: top-5 differs at %d", what, k);
    free(out);
    free(x);
    free(ref);
    sn_engine_free(e);
}

static void check_megvii(const char *ckpt, const char *refdir) {
    need_shared();
    char tmp[512];
    sn_model *m = convert_and_load(ckpt, tmp, sizeof(tmp));
    static const char *inputs[3] = {"chelsea", "coffee", "synthetic"};
    for (int i = 0; i < 3; i++) {
        char in[512], lg[512], what[128];
        snprintf(in, sizeof(in), "%s/models/reference/%s/%s_input_nchw_bgr0-255.npy", shared_dir(),
                 refdir, inputs[i]);
        snprintf(lg, sizeof(lg), "%s/models/reference/%s/%s_logits.npy", shared_dir(), refdir,
                 inputs[i]);
        snprintf(what, sizeof(what), "%s %s", ckpt, inputs[i]);
        check_logits(m, in, lg, what);
    }
    sn_model_free(m);
    unlink(tmp);
}

Test(reference, megvii_g3_legacy) {
    check_megvii("megvii-shufflenet-v1-g3-0.5x.pth.tar", "megvii-g3-0.5x");
}
Test(reference, megvii_g3_zip) {
    check_megvii("megvii-shufflenet-v1-g3-0.5x.zip.pth", "megvii-g3-0.5x");
}
Test(reference, megvii_g8_legacy) {
    check_megvii("megvii-shufflenet-v1-g8-0.5x.pth.tar", "megvii-g8-0.5x");
}

Test(reference, mmpretrain_layout) {
    need_shared();
    char tmp[512], in[512], lg[512];
    sn_model *m = convert_and_load("mmpretrain-layout-g3-0.5x-synthetic.pth", tmp, sizeof(tmp));
    const sn_model_info *I = sn_model_info_of(m);
    cr_assert(I->fc_bias && I->order == SN_SHUFFLE_PAPER && I->pre.rgb);
    snprintf(in, sizeof(in), "%s/models/reference/mmpretrain-g3-0.5x-synthetic/input.npy",
             shared_dir());
    snprintf(lg, sizeof(lg), "%s/models/reference/mmpretrain-g3-0.5x-synthetic/logits.npy",
             shared_dir());
    check_logits(m, in, lg, "mmpretrain-layout");
    sn_model_free(m);
    unlink(tmp);
}

/* ---- the image pipeline ------------------------------------------------------------------ */

/* Top-5 of one image file through decode + preprocess + engine. Returns the decode status. */
static sn_image_status classify(sn_model *m, sn_engine *e, const char *file, int *idx) {
    char path[512], err[256];
    snprintf(path, sizeof(path), "%s/images/%s", shared_dir(), file);
    size_t len;
    uint8_t *buf = sn_read_file(path, 0, &len, err, sizeof err);
    cr_assert_not_null(buf, "%s", err);
    const sn_model_info *I = sn_model_info_of(m);
    float *x = malloc(3 * (size_t)I->input_size * I->input_size * sizeof(float));
    float *l = malloc((size_t)I->num_classes * sizeof(float));
    sn_input_opts o = {.max_pixels = 40000000};
    sn_image_status st = sn_input_from_bytes(&I->pre, &o, buf, len, x, NULL, err, sizeof err);
    free(buf);
    if (st == SN_IMG_OK) {
        sn_engine_run(e, x, 1, l);
        sn_topk(l, I->num_classes, 5, idx);
    }
    free(x);
    free(l);
    return st;
}

static int is_cat(int c) {
    return c >= 281 && c <= 285;
}

Test(reference, classify_images_g3) {
    need_shared();
    char tmp[512], err[256];
    sn_model *m = convert_and_load("megvii-shufflenet-v1-g3-0.5x.pth.tar", tmp, sizeof(tmp));
    sn_engine *e = sn_engine_create(m, 1, err, sizeof(err));
    int t[5];
    cr_assert_eq(classify(m, e, "skimage_chelsea.png", t), SN_IMG_OK);
    cr_assert(is_cat(t[0]), "chelsea top-1 %d", t[0]);
    cr_assert_eq(classify(m, e, "skimage_coffee.png", t), SN_IMG_OK);
    cr_assert_eq(t[0], 967, "coffee top-1 %d", t[0]);
    cr_assert_eq(classify(m, e, "edge_exif6_coffee.jpg", t), SN_IMG_OK);
    cr_assert_eq(t[0], 967, "EXIF-rotated coffee top-1 %d (orientation not applied?)", t[0]);
    cr_assert_eq(classify(m, e, "edge_cmyk_chelsea.jpg", t), SN_IMG_OK);
    cr_assert(is_cat(t[0]), "CMYK chelsea top-1 %d", t[0]);
    static const char *cat_variants[] = {"caffe_cat.jpg", "edge_progressive_caffe_cat.jpg",
                                         "edge_arithmetic_caffe_cat.jpg",
                                         "edge_444_restart_caffe_cat.jpg"};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(classify(m, e, cat_variants[i], t), SN_IMG_OK, "%s", cat_variants[i]);
        int cat = 0;
        for (int k = 0; k < 5; k++) cat |= is_cat(t[k]);
        cr_assert(cat, "%s: no cat class in the top-5", cat_variants[i]);
    }
    static const char *ok[] = {"caffe_cat_gray.jpg",          "edge_rgba_chelsea.png",
                               "edge_tiny_8x6_caffe_cat.jpg", "skimage_camera.png",
                               "opencv_chicky_512.png",       "edge_huge_6000x4000_coffee.jpg"};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(classify(m, e, ok[i], t), SN_IMG_OK, "%s does not classify", ok[i]);
    cr_assert_eq(classify(m, e, "edge_huge_6000x4000_coffee.jpg", t), SN_IMG_OK);
    cr_assert_eq(t[0], 967, "huge coffee top-1 %d", t[0]);
    cr_assert_eq(classify(m, e, "edge_bomb_12000x12000_gray.jpg", t), SN_IMG_TOO_LARGE);
    cr_assert_eq(classify(m, e, "skimage_truncated.jpg", t), SN_IMG_INVALID);
    sn_engine_free(e);
    sn_model_free(m);
    unlink(tmp);
}

/* ---- exact mode against the reference ------------------------------------------------------ */

/* The exact-mode tensor of the photos the reference inputs were made from (OpenCV imread +
 * cv2.resize INTER_LINEAR + crop, BGR 0..255) is the reference input, bit for bit. */
Test(reference, exact_mode_tensors_are_the_reference_inputs) {
    need_shared();
    static const char *pairs[][2] = {{"skimage_chelsea.png", "chelsea"},
                                     {"skimage_coffee.png", "coffee"}};
    const sn_preprocess megvii = {0, SN_RESIZE_OPENCV_BILINEAR, 256, 1, 224, {0, 0, 0}, {1, 1, 1}};
    float *x = malloc(3 * 224 * 224 * sizeof(float));
    for (int i = 0; i < 2; i++) {
        char path[512], err[256];
        snprintf(path, sizeof path, "%s/images/%s", shared_dir(), pairs[i][0]);
        size_t len;
        uint8_t *buf = sn_read_file(path, 0, &len, err, sizeof err);
        cr_assert_not_null(buf, "%s", err);
        sn_input_opts o = {.max_pixels = 40000000, .mode = SN_PRE_EXACT};
        cr_assert_eq(sn_input_from_bytes(&megvii, &o, buf, len, x, NULL, err, sizeof err),
                     SN_IMG_OK, "%s", err);
        free(buf);
        snprintf(path, sizeof path, "%s/models/reference/megvii-g3-0.5x/%s_input_nchw_bgr0-255.npy",
                 shared_dir(), pairs[i][1]);
        float *ref;
        int64_t shape[8];
        int nd;
        cr_assert_eq(sn_npy_read(path, &ref, shape, &nd, err, sizeof err), 0, "%s", err);
        cr_assert_eq(memcmp(x, ref, 3 * 224 * 224 * sizeof(float)), 0,
                     "%s: exact-mode tensor differs from the reference input", pairs[i][0]);
        free(ref);
    }
    free(x);
}

/* Exact mode gives every decodable photo the g3 top-1 that ../shared/images/README.md lists
 * (OpenCV preprocessing), and the edge cases that have one theirs. */
Test(reference, exact_mode_reference_top1) {
    need_shared();
    static const struct {
        const char *file;
        int top1;
    } want[] = {
        {"skimage_chelsea.png", 285},
        {"skimage_coffee.png", 967},
        {"skimage_motorcycle_left.png", 665},
        {"skimage_camera.png", 872},
        {"skimage_rocket.jpg", 668},
        {"opencv_squirrel_cls.jpg", 335},
        {"opencv_orange.jpg", 951},
        {"opencv_fruits.jpg", 951},
        {"opencv_messi5.jpg", 768},
        {"opencv_chicky_512.png", 255},
        {"opencv_baboon.jpg", 88},
        {"opencv_butterfly.jpg", 459},
        {"matplotlib_grace_hopper.jpg", 457},
        {"sklearn_china.jpg", 663},
        {"caffe_cat.jpg", 277},
        {"qengineering_cat.jpg", 281},
        {"qengineering_vulture.jpg", 21},
        {"edge_exif6_coffee.jpg", 967},
        {"edge_cmyk_chelsea.jpg", 285},
        {"edge_huge_6000x4000_coffee.jpg", 967},
        {"edge_progressive_caffe_cat.jpg", 277},
        {"edge_arithmetic_caffe_cat.jpg", 277},
        {"edge_rgba_chelsea.png", 285},
    };
    char tmp[512], err[256];
    sn_model *m = convert_and_load("megvii-shufflenet-v1-g3-0.5x.pth.tar", tmp, sizeof(tmp));
    sn_engine *e = sn_engine_create(m, 1, err, sizeof(err));
    const sn_model_info *I = sn_model_info_of(m);
    float *x = malloc(3 * 224 * 224 * sizeof(float)), *l = malloc(1000 * sizeof(float));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/images/%s", shared_dir(), want[i].file);
        size_t len;
        uint8_t *buf = sn_read_file(path, 0, &len, err, sizeof err);
        cr_assert_not_null(buf, "%s", err);
        sn_input_opts o = {.max_pixels = 40000000, .mode = SN_PRE_EXACT};
        cr_assert_eq(sn_input_from_bytes(&I->pre, &o, buf, len, x, NULL, err, sizeof err),
                     SN_IMG_OK, "%s: %s", want[i].file, err);
        free(buf);
        sn_engine_run(e, x, 1, l);
        int t;
        sn_topk(l, 1000, 1, &t);
        cr_assert_eq(t, want[i].top1, "%s: exact-mode top-1 %d, the reference's %d", want[i].file,
                     t, want[i].top1);
    }
    free(x);
    free(l);
    sn_engine_free(e);
    sn_model_free(m);
    unlink(tmp);
}
