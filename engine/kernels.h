/* kernels.h - the compute kernels the forward pass is built from, as a table per ISA.
 *
 * Every SIMD kernel has a scalar twin here with the same arguments; tests check that they
 * agree on odd shapes. Activations are planar: channel c of a tensor starts at base + c*ld
 * and holds n images of H*W floats each, back to back (see engine/shufflenet.h). */
#ifndef SN_KERNELS_H
#define SN_KERNELS_H

#include <stddef.h>

/* One group of a 1x1 convolution as a GEMM with a fused epilogue:
 *   out[m][p] = act( bias[m] + sum_k w[m][k] * in[k][p] (+ res[m][p]) )
 * for m < M, k < K, p < P. act is ReLU when relu is set. res (row m at res + m*res_ld) may
 * alias out (in-place residual: each element is read before it is written). */
typedef struct {
    int K, M;
    size_t P;
    const float *in;
    size_t in_ld;
    const float *w;    /* layout chosen by the ISA's pack_pw (scalar: M x K row-major) */
    const float *bias; /* M */
    float *out;
    size_t out_ld;
    const float *res; /* NULL, or the residual */
    size_t res_ld;
    int relu;
    float *scratch; /* pw_scratch_size(M, K, P) floats for the kernel's own use */
} sn_pw_args;

/* Depthwise 3x3, pad 1, stride 1 or 2, bias fused, no activation. Input channel c of image i
 * is in[c*in_ld + i*H*W]; its output goes to channel dst[c] (the channel shuffle, for free):
 * out[dst[c]*out_ld + i*Ho*Wo]. */
typedef struct {
    int C, n, H, W, Ho, Wo, stride;
    const float *in;
    size_t in_ld;
    const float *w;    /* C x 9 */
    const float *bias; /* C */
    float *out;
    size_t out_ld;
    const int *dst; /* C entries; NULL = identity */
} sn_dw_args;

typedef struct {
    const char *name;
    /* Weight size in floats after packing an M x K matrix, and the packing itself. */
    size_t (*pw_packed_size)(int M, int K);
    void (*pack_pw)(const float *w, int M, int K, float *packed);
    void (*pw)(const sn_pw_args *a);
    /* Floats of scratch pw needs for an M x K GEMM over up to P columns (sn_pw_args.scratch;
     * 0: none). */
    size_t (*pw_scratch_size)(int M, int K, size_t P);
    void (*dw)(const sn_dw_args *a);
    /* AvgPool 3x3 stride 2 pad 1, divide by 9 (padding counted), C channels, n images. */
    void (*avgpool_s2)(const float *in, size_t in_ld, float *out, size_t out_ld, int C, int n,
                       int H, int W, int Ho, int Wo);
    /* Stem: conv 3x3 stride 2 pad 1 (3 -> C) + folded BN + ReLU, then maxpool 3x3 stride 2
     * pad 1, fused (the conv output never leaves a few rows of scratch). From n NCHW images of
     * S x S (image stride 3*S*S) into planar out (channel stride out_ld, image stride Po*Po);
     * Ho is the conv output size, Po the pooled one. w is C x 27 (the folded conv weight as
     * stored), bias C; scratch holds SN_STEM_SCRATCH(C, Ho, Po) floats. */
    void (*stem_pool)(const float *in, int n, int S, const float *w, const float *bias, int C,
                      float *out, size_t out_ld, int Ho, int Po, float *scratch);
    /* Global average pool: feat[i*C + c] = mean of channel c of image i. */
    void (*global_avgpool)(const float *in, size_t in_ld, int C, int n, int HW, float *feat);
    /* Fully connected: logits[i][o] = bias[o] + sum_c w[o][c] * feat[i][c]. bias may be
     * NULL. */
    void (*fc)(const float *feat, int n, int C, const float *w, const float *bias, int O,
               float *logits);
} sn_kernels;

/* Scratch floats of stem_pool: 27 tap rows and C conv rows of Ho, two pooled rows of Po per
 * channel (each row padded to 16 floats), and the weights rearranged per channel block; or, for
 * kernels that split input rows four ways (STEM_SPLIT), 65 split rows and 2 conv half-rows per
 * channel of Po (+ 16) in place of the first two. */
#define SN_STEM_PAD(n) (((size_t)(n) + 15) & ~(size_t)15)
#define SN_STEM_SCRATCH(C, Ho, Po)                                                                 \
    ((27 + (size_t)(C)) * SN_STEM_PAD(Ho) + 2 * (size_t)(C)*SN_STEM_PAD(Po) +                      \
     28 * SN_STEM_PAD(C) + (65 + 2 * (size_t)(C)) * SN_STEM_PAD(Po) + 16 * (size_t)(C))

extern const sn_kernels sn_kernels_scalar;
extern const sn_kernels sn_kernels_avx2;   /* only usable when the CPU has AVX2 + FMA */
extern const sn_kernels sn_kernels_avx512; /* only usable when the CPU has AVX-512 F/BW/VL/DQ */
extern const sn_kernels sn_kernels_neon;   /* ARM64 builds only (HWCAP_ASIMD) */
/* The table for the ISA in use (cpuid / HWCAP, or SHUFFLENET_ISA). */
const sn_kernels *sn_kernels_get(void);
/* A named table ("scalar", "avx2", "avx512", "neon") if this CPU and build support it, else
 * NULL. */
const sn_kernels *sn_kernels_by_name(const char *name);
/* Bytes of this core's level-1 data (level 1) or level-2 cache (level 2), read once from sysfs
 * (/sys/devices/system/cpu/cpu0/cache), else from sysconf (cpuid on x86); 256 KiB for an L2 and
 * 32 KiB for an L1 that neither reports. SHUFFLENET_L2_KB overrides the L2 (experiments). */
size_t sn_cache_size(int level);
/* Makes sn_kernels_get() return k from now on (models loaded afterwards are packed for it).
 * For tests and benchmarks comparing ISAs in one process; not thread-safe. */
void sn_kernels_force(const sn_kernels *k);

#endif
