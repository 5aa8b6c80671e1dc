/* http.h - the HTTP face of the service (libmicrohttpd): routes, body limits, multipart and
 * raw uploads, JSON replies and errors, the access log. */
#ifndef SN_HTTP_H
#define SN_HTTP_H

#include <stdatomic.h>

#include "server/batcher.h"
#include "server/config.h"
#include "common/labels.h"
#include "server/models.h"

typedef struct sn_http sn_http;

typedef struct {
    const sn_config *cfg;
    sn_served *models;
    int nmodels;
    int default_model; /* index, -1 when there are none */
    const sn_labels *labels;
    sn_batcher *batcher;
} sn_http_opts;

/* Start listening; returns NULL with err filled on failure. */
sn_http *sn_http_start(const sn_http_opts *o, char *err, size_t errlen);
/* Stop being ready (SIGTERM's shutdown delay): /readyz answers 503 and every reply says
 * Connection: close, while requests are still accepted and served. */
void sn_http_unready(sn_http *h);
/* Begin draining: /readyz answers 503, new connections are refused, new requests on open
 * connections get 503. */
void sn_http_drain(sn_http *h);
/* Requests received and not yet answered. */
int sn_http_inflight(sn_http *h);
void sn_http_stop(sn_http *h);

#endif
