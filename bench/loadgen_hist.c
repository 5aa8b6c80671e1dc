/* loadgen_hist.c - log-linear latency histogram (see loadgen_hist.h).
 *
 * Index layout: a value v with highest set bit b gets shift s = max(0, b - SUB_BITS); its
 * index is s * SUB + (v >> s). For s = 0 that is v itself (exact, 0 .. 2*SUB-1); for s >= 1
 * (v >> s) lies in [SUB, 2*SUB), so bucket widths double every SUB buckets. */
#include "bench/loadgen_hist.h"

#include <math.h>
#include <string.h>

static unsigned hist_shift(uint64_t v) {
    if (v < 2 * (uint64_t)SN_HIST_SUB) return 0;
    unsigned b = 63u - (unsigned)__builtin_clzll(v);
    return b - SN_HIST_SUB_BITS;
}

unsigned sn_hist_index(uint64_t v) {
    unsigned s = hist_shift(v);
    return s * SN_HIST_SUB + (unsigned)(v >> s);
}

uint64_t sn_hist_bucket_low(unsigned index) {
    if (index < 2 * SN_HIST_SUB) return index;
    unsigned s = index / SN_HIST_SUB - 1;
    uint64_t sub = index - s * SN_HIST_SUB;
    return sub << s;
}

uint64_t sn_hist_bucket_high(unsigned index) {
    if (index < 2 * SN_HIST_SUB) return index;
    unsigned s = index / SN_HIST_SUB - 1;
    return sn_hist_bucket_low(index) + ((uint64_t)1 << s) - 1;
}

void sn_hist_init(sn_hist *h) {
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void sn_hist_record(sn_hist *h, uint64_t v) {
    h->buckets[sn_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min) h->min = v;
    if (v > h->max) h->max = v;
}

uint64_t sn_hist_quantile(const sn_hist *h, double q) {
    if (h->count == 0) return 0;
    if (q <= 0) return h->min;
    if (q >= 1) return h->max;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count - 1e-9);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < SN_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t lo = sn_hist_bucket_low(i), hi = sn_hist_bucket_high(i);
            uint64_t mid = lo + (hi - lo) / 2;
            if (mid < h->min) mid = h->min;
            if (mid > h->max) mid = h->max;
            return mid;
        }
    }
    return h->max;
}

double sn_hist_mean(const sn_hist *h) {
    return h->count ? h->sum / (double)h->count : 0.0;
}
