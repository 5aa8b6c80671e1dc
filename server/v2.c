/* v2.c - the Open Inference Protocol (KServe v2) endpoints, beside the service's own API:
 *
 *   GET  /v2                                       server metadata
 *   GET  /v2/health/live, /v2/health/ready         probes
 *   GET  /v2/models/{m}[/versions/{v}]             model metadata
 *   GET  /v2/models/{m}[/versions/{v}]/ready       model ready
 *   POST /v2/models/{m}[/versions/{v}]/infer       inference
 *
 * A version is "1" or a prefix (8 or more hex digits) of the model file's sha256. Errors are
 * {"error": "message"} (http.c, r->oip). Inference parses the body with sn_oip_parse
 * (oip.c), queues one job per image like /classify (encoded images are decoded by the
 * workers, FP32 tensors run as sent), and answers with sn_oip_response (oip_reply.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/modelinfo.h"
#include "server/budget.h"
#include "server/metrics.h"
#include "server/oip.h"
#include "server/request.h"

#ifndef SN_VERSION
#define SN_VERSION "0.1.0"
#endif

#define V2_MODELS "/v2/models/"

/* "/v2/models/NAME[/versions/VERSION][TAIL]" */
typedef struct {
    const char *name, *ver, *tail;
    size_t nlen, vlen;
} model_url;

static int parse_model_url(const char *url, model_url *u) {
    memset(u, 0, sizeof *u);
    u->name = url + strlen(V2_MODELS);
    const char *slash = strchr(u->name, '/');
    u->nlen = slash ? (size_t)(slash - u->name) : strlen(u->name);
    u->tail = slash ? slash : "";
    if (strncmp(u->tail, "/versions/", 10) == 0) {
        u->ver = u->tail + 10;
        slash = strchr(u->ver, '/');
        u->vlen = slash ? (size_t)(slash - u->ver) : strlen(u->ver);
        u->tail = slash ? slash : "";
    }
    if (u->nlen == 0 || (u->ver && u->vlen == 0)) return -1;
    return strcmp(u->tail, "") == 0 || strcmp(u->tail, "/ready") == 0 ||
                   strcmp(u->tail, "/infer") == 0
               ? 0
               : -1;
}

static int version_ok(const sn_served *m, const char *v, size_t n) {
    if (n == 1 && v[0] == '1') return 1;
    return n >= 8 && n <= 64 && strncasecmp(v, m->sha256, n) == 0;
}

/* ---- metadata and probes ------------------------------------------------------------------ */

static enum MHD_Result server_meta(sn_req *r) {
    return sn_reply_json(r, 200,
                         json_pack("{s:s,s:s,s:[s,s]}", "name", "shufflenet-serve", "version",
                                   SN_VERSION, "extensions", "binary_tensor_data",
                                   "classification"));
}

static enum MHD_Result live(sn_req *r) {
    return sn_reply_json(r, 200, json_pack("{s:b}", "live", 1));
}

/* Why the server or a model cannot take inference requests now, or NULL. */
static const char *not_ready(sn_req *r) {
    if (sn_req_draining(r)) return "the server is shutting down";
    if (r->o->nmodels == 0) return "no model is loaded";
    return NULL;
}

static enum MHD_Result ready(sn_req *r) {
    const char *why = not_ready(r);
    if (why) return sn_reply_json(r, 503, json_pack("{s:b,s:s}", "ready", 0, "error", why));
    return sn_reply_json(r, 200, json_pack("{s:b}", "ready", 1));
}

static enum MHD_Result model_ready(sn_req *r) {
    const char *why = not_ready(r), *name = r->o->models[r->model].name;
    if (why)
        return sn_reply_json(r, 503,
                             json_pack("{s:s,s:b,s:s}", "name", name, "ready", 0, "error", why));
    return sn_reply_json(r, 200, json_pack("{s:s,s:b}", "name", name, "ready", 1));
}

static json_t *tensor_meta(const char *name, const char *type, int d1, int d2, int d3) {
    json_t *shape = json_pack("[i]", -1);
    if (d1) json_array_append_new(shape, json_integer(d1));
    if (d2) json_array_append_new(shape, json_integer(d2));
    if (d3) json_array_append_new(shape, json_integer(d3));
    return json_pack("{s:s,s:s,s:o}", "name", name, "datatype", type, "shape", shape);
}

