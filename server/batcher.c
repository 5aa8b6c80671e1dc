/* batcher.c - per-model bounded queues, dynamic batching and the inference worker threads.
 *
 * One mutex guards every queue; workers sleep on one condition variable (monotonic clock).
 * A queue being gathered by one worker is skipped by the others, so a batch is not split
 * while it fills. Completion callbacks run outside the lock. */
#include "server/batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/input.h"
#include "server/budget.h"
#include "server/clock.h"
#include "server/metrics.h"

typedef struct {
    sn_job **ring;
    int cap, head, count;
    int gathering;
} queue;

typedef struct {
    sn_batcher *b;
    int id;
    pthread_t th;
    sn_engine **eng; /* [nmodels] */
    float **input;   /* [nmodels][max_batch * 3*S*S] */
    float **logits;  /* [nmodels][max_batch * classes] */
    sn_job **batch;  /* [max_batch] */
    sn_job **dead;   /* [queue_size] expired/cancelled jobs found while taking */
} worker;

struct sn_batcher {
    sn_served *models;
    int nmodels;
    const sn_config *cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    queue *q;
    int stopping, janitor_stop;
    int rr; /* round-robin start for fairness across models */
    int nworkers;
    worker *w;
    pthread_t janitor;
    sn_job **jdead;   /* janitor's scratch, [queue_size * nmodels] */
    sn_pre_mode mode; /* config "preprocess" */
};

/* 1 when the peer closed its side or reset the connection. */
static int peer_gone(int fd) {
    if (fd < 0) return 0;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0) return 1;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 1;
    return 0;
}

static void finish(sn_job *j, sn_job_status st) {
    j->status = st;
    if (st == SN_JOB_TIMEOUT) sn_metrics_reject(SN_REJ_TIMEOUT);
    if (st == SN_JOB_DISCONNECTED) sn_metrics_reject(SN_REJ_DISCONNECTED);
    j->done(j, j->arg);
}

static void set_depth(sn_batcher *b, int mi) {
    atomic_store_explicit(&sn_metrics_model(mi)->queue_depth, b->q[mi].count, memory_order_relaxed);
}

/* Pop jobs of queue mi into batch (up to max) and dead. Lock held. */
static void take(sn_batcher *b, int mi, sn_job **batch, int *n, int max, sn_job **dead, int *nd) {
    queue *q = &b->q[mi];
    uint64_t now = sn_now_ns();
    while (q->count > 0 && *n < max) {
        sn_job *j = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
        j->queue_s = (double)(now - j->enqueue_ns) * 1e-9;
        if (now > j->deadline_ns) {
            j->status = SN_JOB_TIMEOUT;
            dead[(*nd)++] = j;
        } else {
            batch[(*n)++] = j;
        }
    }
    set_depth(b, mi);
}

static void run_batch(worker *w, int mi, sn_job **batch, int n) {
    sn_batcher *b = w->b;
    const sn_served *m = &b->models[mi];
    const sn_model_info *info = m->info;
    size_t isz = (size_t)3 * info->input_size * info->input_size;
    sn_model_metrics *mm = sn_metrics_model(mi);
    sn_job *ok[256];
    const float *in[256];
    int k = 0;
    for (int i = 0; i < n; i++) {
        sn_job *j = batch[i];
        sn_hist_observe(&mm->queue_wait_seconds, j->queue_s);
        if (peer_gone(j->fd)) {
            finish(j, SN_JOB_DISCONNECTED);
            continue;
        }
        float *slot = w->input[mi] + (size_t)k * isz;
        if (j->tensor) {
            in[k] = j->tensor; /* preprocessed on the HTTP thread: run it where it is */
        } else {
            in[k] = slot;
            uint64_t t0 = sn_now_ns();
            sn_input_opts o = {.max_pixels = b->cfg->max_pixels,
                               .mode = b->mode,
                               .reserve = sn_budget_decode_hook,
                               .release = sn_budget_release_hook};
            sn_input_info ii = {0};
            j->img_status = sn_input_from_bytes(&info->pre, &o, j->data, j->len, slot, &ii, j->err,
                                                sizeof j->err);
            j->width = ii.width;
            j->height = ii.height;
            j->decode_s = (double)(sn_now_ns() - t0) * 1e-9;
            sn_hist_observe(&mm->decode_seconds, j->decode_s);
            if (j->img_status != SN_IMG_OK) {
                finish(j, SN_JOB_IMAGE_ERROR);
                continue;
            }
        }
        ok[k++] = j;
    }
    if (k == 0) return;
    uint64_t t0 = sn_now_ns();
    sn_engine_run_ptrs(w->eng[mi], in, k, w->logits[mi]);
    double dt = (double)(sn_now_ns() - t0) * 1e-9;
    sn_hist_observe(&mm->inference_seconds, dt);
    sn_hist_observe(&mm->batch_size, k);
    atomic_fetch_add_explicit(&mm->images, (uint64_t)k, memory_order_relaxed);
    int nc = info->num_classes;
    for (int i = 0; i < k; i++) {
        sn_job *j = ok[i];
        float *lg = w->logits[mi] + (size_t)i * nc;
        if (j->logits) memcpy(j->logits, lg, (size_t)nc * sizeof *lg);
        sn_softmax(lg, nc);
        sn_topk(lg, nc, j->top_k, j->top_idx);
        for (int t = 0; t < j->top_k; t++) j->top_score[t] = lg[j->top_idx[t]];
        j->infer_s = dt;
        finish(j, SN_JOB_OK);
    }
}

