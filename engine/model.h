/* model.h - the loaded model as the engine sees it (internal to engine/). */
#ifndef SN_MODEL_H
#define SN_MODEL_H

#include "engine/kernels.h"
#include "engine/shufflenet.h"

typedef struct {
    int cin, mid, outs;   /* outs: pw2 output channels (cout - cin in stride-2 units) */
    int stride, g1;       /* g1: groups of pw1 (1 for the very first unit) */
    int h, ho;            /* input and output spatial size (square) */
    float *pw1_w, *pw1_b; /* packed per group, groups pw1_gs floats apart */
    float *dw_w, *dw_b;   /* folded, shuffle position normalised to "after dw" */
    float *pw2_w, *pw2_b;
    size_t pw1_gs, pw2_gs;
    int *dst; /* channel shuffle: dw output channel c is written to channel dst[c] */
} sn_unit;

struct sn_model {
    sn_model_info info;
    const sn_kernels *kernels; /* the weights are packed for these */
    int stem_hw, pool_hw, final_hw, final_channels;
    float *stem_w, *stem_b;
    sn_unit *units;
    float *fc_w, *fc_b;
    float *arena; /* every weight lives here */
    size_t arena_floats, arena_used;
};

void sn_shuffle_dst(sn_shuffle_order order, int C, int g, int *dst);

#endif
