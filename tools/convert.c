/* convert.c - PyTorch ShuffleNet v1 checkpoint -> safetensors model file (see convert.h).
 *
 * Steps: read the checkpoint (tools/pickle.c), map every state-dict key of the detected
 * layout onto a slot of the canonical network, infer and check the architecture from the
 * shapes, then write the tensors and the metadata with the safetensors writer. */
#include "tools/convert.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/pickle.h"
#include "engine/safetensors.h"

#define MAX_STAGE_UNITS 64
#define MAX_UNITS       (3 * MAX_STAGE_UNITS)

enum { LAYOUT_MEGVII, LAYOUT_MMPRETRAIN };
static const char *layout_names[] = {"megvii", "mmpretrain"};

/* BN parameters in file order; num_batches_tracked is read and dropped. */
static const char *bn_names[4] = {"weight", "bias", "running_mean", "running_var"};

typedef const sn_pt_tensor *tref;
typedef struct {
    tref w, bn[4];
} conv_bn;

typedef struct {
    conv_bn pw1, dw, pw2;
    int present;
} unit_slots;

typedef struct {
    conv_bn stem;
    unit_slots units[MAX_UNITS]; /* megvii: index N; mmpretrain: S * MAX_STAGE_UNITS + U */
    tref fc_w, fc_b;
} slots;

typedef struct {
    const sn_pt_checkpoint *ck;
    int layout;
    slots s;
    unit_slots *u[MAX_UNITS]; /* the units in network order */
    int pos[MAX_UNITS];       /* mmpretrain: index of the unit within its stage */
    int nunits;
    int groups, stem, stage_ch[3], stage_rep[3], classes;
    char *err;
    size_t errlen;
    const char *path;
} conv;

static int cfail(conv *c, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errlen, "%s: %s", c->path, msg);
    return -1;
}

/* ---- key parsing --------------------------------------------------------------------- */

static int lit(const char **p, const char *s) {
    size_t n = strlen(s);
    if (strncmp(*p, s, n) != 0) return 0;
    *p += n;
    return 1;
}

/* A decimal index below lim (no sign, no leading zeros). */
static int num(const char **p, int lim, int *v) {
    const char *q = *p;
    if (*q < '0' || *q > '9' || (q[0] == '0' && q[1] >= '0' && q[1] <= '9')) return 0;
    long x = 0;
    while (*q >= '0' && *q <= '9') {
        x = x * 10 + (*q++ - '0');
        if (x >= lim) return 0;
    }
    *v = (int)x;
    *p = q;
    return 1;
}

/* Rest is "weight" (conv) -> &cb->w, or a BN parameter -> &cb->bn[i]. is_bn picks which.
 * Returns the slot, or NULL; *skip is set for num_batches_tracked. */
static tref *param_slot(conv_bn *cb, const char *rest, int is_bn, int *skip) {
    if (!is_bn) return strcmp(rest, "weight") == 0 ? &cb->w : NULL;
    for (int i = 0; i < 4; i++)
        if (strcmp(rest, bn_names[i]) == 0) return &cb->bn[i];
    if (strcmp(rest, "num_batches_tracked") == 0) *skip = 1;
    return NULL;
}

static tref *megvii_slot(slots *s, const char *k, int *skip) {
    const char *p = k;
    int n, m;
    if (lit(&p, "first_conv.0.")) return param_slot(&s->stem, p, 0, skip);
    if (lit(&p, "first_conv.1.")) return param_slot(&s->stem, p, 1, skip);
    if (lit(&p, "classifier.0."))
        return !strcmp(p, "weight") ? &s->fc_w : !strcmp(p, "bias") ? &s->fc_b : NULL;
    if (!lit(&p, "features.") || !num(&p, MAX_UNITS, &n)) return NULL;
    unit_slots *u = &s->units[n];
    u->present = 1;
    if (lit(&p, ".branch_main_1.") && num(&p, 10, &m) && lit(&p, ".")) {
        if (m == 0) return param_slot(&u->pw1, p, 0, skip);
        if (m == 1) return param_slot(&u->pw1, p, 1, skip);
        if (m == 3) return param_slot(&u->dw, p, 0, skip);
        if (m == 4) return param_slot(&u->dw, p, 1, skip);
    } else if (lit(&p, ".branch_main_2.") && num(&p, 10, &m) && lit(&p, ".")) {
        if (m == 0) return param_slot(&u->pw2, p, 0, skip);
        if (m == 1) return param_slot(&u->pw2, p, 1, skip);
    }
    return NULL;
}

