/* shufflenet.c - the `shufflenet` command-line tool: engine jobs without the server.
 *
 *   shufflenet classify  full pipeline on image files, top-k labels
 *   shufflenet run       preprocessed .npy in, logits .npy out
 *   shufflenet preprocess  image files -> the preprocessed .npy that `run` takes
 *   shufflenet info      architecture, MACs, params, weights origin of a model
 *   shufflenet synth     deterministic synthetic weights for any configuration
 *   shufflenet convert   PyTorch checkpoint -> model file (no torch needed)
 *   shufflenet bench     engine speed (see tools/bench.c)
 *
 * Exit status: 0 success, 1 a runtime failure (e.g. an image that does not decode), 2 bad
 * usage or a bad model file. Every error is one line on stderr. */
#include "tools/cli.h"
#include "common/input.h"
#include "common/labels.h"
#include "common/modelinfo.h"
#include "tools/npy.h"
#include "engine/shufflenet.h"
#include "engine/synth.h"
#include "engine/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- classify ------------------------------------------------------------------------ */

static void usage_classify(FILE *o) {
    fprintf(o,
            "usage: shufflenet classify --model FILE [--top-k K] [--json] [--max-pixels N] "
            "[--preprocess fast|exact] IMAGE...\n"
            "  Decodes each JPEG/PNG (EXIF orientation applied), preprocesses it as the model's\n"
            "  metadata says, runs the network and prints the top-k classes with index,\n"
            "  WordNet id, label and softmax probability.\n"
            "  --top-k K        classes per image (default 5)\n"
            "  --json           JSON array of {file, width, height, top_k: [{index, wnid,\n"
            "                   label, score}]} (the objects the service returns)\n"
            "  --max-pixels N   refuse images over N pixels before decoding (default 40000000)\n"
            "  --preprocess M   fast (default): JPEGs decoded at the cheapest DCT scale that\n"
            "                   still covers the crop; exact: full-resolution decode, the model's\n"
            "                   reference pixels (docs/request-path.md)\n"
            "  Labels: config/imagenet-classes.tsv (or $SHUFFLENET_LABELS).\n");
}

static int cmd_classify(int argc, char **argv) {
    const char *model = NULL;
    int topk = 5, json = 0;
    sn_input_opts opts = {.max_pixels = 40000000};
    const char **files = calloc((size_t)argc, sizeof(char *));
    int nfiles = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (sn_cli_is_help(argv[i])) {
            usage_classify(stdout);
            free(files);
            return 0;
        } else if ((v = sn_cli_opt(argc, argv, &i, "--model")))
            model = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--top-k")))
            topk = (int)sn_cli_int("--top-k", v, 1, 1000000);
        else if ((v = sn_cli_opt(argc, argv, &i, "--max-pixels")))
            opts.max_pixels = sn_cli_int("--max-pixels", v, 1, 1L << 40);
        else if ((v = sn_cli_opt(argc, argv, &i, "--preprocess"))) {
            if (sn_pre_mode_parse(v, &opts.mode) < 0) {
                fprintf(stderr, "shufflenet classify: --preprocess must be fast or exact\n");
                free(files);
                return 2;
            }
        } else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "shufflenet classify: unknown option %s (see --help)\n", argv[i]);
            free(files);
            return 2;
        } else
            files[nfiles++] = argv[i];
    }
    if (!nfiles) {
        fprintf(stderr, "shufflenet classify: no image given (see --help)\n");
        free(files);
        return 2;
    }
    sn_model *m = sn_cli_load_model(model);
    const sn_model_info *I = sn_model_info_of(m);
    char err[SN_ERRLEN];
    sn_labels labels;
    if (sn_labels_load_default(&labels, err, sizeof(err))) {
        fprintf(stderr, "shufflenet: %s\n", err);
        return 2;
    }
    if (labels.count != I->num_classes) {
        fprintf(stderr, "shufflenet: the model has %d classes but the label file has %d\n",
                I->num_classes, labels.count);
        return 2;
    }
    if (topk > I->num_classes) topk = I->num_classes;
    sn_engine *e = sn_engine_create(m, 1, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "shufflenet: %s\n", err);
        return 2;
    }
    size_t isz = (size_t)3 * I->input_size * I->input_size;
    float *input = malloc(isz * sizeof(float));
    float *logits = malloc((size_t)I->num_classes * sizeof(float));
    int *idx = malloc((size_t)topk * sizeof(int));
    json_t *all = json_array();
    int status = 0;
    for (int f = 0; f < nfiles; f++) {
        size_t len = 0;
        uint8_t *data = sn_read_file(files[f], SN_CLI_MAX_FILE, &len, err, sizeof(err));
        sn_input_info img = {0};
        char e2[200];
        if (data &&
            sn_input_from_bytes(&I->pre, &opts, data, len, input, &img, e2, sizeof e2) != SN_IMG_OK)
            snprintf(err, sizeof(err), "%s: %s", files[f], e2);
        else if (data)
            err[0] = 0;
        free(data);
        if (!data || err[0]) {
            fprintf(stderr, "shufflenet: %s\n", err);
            status = 1;
            continue;
        }
        sn_engine_run(e, input, 1, logits);
        sn_softmax(logits, I->num_classes);
        sn_topk(logits, I->num_classes, topk, idx);
        json_t *res = json_array();
        if (!json) printf("%s (%dx%d)\n", files[f], img.width, img.height);
        for (int k = 0; k < topk; k++) {
            int c = idx[k];
            if (json)
                json_array_append_new(res, json_pack("{s:i, s:s, s:s, s:f}", "index", c, "wnid",
                                                     labels.wnid[c], "label", labels.label[c],
                                                     "score", (double)logits[c]));
            else
                printf("  %d. %4d %s %-30s %.4f\n", k + 1, c, labels.wnid[c], labels.label[c],
                       logits[c]);
        }
        if (json)
            json_array_append_new(all, json_pack("{s:s, s:i, s:i, s:o}", "file", files[f], "width",
                                                 img.width, "height", img.height, "top_k", res));
        else
            json_decref(res);
    }
    if (json) {
        /* 7 significant digits, as the server prints them: the same float, the same text */
        char *s = json_dumps(all, JSON_INDENT(2) | JSON_REAL_PRECISION(7));
        if (s) puts(s);
        free(s);
    }
    json_decref(all);
    free(input);
    free(logits);
    free(idx);
    free(files);
    sn_engine_free(e);
    sn_model_free(m);
    sn_labels_free(&labels);
    return status;
}