static enum MHD_Result model_meta(sn_req *r) {
    const sn_served *m = &r->o->models[r->model];
    const sn_model_info *I = m->info;
    const sn_preprocess *p = &I->pre;
    int S = I->input_size, C = I->num_classes;
    char sha[13], maxb[16], pre[512];
    snprintf(sha, sizeof sha, "%.12s", m->sha256);
    snprintf(maxb, sizeof maxb, "%d", r->o->cfg->max_images);
    snprintf(pre, sizeof pre,
             "float32 NCHW [N, 3, %d, %d], channels in %s order; pixels on the 0..255 scale; "
             "short side resized to %d (%s), centre crop %d; x = (pixel - mean) / std with mean "
             "%g,%g,%g and std %g,%g,%g (per channel, in that order)",
             S, S, p->rgb ? "RGB" : "BGR", p->resize_short,
             p->resize == SN_RESIZE_PILLOW_BILINEAR ? "Pillow bilinear" : "OpenCV bilinear",
             p->crop, p->mean[0], p->mean[1], p->mean[2], p->std[0], p->std[1], p->std[2]);
    json_t *props = json_pack(
        "{s:s,s:s,s:s,s:s,s:s,s:s}", "max_batch_size", maxb, "sha256", m->sha256, "weights",
        m->synthetic ? "synthetic" : "trained", "input", pre, "image",
        "BYTES [N] or [N, 1], one encoded JPEG or PNG per element, decoded and preprocessed "
        "as POST /classify does; binary (binary_data_size, each element after its 4-byte "
        "little-endian length, or one element as is) or base64 strings in JSON",
        "outputs",
        "logits: the scores before softmax; probabilities: their softmax; "
        "parameters.classification K on either: BYTES [N, K] \"value:index:label\", best first");
    json_t *info = sn_model_info_json(I);
    json_t *j = json_pack("{s:s,s:[s,s],s:s,s:[o,o],s:[o,o],s:o,s:O}", "name", m->name, "versions",
                          "1", sha, "platform", "shufflenet_safetensors", "inputs",
                          tensor_meta(SN_OIP_INPUT_IMAGE, "BYTES", 0, 0, 0),
                          tensor_meta(SN_OIP_INPUT_TENSOR, "FP32", 3, S, S), "outputs",
                          tensor_meta("logits", "FP32", C, 0, 0),
                          tensor_meta("probabilities", "FP32", C, 0, 0), "properties", props,
                          "preprocess", json_object_get(info, "preprocess"));
    json_decref(info);
    if (!j) return sn_reply_error(r, 503, "overloaded", "out of memory");
    return sn_reply_json(r, 200, j);
}

static enum MHD_Result no_model(sn_req *r) {
    model_url u;
    parse_model_url(r->path, &u);
    r->model = -1;
    return sn_reply_errorf(r, 404, "model_not_found", "unknown model \"%.*s\"",
                           (int)(u.nlen > 64 ? 64 : u.nlen), u.name);
}

static enum MHD_Result no_version(sn_req *r) {
    model_url u;
    parse_model_url(r->path, &u);
    const sn_served *m = &r->o->models[r->model];
    return sn_reply_errorf(r, 404, "model_not_found",
                           "model \"%s\" has no version \"%.*s\" (it has \"1\", or its sha256 "
                           "%.12s... as 8 or more hex digits)",
                           m->name, (int)(u.vlen > 64 ? 64 : u.vlen), u.ver, m->sha256);
}

/* ---- inference ---------------------------------------------------------------------------- */

typedef struct {
    sn_oip_model m;
    sn_oip_request q;
    sn_job *jobs;
    sn_job **jp;
    float *logits; /* [n][classes] */
    char version[72];
} infer_ctx;

static void infer_free(void *p) {
    infer_ctx *x = p;
    sn_oip_request_free(&x->q);
    free(x->jobs);
    free(x->jp);
    free(x->logits);
    free(x);
}

static enum MHD_Result infer_done(sn_req *r) {
    infer_ctx *x = r->ctx;
    enum MHD_Result ret;
    if (sn_req_job_failed(r, &ret)) return ret;
    size_t len, jlen;
    char *body = sn_oip_response(&x->m, &x->q, r->o->models[r->model].name, x->version, x->logits,
                                 r->o->labels, &len, &jlen);
    if (!body) return sn_reply_error(r, 503, "overloaded", "out of memory");
    if (!jlen) return sn_reply(r, 200, body, len, "application/json");
    char hl[24];
    snprintf(hl, sizeof hl, "%zu", jlen);
    const char *hdrs[] = {"Inference-Header-Content-Length", hl, NULL};
    return sn_reply_headers(r, 200, body, len, "application/octet-stream", hdrs);
}

/* Inference-Header-Content-Length as a byte count: -1 absent, -2 malformed. */
static long long header_length(sn_req *r) {
    const char *v = sn_req_header(r, "Inference-Header-Content-Length");
    if (!v) return -1;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || n < 0 || v[0] == '-' || v[0] == '+' || strlen(v) > 18) return -2;
    return n;
}

