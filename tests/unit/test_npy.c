/* test_npy.c - .npy reader/writer: round trips, the reference files, every rejection. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/shared.h"
#include "tools/npy.h"

/* A .npy image: preamble for the given major version, header text as given (no padding
 * added), then nfloat floats 0, 1, 2, ... */
static uint8_t *make_npy(int major, const char *header, size_t nfloat, size_t *len) {
    size_t pre = major == 1 ? 10 : 12, hlen = strlen(header);
    *len = pre + hlen + nfloat * 4;
    uint8_t *b = malloc(*len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    b[8] = (uint8_t)hlen;
    b[9] = (uint8_t)(hlen >> 8);
    if (major != 1) b[10] = b[11] = 0;
    memcpy(b + pre, header, hlen);
    for (size_t i = 0; i < nfloat; i++) {
        float v = (float)i;
        memcpy(b + pre + hlen + 4 * i, &v, 4);
    }
    return b;
}

static int parse(const uint8_t *b, size_t len, int64_t *shape, int *ndim, char *err) {
    float *data = NULL;
    int rc = sn_npy_parse(b, len, &data, shape, ndim, err, 256);
    if (rc == 0) cr_assert_not_null(data);
    if (rc != 0) cr_assert_null(data);
    free(data);
    return rc;
}

static void expect_reject(int major, const char *header, size_t nfloat, const char *msg) {
    size_t len;
    uint8_t *b = make_npy(major, header, nfloat, &len);
    int64_t shape[SN_NPY_MAX_DIMS];
    int ndim;
    char err[256] = "";
    cr_expect_eq(parse(b, len, shape, &ndim, err), -1, "accepted header %s", header);
    cr_expect(strstr(err, msg) != NULL, "header %s: error '%s' lacks '%s'", header, err, msg);
    free(b);
}

static char *tmp_path(const char *name) {
    static char path[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/sn-npy-%d-%s", dir, (int)getpid(), name);
    return path;
}

Test(npy, round_trip_shapes) {
    int64_t shapes[][3] = {{2, 3, 4}, {5, 0, 0}, {1, 1000, 0}};
    int ndims[] = {3, 1, 2};
    for (int t = 0; t < 3; t++) {
        size_t n = 1;
        for (int i = 0; i < ndims[t]; i++) n *= (size_t)shapes[t][i];
        float *x = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.37f - 3.0f;
        char err[256] = "";
        char *path = tmp_path("rt.npy");
        cr_assert_eq(sn_npy_write(path, x, shapes[t], ndims[t], err, sizeof err), 0, "%s", err);

        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        cr_expect_eq((size_t)size % 64, (n * 4) % 64, "header not padded to 64");

        float *y = NULL;
        int64_t shape[SN_NPY_MAX_DIMS];
        int ndim = -1;
        cr_assert_eq(sn_npy_read(path, &y, shape, &ndim, err, sizeof err), 0, "%s", err);
        cr_expect_eq(ndim, ndims[t]);
        for (int i = 0; i < ndim; i++) cr_expect_eq(shape[i], shapes[t][i]);
        cr_expect_eq(memcmp(x, y, n * sizeof(float)), 0);
        free(x);
        free(y);
        unlink(path);
    }
}

Test(npy, scalar_and_empty) {
    char err[256] = "";
    char *path = tmp_path("scalar.npy");
    float v = 42.5f, *y = NULL;
    int64_t shape[SN_NPY_MAX_DIMS];
    int ndim = -1;
    cr_assert_eq(sn_npy_write(path, &v, NULL, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(sn_npy_read(path, &y, shape, &ndim, err, sizeof err), 0, "%s", err);
    cr_expect_eq(ndim, 0);
    cr_expect_eq(y[0], 42.5f);
    free(y);

    int64_t zero[2] = {0, 7};
    cr_assert_eq(sn_npy_write(path, NULL, zero, 2, err, sizeof err), 0, "%s", err);
    cr_assert_eq(sn_npy_read(path, &y, shape, &ndim, err, sizeof err), 0, "%s", err);
    cr_expect_eq(ndim, 2);
    cr_expect_eq(shape[0], 0);
    cr_expect_eq(shape[1], 7);
    free(y);
    unlink(path);
}

Test(npy, versions_2_and_3_and_spelling) {
    const char *hdrs[] = {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
                          "{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f4\"}",
                          "{'descr':'<f4','fortran_order':False,'shape':(2L, 3L)}   \n"};
    for (int major = 1; major <= 3; major++) {
        for (int h = 0; h < 3; h++) {
            size_t len;
            uint8_t *b = make_npy(major, hdrs[h], 6, &len);
            float *y = NULL;
            int64_t shape[SN_NPY_MAX_DIMS];
            int ndim;
            char err[256] = "";
            cr_expect_eq(sn_npy_parse(b, len, &y, shape, &ndim, err, sizeof err), 0, "v%d %s: %s",
                         major, hdrs[h], err);
            if (y) {
                cr_expect_eq(ndim, 2);
                cr_expect_eq(shape[0] * 10 + shape[1], 23);
                cr_expect_eq(y[5], 5.0f);
            }
            free(y);
            free(b);
        }
    }
}

Test(npy, rejections) {
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    expect_reject(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 12, "'<f8'");
    expect_reject(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 6, "'>f4'");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 6, "Fortran");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", 6,
                  "fortran_order");
    expect_reject(1, ok, 5, "needs 24 data bytes, the file has 20");
    expect_reject(1, ok, 7, "needs 24 data bytes, the file has 28");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': False}", 1, "lacks 'shape'");
    expect_reject(1, "{'fortran_order': False, 'shape': (1,)}", 1, "lacks 'descr'");
    expect_reject(1, "{'descr': '<f4', 'shape': (1,)}", 1, "lacks 'fortran_order'");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 1,
                  "unexpected or repeated header key 'x'");
    expect_reject(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 1,
                  "repeated");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", 1, "malformed");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 1,
                  "bad dimension");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", 1, "not a tuple");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", 1, "junk");
    expect_reject(1, "['descr', '<f4']", 1, "not a dict");
    expect_reject(1, "{'descr' '<f4'}", 1, "lacks ':'");
    expect_reject(1, "{'descr': '<f4' 'fortran_order': False}", 1, "malformed after 'descr'");
    expect_reject(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 1,
                  "more than 8 dimensions");
    expect_reject(1,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': "
                  "(4294967296, 4294967296)}",
                  1, "too large");
    expect_reject(1,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': "
                  "(99999999999999999999,)}",
                  1, "bad dimension");
    expect_reject(1, "{'descr': '<f4", 1, "simple dtype string");
}

