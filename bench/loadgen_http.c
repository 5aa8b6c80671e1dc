/* loadgen_http.c - URL parsing, loopback check, request building and the incremental HTTP/1.1
 * response parser (Content-Length, chunked, read-until-close; 1xx skipped) of the load
 * generator. */
#include "bench/loadgen_http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADERS_MAX (64 * 1024)

int sn_url_parse(const char *url, sn_url *u, char *err, size_t errlen) {
    memset(u, 0, sizeof *u);
    if (strncasecmp(url, "https://", 8) == 0) {
        snprintf(err, errlen, "https is not supported (plain http:// only): %s", url);
        return -1;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "URL must start with http://: %s", url);
        return -1;
    }
    const char *p = url + 7, *end;
    if (*p == '[') {
        end = strchr(p, ']');
        if (!end || end == p + 1 || (size_t)(end - p - 1) >= sizeof u->host) {
            snprintf(err, errlen, "bad IPv6 host in URL: %s", url);
            return -1;
        }
        memcpy(u->host, p + 1, (size_t)(end - p - 1));
        u->host_is_v6 = 1;
        p = end + 1;
    } else {
        end = p + strcspn(p, ":/?#");
        if (end == p || (size_t)(end - p) >= sizeof u->host) {
            snprintf(err, errlen, "missing or too long host in URL: %s", url);
            return -1;
        }
        memcpy(u->host, p, (size_t)(end - p));
        p = end;
    }
    strcpy(u->port, "80");
    if (*p == ':') {
        p++;
        size_t n = strspn(p, "0123456789");
        long port = n ? strtol(p, NULL, 10) : 0;
        if (n == 0 || n > 5 || port < 1 || port > 65535) {
            snprintf(err, errlen, "bad port in URL: %s", url);
            return -1;
        }
        snprintf(u->port, sizeof u->port, "%ld", port);
        p += n;
    }
    if (*p && *p != '/' && *p != '?') {
        snprintf(err, errlen, "unexpected character after host in URL: %s", url);
        return -1;
    }
    if (*p == '#') p = "";
    size_t plen = strcspn(p, "#");
    if (plen >= sizeof u->path) {
        snprintf(err, errlen, "URL path too long");
        return -1;
    }
    memcpy(u->path, p, plen);
    u->path[plen] = '\0';
    if (strcmp(u->path, "/") == 0) u->path[0] = '\0';
    for (const char *c = u->path; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            snprintf(err, errlen, "URL path contains a space or control character");
            return -1;
        }
    }
    return 0;
}

int sn_host_is_loopback_literal(const char *host) {
    if (strcasecmp(host, "localhost") == 0) return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6)) return 1;
        if (IN6_IS_ADDR_V4MAPPED(&a6)) return a6.s6_addr[12] == 127;
    }
    return 0;
}

