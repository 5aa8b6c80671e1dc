/* fuzz_model.c - libFuzzer target: safetensors parsing and the model loader's validation
 * (sn_model_load_memory). A model that loads and is small enough is also run once. */
#include <stdint.h>
#include <stdlib.h>

#include "engine/shufflenet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[SN_ERRLEN];
    sn_model *m = sn_model_load_memory(data, size, "fuzz", err, sizeof(err));
    if (!m) return 0;
    const sn_model_info *I = sn_model_info_of(m);
    if (I->macs < 2000000) {
        sn_engine *e = sn_engine_create(m, 1, err, sizeof(err));
        float *x = calloc(3 * (size_t)I->input_size * I->input_size, sizeof(float));
        float *l = calloc((size_t)I->num_classes, sizeof(float));
        if (e && x && l) sn_engine_run(e, x, 1, l);
        free(x);
        free(l);
        sn_engine_free(e);
    }
    sn_model_free(m);
    return 0;
}
