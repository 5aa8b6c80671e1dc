/* request.h - one HTTP request as the handlers see it (server-internal).
 *
 * http.c owns a request's life: it creates the sn_req when the headers are in, routes it,
 * receives the body, resumes the connection when the workers are done, writes the access
 * log and frees everything. A handler (classify.c for /classify) fills in what its endpoint
 * needs: it answers at once from the headers, or sets on_body (called once the whole body is
 * in) and on_done (called after every job it queued has finished). Handlers reply only
 * through the sn_reply_* functions below, so every answer gets the same headers, status
 * accounting and error shape: {"error": {"code": "...", "message": "..."}}. */
#ifndef SN_REQUEST_H
#define SN_REQUEST_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "server/batcher.h"
#include "server/http.h"

typedef struct sn_req sn_req;
typedef enum MHD_Result (*sn_req_fn)(sn_req *r);

struct sn_req {
    const sn_http_opts *o; /* models, config, labels, batcher */
    struct MHD_Connection *conn;
    uint64_t t0;          /* when the headers were in (monotonic ns) */
    const char *endpoint; /* label for logs: "classify", "models", "health", ... */
    int model;            /* index into o->models; -1 none yet, -2 an unknown name */
    int oip;              /* an Open Inference Protocol route: errors are {"error": "message"} */
    char method[16];
    char path[256];

    /* body, received by http.c (at most body_limit bytes) */
    uint8_t *body;
    size_t len, cap;
    int over_limit; /* the body passed body_limit: it was dropped as it came in */
    sn_req_fn on_body;
    sn_req_fn on_done;

    /* jobs queued by sn_req_submit; the handler owns the array */
    sn_job **jobs;
    int njobs;
    int admitted; /* holds one of the model's admission slots (sn_req_admit) */

    /* handler state, freed with ctx_free when the request ends */
    void *ctx;
    void (*ctx_free)(void *ctx);

    /* http.c's own */
    pthread_mutex_t mu;
    int pending;   /* jobs not yet done */
    int suspended; /* waiting for the workers */
    int answered;  /* a reply is queued */
    int status;    /* for the access log and metrics */
    size_t bytes;
    void *watch; /* guard.c's upload watch while the body comes in */
};

/* ---- replies (http.c) ------------------------------------------------------------------ */

/* Queue a reply that takes ownership of body (malloc'd). */
enum MHD_Result sn_reply(sn_req *r, int status, char *body, size_t len, const char *ctype);
/* The same with extra headers: hdrs holds name, value, name, value, ..., NULL. */
enum MHD_Result sn_reply_headers(sn_req *r, int status, char *body, size_t len, const char *ctype,
                                 const char *const *hdrs);
/* Reply with j serialised (compact, 7 significant digits); takes ownership of j. */
enum MHD_Result sn_reply_json(sn_req *r, int status, json_t *j);
/* {"error": {"code", "message"}} ({"error": "message"} on an r->oip route); 503 adds
 * Retry-After, 405 an Allow header; counts the rejection in shufflenet_rejected_total by code. */
enum MHD_Result sn_reply_error(sn_req *r, int status, const char *code, const char *msg);
/* 503 overloaded because the memory budget refused it (rejected{reason="memory"}). */
enum MHD_Result sn_reply_memory(sn_req *r, const char *msg);
enum MHD_Result sn_reply_errorf(sn_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- helpers for handlers (http.c) ------------------------------------------------------ */

/* A query argument with its decoded length (it may hold a NUL). Returns 1 when present. */
int sn_req_query(sn_req *r, const char *key, const char **v, size_t *n);
/* A request header, or NULL. */
const char *sn_req_header(sn_req *r, const char *name);
/* Index of the model called name (n bytes), or -1. */
int sn_req_find_model(const sn_http_opts *o, const char *name, size_t n);
/* 1 once the server is shutting down (SIGTERM: the shutdown delay, then the drain): it is
 * no longer ready, as /readyz says. */
int sn_req_draining(sn_req *r);
/* The client's socket (for the workers' disconnect check), or -1. */
int sn_req_fd(sn_req *r);

/* Admission: a model takes at most what its queue and its workers' batches hold; past that
 * the answer is an immediate 503 before the body is read. Returns 0 (r->admitted set) or
 * -1 after replying. */
int sn_req_admit(sn_req *r, enum MHD_Result *ret);
/* Queue n filled-in jobs of r->model (their done/arg are set here) and suspend the
 * connection; on_done runs when the last one finishes. On a full queue or while draining,
 * replies 503 instead. */
enum MHD_Result sn_req_submit(sn_req *r, sn_job **jobs, int n);
/* After on_done: when a job failed (timeout, disconnect, image error), reply with its error
 * and return 1; 0 when every job succeeded. */
int sn_req_job_failed(sn_req *r, enum MHD_Result *ret);

/* HTTP status and error code for an image status (415, 413, 400, or 503 for memory). */
const char *sn_image_error_code(sn_image_status st, int *status);

/* ---- handlers ----------------------------------------------------------------------------- */

/* POST /classify and /v1/models/{name}/classify (classify.c): the headers are in. */
enum MHD_Result sn_classify_start(sn_req *r);
/* An encoded image that the workers would refuse at once (empty, not JPEG/PNG): replies with
 * its error (what: "image 2 (a.png)" or NULL) and returns 1; 0 for a JPEG or PNG. */
int sn_image_refuse_foreign(sn_req *r, const uint8_t *data, size_t len, const char *what,
                            enum MHD_Result *ret);

/* A route's handler and how http.c treats it. */
typedef struct {
    sn_req_fn fn;         /* NULL: no such route (404) */
    const char *endpoint; /* label for the access log */
    int infer;            /* 1 + an sn_endpoint for inference routes (metrics), else 0 */
    const char *allow;    /* methods for a 405 */
} sn_route;

/* The Open Inference Protocol's routes, /v2 and below (v2.c); sets r->model. */
sn_route sn_v2_route(sn_req *r, const char *url);

#endif
