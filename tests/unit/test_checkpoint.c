/* test_checkpoint.c - the torch-free checkpoint reader (tools/pickle.c, pickle_vm.c, zip.c)
 * and converter on checkpoints written here by hand: both containers, both key layouts,
 * inconsistent networks, bad values, and damaged pickles. */
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

/* ---- checkpoints written by hand ----------------------------------------------------- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->b = realloc(b->b, b->cap);
    }
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void op(buf *b, uint8_t o) {
    put(b, &o, 1);
}
static void le(buf *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) op(b, (uint8_t)(v >> (8 * i)));
}
static void pstr(buf *b, const char *s) {
    op(b, 'X');
    le(b, strlen(s), 4);
    put(b, s, strlen(s));
}
static void pglobal(buf *b, const char *mod, const char *name) {
    op(b, 'c');
    put(b, mod, strlen(mod));
    op(b, '\n');
    put(b, name, strlen(name));
    op(b, '\n');
}
static void pint(buf *b, int64_t v) {
    if (v >= 0 && v < 256) {
        op(b, 'K');
        op(b, (uint8_t)v);
    } else {
        op(b, 'J');
        le(b, (uint64_t)v, 4);
    }
}

/* _rebuild_tensor_v2(('storage', torch.<st>, key, 'cpu', numel), offset, shape, stride,
 * False, OrderedDict()) with C-contiguous strides unless stride is given. */
static void ptensor(buf *b, const char *st, const char *key, int64_t numel, int64_t offset,
                    int ndim, const int64_t *shape, const int64_t *stride) {
    pglobal(b, "torch._utils", "_rebuild_tensor_v2");
    op(b, '(');
    op(b, '(');
    pstr(b, "storage");
    pglobal(b, "torch", st);
    pstr(b, key);
    pstr(b, "cpu");
    pint(b, numel);
    op(b, 't');
    op(b, 'Q');
    pint(b, offset);
    op(b, '(');
    for (int d = 0; d < ndim; d++) pint(b, shape[d]);
    op(b, 't');
    op(b, '(');
    int64_t s = 1, strides[8];
    for (int d = ndim - 1; d >= 0; d--) strides[d] = s, s *= shape[d];
    for (int d = 0; d < ndim; d++) pint(b, stride ? stride[d] : strides[d]);
    op(b, 't');
    op(b, 0x89);
    pglobal(b, "collections", "OrderedDict");
    op(b, ')');
    op(b, 'R');
    op(b, 't');
    op(b, 'R');
}

/* A test network: names in a layout, shapes, data, and the expected canonical names. */
#define MAXT 160
typedef struct {
    int n;
    char name[MAXT][96];  /* as stored in the checkpoint */
    char canon[MAXT][48]; /* expected output name, "" for num_batches_tracked */
    int ndim[MAXT];
    int64_t shape[MAXT][4];
    int64_t numel[MAXT];
    float *data[MAXT]; /* float32 data, or NULL for the int64 scalars */
} net;

static void net_add(net *t, const char *name, const char *canon, int ndim, int64_t a, int64_t b,
                    int64_t c, int64_t d) {
    int k = t->n++;
    cr_assert_lt(k, MAXT);
    snprintf(t->name[k], sizeof t->name[k], "%s", name);
    snprintf(t->canon[k], sizeof t->canon[k], "%s", canon);
    t->ndim[k] = ndim;
    int64_t s[4] = {a, b, c, d};
    t->numel[k] = 1;
    for (int i = 0; i < ndim; i++) t->shape[k][i] = s[i], t->numel[k] *= s[i];
    if (!*canon) {
        t->data[k] = NULL;
        return;
    }
    t->data[k] = malloc((size_t)t->numel[k] * sizeof(float));
    for (int64_t i = 0; i < t->numel[k]; i++) /* positive, distinct, exact in float */
        t->data[k][i] = (float)(k * 1000 + i + 1) / 1024.0f;
}

