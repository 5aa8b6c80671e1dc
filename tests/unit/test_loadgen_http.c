/* test_loadgen_http.c - the load generator's HTTP pieces: response parser (whole and byte by
 * byte, chunked, 1xx, read-until-close, malformed input), URL parsing, the loopback check,
 * content-type sniffing and request building. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen_http.h"

/* Feeds s in pieces of `step` bytes (0 = all at once); returns bytes consumed in total. */
static size_t feed(sn_http_resp *r, const char *s, size_t step) {
    size_t len = strlen(s), off = 0;
    sn_http_resp_init(r);
    while (off < len) {
        size_t n = step && len - off > step ? step : len - off;
        size_t used = sn_http_resp_feed(r, s + off, n);
        off += used;
        if (used < n) break;
    }
    return off;
}

static sn_http_resp *resp(void) {
    sn_http_resp *r = malloc(sizeof *r);
    cr_assert(r);
    return r;
}

Test(loadgen_http, content_length_whole_and_bytewise) {
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 11\r\n"
                    "\r\n{\"ok\":true}";
    sn_http_resp *r = resp();
    for (size_t step = 0; step <= 3; step++) {
        cr_assert_eq(feed(r, s, step), strlen(s));
        cr_assert_eq(r->state, SN_RESP_DONE, "step %zu", step);
        cr_assert_eq(r->status, 200);
        cr_assert_eq(r->body_bytes, 11);
        cr_assert_eq(r->keep_alive, 1);
    }
    free(r);
}

Test(loadgen_http, stops_at_the_end_of_one_response) {
    const char *one = "HTTP/1.1 503 Busy\r\nContent-Length: 2\r\nRetry-After: 1\r\n\r\nno";
    char two[256];
    snprintf(two, sizeof two, "%s%s", one, one);
    sn_http_resp *r = resp();
    cr_assert_eq(feed(r, two, 0), strlen(one));
    cr_assert_eq(r->state, SN_RESP_DONE);
    cr_assert_eq(r->status, 503);
    free(r);
}

Test(loadgen_http, chunked_with_extensions_and_trailers) {
    const char *s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                    "5;name=val\r\nhello\r\nA \r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
    sn_http_resp *r = resp();
    for (size_t step = 0; step <= 2; step++) {
        cr_assert_eq(feed(r, s, step), strlen(s));
        cr_assert_eq(r->state, SN_RESP_DONE, "step %zu", step);
        cr_assert_eq(r->body_bytes, 15);
    }
    free(r);
}

Test(loadgen_http, keep_alive_rules) {
    sn_http_resp *r = resp();
    feed(r, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert_eq(r->state, SN_RESP_DONE);
    cr_assert_eq(r->keep_alive, 0);
    feed(r, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert_eq(r->keep_alive, 0);
    feed(r, "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", 0);
    cr_assert_eq(r->keep_alive, 1);
    free(r);
}

Test(loadgen_http, body_until_close_interim_and_no_body) {
    sn_http_resp *r = resp();
    feed(r, "HTTP/1.1 200 OK\r\n\r\nsome body", 0);
    cr_assert_eq(r->state, SN_RESP_BODY_EOF);
    cr_assert_eq(r->keep_alive, 0);
    sn_http_resp_eof(r);
    cr_assert_eq(r->state, SN_RESP_DONE);
    cr_assert_eq(r->body_bytes, 9);

    feed(r, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 1);
    cr_assert_eq(r->state, SN_RESP_DONE);
    cr_assert_eq(r->status, 201);

    feed(r, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0);
    cr_assert_eq(r->state, SN_RESP_DONE);
    free(r);
}

static void expect_error(const char *s, const char *why) {
    sn_http_resp *r = resp();
    feed(r, s, 0);
    if (r->state != SN_RESP_ERROR) sn_http_resp_eof(r);
    cr_assert_eq(r->state, SN_RESP_ERROR, "accepted: %s", s);
    cr_assert(r->error && strstr(r->error, why), "error '%s' lacks '%s'",
              r->error ? r->error : "(none)", why);
    free(r);
}

Test(loadgen_http, malformed_responses_are_errors) {
    expect_error("HTTP/2 200 OK\r\n\r\n", "status line");
    expect_error("HTTP/1.1 2x0 OK\r\n\r\n", "status line");
    expect_error("garbage\r\n\r\n", "status line");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", "Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                 "conflicting");
    expect_error("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
                 "chunk size");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "CRLF");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed before");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "closed before");

    char *big = malloc(SN_RESP_LINE_MAX + 64);
    cr_assert(big);
    strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
    memset(big + strlen(big), 'a', SN_RESP_LINE_MAX);
    strcpy(big + strlen("HTTP/1.1 200 OK\r\nX: ") + SN_RESP_LINE_MAX, "\r\n\r\n");
    expect_error(big, "too long");
    free(big);
}

