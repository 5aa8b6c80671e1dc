/* classify.c - POST /classify and /v1/models/{name}/classify: the service's own JSON API.
 *
 * From the headers: the model (path or ?model=), top_k, Content-Encoding, admission. With
 * the body in: split it into images (a raw body is one image, multipart/form-data may hold
 * several), answer an empty or foreign part at once (it never takes a queue slot), queue
 * one job per image and suspend. When the workers are done: one JSON reply with the top-k
 * of every image, or the first failure's error. Decoding happens in the workers
 * (common/input.h); nothing here touches pixels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/image.h"
#include "server/clock.h"
#include "server/multipart.h"
#include "server/request.h"

typedef struct {
    int top_k;
    int nimg;
    sn_job *jobs;
    sn_job **jp;
    int *top_idx; /* [nimg][top_k] */
    float *top_score;
    char (*fname)[256];
    int *has_fname;
} classify_ctx;

static void ctx_free(void *p) {
    classify_ctx *x = p;
    free(x->jobs);
    free(x->jp);
    free(x->top_idx);
    free(x->top_score);
    free(x->fname);
    free(x->has_fname);
    free(x);
}

/* Split the body into image parts: data/lens get up to max_images entries. Returns the
 * count, or -1 after replying. */
static int split_images(sn_req *r, classify_ctx *x, const uint8_t **data, size_t *lens,
                        enum MHD_Result *ret) {
    const char *ct = sn_req_header(r, "Content-Type");
    int max = r->o->cfg->max_images;
    if (!ct || strncasecmp(ct, "multipart/", 10) != 0) {
        data[0] = r->body;
        lens[0] = r->len;
        return 1;
    }
    char boundary[SN_MP_MAX_BOUNDARY + 1], err[160];
    if (sn_multipart_boundary(ct, boundary, sizeof boundary, err, sizeof err) < 0) {
        *ret = sn_reply_error(r, 400, "bad_request", err);
        return -1;
    }
    sn_part *parts = calloc((size_t)max + 8, sizeof *parts);
    if (!parts) {
        *ret = sn_reply_error(r, 503, "overloaded", "out of memory");
        return -1;
    }
    int n = sn_multipart_parse(boundary, r->body, r->len, parts, max + 8, err, sizeof err);
    if (n < 0) {
        free(parts);
        *ret = sn_reply_error(r, 400, "bad_request", err);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        sn_part *p = &parts[i];
        int is_image =
            p->has_filename || (p->content_type[0] && strncasecmp(p->content_type, "text/", 5));
        if (!is_image) continue; /* a plain form field */
        if (k == max) {
            free(parts);
            *ret =
                sn_reply_errorf(r, 400, "bad_request", "more than %d images in one request", max);
            return -1;
        }
        data[k] = p->data;
        lens[k] = p->len;
        snprintf(x->fname[k], sizeof x->fname[k], "%s", p->filename);
        x->has_fname[k] = p->has_filename;
        k++;
    }
    free(parts);
    if (k == 0) {
        *ret = sn_reply_error(r, 400, "bad_request", "multipart body has no image part");
        return -1;
    }
    return k;
}

int sn_image_refuse_foreign(sn_req *r, const uint8_t *data, size_t len, const char *what,
                            enum MHD_Result *ret) {
    /* An empty or foreign part is answered here, before it takes a queue slot:
     * sn_image_decode returns at once for anything that is not a JPEG or PNG. */
    sn_image_format f = sn_image_sniff(data, len);
    if (len > 0 && (f == SN_FMT_JPEG || f == SN_FMT_PNG)) return 0;
    sn_image none;
    char err[160];
    sn_image_status st =
        sn_image_decode(data, len, r->o->cfg->max_pixels, 0, &none, err, sizeof err);
    int status;
    const char *code = sn_image_error_code(st, &status);
    if (what)
        *ret = sn_reply_errorf(r, status, code, "%s: %s", what, err);
    else
        *ret = sn_reply_error(r, status, code, err);
    return 1;
}

/* The workers are done with every image: the reply. */
static enum MHD_Result classify_done(sn_req *r) {
    classify_ctx *x = r->ctx;
    enum MHD_Result ret;
    if (sn_req_job_failed(r, &ret)) return ret;
    const sn_served *m = &r->o->models[r->model];
    const sn_labels *lb = r->o->labels;
    json_t *results = json_array();
    double queue_s = 0, infer_s = 0, decode_s = 0;
    for (int i = 0; i < x->nimg; i++) {
        sn_job *j = &x->jobs[i];
        json_t *top = json_array();
        for (int t = 0; t < x->top_k; t++) {
            int idx = j->top_idx[t];
            json_array_append_new(top, json_pack("{s:i,s:s,s:s,s:f}", "index", idx, "wnid",
                                                 idx < lb->count ? lb->wnid[idx] : "", "label",
                                                 idx < lb->count ? lb->label[idx] : "", "score",
                                                 (double)j->top_score[t]));
        }
        json_t *res =
            json_pack("{s:i,s:i,s:o}", "width", j->width, "height", j->height, "top_k", top);
        json_object_set_new(res, "filename",
                            x->has_fname[i] ? json_string(x->fname[i]) : json_null());
        json_array_append_new(results, res);
        if (j->queue_s > queue_s) queue_s = j->queue_s;
        if (j->infer_s > infer_s) infer_s = j->infer_s;
        decode_s += j->decode_s;
    }
    double total = (double)(sn_now_ns() - r->t0) * 1e-9;
    json_t *reply = json_pack("{s:s,s:s,s:o,s:{s:f,s:f,s:f,s:f}}", "model", m->name, "weights",
                              m->synthetic ? "synthetic" : "trained", "results", results,
                              "timing_ms", "decode", decode_s * 1e3, "queue", queue_s * 1e3,
                              "inference", infer_s * 1e3, "total", total * 1e3);
    return sn_reply_json(r, 200, reply);
}

