/* criterion.h (lite) - the part of Criterion's API the engine suites use, for builds where the
 * real library is not at hand: `make test-arm64` compiles tests/unit/test_kernels.c,
 * test_engine.c and test_noalloc.c for ARM64 against this header and tests/lite/runner.c and
 * runs them under qemu-aarch64. Tests run one after another in one process; a failed assertion
 * prints its message and ends that test (longjmp back to the runner), as cr_skip_test ends it
 * as skipped. Test options such as
 * .timeout are accepted and ignored. */
#ifndef SN_CRITERION_LITE_H
#define SN_CRITERION_LITE_H

#include <stdio.h>
#include <string.h>

typedef void (*crl_fn)(void);
void crl_register(const char *suite, const char *name, crl_fn fn);
__attribute__((noreturn, format(printf, 1, 2))) void crl_skip(const char *fmt, ...);
__attribute__((noreturn, format(printf, 4, 5))) void
crl_fail(const char *file, int line, const char *expr, const char *fmt, ...);

#define Test(suite, name, ...)                                                                     \
    static void crl_##suite##_##name(void);                                                        \
    __attribute__((constructor)) static void crl_reg_##suite##_##name(void) {                      \
        crl_register(#suite, #name, crl_##suite##_##name);                                         \
    }                                                                                              \
    static void crl_##suite##_##name(void)

/* The optional message is a format string literal and its arguments: "" fmt pastes them (and
 * with no message the format is "", which GCC would warn about). */
#pragma GCC diagnostic ignored "-Wformat-zero-length"
#define cr_assert(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) crl_fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);                          \
    } while (0)
#define cr_assert_fail(...)               crl_fail(__FILE__, __LINE__, "cr_assert_fail", "" __VA_ARGS__)
#define cr_skip_test(...)                 crl_skip("" __VA_ARGS__)
#define cr_assert_eq(a, b, ...)           cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...)          cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_null(p, ...)            cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...)        cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, size, ...) cr_assert(!memcmp((a), (b), (size)), __VA_ARGS__)

#endif