static void net_conv_bn(net *t, const char *wname, const char *bnname, const char *cw,
                        const char *cbn, int64_t co, int64_t ci, int64_t k) {
    char n[96], c[48];
    net_add(t, wname, cw, 4, co, ci, k, k);
    const char *bn[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    for (int i = 0; i < 5; i++) {
        snprintf(n, sizeof n, "%s.%s", bnname, bn[i]);
        snprintf(c, sizeof c, "%s.%s", cbn, bn[i]);
        net_add(t, n, i < 4 ? c : "", i < 4 ? 1 : 0, co, 0, 0, 0);
    }
}

/* A small ShuffleNet: groups g, stem c0, stage widths ch, repeats rep, 10 classes. */
static void make_net(net *t, int mm, const char *prefix, int g, int c0, const int *ch,
                     const int *rep, int fc_bias) {
    memset(t, 0, sizeof *t);
    char w[96], bn[96], cw[48], cb[48];
    snprintf(w, sizeof w, "%s%s", prefix,
             mm ? "backbone.conv1.conv.weight" : "first_conv.0.weight");
    snprintf(bn, sizeof bn, "%s%s", prefix, mm ? "backbone.conv1.bn" : "first_conv.1");
    net_conv_bn(t, w, bn, "stem.conv.weight", "stem.bn", c0, 3, 3);
    int cin = c0, u = 0;
    for (int s = 0; s < 3; s++) {
        for (int r = 0; r < rep[s]; r++, u++) {
            int mid = ch[s] / 4, outs = r == 0 ? ch[s] - cin : ch[s], g1 = u == 0 ? 1 : g;
            const char *part[3] = {"pw1", "dw", "pw2"};
            const char *mmp[3] = {"g_conv_1x1_compress", "depthwise_conv3x3_bn",
                                  "g_conv_1x1_expand"};
            const char *mvw[3] = {"branch_main_1.0", "branch_main_1.3", "branch_main_2.0"};
            const char *mvb[3] = {"branch_main_1.1", "branch_main_1.4", "branch_main_2.1"};
            int64_t co[3] = {mid, mid, outs}, ci[3] = {cin / g1, 1, mid / g}, k[3] = {1, 3, 1};
            for (int j = 0; j < 3; j++) {
                if (mm) {
                    snprintf(w, sizeof w, "%sbackbone.layers.%d.%d.%s.conv.weight", prefix, s, r,
                             mmp[j]);
                    snprintf(bn, sizeof bn, "%sbackbone.layers.%d.%d.%s.bn", prefix, s, r, mmp[j]);
                } else {
                    snprintf(w, sizeof w, "%sfeatures.%d.%s.weight", prefix, u, mvw[j]);
                    snprintf(bn, sizeof bn, "%sfeatures.%d.%s", prefix, u, mvb[j]);
                }
                snprintf(cw, sizeof cw, "units.%d.%s.weight", u, part[j]);
                snprintf(cb, sizeof cb, "units.%d.%s.bn", u, part[j]);
                net_conv_bn(t, w, bn, cw, cb, co[j], ci[j], k[j]);
            }
            cin = ch[s];
        }
    }
    snprintf(w, sizeof w, "%s%s", prefix, mm ? "head.fc.weight" : "classifier.0.weight");
    net_add(t, w, "fc.weight", 2, 10, cin, 0, 0);
    if (fc_bias) {
        snprintf(w, sizeof w, "%s%s", prefix, mm ? "head.fc.bias" : "classifier.0.bias");
        net_add(t, w, "fc.bias", 1, 10, 0, 0, 0);
    }
}

static void net_free(net *t) {
    for (int k = 0; k < t->n; k++) free(t->data[k]);
}

/* The object pickle: the state dict (optionally wrapped as mmengine does). */
static void net_pickle(const net *t, buf *b, int wrap) {
    op(b, 0x80);
    op(b, 2);
    if (wrap) {
        op(b, '}');
        pstr(b, "meta");
        op(b, '}');
        op(b, '(');
        pstr(b, "epoch");
        pint(b, 3);
        pstr(b, "lr");
        op(b, 'G');
        le(b, 0, 8);
        pstr(b, "flags");
        op(b, ']');
        op(b, '(');
        op(b, 0x88);
        op(b, 'N');
        op(b, 'e');
        op(b, 'u');
        op(b, 's');
        pstr(b, "state_dict");
    }
    pglobal(b, "collections", "OrderedDict");
    op(b, ')');
    op(b, 'R');
    op(b, 'q');
    op(b, 1);
    op(b, '(');
    for (int k = 0; k < t->n; k++) {
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        pstr(b, t->name[k]);
        ptensor(b, t->data[k] ? "FloatStorage" : "LongStorage", key, t->numel[k], 0, t->ndim[k],
                t->shape[k], NULL);
    }
    op(b, 'u');
    op(b, '}'); /* _metadata, dropped by BUILD */
    op(b, 'b');
    if (wrap) op(b, 's');
    op(b, '.');
}

static void storage_bytes(const net *t, int k, buf *b) {
    if (t->data[k])
        put(b, t->data[k], (size_t)t->numel[k] * 4);
    else
        le(b, 7, 8);
}

static void write_legacy(const net *t, const char *path, int wrap) {
    buf b = {0};
    static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                    0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    put(&b, magic, sizeof magic);
    put(&b, "\x80\x02M\xe9\x03.", 6); /* 1001 */
    op(&b, 0x80);
    op(&b, 2);
    op(&b, '}');
    pstr(&b, "little_endian");
    op(&b, 0x88);
    op(&b, 's');
    op(&b, '.');
    net_pickle(t, &b, wrap);
    op(&b, 0x80);
    op(&b, 2);
    op(&b, ']');
    op(&b, '(');
    for (int k = 0; k < t->n; k++) {
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        pstr(&b, key);
    }
    op(&b, 'e');
    op(&b, '.');
    for (int k = 0; k < t->n; k++) {
        le(&b, (uint64_t)t->numel[k], 8);
        storage_bytes(t, k, &b);
    }
    spit(path, b.b, b.n);
    free(b.b);
}

/* A stored (uncompressed) zip, as torch.save writes it. */
typedef struct {
    buf data, cd;
    int count;
    int zip64; /* sizes and offsets in zip64 extra fields and records */
} zipw;

static void zip_add(zipw *z, const char *name, const void *p, size_t n) {
    uint32_t crc = sn_crc32(0, p, n);
    uint32_t off = (uint32_t)z->data.n;
    le(&z->data, 0x04034b50, 4);
    le(&z->data, 0, 8); /* version, flags, method, time */
    le(&z->data, 0, 2); /* date */
    le(&z->data, crc, 4);
    le(&z->data, n, 4);
    le(&z->data, n, 4);
    le(&z->data, strlen(name), 2);
    le(&z->data, 3, 2); /* an extra field, as torch pads for alignment */
    put(&z->data, name, strlen(name));
    put(&z->data, "\0\0\0", 3);
    put(&z->data, p, n);
    le(&z->cd, 0x02014b50, 4);
    le(&z->cd, 0, 8); /* versions, flags, method */
    le(&z->cd, 0, 4); /* time, date */
    le(&z->cd, crc, 4);
    uint32_t big = z->zip64 ? 0xffffffffu : 0;
    le(&z->cd, n | big, 4);
    le(&z->cd, n | big, 4);
    le(&z->cd, strlen(name), 2);
    le(&z->cd, z->zip64 ? 28 : 0, 2); /* extra */
    le(&z->cd, 0, 6);                 /* comment, disk, internal attrs */
    le(&z->cd, 0, 4);                 /* external attrs */
    le(&z->cd, off | big, 4);
    put(&z->cd, name, strlen(name));
    if (z->zip64) {
        le(&z->cd, 1, 2);
        le(&z->cd, 24, 2);
        le(&z->cd, n, 8);
        le(&z->cd, n, 8);
        le(&z->cd, off, 8);
    }
    z->count++;
}

static void zip_finish(zipw *z, const char *path) {
    uint32_t cdoff = (uint32_t)z->data.n;
    put(&z->data, z->cd.b, z->cd.n);
    if (z->zip64) {
        uint64_t eocd64 = z->data.n;
        le(&z->data, 0x06064b50, 4);
        le(&z->data, 44, 8);
        le(&z->data, 0, 4); /* versions */
        le(&z->data, 0, 8); /* disks */
        le(&z->data, (uint64_t)z->count, 8);
        le(&z->data, (uint64_t)z->count, 8);
        le(&z->data, z->cd.n, 8);
        le(&z->data, cdoff, 8);
        le(&z->data, 0x07064b50, 4);
        le(&z->data, 0, 4);
        le(&z->data, eocd64, 8);
        le(&z->data, 1, 4);
    }
    le(&z->data, 0x06054b50, 4);
    le(&z->data, 0, 4);
    le(&z->data, z->zip64 ? 0xffff : (uint64_t)z->count, 2);
    le(&z->data, z->zip64 ? 0xffff : (uint64_t)z->count, 2);
    le(&z->data, z->zip64 ? 0xffffffffu : z->cd.n, 4);
    le(&z->data, z->zip64 ? 0xffffffffu : cdoff, 4);
    le(&z->data, 0, 2);
    spit(path, z->data.b, z->data.n);
    free(z->data.b);
    free(z->cd.b);
}

static void write_zip(const net *t, const char *path, const char *prefix, int wrap, int zip64) {
    zipw z = {.zip64 = zip64};
    buf p = {0};
    char name[128];
    net_pickle(t, &p, wrap);
    snprintf(name, sizeof name, "%s/data.pkl", prefix);
    zip_add(&z, name, p.b, p.n);
    for (int k = 0; k < t->n; k++) {
        buf s = {0};
        storage_bytes(t, k, &s);
        snprintf(name, sizeof name, "%s/data/%d", prefix, k);
        zip_add(&z, name, s.b, s.n);
        free(s.b);
    }
    snprintf(name, sizeof name, "%s/version", prefix);
    zip_add(&z, name, "3\n", 2);
    zip_finish(&z, path);
    free(p.b);
}

/* The converted file holds exactly the expected canonical tensors with the data written. */
static void check_net(const net *t, const char *path, const int *ch, const int *rep, int g) {
    sn_st_file f;
    char err[256], v[64];
    cr_assert_eq(sn_st_open(path, &f, err, sizeof err), 0, "%s", err);
    int want = 0;
    for (int k = 0; k < t->n; k++) {
        if (!*t->canon[k]) continue;
        want++;
        const sn_st_tensor *x = sn_st_find(&f, t->canon[k]);
        cr_assert_not_null(x, "%s missing", t->canon[k]);
        cr_expect_eq(x->ndim, t->ndim[k], "%s", t->canon[k]);
        cr_expect_eq(memcmp(x->shape, t->shape[k], (size_t)t->ndim[k] * 8), 0, "%s", t->canon[k]);
        cr_expect(x->nbytes == (size_t)t->numel[k] * 4 && !memcmp(x->data, t->data[k], x->nbytes),
                  "%s: data differs", t->canon[k]);
    }
    cr_expect_eq(f.ntensors, want);
    snprintf(v, sizeof v, "%d", g);
    expect_meta(&f, "shufflenet.groups", v);
    snprintf(v, sizeof v, "%d,%d,%d", ch[0], ch[1], ch[2]);
    expect_meta(&f, "shufflenet.stage_channels", v);
    snprintf(v, sizeof v, "%d,%d,%d", rep[0], rep[1], rep[2]);
    expect_meta(&f, "shufflenet.stage_repeats", v);
    expect_meta(&f, "shufflenet.num_classes", "10");
    sn_st_close(&f);
}

Test(convert, handmade_checkpoints_both_layouts_and_containers) {
    make_tmpdir();
    const int ch[3] = {16, 32, 64}, rep[3] = {1, 3, 2};
    /* variant: container, {'state_dict': ...} wrapper, 'module.' prefix */
    const struct {
        const char *container, *zip_prefix;
        int wrap, module, zip64;
    } variants[] = {
        {"legacy", NULL, 0, 0, 0},     {"legacy", NULL, 1, 1, 0},   {"zip", "archive", 0, 1, 0},
        {"zip", "deep/er/n", 1, 0, 0}, {"zip", "archive", 1, 1, 1},
    };
    for (int mm = 0; mm < 2; mm++) {
        for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
            net t;
            make_net(&t, mm, variants[v].module ? "module." : "", 2, 8, ch, rep, mm);
            const char *in = tmp("n.pth");
            if (!variants[v].zip_prefix)
                write_legacy(&t, in, variants[v].wrap);
            else
                write_zip(&t, in, variants[v].zip_prefix, variants[v].wrap, variants[v].zip64);
            sn_convert_summary s;
            convert_ok(in, tmp("n.safetensors"), NULL, &s);
            cr_expect_str_eq(s.layout, mm ? "mmpretrain" : "megvii");
            cr_expect_str_eq(s.container, variants[v].container);
            cr_expect_eq(s.fc_bias, mm);
            cr_expect_eq(s.synthetic, 0);
            cr_expect_str_eq(s.width, "0.08"); /* 16 / 200 (Table 1, g=2) */
            check_net(&t, tmp("n.safetensors"), ch, rep, 2);
            net_free(&t);
        }
    }
    remove_tmpdir();
}

