/* npy.c - NumPy .npy float32 reader and writer (see npy.h).
 *
 * A .npy file is the magic "\x93NUMPY", a major and minor version byte, the header length
 * (uint16 LE in 1.0, uint32 LE in 2.0/3.0), a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (1, 1000), } padded with spaces and a
 * newline, then the raw array data. */
#include "tools/npy.h"
#include "engine/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- header dict parser -------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes, copied into out (truncation is an error). */
static int parse_str(cursor *c, char *out, size_t outlen) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= outlen) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int parse_word(cursor *c, const char *w) {
    size_t n = strlen(w);
    skip_ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    c->p += n;
    return 1;
}

/* A non-negative decimal integer (Python 2 files may append 'L'). */
static int parse_dim(cursor *c, int64_t *v) {
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return -1;
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (x > (INT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    if (c->p < c->end && *c->p == 'L') c->p++;
    *v = x;
    return 0;
}

static int parse_shape(cursor *c, int64_t *shape, int *ndim, char *err, size_t errlen) {
    int n = 0;
    if (!eat(c, '(')) return sn_errf(err, errlen, "npy: header 'shape' is not a tuple");
    for (;;) {
        if (eat(c, ')')) break;
        if (n == SN_NPY_MAX_DIMS)
            return sn_errf(err, errlen, "npy: more than %d dimensions", SN_NPY_MAX_DIMS);
        if (parse_dim(c, &shape[n]) != 0)
            return sn_errf(err, errlen, "npy: header 'shape' holds a bad dimension");
        n++;
        if (eat(c, ',')) continue;
        if (eat(c, ')')) break;
        return sn_errf(err, errlen, "npy: header 'shape' tuple is malformed");
    }
    *ndim = n;
    return 0;
}

static int parse_header(const char *h, size_t len, int64_t *shape, int *ndim, char *err,
                        size_t errlen) {
    cursor c = {h, h + len};
    char key[32], descr[32];
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;

    if (!eat(&c, '{')) return sn_errf(err, errlen, "npy: header is not a dict");
    for (;;) {
        if (eat(&c, '}')) break;
        if (parse_str(&c, key, sizeof key) != 0)
            return sn_errf(err, errlen, "npy: header dict has a bad key");
        if (!eat(&c, ':'))
            return sn_errf(err, errlen, "npy: header dict lacks ':' after '%s'", key);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (parse_str(&c, descr, sizeof descr) != 0)
                return sn_errf(err, errlen, "npy: header 'descr' is not a simple dtype string");
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if (parse_word(&c, "True"))
                fortran = 1;
            else if (!parse_word(&c, "False"))
                return sn_errf(err, errlen, "npy: header 'fortran_order' is not True or False");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (parse_shape(&c, shape, ndim, err, errlen) != 0) return -1;
            have_shape = 1;
        } else {
            return sn_errf(err, errlen, "npy: unexpected or repeated header key '%s'", key);
        }
        if (eat(&c, ',')) continue;
        if (eat(&c, '}')) break;
        return sn_errf(err, errlen, "npy: header dict is malformed after '%s'", key);
    }
    skip_ws(&c);
    if (c.p != c.end) return sn_errf(err, errlen, "npy: junk after the header dict");
    if (!have_descr || !have_order || !have_shape)
        return sn_errf(err, errlen, "npy: header lacks '%s'",
                       !have_descr   ? "descr"
                       : !have_order ? "fortran_order"
                                     : "shape");
    if (strcmp(descr, "<f4") != 0)
        return sn_errf(err, errlen, "npy: dtype '%s' is not float32 little-endian ('<f4')", descr);
    if (fortran) return sn_errf(err, errlen, "npy: Fortran-order arrays are not supported");
    return 0;
}

/* ---- read ---------------------------------------------------------------------------- */

int sn_npy_parse(const uint8_t *buf, size_t len, float **data, int64_t *shape, int *ndim, char *err,
                 size_t errlen) {
    *data = NULL;
    *ndim = 0;
    if (len < 10 || memcmp(buf, npy_magic, 6) != 0)
        return sn_errf(err, errlen, "npy: not a .npy file (bad magic)");
    int major = buf[6], minor = buf[7];
    size_t hlen, pre;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return sn_errf(err, errlen, "npy: file truncated in the preamble");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        pre = 12;
    } else {
        return sn_errf(err, errlen, "npy: unsupported format version %d.%d", major, minor);
    }
    if (minor != 0)
        return sn_errf(err, errlen, "npy: unsupported format version %d.%d", major, minor);
    if (hlen > len - pre)
        return sn_errf(err, errlen,
                       "npy: header length %zu runs past the end of the file (%zu bytes)", hlen,
                       len);
    if (memchr(buf + pre, 0, hlen)) return sn_errf(err, errlen, "npy: header holds a NUL byte");
    if (parse_header((const char *)buf + pre, hlen, shape, ndim, err, errlen) != 0) return -1;

    size_t count = 1;
    for (int i = 0; i < *ndim; i++) {
        if (shape[i] != 0 && count > SIZE_MAX / sizeof(float) / (uint64_t)shape[i])
            return sn_errf(err, errlen, "npy: shape is too large");
        count *= (size_t)shape[i];
    }
    size_t have = len - pre - hlen;
    if (have != count * sizeof(float))
        return sn_errf(err, errlen, "npy: shape needs %zu data bytes, the file has %zu",
                       count * sizeof(float), have);
    float *out = malloc(count ? count * sizeof(float) : sizeof(float));
    if (!out) return sn_errf(err, errlen, "npy: out of memory for %zu floats", count);
    memcpy(out, buf + pre + hlen, count * sizeof(float));
    *data = out;
    return 0;
}

