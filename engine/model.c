/* model.c - loading a ShuffleNet v1 model: reads the safetensors file, checks every tensor
 * against the architecture its metadata declares, folds BatchNorm into the convolutions,
 * normalises the shuffle position (docs/DESIGN.md, "Shuffle") and packs the 1x1 weights for the
 * kernels of this CPU. The result is read-only and shared by every engine instance. */
#include "engine/model.h"

#include "engine/safetensors.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BN_EPS 1e-5

typedef struct {
    const sn_st_file *f;
    const char *path;
    char *err;
    size_t errlen;
    int failed;
} loader;

static void fail(loader *L, const char *fmt, ...) {
    if (L->failed) return;
    L->failed = 1;
    char msg[SN_ERRLEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(L->err, L->errlen, "%s: %s", L->path, msg);
}

/* ---- metadata ------------------------------------------------------------------------ */

static const char *meta(loader *L, const char *key, const char *def) {
    const char *v = sn_st_meta(L->f, key);
    if (!v && !def) fail(L, "metadata key '%s' is missing", key);
    return v ? v : def;
}

static int meta_int(loader *L, const char *key, const char *def, int lo, int hi) {
    const char *v = meta(L, key, def);
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi) {
        fail(L, "metadata '%s' = '%s' is not an integer in [%d, %d]", key, v, lo, hi);
        return 0;
    }
    return (int)x;
}

/* Comma-separated list of exactly n numbers. */
static void meta_list(loader *L, const char *key, const char *def, int n, double *out) {
    const char *v = meta(L, key, def);
    if (!v) return;
    const char *p = v;
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtod(p, &end);
        if (end == p || !isfinite(out[i]) || (i < n - 1 && *end != ',') || (i == n - 1 && *end)) {
            fail(L, "metadata '%s' = '%s' is not a list of %d numbers", key, v, n);
            return;
        }
        p = end + 1;
    }
}

static int meta_choice(loader *L, const char *key, const char *def, const char *a, const char *b) {
    const char *v = meta(L, key, def);
    if (!v) return 0;
    if (!strcmp(v, a)) return 0;
    if (!strcmp(v, b)) return 1;
    fail(L, "metadata '%s' = '%s': expected '%s' or '%s'", key, v, a, b);
    return 0;
}

static void read_info(loader *L, sn_model_info *I) {
    const char *fmt = meta(L, "format", NULL);
    if (fmt && strcmp(fmt, "shufflenet-v1"))
        fail(L, "metadata 'format' = '%s': expected 'shufflenet-v1'", fmt);
    I->groups = meta_int(L, "shufflenet.groups", NULL, 1, 64);
    I->stem_channels = meta_int(L, "shufflenet.stem_channels", NULL, 1, 4096);
    I->num_stages = SN_MAX_STAGES;
    double ch[3] = {0}, rep[3] = {0}, mean[3] = {0}, std[3] = {1, 1, 1};
    meta_list(L, "shufflenet.stage_channels", NULL, 3, ch);
    meta_list(L, "shufflenet.stage_repeats", "4,8,4", 3, rep);
    I->num_units = 0;
    for (int s = 0; s < 3; s++) {
        if (ch[s] < 1 || ch[s] > 65536 || ch[s] != floor(ch[s]))
            fail(L, "metadata 'shufflenet.stage_channels': bad value %g", ch[s]);
        if (rep[s] < 1 || rep[s] > 64 || rep[s] != floor(rep[s]))
            fail(L, "metadata 'shufflenet.stage_repeats': bad value %g", rep[s]);
        I->stage_channels[s] = (int)ch[s];
        I->stage_repeats[s] = (int)rep[s];
        I->num_units += (int)rep[s];
    }
    I->num_classes = meta_int(L, "shufflenet.num_classes", NULL, 1, 1000000);
    I->fc_bias = meta_choice(L, "shufflenet.fc_bias", NULL, "false", "true");
    I->order = meta_choice(L, "shufflenet.shuffle_order", NULL, "paper", "megvii")
                   ? SN_SHUFFLE_MEGVII
                   : SN_SHUFFLE_PAPER;
    I->position = meta_choice(L, "shufflenet.shuffle_position", "after_dw", "after_dw", "before_dw")
                      ? SN_SHUFFLE_BEFORE_DW
                      : SN_SHUFFLE_AFTER_DW;
    const char *w = meta(L, "shufflenet.width", "1.0");
    I->width = w ? (float)atof(w) : 1.0f;
    I->synthetic = meta_choice(L, "shufflenet.weights", "trained", "trained", "synthetic");
    snprintf(I->source, sizeof(I->source), "%s", meta(L, "shufflenet.source", "unknown"));
    I->input_size = meta_int(L, "shufflenet.input_size", "224", 32, 4096);

    sn_preprocess *P = &I->pre;
    P->rgb = meta_choice(L, "preprocess.channel_order", "bgr", "bgr", "rgb");
    P->resize =
        meta_choice(L, "preprocess.resize", "opencv_bilinear", "opencv_bilinear", "pillow_bilinear")
            ? SN_RESIZE_PILLOW_BILINEAR
            : SN_RESIZE_OPENCV_BILINEAR;
    P->resize_short = meta_int(L, "preprocess.resize_short", "256", 1, 8192);
    P->long_round = !meta_choice(L, "preprocess.long_side", "round", "round", "floor");
    P->crop = meta_int(L, "preprocess.crop", "224", 1, 8192);
    meta_list(L, "preprocess.mean", "0,0,0", 3, mean);
    meta_list(L, "preprocess.std", "1,1,1", 3, std);
    for (int c = 0; c < 3; c++) {
        if (!(std[c] > 0)) fail(L, "metadata 'preprocess.std' must be positive");
        P->mean[c] = (float)mean[c];
        P->std[c] = (float)std[c];
    }
    if (!L->failed && P->crop != I->input_size)
        fail(L, "preprocess.crop (%d) differs from shufflenet.input_size (%d)", P->crop,
             I->input_size);
    if (!L->failed && P->resize_short < P->crop)
        fail(L, "preprocess.resize_short (%d) is smaller than the crop (%d)", P->resize_short,
             P->crop);
}

