/* convert.h - PyTorch ShuffleNet v1 checkpoints -> the project's safetensors model file,
 * without torch.
 *
 * Input: a torch.save file (legacy pre-1.6 stream or zip), with or without a
 * {'state_dict': ...} wrapper (mmengine's {'meta': ..., 'state_dict': ...} too) and with or
 * without a 'module.' prefix, in one of two key layouts:
 *   megvii      first_conv.{0,1}, features.N.branch_main_1.{0,1,3,4},
 *               features.N.branch_main_2.{0,1}, classifier.0.weight
 *   mmpretrain  backbone.conv1.{conv,bn},
 *               backbone.layers.S.U.{g_conv_1x1_compress,depthwise_conv3x3_bn,
 *               g_conv_1x1_expand}.{conv,bn}, head.fc.{weight,bias}
 * The architecture (groups, stem and stage channels, stage repeats, classes, FC bias) is
 * inferred from the tensor shapes and checked for consistency; the output holds the canonical
 * tensor names of engine/shufflenet.h with BN unfolded, and every metadata key listed there.
 * Shuffle order follows the layout (megvii -> "megvii", mmpretrain -> "paper"), position is
 * "after_dw" for both; preprocessing follows the layout's preset unless overridden. */
#ifndef SN_CONVERT_H
#define SN_CONVERT_H

#include <stddef.h>

/* Options; a zeroed struct means "everything from the checkpoint and its layout". String
 * fields are NULL for "not given", integers 0. */
typedef struct {
    const char *preset;        /* preprocessing preset: "megvii" | "mmpretrain" (NULL: layout) */
    int synthetic;             /* 0: auto (synthetic if the checkpoint's meta says so, else
                                  trained), 1: mark synthetic, -1: mark trained */
    const char *shuffle_order; /* "megvii" | "paper" (NULL: from the layout) */
    const char *channel_order; /* "bgr" | "rgb" */
    const char *resize;        /* "opencv_bilinear" | "pillow_bilinear" */
    int resize_short;          /* short side target, e.g. 256 */
    const char *long_side;     /* "round" | "floor" */
    int crop;                  /* centre crop, also the model's input size, e.g. 224 */
    const char *mean;          /* "m0,m1,m2" in channel order, 0..255 scale */
    const char *std;           /* "s0,s1,s2" */
    const char *source;        /* shufflenet.source (NULL: input file name, layout, container) */
} sn_convert_opts;

/* What was converted, for the caller to print. */
typedef struct {
    char layout[16];   /* "megvii" | "mmpretrain" */
    char container[8]; /* "legacy" | "zip" */
    int groups;
    int stem_channels;
    int stage_channels[3];
    int stage_repeats[3];
    int num_classes;
    int fc_bias;
    int synthetic;
    int ntensors;   /* tensors written */
    char width[16]; /* shufflenet.width as written */
} sn_convert_summary;

/* Convert checkpoint `in` to model file `out` (written atomically via out.tmp).
 * opts and summary may be NULL. Returns 0, or -1 with one line in err naming the input
 * file and the problem (SN_ERRLEN / 256 bytes are enough). Nothing is written on failure. */
int sn_convert_checkpoint(const char *in, const char *out, const sn_convert_opts *opts,
                          sn_convert_summary *summary, char *err, size_t errlen);

/* Usage text for `shufflenet convert --help`: the positional arguments and one line per
 * option, spelled as the CLI flags that map onto sn_convert_opts (--preset, --synthetic,
 * --trained, --shuffle-order, --channel-order, --resize, --resize-short, --long-side,
 * --crop, --mean, --std, --source). */
const char *sn_convert_usage(void);

#endif
