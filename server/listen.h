/* listen.h - the listening socket: the configured address parsed into a socket address, and
 * libmicrohttpd started on it with the server's connection limits and thread pool. */
#ifndef SN_LISTEN_H
#define SN_LISTEN_H

#include <microhttpd.h>
#include <stddef.h>

#include "server/config.h"

typedef struct {
    MHD_AccessHandlerCallback on_request;
    MHD_RequestCompletedCallback on_completed;
    MHD_NotifyConnectionCallback on_connection;
    void *cls; /* passed to all three */
} sn_listen_callbacks;

/* Start the daemon on cfg->listen (numeric IPv4, [IPv6] or localhost), epoll, internal
 * thread pool of cfg->http_threads, suspend/resume allowed, idle timeout, total and per-address
 * connection limits. NULL with err naming the key or the system error. */
struct MHD_Daemon *sn_listen_start(const sn_config *cfg, const sn_listen_callbacks *cb, char *err,
                                   size_t errlen);

#endif