/* ---- architecture -------------------------------------------------------------------- */

static int conv_out(int x, int stride) {
    return (x + 2 - 3) / stride + 1; /* 3x3, pad 1 */
}

/* Fills the per-unit geometry and checks every divisibility rule. */
static void plan_units(loader *L, sn_model *M) {
    sn_model_info *I = &M->info;
    int g = I->groups, cin = I->stem_channels;
    int h = conv_out(conv_out(I->input_size, 2), 2); /* stem conv, maxpool */
    M->stem_hw = conv_out(I->input_size, 2);
    M->pool_hw = h;
    int u = 0;
    for (int s = 0; s < 3; s++) {
        int cout = I->stage_channels[s];
        if (cout % 4) fail(L, "stage %d has %d channels, not divisible by 4", s + 2, cout);
        for (int r = 0; r < I->stage_repeats[s]; r++, u++) {
            sn_unit *U = &M->units[u];
            U->stride = r == 0 ? 2 : 1;
            U->cin = cin;
            U->mid = cout / 4;
            U->outs = U->stride == 2 ? cout - cin : cout;
            U->g1 = u == 0 ? 1 : g;
            U->h = h;
            U->ho = conv_out(h, U->stride);
            if (U->stride == 1 && cin != cout)
                fail(L, "unit %d: stride-1 unit with %d in and %d out channels", u, cin, cout);
            if (U->outs <= 0)
                fail(L, "unit %d: stage %d output (%d) must exceed its input (%d)", u, s + 2, cout,
                     cin);
            if (cin % U->g1 || U->mid % U->g1 || U->mid % g || U->outs % g)
                fail(L, "unit %d: channels (in %d, mid %d, out %d) are not divisible by groups %d",
                     u, cin, U->mid, U->outs, g);
            if (L->failed) return;
            h = U->ho;
            cin = cout;
        }
    }
    M->final_hw = h;
    M->final_channels = cin;
}

