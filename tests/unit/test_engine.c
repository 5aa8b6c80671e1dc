/* test_engine.c - the engine against an independent naive reference.
 *
 * The reference below is written the way PyTorch defines the network: per image, NCHW, in
 * double precision, BN applied unfolded, the channel shuffle done as an explicit
 * reshape/transpose at the position the model declares. Small random models with odd shapes
 * (odd spatial sizes, channel counts that are not multiples of any vector width, every
 * group count) go through both and must agree. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/model.h"
#include "engine/safetensors.h"
#include "engine/shufflenet.h"
#include "tests/unit/shared.h"

/* ---- a random model, described and written by the test ------------------------------- */

typedef struct {
    int g, stem, ch[3], rep[3], classes, fc_bias, input;
    sn_shuffle_order order;
    sn_shuffle_position pos;
} cfg;

static unsigned long long rs = 12345;
static double urand(void) {
    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rs >> 11) / 9007199254740992.0;
}

static float *rnd(size_t n, double lo, double hi) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * urand());
    return p;
}

static void add(sn_st_writer *w, const char *name, const float *d, int ndim, int64_t a, int64_t b,
                int64_t c, int64_t e) {
    int64_t s[4] = {a, b, c, e};
    cr_assert_eq(sn_st_writer_add_f32(w, name, d, ndim, s), 0);
}

static void conv_bn(sn_st_writer *w, const char *pre, const char *bn, int cout, int cin_g, int k) {
    char n[128];
    size_t sz = (size_t)cout * cin_g * k * k;
    float *wt = rnd(sz, -1.0 / sqrt(cin_g * k * k), 1.0 / sqrt(cin_g * k * k) * 1.2);
    snprintf(n, sizeof(n), "%s.weight", pre);
    add(w, n, wt, 4, cout, cin_g, k, k);
    free(wt);
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    const double lo[4] = {0.5, -0.2, -0.3, 0.2}, hi[4] = {1.5, 0.2, 0.3, 2.0};
    for (int p = 0; p < 4; p++) {
        float *v = rnd((size_t)cout, lo[p], hi[p]);
        snprintf(n, sizeof(n), "%s.%s", bn, part[p]);
        add(w, n, v, 1, cout, 0, 0, 0);
        free(v);
    }
}

static sn_st_writer *make_writer(const cfg *c) {
    sn_st_writer *w = sn_st_writer_new();
    char v[64];
    sn_st_writer_meta(w, "format", "shufflenet-v1");
    snprintf(v, sizeof(v), "%d", c->g);
    sn_st_writer_meta(w, "shufflenet.groups", v);
    snprintf(v, sizeof(v), "%d", c->stem);
    sn_st_writer_meta(w, "shufflenet.stem_channels", v);
    snprintf(v, sizeof(v), "%d,%d,%d", c->ch[0], c->ch[1], c->ch[2]);
    sn_st_writer_meta(w, "shufflenet.stage_channels", v);
    snprintf(v, sizeof(v), "%d,%d,%d", c->rep[0], c->rep[1], c->rep[2]);
    sn_st_writer_meta(w, "shufflenet.stage_repeats", v);
    snprintf(v, sizeof(v), "%d", c->classes);
    sn_st_writer_meta(w, "shufflenet.num_classes", v);
    sn_st_writer_meta(w, "shufflenet.fc_bias", c->fc_bias ? "true" : "false");
    sn_st_writer_meta(w, "shufflenet.shuffle_order",
                      c->order == SN_SHUFFLE_MEGVII ? "megvii" : "paper");
    sn_st_writer_meta(w, "shufflenet.shuffle_position",
                      c->pos == SN_SHUFFLE_BEFORE_DW ? "before_dw" : "after_dw");
    snprintf(v, sizeof(v), "%d", c->input);
    sn_st_writer_meta(w, "shufflenet.input_size", v);
    sn_st_writer_meta(w, "preprocess.crop", v);
    snprintf(v, sizeof(v), "%d", c->input + 8);
    sn_st_writer_meta(w, "preprocess.resize_short", v);
    return w;
}

