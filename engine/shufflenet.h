/* shufflenet.h - public API of the ShuffleNet v1 engine.
 *
 * The engine is a plain library: it loads a model from a safetensors file, creates engine
 * instances (one per thread) with a workspace planned for a maximum batch, and runs batches
 * of preprocessed float tensors to logits. It knows nothing of HTTP, JSON or threads.
 *
 * Threading: a loaded sn_model is read-only after sn_model_load() and may be shared by any
 * number of threads. An sn_engine is single-threaded: one instance per worker thread.
 *
 * Memory: everything is allocated by sn_model_load() (folded, packed weights) and
 * sn_engine_create() (the activation workspace). sn_engine_run() never allocates.
 *
 * Layout. The public input is NCHW float32, N images of [3][224][224], already preprocessed
 * (see sn_preprocess below); the output is [N][num_classes] logits. Inside, activations are
 * planar and channel-major with the batch inside each plane: a tensor of C channels for n
 * images of HxW is [C][n][H*W]. A grouped 1x1 convolution is then one GEMM per group,
 * out[Cout/g][n*HW] = W[Cout/g][Cin/g] x in[Cin/g][n*HW], and the batch simply widens the
 * GEMM; the depthwise 3x3 walks each (channel, image) plane. Every kernel takes a channel
 * stride, so a stage can be run on a slice of the batch (batch tiling keeps the working set
 * in cache) and a stride-2 unit writes its two halves straight into their concat slices.
 *
 * Channel shuffle costs no copy: the depthwise conv writes its output channel c to plane
 * dst(c) of the shuffled tensor, which the following grouped 1x1 reads as contiguous groups.
 * Models that shuffle before the depthwise conv are normalised at load by permuting the
 * depthwise weights and BN (docs/DESIGN.md, "Shuffle").
 *
 * Model file format (safetensors, float32 tensors, BN stored unfolded, folded at load):
 *   __metadata__ (all values are strings):
 *     format                      "shufflenet-v1"
 *     shufflenet.groups           "1".."8" (any g >= 1 dividing the grouped channel counts)
 *     shufflenet.stem_channels    "24"
 *     shufflenet.stage_channels   "240,480,960"   stage 2,3,4 output channels
 *     shufflenet.stage_repeats    "4,8,4"
 *     shufflenet.num_classes      "1000"
 *     shufflenet.fc_bias          "true" | "false"
 *     shufflenet.shuffle_order    "paper" | "megvii"
 *     shufflenet.shuffle_position "after_dw" | "before_dw"
 *     shufflenet.width            "1.0" (informational)
 *     shufflenet.weights          "trained" | "synthetic"
 *     shufflenet.source           free text (where the weights came from)
 *     shufflenet.input_size       "224"
 *     preprocess.channel_order    "bgr" | "rgb"
 *     preprocess.resize           "opencv_bilinear" | "pillow_bilinear"
 *     preprocess.resize_short     "256"
 *     preprocess.long_side        "round" (int(R*L/S+0.5)) | "floor" (int(R*L/S))
 *     preprocess.crop             "224"
 *     preprocess.mean             "0,0,0"   per channel, in channel_order, on the 0..255 scale
 *     preprocess.std              "1,1,1"
 *   tensors (U = 0 .. sum(stage_repeats)-1, units numbered across stages):
 *     stem.conv.weight            [C0, 3, 3, 3]
 *     stem.bn.{weight,bias,running_mean,running_var}          [C0]
 *     units.U.pw1.weight          [mid, cin/g1, 1, 1]   g1 = 1 for unit 0, else g
 *     units.U.pw1.bn.*            [mid]
 *     units.U.dw.weight           [mid, 1, 3, 3]
 *     units.U.dw.bn.*             [mid]
 *     units.U.pw2.weight          [outs, mid/g, 1, 1]   outs = cout - cin in stride-2 units
 *     units.U.pw2.bn.*            [outs]
 *     fc.weight                   [num_classes, C_last]
 *     fc.bias                     [num_classes]         only when fc_bias is "true"
 *   mid = stage output channels / 4. BN eps is 1e-5.
 */
