/* metrics.c - the service's Prometheus metrics: per-model request counters and histograms,
 * rejection counters, gauges, build info, and the process_* metrics read from /proc. */
#include "server/metrics.h"

#include "server/budget.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef SN_VERSION
#define SN_VERSION "0.1.0"
#endif

const int sn_metric_codes[SN_NCODES] = {200, 400, 404, 405, 413, 415, 499, 500, 501, 503, 504, 0};

static const char *const reject_names[SN_REJ_COUNT] = {
    "overloaded",        "timeout",         "disconnected",  "draining",
    "payload_too_large", "image_too_large", "invalid_image", "unsupported_media_type",
    "bad_request",       "header_timeout",  "memory"};

static const double le_seconds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double le_batch[] = {1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32, 64, 128, 256};

static struct {
    int n;
    sn_model_metrics *models; /* [n + 1], the last is "none" */
    _Atomic uint64_t rejected[SN_REJ_COUNT];
    _Atomic int64_t inflight;
    char isa[32];
    double start_time;
} g;

static void hist_init(sn_hist *h, const double *le, int nb, double scale) {
    h->nb = nb;
    h->le = le;
    h->scale = scale;
}

void sn_metrics_init(int nmodels, const char *const *names, const char *isa) {
    g.n = nmodels;
    g.models = calloc((size_t)nmodels + 1, sizeof *g.models);
    if (!g.models) abort();
    for (int i = 0; i <= nmodels; i++) {
        sn_model_metrics *m = &g.models[i];
        snprintf(m->name, sizeof m->name, "%s", i < nmodels ? names[i] : "none");
        int ns = (int)(sizeof le_seconds / sizeof le_seconds[0]);
        hist_init(&m->request_seconds, le_seconds, ns, 1e9);
        hist_init(&m->queue_wait_seconds, le_seconds, ns, 1e9);
        hist_init(&m->decode_seconds, le_seconds, ns, 1e9);
        hist_init(&m->inference_seconds, le_seconds, ns, 1e9);
        hist_init(&m->batch_size, le_batch, (int)(sizeof le_batch / sizeof le_batch[0]), 1);
    }
    snprintf(g.isa, sizeof g.isa, "%s", isa);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    g.start_time = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

sn_model_metrics *sn_metrics_model(int i) {
    return &g.models[i < 0 || i >= g.n ? g.n : i];
}

void sn_hist_observe(sn_hist *h, double v) {
    int b = 0;
    while (b < h->nb && v > h->le[b]) b++;
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    if (v > 0)
        atomic_fetch_add_explicit(&h->sum, (uint64_t)llround(v * h->scale), memory_order_relaxed);
}

void sn_metrics_request(sn_model_metrics *m, sn_endpoint ep, int code, double seconds) {
    int c = SN_NCODES - 1; /* 0 = any other code */
    for (int i = 0; i < SN_NCODES - 1; i++)
        if (sn_metric_codes[i] == code) c = i;
    atomic_fetch_add_explicit(&m->requests[ep][c], 1, memory_order_relaxed);
    sn_hist_observe(&m->request_seconds, seconds);
}

void sn_metrics_reject(sn_reject_reason r) {
    atomic_fetch_add_explicit(&g.rejected[r], 1, memory_order_relaxed);
}

void sn_metrics_inflight(int delta) {
    atomic_fetch_add_explicit(&g.inflight, delta, memory_order_relaxed);
}

/* ---- rendering ---------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)n;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

static void render_hist(buf *b, const char *name, const char *help, int which) {
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < g.n; i++) {
        sn_model_metrics *m = &g.models[i];
        sn_hist *h = which == 0   ? &m->request_seconds
                     : which == 1 ? &m->queue_wait_seconds
                     : which == 2 ? &m->decode_seconds
                     : which == 3 ? &m->inference_seconds
                                  : &m->batch_size;
        uint64_t cum = 0;
        for (int k = 0; k <= h->nb; k++) {
            cum += atomic_load_explicit(&h->bucket[k], memory_order_relaxed);
            if (k < h->nb)
                put(b, "%s_bucket{model=\"%s\",le=\"%g\"} %llu\n", name, m->name, h->le[k],
                    (unsigned long long)cum);
            else
                put(b, "%s_bucket{model=\"%s\",le=\"+Inf\"} %llu\n", name, m->name,
                    (unsigned long long)cum);
        }
        double sum = (double)atomic_load_explicit(&h->sum, memory_order_relaxed) / h->scale;
        put(b, "%s_sum{model=\"%s\"} %.9g\n%s_count{model=\"%s\"} %llu\n", name, m->name, sum, name,
            m->name, (unsigned long long)cum);
    }
}

static void render_process(buf *b) {
    long page = sysconf(_SC_PAGESIZE), tck = sysconf(_SC_CLK_TCK);
    unsigned long long vsize = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &vsize, &rss) != 2) vsize = rss = 0;
        fclose(f);
    }
    double cpu = 0;
    f = fopen("/proc/self/stat", "r");
    if (f) {
        char line[2048];
        if (fgets(line, sizeof line, f)) {
            char *p = strrchr(line, ')'); /* comm may hold spaces */
            unsigned long long ut, st;
            if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) == 2)
                cpu = (double)(ut + st) / (double)tck;
        }
        fclose(f);
    }
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) fds += e->d_name[0] != '.';
        closedir(d);
        fds--; /* the directory's own fd */
    }
    struct rlimit rl;
    double maxfds = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0;
    put(b,
        "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n",
        cpu);
    put(b,
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n",
        rss * (unsigned long long)page);
    put(b,
        "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
        "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n",
        vsize * (unsigned long long)page);
    put(b,
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\nprocess_open_fds %d\n",
        fds);
    put(b,
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\nprocess_max_fds %.0f\n",
        maxfds);
    put(b,
        "# HELP process_start_time_seconds Start time of the process since unix epoch in "
        "seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
        g.start_time);
}

