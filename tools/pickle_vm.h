/* pickle_vm.h - the pickle VM's values and state, shared by the VM (pickle_vm.c) and the
 * torch.save containers that feed it (pickle.c). Internal to tools/. */
#ifndef SN_PICKLE_VM_H
#define SN_PICKLE_VM_H

#include <stddef.h>
#include <stdint.h>

#include "tools/pickle.h"

typedef enum {
    V_NONE,
    V_BOOL,
    V_INT,
    V_BIGINT, /* LONG1 wider than 8 bytes: raw little-endian bytes in s */
    V_FLOAT,
    V_STR,
    V_TUPLE,
    V_LIST,
    V_DICT, /* items holds key, value, key, value, ... in insertion order */
    V_GLOBAL,
    V_STORAGE, /* a persistent id: i indexes vm.srefs */
    V_TENSOR   /* i indexes vm.srefs, the rest in ten */
} vtype;

enum { G_ORDEREDDICT, G_REBUILD_TENSOR_V2, G_STORAGE };

typedef struct {
    int64_t offset;
    int ndim;
    int64_t shape[SN_PT_MAX_DIMS];
    int64_t numel;
} tensor_info;

typedef struct value value;
struct value {
    vtype t;
    int kind; /* V_GLOBAL: G_* */
    int64_t i;
    double f;
    char *s; /* V_STR, V_BIGINT (length slen), V_GLOBAL ("module.name") */
    size_t slen;
    value **items;
    size_t n, cap;
    tensor_info *ten;
};

typedef struct { /* one persistent storage id */
    char *key;
    sn_pt_dtype dtype;
    int64_t numel;
    const uint8_t *data; /* resolved from the container */
} storage_ref;

typedef struct {
    const uint8_t *start, *p, *end; /* the current pickle */
    value **pool;
    size_t npool, poolcap;
    value **stack;
    size_t sp, stackcap;
    size_t *marks;
    size_t nmarks, markcap;
    value **memo;
    size_t memocap, memolimit, memocount;
    storage_ref *srefs;
    size_t nsrefs, srefcap;
    char *err;
    size_t errlen;
} vm;

/* Run the pickle at m->p .. m->end to its STOP; returns the result, or NULL with m->err set.
 * Values stay owned by the VM until sn_pv_free. */
value *sn_pv_run(vm *m);
void sn_pv_free(vm *m);
/* Last value stored under string key k in dict d (NULL if absent or d is not a dict). */
value *sn_pv_dict_get(const value *d, const char *k);

#endif
