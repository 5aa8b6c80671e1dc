/* http.c - routes and request handling on libmicrohttpd.
 *
 * MHD runs an internal epoll thread pool. A classify request is received into one buffer
 * (the body limit is checked against Content-Length before anything is read, and against
 * the bytes received while reading), split into images (raw body or multipart), sniffed
 * (an empty or foreign body is answered at once), optionally decoded + preprocessed here
 * (decode_stage "http"; the default "worker" decodes in the workers), then the connection
 * is suspended and its images are queued for the workers; the last finished image resumes the
 * connection and the reply is built on this side. A slow client therefore only ever holds its own
 * connection, never a worker. Errors are {"error": {"code", "message"}} with the status the
 * design names; a 500 would be a bug.
 *
 * Slow and vanished clients: libmicrohttpd enforces the connection limits (total and per
 * address) and the idle timeout. Its edge-triggered epoll can miss an EOF that arrives
 * together with the last bytes of a partial upload, which would hold the connection and its
 * buffered body until the idle timeout; so a watchdog thread peeks at every unfinished
 * upload (through a dup of its socket) and shuts down those whose peer has gone, which makes
 * MHD close them and free everything at once. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "modelinfo.h"
#include "multipart.h"

typedef struct req req;

/* Input tensors of requests being served, per model: `keep` buffers (what the queue, the
 * workers' batches and the HTTP threads can hold at once) are allocated and touched at start
 * and reused, instead of ~600 KB going to and from malloc for every image, so the resident
 * set is planned and stays flat under load. Beyond `keep` (many multi-image requests in
 * flight), extra buffers are malloc'ed and freed. */
typedef struct {
    pthread_mutex_t mu;
    float **free;
    int n, keep;
    size_t bytes;
} tensor_pool;

/* A connection whose first request's headers have not all arrived (listed in
 * sn_http.headers until they do, or until it closes). */
typedef struct hconn {
    struct hconn *prev, *next;
    int fd, listed;
    uint64_t t0;
} hconn;

struct sn_http {
    sn_http_opts o;
    tensor_pool pool[SN_MAX_MODELS];
    struct MHD_Daemon *d;
    atomic_int draining;
    atomic_int inflight;
    atomic_int admitted[SN_MAX_MODELS]; /* classify requests past admission, per model */
    /* unfinished uploads, watched for a vanished peer */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    req *uploads;
    hconn *headers;
    int wstop;
    pthread_t watchdog;
};

typedef enum { R_NONE, R_CLASSIFY, R_MODELS, R_MODEL, R_HEALTH, R_READY, R_METRICS } route;

struct req {
    sn_http *h;
    struct MHD_Connection *conn;
    uint64_t t0;
    route rt;
    int model; /* index or -1 */
    int top_k;
    char method[16];
    char path[256];
    /* body */
    uint8_t *body;
    size_t len, cap;
    int over_limit;
    /* images */
    int nimg;
    sn_job *jobs;
    sn_job **jp;
    int *top_idx;
    float *top_score;
    float **tensors; /* nimg buffers from h->pool[model] (decode on the HTTP threads) */
    int ntensors;
    char (*fname)[256];
    int *has_fname;
    int fd;
    double decode_s;
    pthread_mutex_t mu;
    int pending;   /* jobs not yet done */
    int suspended; /* waiting for the workers */
    int answered;
    /* for the access log */
    int status;
    size_t bytes;
    /* upload watch (under h->wmu) */
    req *wprev, *wnext;
    int watched, wfd, eof_sweeps;
    int admitted; /* holds one of h->admitted[model] */
};

/* ---- replies ------------------------------------------------------------------------ */

