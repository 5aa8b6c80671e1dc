/* oip.c - sn_oip_parse: an Open Inference Protocol inference request (JSON header plus any
 * binary tensor data), checked against the model. Pure: the HTTP handler (v2.c) and the
 * fuzz target (tests/fuzz/fuzz_oip.c) both call it. The response is built in oip_reply.c. */
#include "server/oip.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32 /* nesting of the JSON header; a valid request needs 7 */

typedef struct {
    const sn_oip_model *m;
    sn_oip_request *q;
    char *err;
    size_t errlen;
    int oom;
} parser;

static int fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int oom(parser *p) {
    p->oom = 1;
    snprintf(p->err, p->errlen, "out of memory");
    return -1;
}
static int fail(parser *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Counts the JSON values in s (an upper bound: commas and containers outside strings) and
 * the nesting depth, without allocating. -1 when over max_values or MAX_DEPTH. */
static long long scan(parser *p, const uint8_t *s, size_t n, size_t max_values) {
    size_t values = 1;
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > MAX_DEPTH)
                return fail(p, "request JSON nests deeper than %d levels", MAX_DEPTH);
            values++;
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == ',') {
            values++;
        }
        if (values > max_values)
            return fail(p,
                        "request JSON holds more than %zu values, more than any valid "
                        "request for this model",
                        max_values);
    }
    return (long long)values;
}

/* ---- base64 (RFC 4648, standard alphabet, padding optional) ------------------------------ */

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decoded size of s[0..n), or -1 when it is not base64. */
static long long b64_size(const char *s, size_t n) {
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) n--, pad++;
    if (n % 4 == 1 || (pad && (n + pad) % 4 != 0)) return -1;
    for (size_t i = 0; i < n; i++)
        if (b64val((unsigned char)s[i]) < 0) return -1;
    return (long long)(n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
}