/* ---- run ----------------------------------------------------------------------------- */

static void usage_run(FILE *o) {
    fprintf(o, "usage: shufflenet run --model FILE --input IN.npy --output OUT.npy [--batch B]\n"
               "  IN.npy: float32 [N,3,S,S], already preprocessed (S = the model's input size).\n"
               "  OUT.npy: float32 [N,classes] logits (before softmax).\n"
               "  --batch B   images per engine call (default: all N, at most 64)\n");
}

static int cmd_run(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL;
    int batch = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (sn_cli_is_help(argv[i])) {
            usage_run(stdout);
            return 0;
        } else if ((v = sn_cli_opt(argc, argv, &i, "--model")))
            model = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--input")))
            in = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--output")))
            out = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--batch")))
            batch = (int)sn_cli_int("--batch", v, 1, 4096);
        else {
            fprintf(stderr, "shufflenet run: unknown argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "shufflenet run: --input and --output are required (see --help)\n");
        return 2;
    }
    sn_model *m = sn_cli_load_model(model);
    const sn_model_info *I = sn_model_info_of(m);
    char err[SN_ERRLEN];
    float *x = NULL;
    int64_t shape[8];
    int ndim = 0;
    if (sn_npy_read(in, &x, shape, &ndim, err, sizeof(err))) {
        fprintf(stderr, "shufflenet: %s\n", err);
        sn_model_free(m);
        return 2;
    }
    int S = I->input_size;
    if (ndim != 4 || shape[1] != 3 || shape[2] != S || shape[3] != S || shape[0] < 1) {
        fprintf(stderr, "shufflenet: %s: expected shape [N,3,%d,%d]\n", in, S, S);
        free(x);
        sn_model_free(m);
        return 2;
    }
    int n = (int)shape[0];
    if (!batch) batch = n < 64 ? n : 64;
    sn_engine *e = sn_engine_create(m, batch, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "shufflenet: %s\n", err);
        free(x);
        sn_model_free(m);
        return 2;
    }
    float *logits = malloc((size_t)n * I->num_classes * sizeof(float));
    for (int i = 0; i < n; i += batch) {
        int nb = n - i < batch ? n - i : batch;
        sn_engine_run(e, x + (size_t)i * 3 * S * S, nb, logits + (size_t)i * I->num_classes);
    }
    int64_t oshape[2] = {n, I->num_classes};
    int rc = 0;
    if (sn_npy_write(out, logits, oshape, 2, err, sizeof(err))) {
        fprintf(stderr, "shufflenet: %s\n", err);
        rc = 1;
    }
    free(logits);
    free(x);
    sn_engine_free(e);
    sn_model_free(m);
    return rc;
}