static enum MHD_Result send_body(req *r, struct MHD_Connection *c, int status, char *body,
                                 size_t len, const char *ctype, const char *allow,
                                 int retry_after) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (retry_after) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (atomic_load(&r->h->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = status;
    r->bytes = len;
    r->answered = 1;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_json(req *r, struct MHD_Connection *c, int status, json_t *j,
                                 const char *allow, int retry_after) {
    char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(7));
    json_decref(j);
    if (!s) return MHD_NO;
    size_t n = strlen(s);
    char *body = realloc(s, n + 2);
    if (!body) {
        free(s);
        return MHD_NO;
    }
    body[n++] = '\n';
    body[n] = 0;
    return send_body(r, c, status, body, n, "application/json", allow, retry_after);
}

static enum MHD_Result send_error(req *r, struct MHD_Connection *c, int status, const char *code,
                                  const char *msg) {
    static const struct {
        const char *code;
        sn_reject_reason reason;
    } rej[] = {{"overloaded", SN_REJ_OVERLOADED},
               {"timeout", SN_REJ_TIMEOUT},
               {"shutting_down", SN_REJ_DRAINING},
               {"payload_too_large", SN_REJ_PAYLOAD_TOO_LARGE},
               {"image_too_large", SN_REJ_IMAGE_TOO_LARGE},
               {"invalid_image", SN_REJ_INVALID_IMAGE},
               {"unsupported_media_type", SN_REJ_UNSUPPORTED},
               {"bad_request", SN_REJ_BAD_REQUEST}};
    for (size_t i = 0; i < sizeof rej / sizeof rej[0]; i++)
        if (strcmp(rej[i].code, code) == 0 && strcmp(code, "timeout") != 0)
            sn_metrics_reject(rej[i].reason); /* timeouts are counted by the batcher */
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    const char *allow = NULL;
    if (status == 405) allow = r->rt == R_CLASSIFY ? "POST" : "GET, HEAD";
    return send_json(r, c, status, j, allow, status == 503);
}

/* ---- models ------------------------------------------------------------------------- */

static json_t *model_json(sn_http *h, int i) {
    const sn_served *m = &h->o.models[i];
    const sn_config *c = h->o.cfg;
    json_t *j = sn_model_info_json(m->info);
    json_t *batching =
        json_pack("{s:i,s:i,s:i,s:i,s:i}", "max_batch", c->max_batch, "max_batch_delay_us",
                  c->max_batch_delay_us, "queue_size", c->queue_size, "workers", c->workers,
                  "request_timeout_ms", c->request_timeout_ms);
    json_object_set_new(j, "name", json_string(m->name));
    json_object_set_new(j, "default", json_boolean(i == h->o.default_model));
    json_object_set_new(j, "weights", json_string(m->synthetic ? "synthetic" : "trained"));
    json_object_set_new(j, "sha256", json_string(m->sha256));
    if (m->path[0]) json_object_set_new(j, "path", json_string(m->path));
    if (m->synth_spec[0]) json_object_set_new(j, "synth", json_string(m->synth_spec));
    json_object_set_new(j, "batching", batching);
    return j;
}

/* ---- classify ----------------------------------------------------------------------- */

static const char *img_code(sn_image_status st, int *status) {
    switch (st) {
    case SN_IMG_UNSUPPORTED:
        *status = 415;
        return "unsupported_media_type";
    case SN_IMG_TOO_LARGE:
        *status = 413;
        return "image_too_large";
    case SN_IMG_NOMEM:
        *status = 503;
        return "overloaded";
    default:
        *status = 400;
        return "invalid_image";
    }
}

/* Split the body into image parts. Returns 0 or replies with an error and returns -1. */
static int split_images(req *r, struct MHD_Connection *c, const uint8_t **data, size_t *lens,
                        enum MHD_Result *ret) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    int max = r->h->o.cfg->max_images;
    if (ct && strncasecmp(ct, "multipart/", 10) == 0) {
        char boundary[SN_MP_MAX_BOUNDARY + 1], err[160];
        if (sn_multipart_boundary(ct, boundary, sizeof boundary, err, sizeof err) < 0) {
            *ret = send_error(r, c, 400, "bad_request", err);
            return -1;
        }
        sn_part *parts = calloc((size_t)max + 8, sizeof *parts);
        if (!parts) {
            *ret = send_error(r, c, 503, "overloaded", "out of memory");
            return -1;
        }
        int n = sn_multipart_parse(boundary, r->body, r->len, parts, max + 8, err, sizeof err);
        if (n < 0) {
            free(parts);
            *ret = send_error(r, c, 400, "bad_request", err);
            return -1;
        }
        int k = 0;
        for (int i = 0; i < n; i++) {
            sn_part *p = &parts[i];
            int is_image = p->has_filename ||
                           (p->content_type[0] && strncasecmp(p->content_type, "text/", 5) != 0);
            if (!is_image) continue; /* a plain form field */
            if (k == max) {
                free(parts);
                char msg[96];
                snprintf(msg, sizeof msg, "more than %d images in one request", max);
                *ret = send_error(r, c, 400, "bad_request", msg);
                return -1;
            }
            data[k] = p->data;
            lens[k] = p->len;
            snprintf(r->fname[k], sizeof r->fname[k], "%s", p->filename);
            r->has_fname[k] = p->has_filename;
            k++;
        }
        free(parts);
        if (k == 0) {
            *ret = send_error(r, c, 400, "bad_request", "multipart body has no image part");
            return -1;
        }
        r->nimg = k;
        return 0;
    }
    data[0] = r->body;
    lens[0] = r->len;
    r->nimg = 1;
    return 0;
}