const char *sn_content_type_sniff(const unsigned char *d, size_t len) {
    if (len >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return "image/jpeg";
    if (len >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return "image/png";
    return "application/octet-stream";
}

char *sn_request_build(const char *host_header, const char *path, const char *filename,
                       const unsigned char *data, size_t len, int multipart, size_t *out_len) {
    const char *ctype = sn_content_type_sniff(data, len);
    const char *boundary = "sn-loadgen-7c1f0e9a4b2d";
    const char *base = strrchr(filename, '/');
    base = base ? base + 1 : filename;
    char pre[1024], post[64], head[2048];
    int npre = 0, npost = 0;
    if (multipart) {
        /* Quotes and control bytes in the file name would break the part header. */
        char safe[256];
        size_t k = 0;
        for (const char *c = base; *c && k + 1 < sizeof safe; c++)
            safe[k++] = ((unsigned char)*c < ' ' || *c == '"' || *c == '\\') ? '_' : *c;
        safe[k] = '\0';
        npre = snprintf(pre, sizeof pre,
                        "--%s\r\nContent-Disposition: form-data; name=\"image\"; "
                        "filename=\"%s\"\r\nContent-Type: %s\r\n\r\n",
                        boundary, safe, ctype);
        npost = snprintf(post, sizeof post, "\r\n--%s--\r\n", boundary);
    }
    size_t body_len = (size_t)npre + len + (size_t)npost;
    char ctype_hdr[128];
    if (multipart)
        snprintf(ctype_hdr, sizeof ctype_hdr, "multipart/form-data; boundary=%s", boundary);
    else
        snprintf(ctype_hdr, sizeof ctype_hdr, "%s", ctype);
    int nhead = snprintf(head, sizeof head,
                         "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: shufflenet-loadgen\r\n"
                         "Accept: application/json\r\nContent-Type: %s\r\n"
                         "Content-Length: %zu\r\n\r\n",
                         path, host_header, ctype_hdr, body_len);
    if (nhead < 0 || (size_t)nhead >= sizeof head) return NULL;
    char *buf = malloc((size_t)nhead + body_len);
    if (!buf) return NULL;
    char *w = buf;
    memcpy(w, head, (size_t)nhead), w += nhead;
    memcpy(w, pre, (size_t)npre), w += npre;
    if (len) memcpy(w, data, len), w += len;
    memcpy(w, post, (size_t)npost), w += npost;
    *out_len = (size_t)(w - buf);
    return buf;
}

/* ---- response parser ------------------------------------------------------------------ */

void sn_http_resp_init(sn_http_resp *r) {
    memset(r, 0, offsetof(sn_http_resp, line));
    r->state = SN_RESP_STATUS;
    r->content_length = -1;
    r->line[0] = '\0';
}

static void fail(sn_http_resp *r, const char *why) {
    r->state = SN_RESP_ERROR;
    r->error = why;
}

/* Collects bytes up to and including '\n' into r->line (without CR/LF). Returns 1 when a line
 * is complete, 0 when more input is needed; *used counts consumed bytes. */
static int take_line(sn_http_resp *r, const char *buf, size_t len, size_t *used, int is_header) {
    const char *nl = memchr(buf, '\n', len);
    size_t n = nl ? (size_t)(nl - buf) + 1 : len;
    if (is_header) {
        r->header_bytes += n;
        if (r->header_bytes > HEADERS_MAX) {
            fail(r, "response headers too large");
            *used = n;
            return 0;
        }
    }
    size_t copy = nl ? n - 1 : n;
    if (r->line_len + copy >= SN_RESP_LINE_MAX) {
        fail(r, "response line too long");
        *used = n;
        return 0;
    }
    memcpy(r->line + r->line_len, buf, copy);
    r->line_len += copy;
    *used = n;
    if (!nl) return 0;
    if (r->line_len && r->line[r->line_len - 1] == '\r') r->line_len--;
    r->line[r->line_len] = '\0';
    r->line_len = 0;
    return 1;
}

static void parse_status(sn_http_resp *r) {
    const char *l = r->line;
    if (strncmp(l, "HTTP/1.", 7) != 0 || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
        !isdigit((unsigned char)l[9]) || !isdigit((unsigned char)l[10]) ||
        !isdigit((unsigned char)l[11]) || (l[12] != ' ' && l[12] != '\0')) {
        fail(r, "malformed status line");
        return;
    }
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (r->status < 100) {
        fail(r, "malformed status code");
        return;
    }
    r->keep_alive = l[7] == '1';
    r->state = SN_RESP_HEADER;
}

static int has_token(const char *value, const char *token) {
    size_t tl = strlen(token);
    for (const char *p = value; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && (p[m - 1] == ' ' || p[m - 1] == '\t')) m--;
        if (m == tl && strncasecmp(p, token, tl) == 0) return 1;
        p += n;
    }
    return 0;
}

static void parse_header(sn_http_resp *r) {
    char *colon = strchr(r->line, ':');
    if (!colon || colon == r->line) {
        fail(r, "malformed header line");
        return;
    }
    *colon = '\0';
    const char *name = r->line;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) v[--vl] = '\0';
    if (strcasecmp(name, "Content-Length") == 0) {
        if (vl == 0 || vl > 18 || strspn(v, "0123456789") != vl) {
            fail(r, "bad Content-Length");
            return;
        }
        int64_t cl = strtoll(v, NULL, 10);
        if (r->content_length >= 0 && r->content_length != cl) {
            fail(r, "conflicting Content-Length headers");
            return;
        }
        r->content_length = cl;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (has_token(v, "chunked")) r->chunked = 1;
    } else if (strcasecmp(name, "Connection") == 0) {
        if (has_token(v, "close"))
            r->keep_alive = 0;
        else if (has_token(v, "keep-alive"))
            r->keep_alive = 1;
    }
}

