/* errf.c - sn_errf: formats a one-line error message into the caller's buffer. */
#include "errf.h"

#include <stdarg.h>
#include <stdio.h>

int sn_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}