static tref *mmpretrain_slot(slots *s, const char *k, int *skip) {
    const char *p = k;
    int st, n;
    if (lit(&p, "backbone.conv1.conv.")) return param_slot(&s->stem, p, 0, skip);
    if (lit(&p, "backbone.conv1.bn.")) return param_slot(&s->stem, p, 1, skip);
    if (lit(&p, "head.fc."))
        return !strcmp(p, "weight") ? &s->fc_w : !strcmp(p, "bias") ? &s->fc_b : NULL;
    if (!lit(&p, "backbone.layers.") || !num(&p, 3, &st) || !lit(&p, ".") ||
        !num(&p, MAX_STAGE_UNITS, &n) || !lit(&p, "."))
        return NULL;
    unit_slots *u = &s->units[st * MAX_STAGE_UNITS + n];
    u->present = 1;
    conv_bn *cb = lit(&p, "g_conv_1x1_compress.")    ? &u->pw1
                  : lit(&p, "depthwise_conv3x3_bn.") ? &u->dw
                  : lit(&p, "g_conv_1x1_expand.")    ? &u->pw2
                                                     : NULL;
    if (!cb) return NULL;
    if (lit(&p, "conv.")) return param_slot(cb, p, 0, skip);
    if (lit(&p, "bn.")) return param_slot(cb, p, 1, skip);
    return NULL;
}

static const char *strip_module(const char *k) {
    return strncmp(k, "module.", 7) == 0 ? k + 7 : k;
}

static int assign_slots(conv *c) {
    const sn_pt_checkpoint *ck = c->ck;
    int mv = 0, mm = 0;
    for (int i = 0; i < ck->ntensors; i++) {
        const char *k = strip_module(ck->tensors[i].name);
        mv |= !strcmp(k, "first_conv.0.weight");
        mm |= !strcmp(k, "backbone.conv1.conv.weight");
    }
    if (mv == mm)
        return cfail(c,
                     "%s: expected megvii keys (first_conv.0.weight, "
                     "features.N.branch_main_1.0.weight, ..., classifier.0.weight) or "
                     "mmpretrain keys (backbone.conv1.conv.weight, "
                     "backbone.layers.S.U.g_conv_1x1_compress.conv.weight, ..., "
                     "head.fc.weight)",
                     mv ? "both megvii and mmpretrain keys" : "no known key layout");
    c->layout = mv ? LAYOUT_MEGVII : LAYOUT_MMPRETRAIN;
    for (int i = 0; i < ck->ntensors; i++) {
        const sn_pt_tensor *t = &ck->tensors[i];
        const char *k = strip_module(t->name);
        int skip = 0;
        tref *slot = c->layout == LAYOUT_MEGVII ? megvii_slot(&c->s, k, &skip)
                                                : mmpretrain_slot(&c->s, k, &skip);
        if (skip) continue;
        if (!slot)
            return cfail(c, "unexpected key '%.100s' for the %s layout", t->name,
                         layout_names[c->layout]);
        if (*slot) return cfail(c, "duplicate key '%.100s'", t->name);
        if (t->dtype != SN_PT_F32)
            return cfail(c, "tensor '%.100s' is %s; only float32 weights are supported", t->name,
                         sn_pt_dtype_name(t->dtype));
        *slot = t;
    }
    return 0;
}

/* ---- architecture -------------------------------------------------------------------- */

