/* models.c - loading the configured models. A file model is loaded with sn_model_load; a
 * synthetic one is written by sn_synth_model (tools/synth.c, linked in) into a temporary
 * file, hashed, loaded and the file removed. */
#include "server/models.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/sha256.h"
#include "engine/synth.h"

static int make_synth(const sn_model_conf *mc, const char *dst, char *err, size_t errlen) {
    char serr[SN_ERRLEN];
    if (sn_synth_model(mc->synth_groups, mc->synth_width, (uint64_t)(unsigned)mc->synth_seed, dst,
                       serr, sizeof serr) != 0) {
        snprintf(err, errlen, "model \"%s\": synthetic weights (groups %d, width %g): %s", mc->name,
                 mc->synth_groups, mc->synth_width, serr);
        return -1;
    }
    return 0;
}

static int load_one(const sn_model_conf *mc, sn_served *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", mc->name);
    char tmp[] = "/tmp/shufflenet-synth-XXXXXX";
    const char *path = mc->path;
    if (mc->synth_groups > 0) {
        int fd = mkstemp(tmp);
        if (fd < 0) {
            snprintf(err, errlen, "model \"%s\": mkstemp: %s", mc->name, strerror(errno));
            return -1;
        }
        close(fd);
        if (make_synth(mc, tmp, err, errlen) < 0) {
            unlink(tmp);
            return -1;
        }
        path = tmp;
        snprintf(out->synth_spec, sizeof out->synth_spec, "groups=%d width=%g seed=%d",
                 mc->synth_groups, mc->synth_width, mc->synth_seed);
    } else {
        snprintf(out->path, sizeof out->path, "%s", mc->path);
    }
    char lerr[SN_ERRLEN];
    if (sn_sha256_file(path, out->sha256) < 0) {
        snprintf(err, errlen, "model \"%s\": cannot read %s: %s", mc->name, path, strerror(errno));
        if (path == tmp) unlink(tmp);
        return -1;
    }
    out->model = sn_model_load(path, lerr, sizeof lerr);
    if (path == tmp) unlink(tmp);
    if (!out->model) {
        snprintf(err, errlen, "model \"%s\": %s", mc->name, lerr);
        return -1;
    }
    out->info = sn_model_info_of(out->model);
    out->synthetic = out->info->synthetic || mc->synth_groups > 0;
    return 0;
}

int sn_models_load(const sn_config *c, sn_served *out, char *err, size_t errlen) {
    for (int i = 0; i < c->nmodels; i++)
        if (load_one(&c->models[i], &out[i], err, errlen) < 0) {
            sn_models_free(out, i);
            return -1;
        }
    return 0;
}

void sn_models_free(sn_served *m, int n) {
    for (int i = 0; i < n; i++) sn_model_free(m[i].model);
}
