/* models.c - loading the configured models. A file model is loaded with sn_model_load; a
 * synthetic one is written by the `shufflenet synth` tool (found next to this binary, or
 * $SHUFFLENET_CLI) into a temporary file, loaded and the file removed. */
#include "models.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sha256.h"

static int find_cli(char *out, size_t cap) {
    const char *env = getenv("SHUFFLENET_CLI");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return access(out, X_OK);
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    snprintf(out, cap, "%s/shufflenet", dirname(self));
    return access(out, X_OK);
}

static int run_synth(const sn_model_conf *mc, const char *dst, char *err, size_t errlen) {
    char cli[PATH_MAX + 16], g[16], w[32], s[16];
    if (find_cli(cli, sizeof cli) < 0) {
        snprintf(err, errlen,
                 "model \"%s\": synthetic weights need the shufflenet tool next to "
                 "the server or in SHUFFLENET_CLI",
                 mc->name);
        return -1;
    }
    snprintf(g, sizeof g, "%d", mc->synth_groups);
    snprintf(w, sizeof w, "%g", mc->synth_width);
    snprintf(s, sizeof s, "%d", mc->synth_seed);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "model \"%s\": fork: %s", mc->name, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execl(cli, cli, "synth", "--groups", g, "--width", w, "--seed", s, "-o", dst, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(err, errlen, "model \"%s\": `%s synth --groups %s --width %s` failed", mc->name,
                 cli, g, w);
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
        if (run_synth(mc, tmp, err, errlen) < 0) {
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