/* ---- preprocess ---------------------------------------------------------------------- */

static int cmd_preprocess(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    sn_input_opts opts = {.max_pixels = 40000000};
    int nfiles = 0;
    char **files = calloc((size_t)argc, sizeof *files);
    for (int i = 1; files && i < argc; i++) {
        const char *v;
        if (sn_cli_is_help(argv[i])) {
            printf("usage: shufflenet preprocess --model FILE [--max-pixels N] "
                   "[--preprocess fast|exact] IMAGE... -o X.npy\n"
                   "  Decodes and preprocesses each JPEG/PNG as the model's metadata says (the\n"
                   "  same path as classify and the service) and writes float32 [N,3,S,S] .npy:\n"
                   "  the input of `shufflenet run` and of the v2 API's FP32 \"input\".\n");
            free(files);
            return 0;
        } else if ((v = sn_cli_opt(argc, argv, &i, "--model")))
            model = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "-o")) ||
                 (v = sn_cli_opt(argc, argv, &i, "--output")))
            out = v;
        else if ((v = sn_cli_opt(argc, argv, &i, "--max-pixels")))
            opts.max_pixels = sn_cli_int("--max-pixels", v, 1, 1L << 40);
        else if ((v = sn_cli_opt(argc, argv, &i, "--preprocess"))) {
            if (sn_pre_mode_parse(v, &opts.mode) < 0) {
                fprintf(stderr, "shufflenet preprocess: --preprocess must be fast or exact\n");
                free(files);
                return 2;
            }
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "shufflenet preprocess: unknown option %s (see --help)\n", argv[i]);
            free(files);
            return 2;
        } else
            files[nfiles++] = argv[i];
    }
    if (!files || !nfiles || !out) {
        fprintf(stderr, "shufflenet preprocess: give IMAGE... and -o X.npy (see --help)\n");
        free(files);
        return 2;
    }
    sn_model *m = sn_cli_load_model(model);
    const sn_model_info *I = sn_model_info_of(m);
    size_t isz = (size_t)3 * I->input_size * I->input_size;
    float *x = malloc((size_t)nfiles * isz * sizeof *x);
    int rc = x ? 0 : 1;
    char err[SN_ERRLEN], e2[200];
    for (int f = 0; f < nfiles && rc == 0; f++) {
        size_t len = 0;
        uint8_t *data = sn_read_file(files[f], SN_CLI_MAX_FILE, &len, err, sizeof err);
        if (!data) {
            fprintf(stderr, "shufflenet: %s\n", err);
            rc = 1;
        } else if (sn_input_from_bytes(&I->pre, &opts, data, len, x + (size_t)f * isz, NULL, e2,
                                       sizeof e2) != SN_IMG_OK) {
            fprintf(stderr, "shufflenet: %s: %s\n", files[f], e2);
            rc = 1;
        }
        free(data);
    }
    int64_t shape[4] = {nfiles, 3, I->input_size, I->input_size};
    if (rc == 0 && sn_npy_write(out, x, shape, 4, err, sizeof err)) {
        fprintf(stderr, "shufflenet: %s\n", err);
        rc = 1;
    }
    free(x);
    free(files);
    sn_model_free(m);
    return rc;
}

/* ---- info ---------------------------------------------------------------------------- */

static int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (sn_cli_is_help(argv[i])) {
            printf("usage: shufflenet info [--json] MODEL\n"
                   "  Architecture, groups, width, channels, MACs, params, shuffle convention,\n"
                   "  preprocessing and weights origin of a model file.\n");
            return 0;
        } else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else {
            fprintf(stderr, "shufflenet info: unexpected argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "shufflenet info: no model given (see --help)\n");
        return 2;
    }
    sn_model *m = sn_cli_load_model(path);
    json_t *j = sn_model_info_json(sn_model_info_of(m));
    if (json) {
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
        puts(s);
        free(s);
    } else {
        const sn_model_info *I = sn_model_info_of(m);
        printf("model:          %s\n", path);
        printf("architecture:   ShuffleNet v1, groups %d, width %g\n", I->groups, I->width);
        printf("channels:       stem %d, stages %d/%d/%d, repeats %d/%d/%d, classes %d\n",
               I->stem_channels, I->stage_channels[0], I->stage_channels[1], I->stage_channels[2],
               I->stage_repeats[0], I->stage_repeats[1], I->stage_repeats[2], I->num_classes);
        printf("MACs:           %.2f M (convs + FC, BN folded, %dx%d input)\n", I->macs / 1e6,
               I->input_size, I->input_size);
        printf("params:         %lld\n", I->params);
        printf("shuffle:        %s order, %s the depthwise conv (in the file)\n",
               I->order == SN_SHUFFLE_MEGVII ? "megvii" : "paper",
               I->position == SN_SHUFFLE_BEFORE_DW ? "before" : "after");
        printf("fc bias:        %s\n", I->fc_bias ? "yes" : "no");
        printf("weights:        %s (%s)\n", I->synthetic ? "synthetic" : "trained", I->source);
        printf("preprocess:     %s, %s resize short side to %d (long side %s), crop %d,\n"
               "                mean %g,%g,%g std %g,%g,%g (0..255 scale)\n",
               I->pre.rgb ? "RGB" : "BGR",
               I->pre.resize == SN_RESIZE_PILLOW_BILINEAR ? "Pillow bilinear" : "OpenCV bilinear",
               I->pre.resize_short, I->pre.long_round ? "rounded" : "floored", I->pre.crop,
               I->pre.mean[0], I->pre.mean[1], I->pre.mean[2], I->pre.std[0], I->pre.std[1],
               I->pre.std[2]);
        printf("kernels:        %s\n", sn_isa_name());
    }
    json_decref(j);
    sn_model_free(m);
    return 0;
}

