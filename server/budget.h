/* budget.h - the memory budget (config key memory_budget): request bodies in flight and the
 * decoders' buffers are reserved against it before they are allocated; what does not fit is
 * refused (503 overloaded, rejected{reason="memory"}). Bodies may take at most 3/4 of it, so
 * an admitted image can always be decoded. After a burst, freed memory is handed back to the
 * system (malloc_trim), and large buffers are mmap'd so that freeing them returns them. */
#ifndef SN_BUDGET_H
#define SN_BUDGET_H

/* Set the budget (bytes) and malloc's thresholds, start the trimming thread. Call once at
 * start. */
void sn_budget_init(long long bytes);
/* Reserve n bytes for a request body (<= 3/4 of the budget in all) or for decoding (the
 * whole budget). Returns 0, or -1 when it does not fit (nothing reserved). */
int sn_budget_reserve_body(long long n);
int sn_budget_reserve_decode(long long n);
/* Give back n reserved bytes. */
void sn_budget_release(long long n);
long long sn_budget_used(void);
long long sn_budget_limit(void);

/* sn_input_opts hooks (common/input.h) for the decoders. */
int sn_budget_decode_hook(void *ctx, long long n);
void sn_budget_release_hook(void *ctx, long long n);

#endif