static void add_weights(sn_st_writer *w, const cfg *c) {
    char n[64], nb[80];
    conv_bn(w, "stem.conv", "stem.bn", c->stem, 3, 3);
    int cin = c->stem, u = 0;
    for (int s = 0; s < 3; s++)
        for (int r = 0; r < c->rep[s]; r++, u++) {
            int mid = c->ch[s] / 4, outs = r ? c->ch[s] : c->ch[s] - cin, g1 = u ? c->g : 1;
            snprintf(n, sizeof(n), "units.%d.pw1", u);
            snprintf(nb, sizeof(nb), "%s.bn", n);
            conv_bn(w, n, nb, mid, cin / g1, 1);
            snprintf(n, sizeof(n), "units.%d.dw", u);
            snprintf(nb, sizeof(nb), "%s.bn", n);
            conv_bn(w, n, nb, mid, 1, 3);
            snprintf(n, sizeof(n), "units.%d.pw2", u);
            snprintf(nb, sizeof(nb), "%s.bn", n);
            conv_bn(w, n, nb, outs, mid / c->g, 1);
            cin = c->ch[s];
        }
    float *fw = rnd((size_t)c->classes * cin, -0.3, 0.3);
    add(w, "fc.weight", fw, 2, c->classes, cin, 0, 0);
    free(fw);
    if (c->fc_bias) {
        float *fb = rnd((size_t)c->classes, -0.5, 0.5);
        add(w, "fc.bias", fb, 1, c->classes, 0, 0, 0);
        free(fb);
    }
}

static char *tmp_path(const char *tag) {
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 256, "/tmp/sn_test_%d_%s.safetensors", (int)getpid(), tag);
    return p;
}

static const char *write_model(const cfg *c, const char *tag) {
    sn_st_writer *w = make_writer(c);
    add_weights(w, c);
    const char *path = tmp_path(tag);
    char err[256];
    cr_assert_eq(sn_st_writer_save(w, path, err, sizeof(err)), 0, "%s", err);
    sn_st_writer_free(w);
    return path;
}

/* ---- naive reference ----------------------------------------------------------------- */

static double *get(const sn_st_file *f, const char *name) {
    const sn_st_tensor *t = sn_st_find(f, name);
    cr_assert_not_null(t, "missing %s", name);
    float *tmp = malloc((size_t)t->numel * sizeof(float));
    sn_st_copy_f32(t, tmp);
    double *d = malloc((size_t)t->numel * sizeof(double));
    for (int64_t i = 0; i < t->numel; i++) d[i] = tmp[i];
    free(tmp);
    return d;
}

/* conv (groups, k, stride, pad k/2) + BN (unfolded), NCHW single image. */
static double *conv_bn_ref(const sn_st_file *f, const char *conv, const char *bn, const double *x,
                           int cin, int h, int cout, int groups, int k, int stride, int *ho_out) {
    char n[128];
    snprintf(n, sizeof(n), "%s.weight", conv);
    double *w = get(f, n);
    double *bp[4];
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof(n), "%s.%s", bn, part[i]);
        bp[i] = get(f, n);
    }
    int pad = k / 2, ho = (h + 2 * pad - k) / stride + 1;
    int cig = cin / groups, cog = cout / groups;
    double *y = calloc((size_t)cout * ho * ho, sizeof(double));
    for (int o = 0; o < cout; o++) {
        int gi = o / cog;
        for (int yy = 0; yy < ho; yy++)
            for (int xx = 0; xx < ho; xx++) {
                double s = 0;
                for (int ci = 0; ci < cig; ci++)
                    for (int dy = 0; dy < k; dy++)
                        for (int dx = 0; dx < k; dx++) {
                            int iy = yy * stride - pad + dy, ix = xx * stride - pad + dx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= h) continue;
                            s += w[((o * cig + ci) * k + dy) * k + dx] *
                                 x[((size_t)(gi * cig + ci) * h + iy) * h + ix];
                        }
                double v = (s - bp[2][o]) / sqrt(bp[3][o] + 1e-5) * bp[0][o] + bp[1][o];
                y[((size_t)o * ho + yy) * ho + xx] = v;
            }
    }
    free(w);
    for (int i = 0; i < 4; i++) free(bp[i]);
    *ho_out = ho;
    return y;
}

static void shuffle_ref(double *x, int C, int g, int hw, sn_shuffle_order order) {
    double *t = malloc((size_t)C * hw * sizeof(double));
    int cpg = C / g;
    for (int i = 0; i < g; i++)
        for (int j = 0; j < cpg; j++) {
            int src, dst;
            if (order == SN_SHUFFLE_PAPER) { /* (g, C/g) -> transpose */
                src = i * cpg + j;
                dst = j * g + i;
            } else { /* megvii: (C/g, g) -> transpose: out[i*cpg + j] = in[j*g + i] */
                src = j * g + i;
                dst = i * cpg + j;
            }
            memcpy(t + (size_t)dst * hw, x + (size_t)src * hw, hw * sizeof(double));
        }
    memcpy(x, t, (size_t)C * hw * sizeof(double));
    free(t);
}

