/* runner.c - the test runner behind tests/lite/criterion/criterion.h: runs every registered
 * test (or those whose "suite/name" matches the glob in argv[1]) in registration order, prints
 * one line per test and closes with "N passed, N failed". Exit status 1 if any failed. */
#include <criterion/criterion.h>
#include <fnmatch.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CRL_MAX 256

static struct {
    const char *suite, *name;
    crl_fn fn;
} tests[CRL_MAX];
static int ntests;
static jmp_buf back;

void crl_register(const char *suite, const char *name, crl_fn fn) {
    if (ntests == CRL_MAX) {
        fprintf(stderr, "criterion-lite: more than %d tests\n", CRL_MAX);
        exit(2);
    }
    tests[ntests].suite = suite, tests[ntests].name = name, tests[ntests].fn = fn;
    ntests++;
}

void crl_fail(const char *file, int line, const char *expr, const char *fmt, ...) {
    printf("  %s:%d: assertion failed: %s", file, line, expr);
    if (*fmt) {
        va_list ap;
        va_start(ap, fmt);
        printf(": ");
        vprintf(fmt, ap);
        va_end(ap);
    }
    printf("\n");
    fflush(stdout);
    longjmp(back, 1);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* 1 if fn returned, 0 if an assertion failed in it */
static int run_one(crl_fn fn) {
    if (setjmp(back)) return 0;
    fn();
    return 1;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : "*";
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        char full[256];
        snprintf(full, sizeof(full), "%s/%s", tests[i].suite, tests[i].name);
        if (fnmatch(filter, full, 0)) continue;
        double t0 = now_s();
        int ok = run_one(tests[i].fn);
        printf("[%s] %s::%s: (%.2fs)\n", ok ? "PASS" : "FAIL", tests[i].suite, tests[i].name,
               now_s() - t0);
        fflush(stdout);
        if (ok)
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