static float *pool_get(tensor_pool *p) {
    float *t = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n > 0) t = p->free[--p->n];
    pthread_mutex_unlock(&p->mu);
    if (!t && posix_memalign((void **)&t, 64, p->bytes)) t = NULL;
    return t;
}

static void pool_put(tensor_pool *p, float *t) {
    pthread_mutex_lock(&p->mu);
    if (p->n < p->keep) {
        p->free[p->n++] = t;
        t = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    free(t);
}

static int alloc_images(req *r, int n, int with_tensors) {
    r->jobs = calloc((size_t)n, sizeof *r->jobs);
    r->jp = calloc((size_t)n, sizeof *r->jp);
    r->top_idx = calloc((size_t)n * (size_t)r->top_k, sizeof *r->top_idx);
    r->top_score = calloc((size_t)n * (size_t)r->top_k, sizeof *r->top_score);
    if (!r->jobs || !r->jp || !r->top_idx || !r->top_score) return -1;
    if (!with_tensors) return 0;
    r->tensors = calloc((size_t)n, sizeof *r->tensors);
    if (!r->tensors) return -1;
    for (; r->ntensors < n; r->ntensors++)
        if (!(r->tensors[r->ntensors] = pool_get(&r->h->pool[r->model]))) return -1;
    return 0;
}

static void on_job_done(sn_job *j, void *arg) {
    (void)j;
    req *r = arg;
    pthread_mutex_lock(&r->mu);
    int resume = --r->pending == 0 && r->suspended;
    pthread_mutex_unlock(&r->mu);
    if (resume) MHD_resume_connection(r->conn);
}

/* Everything received: validate, split, decode (if here), queue and suspend. */
static enum MHD_Result start_classify(req *r, struct MHD_Connection *c) {
    sn_http *h = r->h;
    const sn_config *cfg = h->o.cfg;
    if (r->over_limit) {
        char msg[96];
        snprintf(msg, sizeof msg, "request body over the %lld-byte limit", cfg->body_limit);
        return send_error(r, c, 413, "payload_too_large", msg);
    }
    const sn_served *m = &h->o.models[r->model];
    const int max = cfg->max_images;
    const uint8_t **data = calloc((size_t)max, sizeof *data);
    size_t *lens = calloc((size_t)max, sizeof *lens);
    r->fname = calloc((size_t)max, sizeof *r->fname);
    r->has_fname = calloc((size_t)max, sizeof *r->has_fname);
    if (!data || !lens || !r->fname || !r->has_fname) {
        free(data);
        free(lens);
        return send_error(r, c, 503, "overloaded", "out of memory");
    }
    enum MHD_Result ret;
    if (split_images(r, c, data, lens, &ret) < 0) {
        free(data);
        free(lens);
        return ret;
    }
    int in_http = strcmp(cfg->decode_stage, "http") == 0;
    if (alloc_images(r, r->nimg, in_http) < 0) {
        free(data);
        free(lens);
        return send_error(r, c, 503, "overloaded", "out of memory");
    }
    sn_model_metrics *mm = sn_metrics_model(r->model);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    uint64_t deadline = r->t0 + (uint64_t)cfg->request_timeout_ms * 1000000ull;
    for (int i = 0; i < r->nimg; i++) {
        sn_job *j = &r->jobs[i];
        r->jp[i] = j;
        j->data = data[i];
        j->len = lens[i];
        j->fd = ci ? ci->connect_fd : -1;
        j->deadline_ns = deadline;
        j->top_k = r->top_k;
        j->top_idx = r->top_idx + (size_t)i * r->top_k;
        j->top_score = r->top_score + (size_t)i * r->top_k;
        j->done = on_job_done;
        j->arg = r;
        /* An empty or foreign body is answered here, before it takes a queue slot: with
         * decode_stage "worker" only that check runs on this thread (sn_image_decode
         * returns at once for anything that is not a JPEG or PNG). */
        int rc = 0;
        char err[160];
        sn_image_status st = SN_IMG_OK;
        if (!in_http) {
            sn_image_format f = sn_image_sniff(data[i], lens[i]);
            if (lens[i] == 0 || (f != SN_FMT_JPEG && f != SN_FMT_PNG)) {
                sn_image none;
                st = sn_image_decode(data[i], lens[i], cfg->max_pixels, 0, &none, err, sizeof err);
                rc = -1;
            }
        } else {
            uint64_t t0 = sn_now_ns();
            rc = sn_decode_preprocess(m, data[i], lens[i], cfg->max_pixels, r->tensors[i],
                                      &j->width, &j->height, &st, err, sizeof err);
            j->decode_s = (double)(sn_now_ns() - t0) * 1e-9;
            sn_hist_observe(&mm->decode_seconds, j->decode_s);
            r->decode_s += j->decode_s;
            j->tensor = r->tensors[i];
        }
        if (rc < 0) {
            free(data);
            free(lens);
            int status;
            const char *code = img_code(st, &status);
            char msg[256];
            if (r->nimg > 1)
                snprintf(msg, sizeof msg, "image %d (%s): %s", i + 1,
                         r->fname[i][0] ? r->fname[i] : "unnamed", err);
            else
                snprintf(msg, sizeof msg, "%s", err);
            return send_error(r, c, status, code, msg);
        }
    }
    free(data);
    free(lens);
    r->pending = r->nimg;
    r->suspended = 1;
    MHD_suspend_connection(c);
    int rc = sn_batcher_submit(h->o.batcher, r->model, r->jp, r->nimg);
    if (rc < 0) {
        r->suspended = 0;
        r->pending = 0;
        MHD_resume_connection(c);
        if (rc == -2) return send_error(r, c, 503, "shutting_down", "the server is shutting down");
        char msg[128];
        snprintf(msg, sizeof msg, "model \"%s\" queue is full (%d images); retry later", m->name,
                 cfg->queue_size);
        return send_error(r, c, 503, "overloaded", msg);
    }
    return MHD_YES;
}

/* Called again after the workers resumed the connection. */
static enum MHD_Result finish_classify(req *r, struct MHD_Connection *c) {
    sn_http *h = r->h;
    const sn_served *m = &h->o.models[r->model];
    const sn_labels *lb = h->o.labels;
    for (int i = 0; i < r->nimg; i++) {
        sn_job *j = &r->jobs[i];
        if (j->status == SN_JOB_TIMEOUT)
            return send_error(r, c, 504, "timeout",
                              "the request's deadline passed while it was queued");
        if (j->status == SN_JOB_DISCONNECTED) /* nobody is listening (nginx's 499) */
            return send_error(r, c, 499, "client_closed_request",
                              "the client closed the connection while queued");
        if (j->status == SN_JOB_IMAGE_ERROR) {
            int status;
            const char *code = img_code(j->img_status, &status);
            return send_error(r, c, status, code, j->err);
        }
    }
    json_t *results = json_array();
    double queue_s = 0, infer_s = 0, decode_s = r->decode_s;
    for (int i = 0; i < r->nimg; i++) {
        sn_job *j = &r->jobs[i];
        json_t *top = json_array();
        for (int t = 0; t < r->top_k; t++) {
            int idx = j->top_idx[t];
            json_array_append_new(top, json_pack("{s:i,s:s,s:s,s:f}", "index", idx, "wnid",
                                                 idx < lb->count ? lb->wnid[idx] : "", "label",
                                                 idx < lb->count ? lb->label[idx] : "", "score",
                                                 (double)j->top_score[t]));
        }
        json_t *res =
            json_pack("{s:i,s:i,s:o}", "width", j->width, "height", j->height, "top_k", top);
        json_object_set_new(res, "filename",
                            r->has_fname[i] ? json_string(r->fname[i]) : json_null());
        json_array_append_new(results, res);
        if (j->queue_s > queue_s) queue_s = j->queue_s;
        if (j->infer_s > infer_s) infer_s = j->infer_s;
        if (!j->tensor) decode_s += j->decode_s;
    }
    double total = (double)(sn_now_ns() - r->t0) * 1e-9;
    json_t *reply = json_pack("{s:s,s:s,s:o,s:{s:f,s:f,s:f,s:f}}", "model", m->name, "weights",
                              m->synthetic ? "synthetic" : "trained", "results", results,
                              "timing_ms", "decode", decode_s * 1e3, "queue", queue_s * 1e3,
                              "inference", infer_s * 1e3, "total", total * 1e3);
    return send_json(r, c, 200, reply, NULL, 0);
}

/* ---- routing ------------------------------------------------------------------------ */

static int find_model(sn_http *h, const char *name, size_t n) {
    for (int i = 0; i < h->o.nmodels; i++)
        if (strlen(h->o.models[i].name) == n && strncmp(h->o.models[i].name, name, n) == 0)
            return i;
    return -1;
}

/* Sets r->rt and, for model routes, r->model (-2: unknown name). */
static void parse_route(req *r, const char *url) {
    sn_http *h = r->h;
    r->model = -1;
    if (strcmp(url, "/classify") == 0) {
        r->rt = R_CLASSIFY;
    } else if (strcmp(url, "/healthz") == 0) {
        r->rt = R_HEALTH;
    } else if (strcmp(url, "/readyz") == 0) {
        r->rt = R_READY;
    } else if (strcmp(url, "/metrics") == 0) {
        r->rt = R_METRICS;
    } else if (strcmp(url, "/v1/models") == 0 || strcmp(url, "/v1/models/") == 0) {
        r->rt = R_MODELS;
    } else if (strncmp(url, "/v1/models/", 11) == 0) {
        const char *name = url + 11, *slash = strchr(name, '/');
        size_t n = slash ? (size_t)(slash - name) : strlen(name);
        if (slash && strcmp(slash, "/classify") != 0) return;
        r->rt = slash ? R_CLASSIFY : R_MODEL;
        r->model = find_model(h, name, n);
        if (r->model < 0) r->model = -2;
    }
}

static enum MHD_Result handle_get(req *r, struct MHD_Connection *c) {
    sn_http *h = r->h;
    switch (r->rt) {
    case R_HEALTH:
        return send_json(r, c, 200, json_pack("{s:s}", "status", "ok"), NULL, 0);
    case R_READY:
        if (atomic_load(&h->draining))
            return send_error(r, c, 503, "shutting_down", "the server is draining");
        if (h->o.nmodels == 0) return send_error(r, c, 503, "not_ready", "no model is loaded");
        return send_json(r, c, 200, json_pack("{s:s}", "status", "ready"), NULL, 0);
    case R_METRICS: {
        size_t n;
        char *text = sn_metrics_render(&n);
        if (!text) return send_error(r, c, 503, "overloaded", "out of memory");
        return send_body(r, c, 200, text, n, "text/plain; version=0.0.4; charset=utf-8", NULL, 0);
    }
    case R_MODELS: {
        json_t *arr = json_array();
        for (int i = 0; i < h->o.nmodels; i++) json_array_append_new(arr, model_json(h, i));
        json_t *j =
            json_pack("{s:o,s:s?}", "models", arr, "default",
                      h->o.default_model >= 0 ? h->o.models[h->o.default_model].name : NULL);
        return send_json(r, c, 200, j, NULL, 0);
    }
    case R_MODEL:
        if (r->model < 0) return send_error(r, c, 404, "model_not_found", "no such model");
        return send_json(r, c, 200, model_json(h, r->model), NULL, 0);
    default:
        return send_error(r, c, 404, "not_found", "no such route");
    }
}

/* A query argument with its decoded length (it may hold a NUL). Returns 1 when present. */
static int query_arg(struct MHD_Connection *c, const char *key, const char **v, size_t *n) {
    *v = NULL;
    *n = 0;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, key, strlen(key), v, n) != MHD_YES)
        return 0;
    if (!*v) *v = "", *n = 0; /* "?model" without '=' */
    return 1;
}