/* Part j (0 pw1, 1 dw, 2 pw2) of unit n, with its canonical weight name and BN prefix. */
static const conv_bn *unit_part(const unit_slots *u, int j, int n, char *wname, size_t wl,
                                char *bnbase, size_t bl) {
    static const char *parts[3] = {"pw1", "dw", "pw2"};
    snprintf(wname, wl, "units.%d.%s.weight", n, parts[j]);
    snprintf(bnbase, bl, "units.%d.%s.bn", n, parts[j]);
    return j == 0 ? &u->pw1 : j == 1 ? &u->dw : &u->pw2;
}

static int check_shape(conv *c, tref t, const char *name, int ndim, const int64_t *shape) {
    if (!t) return cfail(c, "tensor for '%s' is missing", name);
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (ok) return 0;
    char want[96] = "", got[96] = "";
    for (int d = 0; d < ndim; d++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "",
                 (long long)shape[d]);
    for (int d = 0; d < t->ndim; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "",
                 (long long)t->shape[d]);
    return cfail(c, "'%.100s' (%s) has shape [%s], expected [%s]", t->name, name, got, want);
}

/* Check a conv weight [cout, cin, k, k] (canonical name wname) and its BN vectors [cout]
 * (canonical names bnbase.*). */
static int check_conv_bn(conv *c, const conv_bn *cb, const char *wname, const char *bnbase,
                         int64_t cout, int64_t cin, int64_t k) {
    char name[64];
    int64_t w[4] = {cout, cin, k, k};
    if (check_shape(c, cb->w, wname, 4, w) != 0) return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bnbase, bn_names[i]);
        if (check_shape(c, cb->bn[i], name, 1, &cout) != 0) return -1;
    }
    return 0;
}

/* A conv weight whose leading dimension fixes the channel count, checked for rank 4. */
static int lead_dim(conv *c, tref t, const char *name, int64_t *out) {
    if (!t) return cfail(c, "tensor for '%s' is missing", name);
    if (t->ndim != 4 || t->shape[0] < 1 || t->shape[0] > 65536 || t->shape[1] < 1)
        return cfail(c, "'%.100s' (%s) is not a conv weight", t->name, name);
    *out = t->shape[0];
    return 0;
}

static int order_units(conv *c) {
    if (c->layout == LAYOUT_MEGVII) {
        while (c->nunits < MAX_UNITS && c->s.units[c->nunits].present)
            c->u[c->nunits] = &c->s.units[c->nunits], c->nunits++;
        for (int n = c->nunits; n < MAX_UNITS; n++)
            if (c->s.units[n].present)
                return cfail(c, "features.%d present but features.%d missing", n, c->nunits);
        return 0;
    }
    for (int st = 0; st < 3; st++) {
        int n = 0;
        unit_slots *base = &c->s.units[st * MAX_STAGE_UNITS];
        for (; n < MAX_STAGE_UNITS && base[n].present; n++) {
            c->pos[c->nunits] = n;
            c->u[c->nunits++] = &base[n];
        }
        for (int m = n; m < MAX_STAGE_UNITS; m++)
            if (base[m].present)
                return cfail(c, "backbone.layers.%d.%d present but backbone.layers.%d.%d missing",
                             st, m, st, n);
        if (n == 0) return cfail(c, "backbone.layers.%d is missing", st);
        c->stage_rep[st] = n;
    }
    return 0;
}

