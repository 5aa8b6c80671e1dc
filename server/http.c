/* http.c - the HTTP layer on libmicrohttpd: routing, request bodies, replies, the access log.
 *
 * A request's path through here (docs/DESIGN.md, "One request"): on_request is called first
 * with the headers in; route() picks the handler, which answers at once or asks for the body
 * (sets on_body). The body is received into one buffer, its limit checked against
 * Content-Length before anything is read and against the bytes as they arrive. With the body
 * in, on_body queues jobs through sn_req_submit, which suspends the connection; the last job
 * to finish resumes it, and on_done builds the reply on an HTTP thread. A slow client only
 * ever holds its own connection, never a worker. on_completed logs and frees.
 *
 * Handlers live in their own files (classify.c); connection guarding in guard.c; the
 * listening socket in listen.c. Errors are {"error": {"code", "message"}} with the status the
 * design names; a 500 would be a bug. */
#include "server/http.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/input.h"
#include "common/modelinfo.h"
#include "server/budget.h"
#include "server/clock.h"
#include "server/guard.h"
#include "server/listen.h"
#include "server/metrics.h"
#include "server/request.h"

struct sn_http {
    sn_http_opts o;
    struct MHD_Daemon *d;
    sn_guard *guard;
    atomic_int unready; /* shutting down: not ready, replies close, still serving */
    atomic_int draining;
    atomic_int inflight;
    atomic_int admitted[SN_MAX_MODELS]; /* inference requests past admission, per model */
    MHD_socket quiesced;                /* the listening socket once drained, closed at stop */
};

/* Per-request data http.c keeps beside the handler's view. */
typedef struct {
    sn_req r;
    sn_http *h;
    int infer;          /* 1 + sn_endpoint of an inference route (shufflenet_requests_total) */
    const char *allow;  /* methods for a 405 */
    int oom;            /* the body could not be stored: 503 once it is over */
    int mem_over;       /* the body does not fit the memory budget: discarded, then 503 */
    long long reserved; /* bytes of the memory budget held for the body */
    /* An answer decided from the headers while the client is sending a body it did not
     * offer with "Expect: 100-continue" waits until that body has been read (and dropped):
     * closing a connection with unread data in it makes the kernel reset it, and the client
     * may never see the reply. */
    int defer;
    int deferred_status;
    char *deferred_body;
    size_t deferred_len;
    const char *deferred_ctype, *deferred_allow;
} conn_req;

#define H(r) (((conn_req *)(r))->h)

/* ---- replies ------------------------------------------------------------------------ */

