/* loadgen_hist.h - log-linear latency histogram for the load generator (HdrHistogram-style).
 *
 * Values are unsigned 64-bit integers (the load generator records nanoseconds). Each power of
 * two is split into SN_HIST_SUB linear sub-buckets, so any recorded value is known to within
 * 1/SN_HIST_SUB of itself (< 0.8%); values below 2*SN_HIST_SUB are exact. Quantiles report the
 * middle of the bucket, clamped to the exact recorded min and max. */
#ifndef SN_LOADGEN_HIST_H
#define SN_LOADGEN_HIST_H

#include <stdint.h>

#define SN_HIST_SUB_BITS 7
#define SN_HIST_SUB      (1u << SN_HIST_SUB_BITS)
/* Largest shift is 63 - SN_HIST_SUB_BITS; indexes stop below (shift + 2) * SN_HIST_SUB. */
#define SN_HIST_BUCKETS ((64 - SN_HIST_SUB_BITS + 1) * SN_HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t min, max;
    double sum;
    uint64_t buckets[SN_HIST_BUCKETS];
} sn_hist;

void sn_hist_init(sn_hist *h);
void sn_hist_record(sn_hist *h, uint64_t value);
/* Value at quantile q in [0, 1]: the smallest bucket holding at least ceil(q * count) values,
 * reported as its midpoint. Returns 0 for an empty histogram. */
uint64_t sn_hist_quantile(const sn_hist *h, double q);
double sn_hist_mean(const sn_hist *h);

/* Bucket arithmetic, exposed for the unit tests. */
unsigned sn_hist_index(uint64_t value);
uint64_t sn_hist_bucket_low(unsigned index);
uint64_t sn_hist_bucket_high(unsigned index); /* inclusive */

#endif
