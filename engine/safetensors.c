/* safetensors.c - safetensors reader (validating) and writer.
 *
 * Reading trusts nothing: the header length must fit the file, the header must be a JSON
 * object, every tensor must have a known dtype, a shape whose element count matches its byte
 * range, and a byte range inside the data section that overlaps no other tensor. */
#include "engine/safetensors.h"
#include "engine/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER (100u << 20) /* 100 MiB of JSON is far beyond any real model */

static const struct {
    const char *name;
    sn_dtype dt;
    int size;
} dtypes[] = {
    {"F32", SN_DT_F32, 4},   {"F16", SN_DT_F16, 2},   {"BF16", SN_DT_BF16, 2},
    {"F64", SN_DT_F64, 8},   {"I64", SN_DT_I64, 8},   {"I32", SN_DT_I32, 4},
    {"I16", SN_DT_OTHER, 2}, {"I8", SN_DT_I8, 1},     {"U8", SN_DT_U8, 1},
    {"BOOL", SN_DT_BOOL, 1}, {"U16", SN_DT_OTHER, 2}, {"U32", SN_DT_OTHER, 4},
    {"U64", SN_DT_OTHER, 8},
};

static int lookup_dtype(const char *s, sn_dtype *dt, int *size, const char **name) {
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (!strcmp(s, dtypes[i].name)) {
            *dt = dtypes[i].dt;
            *size = dtypes[i].size;
            *name = dtypes[i].name;
            return 0;
        }
    return -1;
}

typedef struct {
    uint64_t begin, end;
    int idx;
} range;

static int cmp_range(const void *a, const void *b) {
    const range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : (x->end > y->end);
}

void sn_st_close(sn_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->buf);
    memset(f, 0, sizeof(*f));
}

static int parse_tensor(const char *name, json_t *v, const uint8_t *data, uint64_t datalen,
                        sn_st_tensor *t, char *err, size_t errlen) {
    if (!json_is_object(v)) {
        sn_errf(err, errlen, "tensor '%s': entry is not an object", name);
        return -1;
    }
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
        json_array_size(jo) != 2) {
        sn_errf(err, errlen, "tensor '%s': needs dtype, shape and data_offsets [begin, end]", name);
        return -1;
    }
    int esize;
    if (lookup_dtype(json_string_value(jd), &t->dtype, &esize, &t->dtype_name)) {
        sn_errf(err, errlen, "tensor '%s': unknown dtype '%s'", name, json_string_value(jd));
        return -1;
    }
    size_t nd = json_array_size(js);
    if (nd > SN_ST_MAX_DIMS) {
        sn_errf(err, errlen, "tensor '%s': %zu dimensions (max %d)", name, nd, SN_ST_MAX_DIMS);
        return -1;
    }
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 ||
            json_integer_value(d) > (1LL << 40)) {
            sn_errf(err, errlen, "tensor '%s': bad shape dimension %zu", name, i);
            return -1;
        }
        t->shape[i] = json_integer_value(d);
        numel *= (uint64_t)t->shape[i];
        if (numel > (1ULL << 40)) {
            sn_errf(err, errlen, "tensor '%s': shape too large", name);
            return -1;
        }
    }
    json_t *b = json_array_get(jo, 0), *e = json_array_get(jo, 1);
    if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
        json_integer_value(e) < json_integer_value(b)) {
        sn_errf(err, errlen, "tensor '%s': bad data_offsets", name);
        return -1;
    }
    uint64_t begin = (uint64_t)json_integer_value(b), end = (uint64_t)json_integer_value(e);
    if (end > datalen) {
        sn_errf(err, errlen,
                "tensor '%s': data_offsets [%llu, %llu] outside the data section (%llu bytes)",
                name, (unsigned long long)begin, (unsigned long long)end,
                (unsigned long long)datalen);
        return -1;
    }
    if (end - begin != numel * (uint64_t)esize) {
        sn_errf(err, errlen, "tensor '%s': %llu bytes for %llu elements of %s", name,
                (unsigned long long)(end - begin), (unsigned long long)numel, t->dtype_name);
        return -1;
    }
    t->numel = (int64_t)numel;
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    return 0;
}