static void relu(double *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] < 0) x[i] = 0;
}

static void forward_ref(const char *path, const cfg *c, const float *img, double *logits) {
    sn_st_file f;
    char err[256];
    cr_assert_eq(sn_st_open(path, &f, err, sizeof(err)), 0, "%s", err);
    int S = c->input, h;
    double *x = malloc(3 * (size_t)S * S * sizeof(double));
    for (int i = 0; i < 3 * S * S; i++) x[i] = img[i];
    double *y = conv_bn_ref(&f, "stem.conv", "stem.bn", x, 3, S, c->stem, 1, 3, 2, &h);
    free(x);
    relu(y, (size_t)c->stem * h * h);
    int hp = (h + 2 - 3) / 2 + 1; /* maxpool 3x3 s2 p1 */
    x = malloc((size_t)c->stem * hp * hp * sizeof(double));
    for (int ch = 0; ch < c->stem; ch++)
        for (int yy = 0; yy < hp; yy++)
            for (int xx = 0; xx < hp; xx++) {
                double m = -INFINITY;
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) {
                        int iy = 2 * yy - 1 + dy, ix = 2 * xx - 1 + dx;
                        if (iy >= 0 && iy < h && ix >= 0 && ix < h)
                            m = fmax(m, y[((size_t)ch * h + iy) * h + ix]);
                    }
                x[((size_t)ch * hp + yy) * hp + xx] = m;
            }
    free(y);
    h = hp;
    int cin = c->stem, u = 0;
    char a[64], b[64];
    for (int s = 0; s < 3; s++)
        for (int r = 0; r < c->rep[s]; r++, u++) {
            int mid = c->ch[s] / 4, stride = r ? 1 : 2, outs = r ? c->ch[s] : c->ch[s] - cin;
            int h1, h2, h3;
            snprintf(a, sizeof(a), "units.%d.pw1", u);
            snprintf(b, sizeof(b), "units.%d.pw1.bn", u);
            double *t1 = conv_bn_ref(&f, a, b, x, cin, h, mid, u ? c->g : 1, 1, 1, &h1);
            relu(t1, (size_t)mid * h1 * h1);
            if (c->pos == SN_SHUFFLE_BEFORE_DW) shuffle_ref(t1, mid, c->g, h1 * h1, c->order);
            /* depthwise = grouped conv with groups == channels */
            snprintf(a, sizeof(a), "units.%d.dw", u);
            snprintf(b, sizeof(b), "units.%d.dw.bn", u);
            double *t2 = conv_bn_ref(&f, a, b, t1, mid, h1, mid, mid, 3, stride, &h2);
            free(t1);
            if (c->pos == SN_SHUFFLE_AFTER_DW) shuffle_ref(t2, mid, c->g, h2 * h2, c->order);
            snprintf(a, sizeof(a), "units.%d.pw2", u);
            snprintf(b, sizeof(b), "units.%d.pw2.bn", u);
            double *t3 = conv_bn_ref(&f, a, b, t2, mid, h2, outs, c->g, 1, 1, &h3);
            free(t2);
            if (stride == 1) {
                for (size_t i = 0; i < (size_t)outs * h3 * h3; i++) t3[i] += x[i];
                relu(t3, (size_t)outs * h3 * h3);
                free(x);
                x = t3;
            } else {
                double *o = malloc((size_t)(cin + outs) * h3 * h3 * sizeof(double));
                for (int ch = 0; ch < cin; ch++) /* avgpool 3x3 s2 p1, /9 always */
                    for (int yy = 0; yy < h3; yy++)
                        for (int xx = 0; xx < h3; xx++) {
                            double sum = 0;
                            for (int dy = 0; dy < 3; dy++)
                                for (int dx = 0; dx < 3; dx++) {
                                    int iy = 2 * yy - 1 + dy, ix = 2 * xx - 1 + dx;
                                    if (iy >= 0 && iy < h && ix >= 0 && ix < h)
                                        sum += x[((size_t)ch * h + iy) * h + ix];
                                }
                            o[((size_t)ch * h3 + yy) * h3 + xx] = sum / 9;
                        }
                relu(t3, (size_t)outs * h3 * h3);
                memcpy(o + (size_t)cin * h3 * h3, t3, (size_t)outs * h3 * h3 * sizeof(double));
                free(t3);
                free(x);
                x = o;
            }
            h = h3;
            cin = c->ch[s];
        }
    double *fw = get(&f, "fc.weight"), *fb = c->fc_bias ? get(&f, "fc.bias") : NULL;
    for (int o = 0; o < c->classes; o++) {
        double s = fb ? fb[o] : 0;
        for (int ch = 0; ch < cin; ch++) {
            double m = 0;
            for (int p = 0; p < h * h; p++) m += x[(size_t)ch * h * h + p];
            s += fw[(size_t)o * cin + ch] * (m / (h * h));
        }
        logits[o] = s;
    }
    free(fw);
    free(fb);
    free(x);
    sn_st_close(&f);
}

