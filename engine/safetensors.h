/* safetensors.h - reading and writing safetensors files (8-byte little-endian header
 * length, a JSON header of tensors {dtype, shape, data_offsets} and "__metadata__", then the
 * raw little-endian data). The reader validates everything before handing out a pointer:
 * header size, JSON, dtypes, shapes, offsets inside the data and not overlapping. */
#ifndef SN_SAFETENSORS_H
#define SN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define SN_ST_MAX_DIMS 8

typedef enum {
    SN_DT_F32 = 0,
    SN_DT_F16,
    SN_DT_BF16,
    SN_DT_F64,
    SN_DT_I64,
    SN_DT_I32,
    SN_DT_I8,
    SN_DT_U8,
    SN_DT_BOOL,
    SN_DT_OTHER
} sn_dtype;

typedef struct {
    char *name;
    sn_dtype dtype;
    const char *dtype_name;
    int ndim;
    int64_t shape[SN_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* into the file buffer, maybe unaligned: read with sn_st_copy_f32 */
    size_t nbytes;
} sn_st_tensor;

typedef struct {
    uint8_t *buf; /* whole file */
    size_t size;
    int ntensors;
    sn_st_tensor *tensors;
    int nmeta;
    char **meta_keys;
    char **meta_vals;
} sn_st_file;

/* Read and validate path. Returns 0, or -1 with one line in err naming the problem. */
int sn_st_open(const char *path, sn_st_file *f, char *err, size_t errlen);
/* Same on a buffer in memory; takes ownership of buf (freed by sn_st_close) on success
 * and on failure. */
int sn_st_parse(uint8_t *buf, size_t size, sn_st_file *f, char *err, size_t errlen);
void sn_st_close(sn_st_file *f);
const sn_st_tensor *sn_st_find(const sn_st_file *f, const char *name);
const char *sn_st_meta(const sn_st_file *f, const char *key);
/* Copy a tensor's float32 data into dst (numel floats). */
void sn_st_copy_f32(const sn_st_tensor *t, float *dst);

/* Writer: collect metadata and float32 tensors, then save. */
typedef struct sn_st_writer sn_st_writer;
sn_st_writer *sn_st_writer_new(void);
int sn_st_writer_meta(sn_st_writer *w, const char *key, const char *value);
/* Copies data (numel = product of shape). Tensors are written in the order added. */
int sn_st_writer_add_f32(sn_st_writer *w, const char *name, const float *data, int ndim,
                         const int64_t *shape);
/* Writes to path.tmp then renames, so no partial file is ever left behind. */
int sn_st_writer_save(sn_st_writer *w, const char *path, char *err, size_t errlen);
void sn_st_writer_free(sn_st_writer *w);

#endif
