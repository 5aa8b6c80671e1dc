/* loadgen.h - the load generator's run configuration and results, shared by the command-line
 * front end (loadgen.c) and the connection engine (loadgen_run.c). */
#ifndef SN_LOADGEN_H
#define SN_LOADGEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "bench/loadgen_hist.h"

typedef struct {
    char *data; /* one complete HTTP request */
    size_t len;
} sn_lg_request;

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const sn_lg_request *requests; /* sent round-robin */
    size_t nrequests;
    double rate;       /* open loop: arrivals per second; 0 = closed loop */
    int poisson;       /* open loop: exponential inter-arrival times */
    int connections;   /* closed loop: connections; open loop: cap on open connections */
    double duration_s; /* stop issuing after this long; 0 = no limit */
    uint64_t max_reqs; /* stop issuing after this many; 0 = no limit */
    double timeout_s;  /* per request, from its intended send time */
    uint64_t seed;     /* Poisson arrivals */
    int progress;      /* one-line live display on stderr */
} sn_lg_config;

enum { SN_LG_ERR_CONNECT, SN_LG_ERR_TIMEOUT, SN_LG_ERR_IO, SN_LG_ERR_PROTOCOL, SN_LG_ERR_N };

typedef struct {
    uint64_t sent;      /* requests issued (arrivals in open loop) */
    uint64_t completed; /* HTTP responses received, any status */
    uint64_t ok;        /* 2xx responses */
    uint64_t errors[SN_LG_ERR_N];
    uint64_t status[600];
    uint64_t conns_opened;
    int max_concurrent;  /* most requests in flight (on connections) at once */
    uint64_t max_queued; /* open loop: most arrivals waiting for a free connection */
    double elapsed_s;    /* start to the last completion (or the end of issuing) */
    sn_hist hist;        /* latency of every response, nanoseconds from the intended send */
} sn_lg_result;

extern const char *const sn_lg_err_names[SN_LG_ERR_N];

/* Runs the load; returns 0, or -1 on a setup failure (message printed). */
int sn_lg_run(const sn_lg_config *cfg, sn_lg_result *res);

/* Asks a running sn_lg_run to stop issuing and drain (safe from a signal handler). */
void sn_lg_request_stop(void);

#endif