static enum MHD_Result reply(sn_req *r, int status, char *body, size_t len, const char *ctype,
                             const char *allow, const char *const *hdrs) {
    conn_req *cr = (conn_req *)r;
    if (cr->defer && !r->answered && !hdrs) { /* queued once the body is in (see conn_req) */
        cr->deferred_status = status;
        cr->deferred_body = body;
        cr->deferred_len = len;
        cr->deferred_ctype = ctype;
        cr->deferred_allow = allow;
        r->status = status;
        r->bytes = len;
        r->answered = 1;
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    for (; hdrs && hdrs[0] && hdrs[1]; hdrs += 2) MHD_add_response_header(resp, hdrs[0], hdrs[1]);
    if (status == 503) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (atomic_load(&H(r)->unready))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = status;
    r->bytes = len;
    r->answered = 1;
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result sn_reply(sn_req *r, int status, char *body, size_t len, const char *ctype) {
    return reply(r, status, body, len, ctype, NULL, NULL);
}

enum MHD_Result sn_reply_headers(sn_req *r, int status, char *body, size_t len, const char *ctype,
                                 const char *const *hdrs) {
    return reply(r, status, body, len, ctype, NULL, hdrs);
}

static enum MHD_Result reply_json(sn_req *r, int status, json_t *j, const char *allow) {
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
    return reply(r, status, body, n, "application/json", allow, NULL);
}

enum MHD_Result sn_reply_json(sn_req *r, int status, json_t *j) {
    return reply_json(r, status, j, NULL);
}

static enum MHD_Result reply_error(sn_req *r, int status, const char *code, const char *msg,
                                   int count) {
    static const struct {
        const char *code;
        sn_reject_reason reason;
    } rej[] = {{"overloaded", SN_REJ_OVERLOADED},
               {"shutting_down", SN_REJ_DRAINING},
               {"payload_too_large", SN_REJ_PAYLOAD_TOO_LARGE},
               {"image_too_large", SN_REJ_IMAGE_TOO_LARGE},
               {"invalid_image", SN_REJ_INVALID_IMAGE},
               {"unsupported_media_type", SN_REJ_UNSUPPORTED},
               {"bad_request", SN_REJ_BAD_REQUEST}}; /* timeouts: counted by the batcher */
    for (size_t i = 0; count && i < sizeof rej / sizeof rej[0]; i++)
        if (strcmp(rej[i].code, code) == 0) sn_metrics_reject(rej[i].reason);
    json_t *j = r->oip ? json_pack("{s:s}", "error", msg)
                       : json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    return reply_json(r, status, j, status == 405 ? ((conn_req *)r)->allow : NULL);
}

enum MHD_Result sn_reply_error(sn_req *r, int status, const char *code, const char *msg) {
    return reply_error(r, status, code, msg, 1);
}

/* 503 overloaded for the memory budget, counted as rejected{reason="memory"}. */
enum MHD_Result sn_reply_memory(sn_req *r, const char *msg) {
    sn_metrics_reject(SN_REJ_MEMORY);
    return reply_error(r, 503, "overloaded", msg, 0);
}

enum MHD_Result sn_reply_errorf(sn_req *r, int status, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sn_reply_error(r, status, code, msg);
}

const char *sn_image_error_code(sn_image_status st, int *status) {
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

/* ---- helpers for handlers ------------------------------------------------------------- */

int sn_req_query(sn_req *r, const char *key, const char **v, size_t *n) {
    *v = NULL;
    *n = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), v, n) !=
        MHD_YES)
        return 0;
    if (!*v) *v = "", *n = 0; /* "?model" without '=' */
    return 1;
}

