/* synth.c - deterministic synthetic ShuffleNet v1 weights (for benchmarks, load tests and
 * any configuration without trained weights). The initialisation follows the peers'
 * reference (../shared/peers/shufflenet_ref.py): kaiming-normal convs, non-trivial BN
 * statistics (so BN folding is exercised), small gamma on each unit's last BN so the
 * residual stream stays O(1). Same seed, same file, on every machine. */
#include "engine/synth.h"

#include "engine/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int table1[][4] = {
    /* g, stage 2, 3, 4 output channels at 1x (paper Table 1) */
    {1, 144, 288, 576},  {2, 200, 400, 800},  {3, 240, 480, 960},
    {4, 272, 544, 1088}, {8, 384, 768, 1536},
};

/* Nearest multiple of d (ties up), at least d, bumped up if rounding lost over 10%. */
static int make_divisible(double v, int d) {
    int n = (int)(v + d / 2.0) / d * d;
    if (n < d) n = d;
    if (n < 0.9 * v) n += d;
    return n;
}

int sn_synth_channels(int g, double width, int *stem, int ch[3]) {
    for (size_t i = 0; i < sizeof(table1) / sizeof(table1[0]); i++)
        if (table1[i][0] == g) {
            *stem = 24;
            for (int s = 0; s < 3; s++) ch[s] = make_divisible(table1[i][s + 1] * width, 4 * g);
            return 0;
        }
    return -1;
}

typedef struct {
    uint64_t s;
} rng;

