/* cli.c - argument helpers shared by the `shufflenet` subcommands. */
#include "tools/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sn_cli_is_help(const char *a) {
    return !strcmp(a, "-h") || !strcmp(a, "--help");
}

/* "--key value" or "--key=value"; advances *i. */
const char *sn_cli_opt(int argc, char **argv, int *i, const char *key) {
    size_t kl = strlen(key);
    if (strncmp(argv[*i], key, kl)) return NULL;
    if (argv[*i][kl] == '=') return argv[*i] + kl + 1;
    if (argv[*i][kl]) return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "shufflenet: option %s needs a value\n", key);
        exit(2);
    }
    return argv[++*i];
}

long sn_cli_int(const char *key, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "shufflenet: %s must be an integer in [%ld, %ld], got '%s'\n", key, lo, hi,
                v);
        exit(2);
    }
    return x;
}

sn_model *sn_cli_load_model(const char *path) {
    char err[SN_ERRLEN];
    if (!path) {
        fprintf(stderr, "shufflenet: --model FILE is required\n");
        exit(2);
    }
    sn_model *m = sn_model_load(path, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "shufflenet: %s\n", err);
        exit(2);
    }
    return m;
}
