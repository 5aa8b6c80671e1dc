/* test_noalloc.c - sn_engine_run and sn_engine_run_ptrs never allocate: malloc/calloc/realloc/free
 * are wrapped for this test binary (glibc lets the executable define them; they forward to
 * __libc_*) and counted while a run is in progress (kernels of this CPU, or SHUFFLENET_ISA). Under
 * ASan the sanitizer owns malloc, so the check is skipped there (the plain build runs it). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/kernels.h"
#include "engine/shufflenet.h"
#include "engine/synth.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SN_NO_WRAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SN_NO_WRAP 1
#endif
#endif

#ifndef SN_NO_WRAP
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static _Thread_local volatile int counting;
static _Thread_local volatile long calls; /* volatile: GCC assumes malloc touches no globals */

void *malloc(size_t n) {
    if (counting) calls++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    if (counting) calls++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    if (counting) calls++;
    return __libc_realloc(p, n);
}
void free(void *p) {
    if (counting && p) calls++;
    __libc_free(p);
}

Test(noalloc, engine_run_allocates_nothing) {
    char path[128], err[SN_ERRLEN];
    snprintf(path, sizeof(path), "/tmp/sn_noalloc_%d.safetensors", (int)getpid());
    cr_assert_eq(sn_synth_model(8, 0.25, 3, path, err, sizeof(err)), 0, "%s", err);
    sn_model *m = sn_model_load(path, err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    const sn_model_info *I = sn_model_info_of(m);
    const int B = 5;
    sn_engine *e = sn_engine_create(m, B, err, sizeof(err));
    cr_assert_not_null(e, "%s", err);
    size_t isz = 3 * (size_t)I->input_size * I->input_size;
    float *x = calloc(isz * B, sizeof(float)), *l = calloc((size_t)B * I->num_classes, 4);
    for (size_t i = 0; i < isz * B; i++) x[i] = (float)(i % 251);
    for (int n = 1; n <= B; n++) {
        calls = 0;
        counting = 1;
        int rc = sn_engine_run(e, x, n, l);
        counting = 0;
        cr_assert_eq(rc, 0);
        cr_assert_eq(calls, 0, "sn_engine_run(n=%d) made %ld allocator calls", n, calls);
        const float *in[5];
        for (int i = 0; i < n; i++) in[i] = x + (size_t)(n - 1 - i) * isz;
        calls = 0;
        counting = 1;
        rc = sn_engine_run_ptrs(e, in, n, l);
        counting = 0;
        cr_assert_eq(rc, 0);
        cr_assert_eq(calls, 0, "sn_engine_run_ptrs(n=%d) made %ld allocator calls", n, calls);
    }
    /* The counter itself works: an allocation inside the window is seen. */
    calls = 0;
    counting = 1;
    void *volatile probe = malloc(16); /* volatile: the pair must not be optimised away */
    free(probe);
    counting = 0;
    cr_assert_eq(calls, 2, "the allocation counter saw %ld calls", calls);
    free(x);
    free(l);
    sn_engine_free(e);
    sn_model_free(m);
    unlink(path);
}
#else
Test(noalloc, engine_run_allocates_nothing) {
    cr_skip_test("SKIP: allocation counting runs in the non-sanitizer build");
}
#endif
