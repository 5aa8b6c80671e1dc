/* test_convert.c - the converter (tools/convert.c) on the shared fixtures: against their
 * reference key lists and raw bytes, loaded in the engine, options, and corrupt copies.
 * Hand-written checkpoints are in test_checkpoint.c. */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/safetensors.h"
#include "engine/shufflenet.h"
#include "tests/unit/convert_util.h"
#include "tests/unit/shared.h"
#include "tools/convert.h"
#include "tools/pickle.h"
#include "tools/zip.h"

/* ---- the shared fixtures ------------------------------------------------------------- */

/* keys.txt: every float32 key with its shape must be in the converted file, nothing else;
 * the learnable parameter count in its header line must match; a few tensors must be
 * byte-identical to data inside the checkpoint file. */
static void check_megvii(const char *models, const char *ckpt, const char *ref, int g,
                         const char *stem, const char *chans) {
    char *in = path_in(models, ckpt);
    char keys[600];
    snprintf(keys, sizeof keys, "%s/reference/%s/keys.txt", models, ref);
    const char *out = tmp("megvii.safetensors");
    sn_convert_summary sum;
    convert_ok(in, out, NULL, &sum);
    cr_expect_str_eq(sum.layout, "megvii");
    cr_expect_eq(sum.groups, g);

    sn_st_file f;
    char err[256];
    cr_assert_eq(sn_st_open(out, &f, err, sizeof err), 0, "%s", err);
    FILE *kf = fopen(keys, "r");
    cr_assert_not_null(kf, "%s", keys);
    char line[512];
    long long want_params = -1, params = 0;
    int nfloat = 0;
    while (fgets(line, sizeof line, kf)) {
        char key[200], shape[100], dtype[40], name[200];
        if (sscanf(line, " tensors %*d learnable params (no BN running stats) %lld",
                   &want_params) == 1)
            continue;
        cr_assert_eq(sscanf(line, " %199s", key), 1, "%s", line);
        if (!megvii_canonical(key, name, sizeof name)) continue;
        cr_assert_eq(sscanf(line, " %*s (%99[^)]) %39s", shape, dtype), 2, "%s", line);
        cr_expect_str_eq(dtype, "torch.float32");
        nfloat++;
        const sn_st_tensor *t = sn_st_find(&f, name);
        cr_assert_not_null(t, "%s (%s) missing from the converted file", name, key);
        char got[100] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld%s", d ? " " : "",
                     (long long)t->shape[d], d == 0 || d + 1 < t->ndim ? "," : "");
        cr_expect_str_eq(got, shape, "%s: shape (%s), keys.txt (%s)", name, got, shape);
        if (!is_running_stat(name)) params += t->numel;
    }
    fclose(kf);
    cr_expect_eq(f.ntensors, nfloat, "converted file has %d tensors, keys.txt %d float32",
                 f.ntensors, nfloat);
    cr_expect_eq(params, want_params);

    expect_meta(&f, "format", "shufflenet-v1");
    char v[16];
    snprintf(v, sizeof v, "%d", g);
    expect_meta(&f, "shufflenet.groups", v);
    expect_meta(&f, "shufflenet.stem_channels", stem);
    expect_meta(&f, "shufflenet.stage_channels", chans);
    expect_meta(&f, "shufflenet.stage_repeats", "4,8,4");
    expect_meta(&f, "shufflenet.num_classes", "1000");
    expect_meta(&f, "shufflenet.fc_bias", "false");
    expect_meta(&f, "shufflenet.shuffle_order", "megvii");
    expect_meta(&f, "shufflenet.shuffle_position", "after_dw");
    expect_meta(&f, "shufflenet.width", "0.5");
    expect_meta(&f, "shufflenet.weights", "trained");
    expect_meta(&f, "shufflenet.input_size", "224");
    expect_meta(&f, "preprocess.channel_order", "bgr");
    expect_meta(&f, "preprocess.resize", "opencv_bilinear");
    expect_meta(&f, "preprocess.resize_short", "256");
    expect_meta(&f, "preprocess.long_side", "round");
    expect_meta(&f, "preprocess.crop", "224");
    expect_meta(&f, "preprocess.mean", "0,0,0");
    expect_meta(&f, "preprocess.std", "1,1,1");
    const char *src = sn_st_meta(&f, "shufflenet.source");
    cr_expect(src && strstr(src, ckpt), "source '%s'", src ? src : "");

    size_t rawlen;
    uint8_t *raw = slurp(in, &rawlen);
    const char *probe[] = {"stem.conv.weight",   "stem.bn.running_var", "units.0.pw2.weight",
                           "units.7.dw.bn.bias", "units.15.pw1.weight", "fc.weight"};
    for (size_t i = 0; i < sizeof probe / sizeof *probe; i++) {
        const sn_st_tensor *t = sn_st_find(&f, probe[i]);
        cr_assert_not_null(t, "%s", probe[i]);
        cr_expect(memmem(raw, rawlen, t->data, t->nbytes) != NULL,
                  "%s: bytes not found in the checkpoint", probe[i]);
    }
    free(raw);
    sn_st_close(&f);
    free(in);
}