static int infer_arch(conv *c) {
    char name[64];
    int64_t c0, cin, mid, outs;
    if (order_units(c) != 0) return -1;
    if (c->nunits == 0) return cfail(c, "no units found");
    if (lead_dim(c, c->s.stem.w, "stem.conv.weight", &c0) != 0 ||
        check_conv_bn(c, &c->s.stem, "stem.conv.weight", "stem.bn", c0, 3, 3) != 0)
        return -1;
    c->stem = (int)c0;
    c->groups = 0;
    cin = c0;
    int stage = -1, rep[3] = {0};
    for (int n = 0; n < c->nunits; n++) {
        unit_slots *u = c->u[n];
        snprintf(name, sizeof name, "units.%d.pw1.weight", n);
        if (lead_dim(c, u->pw1.w, name, &mid) != 0) return -1;
        snprintf(name, sizeof name, "units.%d.pw2.weight", n);
        if (lead_dim(c, u->pw2.w, name, &outs) != 0) return -1;
        int64_t per = u->pw2.w->shape[1];
        if (mid % per)
            return cfail(c,
                         "units.%d: pw2 takes %lld channels per group, which does "
                         "not divide the %lld bottleneck channels",
                         n, (long long)per, (long long)mid);
        int g = (int)(mid / per);
        if (c->groups && g != c->groups)
            return cfail(c, "units.%d has groups %d, earlier units %d", n, g, c->groups);
        c->groups = g;
        /* stride 1 ('add'): outs == cin == 4*mid; stride 2 ('concat'): cin + outs == 4*mid */
        int concat;
        if (n > 0 && outs == cin && 4 * mid == cin)
            concat = 0;
        else if (4 * mid == cin + outs)
            concat = 1;
        else
            return cfail(c,
                         "units.%d: channels (in %lld, bottleneck %lld, out %lld) fit neither "
                         "a stride-1 nor a stride-2 unit",
                         n, (long long)cin, (long long)mid, (long long)outs);
        if (concat) {
            if (++stage >= 3) return cfail(c, "more than 3 stride-2 units (stages)");
            c->stage_ch[stage] = (int)(cin + outs);
        }
        rep[stage]++;
        if (c->layout == LAYOUT_MMPRETRAIN && concat != (c->pos[n] == 0))
            return cfail(c,
                         "units.%d: channel counts make it a stride-%d unit, but it is unit %d "
                         "of its stage in backbone.layers",
                         n, concat ? 2 : 1, c->pos[n]);

        int g1 = n == 0 ? 1 : g;
        if (cin % g1 || mid % g || outs % g)
            return cfail(c,
                         "units.%d: channels (in %lld, bottleneck %lld, out %lld) are not "
                         "divisible by groups %d",
                         n, (long long)cin, (long long)mid, (long long)outs, g);
        if (n == 0 && u->pw1.w->shape[1] != cin)
            return cfail(c,
                         "units.0: the first 1x1 conv must be ungrouped (%lld input channels, "
                         "weight takes %lld)",
                         (long long)cin, (long long)u->pw1.w->shape[1]);
        int64_t co[3] = {mid, mid, outs}, ci[3] = {cin / g1, 1, mid / g}, k[3] = {1, 3, 1};
        for (int j = 0; j < 3; j++) {
            char bn[32];
            const conv_bn *cb = unit_part(u, j, n, name, sizeof name, bn, sizeof bn);
            if (check_conv_bn(c, cb, name, bn, co[j], ci[j], k[j]) != 0) return -1;
        }
        cin = concat ? cin + outs : cin;
    }
    if (stage != 2) return cfail(c, "found %d stages (stride-2 units), expected 3", stage + 1);
    memcpy(c->stage_rep, rep, sizeof rep);

    if (!c->s.fc_w || c->s.fc_w->ndim != 2 || c->s.fc_w->shape[0] < 1 ||
        c->s.fc_w->shape[0] > 1000000)
        return cfail(c, "fc.weight is missing or not a matrix");
    int64_t fw[2] = {c->s.fc_w->shape[0], cin};
    if (check_shape(c, c->s.fc_w, "fc.weight", 2, fw) != 0) return -1;
    c->classes = (int)fw[0];
    if (c->s.fc_b && check_shape(c, c->s.fc_b, "fc.bias", 1, fw) != 0) return -1;
    return 0;
}

/* ---- options and metadata ------------------------------------------------------------ */

typedef struct {
    const char *channel_order, *resize, *long_side, *mean, *std;
    int resize_short, crop;
} preset;