const char *sn_req_header(sn_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

int sn_req_find_model(const sn_http_opts *o, const char *name, size_t n) {
    for (int i = 0; i < o->nmodels; i++)
        if (strlen(o->models[i].name) == n && strncmp(o->models[i].name, name, n) == 0) return i;
    return -1;
}

int sn_req_draining(sn_req *r) {
    return atomic_load(&H(r)->unready);
}

int sn_req_fd(sn_req *r) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

int sn_req_admit(sn_req *r, enum MHD_Result *ret) {
    sn_http *h = H(r);
    const sn_config *cfg = h->o.cfg;
    if (atomic_load(&h->draining)) {
        *ret = sn_reply_error(r, 503, "shutting_down", "the server is shutting down");
        return -1;
    }
    /* Beyond what the queue and the workers' batches hold the answer is an immediate 503,
     * before the body is read or decoded, so overload never piles up as connections waiting
     * for an HTTP thread. */
    int cap = cfg->queue_size + cfg->workers * cfg->max_batch;
    if (atomic_fetch_add(&h->admitted[r->model], 1) >= cap) {
        atomic_fetch_sub(&h->admitted[r->model], 1);
        *ret = sn_reply_errorf(r, 503, "overloaded",
                               "model \"%s\" is at capacity (%d requests); retry later",
                               h->o.models[r->model].name, cap);
        return -1;
    }
    r->admitted = 1;
    return 0;
}

static void on_job_done(sn_job *j, void *arg) {
    (void)j;
    sn_req *r = arg;
    pthread_mutex_lock(&r->mu);
    int resume = --r->pending == 0 && r->suspended;
    pthread_mutex_unlock(&r->mu);
    if (resume) MHD_resume_connection(r->conn);
}

enum MHD_Result sn_req_submit(sn_req *r, sn_job **jobs, int n) {
    for (int i = 0; i < n; i++) {
        jobs[i]->done = on_job_done;
        jobs[i]->arg = r;
    }
    r->jobs = jobs;
    r->njobs = n;
    r->pending = n;
    r->suspended = 1;
    MHD_suspend_connection(r->conn);
    int rc = sn_batcher_submit(r->o->batcher, r->model, jobs, n);
    if (rc == 0) return MHD_YES;
    r->suspended = 0;
    r->pending = 0;
    r->njobs = 0;
    MHD_resume_connection(r->conn);
    if (rc == -2) return sn_reply_error(r, 503, "shutting_down", "the server is shutting down");
    return sn_reply_errorf(r, 503, "overloaded",
                           "model \"%s\" queue is full (%d images); retry later",
                           r->o->models[r->model].name, r->o->cfg->queue_size);
}

int sn_req_job_failed(sn_req *r, enum MHD_Result *ret) {
    for (int i = 0; i < r->njobs; i++) {
        sn_job *j = r->jobs[i];
        if (j->status == SN_JOB_TIMEOUT) {
            *ret = sn_reply_error(r, 504, "timeout",
                                  "the request's deadline passed while it was queued");
            return 1;
        }
        if (j->status == SN_JOB_DISCONNECTED) { /* nobody is listening (nginx's 499) */
            *ret = sn_reply_error(r, 499, "client_closed_request",
                                  "the client closed the connection while queued");
            return 1;
        }
        if (j->status == SN_JOB_IMAGE_ERROR && j->img_status == SN_IMG_NOMEM) {
            *ret = sn_reply_memory(r, j->err);
            return 1;
        }
        if (j->status == SN_JOB_IMAGE_ERROR) {
            int status;
            const char *code = sn_image_error_code(j->img_status, &status);
            *ret = sn_reply_error(r, status, code, j->err);
            return 1;
        }
    }
    return 0;
}

/* ---- GET endpoints -------------------------------------------------------------------- */

static json_t *model_json(const sn_http_opts *o, int i) {
    const sn_served *m = &o->models[i];
    const sn_config *c = o->cfg;
    json_t *j = sn_model_info_json(m->info);
    json_t *batching =
        json_pack("{s:i,s:i,s:i,s:i,s:i}", "max_batch", c->max_batch, "max_batch_delay_us",
                  c->max_batch_delay_us, "queue_size", c->queue_size, "workers", c->workers,
                  "request_timeout_ms", c->request_timeout_ms);
    json_object_set_new(j, "name", json_string(m->name));
    json_object_set_new(j, "default", json_boolean(i == o->default_model));
    json_object_set_new(j, "weights", json_string(m->synthetic ? "synthetic" : "trained"));
    json_object_set_new(j, "sha256", json_string(m->sha256));
    if (m->path[0]) json_object_set_new(j, "path", json_string(m->path));
    if (m->synth_spec[0]) json_object_set_new(j, "synth", json_string(m->synth_spec));
    json_object_set_new(j, "batching", batching);
    json_t *pre = json_object_get(j, "preprocess");
    if (pre) json_object_set_new(pre, "mode", json_string(c->preprocess));
    json_object_set_new(j, "preprocess_mode", json_string(c->preprocess));
    return j;
}

static int is_get(const sn_req *r) {
    return strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
}

static enum MHD_Result get_health(sn_req *r) {
    return sn_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result get_ready(sn_req *r) {
    if (atomic_load(&H(r)->unready))
        return sn_reply_error(r, 503, "shutting_down", "the server is shutting down");
    if (r->o->nmodels == 0) return sn_reply_error(r, 503, "not_ready", "no model is loaded");
    return sn_reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

static enum MHD_Result get_metrics(sn_req *r) {
    size_t n;
    char *text = sn_metrics_render(&n);
    if (!text) return sn_reply_error(r, 503, "overloaded", "out of memory");
    return sn_reply(r, 200, text, n, "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result get_models(sn_req *r) {
    const sn_http_opts *o = r->o;
    json_t *arr = json_array();
    for (int i = 0; i < o->nmodels; i++) json_array_append_new(arr, model_json(o, i));
    return sn_reply_json(
        r, 200,
        json_pack("{s:o,s:s?}", "models", arr, "default",
                  o->default_model >= 0 ? o->models[o->default_model].name : NULL));
}

static enum MHD_Result get_model(sn_req *r) {
    if (r->model < 0) return sn_reply_error(r, 404, "model_not_found", "no such model");
    return sn_reply_json(r, 200, model_json(r->o, r->model));
}

/* ---- routing -------------------------------------------------------------------------- */

static enum MHD_Result not_found(sn_req *r) {
    return sn_reply_error(r, 404, "not_found", "no such route");
}

/* The handler for url; sets r->model for model routes (-2: an unknown name). */
static sn_req_fn route(conn_req *cr, const char *url) {
    sn_req *r = &cr->r;
    static const struct {
        const char *path;
        const char *endpoint;
        sn_req_fn get;
    } fixed[] = {{"/healthz", "health", get_health},
                 {"/readyz", "ready", get_ready},
                 {"/metrics", "metrics", get_metrics},
                 {"/v1/models", "models", get_models},
                 {"/v1/models/", "models", get_models}};
    cr->allow = "GET, HEAD";
    if (strcmp(url, "/classify") == 0) {
        r->endpoint = "classify";
        cr->infer = 1 + SN_EP_CLASSIFY;
        cr->allow = "POST";
        return sn_classify_start;
    }
    if (strncmp(url, "/v2", 3) == 0 && (url[3] == 0 || url[3] == '/')) {
        sn_route v = sn_v2_route(r, url);
        r->oip = 1;
        r->endpoint = v.endpoint;
        cr->infer = v.infer;
        if (v.allow) cr->allow = v.allow;
        return v.fn ? v.fn : not_found;
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(url, fixed[i].path) == 0) {
            r->endpoint = fixed[i].endpoint;
            return fixed[i].get;
        }
    if (strncmp(url, "/v1/models/", 11) == 0) {
        const char *name = url + 11, *slash = strchr(name, '/');
        size_t n = slash ? (size_t)(slash - name) : strlen(name);
        if (slash && strcmp(slash, "/classify") != 0) return not_found;
        r->model = sn_req_find_model(r->o, name, n);
        if (r->model < 0) r->model = -2;
        if (!slash) {
            r->endpoint = "model";
            return get_model;
        }
        r->endpoint = "classify";
        cr->infer = 1 + SN_EP_CLASSIFY;
        cr->allow = "POST";
        return sn_classify_start;
    }
    return not_found;
}

/* ---- request life cycle ---------------------------------------------------------------- */

/* First call: the headers are in. */
static enum MHD_Result begin(sn_http *h, struct MHD_Connection *c, const char *url,
                             const char *method, void **ctx) {
    conn_req *cr = calloc(1, sizeof *cr);
    if (!cr) return MHD_NO;
    sn_req *r = &cr->r;
    cr->h = h;
    r->o = &h->o;
    r->conn = c;
    r->t0 = sn_now_ns();
    r->model = -1;
    r->endpoint = "other";
    pthread_mutex_init(&r->mu, NULL);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    *ctx = r;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    sn_guard_headers_in(h->guard, ci ? ci->socket_context : NULL);
    atomic_fetch_add(&h->inflight, 1);
    sn_metrics_inflight(1);

    sn_req_fn handler = route(cr, url);
    /* MHD reads chunked bodies only; any other coding would leave it waiting for EOF */
    const char *te = sn_req_header(r, "Transfer-Encoding");
    if (te && strcasecmp(te, "chunked") != 0)
        return sn_reply_error(r, 501, "not_implemented",
                              "Transfer-Encoding other than chunked is not supported");
    const char *cl = sn_req_header(r, "Content-Length"), *expect = sn_req_header(r, "Expect");
    long long n = cl ? strtoll(cl, NULL, 10) : 0;
    long long limit = h->o.cfg->body_limit;
    if ((te || (n > 0 && n <= limit)) && !(expect && strcasecmp(expect, "100-continue") == 0)) {
        cr->defer = 1; /* an early answer waits for the body (see conn_req) */
        r->watch = sn_guard_watch(h->guard, sn_req_fd(r));
    }
    if (handler == not_found) return not_found(r);
    if (!cr->infer && !is_get(r)) return sn_reply_error(r, 405, "method_not_allowed", "use GET");
    enum MHD_Result ret = handler(r);
    if (r->answered || !r->on_body) return ret;

    /* the handler wants the body: refuse it now if it says it is too large */
    if (n > limit)
        return sn_reply_errorf(r, 413, "payload_too_large", "request body over the %lld-byte limit",
                               limit);
    if (n > 0 && sn_budget_reserve_body(n) < 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "memory budget: %lld of %lld bytes in use, a %lld-byte body does not fit; "
                 "retry later",
                 sn_budget_used(), sn_budget_limit(), n);
        /* A client waiting for 100 Continue gets the answer now and never sends the body;
         * any other gets it once the body has been read and dropped (nothing is stored). */
        return sn_reply_memory(r, msg);
    }
    cr->defer = 0; /* from here on, answers come after the body anyway */
    if (n > 0) {
        cr->reserved = n;
        r->body = malloc((size_t)n);
        if (!r->body) return sn_reply_error(r, 503, "overloaded", "out of memory");
        r->cap = (size_t)n;
    }
    if (!r->watch) r->watch = sn_guard_watch(h->guard, sn_req_fd(r));
    return MHD_YES;
}

/* Drop the body received so far and give its memory back. */
static void drop_body(conn_req *cr) {
    sn_req *r = &cr->r;
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    sn_budget_release(cr->reserved);
    cr->reserved = 0;
}

/* Append a chunk of body; past body_limit, or when the memory budget refuses to let a body
 * without Content-Length (chunked) grow, the body is dropped and the rest read and ignored.
 * Returns -1 when out of memory. */
static int append_body(conn_req *cr, const char *data, size_t n, long long limit) {
    sn_req *r = &cr->r;
    if (r->over_limit || cr->mem_over) return 0;
    if (r->len + n > (size_t)limit) {
        r->over_limit = 1;
        drop_body(cr);
        return 0;
    }
    if (r->len + n > r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 65536;
        while (nc < r->len + n) nc *= 2;
        if (nc > (size_t)limit) nc = (size_t)limit;
        if (sn_budget_reserve_body((long long)(nc - r->cap)) < 0) {
            sn_metrics_reject(SN_REJ_MEMORY);
            cr->mem_over = 1;
            drop_body(cr);
            return 0;
        }
        cr->reserved += (long long)(nc - r->cap);
        uint8_t *nb = realloc(r->body, nc);
        if (!nb) return -1;
        r->body = nb;
        r->cap = nc;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **ctx) {
    (void)version;
    sn_http *h = cls;
    sn_req *r = *ctx;
    if (!r) return begin(h, c, url, method, ctx);
    conn_req *cr = *ctx;
    if (r->answered) { /* an early reply: drop whatever body still comes */
        if (*upload_size == 0 && cr->deferred_body) { /* the body is in: send it now */
            sn_guard_unwatch(h->guard, r->watch);
            r->watch = NULL;
            cr->defer = 0;
            r->answered = 0;
            char *b = cr->deferred_body;
            cr->deferred_body = NULL;
            return reply(r, cr->deferred_status, b, cr->deferred_len, cr->deferred_ctype,
                         cr->deferred_allow, NULL);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!cr->oom && append_body(cr, upload_data, *upload_size, h->o.cfg->body_limit)) {
            drop_body(cr);
            cr->oom = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    sn_guard_unwatch(h->guard, r->watch); /* the whole body is in */
    r->watch = NULL;
    if (cr->oom) return sn_reply_error(r, 503, "overloaded", "out of memory");
    if (cr->mem_over) /* counted when it was refused */
        return reply_error(r, 503, "overloaded",
                           "the request body outgrew the memory budget; retry later", 0);
    if (r->suspended) { /* resumed: every job is done */
        r->suspended = 0;
        return r->on_done(r);
    }
    if (r->over_limit)
        return sn_reply_errorf(r, 413, "payload_too_large", "request body over the %lld-byte limit",
                               h->o.cfg->body_limit);
    return r->on_body(r);
}

static void access_log(sn_http *h, sn_req *r, int status, double ms) {
    const char *model = r->model >= 0 ? h->o.models[r->model].name : "-";
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
}

static void on_completed(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    sn_http *h = cls;
    conn_req *cr = *ctx;
    if (!cr) return;
    sn_req *r = &cr->r;
    *ctx = NULL;
    sn_guard_unwatch(h->guard, r->watch);
    if (r->admitted) atomic_fetch_sub(&h->admitted[r->model], 1);
    double ms = (double)(sn_now_ns() - r->t0) * 1e-6;
    int status = r->answered ? r->status : 499;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) status = 499;
    if (cr->infer)
        sn_metrics_request(sn_metrics_model(r->model), (sn_endpoint)(cr->infer - 1), status,
                           ms * 1e-3);
    access_log(h, r, status, ms);
    if (r->ctx_free) r->ctx_free(r->ctx);
    drop_body(cr);
    free(cr->deferred_body);
    pthread_mutex_destroy(&r->mu);
    free(cr);
    sn_metrics_inflight(-1);
    atomic_fetch_sub(&h->inflight, 1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    sn_http *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? sn_guard_conn_open(h->guard, ci->connect_fd) : NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        sn_guard_conn_close(h->guard, *socket_context);
        *socket_context = NULL;
    }
}

/* ---- start and stop ------------------------------------------------------------------ */

sn_http *sn_http_start(const sn_http_opts *o, char *err, size_t errlen) {
    sn_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->o = *o;
    h->quiesced = MHD_INVALID_SOCKET;
    h->guard = sn_guard_start(o->cfg->header_timeout_s, err, errlen);
    if (!h->guard) {
        free(h);
        return NULL;
    }
    sn_listen_callbacks cb = {on_request, on_completed, on_connection, h};
    h->d = sn_listen_start(o->cfg, &cb, err, errlen);
    if (!h->d) {
        sn_guard_free(h->guard);
        free(h);
        return NULL;
    }
    return h;
}

void sn_http_unready(sn_http *h) {
    atomic_store(&h->unready, 1);
}

void sn_http_drain(sn_http *h) {
    atomic_store(&h->unready, 1);
    atomic_store(&h->draining, 1);
    /* MHD hands the listening socket back, but its worker threads take it out of their epoll
     * sets on their own time: closing it here raced with them (and the number could be
     * reused under them). shutdown() stops the listening at once, so new connections are
     * refused while the admitted ones drain; the descriptor is closed after the workers have
     * stopped. */
    MHD_socket fd = MHD_quiesce_daemon(h->d);
    if (fd != MHD_INVALID_SOCKET) {
        shutdown(fd, SHUT_RDWR);
        h->quiesced = fd;
    }
}

int sn_http_inflight(sn_http *h) {
    return atomic_load(&h->inflight);
}

void sn_http_stop(sn_http *h) {
    sn_guard_stop(h->guard);
    MHD_stop_daemon(h->d); /* completes what is left, which unwatches uploads */
    if (h->quiesced != MHD_INVALID_SOCKET) close(h->quiesced);
    sn_guard_free(h->guard);
    free(h);
}