/* The blank line after the headers: choose how the body is framed. */
static void end_headers(sn_http_resp *r) {
    if (r->status < 200) { /* 1xx interim response: the real one follows */
        sn_http_resp_init(r);
        return;
    }
    if (r->status == 204 || r->status == 304) {
        r->state = SN_RESP_DONE;
    } else if (r->chunked) {
        r->state = SN_RESP_CHUNK_SIZE;
    } else if (r->content_length >= 0) {
        r->remaining = (uint64_t)r->content_length;
        r->state = r->remaining ? SN_RESP_BODY_LEN : SN_RESP_DONE;
    } else {
        r->keep_alive = 0;
        r->state = SN_RESP_BODY_EOF;
    }
}

static void parse_chunk_size(sn_http_resp *r) {
    const char *p = r->line;
    uint64_t n = 0;
    int digits = 0;
    for (; isxdigit((unsigned char)*p); p++, digits++) {
        if (digits >= 15) {
            fail(r, "chunk size too large");
            return;
        }
        int d = isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
        n = n * 16 + (uint64_t)d;
    }
    while (*p == ' ' || *p == '\t') p++;
    if (digits == 0 || (*p && *p != ';')) {
        fail(r, "malformed chunk size line");
        return;
    }
    r->remaining = n;
    r->state = n ? SN_RESP_CHUNK_DATA : SN_RESP_TRAILER;
}

size_t sn_http_resp_feed(sn_http_resp *r, const char *buf, size_t len) {
    size_t off = 0;
    while (off < len && r->state != SN_RESP_DONE && r->state != SN_RESP_ERROR) {
        size_t used = 0, avail = len - off;
        const char *p = buf + off;
        switch (r->state) {
        case SN_RESP_STATUS:
            if (take_line(r, p, avail, &used, 1)) {
                if (r->line[0] == '\0' && r->header_bytes <= 2) {
                    r->header_bytes = 0; /* tolerate a stray CRLF before the status line */
                    break;
                }
                parse_status(r);
            }
            break;
        case SN_RESP_HEADER:
            if (take_line(r, p, avail, &used, 1)) {
                if (r->line[0] == '\0')
                    end_headers(r);
                else
                    parse_header(r);
            }
            break;
        case SN_RESP_TRAILER:
            if (take_line(r, p, avail, &used, 1) && r->line[0] == '\0') r->state = SN_RESP_DONE;
            break;
        case SN_RESP_CHUNK_SIZE:
            if (take_line(r, p, avail, &used, 0)) parse_chunk_size(r);
            break;
        case SN_RESP_CHUNK_CRLF:
            if (take_line(r, p, avail, &used, 0)) {
                if (r->line[0] != '\0')
                    fail(r, "missing CRLF after chunk data");
                else
                    r->state = SN_RESP_CHUNK_SIZE;
            }
            break;
        case SN_RESP_BODY_LEN:
        case SN_RESP_CHUNK_DATA:
            used = avail < r->remaining ? avail : (size_t)r->remaining;
            r->remaining -= used;
            r->body_bytes += used;
            if (r->remaining == 0)
                r->state = r->state == SN_RESP_BODY_LEN ? SN_RESP_DONE : SN_RESP_CHUNK_CRLF;
            break;
        case SN_RESP_BODY_EOF:
            used = avail;
            r->body_bytes += used;
            break;
        }
        off += used;
    }
    return off;
}

void sn_http_resp_eof(sn_http_resp *r) {
    if (r->state == SN_RESP_BODY_EOF)
        r->state = SN_RESP_DONE;
    else if (r->state != SN_RESP_DONE && r->state != SN_RESP_ERROR)
        fail(r, "connection closed before the response was complete");
}