Test(npy, rejects_bad_preamble) {
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
    size_t len;
    uint8_t *b = make_npy(1, ok, 2, &len);
    int64_t shape[SN_NPY_MAX_DIMS];
    int ndim;
    char err[256] = "";

    b[1] = 'X';
    cr_expect_eq(parse(b, len, shape, &ndim, err), -1);
    cr_expect(strstr(err, "bad magic"), "%s", err);
    b[1] = 'N';
    b[6] = 4;
    cr_expect_eq(parse(b, len, shape, &ndim, err), -1);
    cr_expect(strstr(err, "version 4.0"), "%s", err);
    b[6] = 1;
    b[7] = 1;
    cr_expect_eq(parse(b, len, shape, &ndim, err), -1);
    cr_expect(strstr(err, "version 1.1"), "%s", err);
    b[7] = 0;
    b[9] = 0x7f; /* header length far past the end */
    cr_expect_eq(parse(b, len, shape, &ndim, err), -1);
    cr_expect(strstr(err, "runs past the end"), "%s", err);
    b[9] = 0;
    b[20] = 0; /* NUL inside the header */
    cr_expect_eq(parse(b, len, shape, &ndim, err), -1);
    cr_expect(strstr(err, "NUL"), "%s", err);
    /* every truncation of a valid file fails cleanly */
    b[20] = ok[10];
    for (size_t cut = 0; cut < len; cut++) {
        cr_expect_eq(parse(b, cut, shape, &ndim, err), -1, "accepted %zu of %zu bytes", cut, len);
    }
    cr_expect_eq(parse(b, len, shape, &ndim, err), 0, "%s", err);
    free(b);

    b = make_npy(2, ok, 2, &len);
    b[11] = 0x80; /* 2 GiB header in a v2 file */
    cr_expect_eq(parse(b, len, shape, &ndim, err), -1);
    cr_expect(strstr(err, "runs past the end"), "%s", err);
    cr_expect_eq(parse(b, 11, shape, &ndim, err), -1);
    cr_expect(strstr(err, "truncated"), "%s", err);
    free(b);

    float *y = (float *)1;
    cr_expect_eq(sn_npy_read("/nonexistent/x.npy", &y, shape, &ndim, err, sizeof err), -1);
    cr_expect_null(y);
    cr_expect(strstr(err, "/nonexistent/x.npy"), "%s", err);
}

Test(npy, reads_reference_logits) {
    const char *shared = sn_test_shared("models/reference/megvii-g3-0.5x/chelsea_logits.f32");
    char npy[512], raw[512];
    snprintf(npy, sizeof npy, "%s/models/reference/megvii-g3-0.5x/chelsea_logits.npy", shared);
    snprintf(raw, sizeof raw, "%s/models/reference/megvii-g3-0.5x/chelsea_logits.f32", shared);
    FILE *f = fopen(raw, "rb");
    cr_assert_not_null(f, "%s", raw);
    float ref[1000];
    cr_assert_eq(fread(ref, 4, 1000, f), 1000u);
    fclose(f);
    float *y = NULL;
    int64_t shape[SN_NPY_MAX_DIMS];
    int ndim;
    char err[256] = "";
    cr_assert_eq(sn_npy_read(npy, &y, shape, &ndim, err, sizeof err), 0, "%s", err);
    cr_expect_eq(ndim, 2);
    cr_expect_eq(shape[0], 1);
    cr_expect_eq(shape[1], 1000);
    cr_expect_eq(memcmp(y, ref, sizeof ref), 0);
    free(y);
}