Test(convert, megvii_fixtures) {
    const char *models = models_dir();
    make_tmpdir();
    check_megvii(models, "megvii-shufflenet-v1-g3-0.5x.pth.tar", "megvii-g3-0.5x", 3, "12",
                 "120,240,480");
    check_megvii(models, "megvii-shufflenet-v1-g8-0.5x.pth.tar", "megvii-g8-0.5x", 8, "16",
                 "192,384,768");
    remove_tmpdir();
}

/* The legacy and zip copies of the g=3 weights convert to the same tensors. */
Test(convert, legacy_and_zip_identical) {
    const char *models = models_dir();
    make_tmpdir();
    char *a = path_in(models, "megvii-shufflenet-v1-g3-0.5x.pth.tar");
    char *b = path_in(models, "megvii-shufflenet-v1-g3-0.5x.zip.pth");
    sn_convert_summary sa, sb;
    convert_ok(a, tmp("a.safetensors"), NULL, &sa);
    convert_ok(b, tmp("b.safetensors"), NULL, &sb);
    cr_expect_str_eq(sa.container, "legacy");
    cr_expect_str_eq(sb.container, "zip");
    sn_st_file fa, fb;
    char err[256];
    cr_assert_eq(sn_st_open(tmp("a.safetensors"), &fa, err, sizeof err), 0, "%s", err);
    cr_assert_eq(sn_st_open(tmp("b.safetensors"), &fb, err, sizeof err), 0, "%s", err);
    cr_assert_eq(fa.ntensors, fb.ntensors);
    for (int i = 0; i < fa.ntensors; i++) {
        const sn_st_tensor *x = &fa.tensors[i], *y = sn_st_find(&fb, x->name);
        cr_assert_not_null(y, "%s", x->name);
        cr_expect_eq(x->ndim, y->ndim);
        cr_expect_eq(memcmp(x->shape, y->shape, sizeof x->shape), 0, "%s", x->name);
        cr_expect(x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes), "%s differs",
                  x->name);
    }
    cr_assert_eq(fa.nmeta, fb.nmeta);
    for (int i = 0; i < fa.nmeta; i++) {
        if (!strcmp(fa.meta_keys[i], "shufflenet.source")) continue;
        expect_meta(&fb, fa.meta_keys[i], fa.meta_vals[i]);
    }
    sn_st_close(&fa);
    sn_st_close(&fb);
    free(a);
    free(b);
    remove_tmpdir();
}

