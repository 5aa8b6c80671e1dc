/* modelinfo.h - a model's description as JSON, for `shufflenet info --json` and the
 * service's GET /v1/models. */
#ifndef SN_MODELINFO_H
#define SN_MODELINFO_H

#include <jansson.h>

#include "engine/shufflenet.h"

json_t *sn_model_info_json(const sn_model_info *I);

#endif