Test(loadgen_http, url_parsing) {
    sn_url u;
    char err[256];
    cr_assert_eq(sn_url_parse("http://127.0.0.1:8080", &u, err, sizeof err), 0);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_str_eq(u.port, "8080");
    cr_assert_str_eq(u.path, "");
    cr_assert_eq(sn_url_parse("http://localhost/", &u, err, sizeof err), 0);
    cr_assert_str_eq(u.port, "80");
    cr_assert_str_eq(u.path, "");
    cr_assert_eq(sn_url_parse("http://[::1]:9/v1/models/g3/classify?top_k=1", &u, err, sizeof err),
                 0);
    cr_assert_str_eq(u.host, "::1");
    cr_assert(u.host_is_v6);
    cr_assert_str_eq(u.path, "/v1/models/g3/classify?top_k=1");

    const char *bad[] = {"https://127.0.0.1/", "ftp://x/",        "http://",      "http://:80/",
                         "http://h:0/",        "http://h:65536/", "http://h:8x/", "http://[::1/",
                         "http://h/a b",       "127.0.0.1:8080"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(sn_url_parse(bad[i], &u, err, sizeof err), -1, "accepted %s", bad[i]);
        cr_assert_neq(err[0], '\0', "no message for %s", bad[i]);
    }
}

Test(loadgen_http, loopback_literals_only) {
    const char *yes[] = {"localhost",   "LocalHost", "127.0.0.1",
                         "127.255.3.4", "::1",       "::ffff:127.0.0.1"};
    const char *no[] = {"192.0.2.1", "128.0.0.1", "10.0.0.1",    "0.0.0.0",    "::",
                        "::2",       "fe80::1",   "example.com", "localhost.", "127.0.0.1.nip.io"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        cr_assert(sn_host_is_loopback_literal(yes[i]), "%s", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_assert_not(sn_host_is_loopback_literal(no[i]), "%s", no[i]);
}

Test(loadgen_http, content_type_and_requests) {
    const unsigned char jpg[] = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3};
    const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0};
    cr_assert_str_eq(sn_content_type_sniff(jpg, sizeof jpg), "image/jpeg");
    cr_assert_str_eq(sn_content_type_sniff(png, sizeof png), "image/png");
    cr_assert_str_eq(sn_content_type_sniff(jpg, 2), "application/octet-stream");

    size_t len;
    char *req =
        sn_request_build("127.0.0.1:8080", "/classify", "dir/cat.jpg", jpg, sizeof jpg, 0, &len);
    cr_assert(req);
    char *end = memmem(req, len, "\r\n\r\n", 4);
    cr_assert(end);
    cr_assert(strstr(req, "POST /classify HTTP/1.1\r\n") == req);
    cr_assert(memmem(req, len, "Content-Type: image/jpeg\r\n", 26));
    cr_assert(memmem(req, len, "Content-Length: 7\r\n", 19));
    cr_assert_eq((size_t)(req + len - (end + 4)), sizeof jpg);
    free(req);

    req = sn_request_build("h", "/v1/models/m/classify", "we\"ird.png", png, sizeof png, 1, &len);
    cr_assert(req);
    end = memmem(req, len, "\r\n\r\n", 4);
    size_t body = (size_t)(req + len - (end + 4));
    char cl[64];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", body);
    cr_assert(memmem(req, len, cl, strlen(cl)), "Content-Length does not match the body");
    cr_assert(memmem(req, len, "multipart/form-data; boundary=", 30));
    cr_assert(memmem(req, len, "name=\"image\"; filename=\"we_ird.png\"", 35));
    cr_assert(memmem(req, len, "Content-Type: image/png", 23));
    cr_assert(len > 4 && memcmp(req + len - 4, "--\r\n", 4) == 0);
    free(req);
}
