/* multipart.c - strict multipart/form-data parsing over an in-memory body.
 *
 * Owns: boundary extraction from Content-Type, splitting the body at delimiters, and the
 * part headers we care about (Content-Disposition name/filename, Content-Type). Everything
 * works on (pointer, length) ranges; nothing is allocated and nothing past len is read.
 */
#include "server/multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADER_BYTES 8192
#define MAX_HEADER_LINES 16

static void seterr(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

static const uint8_t *find(const uint8_t *hay, size_t hlen, const char *needle, size_t nlen) {
    if (nlen == 0 || hlen < nlen) return NULL;
    return memmem(hay, hlen, needle, nlen);
}

/* Copy src[0..n) into dst (cap bytes), truncating; always NUL-terminates. */
static void copy_str(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int is_ows(int c) {
    return c == ' ' || c == '\t';
}

/* Parse the next `; key=value` parameter from [*pp, end). Values may be quoted strings with
 * backslash escapes. Returns 1 with key/val filled, 0 at the end, -1 on a syntax error. */
static int next_param(const char **pp, const char *end, char *key, size_t kcap, char *val,
                      size_t vcap) {
    const char *p = *pp;
    while (p < end && (is_ows(*p) || *p == ';')) p++;
    if (p >= end) return 0;
    const char *k = p;
    while (p < end && *p != '=' && *p != ';' && !is_ows(*p)) p++;
    size_t klen = (size_t)(p - k);
    while (p < end && is_ows(*p)) p++;
    if (p >= end || *p != '=') {
        /* a bare token such as "form-data" or a flag parameter: no value */
        copy_str(key, kcap, k, klen);
        val[0] = 0;
        while (p < end && *p != ';') p++;
        *pp = p;
        return klen ? 1 : -1;
    }
    p++; /* '=' */
    while (p < end && is_ows(*p)) p++;
    size_t n = 0;
    if (p < end && *p == '"') {
        p++;
        for (;;) {
            if (p >= end) return -1; /* unterminated quoted string */
            char c = *p++;
            if (c == '"') break;
            if (c == '\\') {
                if (p >= end) return -1;
                c = *p++;
            }
            if (n + 1 < vcap) val[n++] = c;
        }
    } else {
        const char *v = p;
        while (p < end && *p != ';' && !is_ows(*p)) p++;
        n = (size_t)(p - v);
        if (n >= vcap) n = vcap - 1;
        memcpy(val, v, n);
    }
    val[n] = 0;
    copy_str(key, kcap, k, klen);
    *pp = p;
    return klen ? 1 : -1;
}

static int boundary_ok(const char *b, size_t n) {
    if (n < 1 || n > SN_MP_MAX_BOUNDARY || b[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!isalnum(c) && !strchr("'()+_,-./:=? ", c)) return 0;
    }
    return 1;
}

int sn_multipart_boundary(const char *ct, char *boundary, size_t cap, char *err, size_t errlen) {
    static const char type[] = "multipart/form-data";
    if (!ct) {
        seterr(err, errlen, "missing Content-Type");
        return -1;
    }
    while (is_ows(*ct)) ct++;
    size_t tl = sizeof type - 1;
    if (strncasecmp(ct, type, tl) != 0 || (ct[tl] && ct[tl] != ';' && !is_ows(ct[tl]))) {
        seterr(err, errlen, "Content-Type is not multipart/form-data");
        return -1;
    }
    const char *p = ct + tl, *end = ct + strlen(ct);
    char key[32], val[SN_MP_MAX_BOUNDARY + 2];
    int r;
    while ((r = next_param(&p, end, key, sizeof key, val, sizeof val)) == 1) {
        if (strcasecmp(key, "boundary") != 0) continue;
        size_t n = strlen(val);
        if (!boundary_ok(val, n) || n + 1 > cap) {
            seterr(err, errlen, "multipart boundary is empty, too long or has invalid characters");
            return -1;
        }
        memcpy(boundary, val, n + 1);
        return 0;
    }
    seterr(err, errlen,
           r < 0 ? "malformed Content-Type parameters" : "multipart Content-Type has no boundary");
    return -1;
}

/* One header line [l, l+n) of a part. Returns 0 or -1 on a malformed line. */
static int part_header(const char *l, size_t n, sn_part *part) {
    const char *colon = memchr(l, ':', n);
    if (!colon || colon == l) return -1;
    size_t nl = (size_t)(colon - l);
    const char *v = colon + 1, *end = l + n;
    while (v < end && is_ows(*v)) v++;
    while (end > v && is_ows(end[-1])) end--;
    if (nl == 19 && strncasecmp(l, "Content-Disposition", nl) == 0) {
        const char *p = v;
        char key[32], val[256];
        int first = 1, r;
        while ((r = next_param(&p, end, key, sizeof key, val, sizeof val)) == 1) {
            if (first) {
                if (strcasecmp(key, "form-data") != 0) return -1;
                first = 0;
            } else if (strcasecmp(key, "name") == 0) {
                copy_str(part->name, sizeof part->name, val, strlen(val));
            } else if (strcasecmp(key, "filename") == 0) {
                copy_str(part->filename, sizeof part->filename, val, strlen(val));
                part->has_filename = 1;
            }
        }
        return (r < 0 || first) ? -1 : 0;
    }
    if (nl == 12 && strncasecmp(l, "Content-Type", nl) == 0)
        copy_str(part->content_type, sizeof part->content_type, v, (size_t)(end - v));
    return 0;
}

int sn_multipart_parse(const char *boundary, const uint8_t *body, size_t len, sn_part *parts,
                       int max_parts, char *err, size_t errlen) {
    char delim[SN_MP_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t bl = boundary ? strlen(boundary) : 0;
    if (!boundary_ok(boundary ? boundary : "", bl) || max_parts < 1) {
        seterr(err, errlen, "invalid multipart boundary");
        return -1;
    }
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, bl);
    size_t dl = bl + 4;

    /* opening delimiter: at the very start (without CRLF) or after a preamble */
    size_t pos;
    if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0) {
        pos = dl - 2;
    } else {
        const uint8_t *o = find(body, len, delim, dl);
        if (!o) {
            seterr(err, errlen, "multipart body has no opening boundary");
            return -1;
        }
        pos = (size_t)(o - body) + dl;
    }

    int count = 0;
    for (;;) {
        /* after a delimiter: "--" closes, else optional padding then CRLF */
        if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-') {
            if (count == 0) {
                seterr(err, errlen, "multipart body has no parts");
                return -1;
            }
            return count;
        }
        while (pos < len && is_ows(body[pos])) pos++;
        if (len - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n') {
            seterr(err, errlen, "multipart delimiter not followed by CRLF");
            return -1;
        }
        pos += 2;
        if (count == max_parts) {
            snprintf(err, errlen, "more than %d parts in multipart body", max_parts);
            return -1;
        }
        sn_part *part = &parts[count];
        memset(part, 0, sizeof *part);

        /* header lines up to an empty line */
        size_t hstart = pos;
        int lines = 0;
        for (;;) {
            const uint8_t *eol = find(body + pos, len - pos, "\r\n", 2);
            if (!eol) {
                seterr(err, errlen, "multipart part headers are not terminated");
                return -1;
            }
            size_t n = (size_t)(eol - (body + pos));
            if (n == 0) {
                pos += 2;
                break;
            }
            if (++lines > MAX_HEADER_LINES || pos + n - hstart > MAX_HEADER_BYTES) {
                seterr(err, errlen, "multipart part headers too large");
                return -1;
            }
            if (part_header((const char *)body + pos, n, part) < 0) {
                seterr(err, errlen, "malformed multipart part header");
                return -1;
            }
            pos += n + 2;
        }

        const uint8_t *next = find(body + pos, len - pos, delim, dl);
        if (!next) {
            seterr(err, errlen, "multipart body has no closing boundary (truncated?)");
            return -1;
        }
        part->data = body + pos;
        part->len = (size_t)(next - (body + pos));
        count++;
        pos = (size_t)(next - body) + dl;
    }
}