/* Damage one tensor of a good network and expect the named error. */
static void expect_net_error(int mm, int g, const int *ch, const int *rep, int victim,
                             const char *newname, int dim, int64_t newsize, const char *want) {
    net t;
    make_net(&t, mm, "", g, 12, ch, rep, 0);
    int k = victim < 0 ? t.n + victim : victim;
    if (newname) snprintf(t.name[k], sizeof t.name[k], "%s", newname);
    if (dim >= 0) {
        t.numel[k] = t.numel[k] / t.shape[k][dim] * newsize;
        t.shape[k][dim] = newsize;
        t.data[k] = realloc(t.data[k], (size_t)t.numel[k] * 4 + 4);
        for (int64_t i = 0; i < t.numel[k]; i++) t.data[k][i] = 1;
    }
    write_legacy(&t, tmp("bad.pth.tar"), 1);
    convert_fails(tmp("bad.pth.tar"), NULL, want);
    net_free(&t);
}

Test(convert, rejects_inconsistent_networks) {
    make_tmpdir();
    const int ch[3] = {24, 48, 96}, rep[3] = {1, 2, 1};
    /* tensor 0 is stem.conv.weight, 6 units.0.pw1.weight, 12 units.0.dw.weight,
     * 18 units.0.pw2.weight, 36 units.1.pw2.weight, 54 units.2.pw2.weight, -1 fc.weight */
    expect_net_error(0, 3, ch, rep, 5, "foo.bar.weight", -1, 0,
                     "unexpected key 'foo.bar.weight' for the megvii layout");
    expect_net_error(1, 3, ch, rep, 5, "backbone.layers.0.0.extra.conv.weight", -1, 0,
                     "unexpected key 'backbone.layers.0.0.extra.conv.weight' for the mmpretrain");
    expect_net_error(0, 3, ch, rep, 0, "stem.weight", -1, 0,
                     "no known key layout: expected megvii");
    expect_net_error(1, 3, ch, rep, 1, "first_conv.0.weight", -1, 0,
                     "both megvii and mmpretrain keys");
    expect_net_error(0, 3, ch, rep, 12, NULL, 2, 5, "has shape [6,1,5,3], expected [6,1,3,3]");
    expect_net_error(0, 3, ch, rep, 6, NULL, 1, 4, "first 1x1 conv must be ungrouped");
    expect_net_error(0, 3, ch, rep, 36, NULL, 1, 6, "units.1 has groups 2, earlier units 3");
    expect_net_error(0, 3, ch, rep, 54, NULL, 0, 40,
                     "units.2: channels (in 48, bottleneck 12, "
                     "out 40) fit neither");
    expect_net_error(0, 3, ch, rep, -1, NULL, 1, 95, "fc.weight");
    expect_net_error(0, 3, ch, rep, 7, "first_conv.1.weight", -1, 0, "duplicate key");
    expect_net_error(0, 3, ch, rep, 18, "features.0.branch_main_2.7.weight", -1, 0,
                     "unexpected key 'features.0.branch_main_2.7.weight'");
    expect_net_error(0, 3, ch, rep, 40, "features.9.branch_main_1.0.weight", -1, 0,
                     "features.9 present but features.4 missing");
    const int rep2[3] = {1, 2, 0}; /* the last stage is missing */
    expect_net_error(0, 3, ch, rep2, 0, NULL, -1, 0, "found 2 stages");
    expect_net_error(1, 3, ch, rep2, 0, NULL, -1, 0, "backbone.layers.2 is missing");
    remove_tmpdir();
}