static uint64_t next(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double uniform(rng *r, double lo, double hi) {
    return lo + (hi - lo) * ((next(r) >> 11) * (1.0 / 9007199254740992.0));
}

static double normal(rng *r) { /* Box-Muller */
    double u = uniform(r, 1e-12, 1.0), v = uniform(r, 0.0, 1.0);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static int add(sn_st_writer *w, const char *name, float *d, int ndim, int64_t a, int64_t b,
               int64_t c, int64_t e) {
    int64_t shp[4] = {a, b, c, e};
    return sn_st_writer_add_f32(w, name, d, ndim, shp);
}

static int conv_bn(sn_st_writer *w, rng *r, const char *conv, const char *bn, int cout, int cin_g,
                   int k, double gamma_lo, double gamma_hi) {
    size_t n = (size_t)cout * cin_g * k * k;
    float *buf = malloc((n > (size_t)cout ? n : (size_t)cout) * sizeof(float));
    if (!buf) return -1;
    double sd = sqrt(2.0 / (cin_g * k * k));
    for (size_t i = 0; i < n; i++) buf[i] = (float)(normal(r) * sd);
    char name[128];
    snprintf(name, sizeof(name), "%s.weight", conv);
    int rc = add(w, name, buf, 4, cout, cin_g, k, k);
    static const char *part[4] = {"weight", "bias", "running_mean", "running_var"};
    const double lo[4] = {gamma_lo, -0.1, -0.1, 0.5}, hi[4] = {gamma_hi, 0.1, 0.1, 1.5};
    for (int p = 0; p < 4 && !rc; p++) {
        for (int c = 0; c < cout; c++) buf[c] = (float)uniform(r, lo[p], hi[p]);
        snprintf(name, sizeof(name), "%s.%s", bn, part[p]);
        rc = add(w, name, buf, 1, cout, 0, 0, 0);
    }
    free(buf);
    return rc;
}

int sn_synth_model(int g, double width, uint64_t seed, const char *out, char *err, size_t errlen) {
    int stem, ch[3];
    if (!(width > 0 && width <= 8)) {
        snprintf(err, errlen, "width %g out of range (0, 8]", width);
        return -1;
    }
    if (sn_synth_channels(g, width, &stem, ch)) {
        snprintf(err, errlen, "groups %d: the paper's Table 1 has g = 1, 2, 3, 4 or 8", g);
        return -1;
    }
    sn_st_writer *w = sn_st_writer_new();
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char v[64], c2[64], b2[64];
    sn_st_writer_meta(w, "format", "shufflenet-v1");
    snprintf(v, sizeof(v), "%d", g);
    sn_st_writer_meta(w, "shufflenet.groups", v);
    snprintf(v, sizeof(v), "%d", stem);
    sn_st_writer_meta(w, "shufflenet.stem_channels", v);
    snprintf(v, sizeof(v), "%d,%d,%d", ch[0], ch[1], ch[2]);
    sn_st_writer_meta(w, "shufflenet.stage_channels", v);
    sn_st_writer_meta(w, "shufflenet.stage_repeats", "4,8,4");
    sn_st_writer_meta(w, "shufflenet.num_classes", "1000");
    sn_st_writer_meta(w, "shufflenet.fc_bias", "true");
    sn_st_writer_meta(w, "shufflenet.shuffle_order", "paper");
    sn_st_writer_meta(w, "shufflenet.shuffle_position", "before_dw");
    snprintf(v, sizeof(v), "%g", width);
    sn_st_writer_meta(w, "shufflenet.width", v);
    sn_st_writer_meta(w, "shufflenet.weights", "synthetic");
    snprintf(v, sizeof(v), "shufflenet synth --groups %d --width %g --seed %llu", g, width,
             (unsigned long long)seed);
    sn_st_writer_meta(w, "shufflenet.source", v);
    sn_st_writer_meta(w, "shufflenet.input_size", "224");
    sn_st_writer_meta(w, "preprocess.channel_order", "bgr");
    sn_st_writer_meta(w, "preprocess.resize", "opencv_bilinear");
    sn_st_writer_meta(w, "preprocess.resize_short", "256");
    sn_st_writer_meta(w, "preprocess.long_side", "round");
    sn_st_writer_meta(w, "preprocess.crop", "224");
    sn_st_writer_meta(w, "preprocess.mean", "0,0,0");
    sn_st_writer_meta(w, "preprocess.std", "1,1,1");

    rng r = {seed};
    int rc = conv_bn(w, &r, "stem.conv", "stem.bn", stem, 3, 3, 0.5, 1.5);
    int cin = stem, u = 0;
    const int repeats[3] = {4, 8, 4};
    for (int s = 0; s < 3 && !rc; s++)
        for (int k = 0; k < repeats[s] && !rc; k++, u++) {
            int mid = ch[s] / 4, outs = k == 0 ? ch[s] - cin : ch[s], g1 = u == 0 ? 1 : g;
            snprintf(c2, sizeof(c2), "units.%d.pw1", u);
            snprintf(b2, sizeof(b2), "units.%d.pw1.bn", u);
            rc = conv_bn(w, &r, c2, b2, mid, cin / g1, 1, 0.5, 1.5);
            snprintf(c2, sizeof(c2), "units.%d.dw", u);
            snprintf(b2, sizeof(b2), "units.%d.dw.bn", u);
            if (!rc) rc = conv_bn(w, &r, c2, b2, mid, 1, 3, 0.5, 1.5);
            snprintf(c2, sizeof(c2), "units.%d.pw2", u);
            snprintf(b2, sizeof(b2), "units.%d.pw2.bn", u);
            if (!rc) rc = conv_bn(w, &r, c2, b2, outs, mid / g, 1, 0.1, 0.3);
            cin = ch[s];
        }
    if (!rc) {
        size_t n = (size_t)1000 * cin;
        float *fc = malloc(n * sizeof(float));
        if (!fc) rc = -1;
        for (size_t i = 0; !rc && i < n; i++) fc[i] = (float)(normal(&r) / sqrt((double)cin));
        if (!rc) rc = add(w, "fc.weight", fc, 2, 1000, cin, 0, 0);
        for (int i = 0; !rc && i < 1000; i++) fc[i] = (float)uniform(&r, -0.1, 0.1);
        if (!rc) rc = add(w, "fc.bias", fc, 1, 1000, 0, 0, 0);
        free(fc);
    }
    if (rc) {
        snprintf(err, errlen, "out of memory");
        sn_st_writer_free(w);
        return -1;
    }
    rc = sn_st_writer_save(w, out, err, errlen);
    sn_st_writer_free(w);
    return rc;
}