#ifndef SN_SHUFFLENET_H
#define SN_SHUFFLENET_H

#include <stddef.h>
#include <stdint.h>

#define SN_MAX_STAGES 3
#define SN_ERRLEN     256

typedef enum { SN_SHUFFLE_PAPER = 0, SN_SHUFFLE_MEGVII = 1 } sn_shuffle_order;
typedef enum { SN_SHUFFLE_AFTER_DW = 0, SN_SHUFFLE_BEFORE_DW = 1 } sn_shuffle_position;
typedef enum { SN_RESIZE_OPENCV_BILINEAR = 0, SN_RESIZE_PILLOW_BILINEAR = 1 } sn_resize_mode;

/* How an 8-bit image becomes the network input. Part of the model. */
typedef struct {
    int rgb; /* 1: channel 0 is R (RGB); 0: channel 0 is B (BGR) */
    sn_resize_mode resize;
    int resize_short; /* short side is resized to this (256) */
    int long_round;   /* 1: long = int(R*L/S + 0.5); 0: long = int(R*L/S) */
    int crop;         /* centre crop size (224), must equal the model's input size */
    float mean[3];    /* per network input channel, 0..255 scale */
    float std[3];
} sn_preprocess;

typedef struct {
    int groups;
    int stem_channels;
    int num_stages; /* always 3 for ShuffleNet v1 */
    int stage_channels[SN_MAX_STAGES];
    int stage_repeats[SN_MAX_STAGES];
    int num_units;
    int num_classes;
    int fc_bias;
    sn_shuffle_order order;
    sn_shuffle_position position; /* as stored in the file (the engine normalises) */
    float width;
    int synthetic; /* 1 when shufflenet.weights == "synthetic" */
    int input_size;
    char source[160];
    long long macs;   /* multiply-adds of one image: convs + FC, BN folded */
    long long params; /* learnable parameters as stored (convs, BN affine, FC) */
    sn_preprocess pre;
} sn_model_info;

typedef struct sn_model sn_model;
typedef struct sn_engine sn_engine;

/* Load and validate a model file. On failure returns NULL and writes one line naming the
 * file and the problem into err (errlen bytes, SN_ERRLEN is enough). */
sn_model *sn_model_load(const char *path, char *err, size_t errlen);
/* The same from a safetensors file already in memory (copied); name is used in messages. */
sn_model *sn_model_load_memory(const uint8_t *buf, size_t len, const char *name, char *err,
                               size_t errlen);
const sn_model_info *sn_model_info_of(const sn_model *m);
void sn_model_free(sn_model *m);

/* Create an engine instance able to run up to max_batch images per call. */
sn_engine *sn_engine_create(const sn_model *m, int max_batch, char *err, size_t errlen);
int sn_engine_max_batch(const sn_engine *e);

/* Run n images (1 <= n <= max_batch). input: n x [3][S][S] float32 (S = input_size),
 * logits: n x [num_classes]. Returns 0, or -1 if n is out of range. Never allocates. */
int sn_engine_run(sn_engine *e, const float *input, int n, float *logits);
/* The same, image i read from inputs[i] (each 3 x S x S float32): the server preprocesses
 * each request into its own buffer and runs a batch without gathering them first. */
int sn_engine_run_ptrs(sn_engine *e, const float *const *inputs, int n, float *logits);
void sn_engine_free(sn_engine *e);

/* Kernel set in use ("scalar", "avx2", "avx512", "neon"); chosen from cpuid (x86) or HWCAP
 * (ARM64) at first use, SHUFFLENET_ISA=scalar|avx2|avx512|neon forces one. */
const char *sn_isa_name(void);

/* In-place softmax over n values, numerically stable. */
void sn_softmax(float *x, int n);
/* Indices of the k largest values of x[0..n), best first (ties: lower index first). */
void sn_topk(const float *x, int n, int k, int *idx);

#endif
