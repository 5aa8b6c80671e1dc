/* dispatch.c - what this CPU is: the kernel table picked once (cpuid on x86, HWCAP on ARM64),
 * or the one forced by the SHUFFLENET_ISA environment variable (scalar|avx2|avx512|neon), and
 * the cache sizes the engine plans its batch tiles for (sysfs, else sysconf). */
#include "engine/kernels.h"
#include "engine/shufflenet.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

/* XCR0: which register states the OS saves (bits 1,2: SSE/AVX; 5,6,7: AVX-512). */
static unsigned long long xgetbv0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int has_avx2(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!fma || !osxsave || !avx || (xgetbv0() & 6) != 6) return 0;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 5) & 1;
}

static int has_avx512(void) {
    if (!has_avx2() || (xgetbv0() & 0xe6) != 0xe6) return 0;
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return f && dq && bw && vl;
}
#endif

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>

static int has_neon(void) {
    return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
}
#endif

const sn_kernels *sn_kernels_by_name(const char *name) {
    if (!strcmp(name, "scalar")) return &sn_kernels_scalar;
#if defined(__x86_64__) || defined(__i386__)
    if (!strcmp(name, "avx2")) return has_avx2() ? &sn_kernels_avx2 : NULL;
    if (!strcmp(name, "avx512")) return has_avx512() ? &sn_kernels_avx512 : NULL;
#endif
#if defined(__aarch64__)
    if (!strcmp(name, "neon")) return has_neon() ? &sn_kernels_neon : NULL;
#endif
    return NULL;
}

static const sn_kernels *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
    if (chosen) return; /* sn_kernels_force() came first */
    const char *env = getenv("SHUFFLENET_ISA");
    if (env && *env) {
        chosen = sn_kernels_by_name(env);
        if (!chosen)
            fprintf(stderr,
                    "shufflenet: SHUFFLENET_ISA=%s is not supported here, using the "
                    "best available kernels\n",
                    env);
    }
    static const char *pref[] = {"avx512", "avx2", "neon", "scalar"};
    for (int i = 0; !chosen && i < 4; i++) chosen = sn_kernels_by_name(pref[i]);
}

const sn_kernels *sn_kernels_get(void) {
    pthread_once(&once, choose);
    return chosen;
}

void sn_kernels_force(const sn_kernels *k) {
    pthread_once(&once, choose);
    chosen = k;
}

const char *sn_isa_name(void) {
    return sn_kernels_get()->name;
}

/* "512K", "1M", "32768K" -> bytes; 0 if unreadable */
static size_t sysfs_size(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long v = 0;
    char unit = 0;
    int got = fscanf(f, "%lu%c", &v, &unit);
    fclose(f);
    if (got < 1) return 0;
    return v << (unit == 'K' ? 10 : unit == 'M' ? 20 : 0);
}

static int sysfs_word(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    return ok;
}

static size_t cache_from_sysfs(int level) {
    for (int i = 0; i < 16; i++) {
        char p[96], lv[16], type[32];
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        if (!sysfs_word(p, lv, sizeof(lv))) break;
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if (atoi(lv) != level || !sysfs_word(p, type, sizeof(type)) || !strcmp(type, "Instruction"))
            continue;
        snprintf(p, sizeof(p), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        return sysfs_size(p);
    }
    return 0;
}

static size_t cache_bytes[3];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void read_caches(void) {
    for (int level = 1; level <= 2; level++) {
        size_t b = cache_from_sysfs(level);
        long sc = sysconf(level == 1 ? _SC_LEVEL1_DCACHE_SIZE : _SC_LEVEL2_CACHE_SIZE);
        if (!b && sc > 0) b = (size_t)sc;
        cache_bytes[level] = b ? b : level == 1 ? 32 << 10 : 256 << 10;
    }
    const char *kb = getenv("SHUFFLENET_L2_KB");
    if (kb && atol(kb) > 0) cache_bytes[2] = (size_t)atol(kb) << 10;
}

size_t sn_cache_size(int level) {
    pthread_once(&cache_once, read_caches);
    return cache_bytes[level == 1 ? 1 : 2];
}