static const preset presets[] = {
    [LAYOUT_MEGVII] = {"bgr", "opencv_bilinear", "round", "0,0,0", "1,1,1", 256, 224},
    [LAYOUT_MMPRETRAIN] = {"rgb", "pillow_bilinear", "floor", "123.675,116.28,103.53",
                           "58.395,57.12,57.375", 256, 224},
};

static int one_of(const char *v, const char *a, const char *b) {
    return !strcmp(v, a) || !strcmp(v, b);
}

/* "a,b,c" -> normalised "a,b,c"; positive requires every value > 0. */
static int parse3(const char *v, int positive, char *out, size_t n) {
    double x[3];
    const char *p = v;
    for (int i = 0; i < 3; i++) {
        char *end;
        x[i] = strtod(p, &end);
        if (end == p || !isfinite(x[i]) || (positive && !(x[i] > 0))) return -1;
        if (*end != (i < 2 ? ',' : '\0')) return -1;
        p = end + 1;
    }
    snprintf(out, n, "%.9g,%.9g,%.9g", x[0], x[1], x[2]);
    return 0;
}

static const double table1_stage2[9] = {[1] = 144, [2] = 200, [3] = 240, [4] = 272, [8] = 384};

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Every value must be finite, and BN variances not negative. */
static int check_values(conv *c, tref t, int is_var, float *tmp) {
    memcpy(tmp, t->data, (size_t)t->numel * sizeof(float));
    for (int64_t i = 0; i < t->numel; i++) {
        if (!isfinite(tmp[i])) return cfail(c, "'%.100s' holds NaN or Inf", t->name);
        if (is_var && tmp[i] < 0) return cfail(c, "'%.100s' holds a negative variance", t->name);
    }
    return 0;
}

static int add(conv *c, sn_st_writer *w, const char *name, tref t, int is_var, float *tmp) {
    if (check_values(c, t, is_var, tmp) != 0) return -1;
    if (sn_st_writer_add_f32(w, name, tmp, t->ndim, t->shape) != 0)
        return cfail(c, "cannot add tensor '%s' (out of memory?)", name);
    return 0;
}

static int add_conv_bn(conv *c, sn_st_writer *w, const conv_bn *cb, const char *wname,
                       const char *bnbase, float *tmp) {
    char name[64];
    if (add(c, w, wname, cb->w, 0, tmp) != 0) return -1;
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "%s.%s", bnbase, bn_names[i]);
        if (add(c, w, name, cb->bn[i], i == 3, tmp) != 0) return -1;
    }
    return 0;
}

