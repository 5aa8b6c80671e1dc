/* batcher.h - per-model bounded queues and the inference worker pool.
 *
 * A job is one image. The HTTP layer submits all images of a request at once (all or none
 * are admitted). W workers each own one sn_engine per model and its batch buffers, allocated
 * when the worker starts; a worker takes up to max_batch jobs of one model, waiting at most
 * max_batch_delay_us after the first one was queued, and runs them as one batch. Jobs whose
 * deadline passed are answered without running; so are jobs whose client went away (its
 * socket shows EOF). A janitor thread sweeps the queues for both every few milliseconds, so a
 * dead job frees its slot without waiting for a worker. Each job's done() callback is called
 * exactly once, from a worker or the janitor thread. Knows nothing of HTTP. */
#ifndef SN_BATCHER_H
#define SN_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "server/config.h"
#include "common/image.h"
#include "server/models.h"

typedef enum {
    SN_JOB_OK = 0,
    SN_JOB_IMAGE_ERROR, /* decode failed: see img_status */
    SN_JOB_TIMEOUT,     /* deadline passed while queued: never run */
    SN_JOB_DISCONNECTED /* client went away while queued: never run */
} sn_job_status;

typedef struct sn_job sn_job;
struct sn_job {
    /* input, set before sn_batcher_submit */
    const uint8_t *data; /* encoded image, decoded by the worker (common/input.h) ... */
    size_t len;
    const float *tensor;  /* ... or an input tensor the client sent preprocessed (NULL: decode) */
    int fd;               /* client socket to watch for a disconnect, or -1 */
    uint64_t deadline_ns; /* monotonic */
    int top_k;            /* 0: no top-k wanted */
    int *top_idx;         /* [top_k], filled on success */
    float *top_score;
    float *logits; /* optional [classes]: the raw logits (before softmax), filled on success */
    void (*done)(sn_job *j, void *arg);
    void *arg;
    /* output */
    sn_job_status status;
    sn_image_status img_status;
    char err[160];
    int width, height; /* decoded size (worker decode) */
    double decode_s, queue_s, infer_s;
    /* private */
    uint64_t enqueue_ns;
};

typedef struct sn_batcher sn_batcher;

sn_batcher *sn_batcher_start(sn_served *models, int nmodels, const sn_config *c, char *err,
                             size_t errlen);
/* Queue n jobs of model mi. Returns 0, -1 when the queue lacks room for all of them (none
 * queued), -2 when the batcher is stopping. */
int sn_batcher_submit(sn_batcher *b, int mi, sn_job **jobs, int n);
/* Stop: refuse new jobs, let the workers finish every queued one, join all threads. */
void sn_batcher_stop(sn_batcher *b);

#endif