/* ---- engine vs reference --------------------------------------------------------------- */

static cfg small(int g, sn_shuffle_order order, sn_shuffle_position pos, int fc_bias) {
    /* Odd spatial sizes: 37 -> 19 -> 10 -> 5 -> 3 -> 2. Channels: multiples of 4g, mid and
     * stride-2 branch widths that are not multiples of 4, 8 or 16 where g allows. */
    cfg c = {g, 6, {24, 48, 96}, {2, 3, 2}, 17, fc_bias, 37, order, pos};
    switch (g) {
    case 1:
        c.stem = 5, c.ch[0] = 12, c.ch[1] = 20, c.ch[2] = 28;
        break;
    case 2:
        c.stem = 6, c.ch[0] = 16, c.ch[1] = 24, c.ch[2] = 40;
        break;
    case 4:
        c.stem = 4, c.ch[0] = 16, c.ch[1] = 32, c.ch[2] = 48;
        break;
    case 8:
        c.stem = 8, c.ch[0] = 32, c.ch[1] = 64, c.ch[2] = 96;
        break;
    }
    return c;
}

static void check_against_reference(const cfg *c, const char *tag) {
    rs = 777 + (unsigned long long)c->g * 31 + c->order * 7 + c->pos * 3 + c->fc_bias;
    const char *path = write_model(c, tag);
    char err[256];
    sn_model *m = sn_model_load(path, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    const int n = 3;
    sn_engine *e = sn_engine_create(m, 4, err, sizeof(err));
    cr_assert_not_null(e, "%s", err);
    size_t isz = 3 * (size_t)c->input * c->input;
    float *x = rnd(isz * n, 0, 255);
    float *got = malloc((size_t)n * c->classes * sizeof(float));
    float *one = malloc((size_t)c->classes * sizeof(float));
    double *want = malloc((size_t)c->classes * sizeof(double));
    cr_assert_eq(sn_engine_run(e, x, n, got), 0);
    for (int i = 0; i < n; i++) {
        forward_ref(path, c, x + i * isz, want);
        double mx = 0, d = 0;
        for (int k = 0; k < c->classes; k++) {
            mx = fmax(mx, fabs(want[k]));
            d = fmax(d, fabs(want[k] - got[(size_t)i * c->classes + k]));
        }
        cr_assert(d <= 1e-4 * mx + 1e-6, "%s image %d: max |d| %g (max |logit| %g)", tag, i, d, mx);
        /* Batched and single runs agree. */
        cr_assert_eq(sn_engine_run(e, x + i * isz, 1, one), 0);
        for (int k = 0; k < c->classes; k++)
            cr_assert(fabsf(one[k] - got[(size_t)i * c->classes + k]) <= 1e-5f * (float)mx + 1e-6f,
                      "%s: batch vs single differ at image %d class %d", tag, i, k);
    }
    /* Images given by pointer, in reverse order and not adjacent, give the same logits. */
    const float *ptr[3];
    float *rev = malloc((size_t)n * c->classes * sizeof(float));
    for (int i = 0; i < n; i++) ptr[i] = x + (size_t)(n - 1 - i) * isz;
    cr_assert_eq(sn_engine_run_ptrs(e, ptr, n, rev), 0);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c->classes; k++) {
            float a = rev[(size_t)i * c->classes + k],
                  b = got[(size_t)(n - 1 - i) * c->classes + k];
            cr_assert(fabsf(a - b) <= 1e-5f * fabsf(b) + 1e-5f,
                      "%s: run_ptrs image %d class %d: %g vs %g", tag, i, k, a, b);
        }
    cr_assert_eq(sn_engine_run_ptrs(e, ptr, 0, rev), -1, "n = 0 must be refused");
    free(rev);
    cr_assert_eq(sn_engine_run(e, x, 0, got), -1, "n = 0 must be refused");
    cr_assert_eq(sn_engine_run(e, x, 5, got), -1, "n > max_batch must be refused");
    free(x);
    free(got);
    free(one);
    free(want);
    sn_engine_free(e);
    sn_model_free(m);
    unlink(path);
}