Test(convert, rejects_bad_values) {
    make_tmpdir();
    const int ch[3] = {24, 48, 96}, rep[3] = {1, 1, 1};
    net t;
    make_net(&t, 0, "", 3, 12, ch, rep, 0);
    t.data[4][2] = -1.0f; /* stem.bn.running_var */
    write_legacy(&t, tmp("v.pth.tar"), 0);
    convert_fails(tmp("v.pth.tar"), NULL, "'first_conv.1.running_var' holds a negative variance");
    t.data[4][2] = 1.0f;
    t.data[0][3] = NAN;
    write_legacy(&t, tmp("v.pth.tar"), 0);
    convert_fails(tmp("v.pth.tar"), NULL, "'first_conv.0.weight' holds NaN or Inf");
    net_free(&t);
    remove_tmpdir();
}

/* ---- the pickle reader on hand-written and damaged input ----------------------------- */

/* A legacy file around the given object pickle with storages "0".."n-1" of numel[k]
 * elements of esize bytes (float32 ones when esize is 4). */
static void legacy_around(buf *out, const buf *obj, int nstorages, const int64_t *numel,
                          int esize) {
    static const uint8_t head[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                   0x20, 0x6a, 0xa8, 0x50, 0x19, '.',  0x80, 0x02, 'M',
                                   0xe9, 0x03, '.',  0x80, 0x02, '}',  '.'};
    put(out, head, sizeof head);
    put(out, obj->b, obj->n);
    op(out, 0x80);
    op(out, 2);
    op(out, ']');
    for (int k = 0; k < nstorages; k++) {
        char key[8];
        snprintf(key, sizeof key, "%d", k);
        pstr(out, key);
        op(out, 'a');
    }
    op(out, '.');
    for (int k = 0; k < nstorages; k++) {
        le(out, (uint64_t)numel[k], 8);
        for (int64_t i = 0; i < numel[k]; i++) le(out, esize == 4 ? 0x3f800000 : 0, esize);
    }
}

