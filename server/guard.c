/* guard.c - the header deadline and the upload watch (see guard.h), one thread for both.
 * Both lists are guarded by one mutex. An entry leaves its list under that mutex before its
 * socket can be released (libmicrohttpd reports CLOSED before it closes the socket; an upload
 * watch holds its own dup), so the thread never touches a descriptor that was reused. */
#include "server/guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/clock.h"
#include "server/metrics.h"

typedef struct entry {
    struct entry *prev, *next;
    int fd, listed;
    uint64_t t0;    /* header deadline: accept time */
    int eof_sweeps; /* upload watch: sweeps in a row that saw the peer gone */
} entry;

struct sn_guard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    entry *headers, *uploads;
    uint64_t header_ns;
    int stop, running;
    pthread_t th;
};

static void link_in(entry **list, entry *e) {
    e->prev = NULL;
    e->next = *list;
    if (*list) (*list)->prev = e;
    *list = e;
    e->listed = 1;
}

static void unlink_from(entry **list, entry *e) {
    if (!e->listed) return;
    if (e->prev)
        e->prev->next = e->next;
    else
        *list = e->next;
    if (e->next) e->next->prev = e->prev;
    e->listed = 0;
}

/* 1 when the peer closed its side or the socket is in error. */
static int peer_gone(int fd) {
    char ch;
    ssize_t n = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void *guard_main(void *arg) {
    sn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        uint64_t now = sn_now_ns();
        for (entry *e = g->headers, *next; e; e = next) {
            next = e->next;
            if (now - e->t0 > g->header_ns) {
                shutdown(e->fd, SHUT_RDWR);
                unlink_from(&g->headers, e);
                sn_metrics_reject(SN_REJ_HEADER_TIMEOUT);
            }
        }
        for (entry *e = g->uploads, *next; e; e = next) {
            next = e->next;
            e->eof_sweeps = peer_gone(e->fd) ? e->eof_sweeps + 1 : 0;
            if (e->eof_sweeps >= 2) {
                shutdown(e->fd, SHUT_RDWR);
                unlink_from(&g->uploads, e);
            }
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

sn_guard *sn_guard_start(int header_timeout_s, char *err, size_t errlen) {
    sn_guard *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->header_ns = (uint64_t)header_timeout_s * 1000000000ull;
    pthread_mutex_init(&g->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&g->th, NULL, guard_main, g) != 0) {
        snprintf(err, errlen, "cannot start the connection guard thread");
        sn_guard_free(g);
        return NULL;
    }
    g->running = 1;
    return g;
}

void sn_guard_stop(sn_guard *g) {
    if (!g || !g->running) return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->th, NULL);
    g->running = 0;
}

void sn_guard_free(sn_guard *g) {
    if (!g) return;
    sn_guard_stop(g);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void *sn_guard_conn_open(sn_guard *g, int fd) {
    entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->fd = fd;
    e->t0 = sn_now_ns();
    pthread_mutex_lock(&g->mu);
    link_in(&g->headers, e);
    pthread_mutex_unlock(&g->mu);
    return e;
}

void sn_guard_headers_in(sn_guard *g, void *conn) {
    if (!conn) return;
    pthread_mutex_lock(&g->mu);
    unlink_from(&g->headers, conn);
    pthread_mutex_unlock(&g->mu);
}

void sn_guard_conn_close(sn_guard *g, void *conn) {
    if (!conn) return;
    sn_guard_headers_in(g, conn);
    free(conn);
}

void *sn_guard_watch(sn_guard *g, int fd) {
    entry *e = fd >= 0 ? calloc(1, sizeof *e) : NULL;
    if (!e) return NULL;
    /* the dup keeps the socket alive for the guard whatever libmicrohttpd does with its own */
    e->fd = dup(fd);
    if (e->fd < 0) {
        free(e);
        return NULL;
    }
    pthread_mutex_lock(&g->mu);
    link_in(&g->uploads, e);
    pthread_mutex_unlock(&g->mu);
    return e;
}

void sn_guard_unwatch(sn_guard *g, void *watch) {
    entry *e = watch;
    if (!e) return;
    pthread_mutex_lock(&g->mu);
    unlink_from(&g->uploads, e);
    pthread_mutex_unlock(&g->mu);
    close(e->fd);
    free(e);
}