/* Decodes s (checked by b64_size) into out; returns the bytes written. */
static size_t b64_decode(const char *s, size_t n, uint8_t *out) {
    while (n > 0 && s[n - 1] == '=') n--;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 6) | (uint32_t)b64val((unsigned char)s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

/* The leaves of a (nested) data array, in row-major order: checks and counts them, and with
 * out set stores them. Returns the count, or -1 after fail(). */
typedef int (*leaf_fn)(parser *p, json_t *v, size_t i, void *out);

static long long walk(parser *p, json_t *a, int depth, leaf_fn f, void *out, size_t *i,
                      const char *name) {
    if (depth > MAX_DEPTH) return fail(p, "input \"%s\": data nests too deeply", name);
    size_t k;
    json_t *v;
    json_array_foreach(a, k, v) {
        if (json_is_array(v)) {
            if (walk(p, v, depth + 1, f, out, i, name) < 0) return -1;
        } else {
            if (f(p, v, *i, out) < 0) return -1;
            (*i)++;
        }
    }
    return (long long)*i;
}

static int leaf_float(parser *p, json_t *v, size_t i, void *out) {
    if (!json_is_number(v))
        return fail(p, "input \"input\": data element %zu is not a number (FP32)", i);
    float f = (float)json_number_value(v);
    if (!isfinite(f))
        return fail(p, "input \"input\": data element %zu (%g) is out of the FP32 range", i,
                    json_number_value(v));
    if (out) ((float *)out)[i] = f;
    return 0;
}

static int leaf_string(parser *p, json_t *v, size_t i, void *out) {
    if (!json_is_string(v))
        return fail(p,
                    "input \"image\": data element %zu is not a string (BYTES: a base64 "
                    "encoded image)",
                    i);
    if (out) ((json_t **)out)[i] = v;
    return 0;
}

/* "[1, 3, 224, 224]" into buf. */
static const char *shape_str(json_t *shape, char *buf, size_t cap) {
    size_t o = 0, k;
    json_t *v;
    o += (size_t)snprintf(buf, cap, "[");
    json_array_foreach(shape, k, v) {
        if (o >= cap) break;
        if (json_is_integer(v))
            o += (size_t)snprintf(buf + o, cap - o, "%s%lld", k ? ", " : "",
                                  (long long)json_integer_value(v));
        else
            o += (size_t)snprintf(buf + o, cap - o, "%s?", k ? ", " : "");
    }
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

static int is_bool_param(parser *p, json_t *params, const char *key, const char *where, int *out) {
    json_t *v = json_object_get(params, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return fail(p, "%sparameters.%s must be true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

/* ---- the input ------------------------------------------------------------------------- */

/* Checks name, datatype and shape; sets q->image and q->n. */
static int check_input_head(parser *p, json_t *in, const char **name) {
    const sn_oip_model *m = p->m;
    sn_oip_request *q = p->q;
    json_t *jn = json_object_get(in, "name"), *jd = json_object_get(in, "datatype");
    json_t *js = json_object_get(in, "shape");
    if (!json_is_string(jn)) return fail(p, "inputs[0].name is missing or not a string");
    *name = json_string_value(jn);
    if (strcmp(*name, SN_OIP_INPUT_IMAGE) == 0)
        q->image = 1;
    else if (strcmp(*name, SN_OIP_INPUT_TENSOR) != 0)
        return fail(p,
                    "unknown input \"%.64s\": this model takes \"image\" (BYTES, encoded "
                    "JPEG/PNG) or \"input\" (FP32 [N, 3, %d, %d])",
                    *name, m->input_size, m->input_size);
    const char *want = q->image ? "BYTES" : "FP32";
    if (!json_is_string(jd)) return fail(p, "input \"%s\": datatype is missing", *name);
    if (strcmp(json_string_value(jd), want) != 0)
        return fail(p, "input \"%s\": datatype must be %s, got \"%.32s\"", *name, want,
                    json_string_value(jd));
    if (!json_is_array(js)) return fail(p, "input \"%s\": shape is missing", *name);
    size_t nd = json_array_size(js);
    char sh[96];
    for (size_t k = 0; k < nd; k++)
        if (!json_is_integer(json_array_get(js, k)) ||
            json_integer_value(json_array_get(js, k)) < 0)
            return fail(p, "input \"%s\": shape %s: every dimension must be an integer >= 0", *name,
                        shape_str(js, sh, sizeof sh));
    long long d[4] = {0};
    for (size_t k = 0; k < nd && k < 4; k++) d[k] = json_integer_value(json_array_get(js, k));
    int S = m->input_size;
    int ok = q->image ? (nd == 1 || (nd == 2 && d[1] == 1))
                      : (nd == 4 && d[1] == 3 && d[2] == S && d[3] == S);
    if (!ok) {
        if (q->image)
            return fail(p, "input \"image\": shape must be [N] or [N, 1], got %s",
                        shape_str(js, sh, sizeof sh));
        return fail(p, "input \"input\": shape must be [N, 3, %d, %d], got %s", S, S,
                    shape_str(js, sh, sizeof sh));
    }
    if (d[0] < 1) return fail(p, "input \"%s\": the batch (shape[0]) must be at least 1", *name);
    if (d[0] > m->max_batch)
        return fail(p,
                    "input \"%s\": batch %lld is over this model's limit of %d "
                    "(max_batch_size in its metadata)",
                    *name, d[0], m->max_batch);
    q->n = (int)d[0];
    return 0;
}

static size_t tensor_floats(const parser *p) {
    return (size_t)p->q->n * 3 * (size_t)p->m->input_size * (size_t)p->m->input_size;
}

/* FP32 data from JSON. */
static int tensor_json(parser *p, json_t *data) {
    size_t want = tensor_floats(p), i = 0;
    long long have = walk(p, data, 0, leaf_float, NULL, &i, "input");
    if (have < 0) return -1;
    if ((size_t)have != want)
        return fail(p, "input \"input\": shape [%d, 3, %d, %d] needs %zu values, data has %lld",
                    p->q->n, p->m->input_size, p->m->input_size, want, have);
    p->q->tensor = malloc(want * sizeof(float));
    if (!p->q->tensor) return oom(p);
    i = 0;
    return walk(p, data, 0, leaf_float, p->q->tensor, &i, "input") < 0 ? -1 : 0;
}

/* BYTES data from JSON: base64 strings. */
static int images_json(parser *p, json_t *data) {
    sn_oip_request *q = p->q;
    size_t i = 0;
    long long have = walk(p, data, 0, leaf_string, NULL, &i, "image");
    if (have < 0) return -1;
    if (have != q->n)
        return fail(p, "input \"image\": shape says %d images, data has %lld", q->n, have);
    json_t **s = calloc((size_t)q->n, sizeof *s);
    if (!s) return oom(p);
    i = 0;
    if (walk(p, data, 0, leaf_string, s, &i, "image") < 0) {
        free(s);
        return -1;
    }
    size_t total = 0;
    for (int k = 0; k < q->n; k++) {
        long long sz = b64_size(json_string_value(s[k]), json_string_length(s[k]));
        if (sz < 0) {
            free(s);
            return fail(p, "input \"image\": data element %d is not valid base64", k);
        }
        q->img_len[k] = (size_t)sz;
        total += (size_t)sz;
    }
    q->buf = malloc(total ? total : 1);
    if (!q->buf) {
        free(s);
        return oom(p);
    }
    size_t o = 0;
    for (int k = 0; k < q->n; k++) {
        q->img[k] = q->buf + o;
        o += b64_decode(json_string_value(s[k]), json_string_length(s[k]), q->buf + o);
    }
    free(s);
    return 0;
}

static uint32_t le32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* BYTES data from the binary part: n elements, each after its 4-byte little-endian length
 * (Triton), or one element without it (OpenVINO's examples). */
static int images_binary(parser *p, const uint8_t *b, size_t size) {
    sn_oip_request *q = p->q;
    size_t o = 0;
    int k = 0;
    while (k < q->n && size - o >= 4) {
        size_t l = le32(b + o);
        if (l > size - o - 4) break;
        q->img[k] = b + o + 4;
        q->img_len[k++] = l;
        o += 4 + l;
    }
    if (k == q->n && o == size) return 0;
    if (q->n == 1) { /* the whole part is the one element */
        q->img[0] = b;
        q->img_len[0] = size;
        return 0;
    }
    return fail(p,
                "input \"image\": binary data of %zu bytes is not %d elements, each after "
                "its 4-byte little-endian length",
                size, q->n);
}

static int tensor_binary(parser *p, const uint8_t *b, size_t size) {
    size_t want = tensor_floats(p);
    if (size != want * sizeof(float))
        return fail(p,
                    "input \"input\": binary_data_size is %zu bytes, shape [%d, 3, %d, %d] "
                    "of FP32 needs %zu",
                    size, p->q->n, p->m->input_size, p->m->input_size, want * sizeof(float));
    float *t = malloc(size);
    if (!t) return oom(p);
    memcpy(t, b, size); /* little-endian, as this machine */
    p->q->tensor = t;
    for (size_t i = 0; i < want; i++)
        if (!isfinite(t[i]))
            return fail(p, "input \"input\": element %zu is not a finite number", i);
    return 0;
}

/* The one input; *bin_used gets the binary bytes it took. */
static int parse_input(parser *p, json_t *in, const uint8_t *bin, size_t bin_len, int have_bin,
                       size_t *bin_used) {
    sn_oip_request *q = p->q;
    const char *name = "";
    if (!json_is_object(in)) return fail(p, "inputs[0] must be an object");
    if (check_input_head(p, in, &name) < 0) return -1;
    json_t *params = json_object_get(in, "parameters"), *data = json_object_get(in, "data");
    if (json_is_null(data)) data = NULL; /* "data": null is no data */
    if (params && !json_is_object(params))
        return fail(p, "input \"%s\": parameters must be an object", name);
    json_t *bds = json_object_get(params, "binary_data_size");
    if (q->image) {
        q->img = calloc((size_t)q->n, sizeof *q->img);
        q->img_len = calloc((size_t)q->n, sizeof *q->img_len);
        if (!q->img || !q->img_len) return oom(p);
    }
    if (bds && data) return fail(p, "input \"%s\": give data or binary_data_size, not both", name);
    if (!bds) {
        if (!data) return fail(p, "input \"%s\": no data (nor parameters.binary_data_size)", name);
        if (!json_is_array(data)) return fail(p, "input \"%s\": data must be an array", name);
        return q->image ? images_json(p, data) : tensor_json(p, data);
    }
    if (!json_is_integer(bds) || json_integer_value(bds) < 0)
        return fail(p, "input \"%s\": parameters.binary_data_size must be an integer >= 0", name);
    if (!have_bin)
        return fail(p,
                    "input \"%s\": binary_data_size needs the Inference-Header-Content-Length "
                    "header (the JSON's length)",
                    name);
    json_int_t size = json_integer_value(bds);
    if ((unsigned long long)size > bin_len)
        return fail(p,
                    "input \"%s\": binary_data_size %lld is more than the %zu bytes after the "
                    "JSON header",
                    name, (long long)size, bin_len);
    *bin_used = (size_t)size;
    return q->image ? images_binary(p, bin, (size_t)size) : tensor_binary(p, bin, (size_t)size);
}

/* ---- outputs --------------------------------------------------------------------------- */

static int parse_outputs(parser *p, json_t *outs, int binary_default) {
    sn_oip_request *q = p->q;
    if (outs && !json_is_array(outs)) return fail(p, "outputs must be an array");
    if (!outs || json_array_size(outs) == 0) {
        for (int k = 0; k < SN_OIP_NOUT; k++) {
            q->out[k] = (sn_oip_output){1, 0, binary_default};
            q->order[q->nout++] = k;
        }
        return 0;
    }
    size_t i;
    json_t *o;
    json_array_foreach(outs, i, o) {
        json_t *jn = json_object_get(o, "name");
        if (!json_is_object(o) || !json_is_string(jn))
            return fail(p, "outputs[%zu] must be an object with a name", i);
        const char *name = json_string_value(jn);
        int k = strcmp(name, "logits") == 0          ? SN_OIP_LOGITS
                : strcmp(name, "probabilities") == 0 ? SN_OIP_PROBS
                                                     : -1;
        if (k < 0)
            return fail(p,
                        "unknown output \"%.64s\": this model returns \"logits\" and "
                        "\"probabilities\"",
                        name);
        if (q->out[k].want) return fail(p, "output \"%s\" is asked for twice", name);
        sn_oip_output *out = &q->out[k];
        *out = (sn_oip_output){1, 0, binary_default};
        json_t *params = json_object_get(o, "parameters");
        if (params && !json_is_object(params))
            return fail(p, "output \"%s\": parameters must be an object", name);
        char where[64];
        snprintf(where, sizeof where, "output \"%s\": ", name);
        if (is_bool_param(p, params, "binary_data", where, &out->binary) < 0) return -1;
        json_t *c = json_object_get(params, "classification");
        if (c) {
            if (!json_is_integer(c) || json_integer_value(c) < 1 ||
                json_integer_value(c) > p->m->num_classes)
                return fail(p,
                            "output \"%s\": parameters.classification must be an integer in "
                            "1..%d",
                            name, p->m->num_classes);
            out->classify = (int)json_integer_value(c);
        }
        q->order[q->nout++] = k;
    }
    return 0;
}

/* ---- the request ----------------------------------------------------------------------- */

static int parse_root(parser *p, json_t *root, const uint8_t *bin, size_t bin_len, int have_bin) {
    sn_oip_request *q = p->q;
    if (!json_is_object(root)) return fail(p, "the request must be a JSON object");
    json_t *id = json_object_get(root, "id"), *params = json_object_get(root, "parameters");
    json_t *inputs = json_object_get(root, "inputs");
    if (id) {
        if (!json_is_string(id)) return fail(p, "id must be a string");
        q->id = strdup(json_string_value(id));
        if (!q->id) return oom(p);
    }
    if (params && !json_is_object(params)) return fail(p, "parameters must be an object");
    int binary_default = 0;
    if (is_bool_param(p, params, "binary_data_output", "", &binary_default) < 0) return -1;
    if (!json_is_array(inputs)) return fail(p, "inputs is missing or not an array");
    if (json_array_size(inputs) != 1)
        return fail(p, "exactly one input per request (\"image\" or \"input\"), got %zu",
                    json_array_size(inputs));
    size_t used = 0;
    if (parse_input(p, json_array_get(inputs, 0), bin, bin_len, have_bin, &used) < 0) return -1;
    if (used != bin_len)
        return fail(p,
                    "%zu bytes of binary data follow the JSON header, but the inputs' "
                    "binary_data_size add up to %zu",
                    bin_len, used);
    return parse_outputs(p, json_object_get(root, "outputs"), binary_default);
}

int sn_oip_parse(const sn_oip_model *m, const uint8_t *body, size_t len, long long header_len,
                 sn_oip_request *req, char *err, size_t errlen) {
    parser p = {m, req, err, errlen, 0};
    memset(req, 0, sizeof *req);
    size_t jlen = len;
    if (header_len >= 0) {
        if ((unsigned long long)header_len > len)
            return fail(&p, "Inference-Header-Content-Length %lld is more than the %zu-byte body",
                        header_len, len);
        jlen = (size_t)header_len;
    }
    if (jlen == 0) return fail(&p, "empty request: expected a JSON inference request");
    size_t max_values =
        (size_t)m->max_batch * 3 * (size_t)m->input_size * (size_t)m->input_size + 4096;
    long long values = scan(&p, body, jlen, max_values);
    if (values < 0) return -1;
    long long tree = values * SN_OIP_JSON_BYTES;
    if (m->reserve && m->reserve(m->budget_ctx, tree) != 0) {
        fail(&p,
             "memory budget: this request's JSON (%lld values) needs about %lld bytes to "
             "parse and does not fit now; retry later, or send tensors in binary",
             values, tree);
        return -3;
    }
    json_error_t je;
    json_t *root = json_loadb((const char *)body, jlen, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        if (m->release) m->release(m->budget_ctx, tree);
        return fail(&p, "request JSON: %s (byte %d)", je.text, je.position);
    }
    int rc = parse_root(&p, root, body + jlen, len - jlen, header_len >= 0);
    json_decref(root);
    if (m->release) m->release(m->budget_ctx, tree);
    if (rc < 0) sn_oip_request_free(req);
    return rc < 0 && p.oom ? -2 : rc;
}

void sn_oip_request_free(sn_oip_request *q) {
    free(q->id);
    free(q->img);
    free(q->img_len);
    free(q->tensor);
    free(q->buf);
    memset(q, 0, sizeof *q);
}