/* ---- synth --------------------------------------------------------------------------- */

static int cmd_synth(int argc, char **argv) {
    int g = 3;
    double width = 1.0;
    unsigned long long seed = 1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (sn_cli_is_help(argv[i])) {
            printf("usage: shufflenet synth --groups G [--width W] [--seed S] -o FILE\n"
                   "  Deterministic synthetic weights (same seed, same file). Channels: stem 24;\n"
                   "  stage widths = make_divisible(Table1[g] * W, 4g) with Table 1 of the paper\n"
                   "  at 1x (g1 144/288/576, g2 200/400/800, g3 240/480/960, g4 272/544/1088,\n"
                   "  g8 384/768/1536); make_divisible rounds to the nearest multiple (ties up),\n"
                   "  at least one multiple, plus one if rounding lost over 10%%. Paper shuffle\n"
                   "  order before the depthwise conv, FC with bias, BGR 0..255 preprocessing.\n"
                   "  The file is marked \"weights\": \"synthetic\".\n");
            return 0;
        } else if ((v = sn_cli_opt(argc, argv, &i, "--groups")))
            g = (int)sn_cli_int("--groups", v, 1, 64);
        else if ((v = sn_cli_opt(argc, argv, &i, "--width"))) {
            char *end;
            width = strtod(v, &end);
            if (end == v || *end || !(width > 0 && width <= 8)) {
                fprintf(stderr, "shufflenet synth: --width must be a number in (0, 8]\n");
                return 2;
            }
        } else if ((v = sn_cli_opt(argc, argv, &i, "--seed")))
            seed = (unsigned long long)sn_cli_int("--seed", v, 0, 0x7fffffffffffffffL);
        else if ((v = sn_cli_opt(argc, argv, &i, "-o")) ||
                 (v = sn_cli_opt(argc, argv, &i, "--output")))
            out = v;
        else {
            fprintf(stderr, "shufflenet synth: unknown argument %s (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "shufflenet synth: -o FILE is required\n");
        return 2;
    }
    char err[SN_ERRLEN];
    if (sn_synth_model(g, width, seed, out, err, sizeof(err))) {
        fprintf(stderr, "shufflenet synth: %s\n", err);
        return 2;
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(FILE *o) {
    fprintf(o, "usage: shufflenet COMMAND [ARGS]   (shufflenet COMMAND --help for details)\n"
               "  classify   classify image files (JPEG/PNG) with a model\n"
               "  run        run preprocessed .npy input to .npy logits\n"
               "  preprocess images to the preprocessed .npy input (what run takes)\n"
               "  info       describe a model file\n"
               "  synth      write deterministic synthetic weights\n"
               "  convert    convert a PyTorch checkpoint (megvii / mmpretrain) to a model file\n"
               "  bench      measure engine speed\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (sn_cli_is_help(c)) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "classify")) return cmd_classify(argc - 1, argv + 1);
    if (!strcmp(c, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(c, "preprocess")) return cmd_preprocess(argc - 1, argv + 1);
    if (!strcmp(c, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(c, "synth")) return cmd_synth(argc - 1, argv + 1);
    if (!strcmp(c, "convert")) return sn_cmd_convert(argc - 1, argv + 1);
    if (!strcmp(c, "bench")) return sn_cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "shufflenet: unknown command '%s'\n", c);
    usage(stderr);
    return 2;
}
