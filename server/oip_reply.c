/* oip_reply.c - sn_oip_response: the Open Inference Protocol inference response, JSON or
 * JSON header + binary tensor data (Triton's binary extension), with classification outputs
 * ("value:index:label", best first, as Triton's classification extension). FP32 values are
 * written with 9 significant digits, so JSON and binary give back the same float32. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shufflenet.h"
#include "server/oip.h"

typedef struct {
    uint8_t *p;
    size_t len, cap;
} bin_buf;

static int bin_put(bin_buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->len + n) nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

typedef struct {
    const float *v;
    int i;
} ranked;

/* Best first; ties: the lower index first (as sn_topk). */
static int by_value(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v[x->i] != y->v[y->i]) return x->v[x->i] > y->v[y->i] ? -1 : 1;
    return x->i - y->i;
}

/* The K best of row[0..n) into r[0..K), best first: insertion into a sorted K-list for a
 * small K (most values fail the first comparison), a full sort beyond. */
static void top_k(const float *row, int n, int K, ranked *r) {
    if (K > 64) {
        for (int c = 0; c < n; c++) r[c] = (ranked){row, c};
        qsort(r, (size_t)n, sizeof *r, by_value);
        return;
    }
    int have = 0;
    for (int c = 0; c < n; c++) {
        if (have == K && !(row[c] > row[r[K - 1].i])) continue; /* ties keep the lower index */
        int k = have < K ? have++ : K - 1;
        while (k > 0 && row[c] > row[r[k - 1].i]) {
            r[k] = r[k - 1];
            k--;
        }
        r[k] = (ranked){row, c};
    }
}

/* One output tensor: JSON "data", or appended to bin with its binary_data_size. */
static json_t *output_json(const sn_oip_request *q, int k, const float *values, int classes,
                           const sn_labels *labels, bin_buf *bin) {
    const sn_oip_output *o = &q->out[k];
    int n = q->n, K = o->classify;
    json_t *data = json_array(), *shape = json_pack("[i,i]", n, K ? K : classes);
    json_t *out =
        json_pack("{s:s,s:s,s:o}", "name", k == SN_OIP_LOGITS ? "logits" : "probabilities",
                  "datatype", K ? "BYTES" : "FP32", "shape", shape);
    ranked *r = K ? malloc((size_t)classes * sizeof *r) : NULL;
    size_t start = bin->len;
    int bad = !data || !out || (K && !r);
    for (int i = 0; i < n && !bad; i++) {
        const float *row = values + (size_t)i * classes;
        if (!K) {
            if (o->binary)
                bad = bin_put(bin, row, (size_t)classes * sizeof *row);
            else
                for (int c = 0; c < classes && !bad; c++)
                    bad = json_array_append_new(data, json_real((double)row[c]));
            continue;
        }
        top_k(row, classes, K, r);
        for (int t = 0; t < K && !bad; t++) {
            int c = r[t].i;
            char s[512];
            int len = snprintf(s, sizeof s, "%f:%d:%s", (double)row[c], c,
                               labels && c < labels->count ? labels->label[c] : "");
            if (len >= (int)sizeof s) len = (int)sizeof s - 1;
            if (o->binary) {
                uint8_t pre[4] = {(uint8_t)len, (uint8_t)(len >> 8), 0, 0};
                bad = bin_put(bin, pre, 4) || bin_put(bin, s, (size_t)len);
            } else {
                bad = json_array_append_new(data, json_stringn(s, (size_t)len));
            }
        }
    }
    free(r);
    if (o->binary && !bad)
        bad = json_object_set_new(
            out, "parameters",
            json_pack("{s:I}", "binary_data_size", (json_int_t)(bin->len - start)));
    /* "data" stays (empty) for a binary output: the OpenAPI schema requires it, and Triton's
     * clients read binary_data_size first */
    if (bad)
        json_decref(data);
    else if (json_object_set_new(out, "data", data) == 0) /* takes data, also on failure */
        return out;
    json_decref(out);
    return NULL;
}

char *sn_oip_response(const sn_oip_model *m, const sn_oip_request *q, const char *model_name,
                      const char *version, const float *logits, const sn_labels *labels,
                      size_t *len, size_t *json_len) {
    int classes = m->num_classes;
    size_t nv = (size_t)q->n * classes;
    float *probs = malloc(nv * sizeof *probs);
    json_t *outs = json_array(), *root = json_object();
    bin_buf bin = {0};
    char *body = NULL, *s = NULL;
    if (!probs || !outs || !root) goto out;
    memcpy(probs, logits, nv * sizeof *probs);
    for (int i = 0; i < q->n; i++) sn_softmax(probs + (size_t)i * classes, classes);
    for (int t = 0; t < q->nout; t++) {
        int k = q->order[t];
        json_t *o = output_json(q, k, k == SN_OIP_LOGITS ? logits : probs, classes, labels, &bin);
        if (!o || json_array_append_new(outs, o)) goto out;
    }
    json_object_set_new(root, "model_name", json_string(model_name));
    if (version) json_object_set_new(root, "model_version", json_string(version));
    if (q->id) json_object_set_new(root, "id", json_string(q->id));
    json_object_set_new(root, "outputs", outs);
    outs = NULL;
    s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    if (!s) goto out;
    size_t jl = strlen(s);
    body = malloc(jl + bin.len + 1);
    if (!body) goto out;
    memcpy(body, s, jl);
    if (bin.len) memcpy(body + jl, bin.p, bin.len);
    body[jl + bin.len] = 0;
    *len = jl + bin.len;
    int any_binary = 0;
    for (int t = 0; t < q->nout; t++) any_binary |= q->out[q->order[t]].binary;
    *json_len = any_binary ? jl : 0;
out:
    free(s);
    free(bin.p);
    free(probs);
    json_decref(outs);
    json_decref(root);
    return body;
}