/* First call for a classify request: check everything knowable from the headers. */
static enum MHD_Result classify_headers(req *r, struct MHD_Connection *c, int *answered) {
    sn_http *h = r->h;
    *answered = 1;
    if (atomic_load(&h->draining))
        return send_error(r, c, 503, "shutting_down", "the server is shutting down");
    const char *qm, *tk;
    size_t qmn, tkn;
    /* lengths from MHD, not strlen: "g3%00x" must not match the model "g3" */
    if (query_arg(c, "model", &qm, &qmn) && r->model == -1) {
        r->model = find_model(h, qm, qmn);
        if (r->model < 0) r->model = -2;
    }
    if (r->model == -1) r->model = h->o.default_model;
    if (r->model < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s", h->o.nmodels ? "no such model" : "no model is loaded");
        r->model = -1;
        return send_error(r, c, 404, "model_not_found", msg);
    }
    const char *ce = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
    if (ce && strcasecmp(ce, "identity") != 0) {
        char msg[128];
        snprintf(msg, sizeof msg,
                 "Content-Encoding \"%.64s\" is not supported; send the image as is", ce);
        return send_error(r, c, 415, "unsupported_media_type", msg);
    }
    /* Admission: a model takes at most what its queue and its workers' batches hold. Beyond
     * that the answer is an immediate 503, before the body is read or decoded, so overload
     * never piles up as connections waiting for an HTTP thread. */
    const sn_config *cfg = h->o.cfg;
    int cap = cfg->queue_size + cfg->workers * cfg->max_batch;
    if (atomic_fetch_add(&h->admitted[r->model], 1) >= cap) {
        atomic_fetch_sub(&h->admitted[r->model], 1);
        char msg[128];
        snprintf(msg, sizeof msg, "model \"%s\" is at capacity (%d requests); retry later",
                 h->o.models[r->model].name, cap);
        return send_error(r, c, 503, "overloaded", msg);
    }
    r->admitted = 1;
    int classes = h->o.models[r->model].info->num_classes;
    r->top_k = classes < 5 ? classes : 5;
    if (query_arg(c, "top_k", &tk, &tkn)) {
        char *end;
        errno = 0;
        long v = strtol(tk, &end, 10);
        if (!*tk || *end || end != tk + tkn || errno || v < 1 || v > classes) {
            char msg[96];
            snprintf(msg, sizeof msg, "top_k must be an integer in 1..%d", classes);
            return send_error(r, c, 400, "bad_request", msg);
        }
        r->top_k = (int)v;
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        long long n = strtoll(cl, NULL, 10);
        if (n > h->o.cfg->body_limit) {
            char msg[96];
            snprintf(msg, sizeof msg, "request body over the %lld-byte limit",
                     h->o.cfg->body_limit);
            return send_error(r, c, 413, "payload_too_large", msg);
        }
        if (n > 0) {
            r->body = malloc((size_t)n);
            if (!r->body) return send_error(r, c, 503, "overloaded", "out of memory");
            r->cap = (size_t)n;
        }
    }
    *answered = 0;
    return MHD_YES;
}

