/* multipart.h - a small, strict multipart/form-data parser (RFC 7578 / RFC 2046).
 *
 * Pure functions over a buffer: no allocation, no I/O. Parts point into the caller's body,
 * so the body must outlive them. Used by the HTTP layer for uploads and by the fuzz target.
 */
#ifndef SN_MULTIPART_H
#define SN_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define SN_MP_MAX_BOUNDARY 70 /* RFC 2046: 1..70 characters */

typedef struct {
    const uint8_t *data; /* part content, points into the body */
    size_t len;
    char name[64];          /* Content-Disposition name="..." ("" when absent) */
    char filename[256];     /* Content-Disposition filename="..." ("" when absent) */
    char content_type[128]; /* the part's Content-Type ("" when absent) */
    int has_filename;       /* 1 when a filename parameter was present (even empty) */
} sn_part;

/* Extract the boundary from a Content-Type header value such as
 * `multipart/form-data; boundary=----X` (quoted or not). Returns 0, or -1 when the type is
 * not multipart/form-data or the boundary is missing or invalid (err filled). */
int sn_multipart_boundary(const char *content_type, char *boundary, size_t cap, char *err,
                          size_t errlen);

/* Parse body into at most max_parts parts. Returns the number of parts (>= 1), or -1 with a
 * one-line reason in err when the body is malformed (no opening boundary, no closing
 * delimiter, bad part headers, more than max_parts parts). */
int sn_multipart_parse(const char *boundary, const uint8_t *body, size_t len, sn_part *parts,
                       int max_parts, char *err, size_t errlen);

#endif
