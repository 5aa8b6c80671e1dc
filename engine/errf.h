/* errf.h - the one-line error message convention shared by every module: functions take
 * (char *err, size_t errlen) and fill it on failure. */
#ifndef SN_ERRF_H
#define SN_ERRF_H

#include <stddef.h>

/* printf into err (when err is non-NULL and errlen > 0); always returns -1, so a failing
 * function can `return sn_errf(err, errlen, "...", ...);`. */
int sn_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