Test(engine, every_group_count_order_and_position) {
    const int gs[] = {1, 2, 3, 4, 8};
    for (int i = 0; i < 5; i++)
        for (int o = 0; o < 2; o++)
            for (int p = 0; p < 2; p++) {
                char tag[32];
                snprintf(tag, sizeof(tag), "g%d_o%d_p%d", gs[i], o, p);
                cfg c = small(gs[i], (sn_shuffle_order)o, (sn_shuffle_position)p, (i + o) % 2);
                check_against_reference(&c, tag);
            }
}

/* The shuffle order changes the answer: the same weights read with the other order give
 * different logits (so the reference comparison above cannot pass by accident). */
Test(engine, shuffle_order_matters) {
    cfg a = small(3, SN_SHUFFLE_PAPER, SN_SHUFFLE_AFTER_DW, 1), b = a;
    b.order = SN_SHUFFLE_MEGVII;
    rs = 99;
    const char *pa = write_model(&a, "ord_a");
    rs = 99;
    const char *pb = write_model(&b, "ord_b");
    char err[256];
    sn_model *ma = sn_model_load(pa, err, sizeof(err)), *mb = sn_model_load(pb, err, sizeof(err));
    cr_assert(ma && mb, "%s", err);
    sn_engine *ea = sn_engine_create(ma, 1, err, sizeof(err));
    sn_engine *eb = sn_engine_create(mb, 1, err, sizeof(err));
    float *x = rnd(3 * 37 * 37, 0, 255), la[17], lb[17];
    sn_engine_run(ea, x, 1, la);
    sn_engine_run(eb, x, 1, lb);
    double d = 0;
    for (int k = 0; k < 17; k++) d = fmax(d, fabs(la[k] - lb[k]));
    cr_assert(d > 1e-3, "paper and megvii orders gave the same logits (max |d| %g)", d);
    free(x);
    sn_engine_free(ea);
    sn_engine_free(eb);
    sn_model_free(ma);
    sn_model_free(mb);
    unlink(pa);
    unlink(pb);
}

Test(engine, shuffle_permutations) {
    for (int g = 1; g <= 8; g++)
        for (int C = g; C <= 8 * g; C += g) {
            int p[512], q[512], cpg = C / g;
            sn_shuffle_dst(SN_SHUFFLE_PAPER, C, g, p);
            sn_shuffle_dst(SN_SHUFFLE_MEGVII, C, g, q);
            for (int i = 0; i < g; i++)
                for (int j = 0; j < cpg; j++) {
                    /* paper: out[j*g + i] = in[i*cpg + j]; megvii: out[i*cpg + j] = in[j*g + i] */
                    cr_assert_eq(p[i * cpg + j], j * g + i);
                    cr_assert_eq(q[j * g + i], i * cpg + j);
                }
            for (int c = 0; c < C; c++) cr_assert_eq(p[q[c]], c, "megvii is paper's inverse");
        }
}

Test(engine, softmax_and_topk) {
    float x[6] = {1, 3, 2, 3, -1, 0.5f};
    int idx[6];
    sn_topk(x, 6, 4, idx);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[1], 3, "ties keep the lower index first");
    cr_assert_eq(idx[2], 2);
    cr_assert_eq(idx[3], 0);
    float big[3] = {1000, 1001, 999};
    sn_softmax(big, 3);
    double s = big[0] + big[1] + big[2];
    cr_assert(fabs(s - 1) < 1e-6 && big[1] > big[0] && big[0] > big[2] && isfinite(big[2]));
}

/* ---- loader rejections ----------------------------------------------------------------- */

