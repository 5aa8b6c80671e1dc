/* loadgen_run.c - the load generator's connection engine: one thread, non-blocking sockets and
 * ppoll, HTTP/1.1 keep-alive.
 *
 * Open loop: arrivals are scheduled at fixed (or exponential) intervals from the start, each
 * with its intended send time. An arrival takes an idle connection, or opens a new one up to
 * the cap, or waits in a queue; its latency always counts from the intended time, so a server
 * stall shows up in full (no coordinated omission). Closed loop: N connections each send the
 * next request as soon as the previous response is in; latency counts from that moment.
 * Every request ends as a response, a timeout or an error; nothing waits forever. */
#include "bench/loadgen.h"
#include "bench/loadgen_http.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const sn_lg_err_names[SN_LG_ERR_N] = {"connect", "timeout", "io", "protocol"};

#define NS                 1000000000ull
#define CONNECT_BACKOFF_NS (10 * 1000000ull)
#define PROGRESS_NS        (500 * 1000000ull)
#define QUEUE_MAX          (1u << 22)

enum { C_CLOSED, C_CONNECTING, C_WRITING, C_READING, C_IDLE };

typedef struct {
    int fd;
    int state;
    int busy;      /* carries a request */
    int reused;    /* this socket already carried a complete response */
    int retried;   /* the current request was already resent once */
    int got_bytes; /* response bytes seen for the current request */
    const sn_lg_request *req;
    size_t off;
    uint64_t intended, deadline, backoff_until;
    sn_http_resp resp;
} conn;

typedef struct {
    const sn_lg_config *cfg;
    sn_lg_result *res;
    conn *c;
    int nc;
    int inflight;
    size_t rr;
    uint64_t *q; /* open loop: intended times of arrivals waiting for a connection */
    size_t qcap, qhead, qlen;
    uint64_t rng;
} loadgen;

static volatile sig_atomic_t stop_requested;

void sn_lg_request_stop(void) {
    stop_requested = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t next_gap(loadgen *lg) {
    double mean = 1e9 / lg->cfg->rate;
    if (!lg->cfg->poisson) return (uint64_t)mean;
    double u = ((double)(splitmix64(&lg->rng) >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    return (uint64_t)(-log(u) * mean);
}

static void conn_close(conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->state = C_CLOSED;
    c->reused = 0;
}

static void req_end(loadgen *lg, conn *c, int err, uint64_t now) {
    if (err >= 0) lg->res->errors[err]++;
    c->busy = 0;
    lg->inflight--;
    if (err == SN_LG_ERR_CONNECT) c->backoff_until = now + CONNECT_BACKOFF_NS;
}

static void req_fail(loadgen *lg, conn *c, int err, uint64_t now) {
    conn_close(c);
    req_end(lg, c, err, now);
}

static void conn_write(loadgen *lg, conn *c, uint64_t now);

static void conn_start(loadgen *lg, conn *c, uint64_t now) {
    const sn_lg_config *cfg = lg->cfg;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        req_end(lg, c, SN_LG_ERR_CONNECT, now);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->reused = 0;
    lg->res->conns_opened++;
    if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) == 0) {
        c->state = C_WRITING;
        conn_write(lg, c, now);
    } else if (errno == EINPROGRESS) {
        c->state = C_CONNECTING;
    } else {
        req_fail(lg, c, SN_LG_ERR_CONNECT, now);
    }
}

/* A reused keep-alive socket that the server closed before answering: resend once on a new
 * socket, keeping the intended time. */
static int try_retry(loadgen *lg, conn *c, uint64_t now) {
    if (!c->reused || c->retried || c->got_bytes) return 0;
    conn_close(c);
    c->retried = 1;
    c->off = 0;
    conn_start(lg, c, now);
    return 1;
}

static void conn_assign(loadgen *lg, conn *c, uint64_t intended, uint64_t now) {
    c->req = &lg->cfg->requests[lg->rr++ % lg->cfg->nrequests];
    c->off = 0;
    c->intended = intended;
    c->deadline = intended + (uint64_t)(lg->cfg->timeout_s * 1e9);
    c->busy = 1;
    c->retried = 0;
    c->got_bytes = 0;
    lg->inflight++;
    if (lg->inflight > lg->res->max_concurrent) lg->res->max_concurrent = lg->inflight;
    if (c->fd < 0) {
        conn_start(lg, c, now);
    } else {
        c->state = C_WRITING;
        conn_write(lg, c, now);
    }
}

static void req_complete(loadgen *lg, conn *c, uint64_t now, int leftover) {
    sn_lg_result *res = lg->res;
    int st = c->resp.status;
    sn_hist_record(&res->hist, now > c->intended ? now - c->intended : 0);
    res->completed++;
    if (st >= 200 && st < 300) res->ok++;
    res->status[st < 600 ? st : 599]++;
    int keep = c->resp.keep_alive && c->state == C_READING && !leftover;
    req_end(lg, c, -1, now);
    if (keep) {
        c->state = C_IDLE;
        c->reused = 1;
    } else {
        conn_close(c);
    }
}

static void conn_write(loadgen *lg, conn *c, uint64_t now) {
    while (c->off < c->req->len) {
        ssize_t n = send(c->fd, c->req->data + c->off, c->req->len - c->off, MSG_NOSIGNAL);
        if (n > 0) {
            c->off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (!try_retry(lg, c, now)) req_fail(lg, c, SN_LG_ERR_IO, now);
        return;
    }
    c->state = C_READING;
    sn_http_resp_init(&c->resp);
}

static void conn_read(loadgen *lg, conn *c, uint64_t now) {
    static char buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (c->state == C_IDLE) { /* server closed an idle connection, or sent junk */
            conn_close(c);
            return;
        }
        if (c->state == C_WRITING && n > 0) { /* early answer (e.g. 413) while still sending */
            c->state = C_READING;
            sn_http_resp_init(&c->resp);
            c->off = c->req->len; /* the rest of the body will never be sent */
            c->resp.keep_alive = 0;
        }
        if (n <= 0) {
            if (c->state == C_READING) sn_http_resp_eof(&c->resp);
            if (c->state == C_READING && c->resp.state == SN_RESP_DONE) {
                c->resp.keep_alive = 0;
                req_complete(lg, c, now, 1);
            } else if (!try_retry(lg, c, now)) {
                req_fail(lg, c, c->got_bytes ? SN_LG_ERR_PROTOCOL : SN_LG_ERR_IO, now);
            }
            return;
        }
        c->got_bytes = 1;
        size_t used = sn_http_resp_feed(&c->resp, buf, (size_t)n);
        if (c->resp.state == SN_RESP_ERROR) {
            req_fail(lg, c, SN_LG_ERR_PROTOCOL, now);
            return;
        }
        if (c->resp.state == SN_RESP_DONE) {
            req_complete(lg, c, now, used < (size_t)n);
            return;
        }
    }
}

static void conn_connected(loadgen *lg, conn *c, uint64_t now) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
        req_fail(lg, c, SN_LG_ERR_CONNECT, now);
        return;
    }
    c->state = C_WRITING;
    conn_write(lg, c, now);
}

