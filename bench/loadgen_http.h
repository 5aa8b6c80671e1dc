/* loadgen_http.h - the load generator's HTTP/1.1 pieces: URL parsing, the loopback check,
 * request building (raw or multipart image bodies) and an incremental response parser. */
#ifndef SN_LOADGEN_HTTP_H
#define SN_LOADGEN_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char host[256]; /* without brackets for IPv6 literals */
    char port[8];
    char path[1024]; /* "" when the URL has no path or just "/" */
    int host_is_v6;
} sn_url;

/* Parses "http://host[:port][/path]". Returns 0, or -1 with a message in err. */
int sn_url_parse(const char *url, sn_url *u, char *err, size_t errlen);

/* 1 when host is "localhost", an IPv4 literal in 127.0.0.0/8, "::1" or an IPv4-mapped
 * loopback; 0 for anything else (names other than localhost are not resolved). */
int sn_host_is_loopback_literal(const char *host);

/* "image/jpeg", "image/png" or "application/octet-stream" from the first bytes. */
const char *sn_content_type_sniff(const unsigned char *data, size_t len);

/* Builds one complete request (head + body) into a malloc'd buffer. multipart wraps the
 * file in a multipart/form-data body with one part named "image". Returns NULL on OOM. */
char *sn_request_build(const char *host_header, const char *path, const char *filename,
                       const unsigned char *data, size_t len, int multipart, size_t *out_len);

enum {
    SN_RESP_STATUS,
    SN_RESP_HEADER,
    SN_RESP_BODY_LEN,
    SN_RESP_CHUNK_SIZE,
    SN_RESP_CHUNK_DATA,
    SN_RESP_CHUNK_CRLF,
    SN_RESP_TRAILER,
    SN_RESP_BODY_EOF,
    SN_RESP_DONE,
    SN_RESP_ERROR
};

#define SN_RESP_LINE_MAX 8192

typedef struct {
    int state;
    int status;
    int keep_alive; /* 0 when the server will close the connection after this response */
    int chunked;
    int64_t content_length; /* -1 when absent */
    uint64_t remaining;
    uint64_t header_bytes;
    uint64_t body_bytes;
    const char *error;
    size_t line_len;
    char line[SN_RESP_LINE_MAX];
} sn_http_resp;

/* For a response to a request that is not HEAD. */
void sn_http_resp_init(sn_http_resp *r);
/* Feeds bytes; returns how many were consumed. Stops consuming once the response is complete
 * (state SN_RESP_DONE) or broken (SN_RESP_ERROR, reason in r->error). */
size_t sn_http_resp_feed(sn_http_resp *r, const char *buf, size_t len);
/* The peer closed the connection: completes a read-until-close body, else an error. */
void sn_http_resp_eof(sn_http_resp *r);

#endif