static void count_cost(sn_model *M) {
    sn_model_info *I = &M->info;
    long long macs = 0, params = 0;
    int s0 = M->stem_hw;
    macs += (long long)I->stem_channels * 27 * s0 * s0;
    params += I->stem_channels * 27 + 2 * I->stem_channels;
    for (int u = 0; u < I->num_units; u++) {
        sn_unit *U = &M->units[u];
        long long hw = (long long)U->h * U->h, ho = (long long)U->ho * U->ho;
        macs += hw * U->mid * (U->cin / U->g1);      /* pw1 */
        macs += ho * U->mid * 9;                     /* dw */
        macs += ho * U->outs * (U->mid / I->groups); /* pw2 */
        params += (long long)U->mid * (U->cin / U->g1) + 2 * U->mid;
        params += (long long)U->mid * 9 + 2 * U->mid;
        params += (long long)U->outs * (U->mid / I->groups) + 2 * U->outs;
    }
    macs += (long long)I->num_classes * M->final_channels;
    params += (long long)I->num_classes * M->final_channels + (I->fc_bias ? I->num_classes : 0);
    I->macs = macs;
    I->params = params;
}

/* dst[c]: where channel c goes in the shuffled tensor (C channels, g groups). */
void sn_shuffle_dst(sn_shuffle_order order, int C, int g, int *dst) {
    int cpg = C / g;
    for (int c = 0; c < C; c++) {
        if (order == SN_SHUFFLE_PAPER) /* out[j*g + i] = in[i*cpg + j] */
            dst[c] = (c % cpg) * g + c / cpg;
        else /* megvii: out[i*cpg + j] = in[j*g + i] */
            dst[c] = (c % g) * cpg + c / g;
    }
}

/* ---- tensors ------------------------------------------------------------------------- */

static const sn_st_tensor *tensor(loader *L, const char *name, int ndim, const int64_t *shape) {
    if (L->failed) return NULL;
    const sn_st_tensor *t = sn_st_find(L->f, name);
    if (!t) {
        fail(L, "tensor '%s' is missing", name);
        return NULL;
    }
    if (t->dtype != SN_DT_F32) {
        fail(L, "tensor '%s' has dtype %s, expected F32", name, t->dtype_name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[96] = "", want[96] = "";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%lld", i ? "," : "",
                     (long long)t->shape[i]);
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", i ? "," : "",
                     (long long)shape[i]);
        fail(L, "tensor '%s' has shape [%s], expected [%s] for the declared architecture", name,
             got, want);
        return NULL;
    }
    const float *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        float v;
        memcpy(&v, p + i, sizeof(v));
        if (!isfinite(v)) {
            fail(L, "tensor '%s' contains NaN or Inf (element %lld)", name, (long long)i);
            return NULL;
        }
    }
    return t;
}

/* Reads conv weight [cout, cin_g, kh, kw] and its BN, writes folded weights (cout x cin_g*kk)
 * and bias. */
static void load_conv_bn(loader *L, const char *conv, const char *bn, int cout, int cin_g, int k,
                         float *w, float *b) {
    char name[128];
    int64_t shp[4] = {cout, cin_g, k, k};
    snprintf(name, sizeof(name), "%s.weight", conv);
    const sn_st_tensor *tw = tensor(L, name, 4, shp);
    const sn_st_tensor *tb[4];
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    int64_t c1[1] = {cout};
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "%s.%s", bn, part[i]);
        tb[i] = tensor(L, name, 1, c1);
    }
    if (L->failed) return;
    size_t per = (size_t)cin_g * k * k;
    sn_st_copy_f32(tw, w);
    float *v = malloc(4 * (size_t)cout * sizeof(float));
    if (!v) {
        fail(L, "out of memory");
        return;
    }
    for (int i = 0; i < 4; i++) sn_st_copy_f32(tb[i], v + (size_t)i * cout);
    for (int c = 0; c < cout; c++) {
        double gamma = v[c], beta = v[cout + c], mean = v[2 * cout + c], var = v[3 * cout + c];
        if (var < 0) {
            fail(L, "%s.running_var[%d] is negative (%g)", bn, c, var);
            break;
        }
        double s = gamma / sqrt(var + BN_EPS);
        for (size_t j = 0; j < per; j++) w[c * per + j] = (float)(w[c * per + j] * s);
        b[c] = (float)(beta - mean * s);
    }
    free(v);
}

/* Bump allocator over one block: all weights of a model live in one allocation. */
static float *take(sn_model *M, size_t nfloats) {
    size_t n = (nfloats + 15) & ~(size_t)15; /* keep 64-byte alignment */
    float *p = M->arena + M->arena_used;
    M->arena_used += n;
    return p;
}