static void spit(const char *path, const char *b, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

static void expect_reject(const char *path, const char *needle) {
    char err[256] = "";
    sn_model *m = sn_model_load(path, err, sizeof(err));
    cr_assert_null(m, "%s loaded, expected a rejection mentioning '%s'", path, needle);
    cr_assert(strstr(err, path) != NULL, "message does not name the file: %s", err);
    cr_assert(strstr(err, needle) != NULL, "expected '%s' in: %s", needle, err);
    cr_assert(strchr(err, '\n') == NULL, "one line: %s", err);
}

static const char *valid_model(const char *tag) {
    cfg c = small(3, SN_SHUFFLE_PAPER, SN_SHUFFLE_AFTER_DW, 1);
    rs = 5;
    return write_model(&c, tag);
}

Test(loader, truncated_and_header) {
    const char *p = valid_model("trunc");
    size_t len;
    char *b = (char *)sn_test_read(p, &len);
    spit(p, b, len / 2);
    expect_reject(p, "outside the data");
    spit(p, b, 5);
    expect_reject(p, "too short");
    char *c = malloc(len);
    memcpy(c, b, len);
    uint64_t huge = (uint64_t)len * 4;
    memcpy(c, &huge, 8);
    spit(p, c, len);
    expect_reject(p, "header length");
    memcpy(c, b, len);
    c[8] = 'x';
    spit(p, c, len);
    expect_reject(p, "not valid JSON");
    memcpy(c, b, len);
    char *f32 = memmem(c, len, "\"F32\"", 5);
    memcpy(f32, "\"I32\"", 5); /* same byte size, wrong type */
    spit(p, c, len);
    expect_reject(p, "dtype I32");
    memcpy(c, b, len);
    uint64_t hl;
    memcpy(&hl, c, 8);
    memset(c + 8 + hl, 0xff, 4); /* first weight: NaN */
    spit(p, c, len);
    expect_reject(p, "NaN");
    free(c);
    free(b);
    unlink(p);
}

/* Hand-written headers for the offset checks. */
static void write_raw(const char *path, const char *hdr, size_t datalen) {
    size_t hl = strlen(hdr);
    char *b = calloc(8 + hl + datalen, 1);
    uint64_t h = hl;
    memcpy(b, &h, 8);
    memcpy(b + 8, hdr, hl);
    spit(path, b, 8 + hl + datalen);
    free(b);
}

Test(loader, offsets) {
    char p[128];
    snprintf(p, sizeof(p), "/tmp/sn_test_%d_off.safetensors", (int)getpid());
    write_raw(p,
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
              24);
    expect_reject(p, "overlap");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    expect_reject(p, "outside the data");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[0,16]}}", 16);
    expect_reject(p, "16 bytes for 5 elements");
    write_raw(p, "{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
    expect_reject(p, "unknown dtype");
    write_raw(p, "[1,2,3]", 0);
    expect_reject(p, "not a JSON object");
    write_raw(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
    expect_reject(p, "metadata key 'format' is missing");
    unlink(p);
}

static const char *write_mismatch(const cfg *meta, const cfg *weights, const char *extra,
                                  const char *tag) {
    sn_st_writer *w = make_writer(meta);
    add_weights(w, weights);
    if (extra) {
        float z[2] = {0, 0};
        int64_t s[1] = {2};
        sn_st_writer_add_f32(w, extra, z, 1, s);
    }
    const char *path = tmp_path(tag);
    char err[256];
    cr_assert_eq(sn_st_writer_save(w, path, err, sizeof(err)), 0, "%s", err);
    sn_st_writer_free(w);
    return path;
}

Test(loader, architecture_mismatches) {
    cfg ok = small(3, SN_SHUFFLE_PAPER, SN_SHUFFLE_AFTER_DW, 0), m = ok;
    m.fc_bias = 1; /* metadata promises fc.bias, the file lacks it */
    const char *p = write_mismatch(&m, &ok, NULL, "missing");
    expect_reject(p, "tensor 'fc.bias' is missing");
    unlink(p);
    p = write_mismatch(&ok, &ok, "units.0.extra", "extra");
    expect_reject(p, "unexpected tensor 'units.0.extra'");
    unlink(p);
    m = ok;
    m.ch[2] = 108; /* tensors are for 96 */
    p = write_mismatch(&m, &ok, NULL, "shape");
    expect_reject(p, "expected [");
    unlink(p);
    m = ok;
    m.g = 4; /* 24/4 = 6 mid channels not divisible by 4 */
    p = write_mismatch(&m, &ok, NULL, "groups");
    expect_reject(p, "not divisible by groups 4");
    unlink(p);
}

Test(loader, cli_exit_status) {
    const char *build = getenv("SN_BUILD");
    char cmd[512], p[128];
    snprintf(p, sizeof(p), "/tmp/sn_test_%d_cli.safetensors", (int)getpid());
    write_raw(p, "{not json", 0);
    snprintf(cmd, sizeof(cmd), "%s/shufflenet info %s 2>/dev/null", build ? build : "build", p);
    int st = system(cmd);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "exit status %d, expected 2", WEXITSTATUS(st));
    unlink(p);
}
