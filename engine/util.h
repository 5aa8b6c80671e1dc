/* util.h - the two helpers every layer uses: the one-line error convention and the one
 * whole-file reader. They live in the lowest layer so the engine can use them too; common/,
 * server/, tools/ and bench/ include this header rather than writing their own. */
#ifndef SN_UTIL_H
#define SN_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* printf into err (when err is non-NULL and errlen > 0); always returns -1, so a failing
 * function can `return sn_errf(err, errlen, "...", ...);`. */
int sn_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Reads a whole file (regular file, pipe or device) into a malloc'd buffer with one spare
 * zero byte after the data, so text can be used as a C string. Refuses files over max_bytes
 * (0: no limit besides memory). Returns the buffer with *len set, or NULL with err naming
 * the path and the problem. */
uint8_t *sn_read_file(const char *path, size_t max_bytes, size_t *len, char *err, size_t errlen);

#endif
