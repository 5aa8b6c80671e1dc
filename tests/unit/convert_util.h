/* convert_util.h - helpers of the converter tests (test_convert.c, test_checkpoint.c):
 * a temporary folder, file helpers, conversions that must succeed or fail, and the megvii key
 * naming written independently of tools/convert.c. */
#ifndef SN_TEST_CONVERT_UTIL_H
#define SN_TEST_CONVERT_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/safetensors.h"
#include "tests/unit/shared.h"
#include "tools/convert.h"

/* ../shared/models, or the test is skipped. */
static inline const char *models_dir(void) {
    static char dir[1100];
    snprintf(dir, sizeof dir, "%s/models", sn_test_shared("models/SHA256SUMS"));
    return dir;
}

static inline char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static char tmpdir[64];
static inline void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sn-convert-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}
static inline void remove_tmpdir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_expect_eq(system(cmd), 0);
}
static inline char *tmp(const char *name) {
    static char p[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static inline uint8_t *slurp(const char *path, size_t *len) {
    return sn_test_read(path, len);
}

static inline void spit(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static inline int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Convert, asserting success. */
static inline void convert_ok(const char *in, const char *out, const sn_convert_opts *o,
                              sn_convert_summary *sum) {
    char err[256] = "";
    cr_assert_eq(sn_convert_checkpoint(in, out, o, sum, err, sizeof err), 0, "%s: %s", in, err);
}

/* Convert, asserting a failure whose message contains want (and names the input). */
static inline void convert_fails(const char *in, const sn_convert_opts *o, const char *want) {
    char err[256] = "";
    const char *out = tmp("fail.safetensors");
    cr_expect_eq(sn_convert_checkpoint(in, out, o, NULL, err, sizeof err), -1,
                 "accepted %s (want '%s')", in, want);
    cr_expect(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
    cr_expect(strstr(err, in) != NULL, "error '%s' does not name %s", err, in);
    cr_expect(!exists(out), "output written on failure");
}

static inline void expect_meta(const sn_st_file *f, const char *key, const char *want) {
    const char *v = sn_st_meta(f, key);
    cr_expect(v && !strcmp(v, want), "metadata %s = '%s', expected '%s'", key, v ? v : "(none)",
              want);
}

/* The canonical name of a megvii state-dict key (independent of tools/convert.c), or NULL
 * for entries that are dropped. */
static inline const char *megvii_canonical(const char *key, char *out, size_t n) {
    if (!strncmp(key, "module.", 7)) key += 7;
    int u, br, idx;
    char rest[64];
    if (strstr(key, "num_batches_tracked")) return NULL;
    if (sscanf(key, "first_conv.%d.%63s", &idx, rest) == 2)
        snprintf(out, n, "stem.%s.%s", idx == 0 ? "conv" : "bn", rest);
    else if (sscanf(key, "features.%d.branch_main_%d.%d.%63s", &u, &br, &idx, rest) == 4) {
        const char *part = br == 2    ? (idx == 0 ? "pw2" : "pw2.bn")
                           : idx == 0 ? "pw1"
                           : idx == 1 ? "pw1.bn"
                           : idx == 3 ? "dw"
                                      : "dw.bn";
        snprintf(out, n, "units.%d.%s.%s", u, part, rest);
    } else if (sscanf(key, "classifier.0.%63s", rest) == 1)
        snprintf(out, n, "fc.%s", rest);
    else
        cr_assert_fail("unexpected key in keys.txt: %s", key);
    return out;
}

static inline int is_running_stat(const char *name) {
    return strstr(name, "running_mean") || strstr(name, "running_var");
}

#endif