static int write_model(conv *c, const char *out, const sn_convert_opts *o,
                       sn_convert_summary *sum) {
    /* preprocessing: preset, then explicit fields */
    int pi = c->layout;
    if (o->preset) {
        if (!strcmp(o->preset, "megvii"))
            pi = LAYOUT_MEGVII;
        else if (!strcmp(o->preset, "mmpretrain"))
            pi = LAYOUT_MMPRETRAIN;
        else
            return cfail(c, "unknown preset '%s' (expected megvii or mmpretrain)", o->preset);
    }
    preset P = presets[pi];
    if (o->channel_order) P.channel_order = o->channel_order;
    if (o->resize) P.resize = o->resize;
    if (o->long_side) P.long_side = o->long_side;
    if (o->mean) P.mean = o->mean;
    if (o->std) P.std = o->std;
    if (o->resize_short) P.resize_short = o->resize_short;
    if (o->crop) P.crop = o->crop;
    const char *order = o->shuffle_order             ? o->shuffle_order
                        : c->layout == LAYOUT_MEGVII ? "megvii"
                                                     : "paper";
    char mean[96], std[96];
    if (!one_of(P.channel_order, "bgr", "rgb"))
        return cfail(c, "channel order '%s': expected bgr or rgb", P.channel_order);
    if (!one_of(P.resize, "opencv_bilinear", "pillow_bilinear"))
        return cfail(c, "resize '%s': expected opencv_bilinear or pillow_bilinear", P.resize);
    if (!one_of(P.long_side, "round", "floor"))
        return cfail(c, "long side '%s': expected round or floor", P.long_side);
    if (!one_of(order, "megvii", "paper"))
        return cfail(c, "shuffle order '%s': expected megvii or paper", order);
    if (parse3(P.mean, 0, mean, sizeof mean) != 0)
        return cfail(c, "mean '%s': expected three numbers separated by commas", P.mean);
    if (parse3(P.std, 1, std, sizeof std) != 0)
        return cfail(c, "std '%s': expected three positive numbers separated by commas", P.std);
    if (P.crop < 32 || P.crop > 4096) return cfail(c, "crop %d out of range [32, 4096]", P.crop);
    if (P.resize_short < P.crop || P.resize_short > 8192)
        return cfail(c, "resize_short %d must be in [crop (%d), 8192]", P.resize_short, P.crop);
    int synthetic = o->synthetic > 0 || (o->synthetic == 0 && c->ck->synthetic);

    char width[16] = "unknown";
    if (c->groups < 9 && table1_stage2[c->groups] > 0)
        snprintf(width, sizeof width, "%g",
                 round(c->stage_ch[0] / table1_stage2[c->groups] * 1000) / 1000);
    char source[160];
    if (o->source)
        snprintf(source, sizeof source, "%s", o->source);
    else
        snprintf(source, sizeof source, "%.100s (%s layout, %s torch.save)", base_name(c->path),
                 layout_names[c->layout], c->ck->container);

    sn_st_writer *w = sn_st_writer_new();
    float *tmp = NULL;
    int64_t maxn = 1;
    for (int i = 0; i < c->ck->ntensors; i++)
        if (c->ck->tensors[i].numel > maxn) maxn = c->ck->tensors[i].numel;
    if (!w || !(tmp = malloc((size_t)maxn * sizeof(float)))) {
        sn_st_writer_free(w);
        return cfail(c, "out of memory");
    }
    char v[96];
    int rc = 0;
#define META(k, val) rc |= sn_st_writer_meta(w, k, val)
    META("format", "shufflenet-v1");
    snprintf(v, sizeof v, "%d", c->groups);
    META("shufflenet.groups", v);
    snprintf(v, sizeof v, "%d", c->stem);
    META("shufflenet.stem_channels", v);
    snprintf(v, sizeof v, "%d,%d,%d", c->stage_ch[0], c->stage_ch[1], c->stage_ch[2]);
    META("shufflenet.stage_channels", v);
    snprintf(v, sizeof v, "%d,%d,%d", c->stage_rep[0], c->stage_rep[1], c->stage_rep[2]);
    META("shufflenet.stage_repeats", v);
    snprintf(v, sizeof v, "%d", c->classes);
    META("shufflenet.num_classes", v);
    META("shufflenet.fc_bias", c->s.fc_b ? "true" : "false");
    META("shufflenet.shuffle_order", order);
    META("shufflenet.shuffle_position", "after_dw");
    META("shufflenet.width", width);
    META("shufflenet.weights", synthetic ? "synthetic" : "trained");
    META("shufflenet.source", source);
    snprintf(v, sizeof v, "%d", P.crop);
    META("shufflenet.input_size", v);
    META("preprocess.channel_order", P.channel_order);
    META("preprocess.resize", P.resize);
    snprintf(v, sizeof v, "%d", P.resize_short);
    META("preprocess.resize_short", v);
    META("preprocess.long_side", P.long_side);
    snprintf(v, sizeof v, "%d", P.crop);
    META("preprocess.crop", v);
    META("preprocess.mean", mean);
    META("preprocess.std", std);
#undef META
    if (rc != 0) {
        cfail(c, "cannot add metadata (out of memory?)");
        goto fail;
    }

    int ntensors = 0;
    if (add_conv_bn(c, w, &c->s.stem, "stem.conv.weight", "stem.bn", tmp) != 0) goto fail;
    ntensors += 5;
    for (int n = 0; n < c->nunits; n++) {
        for (int j = 0; j < 3; j++) {
            char wn[48], bn[48];
            const conv_bn *cb = unit_part(c->u[n], j, n, wn, sizeof wn, bn, sizeof bn);
            if (add_conv_bn(c, w, cb, wn, bn, tmp) != 0) goto fail;
            ntensors += 5;
        }
    }
    if (add(c, w, "fc.weight", c->s.fc_w, 0, tmp) != 0) goto fail;
    ntensors++;
    if (c->s.fc_b) {
        if (add(c, w, "fc.bias", c->s.fc_b, 0, tmp) != 0) goto fail;
        ntensors++;
    }
    char msg[256];
    if (sn_st_writer_save(w, out, msg, sizeof msg) != 0) {
        snprintf(c->err, c->errlen, "%s", msg);
        goto fail;
    }
    if (sum) {
        memset(sum, 0, sizeof *sum);
        snprintf(sum->layout, sizeof sum->layout, "%s", layout_names[c->layout]);
        snprintf(sum->container, sizeof sum->container, "%s", c->ck->container);
        sum->groups = c->groups;
        sum->stem_channels = c->stem;
        memcpy(sum->stage_channels, c->stage_ch, sizeof c->stage_ch);
        memcpy(sum->stage_repeats, c->stage_rep, sizeof c->stage_rep);
        sum->num_classes = c->classes;
        sum->fc_bias = c->s.fc_b != NULL;
        sum->synthetic = synthetic;
        sum->ntensors = ntensors;
        snprintf(sum->width, sizeof sum->width, "%s", width);
    }
    free(tmp);
    sn_st_writer_free(w);
    return 0;
fail:
    free(tmp);
    sn_st_writer_free(w);
    return -1;
}