static void expect_parse_error(const buf *file, const char *want) {
    uint8_t *copy = malloc(file->n ? file->n : 1);
    memcpy(copy, file->b, file->n);
    sn_pt_checkpoint ck;
    char err[256] = "";
    cr_expect_eq(sn_pt_parse(copy, file->n, &ck, err, sizeof err), -1, "accepted (want %s)", want);
    cr_expect(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
}

/* An object pickle {'w': tensor} with the given tensor parameters. */
static void one_tensor(buf *obj, const char *st, int64_t numel, int64_t offset, int ndim,
                       const int64_t *shape, const int64_t *stride) {
    op(obj, 0x80);
    op(obj, 2);
    op(obj, '}');
    pstr(obj, "w");
    ptensor(obj, st, "0", numel, offset, ndim, shape, stride);
    op(obj, 's');
    op(obj, '.');
}

Test(convert, pickle_rejections) {
#define P(lit) lit, sizeof(lit) - 1
    struct {
        const char *pickle;
        size_t len;
        const char *want;
    } cases[] = {
        {P("\x80\x02\x63os\nsystem\n."), "unsupported global 'os.system'"},
        {P("\x80\x02\x63torch\nload\n."), "unsupported global 'torch.load'"},
        {P("\x80\x02I1\n."), "unsupported opcode 0x49"},
        {P("\x80\x02s."), "stack underflow"},
        {P("\x80\x02h\x05."), "memo index 5 not set"},
        {P("\x80\x02}K\x01."), "STOP with 2 values"},
        {P("\x80\x02t."), "no MARK"},
        {P("\x80\x02}]a."), "APPEND to a non-list"},
        {P("\x80\x02K\x00K\x01K\x02s."), "SETITEM(S) on a non-dict"},
        {P("\x80\x02]K\x01"
           "b."),
         "BUILD on something other than a dict"},
        {P("\x80\x02\x63"
           "collections\nOrderedDict\nK\x01\x85R."),
         "OrderedDict() with arguments"},
        {P("\x80\x02\x63torch\nFloatStorage\n)R."), "cannot call 'torch.FloatStorage'"},
        {P("\x80\x02(X\x03\x00\x00\x00"
           "fooK\x01tQ."),
         "persistent id is not"},
        {P("\x80\x02X\xff\xff\xff\x7f"
           "abc"),
         "truncated"},
        {P("\x80\x07}."), "unsupported protocol 7"},
        {P("\x80\x02]q\x00."), "top level is not a dict"},
        {P("\x80\x02}."), "holds no tensors"},
        {P("\x80\x02}X\x01\x00\x00\x00kK\x01s."), "entry 'k' is not a tensor"},
    };
#undef P
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        buf obj = {0}, file = {0};
        put(&obj, cases[i].pickle, cases[i].len);
        legacy_around(&file, &obj, 0, NULL, 4);
        expect_parse_error(&file, cases[i].want);
        free(obj.b);
        free(file.b);
    }

    /* tensor checks */
    int64_t sh[2] = {3, 4}, bad_stride[2] = {1, 3}, n12 = 12, n10 = 10;
    struct {
        const char *st;
        int64_t numel, offset;
        const int64_t *stride;
        const int64_t *storage;
        const char *want;
    } tc[] = {
        {"FloatStorage", 12, 0, bad_stride, &n12, "is not contiguous"},
        {"FloatStorage", 12, 1, NULL, &n12, "lies outside storage '0'"},
        {"FloatStorage", 10, 0, NULL, &n10, "lies outside storage '0'"},
        {"FloatStorage", 12, 0, NULL, &n10, "storage '0' holds 10 elements, expected 12"},
        {"HalfStorage", 12, 0, NULL, &n12, "unexpected bytes after the last storage"},
        {"ComplexFloatStorage", 12, 0, NULL, &n12,
         "unsupported global 'torch.ComplexFloatStorage'"},
    };
    for (size_t i = 0; i < sizeof tc / sizeof *tc; i++) {
        buf obj = {0}, file = {0};
        one_tensor(&obj, tc[i].st, tc[i].numel, tc[i].offset, 2, sh, tc[i].stride);
        legacy_around(&file, &obj, 1, tc[i].storage, 4);
        expect_parse_error(&file, tc[i].want);
        free(obj.b);
        free(file.b);
    }

    /* a well-formed tensor reads; a float64 one reads too, and the converter refuses it */
    buf obj = {0}, file = {0};
    one_tensor(&obj, "FloatStorage", 12, 0, 2, sh, NULL);
    legacy_around(&file, &obj, 1, &n12, 4);
    uint8_t *copy = malloc(file.n);
    memcpy(copy, file.b, file.n);
    sn_pt_checkpoint ck;
    char err[256];
    cr_assert_eq(sn_pt_parse(copy, file.n, &ck, err, sizeof err), 0, "%s", err);
    cr_expect_eq(ck.ntensors, 1);
    cr_expect_str_eq(ck.tensors[0].name, "w");
    cr_expect_eq(ck.tensors[0].numel, 12);
    cr_expect_eq(ck.tensors[0].dtype, SN_PT_F32);
    float v;
    memcpy(&v, ck.tensors[0].data + 44, 4);
    cr_expect_eq(v, 1.0f);
    sn_pt_free(&ck);
    free(obj.b);
    free(file.b);

    make_tmpdir();
    obj = (buf){0};
    file = (buf){0};
    int64_t one = 1;
    op(&obj, 0x80);
    op(&obj, 2);
    op(&obj, '}');
    pstr(&obj, "first_conv.0.weight");
    ptensor(&obj, "DoubleStorage", "0", 1, 0, 1, &one, NULL);
    op(&obj, 's');
    op(&obj, '.');
    legacy_around(&file, &obj, 1, &one, 8);
    spit(tmp("f64.pth"), file.b, file.n);
    convert_fails(tmp("f64.pth"), NULL, "'first_conv.0.weight' is float64");
    free(file.b);
    free(obj.b);
    remove_tmpdir();
}

Test(convert, deep_nesting_does_not_recurse) {
    buf obj = {0}, file = {0};
    op(&obj, 0x80);
    op(&obj, 2);
    const int depth = 200000;
    for (int i = 0; i < depth; i++) op(&obj, ']');
    for (int i = 1; i < depth; i++) op(&obj, 'a');
    op(&obj, '.');
    legacy_around(&file, &obj, 0, NULL, 4);
    expect_parse_error(&file, "top level is not a dict");
    free(obj.b);
    free(file.b);
}