int sn_st_parse(uint8_t *buf, size_t size, sn_st_file *f, char *err, size_t errlen) {
    memset(f, 0, sizeof(*f));
    f->buf = buf;
    f->size = size;
    if (size < 8) {
        sn_errf(err, errlen, "file too short for a safetensors header (%zu bytes)", size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > size - 8 || hlen > MAX_HEADER) {
        sn_errf(err, errlen, "header length %llu is beyond the file (%zu bytes)",
                (unsigned long long)hlen, size);
        goto fail;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        sn_errf(err, errlen, "header is not valid JSON: %s (at byte %d)", je.text, je.position);
        goto fail;
    }
    if (!json_is_object(root)) {
        sn_errf(err, errlen, "header is not a JSON object");
        json_decref(root);
        goto fail;
    }
    const uint8_t *data = buf + 8 + hlen;
    uint64_t datalen = size - 8 - hlen;
    size_t n = json_object_size(root);
    f->tensors = calloc(n ? n : 1, sizeof(*f->tensors));
    range *ranges = calloc(n ? n : 1, sizeof(*ranges));
    if (!f->tensors || !ranges) {
        free(ranges);
        json_decref(root);
        sn_errf(err, errlen, "out of memory");
        goto fail;
    }
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val)) {
                sn_errf(err, errlen, "__metadata__ is not an object");
                rc = -1;
                break;
            }
            size_t m = json_object_size(val);
            f->meta_keys = calloc(m ? m : 1, sizeof(char *));
            f->meta_vals = calloc(m ? m : 1, sizeof(char *));
            if (!f->meta_keys || !f->meta_vals) {
                sn_errf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    sn_errf(err, errlen, "__metadata__ value for '%s' is not a string", mk);
                    rc = -1;
                    break;
                }
                f->meta_keys[f->nmeta] = strdup(mk);
                f->meta_vals[f->nmeta] = strdup(json_string_value(mv));
                f->nmeta++;
            }
            if (rc) break;
            continue;
        }
        sn_st_tensor *t = &f->tensors[f->ntensors];
        if (parse_tensor(key, val, data, datalen, t, err, errlen)) {
            rc = -1;
            break;
        }
        t->name = strdup(key);
        ranges[f->ntensors] =
            (range){(uint64_t)((const uint8_t *)t->data - data),
                    (uint64_t)((const uint8_t *)t->data - data) + t->nbytes, f->ntensors};
        f->ntensors++;
    }
    json_decref(root);
    if (!rc) {
        qsort(ranges, (size_t)f->ntensors, sizeof(*ranges), cmp_range);
        for (int i = 1; i < f->ntensors; i++)
            if (ranges[i].begin < ranges[i - 1].end && ranges[i].end > ranges[i].begin) {
                sn_errf(err, errlen, "tensors '%s' and '%s' overlap in the data section",
                        f->tensors[ranges[i - 1].idx].name, f->tensors[ranges[i].idx].name);
                rc = -1;
                break;
            }
    }
    free(ranges);
    if (rc) goto fail;
    return 0;
fail:
    sn_st_close(f);
    return -1;
}

int sn_st_open(const char *path, sn_st_file *f, char *err, size_t errlen) {
    memset(f, 0, sizeof(*f));
    size_t sz;
    uint8_t *buf = sn_read_file(path, 0, &sz, err, errlen);
    if (!buf) return -1;
    char inner[256];
    if (sn_st_parse(buf, sz, f, inner, sizeof(inner))) {
        sn_errf(err, errlen, "%s: %s", path, inner);
        return -1;
    }
    return 0;
}

const sn_st_tensor *sn_st_find(const sn_st_file *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *sn_st_meta(const sn_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
    return NULL;
}

void sn_st_copy_f32(const sn_st_tensor *t, float *dst) {
    memcpy(dst, t->data, (size_t)t->numel * sizeof(float)); /* little-endian host */
}

/* ---- writer ---------------------------------------------------------------------------- */

typedef struct {
    char *name;
    float *data;
    int ndim;
    int64_t shape[SN_ST_MAX_DIMS];
    size_t numel;
} wtensor;

struct sn_st_writer {
    json_t *meta;
    wtensor *t;
    int n, cap;
};

sn_st_writer *sn_st_writer_new(void) {
    sn_st_writer *w = calloc(1, sizeof(*w));
    if (!w) return NULL;
    w->meta = json_object();
    if (!w->meta) {
        free(w);
        return NULL;
    }
    return w;
}

int sn_st_writer_meta(sn_st_writer *w, const char *key, const char *value) {
    return json_object_set_new(w->meta, key, json_string(value));
}

int sn_st_writer_add_f32(sn_st_writer *w, const char *name, const float *data, int ndim,
                         const int64_t *shape) {
    if (ndim < 0 || ndim > SN_ST_MAX_DIMS) return -1;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        wtensor *nt = realloc(w->t, (size_t)cap * sizeof(*nt));
        if (!nt) return -1;
        w->t = nt;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof(*t));
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->ndim = ndim;
    t->name = strdup(name);
    t->data = malloc(t->numel ? t->numel * sizeof(float) : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return -1;
    }
    memcpy(t->data, data, t->numel * sizeof(float));
    w->n++;
    return 0;
}

int sn_st_writer_save(sn_st_writer *w, const char *path, char *err, size_t errlen) {
    json_t *root = json_object();
    if (json_object_size(w->meta)) json_object_set(root, "__metadata__", w->meta);
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        json_t *shape = json_array();
        for (int d = 0; d < w->t[i].ndim; d++)
            json_array_append_new(shape, json_integer(w->t[i].shape[d]));
        size_t nb = w->t[i].numel * sizeof(float);
        json_t *e = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                              (json_int_t)off, (json_int_t)(off + nb));
        json_object_set_new(root, w->t[i].name, e);
        off += nb;
    }
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!hdr) {
        sn_errf(err, errlen, "%s: cannot encode the header", path);
        return -1;
    }
    size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7; /* keep data 8-byte aligned */
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        sn_errf(err, errlen, "%s: %s", tmp, strerror(errno));
        free(hdr);
        return -1;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(hdr, 1, hl, fp) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    for (int i = 0; ok && i < w->n; i++)
        ok = fwrite(w->t[i].data, sizeof(float), w->t[i].numel, fp) == w->t[i].numel;
    free(hdr);
    if (fclose(fp) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        sn_errf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

void sn_st_writer_free(sn_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->t);
    json_decref(w->meta);
    free(w);
}
