/* metrics.h - Prometheus metrics of the service (text format 0.0.4).
 *
 * Counters, gauges and histogram buckets are C11 atomics updated with relaxed ordering: one
 * uncontended-cache-line add per event, no locks, so metrics are never the bottleneck.
 * Rendering reads them without stopping the writers (a scrape may see one event half-way,
 * e.g. a bucket counted before its sum, which Prometheus tolerates). */
#ifndef SN_METRICS_H
#define SN_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SN_HIST_MAX 16

typedef struct {
    int nb;                                   /* finite buckets */
    const double *le;                         /* their upper bounds */
    double scale;                             /* sum is kept as an integer count of 1/scale units */
    _Atomic uint64_t bucket[SN_HIST_MAX + 1]; /* not cumulative; [nb] is +Inf */
    _Atomic uint64_t sum;
} sn_hist;

/* The status codes counted per model, in shufflenet_requests_total{code}. */
#define SN_NCODES 12
extern const int sn_metric_codes[SN_NCODES];

/* The inference API a request came in by, shufflenet_requests_total{endpoint}: the service's
 * own POST /classify, or the Open Inference Protocol's POST /v2/models/{m}/infer. */
typedef enum { SN_EP_CLASSIFY, SN_EP_V2, SN_EP_COUNT } sn_endpoint;

typedef enum {
    SN_REJ_OVERLOADED,
    SN_REJ_TIMEOUT,
    SN_REJ_DISCONNECTED,
    SN_REJ_DRAINING,
    SN_REJ_PAYLOAD_TOO_LARGE,
    SN_REJ_IMAGE_TOO_LARGE,
    SN_REJ_INVALID_IMAGE,
    SN_REJ_UNSUPPORTED,
    SN_REJ_BAD_REQUEST,
    SN_REJ_HEADER_TIMEOUT, /* headers not in within header_timeout_s (slowloris) */
    SN_REJ_MEMORY,         /* over the memory budget (server/budget.h) */
    SN_REJ_COUNT
} sn_reject_reason;

typedef struct {
    char name[64];
    _Atomic uint64_t requests[SN_EP_COUNT][SN_NCODES];
    _Atomic uint64_t images;
    _Atomic int64_t queue_depth;
    sn_hist request_seconds, queue_wait_seconds, decode_seconds, inference_seconds, batch_size;
} sn_model_metrics;

/* One more set for requests that name no (known) model, labelled model="none". */
void sn_metrics_init(int nmodels, const char *const *names, const char *isa);
sn_model_metrics *sn_metrics_model(int i); /* i = -1: the "none" set */

void sn_hist_observe(sn_hist *h, double v);
void sn_metrics_request(sn_model_metrics *m, sn_endpoint ep, int code, double seconds);
void sn_metrics_reject(sn_reject_reason r);
void sn_metrics_inflight(int delta);

/* Render everything into a malloc'd NUL-terminated string (*len bytes). NULL on OOM. */
char *sn_metrics_render(size_t *len);

#endif