static size_t arena_size(const sn_model *M, const sn_kernels *K) {
    const sn_model_info *I = &M->info;
    size_t n = 0;
#define ADD(x) n += (((size_t)(x) + 15) & ~(size_t)15)
    ADD(I->stem_channels * 27);
    ADD(I->stem_channels);
    for (int u = 0; u < I->num_units; u++) {
        const sn_unit *U = &M->units[u];
        int g = I->groups;
        for (int j = 0; j < U->g1; j++) ADD(K->pw_packed_size(U->mid / U->g1, U->cin / U->g1));
        ADD(U->mid);
        ADD(U->mid * 9);
        ADD(U->mid);
        for (int j = 0; j < g; j++) ADD(K->pw_packed_size(U->outs / g, U->mid / g));
        ADD(U->outs);
        ADD(U->mid); /* dst permutation (ints) */
    }
    ADD((size_t)I->num_classes * M->final_channels);
    ADD(I->num_classes);
#undef ADD
    return n;
}

/* Folds one grouped 1x1 conv + BN and packs each group for the kernels. */
static void load_pw(loader *L, sn_model *M, const char *prefix, int cout, int cin, int groups,
                    float **packed, float **bias, size_t *gstride) {
    char conv[96], bn[96];
    snprintf(conv, sizeof(conv), "%s", prefix);
    snprintf(bn, sizeof(bn), "%s.bn", prefix);
    int cin_g = cin / groups, cout_g = cout / groups;
    float *w = malloc((size_t)cout * cin_g * sizeof(float));
    if (!w) {
        fail(L, "out of memory");
        return;
    }
    *bias = take(M, (size_t)cout);
    load_conv_bn(L, conv, bn, cout, cin_g, 1, w, *bias);
    size_t gs = (M->kernels->pw_packed_size(cout_g, cin_g) + 15) & ~(size_t)15;
    *gstride = gs;
    for (int j = 0; j < groups; j++) {
        float *p = take(M, gs);
        if (!L->failed) M->kernels->pack_pw(w + (size_t)j * cout_g * cin_g, cout_g, cin_g, p);
        if (j == 0) *packed = p;
    }
    free(w);
}

static int is_bn_part(const char *p) {
    return !strcmp(p, "weight") || !strcmp(p, "bias") || !strcmp(p, "running_mean") ||
           !strcmp(p, "running_var");
}

/* Whether name is one of the tensors the declared architecture expects. */
static int expected_name(const sn_model *M, const char *name) {
    if (!strcmp(name, "stem.conv.weight") || !strcmp(name, "fc.weight")) return 1;
    if (!strcmp(name, "fc.bias")) return M->info.fc_bias;
    if (!strncmp(name, "stem.bn.", 8)) return is_bn_part(name + 8);
    int u, len = 0;
    if (sscanf(name, "units.%d.%n", &u, &len) != 1 || !len || u < 0 || u >= M->info.num_units)
        return 0;
    const char *rest = name + len;
    static const char *layer[3] = {"pw1.", "dw.", "pw2."};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(layer[i]);
        if (strncmp(rest, layer[i], l)) continue;
        if (!strcmp(rest + l, "weight")) return 1;
        return !strncmp(rest + l, "bn.", 3) && is_bn_part(rest + l + 3);
    }
    return 0;
}

static void check_no_extra(loader *L, const sn_model *M) {
    if (L->failed) return;
    for (int i = 0; i < L->f->ntensors; i++)
        if (!expected_name(M, L->f->tensors[i].name)) {
            fail(L, "unexpected tensor '%s' for the declared architecture", L->f->tensors[i].name);
            return;
        }
}

