/* budget.c - the memory budget (budget.h): one atomic counter of reserved bytes, a
 * compare-and-swap reservation, and a thread that hands free heap memory back to the system
 * (malloc_trim) once a burst is over. */
#include "server/budget.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static long long limit_bytes = 512LL << 20;
static _Atomic long long used;
static _Atomic long long high; /* highest use since the last trim */

/* Twice a second: after a burst (use went past 1/8 of the budget) and once it is back under
 * 1/32, hand free heap pages back. Off the request path, so no request waits for it. */
static void *trimmer(void *arg) {
    (void)arg;
    struct timespec nap = {0, 500000000L};
    for (;;) {
        nanosleep(&nap, NULL);
        long long now = atomic_load(&used);
        if (atomic_load(&high) > limit_bytes / 8 && now < limit_bytes / 32) {
            atomic_store(&high, now);
            malloc_trim(0);
        }
    }
    return NULL;
}

void sn_budget_init(long long bytes) {
    if (bytes > 0) limit_bytes = bytes;
    /* A fixed mmap threshold: blocks of 2 MiB and more (large bodies) are mmap'd and go back
     * to the system when freed. glibc's default raises the threshold each time such a block
     * is freed, up to 32 MiB, after which 14 MB bodies came from the heap and stayed there
     * (~680 MB resident after a burst of 200 uploads). */
    mallopt(M_MMAP_THRESHOLD, 2 << 20);
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 << 10);
    if (pthread_create(&t, &a, trimmer, NULL) != 0) { /* then no trimming: not fatal */
    }
    pthread_attr_destroy(&a);
}

static int reserve(long long n, long long cap) {
    if (n < 0) n = 0;
    long long cur = atomic_load(&used);
    do {
        if (cur + n > cap) return -1;
    } while (!atomic_compare_exchange_weak(&used, &cur, cur + n));
    long long now = cur + n, h = atomic_load(&high);
    while (now > h && !atomic_compare_exchange_weak(&high, &h, now)) {
    }
    return 0;
}

int sn_budget_reserve_body(long long n) {
    return reserve(n, limit_bytes / 4 * 3);
}

int sn_budget_reserve_decode(long long n) {
    return reserve(n, limit_bytes);
}

void sn_budget_release(long long n) {
    if (n > 0) atomic_fetch_sub(&used, n);
}

long long sn_budget_used(void) {
    return atomic_load(&used);
}

long long sn_budget_limit(void) {
    return limit_bytes;
}

int sn_budget_decode_hook(void *ctx, long long n) {
    (void)ctx;
    return sn_budget_reserve_decode(n);
}

void sn_budget_release_hook(void *ctx, long long n) {
    (void)ctx;
    sn_budget_release(n);
}
