/* npy.h - reading and writing NumPy .npy files holding float32 arrays.
 *
 * Read: format versions 1.0, 2.0 and 3.0, dtype '<f4' only, C order, 0..SN_NPY_MAX_DIMS
 * dimensions. Everything is checked (magic, header length, the header dict, dtype, shape,
 * data size against the file size) and a failure leaves one line in err.
 * Write: format version 1.0, '<f4', C order, header padded to 64 bytes. */
#ifndef SN_NPY_H
#define SN_NPY_H

#include <stddef.h>
#include <stdint.h>

#define SN_NPY_MAX_DIMS 8

/* Parse a .npy file image. On success *data is a malloc'd copy of the values (at least one
 * element is allocated, also for empty arrays), shape[0..*ndim) the dimensions. Returns 0,
 * or -1 with a message in err. shape must have room for SN_NPY_MAX_DIMS entries. */
int sn_npy_parse(const uint8_t *buf, size_t len, float **data, int64_t *shape, int *ndim, char *err,
                 size_t errlen);

/* Same, reading path; the message names the file. */
int sn_npy_read(const char *path, float **data, int64_t *shape, int *ndim, char *err,
                size_t errlen);

/* Write data (product of shape floats) as a version 1.0 .npy file. Returns 0 or -1. */
int sn_npy_write(const char *path, const float *data, const int64_t *shape, int ndim, char *err,
                 size_t errlen);

#endif