/* Open loop: an idle connection first, else a closed slot (opening stays under the cap). */
static conn *free_conn(loadgen *lg, uint64_t now) {
    conn *closed = NULL;
    for (int i = 0; i < lg->nc; i++) {
        conn *c = &lg->c[i];
        if (c->busy) continue;
        if (c->state == C_IDLE) return c;
        if (!closed && c->state == C_CLOSED && now >= c->backoff_until) closed = c;
    }
    return closed;
}

static void progress(const loadgen *lg, uint64_t start, uint64_t now, int final) {
    const sn_lg_result *r = lg->res;
    double t = (double)(now - start) / 1e9;
    if (final) {
        fprintf(stderr, "\r\033[K");
        return;
    }
    uint64_t errs = 0;
    for (int i = 0; i < SN_LG_ERR_N; i++) errs += r->errors[i];
    fprintf(stderr,
            "\r\033[K%6.1fs  sent %llu  done %llu  %.0f req/s  p50 %.2f ms  p99 %.2f ms  "
            "in flight %d  queued %zu  errors %llu",
            t, (unsigned long long)r->sent, (unsigned long long)r->completed,
            t > 0 ? (double)r->completed / t : 0.0, sn_hist_quantile(&r->hist, 0.5) / 1e6,
            sn_hist_quantile(&r->hist, 0.99) / 1e6, lg->inflight, lg->qlen,
            (unsigned long long)(errs + r->completed - r->ok));
}

static int queue_push(loadgen *lg, uint64_t t) {
    if (lg->qlen == lg->qcap) {
        if (lg->qcap >= QUEUE_MAX) return -1;
        size_t ncap = lg->qcap ? lg->qcap * 2 : 1024;
        uint64_t *nq = malloc(ncap * sizeof *nq);
        if (!nq) return -1;
        for (size_t i = 0; i < lg->qlen; i++) nq[i] = lg->q[(lg->qhead + i) % lg->qcap];
        free(lg->q);
        lg->q = nq;
        lg->qcap = ncap;
        lg->qhead = 0;
    }
    lg->q[(lg->qhead + lg->qlen) % lg->qcap] = t;
    lg->qlen++;
    if (lg->qlen > lg->res->max_queued) lg->res->max_queued = lg->qlen;
    return 0;
}

static uint64_t queue_pop(loadgen *lg) {
    uint64_t t = lg->q[lg->qhead];
    lg->qhead = (lg->qhead + 1) % lg->qcap;
    lg->qlen--;
    return t;
}

