/* postprocess.c - logits to probabilities and the top-k classes. */
#include "engine/shufflenet.h"

#include <math.h>

void sn_softmax(float *x, int n) {
    if (n <= 0) return;
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sum);
}

/* Partial selection: k passes over n values keeps this O(n*k) with no allocation; k is
 * small (top_k <= classes, typically 5). */
void sn_topk(const float *x, int n, int k, int *idx) {
    if (k > n) k = n;
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int t = 0; t < j && !taken; t++) taken = idx[t] == i;
            if (taken) continue;
            if (best < 0 || x[i] > x[best]) best = i;
        }
        idx[j] = best;
    }
}
