/* cpuid_probe.c - what a process sees through cpuid, for tests/bench/run.sh (the AVX2-only
 * shim bench/cpuid-avx2.c). `cpuid_probe` prints "avx2=B avx512f=B avx512bw=B"; `cpuid_probe
 * crash` then writes through a null pointer (the shim must let the fault kill the process);
 * `cpuid_probe handler` first installs its own SIGSEGV handler (the shim must pass real
 * faults to it). */
#include <cpuid.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void on_segv(int sig) {
    (void)sig;
    static const char m[] = "own handler ran\n";
    if (write(1, m, sizeof(m) - 1) < 0) _exit(3);
    _exit(0);
}

int main(int argc, char **argv) {
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    printf("avx2=%u avx512f=%u avx512bw=%u\n", (b >> 5) & 1, (b >> 16) & 1, (b >> 30) & 1);
    fflush(stdout);
    if (argc > 1 && !strcmp(argv[1], "handler")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_segv;
        sigaction(SIGSEGV, &sa, NULL);
    }
    if (argc > 1) {
        volatile int *p = NULL;
        *p = 1;
    }
    return 0;
}