int sn_convert_checkpoint(const char *in, const char *out, const sn_convert_opts *opts,
                          sn_convert_summary *summary, char *err, size_t errlen) {
    static const sn_convert_opts none;
    sn_pt_checkpoint ck;
    if (sn_pt_load(in, &ck, err, errlen) != 0) return -1;
    conv *c = calloc(1, sizeof *c);
    if (!c) {
        sn_pt_free(&ck);
        snprintf(err, errlen, "%s: out of memory", in);
        return -1;
    }
    c->ck = &ck;
    c->err = err;
    c->errlen = errlen;
    c->path = in;
    int rc = -1;
    if (assign_slots(c) == 0 && infer_arch(c) == 0)
        rc = write_model(c, out, opts ? opts : &none, summary);
    free(c);
    sn_pt_free(&ck);
    return rc;
}

const char *sn_convert_usage(void) {
    return "usage: shufflenet convert [options] CHECKPOINT OUT.safetensors\n"
           "\n"
           "Converts a PyTorch ShuffleNet v1 checkpoint (legacy or zip torch.save; megvii or\n"
           "mmpretrain key layout) into a safetensors model file, without torch. The\n"
           "architecture is read from the tensor shapes; BN is kept unfolded.\n"
           "\n"
           "options:\n"
           "  --preset megvii|mmpretrain   preprocessing preset (default: from the key layout:\n"
           "                               megvii = BGR 0..255, OpenCV bilinear, long side\n"
           "                               rounded; mmpretrain = RGB, ImageNet mean/std, Pillow\n"
           "                               bilinear, long side truncated; both 256 -> crop 224)\n"
           "  --synthetic | --trained      record the weights as synthetic / trained (default:\n"
           "                               synthetic only if the checkpoint's meta says so)\n"
           "  --shuffle-order megvii|paper override the layout's channel shuffle order\n"
           "  --channel-order bgr|rgb      override the preset's channel order\n"
           "  --resize opencv_bilinear|pillow_bilinear\n"
           "  --resize-short N             short side target (preset: 256)\n"
           "  --long-side round|floor      long side rounding\n"
           "  --crop N                     centre crop = model input size (preset: 224)\n"
           "  --mean M0,M1,M2              per channel, in channel order, 0..255 scale\n"
           "  --std S0,S1,S2\n"
           "  --source TEXT                shufflenet.source (default: file name and layout)\n";
}
