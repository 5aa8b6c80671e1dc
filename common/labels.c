/* labels.c - loads the ImageNet class list (index, WordNet id, label) from a TSV file. */
#include "common/labels.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CLASSES 100000

void sn_labels_free(sn_labels *l) {
    if (!l) return;
    for (int i = 0; i < l->count; i++) {
        free(l->wnid[i]);
        free(l->label[i]);
    }
    free(l->wnid);
    free(l->label);
    memset(l, 0, sizeof(*l));
}

int sn_labels_load(const char *path, sn_labels *l, char *err, size_t errlen) {
    memset(l, 0, sizeof(*l));
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, cap = 0, rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (lineno == 1 && !strncmp(line, "index", 5)) continue; /* header */
        if (!line[0]) continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        char *end;
        long idx = strtol(line, &end, 10);
        if (!t1 || !t2 || end != t1 || idx != l->count || idx >= MAX_CLASSES) {
            snprintf(err, errlen, "%s:%d: expected 'index<TAB>wnid<TAB>label' with index %d", path,
                     lineno, l->count);
            rc = -1;
            break;
        }
        if (l->count == cap) {
            cap = cap ? cap * 2 : 1024;
            char **w = realloc(l->wnid, (size_t)cap * sizeof(char *));
            if (w) l->wnid = w;
            char **b = realloc(l->label, (size_t)cap * sizeof(char *));
            if (b) l->label = b;
            if (!w || !b) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
        }
        *t2 = 0;
        l->wnid[l->count] = strdup(t1 + 1);
        l->label[l->count] = strdup(t2 + 1);
        l->count++;
    }
    fclose(f);
    if (!rc && l->count == 0) {
        snprintf(err, errlen, "%s: no classes", path);
        rc = -1;
    }
    if (rc) sn_labels_free(l);
    return rc;
}

int sn_labels_load_default(sn_labels *l, char *err, size_t errlen) {
    char cand[4][PATH_MAX];
    int n = 0;
    const char *env = getenv("SHUFFLENET_LABELS");
    if (env && *env) snprintf(cand[n++], PATH_MAX, "%s", env);
    snprintf(cand[n++], PATH_MAX, "config/imagenet-classes.tsv");
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        /* build/x -> ../config, build/asan/x -> ../../config */
        snprintf(cand[n++], PATH_MAX, "%.3800s/../config/imagenet-classes.tsv", exe);
        snprintf(cand[n++], PATH_MAX, "%.3800s/../../config/imagenet-classes.tsv", exe);
    }
    for (int i = 0; i < n; i++)
        if (access(cand[i], R_OK) == 0) return sn_labels_load(cand[i], l, err, errlen);
    if (access("/usr/share/shufflenet/imagenet-classes.tsv", R_OK) == 0)
        return sn_labels_load("/usr/share/shufflenet/imagenet-classes.tsv", l, err, errlen);
    snprintf(err, errlen,
             "imagenet-classes.tsv not found (set SHUFFLENET_LABELS or run from the project)");
    return -1;
}