char *sn_metrics_render(size_t *len) {
    buf b = {malloc(16384), 0, 16384, 0};
    if (!b.p) return NULL;
    put(&b, "# HELP shufflenet_requests_total Classification requests answered, by model, endpoint "
            "(classify or v2) and HTTP status.\n# TYPE shufflenet_requests_total counter\n");
    static const char *const ep_names[SN_EP_COUNT] = {"classify", "v2"};
    for (int i = 0; i <= g.n; i++)
        for (int e = 0; e < SN_EP_COUNT; e++)
            for (int c = 0; c < SN_NCODES; c++) {
                uint64_t v =
                    atomic_load_explicit(&g.models[i].requests[e][c], memory_order_relaxed);
                if (v == 0 && !(i < g.n && sn_metric_codes[c] == 200)) continue;
                put(&b,
                    "shufflenet_requests_total{model=\"%s\",endpoint=\"%s\",code=\"%d\"} %llu\n",
                    g.models[i].name, ep_names[e], sn_metric_codes[c], (unsigned long long)v);
            }
    render_hist(&b, "shufflenet_request_duration_seconds",
                "Time from request start to the reply, in seconds.", 0);
    render_hist(&b, "shufflenet_queue_wait_seconds",
                "Time an image waited in its model's queue, in seconds.", 1);
    render_hist(&b, "shufflenet_decode_seconds",
                "Time to decode and preprocess one image, in seconds.", 2);
    render_hist(&b, "shufflenet_inference_seconds", "Time of one batched forward pass, in seconds.",
                3);
    render_hist(&b, "shufflenet_batch_size", "Images per batched forward pass.", 4);
    put(&b, "# HELP shufflenet_queue_depth Images waiting in the model's queue.\n"
            "# TYPE shufflenet_queue_depth gauge\n");
    for (int i = 0; i < g.n; i++)
        put(&b, "shufflenet_queue_depth{model=\"%s\"} %lld\n", g.models[i].name,
            (long long)atomic_load_explicit(&g.models[i].queue_depth, memory_order_relaxed));
    put(&b,
        "# HELP shufflenet_inflight_requests Requests being received, queued or run.\n"
        "# TYPE shufflenet_inflight_requests gauge\nshufflenet_inflight_requests %lld\n",
        (long long)atomic_load_explicit(&g.inflight, memory_order_relaxed));
    put(&b, "# HELP shufflenet_images_total Images classified.\n"
            "# TYPE shufflenet_images_total counter\n");
    for (int i = 0; i < g.n; i++)
        put(&b, "shufflenet_images_total{model=\"%s\"} %llu\n", g.models[i].name,
            (unsigned long long)atomic_load_explicit(&g.models[i].images, memory_order_relaxed));
    put(&b, "# HELP shufflenet_rejected_total Requests refused, by reason.\n"
            "# TYPE shufflenet_rejected_total counter\n");
    for (int r = 0; r < SN_REJ_COUNT; r++)
        put(&b, "shufflenet_rejected_total{reason=\"%s\"} %llu\n", reject_names[r],
            (unsigned long long)atomic_load_explicit(&g.rejected[r], memory_order_relaxed));
    put(&b,
        "# HELP shufflenet_memory_budget_used_bytes Bytes held against the memory budget "
        "(request bodies in flight, decoder buffers).\n"
        "# TYPE shufflenet_memory_budget_used_bytes gauge\n"
        "shufflenet_memory_budget_used_bytes %lld\n"
        "# HELP shufflenet_memory_budget_bytes The memory budget (config memory_budget).\n"
        "# TYPE shufflenet_memory_budget_bytes gauge\nshufflenet_memory_budget_bytes %lld\n",
        sn_budget_used(), sn_budget_limit());
    put(&b,
        "# HELP shufflenet_build_info Build information.\n"
        "# TYPE shufflenet_build_info gauge\nshufflenet_build_info{version=\"%s\",isa=\"%s\"} "
        "1\n",
        SN_VERSION, g.isa);
    render_process(&b);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
