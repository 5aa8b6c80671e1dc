/* models.h - the models the server serves: loaded from safetensors files, or synthesised
 * in process with sn_synth_model, each with its name, origin and file digest. */
#ifndef SN_MODELS_H
#define SN_MODELS_H

#include <stddef.h>

#include "server/config.h"
#include "engine/shufflenet.h"

typedef struct {
    char name[SN_MODEL_NAMELEN];
    sn_model *model; /* read-only, shared by every worker */
    const sn_model_info *info;
    char path[1024];     /* file the weights came from ("" for an in-process synthetic model) */
    char sha256[65];     /* of that file */
    int synthetic;       /* weights are synthetic (file metadata or a synth entry) */
    char synth_spec[64]; /* "groups=G width=W seed=S" for synth entries */
} sn_served;

/* Load every configured model into out[c->nmodels]. On failure frees what was loaded and
 * returns -1 with one line naming the model and the problem. */
int sn_models_load(const sn_config *c, sn_served *out, char *err, size_t errlen);
void sn_models_free(sn_served *m, int n);

#endif
