/* test_loadgen_hist.c - the load generator's log-linear histogram: bucket layout, relative
 * error bound, quantiles against exact sorted data. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "bench/loadgen_hist.h"

static sn_hist *new_hist(void) {
    sn_hist *h = malloc(sizeof *h);
    cr_assert(h);
    sn_hist_init(h);
    return h;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Exact quantile with the same rank rule as sn_hist_quantile: the ceil(q*n)-th smallest. */
static uint64_t exact_quantile(const uint64_t *sorted, size_t n, double q) {
    size_t rank = (size_t)ceil(q * (double)n - 1e-9);
    if (rank < 1) rank = 1;
    return sorted[rank - 1];
}

Test(loadgen_hist, buckets_are_contiguous_and_contain_their_values) {
    for (unsigned i = 1; i < SN_HIST_BUCKETS; i++) {
        cr_assert_eq(sn_hist_bucket_low(i), sn_hist_bucket_high(i - 1) + 1, "gap before bucket %u",
                     i);
    }
    cr_assert_eq(sn_hist_bucket_high(SN_HIST_BUCKETS - 1), UINT64_MAX);
    uint64_t s = 12345;
    for (int k = 0; k < 100000; k++) {
        uint64_t v = rng_next(&s) >> (rng_next(&s) % 64);
        unsigned i = sn_hist_index(v);
        cr_assert_lt(i, SN_HIST_BUCKETS);
        cr_assert(sn_hist_bucket_low(i) <= v && v <= sn_hist_bucket_high(i), "value %llu",
                  (unsigned long long)v);
    }
}

Test(loadgen_hist, small_values_are_exact_and_widths_bound_error) {
    for (uint64_t v = 0; v < 2 * SN_HIST_SUB; v++) {
        unsigned i = sn_hist_index(v);
        cr_assert_eq(sn_hist_bucket_low(i), v);
        cr_assert_eq(sn_hist_bucket_high(i), v);
    }
    for (unsigned i = 2 * SN_HIST_SUB; i < SN_HIST_BUCKETS; i++) {
        double width = (double)(sn_hist_bucket_high(i) - sn_hist_bucket_low(i) + 1);
        cr_assert_leq(width / (double)sn_hist_bucket_low(i), 1.0 / SN_HIST_SUB + 1e-12,
                      "bucket %u too wide", i);
    }
}

static void check_quantiles(const uint64_t *vals, size_t n) {
    sn_hist *h = new_hist();
    uint64_t *sorted = malloc(n * sizeof *sorted);
    cr_assert(sorted);
    for (size_t i = 0; i < n; i++) sn_hist_record(h, vals[i]), sorted[i] = vals[i];
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    cr_assert_eq(h->count, n);
    cr_assert_eq(h->min, sorted[0]);
    cr_assert_eq(h->max, sorted[n - 1]);
    const double qs[] = {0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999};
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        double exact = (double)exact_quantile(sorted, n, qs[k]);
        double got = (double)sn_hist_quantile(h, qs[k]);
        cr_assert_leq(fabs(got - exact), 0.01 * exact + 0.5, "q=%g exact %.0f got %.0f", qs[k],
                      exact, got);
    }
    cr_assert_eq(sn_hist_quantile(h, 1.0), sorted[n - 1]);
    cr_assert_eq(sn_hist_quantile(h, 0.0), sorted[0]);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)vals[i];
    cr_assert_float_eq(sn_hist_mean(h), sum / (double)n, 1e-6 * sum / (double)n);
    free(sorted);
    free(h);
}

Test(loadgen_hist, quantiles_within_one_percent_uniform) {
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof *v), s = 99;
    cr_assert(v);
    for (size_t i = 0; i < n; i++) v[i] = 1000 + rng_next(&s) % 50000000; /* 1 us .. 50 ms */
    check_quantiles(v, n);
    free(v);
}

Test(loadgen_hist, quantiles_within_one_percent_heavy_tail) {
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof *v), s = 7;
    cr_assert(v);
    for (size_t i = 0; i < n; i++) { /* log-uniform over 100 ns .. 100 s */
        double u = (double)(rng_next(&s) >> 11) / 9007199254740992.0;
        v[i] = (uint64_t)(100.0 * pow(1e9, u));
    }
    check_quantiles(v, n);
    free(v);
}

Test(loadgen_hist, bimodal_stall_shows_in_the_tail) {
    sn_hist *h = new_hist();
    for (int i = 0; i < 980; i++) sn_hist_record(h, 20000000);  /* 20 ms */
    for (int i = 0; i < 20; i++) sn_hist_record(h, 1000000000); /* 1 s */
    cr_assert_float_eq((double)sn_hist_quantile(h, 0.5), 20e6, 20e6 * 0.01);
    cr_assert_float_eq((double)sn_hist_quantile(h, 0.98), 20e6, 20e6 * 0.01);
    cr_assert_float_eq((double)sn_hist_quantile(h, 0.99), 1e9, 1e9 * 0.01);
    cr_assert_eq(sn_hist_quantile(h, 0.999), 1000000000);
    free(h);
}

Test(loadgen_hist, empty) {
    sn_hist *a = new_hist();
    cr_assert_eq(sn_hist_quantile(a, 0.5), 0);
    cr_assert_eq(sn_hist_mean(a), 0.0);
    free(a);
}
