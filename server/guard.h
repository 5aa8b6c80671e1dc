/* guard.h - connection guarding against slow and vanished clients: the header deadline
 * (slowloris) and the watch over unfinished uploads. The connection limits themselves (total,
 * per address) and the idle timeout are libmicrohttpd options set in listen.c. One thread
 * sweeps both lists every 200 ms. */
#ifndef SN_GUARD_H
#define SN_GUARD_H

#include <stddef.h>
#include <stdint.h>

typedef struct sn_guard sn_guard;

sn_guard *sn_guard_start(int header_timeout_s, char *err, size_t errlen);
/* Stops the thread. The lists may still hold entries; their owners remove them. */
void sn_guard_stop(sn_guard *g);
void sn_guard_free(sn_guard *g);

/* Header deadline. A new connection is listed with its accept time until its first request's
 * headers are in; past header_timeout_s the guard shuts its socket down (libmicrohttpd then
 * sees the error and closes it) and counts rejected{reason="header_timeout"}. Returns the
 * entry to keep as the connection's socket context (NULL when out of memory: not guarded). */
void *sn_guard_conn_open(sn_guard *g, int fd);
/* The connection's headers are in: off the deadline list. */
void sn_guard_headers_in(sn_guard *g, void *conn);
/* The connection is closing (before its socket is released): forget it. */
void sn_guard_conn_close(sn_guard *g, void *conn);

/* Upload watch. libmicrohttpd's edge-triggered epoll can miss an EOF that arrives with the
 * last bytes of a partial upload, which would hold the connection and its buffered body until
 * the idle timeout; so the guard peeks at every unfinished upload through a dup of its socket
 * and shuts down those whose peer has gone (EOF or error on two sweeps in a row). Returns a
 * handle for sn_guard_unwatch, or NULL (not watched). */
void *sn_guard_watch(sn_guard *g, int fd);
/* The body is complete or the request is over: stop watching, close the dup. NULL is fine. */
void sn_guard_unwatch(sn_guard *g, void *watch);

#endif
