/* dispatch.c - picks the kernel table for this CPU once (cpuid), or the one forced by the
 * SHUFFLENET_ISA environment variable (scalar|avx2|avx512). */
#include "kernels.h"
#include "shufflenet.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const sn_kernels *sn_kernels_by_name(const char *name) {
    if (!strcmp(name, "scalar")) return &sn_kernels_scalar;
    return NULL;
}

static const sn_kernels *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
    const char *env = getenv("SHUFFLENET_ISA");
    if (env && *env) {
        chosen = sn_kernels_by_name(env);
        if (!chosen)
            fprintf(stderr, "shufflenet: SHUFFLENET_ISA=%s is not supported here, using the "
                            "best available kernels\n", env);
    }
    static const char *pref[] = {"avx512", "avx2", "scalar"};
    for (int i = 0; !chosen && i < 3; i++) chosen = sn_kernels_by_name(pref[i]);
}

const sn_kernels *sn_kernels_get(void) {
    pthread_once(&once, choose);
    return chosen;
}

const char *sn_isa_name(void) {
    return sn_kernels_get()->name;
}
