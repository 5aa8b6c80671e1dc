/* pickle.h - reading PyTorch checkpoints without torch: a minimal pickle VM and the two
 * torch.save containers.
 *
 * Containers:
 *   - legacy (torch < 1.6): five pickles in a row (magic number, protocol version, sys info,
 *     the object, the list of storage keys), then per storage an int64 element count and the
 *     raw little-endian bytes;
 *   - zip (torch >= 1.6): stored (uncompressed) entries "<prefix>/data.pkl" (the object) and
 *     "<prefix>/data/<key>" (one per storage). The central directory is parsed here, and
 *     every entry used is CRC-checked.
 * The object pickle may only use the small set of opcodes torch.save emits with protocol 2
 * (plus a few protocol 3/4 ones) and the globals collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 and torch.*Storage. Anything else is refused with an
 * error naming the opcode or global; the VM is iterative and its memory is bounded by the
 * pickle's size.
 *
 * The result is the flat state dict: every tensor entry, in file order, with a pointer to
 * its data inside the file buffer. Unwrapped are {'state_dict': ...} (also mmengine's
 * {'meta': ..., 'state_dict': ...}); the 'module.' prefix is left for the caller. */
#ifndef SN_PICKLE_H
#define SN_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#define SN_PT_MAX_DIMS 8

typedef enum {
    SN_PT_F32 = 0,
    SN_PT_F64,
    SN_PT_F16,
    SN_PT_BF16,
    SN_PT_I64,
    SN_PT_I32,
    SN_PT_I16,
    SN_PT_I8,
    SN_PT_U8,
    SN_PT_BOOL,
    SN_PT_NDTYPES
} sn_pt_dtype;

typedef struct {
    char *name; /* state-dict key as stored */
    sn_pt_dtype dtype;
    int ndim;
    int64_t shape[SN_PT_MAX_DIMS];
    int64_t numel;
    const uint8_t *data; /* numel elements, little-endian, in the file buffer, maybe unaligned */
} sn_pt_tensor;

typedef struct {
    uint8_t *buf; /* the whole file */
    size_t size;
    const char *container; /* "zip" or "legacy" */
    int synthetic;         /* the checkpoint's meta['synthetic'] is True */
    int ntensors;
    sn_pt_tensor *tensors;
} sn_pt_checkpoint;

/* Read a checkpoint file. Returns 0, or -1 with one line in err (naming the file). */
int sn_pt_load(const char *path, sn_pt_checkpoint *ck, char *err, size_t errlen);
/* Same on a buffer; takes ownership of buf (malloc'd) on success and on failure. */
int sn_pt_parse(uint8_t *buf, size_t size, sn_pt_checkpoint *ck, char *err, size_t errlen);
void sn_pt_free(sn_pt_checkpoint *ck);

const char *sn_pt_dtype_name(sn_pt_dtype t);
size_t sn_pt_dtype_size(sn_pt_dtype t);

#endif
