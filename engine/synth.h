/* synth.h - deterministic synthetic ShuffleNet v1 weights for any group count and width. */
#ifndef SN_SYNTH_H
#define SN_SYNTH_H

#include <stddef.h>
#include <stdint.h>

/* Channels for groups g and width w: stem 24 (fixed, as the peers' reference), stage widths
 * make_divisible(Table1_1x[g] * w, 4*g). Returns 0, or -1 if g has no Table 1 column. */
int sn_synth_channels(int g, double width, int *stem, int ch[3]);
/* Writes a model file with paper shuffle order, shuffle before the depthwise conv (paper
 * Fig. 2), FC bias, megvii-style preprocessing, `shufflenet.weights` = "synthetic". */
int sn_synth_model(int g, double width, uint64_t seed, const char *out, char *err, size_t errlen);

#endif