/* Builds the model from an opened file; name is used in messages. Closes f. */
static sn_model *load_from(sn_st_file *fp, const char *path, char *err, size_t errlen) {
    sn_st_file f = *fp;
    loader L = {&f, path, err, errlen, 0};
    sn_model *M = calloc(1, sizeof(*M));
    if (!M) {
        sn_st_close(&f);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    M->kernels = sn_kernels_get();
    sn_model_info *I = &M->info;
    read_info(&L, I);
    if (!L.failed) {
        M->units = calloc((size_t)I->num_units, sizeof(sn_unit));
        if (!M->units) fail(&L, "out of memory");
    }
    if (!L.failed) plan_units(&L, M);
    if (!L.failed && M->final_hw < 1) fail(&L, "input size %d is too small", I->input_size);
    if (!L.failed) {
        count_cost(M);
        M->arena_floats = arena_size(M, M->kernels);
        if (posix_memalign((void **)&M->arena, 64, M->arena_floats * sizeof(float)))
            fail(&L, "out of memory (%zu MB of weights)", M->arena_floats * 4 >> 20);
    }
    if (!L.failed) {
        M->stem_w = take(M, (size_t)I->stem_channels * 27);
        M->stem_b = take(M, (size_t)I->stem_channels);
        load_conv_bn(&L, "stem.conv", "stem.bn", I->stem_channels, 3, 3, M->stem_w, M->stem_b);
    }
    int g = I->groups;
    for (int u = 0; u < I->num_units && !L.failed; u++) {
        sn_unit *U = &M->units[u];
        char p[64], c[80], b[80];
        snprintf(p, sizeof(p), "units.%d.pw1", u);
        load_pw(&L, M, p, U->mid, U->cin, U->g1, &U->pw1_w, &U->pw1_b, &U->pw1_gs);
        U->dw_b = take(M, (size_t)U->mid);
        U->dw_w = take(M, (size_t)U->mid * 9);
        snprintf(c, sizeof(c), "units.%d.dw", u);
        snprintf(b, sizeof(b), "units.%d.dw.bn", u);
        load_conv_bn(&L, c, b, U->mid, 1, 3, U->dw_w, U->dw_b);
        snprintf(p, sizeof(p), "units.%d.pw2", u);
        load_pw(&L, M, p, U->outs, U->mid, g, &U->pw2_w, &U->pw2_b, &U->pw2_gs);
        U->dst = (int *)take(M, (size_t)U->mid);
        sn_shuffle_dst(I->order, U->mid, g, U->dst);
        if (I->position == SN_SHUFFLE_BEFORE_DW && !L.failed) {
            /* The file's depthwise channel k acts on shuffled channel k. We shuffle after the
             * depthwise conv instead, so our channel c needs the file's channel dst[c]. */
            float *tw = malloc((size_t)U->mid * 10 * sizeof(float));
            if (!tw) {
                fail(&L, "out of memory");
                break;
            }
            memcpy(tw, U->dw_w, (size_t)U->mid * 9 * sizeof(float));
            memcpy(tw + (size_t)U->mid * 9, U->dw_b, (size_t)U->mid * sizeof(float));
            for (int ch = 0; ch < U->mid; ch++) {
                memcpy(U->dw_w + ch * 9, tw + (size_t)U->dst[ch] * 9, 9 * sizeof(float));
                U->dw_b[ch] = tw[(size_t)U->mid * 9 + U->dst[ch]];
            }
            free(tw);
        }
    }
    if (!L.failed) {
        int64_t shp[2] = {I->num_classes, M->final_channels}, bs[1] = {I->num_classes};
        M->fc_w = take(M, (size_t)I->num_classes * M->final_channels);
        const sn_st_tensor *t = tensor(&L, "fc.weight", 2, shp);
        if (t) sn_st_copy_f32(t, M->fc_w);
        if (I->fc_bias) {
            M->fc_b = take(M, (size_t)I->num_classes);
            t = tensor(&L, "fc.bias", 1, bs);
            if (t) sn_st_copy_f32(t, M->fc_b);
        }
    }
    check_no_extra(&L, M); /* after the loads, so a missing tensor is named first */
    sn_st_close(&f);
    if (L.failed) {
        sn_model_free(M);
        return NULL;
    }
    return M;
}

sn_model *sn_model_load(const char *path, char *err, size_t errlen) {
    char e0[SN_ERRLEN];
    sn_st_file f;
    if (sn_st_open(path, &f, e0, sizeof(e0))) {
        snprintf(err, errlen, "%s", e0);
        return NULL;
    }
    return load_from(&f, path, err, errlen);
}

sn_model *sn_model_load_memory(const uint8_t *buf, size_t len, const char *name, char *err,
                               size_t errlen) {
    char e0[SN_ERRLEN];
    sn_st_file f;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    memcpy(copy, buf, len);
    if (sn_st_parse(copy, len, &f, e0, sizeof(e0))) {
        snprintf(err, errlen, "%s: %s", name, e0);
        return NULL;
    }
    return load_from(&f, name, err, errlen);
}

const sn_model_info *sn_model_info_of(const sn_model *m) {
    return &m->info;
}

void sn_model_free(sn_model *m) {
    if (!m) return;
    free(m->arena);
    free(m->units);
    free(m);
}