int sn_npy_read(const char *path, float **data, int64_t *shape, int *ndim, char *err,
                size_t errlen) {
    *data = NULL;
    *ndim = 0;
    size_t size;
    uint8_t *buf = sn_read_file(path, 0, &size, err, errlen);
    if (!buf) return -1;
    char msg[256];
    int rc = sn_npy_parse(buf, size, data, shape, ndim, msg, sizeof msg);
    free(buf);
    if (rc != 0) return sn_errf(err, errlen, "%s: %s", path, msg);
    return 0;
}

/* ---- write --------------------------------------------------------------------------- */

int sn_npy_write(const char *path, const float *data, const int64_t *shape, int ndim, char *err,
                 size_t errlen) {
    if (ndim < 0 || ndim > SN_NPY_MAX_DIMS)
        return sn_errf(err, errlen, "%s: cannot write %d dimensions", path, ndim);
    char h[512];
    size_t n = 0, count = 1;
    n += (size_t)snprintf(h + n, sizeof h - n,
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return sn_errf(err, errlen, "%s: negative dimension", path);
        if (shape[i] != 0 && count > SIZE_MAX / sizeof(float) / (uint64_t)shape[i])
            return sn_errf(err, errlen, "%s: shape is too large", path);
        count *= (size_t)shape[i];
        n += (size_t)snprintf(h + n, sizeof h - n, "%lld%s", (long long)shape[i],
                              ndim == 1      ? ","
                              : i + 1 < ndim ? ", "
                                             : "");
    }
    n += (size_t)snprintf(h + n, sizeof h - n, "), }");
    /* Pad with spaces so that preamble + header is a multiple of 64, ending in '\n'. */
    size_t total = (10 + n + 1 + 63) / 64 * 64;
    memset(h + n, ' ', total - 10 - n);
    n = total - 10;
    h[n - 1] = '\n';

    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    FILE *f = fopen(path, "wb");
    if (!f) return sn_errf(err, errlen, "%s: %s", path, strerror(errno));
    int ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre && fwrite(h, 1, n, f) == n &&
             (count == 0 || fwrite(data, sizeof(float), count, f) == count);
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        remove(path);
        return sn_errf(err, errlen, "%s: write failed", path);
    }
    return 0;
}