/* The whole body is in: split, check, queue. */
static enum MHD_Result classify_body(sn_req *r) {
    classify_ctx *x = r->ctx;
    const sn_config *cfg = r->o->cfg;
    const int max = cfg->max_images;
    const uint8_t **data = calloc((size_t)max, sizeof *data);
    size_t *lens = calloc((size_t)max, sizeof *lens);
    x->fname = calloc((size_t)max, sizeof *x->fname);
    x->has_fname = calloc((size_t)max, sizeof *x->has_fname);
    enum MHD_Result ret = MHD_NO;
    int n = -1;
    if (!data || !lens || !x->fname || !x->has_fname) {
        ret = sn_reply_error(r, 503, "overloaded", "out of memory");
        goto out;
    }
    if ((n = split_images(r, x, data, lens, &ret)) < 0) goto out;
    x->nimg = n;
    x->jobs = calloc((size_t)n, sizeof *x->jobs);
    x->jp = calloc((size_t)n, sizeof *x->jp);
    x->top_idx = calloc((size_t)n * (size_t)x->top_k, sizeof *x->top_idx);
    x->top_score = calloc((size_t)n * (size_t)x->top_k, sizeof *x->top_score);
    if (!x->jobs || !x->jp || !x->top_idx || !x->top_score) {
        ret = sn_reply_error(r, 503, "overloaded", "out of memory");
        goto out;
    }
    uint64_t deadline = r->t0 + (uint64_t)cfg->request_timeout_ms * 1000000ull;
    int fd = sn_req_fd(r);
    for (int i = 0; i < n; i++) {
        char what[300];
        snprintf(what, sizeof what, "image %d (%s)", i + 1,
                 x->fname[i][0] ? x->fname[i] : "unnamed");
        if (sn_image_refuse_foreign(r, data[i], lens[i], n > 1 ? what : NULL, &ret)) goto out;
        sn_job *j = &x->jobs[i];
        x->jp[i] = j;
        j->data = data[i];
        j->len = lens[i];
        j->fd = fd;
        j->deadline_ns = deadline;
        j->top_k = x->top_k;
        j->top_idx = x->top_idx + (size_t)i * x->top_k;
        j->top_score = x->top_score + (size_t)i * x->top_k;
    }
    r->on_done = classify_done;
    ret = sn_req_submit(r, x->jp, n);
out:
    free(data);
    free(lens);
    return ret;
}

enum MHD_Result sn_classify_start(sn_req *r) {
    const sn_http_opts *o = r->o;
    enum MHD_Result ret = MHD_NO;
    if (strcmp(r->method, "POST") != 0)
        return sn_reply_error(r, 405, "method_not_allowed", "use POST");
    const char *qm, *tk;
    size_t qmn, tkn;
    /* lengths from MHD, not strlen: "g3%00x" must not match the model "g3" */
    int unknown = 0;
    if (r->model == -1 && sn_req_query(r, "model", &qm, &qmn)) {
        r->model = sn_req_find_model(o, qm, qmn);
        unknown = r->model < 0;
    }
    if (r->model == -1 && !unknown) r->model = o->default_model;
    if (r->model < 0) {
        r->model = -1;
        return sn_reply_error(r, 404, "model_not_found",
                              o->nmodels ? "no such model" : "no model is loaded");
    }
    const char *ce = sn_req_header(r, "Content-Encoding");
    if (ce && strcasecmp(ce, "identity") != 0)
        return sn_reply_errorf(r, 415, "unsupported_media_type",
                               "Content-Encoding \"%.64s\" is not supported; send the image as is",
                               ce);
    if (sn_req_admit(r, &ret) < 0) return ret;
    classify_ctx *x = calloc(1, sizeof *x);
    if (!x) return sn_reply_error(r, 503, "overloaded", "out of memory");
    r->ctx = x;
    r->ctx_free = ctx_free;
    int classes = o->models[r->model].info->num_classes;
    x->top_k = classes < 5 ? classes : 5;
    if (sn_req_query(r, "top_k", &tk, &tkn)) {
        char *end;
        long v = strtol(tk, &end, 10);
        if (!*tk || *end || end != tk + tkn || v < 1 || v > classes)
            return sn_reply_errorf(r, 400, "bad_request", "top_k must be an integer in 1..%d",
                                   classes);
        x->top_k = (int)v;
    }
    r->on_body = classify_body;
    return MHD_YES;
}