static void deadline_ts(uint64_t ns, struct timespec *ts) {
    ts->tv_sec = (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    sn_batcher *b = w->b;
    int maxb = b->cfg->max_batch;
    uint64_t delay = (uint64_t)b->cfg->max_batch_delay_us * 1000ull;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        int mi = -1;
        for (int t = 0; t < b->nmodels; t++) {
            int i = (b->rr + t) % b->nmodels;
            if (b->q[i].count > 0 && !b->q[i].gathering) {
                mi = i;
                break;
            }
        }
        if (mi < 0) {
            int queued = 0;
            for (int i = 0; i < b->nmodels; i++) queued += b->q[i].count;
            if (b->stopping && queued == 0) break;
            pthread_cond_wait(&b->cv, &b->mu);
            continue;
        }
        b->rr = (mi + 1) % b->nmodels;
        queue *q = &b->q[mi];
        q->gathering = 1;
        uint64_t until = q->ring[q->head]->enqueue_ns + delay;
        int n = 0, nd = 0;
        take(b, mi, w->batch, &n, maxb, w->dead, &nd);
        while (n < maxb && delay > 0 && !b->stopping) {
            if (sn_now_ns() >= until) break;
            struct timespec ts;
            deadline_ts(until, &ts);
            pthread_cond_timedwait(&b->cv, &b->mu, &ts);
            take(b, mi, w->batch, &n, maxb, w->dead, &nd);
        }
        q->gathering = 0;
        if (q->count > 0) pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        for (int i = 0; i < nd; i++) finish(w->dead[i], SN_JOB_TIMEOUT);
        if (n > 0) run_batch(w, mi, w->batch, n);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Sweep the queues for expired jobs and vanished clients. */
static void *janitor_main(void *arg) {
    sn_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->janitor_stop) {
        struct timespec ts;
        deadline_ts(sn_now_ns() + 5000000ull, &ts);
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
        int nd = 0;
        uint64_t now = sn_now_ns();
        for (int mi = 0; mi < b->nmodels; mi++) {
            queue *q = &b->q[mi];
            int kept = 0;
            for (int i = 0; i < q->count; i++) {
                sn_job *j = q->ring[(q->head + i) % q->cap];
                if (now > j->deadline_ns) {
                    j->status = SN_JOB_TIMEOUT;
                } else if (peer_gone(j->fd)) {
                    j->status = SN_JOB_DISCONNECTED;
                } else {
                    q->ring[(q->head + kept++) % q->cap] = j;
                    continue;
                }
                j->queue_s = (double)(now - j->enqueue_ns) * 1e-9;
                b->jdead[nd++] = j;
            }
            if (kept != q->count) {
                q->count = kept;
                set_depth(b, mi);
            }
        }
        if (nd == 0) continue;
        pthread_mutex_unlock(&b->mu);
        for (int i = 0; i < nd; i++) finish(b->jdead[i], b->jdead[i]->status);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void worker_free(sn_batcher *b, worker *w) {
    for (int i = 0; i < b->nmodels; i++) {
        if (w->eng && w->eng[i]) sn_engine_free(w->eng[i]);
        if (w->input) free(w->input[i]);
        if (w->logits) free(w->logits[i]);
    }
    free(w->eng);
    free(w->input);
    free(w->logits);
    free(w->batch);
    free(w->dead);
}

static int worker_init(sn_batcher *b, worker *w, char *err, size_t errlen) {
    int nm = b->nmodels, maxb = b->cfg->max_batch;
    w->eng = calloc((size_t)nm, sizeof *w->eng);
    w->input = calloc((size_t)nm, sizeof *w->input);
    w->logits = calloc((size_t)nm, sizeof *w->logits);
    w->batch = calloc((size_t)maxb, sizeof *w->batch);
    w->dead = calloc((size_t)b->cfg->queue_size, sizeof *w->dead);
    if (!w->eng || !w->input || !w->logits || !w->batch || !w->dead) goto oom;
    for (int i = 0; i < nm; i++) {
        const sn_model_info *info = b->models[i].info;
        w->eng[i] = sn_engine_create(b->models[i].model, maxb, err, errlen);
        if (!w->eng[i]) return -1;
        size_t isz = (size_t)3 * info->input_size * info->input_size;
        w->input[i] = malloc((size_t)maxb * isz * sizeof(float));
        w->logits[i] = malloc((size_t)maxb * info->num_classes * sizeof(float));
        if (!w->input[i] || !w->logits[i]) goto oom;
    }
    return 0;
oom:
    snprintf(err, errlen, "worker %d: out of memory", w->id);
    return -1;
}

sn_batcher *sn_batcher_start(sn_served *models, int nmodels, const sn_config *c, char *err,
                             size_t errlen) {
    if (c->max_batch > 256) {
        snprintf(err, errlen, "key \"max_batch\": at most 256");
        return NULL;
    }
    sn_batcher *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->models = models;
    b->nmodels = nmodels;
    b->cfg = c;
    if (sn_pre_mode_parse(c->preprocess, &b->mode) < 0) b->mode = SN_PRE_FAST;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->q = calloc((size_t)(nmodels ? nmodels : 1), sizeof *b->q);
    b->jdead = calloc((size_t)c->queue_size * (size_t)(nmodels ? nmodels : 1), sizeof *b->jdead);
    b->w = calloc((size_t)c->workers, sizeof *b->w);
    if (!b->q || !b->jdead || !b->w) goto fail;
    for (int i = 0; i < nmodels; i++) {
        b->q[i].cap = c->queue_size;
        b->q[i].ring = calloc((size_t)c->queue_size, sizeof *b->q[i].ring);
        if (!b->q[i].ring) goto fail;
    }
    for (int i = 0; i < c->workers; i++) {
        worker *w = &b->w[i];
        w->b = b;
        w->id = i;
        if (worker_init(b, w, err, errlen) < 0) goto fail;
    }
    /* every worker's buffers exist before any thread starts */
    for (int i = 0; i < c->workers; i++) {
        if (pthread_create(&b->w[i].th, NULL, worker_main, &b->w[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %d", i);
            /* stop the ones already running */
            pthread_mutex_lock(&b->mu);
            b->stopping = 1;
            pthread_cond_broadcast(&b->cv);
            pthread_mutex_unlock(&b->mu);
            for (int k = 0; k < i; k++) pthread_join(b->w[k].th, NULL);
            goto fail;
        }
        b->nworkers++;
    }
    if (pthread_create(&b->janitor, NULL, janitor_main, b) != 0) {
        snprintf(err, errlen, "cannot start the janitor thread");
        b->nworkers = 0;
        pthread_mutex_lock(&b->mu);
        b->stopping = 1;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        for (int k = 0; k < c->workers; k++) pthread_join(b->w[k].th, NULL);
        goto fail;
    }
    return b;
fail:
    if (!err[0]) snprintf(err, errlen, "out of memory starting the worker pool");
    if (b->w)
        for (int i = 0; i < c->workers; i++) worker_free(b, &b->w[i]);
    for (int i = 0; b->q && i < nmodels; i++) free(b->q[i].ring);
    free(b->q);
    free(b->w);
    free(b->jdead);
    free(b);
    return NULL;
}

int sn_batcher_submit(sn_batcher *b, int mi, sn_job **jobs, int n) {
    uint64_t now = sn_now_ns();
    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return -2;
    }
    queue *q = &b->q[mi];
    if (q->count + n > q->cap) {
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        jobs[i]->enqueue_ns = now;
        q->ring[(q->head + q->count++) % q->cap] = jobs[i];
    }
    set_depth(b, mi);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void sn_batcher_stop(sn_batcher *b) {
    pthread_mutex_lock(&b->mu);
    b->stopping = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->nworkers; i++) pthread_join(b->w[i].th, NULL);
    pthread_mutex_lock(&b->mu);
    b->janitor_stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->janitor, NULL);
    for (int i = 0; i < b->cfg->workers; i++) worker_free(b, &b->w[i]);
    for (int i = 0; i < b->nmodels; i++) free(b->q[i].ring);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b->q);
    free(b->w);
    free(b->jdead);
    free(b);
}
