/* main.c - shufflenet-server: read the configuration, load the models and labels, start
 * the worker pool and the HTTP daemon, then wait for SIGTERM/SIGINT and shut down: on SIGTERM
 * /readyz turns 503 at once while requests are still served (each reply saying Connection:
 * close) for shutdown_delay_ms, so a load balancer takes this replica out first; then (at
 * once on SIGINT or a second signal) the drain: the listening socket closes, admitted
 * requests finish, exit 0. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/batcher.h"
#include "server/budget.h"
#include "server/config.h"
#include "server/healthcheck.h"
#include "server/http.h"
#include "common/labels.h"
#include "server/metrics.h"
#include "server/models.h"

static sn_config cfg;
static sn_served models[SN_MAX_MODELS];

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--healthcheck") == 0)
        return sn_healthcheck(argc - 1, argv + 1);
#ifdef M_ARENA_MAX
    /* One malloc arena for all threads. With one per thread (glibc's default) each HTTP and
     * worker thread keeps its own high-water mark of freed memory, and RSS crept up for
     * minutes under a steady load (bench/soak.sh); with one it is flat after a second. A
     * request allocates its body, a few small arrays and the decoder's pixels; input tensors
     * are the workers' batch buffers, planned at start; so the lock is cheap.
     * MALLOC_ARENA_MAX in the environment still wins. */
    if (!getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 1);
#endif
    char err[512] = "";
    int rc = sn_config_load(&cfg, argc, argv, err, sizeof err);
    if (rc == 1) return 0;
    if (rc < 0) {
        fprintf(stderr, "shufflenet-server: config: %s\n", err);
        return 2;
    }

    /* signals are taken synchronously by this thread; every other thread inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sn_labels labels;
    rc = cfg.labels[0] ? sn_labels_load(cfg.labels, &labels, err, sizeof err)
                       : sn_labels_load_default(&labels, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "shufflenet-server: labels: %s\n", err);
        return 2;
    }
    if (sn_models_load(&cfg, models, err, sizeof err) < 0) {
        fprintf(stderr, "shufflenet-server: %s\n", err);
        sn_labels_free(&labels);
        return 2;
    }
    const char *names[SN_MAX_MODELS];
    int def = -1;
    for (int i = 0; i < cfg.nmodels; i++) {
        names[i] = models[i].name;
        const sn_model_info *in = models[i].info;
        if (in->num_classes > labels.count)
            fprintf(stderr,
                    "shufflenet-server: warning: model \"%s\" has %d classes, the label "
                    "list %d\n",
                    models[i].name, in->num_classes, labels.count);
        if (strcmp(models[i].name, cfg.default_model) == 0) def = i;
        fprintf(stderr, "shufflenet-server: model %s: g=%d width=%.2f %lld MMACs %s weights%s%s\n",
                models[i].name, in->groups, (double)in->width, in->macs / 1000000,
                models[i].synthetic ? "SYNTHETIC" : "trained", models[i].path[0] ? " from " : "",
                models[i].path);
        if (models[i].synthetic)
            fprintf(stderr,
                    "shufflenet-server: WARNING: model \"%s\" has SYNTHETIC weights: its "
                    "answers are meaningless\n",
                    models[i].name);
    }
    if (cfg.nmodels == 0)
        fprintf(stderr, "shufflenet-server: WARNING: no model configured; /readyz stays 503\n");
    sn_budget_init(cfg.memory_budget);
    fprintf(stderr, "shufflenet-server: preprocess %s, memory budget %lld bytes\n", cfg.preprocess,
            cfg.memory_budget);
    char lim[1024];
    sn_limits_describe(&cfg.limits, lim, sizeof lim);
    fprintf(stderr, "shufflenet-server: limits: %s\n", lim);
    sn_metrics_init(cfg.nmodels, names, sn_isa_name());

    sn_batcher *b = sn_batcher_start(models, cfg.nmodels, &cfg, err, sizeof err);
    if (!b) {
        fprintf(stderr, "shufflenet-server: %s\n", err);
        return 2;
    }
    sn_http_opts o = {&cfg, models, cfg.nmodels, def, &labels, b};
    sn_http *h = sn_http_start(&o, err, sizeof err);
    if (!h) {
        fprintf(stderr, "shufflenet-server: %s\n", err);
        sn_batcher_stop(b);
        return 2;
    }
    fprintf(stderr,
            "shufflenet-server: listening on http://%s (%d workers, %d http threads, max_batch "
            "%d, delay %dus, queue %d, isa %s)\n",
            cfg.listen, cfg.workers, cfg.http_threads, cfg.max_batch, cfg.max_batch_delay_us,
            cfg.queue_size, sn_isa_name());

    int sig;
    while (sigwait(&sigs, &sig) != 0) {
    }
    const char *signame = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    if (sig == SIGTERM && cfg.shutdown_delay_ms > 0) {
        /* not ready, still serving: the balancer's health checks (or Kubernetes' endpoint
         * removal) see it before anything is refused */
        sn_http_unready(h);
        fprintf(stderr,
                "shufflenet-server: SIGTERM: not ready; serving %d ms more before the drain\n",
                cfg.shutdown_delay_ms);
        struct timespec end, now;
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += cfg.shutdown_delay_ms / 1000;
        end.tv_nsec += (long)(cfg.shutdown_delay_ms % 1000) * 1000000L;
        if (end.tv_nsec >= 1000000000L) end.tv_sec++, end.tv_nsec -= 1000000000L;
        for (;;) { /* until the delay is over or a second signal ends it early */
            clock_gettime(CLOCK_MONOTONIC, &now);
            struct timespec left = {end.tv_sec - now.tv_sec, end.tv_nsec - now.tv_nsec};
            if (left.tv_nsec < 0) left.tv_sec--, left.tv_nsec += 1000000000L;
            if (left.tv_sec < 0) break;
            int got = sigtimedwait(&sigs, NULL, &left);
            if (got >= 0) {
                fprintf(stderr, "shufflenet-server: second signal: the delay is cut short\n");
                break;
            }
            if (errno != EINTR) break; /* EAGAIN: the delay is over */
        }
    }
    fprintf(stderr, "shufflenet-server: %s: draining (up to %d ms)\n", signame,
            cfg.drain_timeout_ms);
    sn_http_drain(h);
    struct timespec t0, now, nap = {0, 5000000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int left;
    for (;;) {
        left = sn_http_inflight(h);
        if (left == 0) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double ms =
            (double)(now.tv_sec - t0.tv_sec) * 1e3 + (double)(now.tv_nsec - t0.tv_nsec) * 1e-6;
        if (ms > cfg.drain_timeout_ms) break;
        nanosleep(&nap, NULL);
    }
    /* workers finish what is queued, so every suspended connection is resumed before the
     * daemon stops */
    sn_batcher_stop(b);
    sn_http_stop(h);
    sn_models_free(models, cfg.nmodels);
    sn_labels_free(&labels);
    if (left) {
        fprintf(stderr, "shufflenet-server: drain timeout with %d requests unanswered\n", left);
        return 1;
    }
    fprintf(stderr, "shufflenet-server: drained, bye\n");
    return 0;
}
