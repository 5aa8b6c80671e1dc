/* runner.c - the test runner behind tests/lite/criterion/criterion.h: runs every registered
 * test (or those whose "suite/name" matches the glob in argv[1]) in registration order, prints
 * one line per test and closes with "N passed, N failed, N skipped". Exit status 1 if any
 * failed. */
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

void crl_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("  ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    longjmp(back, 2);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* 0 if fn returned, 1 if an assertion failed in it, 2 if it skipped itself */
static int run_one(crl_fn fn) {
    int r = setjmp(back);
    if (r) return r;
    fn();
    return 0;
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : "*";
    int count[3] = {0, 0, 0}; /* passed, failed, skipped */
    for (int i = 0; i < ntests; i++) {
        char full[256];
        snprintf(full, sizeof(full), "%s/%s", tests[i].suite, tests[i].name);
        if (fnmatch(filter, full, 0)) continue;
        double t0 = now_s();
        int r = run_one(tests[i].fn);
        static const char *word[3] = {"PASS", "FAIL", "SKIP"};
        printf("[%s] %s::%s: (%.2fs)\n", word[r], tests[i].suite, tests[i].name, now_s() - t0);
        fflush(stdout);
        count[r]++;
    }
    printf("%d passed, %d failed, %d skipped\n", count[0], count[1], count[2]);
    return count[1] ? 1 : 0;
}