Test(convert, mmpretrain_fixture) {
    const char *models = models_dir();
    make_tmpdir();
    char *in = path_in(models, "mmpretrain-layout-g3-0.5x-synthetic.pth");
    char *megvii = path_in(models, "megvii-shufflenet-v1-g3-0.5x.pth.tar");
    char *refjson = path_in(models, "reference/mmpretrain-g3-0.5x-synthetic/reference.json");
    sn_convert_summary sum;
    convert_ok(in, tmp("mm.safetensors"), NULL, &sum);
    convert_ok(megvii, tmp("mv.safetensors"), NULL, NULL);
    cr_expect_str_eq(sum.layout, "mmpretrain");
    cr_expect_eq(sum.synthetic, 1);

    json_error_t jerr;
    json_t *ref = json_load_file(refjson, 0, &jerr);
    cr_assert_not_null(ref, "%s", jerr.text);
    json_t *arch = json_object_get(ref, "arch");
    char v[64];
    sn_st_file f, m;
    char err[256];
    cr_assert_eq(sn_st_open(tmp("mm.safetensors"), &f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(sn_st_open(tmp("mv.safetensors"), &m, err, sizeof err), 0, "%s", err);
    snprintf(v, sizeof v, "%lld", json_integer_value(json_object_get(arch, "groups")));
    expect_meta(&f, "shufflenet.groups", v);
    snprintf(v, sizeof v, "%lld", json_integer_value(json_object_get(arch, "stem_channels")));
    expect_meta(&f, "shufflenet.stem_channels", v);
    json_t *ch = json_object_get(arch, "stage_channels"),
           *rp = json_object_get(arch, "stage_repeats");
    snprintf(v, sizeof v, "%lld,%lld,%lld", json_integer_value(json_array_get(ch, 0)),
             json_integer_value(json_array_get(ch, 1)), json_integer_value(json_array_get(ch, 2)));
    expect_meta(&f, "shufflenet.stage_channels", v);
    snprintf(v, sizeof v, "%lld,%lld,%lld", json_integer_value(json_array_get(rp, 0)),
             json_integer_value(json_array_get(rp, 1)), json_integer_value(json_array_get(rp, 2)));
    expect_meta(&f, "shufflenet.stage_repeats", v);
    expect_meta(&f, "shufflenet.fc_bias",
                json_is_true(json_object_get(ref, "fc_bias")) ? "true" : "false");
    expect_meta(&f, "shufflenet.weights", "synthetic");
    expect_meta(&f, "shufflenet.shuffle_order", "paper");
    expect_meta(&f, "shufflenet.shuffle_position", "after_dw");
    expect_meta(&f, "shufflenet.width", "0.5");
    expect_meta(&f, "preprocess.channel_order", "rgb");
    expect_meta(&f, "preprocess.resize", "pillow_bilinear");
    expect_meta(&f, "preprocess.long_side", "floor");
    expect_meta(&f, "preprocess.resize_short", "256");
    expect_meta(&f, "preprocess.crop", "224");
    expect_meta(&f, "preprocess.mean", "123.675,116.28,103.53");
    expect_meta(&f, "preprocess.std", "58.395,57.12,57.375");

    /* "Same tensor shapes as megvii's 0.5x g=3 except head.fc.bias" */
    cr_expect_eq(f.ntensors, m.ntensors + 1);
    long long params = 0;
    for (int i = 0; i < f.ntensors; i++) {
        const sn_st_tensor *t = &f.tensors[i], *u = sn_st_find(&m, t->name);
        if (!is_running_stat(t->name)) params += t->numel;
        if (!strcmp(t->name, "fc.bias")) {
            cr_expect(t->ndim == 1 && t->shape[0] == 1000);
            continue;
        }
        cr_assert_not_null(u, "%s not in the megvii g3 file", t->name);
        cr_expect(t->ndim == u->ndim && !memcmp(t->shape, u->shape, sizeof t->shape), "%s",
                  t->name);
    }
    cr_expect_eq(params, json_integer_value(json_object_get(ref, "params_learnable")));

    size_t rawlen;
    uint8_t *raw = slurp(in, &rawlen);
    const char *probe[] = {"stem.bn.weight", "units.4.pw1.weight", "units.15.pw2.bn.running_mean",
                           "fc.weight", "fc.bias"};
    for (size_t i = 0; i < sizeof probe / sizeof *probe; i++) {
        const sn_st_tensor *t = sn_st_find(&f, probe[i]);
        cr_assert_not_null(t, "%s", probe[i]);
        cr_expect(memmem(raw, rawlen, t->data, t->nbytes) != NULL, "%s", probe[i]);
    }
    free(raw);
    json_decref(ref);
    sn_st_close(&f);
    sn_st_close(&m);
    free(in);
    free(megvii);
    free(refjson);
    remove_tmpdir();
}

/* The converted files load in the engine with the architecture the converter reported. */
Test(convert, loads_in_engine) {
    const char *models = models_dir();
    make_tmpdir();
    const char *names[] = {"megvii-shufflenet-v1-g8-0.5x.pth.tar",
                           "mmpretrain-layout-g3-0.5x-synthetic.pth"};
    for (int k = 0; k < 2; k++) {
        char *in = path_in(models, names[k]);
        sn_convert_summary s;
        convert_ok(in, tmp("e.safetensors"), NULL, &s);
        char err[SN_ERRLEN];
        sn_model *m = sn_model_load(tmp("e.safetensors"), err, sizeof err);
        cr_assert_not_null(m, "%s", err);
        const sn_model_info *I = sn_model_info_of(m);
        cr_expect_eq(I->groups, s.groups);
        cr_expect_eq(I->stem_channels, s.stem_channels);
        for (int i = 0; i < 3; i++) {
            cr_expect_eq(I->stage_channels[i], s.stage_channels[i]);
            cr_expect_eq(I->stage_repeats[i], s.stage_repeats[i]);
        }
        cr_expect_eq(I->fc_bias, s.fc_bias);
        cr_expect_eq(I->synthetic, s.synthetic);
        cr_expect_eq(I->order, k == 0 ? SN_SHUFFLE_MEGVII : SN_SHUFFLE_PAPER);
        cr_expect_eq(I->pre.rgb, k == 1);
        sn_model_free(m);
        free(in);
    }
    remove_tmpdir();
}

Test(convert, options_override_the_preset) {
    const char *models = models_dir();
    make_tmpdir();
    char *in = path_in(models, "megvii-shufflenet-v1-g3-0.5x.zip.pth");
    sn_convert_opts o = {.preset = "mmpretrain",
                         .synthetic = 1,
                         .crop = 192,
                         .mean = "1,2,3.5",
                         .source = "test source"};
    convert_ok(in, tmp("o.safetensors"), &o, NULL);
    sn_st_file f;
    char err[256];
    cr_assert_eq(sn_st_open(tmp("o.safetensors"), &f, err, sizeof err), 0, "%s", err);
    expect_meta(&f, "preprocess.channel_order", "rgb");
    expect_meta(&f, "preprocess.resize", "pillow_bilinear");
    expect_meta(&f, "preprocess.long_side", "floor");
    expect_meta(&f, "preprocess.std", "58.395,57.12,57.375");
    expect_meta(&f, "preprocess.mean", "1,2,3.5");
    expect_meta(&f, "preprocess.crop", "192");
    expect_meta(&f, "shufflenet.input_size", "192");
    expect_meta(&f, "shufflenet.weights", "synthetic");
    expect_meta(&f, "shufflenet.source", "test source");
    expect_meta(&f, "shufflenet.shuffle_order", "megvii"); /* the order follows the layout */
    sn_st_close(&f);

    sn_convert_opts o2 = {.shuffle_order = "paper",
                          .channel_order = "rgb",
                          .long_side = "floor",
                          .resize = "pillow_bilinear",
                          .resize_short = 300,
                          .std = "2,2,2"};
    convert_ok(in, tmp("o2.safetensors"), &o2, NULL);
    cr_assert_eq(sn_st_open(tmp("o2.safetensors"), &f, err, sizeof err), 0, "%s", err);
    expect_meta(&f, "shufflenet.shuffle_order", "paper");
    expect_meta(&f, "preprocess.channel_order", "rgb");
    expect_meta(&f, "preprocess.resize_short", "300");
    expect_meta(&f, "preprocess.mean", "0,0,0");
    expect_meta(&f, "preprocess.std", "2,2,2");
    sn_st_close(&f);

    sn_convert_opts bad[] = {{.preset = "torchvision"},
                             {.mean = "1,2"},
                             {.mean = "1,2,3,4"},
                             {.std = "1,0,1"},
                             {.std = "a,b,c"},
                             {.crop = 16},
                             {.crop = 288},
                             {.channel_order = "grb"},
                             {.resize = "nearest"},
                             {.long_side = "ceil"},
                             {.shuffle_order = "random"}};
    const char *want[] = {
        "preset 'torchvision'", "mean '1,2'",       "mean '1,2,3,4'",        "std '1,0,1'",
        "std 'a,b,c'",          "crop 16",          "resize_short 256",      "channel order 'grb'",
        "resize 'nearest'",     "long side 'ceil'", "shuffle order 'random'"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) convert_fails(in, &bad[i], want[i]);
    free(in);
    remove_tmpdir();
}

Test(convert, corrupt_fixture_files) {
    const char *models = models_dir();
    make_tmpdir();
    const char *names[] = {"megvii-shufflenet-v1-g3-0.5x.pth.tar",
                           "megvii-shufflenet-v1-g3-0.5x.zip.pth"};
    for (int k = 0; k < 2; k++) {
        char *in = path_in(models, names[k]);
        size_t len;
        uint8_t *raw = slurp(in, &len);
        /* truncations: every one fails with a message, in memory and through the files */
        for (int i = 0; i < 120; i++) {
            size_t cut = i < 100 ? (size_t)i * (len / 100) : len - 1 - (size_t)(i - 100) * 7;
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, raw, cut);
            sn_pt_checkpoint ck;
            char err[256] = "";
            cr_expect_eq(sn_pt_parse(copy, cut, &ck, err, sizeof err), -1, "%s cut at %zu",
                         names[k], cut);
            cr_expect(err[0], "no message for a cut at %zu", cut);
        }
        spit(tmp("trunc.pth"), raw, len / 2);
        convert_fails(tmp("trunc.pth"), NULL, k == 0 ? "truncated" : "end of central directory");

        /* a flipped bit in tensor data: the zip CRC catches it */
        if (k == 1) {
            uint8_t *copy = malloc(len);
            memcpy(copy, raw, len);
            sn_pt_checkpoint ck;
            char err[256];
            cr_assert_eq(sn_pt_parse(copy, len, &ck, err, sizeof err), 0, "%s", err);
            size_t at = (size_t)(ck.tensors[6].data - ck.buf) + 5;
            sn_pt_free(&ck);
            raw[at] ^= 0x10;
            spit(tmp("flip.pth"), raw, len);
            convert_fails(tmp("flip.pth"), NULL, "CRC mismatch");
            raw[at] ^= 0x10;
        }
        /* random damage to the legacy object pickle: never a crash, an error or a clean
         * result (in the zip file the CRC would catch it before the VM runs) */
        uint32_t seed = 12345;
        for (int i = 0; k == 0 && i < 300; i++) {
            uint8_t *copy = malloc(len);
            memcpy(copy, raw, len);
            for (int j = 0; j < 4; j++) {
                seed = seed * 1664525u + 1013904223u;
                size_t pos = 137 + seed % 52000;
                copy[pos] = (uint8_t)(seed >> 24);
            }
            sn_pt_checkpoint ck;
            char err[256] = "";
            if (sn_pt_parse(copy, len, &ck, err, sizeof err) == 0)
                sn_pt_free(&ck);
            else
                cr_expect(err[0], "damaged input failed without a message");
        }
        free(raw);
        free(in);
    }
    uint8_t noise[4096];
    uint32_t seed = 99;
    for (size_t i = 0; i < sizeof noise; i++) {
        seed = seed * 1664525u + 1013904223u;
        noise[i] = (uint8_t)(seed >> 24);
    }
    spit(tmp("noise.pth"), noise, sizeof noise);
    convert_fails(tmp("noise.pth"), NULL, "not a PyTorch checkpoint");
    spit(tmp("empty.pth"), "", 0);
    convert_fails(tmp("empty.pth"), NULL, "not a PyTorch checkpoint");
    memcpy(noise, "PK\x03\x04", 4);
    spit(tmp("pk.pth"), noise, sizeof noise);
    convert_fails(tmp("pk.pth"), NULL, "zip: end of central directory not found");
    convert_fails(tmp("missing.pth"), NULL, "No such file");
    remove_tmpdir();
}
