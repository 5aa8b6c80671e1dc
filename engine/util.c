/* util.c - sn_errf (one-line error messages into the caller's buffer) and sn_read_file
 * (a whole file into memory). */
#include "engine/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sn_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

uint8_t *sn_read_file(const char *path, size_t max_bytes, size_t *len, char *err, size_t errlen) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        sn_errf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    /* Grow by doubling rather than trusting ftell: pipes and /dev/stdin have no size. */
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap + 1);
    const char *why = buf ? NULL : "out of memory";
    while (!why) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) {
            if (ferror(f)) why = "read failed";
            break;
        }
        if (max_bytes && n > max_bytes) break;
        uint8_t *nb = realloc(buf, 2 * cap + 1);
        if (!nb)
            why = "out of memory";
        else
            buf = nb, cap *= 2;
    }
    fclose(f);
    if (!why && max_bytes && n > max_bytes) {
        free(buf);
        sn_errf(err, errlen, "%s: larger than %zu bytes", path, max_bytes);
        return NULL;
    }
    if (why) {
        free(buf);
        sn_errf(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