static int append_body(req *r, const char *data, size_t n) {
    if (r->over_limit) return 0;
    if (r->len + n > (size_t)r->h->o.cfg->body_limit) {
        r->over_limit = 1; /* the rest is read and dropped, never stored */
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return 0;
    }
    if (r->len + n > r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 65536;
        while (nc < r->len + n) nc *= 2;
        if (nc > (size_t)r->h->o.cfg->body_limit) nc = (size_t)r->h->o.cfg->body_limit;
        uint8_t *nb = realloc(r->body, nc);
        if (!nb) return -1;
        r->body = nb;
        r->cap = nc;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

/* ---- upload watchdog ---------------------------------------------------------------- */

/* Watch r's socket while its body is being received. The dup keeps the socket alive for the
 * watchdog whatever MHD does with its own descriptor. */
static void watch_add(req *r, struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->wfd = ci ? dup(ci->connect_fd) : -1;
    if (r->wfd < 0) return;
    sn_http *h = r->h;
    pthread_mutex_lock(&h->wmu);
    r->wprev = NULL;
    r->wnext = h->uploads;
    if (h->uploads) h->uploads->wprev = r;
    h->uploads = r;
    r->watched = 1;
    pthread_mutex_unlock(&h->wmu);
}

static void unlink_watch(sn_http *h, req *r) {
    if (!r->watched) return;
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        h->uploads = r->wnext;
    if (r->wnext) r->wnext->wprev = r->wprev;
    r->watched = 0;
}

static void watch_del(req *r) {
    if (r->wfd < 0) return;
    pthread_mutex_lock(&r->h->wmu);
    unlink_watch(r->h, r);
    pthread_mutex_unlock(&r->h->wmu);
    close(r->wfd);
    r->wfd = -1;
}

/* ---- header deadline ----------------------------------------------------------------- */

/* Slowloris: a client trickling header bytes never goes idle, so the idle timeout never
 * fires. Every accepted connection is listed with its accept time until on_request sees its
 * first request (all headers in); the watchdog shuts down those listed longer than
 * header_timeout_s. MHD reports CLOSED before it closes the socket, and the entry leaves the
 * list under wmu there, so the watchdog never touches a descriptor MHD has released. */
static void hconn_unlink(sn_http *h, hconn *hc) {
    if (!hc->listed) return;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        h->headers = hc->next;
    if (hc->next) hc->next->prev = hc->prev;
    hc->listed = 0;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    sn_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hconn *hc = ci ? calloc(1, sizeof *hc) : NULL;
        if (!hc) return;
        hc->fd = ci->connect_fd;
        hc->t0 = sn_now_ns();
        pthread_mutex_lock(&h->wmu);
        hc->next = h->headers;
        if (h->headers) h->headers->prev = hc;
        h->headers = hc;
        hc->listed = 1;
        pthread_mutex_unlock(&h->wmu);
        *socket_context = hc;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        hconn *hc = *socket_context;
        pthread_mutex_lock(&h->wmu);
        hconn_unlink(h, hc);
        pthread_mutex_unlock(&h->wmu);
        free(hc);
        *socket_context = NULL;
    }
}

/* The headers of c's current request are in: off the deadline list. */
static void headers_in(sn_http *h, struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    hconn *hc = ci ? ci->socket_context : NULL;
    if (!hc) return;
    pthread_mutex_lock(&h->wmu);
    hconn_unlink(h, hc);
    pthread_mutex_unlock(&h->wmu);
}

/* Every 200 ms: connections past the header deadline are shut down (above); an upload whose
 * socket shows EOF (or an error) on two sweeps in a row can never complete; shut the socket
 * down so MHD sees it and closes the connection. */
static void *watchdog_main(void *arg) {
    sn_http *h = arg;
    pthread_mutex_lock(&h->wmu);
    while (!h->wstop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&h->wcv, &h->wmu, &ts);
        uint64_t now = sn_now_ns(), hmax = (uint64_t)h->o.cfg->header_timeout_s * 1000000000ull;
        for (hconn *hc = h->headers, *next; hc; hc = next) {
            next = hc->next;
            if (now - hc->t0 > hmax) {
                shutdown(hc->fd, SHUT_RDWR); /* MHD sees the error and closes it */
                hconn_unlink(h, hc);
                sn_metrics_reject(SN_REJ_HEADER_TIMEOUT);
            }
        }
        for (req *r = h->uploads, *next; r; r = next) {
            next = r->wnext;
            char ch;
            ssize_t n = recv(r->wfd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
            int gone =
                n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
            r->eof_sweeps = gone ? r->eof_sweeps + 1 : 0;
            if (r->eof_sweeps >= 2) {
                shutdown(r->wfd, SHUT_RDWR);
                unlink_watch(h, r);
            }
        }
    }
    pthread_mutex_unlock(&h->wmu);
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **ctx) {
    (void)version;
    sn_http *h = cls;
    req *r = *ctx;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->conn = c;
        r->h = h;
        r->t0 = sn_now_ns();
        r->model = -1;
        r->fd = -1;
        r->wfd = -1;
        pthread_mutex_init(&r->mu, NULL);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        *ctx = r;
        headers_in(h, c);
        atomic_fetch_add(&h->inflight, 1);
        sn_metrics_inflight(1);
        parse_route(r, url);
        /* MHD reads chunked bodies only; any other coding would leave it waiting for EOF */
        const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
        if (te && strcasecmp(te, "chunked") != 0)
            return send_error(r, c, 501, "not_implemented",
                              "Transfer-Encoding other than chunked is not supported");
        int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if (r->rt == R_NONE) return send_error(r, c, 404, "not_found", "no such route");
        if (r->rt == R_CLASSIFY) {
            if (strcmp(method, "POST") != 0)
                return send_error(r, c, 405, "method_not_allowed", "use POST");
            int answered;
            enum MHD_Result ret = classify_headers(r, c, &answered);
            if (answered) return ret;
            watch_add(r, c);
            return MHD_YES; /* the body follows */
        }
        if (!is_get) return send_error(r, c, 405, "method_not_allowed", "use GET");
        return handle_get(r, c);
    }
    if (r->answered) { /* an early reply was queued: drop whatever body still comes */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (append_body(r, upload_data, *upload_size) < 0) {
            *upload_size = 0;
            r->over_limit = 0;
            free(r->body);
            r->body = NULL;
            r->len = 0;
            r->answered = 2; /* out of memory: reply at the end */
            return MHD_YES;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    watch_del(r); /* the whole body is in */
    if (r->answered == 2) return send_error(r, c, 503, "overloaded", "out of memory");
    if (r->suspended) { /* resumed: every image is done */
        r->suspended = 0;
        return finish_classify(r, c);
    }
    return start_classify(r, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    sn_http *h = cls;
    req *r = *ctx;
    if (!r) return;
    *ctx = NULL;
    watch_del(r);
    if (r->admitted) atomic_fetch_sub(&h->admitted[r->model], 1);
    double ms = (double)(sn_now_ns() - r->t0) * 1e-6;
    int status = r->answered ? r->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status != 499) status = 499;
    const char *model = r->model >= 0 ? h->o.models[r->model].name : "-";
    if (r->rt == R_CLASSIFY) sn_metrics_request(sn_metrics_model(r->model), status, ms * 1e-3);
    if (strcmp(h->o.cfg->log_format, "json") == 0) {
        json_t *j =
            json_pack("{s:s,s:s,s:i,s:I,s:f,s:s}", "method", r->method, "path", r->path, "status",
                      status, "bytes", (json_int_t)r->bytes, "ms", ms, "model", model);
        char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
        if (s) fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fprintf(stderr, "%s %s %d %zu %.1fms %s\n", r->method, r->path, status, r->bytes, ms,
                model);
    }
    free(r->body);
    free(r->jobs);
    free(r->jp);
    free(r->top_idx);
    free(r->top_score);
    for (int i = 0; i < r->ntensors; i++) pool_put(&h->pool[r->model], r->tensors[i]);
    free(r->tensors);
    free(r->fname);
    free(r->has_fname);
    pthread_mutex_destroy(&r->mu);
    free(r);
    sn_metrics_inflight(-1);
    atomic_fetch_sub(&h->inflight, 1);
}

static void pools_free(sn_http *h) {
    for (int i = 0; i < h->o.nmodels; i++) {
        tensor_pool *p = &h->pool[i];
        for (int k = 0; k < p->n; k++) free(p->free[k]);
        free(p->free);
        pthread_mutex_destroy(&p->mu);
    }
}

sn_http *sn_http_start(const sn_http_opts *o, char *err, size_t errlen) {
    char host[128];
    int port;
    if (sn_config_split_listen(o->cfg->listen, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "key \"listen\": bad address \"%s\"", o->cfg->listen);
        return NULL;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else if (strcmp(host, "localhost") == 0) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        snprintf(err, errlen, "key \"listen\": \"%s\" is not a numeric IPv4/IPv6 address", host);
        return NULL;
    }
    sn_http *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->o = *o;
    const int in_http = strcmp(o->cfg->decode_stage, "http") == 0;
    for (int i = 0; i < o->nmodels; i++) { /* planned and touched now, not under load */
        tensor_pool *p = &h->pool[i];
        const sn_model_info *I = o->models[i].info;
        pthread_mutex_init(&p->mu, NULL);
        p->keep = in_http ? o->cfg->queue_size + o->cfg->workers * o->cfg->max_batch +
                                o->cfg->http_threads
                          : 0;
        p->bytes = (size_t)3 * I->input_size * I->input_size * sizeof(float);
        p->free = calloc((size_t)p->keep + 1, sizeof *p->free);
        for (; p->free && p->n < p->keep; p->n++) {
            void *t;
            if (posix_memalign(&t, 64, p->bytes)) break;
            memset(t, 0, p->bytes);
            p->free[p->n] = t;
        }
        if (!p->free || p->n < p->keep) {
            snprintf(err, errlen, "out of memory for %d input buffers of model \"%s\" (%zu MB)",
                     p->keep, o->models[i].name, (size_t)p->keep * p->bytes >> 20);
            h->o.nmodels = i + 1; /* the pools set up so far */
            pools_free(h);
            free(h);
            return NULL;
        }
    }
    pthread_mutex_init(&h->wmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wcv, &ca);
    pthread_condattr_destroy(&ca);
    const sn_config *cfg = o->cfg;
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
                            (unsigned)cfg->http_threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                            h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_connections,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen,
                 errno ? strerror(errno) : "libmicrohttpd refused");
        goto fail;
    }
    if (pthread_create(&h->watchdog, NULL, watchdog_main, h) != 0) {
        snprintf(err, errlen, "cannot start the upload watchdog thread");
        MHD_stop_daemon(h->d);
        goto fail;
    }
    return h;
fail:
    pthread_cond_destroy(&h->wcv);
    pthread_mutex_destroy(&h->wmu);
    pools_free(h);
    free(h);
    return NULL;
}

void sn_http_drain(sn_http *h) {
    atomic_store(&h->draining, 1);
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

int sn_http_inflight(sn_http *h) {
    return atomic_load(&h->inflight);
}

void sn_http_stop(sn_http *h) {
    pthread_mutex_lock(&h->wmu);
    h->wstop = 1;
    pthread_cond_signal(&h->wcv);
    pthread_mutex_unlock(&h->wmu);
    pthread_join(h->watchdog, NULL);
    MHD_stop_daemon(h->d); /* completes what is left: watch_del still takes wmu */
    pthread_cond_destroy(&h->wcv);
    pthread_mutex_destroy(&h->wmu);
    pools_free(h);
    free(h);
}
