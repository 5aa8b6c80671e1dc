/* cpuid-avx2.c - an LD_PRELOAD shim that makes a process see an AVX2-only x86 CPU, so that
 * bench/compare-peers can run ONNX Runtime as it runs on an AVX2 machine (its MLAS picks its
 * kernels from cpuid, and has no switch for it) while our engine runs SHUFFLENET_ISA=avx2.
 *
 * How: the kernel's CPUID faulting (arch_prctl ARCH_SET_CPUID 0, x86 "cpuid_fault" in
 * /proc/cpuinfo) makes every cpuid instruction of this process raise SIGSEGV; the handler
 * runs the real cpuid with faulting briefly off, clears the AVX-512 and AMX feature bits (and
 * the ZMM/opmask states in leaf 0xd), writes the registers back and steps over the
 * instruction. Threads inherit the mode; execve resets it. The process's own SIGSEGV handler
 * (Node.js resets every handler at start, then V8 installs one) is kept aside: sigaction() and
 * signal() for SIGSEGV are intercepted to record it, and every fault that is not a cpuid goes
 * to it (or to the default action). If faulting cannot be enabled, the constructor says so on
 * stderr and sets SN_CPUID_AVX2=unavailable in the environment: the caller must then not claim
 * AVX2-only.
 *
 * Build: cc -O2 -shared -fPIC -o cpuid-avx2.so bench/cpuid-avx2.c -ldl (compare-peers does it).
 * Bench tooling only; nothing of the service loads it. */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif

static int set_cpuid(int enabled) {
    return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled);
}

static void mask(unsigned leaf, unsigned sub, unsigned *a, unsigned *b, unsigned *c, unsigned *d) {
    if (leaf == 7 && sub == 0) {
        /* EBX: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL */
        *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                (1u << 30) | (1u << 31));
        /* ECX: VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
        *c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        /* EDX: 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8 */
        *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
                (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        *a &= ~(1u << 5); /* AVX512-BF16 */
    } else if (leaf == 0xd && sub == 0) {
        *a &= ~0xe0u;      /* XCR0 bits the OS may enable: opmask, ZMM_Hi256, Hi16_ZMM */
        *a &= ~(3u << 17); /* AMX TILECFG, TILEDATA */
    }
    (void)d;
}

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;
static int active;
static struct sigaction app; /* what the process asked for SIGSEGV (SIG_DFL at first) */

static void on_segv(int sig, siginfo_t *si, void *ctx) {
    ucontext_t *uc = ctx;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* not cpuid: the process's handler, or a crash */
        if (app.sa_flags & SA_SIGINFO)
            app.sa_sigaction(sig, si, ctx);
        else if (app.sa_handler != SIG_DFL && app.sa_handler != SIG_IGN)
            app.sa_handler(sig);
        else
            real_sigaction(sig, &app, NULL); /* the fault repeats, with the default action */
        return;
    }
    unsigned leaf = (unsigned)r[REG_RAX], sub = (unsigned)r[REG_RCX], a, b, c, d;
    set_cpuid(1);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_cpuid(0);
    mask(leaf, sub, &a, &b, &c, &d);
    r[REG_RAX] = a, r[REG_RBX] = b, r[REG_RCX] = c, r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV || !active) return real_sigaction(sig, act, old);
    if (old) *old = app;
    if (act) app = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t h) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = h;
    sa.sa_flags = SA_RESTART;
    return sigaction(sig, &sa, &old) ? SIG_ERR : old.sa_handler;
}

__attribute__((constructor)) static void init(void) {
    real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    app.sa_handler = SIG_DFL;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (!real_sigaction || real_sigaction(SIGSEGV, &sa, NULL) || set_cpuid(0)) {
        fprintf(stderr, "cpuid-avx2: CPUID faulting is not available here; the CPU's real "
                        "features stay visible\n");
        setenv("SN_CPUID_AVX2", "unavailable", 1);
        return;
    }
    active = 1;
    setenv("SN_CPUID_AVX2", "active", 1);
}