int sn_lg_run(const sn_lg_config *cfg, sn_lg_result *res) {
    memset(res, 0, offsetof(sn_lg_result, hist));
    sn_hist_init(&res->hist);
    loadgen lg = {.cfg = cfg, .res = res, .nc = cfg->connections, .rng = cfg->seed};
    lg.c = calloc((size_t)lg.nc, sizeof *lg.c);
    struct pollfd *pfd = calloc((size_t)lg.nc, sizeof *pfd);
    int *pidx = calloc((size_t)lg.nc, sizeof *pidx);
    if (!lg.c || !pfd || !pidx) {
        fprintf(stderr, "shufflenet-loadgen: out of memory for %d connections\n", lg.nc);
        free(lg.c), free(pfd), free(pidx);
        return -1;
    }
    for (int i = 0; i < lg.nc; i++) lg.c[i].fd = -1, lg.c[i].state = C_CLOSED;

    const int open_loop = cfg->rate > 0;
    const uint64_t timeout_ns = (uint64_t)(cfg->timeout_s * 1e9);
    const uint64_t start = now_ns();
    const uint64_t issue_end =
        cfg->duration_s > 0 ? start + (uint64_t)(cfg->duration_s * 1e9) : UINT64_MAX;
    uint64_t next_arrival = start, next_progress = start + PROGRESS_NS, now = start;
    int issuing = 1;
    stop_requested = 0;

    for (;;) {
        now = now_ns();
        if (stop_requested || now >= issue_end || (cfg->max_reqs && res->sent >= cfg->max_reqs))
            issuing = 0;

        if (open_loop) {
            while (issuing && next_arrival <= now) {
                if (next_arrival >= issue_end) {
                    issuing = 0;
                    break;
                }
                if (queue_push(&lg, next_arrival) < 0) res->errors[SN_LG_ERR_TIMEOUT]++;
                res->sent++;
                next_arrival += next_gap(&lg);
                if (cfg->max_reqs && res->sent >= cfg->max_reqs) issuing = 0;
            }
            while (lg.qlen) {
                if (now - lg.q[lg.qhead] >= timeout_ns) { /* waited its whole budget */
                    queue_pop(&lg);
                    res->errors[SN_LG_ERR_TIMEOUT]++;
                    continue;
                }
                conn *c = free_conn(&lg, now);
                if (!c) break;
                conn_assign(&lg, c, queue_pop(&lg), now);
            }
        } else {
            for (int i = 0; i < lg.nc && issuing; i++) {
                conn *c = &lg.c[i];
                if (c->busy || now < c->backoff_until) continue;
                res->sent++;
                conn_assign(&lg, c, now, now);
                if (cfg->max_reqs && res->sent >= cfg->max_reqs) issuing = 0;
            }
        }

        uint64_t wake = issuing ? (open_loop ? next_arrival : issue_end) : UINT64_MAX;
        if (issuing && open_loop && issue_end < wake) wake = issue_end;
        if (lg.qlen && lg.q[lg.qhead] + timeout_ns < wake) wake = lg.q[lg.qhead] + timeout_ns;
        int np = 0;
        for (int i = 0; i < lg.nc; i++) {
            conn *c = &lg.c[i];
            if (c->busy && now >= c->deadline) req_fail(&lg, c, SN_LG_ERR_TIMEOUT, now);
            if (c->busy && c->deadline < wake) wake = c->deadline;
            if (!c->busy && c->backoff_until > now && c->backoff_until < wake &&
                (issuing || lg.qlen))
                wake = c->backoff_until;
            if (c->fd < 0) continue;
            short ev = POLLIN;
            if (c->state == C_CONNECTING)
                ev = POLLOUT;
            else if (c->state == C_WRITING)
                ev = POLLIN | POLLOUT;
            pfd[np] = (struct pollfd){.fd = c->fd, .events = ev};
            pidx[np++] = i;
        }
        if (!issuing && lg.qlen == 0 && lg.inflight == 0) break;

        if (cfg->progress && now >= next_progress) {
            progress(&lg, start, now, 0);
            next_progress = now + PROGRESS_NS;
        }
        if (cfg->progress && next_progress < wake) wake = next_progress;

        uint64_t wait = wake > now ? wake - now : 0;
        if (wait > NS) wait = NS;
        struct timespec ts = {.tv_sec = (time_t)(wait / NS), .tv_nsec = (long)(wait % NS)};
        int n = ppoll(pfd, (nfds_t)np, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            perror("shufflenet-loadgen: ppoll");
            break;
        }
        if (n <= 0) continue;
        now = now_ns();
        for (int k = 0; k < np; k++) {
            if (!pfd[k].revents) continue;
            conn *c = &lg.c[pidx[k]];
            if (c->fd != pfd[k].fd) continue;
            short re = pfd[k].revents;
            if (c->state == C_CONNECTING) {
                conn_connected(&lg, c, now);
            } else if (c->state == C_WRITING) {
                if (re & POLLIN)
                    conn_read(&lg, c, now);
                else
                    conn_write(&lg, c, now);
            } else {
                conn_read(&lg, c, now);
            }
        }
    }
    if (cfg->progress) progress(&lg, start, now, 1);
    res->elapsed_s = (double)(now - start) / 1e9;
    for (int i = 0; i < lg.nc; i++) conn_close(&lg.c[i]);
    free(lg.c), free(pfd), free(pidx), free(lg.q);
    return 0;
}