static enum MHD_Result infer_body(sn_req *r) {
    infer_ctx *x = r->ctx;
    const sn_config *cfg = r->o->cfg;
    enum MHD_Result ret;
    long long hl = header_length(r);
    if (hl == -2)
        return sn_reply_error(r, 400, "bad_request",
                              "Inference-Header-Content-Length must be a byte count");
    char err[512];
    int rc = sn_oip_parse(&x->m, r->body, r->len, hl, &x->q, err, sizeof err);
    if (rc == -2) return sn_reply_error(r, 503, "overloaded", "out of memory");
    if (rc == -3) return sn_reply_memory(r, err);
    if (rc < 0) return sn_reply_error(r, 400, "bad_request", err);
    int n = x->q.n;
    for (int i = 0; x->q.image && i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "input \"image\" element %d", i);
        if (sn_image_refuse_foreign(r, x->q.img[i], x->q.img_len[i], what, &ret)) return ret;
    }
    size_t isz = (size_t)3 * x->m.input_size * x->m.input_size;
    x->jobs = calloc((size_t)n, sizeof *x->jobs);
    x->jp = calloc((size_t)n, sizeof *x->jp);
    x->logits = malloc((size_t)n * x->m.num_classes * sizeof *x->logits);
    if (!x->jobs || !x->jp || !x->logits)
        return sn_reply_error(r, 503, "overloaded", "out of memory");
    uint64_t deadline = r->t0 + (uint64_t)cfg->request_timeout_ms * 1000000ull;
    int fd = sn_req_fd(r);
    for (int i = 0; i < n; i++) {
        sn_job *j = &x->jobs[i];
        x->jp[i] = j;
        if (x->q.image) {
            j->data = x->q.img[i];
            j->len = x->q.img_len[i];
        } else {
            j->tensor = x->q.tensor + (size_t)i * isz;
        }
        j->fd = fd;
        j->deadline_ns = deadline;
        j->logits = x->logits + (size_t)i * x->m.num_classes;
    }
    r->on_done = infer_done;
    return sn_req_submit(r, x->jp, n);
}

static enum MHD_Result infer_start(sn_req *r) {
    enum MHD_Result ret;
    if (strcmp(r->method, "POST") != 0)
        return sn_reply_error(r, 405, "method_not_allowed", "use POST");
    const char *ce = sn_req_header(r, "Content-Encoding");
    if (ce && strcasecmp(ce, "identity") != 0)
        return sn_reply_errorf(r, 415, "unsupported_media_type",
                               "Content-Encoding \"%.64s\" is not supported", ce);
    if (sn_req_admit(r, &ret) < 0) return ret;
    infer_ctx *x = calloc(1, sizeof *x);
    if (!x) return sn_reply_error(r, 503, "overloaded", "out of memory");
    r->ctx = x;
    r->ctx_free = infer_free;
    const sn_model_info *I = r->o->models[r->model].info;
    x->m = (sn_oip_model){I->input_size, I->num_classes, r->o->cfg->max_images,
                          sn_budget_decode_hook, sn_budget_release_hook, NULL};
    model_url u;
    parse_model_url(r->path, &u);
    snprintf(x->version, sizeof x->version, "%.*s", u.ver ? (int)u.vlen : 1, u.ver ? u.ver : "1");
    r->on_body = infer_body;
    return MHD_YES;
}

/* ---- routes ------------------------------------------------------------------------------- */

sn_route sn_v2_route(sn_req *r, const char *url) {
    sn_route none = {NULL, "v2", 0, NULL};
    if (strcmp(url, "/v2") == 0 || strcmp(url, "/v2/") == 0)
        return (sn_route){server_meta, "v2_meta", 0, NULL};
    if (strcmp(url, "/v2/health/live") == 0) return (sn_route){live, "v2_health", 0, NULL};
    if (strcmp(url, "/v2/health/ready") == 0) return (sn_route){ready, "v2_health", 0, NULL};
    model_url u;
    if (strncmp(url, V2_MODELS, strlen(V2_MODELS)) != 0 || parse_model_url(url, &u) < 0)
        return none;
    int infer = strcmp(u.tail, "/infer") == 0;
    sn_route rt = {NULL, infer ? "v2_infer" : "v2_model", infer ? 1 + SN_EP_V2 : 0,
                   infer ? "POST" : NULL};
    r->model = sn_req_find_model(r->o, u.name, u.nlen);
    if (r->model < 0) {
        rt.fn = no_model;
    } else if (strlen(url) >= sizeof r->path ||
               (u.ver && !version_ok(&r->o->models[r->model], u.ver, u.vlen))) {
        rt.fn = no_version;
    } else {
        rt.fn = infer ? infer_start : u.tail[0] ? model_ready : model_meta;
    }
    return rt;
}
