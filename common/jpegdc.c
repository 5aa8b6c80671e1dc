/* jpegdc.c - baseline JPEG decoders for the two cases where libjpeg does work nobody reads
 * (jpegdc.h): scale 1/8 (fast mode) and full scale with only some rows and columns read
 * (exact mode on big photos).
 *
 * Phase 1 entropy-decodes every block of the scan. At 1/8 each block becomes one sample,
 * DC / 8 with libjpeg's rounding and range limit, in planes at the 1/8 scale; its AC codes
 * are only parsed, several at a time: a 12-bit lookup gives how many bits a run of complete
 * (code + extra bits) AC symbols takes, how far they move along the zigzag and whether the
 * run ends in EOB. At 1/8 the scan is one branch-free state machine over those lookups
 * (skip_scan: the DC and AC tables alternate by conditional moves, the DC differences are
 * resolved after it). At full scale the blocks under a read row and a read column are decoded
 * whole (one lookup per symbol and its value) and go through libjpeg's ISLOW IDCT at the read
 * rows only (as a matrix product, bit for bit), into compact planes of the read samples; the
 * other blocks are skipped as at 1/8. Phase 2 upsamples the way libjpeg does at that scale
 * (box at 1/8; its fancy triangle filters at full scale), converts YCbCr to RGB with
 * libjpeg's fixed-point tables and hands out the rows the caller reads. Any fault (bad table,
 * bad code, a marker or the file's end in the wrong place, leftover bytes libjpeg would warn
 * about, coefficients out of the bounds the IDCT promises) declines in phase 1, before a row
 * is out.
 *
 * The entropy-coded bytes are first copied out without their stuffing (FF 00 -> FF) and split
 * at restart markers, so the bit reader refills branch-free from a padded buffer. */
#include "common/jpegdc.h"

#include <stdlib.h>
#include <string.h>

#include "common/resize.h" /* sn_rs_have_avx2: one switch (SN_NO_AVX2) for common/'s kernels */

#define LOOK_BITS  9   /* canonical lookahead: codes up to 9 bits in one lookup */
#define FAST_BITS  12  /* multi-symbol / DC+extra lookup width */
#define PAD        512 /* zero bytes after the data: a block reads at most ~250 bytes */
#define MAX_BLOCKS 10  /* libjpeg's D_MAX_BLOCKS_IN_MCU */
#define SYM1_BYTES ((1 << FAST_BITS) * sizeof(int32_t))
#define FAST_BYTES ((1 << FAST_BITS) * sizeof(uint16_t))
#define SM_ISDC    (1u << 14)
#define SM_EOB     (1u << 15)

typedef struct {
    uint16_t look[1 << LOOK_BITS]; /* (length << 8) | symbol; 0: longer code */
    int32_t maxcode[18];           /* largest code of each length, -1: none */
    int32_t valoff[17];            /* symbol index of code c of length l: c + valoff[l] */
    uint8_t val[256];
    /* Bits used in bits 0-4. DC (code + extra bits <= 12): size << 5 | SM_ISDC. AC: a run of
     * whole symbols in the 12 bits, or else one symbol whose code fits, with extra bits past
     * them (up to 27 bits used): zigzag advance (capped at 63) << 5 | SM_EOB if it ends the
     * block. 0: take the one-symbol path. */
    uint16_t *fast; /* 1 << FAST_BITS entries of 16 bits (the hot tables of 3 components fit
                     * L1), all of a scan's in one block (SM_TAB) */
    /* AC, for the full-scale decoder (else NULL): one whole symbol and its extra bits in the
     * window: bits used | EOB << 7 | run << 8 | extended value << 16. 0: the one-symbol path. */
    int32_t *sym1;
} htab;

static inline int extend(int v, int s);

/* Canonical code tables with libjpeg's validity checks (jpeg_make_d_derived_tbl). ac: 0 DC,
 * 1 AC (and t->sym1 when the caller gave it one). */
static int build(htab *t, const JHUFF_TBL *h, int ac) {
    if (!h) return -1;
    int count = 0;
    for (int l = 1; l <= 16; l++) count += h->bits[l];
    if (count > 256) return -1;
    memset(t->look, 0, sizeof t->look);
    int code = 0, k = 0;
    for (int l = 1; l <= 16; l++) {
        t->valoff[l] = k - code;
        t->maxcode[l] = h->bits[l] ? code + h->bits[l] - 1 : -1;
        for (int i = 0; i < h->bits[l]; i++, code++, k++) {
            if (code >= 1 << l) return -1; /* over-subscribed: before it indexes past look[] */
            if (!ac && h->huffval[k] > 15) return -1;
            if (l <= LOOK_BITS)
                for (int j = 0; j < 1 << (LOOK_BITS - l); j++)
                    t->look[(code << (LOOK_BITS - l)) | j] = (uint16_t)(l << 8 | h->huffval[k]);
        }
        if (code >= 1 << l) return -1; /* over-subscribed */
        code <<= 1;
    }
    t->maxcode[17] = 0x7fffffff;
    memcpy(t->val, h->huffval, 256);
    for (int i = 0; i < 1 << FAST_BITS; i++) {
        uint32_t e = 0;
        if (!ac) {
            int le = t->look[i >> (FAST_BITS - LOOK_BITS)];
            int l = le >> 8, s = le & 15;
            if (le && l + s <= FAST_BITS) e = (uint32_t)(l + s) | (uint32_t)s << 5 | SM_ISDC;
        } else {
            int pos = 0, adv = 0, eob = 0;
            while (pos < FAST_BITS) {
                int w = (i << pos) & ((1 << FAST_BITS) - 1);
                int le = t->look[w >> (FAST_BITS - LOOK_BITS)];
                int l = le >> 8, r = (le >> 4) & 15, s = le & 15;
                if (!le || pos + l + s > FAST_BITS) break;
                pos += l + s;
                if (!s && r != 15) { /* EOB (libjpeg ends the block on any r/0 but ZRL) */
                    eob = 1;
                    break;
                }
                adv += s ? r + 1 : 16;
                if (adv >= 64) break;
            }
            if (!pos) { /* one symbol whose extra bits do not fit: used, not read */
                int l = 1, code = i >> (FAST_BITS - 1);
                while (l < FAST_BITS && code > t->maxcode[l]) code = i >> (FAST_BITS - ++l);
                if (code <= t->maxcode[l]) {
                    int sym = t->val[(code + t->valoff[l]) & 255], r = sym >> 4, sz = sym & 15;
                    pos = l + sz;
                    adv = sz ? r + 1 : r == 15 ? 16 : 0;
                    eob = !sz && r != 15;
                }
            }
            if (pos) e = (uint32_t)pos | (uint32_t)(adv < 63 ? adv : 63) << 5 | (eob ? SM_EOB : 0);
            int le = t->look[i >> (FAST_BITS - LOOK_BITS)];
            int l = le >> 8, r = (le >> 4) & 15, sz = le & 15;
            int32_t e1 = 0;
            if (t->sym1 && le && l + sz <= FAST_BITS) {
                if (sz) {
                    int v = (i >> (FAST_BITS - l - sz)) & ((1 << sz) - 1);
                    e1 = (l + sz) | r << 8 | (int32_t)((uint32_t)extend(v, sz) << 16);
                } else if (r == 0) {
                    e1 = l | 1 << 7; /* EOB */
                }
            }
            if (t->sym1) t->sym1[i] = e1;
        }
        t->fast[i] = (uint16_t)e;
    }
    return 0;
}

/* ---- bits ------------------------------------------------------------------------------ */

/* The bit reader lives in three locals of the decoding loop, b (valid bits at the top), n (how
 * many) and p (next byte to load), so that they stay in registers. REFILL tops up to 56+ bits
 * branch-free: it loads 8 bytes and keeps the whole ones (the rest are the next bytes in their
 * right places and are loaded again next time). */
#define REFILL()                                                                                   \
    do {                                                                                           \
        uint64_t v_;                                                                               \
        memcpy(&v_, p, 8);                                                                         \
        b |= __builtin_bswap64(v_) >> n;                                                           \
        p += (63 - n) >> 3;                                                                        \
        n |= 56;                                                                                   \
    } while (0)
#define DROP(l)                                                                                    \
    do {                                                                                           \
        b <<= (l);                                                                                 \
        n -= (l);                                                                                  \
    } while (0)

/* The symbol at the top of b for a code longer than LOOK_BITS (or any, when look[] has no
 * entry), its length in *len; -1 for a code the table lacks. */
static int slow_symbol(uint64_t b, const htab *t, int *len) {
    int le = t->look[b >> (64 - LOOK_BITS)];
    if (le) {
        *len = le >> 8;
        return le & 255;
    }
    int l = LOOK_BITS + 1;
    int32_t code = (int32_t)(b >> (64 - l));
    while (code > t->maxcode[l]) {
        if (++l > 16) return -1;
        code = (int32_t)(b >> (64 - l));
    }
    *len = l;
    return t->val[(code + t->valoff[l]) & 255];
}

/* The signed value of s extra bits v (s >= 1), branch-free: the sign is data, a branch on it
 * would be mispredicted half the time. */
static inline int extend(int v, int s) {
    return v + ((v - (1 << (s - 1))) >> 31 & (1 - (1 << s)));
}

/* libjpeg's post-IDCT range limit: x + 128 clamped, indexed by x & 1023 (jdmaster.c). */
static inline uint8_t idct_limit(int64_t x) {
    unsigned u = (unsigned)x & 1023;
    return (uint8_t)(u < 128 ? u + 128 : u < 512 ? 255 : u < 896 ? 0 : u - 896);
}

#define DESCALE(x, n) (((x) + ((int64_t)1 << ((n)-1))) >> (n))

/* ---- the scan ---------------------------------------------------------------------------- */

typedef struct {
    int h, v;       /* sampling factors in the MCU (1, 1 for a single component) */
    int hx, vx;     /* upsampling factors to the output */
    int pw, ph;     /* 1/8: plane size in samples */
    uint8_t *plane; /* 1/8: samples at the output scale, MCU-padded; full: the read samples */
    const htab *dc, *ac;
    int16_t q[64]; /* natural order, as libjpeg's ISLOW_MULT_TYPE */
    int pred;
    /* full scale only */
    int up;                 /* how libjpeg upsamples it (UP_*) */
    int cw, ch;             /* downsampled size (libjpeg's downsampled_width/height) */
    int bw, bh;             /* blocks in the MCU grid */
    uint8_t *rowm, *colm;   /* per block row / column: which of its 8 sample lines are read */
    int32_t *rrank, *crank; /* sample row / column -> its line in the compact plane, or -1 */
    int nr, ncl;            /* compact plane size */
} comp;

/* libjpeg-turbo's choice of IDCT size for component c at scale 1/8 (jdmaster.c): doubled
 * while the sampling ratio still leaves a factor 2 in both directions, so that 4:2:0 chroma
 * gets a 2x2 IDCT instead of upsampling. This decoder takes every component at its DC (1x1);
 * where libjpeg would use 2x2, its chroma is coarser than libjpeg's (sn_jdc_same_as_libjpeg). */
static int dct_size(const struct jpeg_decompress_struct *ci, const jpeg_component_info *c) {
    int ss = 1;
    while (ss < 8 && ci->max_h_samp_factor % (c->h_samp_factor * ss * 2) == 0 &&
           ci->max_v_samp_factor % (c->v_samp_factor * ss * 2) == 0)
        ss *= 2;
    return ss;
}

int sn_jdc_same_as_libjpeg(const struct jpeg_decompress_struct *ci) {
    for (int i = 0; i < ci->num_components; i++)
        if (ci->num_components > 1 && dct_size(ci, &ci->comp_info[i]) != 1) return 0;
    return 1;
}

int sn_jdc_eligible(const struct jpeg_decompress_struct *ci) {
    if (ci->progressive_mode || ci->arith_code || ci->data_precision != 8) return 0;
    if (ci->out_color_space != JCS_RGB || ci->CCIR601_sampling) return 0;
    int nc = ci->num_components;
    if (!(nc == 1 && ci->jpeg_color_space == JCS_GRAYSCALE) &&
        !(nc == 3 && (ci->jpeg_color_space == JCS_YCbCr || ci->jpeg_color_space == JCS_RGB)))
        return 0;
    if (ci->comps_in_scan != nc || ci->Ss != 0 || ci->Se != 63 || ci->Ah != 0 || ci->Al != 0)
        return 0;
    int blocks = 0;
    for (int i = 0; i < nc; i++) {
        const jpeg_component_info *c = ci->cur_comp_info[i];
        if (!c || c != &ci->comp_info[i]) return 0; /* scan order = frame order */
        if (nc > 1 &&
            (ci->max_h_samp_factor % c->h_samp_factor || ci->max_v_samp_factor % c->v_samp_factor))
            return 0; /* fractional upsampling: libjpeg refuses it */
        blocks += nc == 1 ? 1 : c->h_samp_factor * c->v_samp_factor;
        const JQUANT_TBL *q = c->quant_tbl_no >= 0 && c->quant_tbl_no < NUM_QUANT_TBLS
                                  ? ci->quant_tbl_ptrs[c->quant_tbl_no]
                                  : NULL;
        if (!q) return 0;
        for (int k = 0; k < 64; k++)
            if (q->quantval[k] > 32767) return 0; /* libjpeg keeps them as 16-bit signed */
    }
    return blocks <= MAX_BLOCKS;
}

/* MCU grid: an interleaved scan's MCUs, or a single component's blocks. */
static void mcu_grid(const struct jpeg_decompress_struct *ci, int *mx, int *my) {
    long w = (long)ci->image_width, h = (long)ci->image_height;
    if (ci->num_components == 1) {
        const jpeg_component_info *c = &ci->comp_info[0];
        long cw = (w * c->h_samp_factor + ci->max_h_samp_factor - 1) / ci->max_h_samp_factor;
        long ch = (h * c->v_samp_factor + ci->max_v_samp_factor - 1) / ci->max_v_samp_factor;
        *mx = (int)((cw + 7) / 8), *my = (int)((ch + 7) / 8);
    } else {
        *mx = (int)((w + 8L * ci->max_h_samp_factor - 1) / (8L * ci->max_h_samp_factor));
        *my = (int)((h + 8L * ci->max_v_samp_factor - 1) / (8L * ci->max_v_samp_factor));
    }
}

static size_t plane_bytes(const struct jpeg_decompress_struct *ci, int i, int mx, int my) {
    const jpeg_component_info *c = &ci->comp_info[i];
    if (ci->num_components == 1) return (size_t)mx * my;
    return (size_t)mx * c->h_samp_factor * (size_t)my * c->v_samp_factor;
}

/* Restart intervals the scan has: the most segments a valid file splits into. */
static size_t max_segments(const struct jpeg_decompress_struct *ci, int mx, int my) {
    size_t mcus = (size_t)mx * my, ri = ci->restart_interval;
    return ri ? (mcus + ri - 1) / ri : 1;
}

size_t sn_jdc_mem(const struct jpeg_decompress_struct *ci, size_t len) {
    int mx, my;
    mcu_grid(ci, &mx, &my);
    size_t n =
        len + PAD + 6 * (sizeof(htab) + FAST_BYTES) + ((size_t)ci->image_width / 8 + 1) * 3 + 128;
    size_t blocks = 0;
    for (int i = 0; i < ci->num_components; i++) n += plane_bytes(ci, i, mx, my);
    for (int i = 0; i < ci->num_components; i++) blocks += plane_bytes(ci, i, mx, my);
    n += (blocks + 8) * sizeof(uint32_t); /* skip_scan's DC differences */
    return n + max_segments(ci, mx, my) * (sizeof(size_t) + 1);
}

typedef struct {
    uint8_t *buf; /* unstuffed data + PAD zeros */
    size_t len;
    size_t *ends; /* end of each restart segment in buf (the last: the scan's end) */
    size_t nseg, cap;
    uint8_t *rst; /* marker ending each segment: RSTn, the last EOI */
} data;

/* Copy the entropy-coded bytes without stuffing, splitting at RSTn into at most `cap`
 * segments; the scan must end at EOI. -1: it does not (or out of memory). */
static int unstuff(const uint8_t *p, size_t n, size_t cap, data *d) {
    d->buf = malloc(n + PAD);
    d->cap = cap;
    d->ends = malloc(cap * sizeof *d->ends);
    d->rst = malloc(cap);
    if (!d->buf || !d->ends || !d->rst) return -1;
    size_t i = 0, o = 0;
    for (;;) {
        const uint8_t *f = i < n ? memchr(p + i, 0xFF, n - i) : NULL;
        if (!f) return -1; /* no EOI */
        size_t j = (size_t)(f - p);
        memcpy(d->buf + o, p + i, j - i);
        o += j - i;
        size_t ff = j;
        while (j < n && p[j] == 0xFF) j++; /* fill bytes before a marker */
        if (j >= n) return -1;
        if (p[j] == 0) {
            /* FF FF 00: libjpeg-turbo's fast Huffman path takes FF FF for a marker, pads the
             * MCU with zero bits, then decodes it again on its slow path without clearing the
             * coefficients the first pass wrote (jdhuff.c); its pixels there are not the
             * data's. No encoder writes fill bytes inside entropy data: leave it to libjpeg. */
            if (j - ff > 1) return -1;
            d->buf[o++] = 0xFF;
        } else {
            if (d->nseg == d->cap) return -1; /* more restart markers than intervals */
            d->ends[d->nseg] = o;
            d->rst[d->nseg++] = p[j];
            if (p[j] < 0xD0 || p[j] > 0xD7) return p[j] == 0xD9 ? 0 : -1;
        }
        i = j + 1;
    }
}

/* One DC difference into c->pred. Needs 31 bits in b. */
#define READ_DC(c)                                                                                 \
    do {                                                                                           \
        uint32_t e_ = (c)->dc->fast[b >> (64 - FAST_BITS)];                                        \
        int s_, v_ = 0, l_;                                                                        \
        if (e_) {                                                                                  \
            l_ = (int)(e_ & 31), s_ = (int)(e_ >> 5) & 15;                                         \
            v_ = (int)(b >> (64 - l_)) & ((1 << s_) - 1);                                          \
        } else {                                                                                   \
            if ((s_ = slow_symbol(b, (c)->dc, &l_)) < 0) return -1;                                \
            DROP(l_);                                                                              \
            l_ = s_;                                                                               \
            if (s_) v_ = (int)(b >> (64 - s_));                                                    \
        }                                                                                          \
        DROP(l_);                                                                                  \
        /* size 0 (no change) is common and unpredictable: masked, not branched on */              \
        int64_t sum_ = (int64_t)(c)->pred + (extend(v_, s_ | (s_ == 0)) & -(s_ != 0));             \
        if (sum_ > INT32_MAX || sum_ < INT32_MIN) return -1; /* libjpeg: JERR_BAD_DCT_COEF */      \
        (c)->pred = (int)sum_;                                                                     \
    } while (0)

/* Skip one block's AC codes, zigzag 1..63, several per lookup. The bit reader's state goes in
 * and out by pointer so that, inlined, it stays in registers. -1: a code the table lacks. */
static inline __attribute__((always_inline)) int skip_ac(const htab *t, uint64_t *bp, int *np,
                                                         const uint8_t **pp) {
    uint64_t b = *bp;
    int n = *np;
    const uint8_t *p = *pp;
    int k = 1;
    for (;;) {
        REFILL();
        for (int i = 0; i < 2; i++) { /* 2 x 27 bits <= 56 */
            uint32_t e = t->fast[b >> (64 - FAST_BITS)];
            int adv = (int)(e >> 5) & 63;
            if (!e || k + adv >= 64) goto one;
            DROP((int)(e & 31));
            if (e >> 15) goto done;
            k += adv;
        }
        continue;
    one: /* one symbol: a long code, or the block may end inside the run */
        REFILL();
        int l, sym = slow_symbol(b, t, &l);
        if (sym < 0) return -1;
        DROP(l);
        if (sym & 15) {
            k += sym >> 4;
            DROP(sym & 15);
        } else if (sym >> 4 != 15) {
            break;
        } else {
            k += 15;
        }
        if (++k >= 64) break;
    }
done:
    *bp = b, *np = n, *pp = p;
    return 0;
}

/* ---- 1/8: the scan as one state machine ------------------------------------------------- */

/* At 1/8 only the DC differences are kept, so the whole scan is one chain of table lookups:
 * the table of the next code is the DC table of the block's component at a block's start,
 * else its AC table. Where the block ends (an EOB inside a multi-symbol run) is data, and a
 * branch on it is mispredicted about once a block; so the fast step has none: it picks the
 * next table, the zigzag position and the slot with conditional moves, and stores its window
 * for the DC step it may be (blk advances only on DC steps, so other steps' stores are
 * overwritten). Codes the fast entries do not cover, and runs that would reach zigzag 64,
 * take sm_slow, one symbol at a time. The DC differences are resolved after the scan. */
/* The fast tables of all components in one block, DC of component i at 2i * SM_TAB entries and
 * AC at (2i + 1) * SM_TAB, so that the state machine finds a component's tables by arithmetic,
 * not by a load on its chain. The MCU's slots are the 4-bit fields of a "schedule" word,
 * component + 1 each, the current slot lowest; at a block's end it shifts down by 4, and
 * starts over from the full word when it runs out. */
#define SM_TAB (1 << FAST_BITS)

typedef struct {
    const uint16_t *F;    /* the fast tables */
    const htab *h[2 * 3]; /* their htabs, same order */
    uint64_t full;        /* the schedule at an MCU's start */
} sm_slots;

typedef struct {
    uint64_t b, sched;
    int n, k;
    const uint8_t *p;
    const uint16_t *T;
    uint32_t *dp; /* dcs[] of the block started last + 1 */
} sm_state;

/* A resolved DC difference in dcs[] (bit 14 clear); fast steps store the 16-bit window above
 * their table entry, which has bit 14 set. */
#define SM_DC(v) ((uint32_t)(uint16_t)(int16_t)(v) << 16)

/* c ? a : b without a branch: compilers turn a ternary on data into a jump when they guess
 * it predictable, and here it is the block's end. */
static inline uint64_t sm_pick(uint64_t c, uint64_t a, uint64_t b) {
#if defined(__x86_64__)
    __asm__("test %2, %2\n\tcmovnz %1, %0" : "+r"(b) : "r"(a), "r"(c) : "cc");
    return b;
#else
    uint64_t m = -(uint64_t)(c != 0);
    return (a & m) | (b & ~m);
#endif
}

static inline uint64_t sm_next(uint64_t sched, uint64_t full) {
    return sm_pick(sched >> 4, sched >> 4, full);
}

/* One symbol the fast step does not take, in the same state (by pointer: rare, so the fast
 * loop's registers are spilled only here). -1: a code the table lacks. */
static __attribute__((noinline)) int sm_slow(const sm_slots *S, sm_state *st) {
    uint64_t b = st->b;
    int n = st->n, k = st->k, l, sym, c = (int)(st->sched & 15) - 1;
    const uint8_t *p = st->p;
    REFILL();
    if (st->T == S->F + (size_t)2 * c * SM_TAB) { /* a block's DC */
        if ((sym = slow_symbol(b, S->h[2 * c], &l)) < 0) return -1;
        DROP(l);
        int v = 0;
        if (sym) {
            REFILL();
            v = extend((int)(b >> (64 - sym)), sym);
            DROP(sym);
        }
        *st->dp++ = SM_DC(v);
        k = 1;
        st->T = S->F + (size_t)(2 * c + 1) * SM_TAB;
    } else {
        if ((sym = slow_symbol(b, S->h[2 * c + 1], &l)) < 0) return -1;
        DROP(l);
        int r = sym >> 4, s = sym & 15;
        DROP(s);
        k += s ? r + 1 : r == 15 ? 16 : 64; /* EOB: the block ends (libjpeg: any r/0 but ZRL) */
        if (k >= 64) {
            k = 1;
            st->sched = sm_next(st->sched, S->full);
            st->T = S->F + (size_t)2 * ((st->sched & 15) - 1) * SM_TAB;
        }
    }
    st->b = b, st->n = n, st->p = p, st->k = k;
    return 0;
}

/* One fast step; `slow` when its entry does not apply. */
#define SM_STEP(slow)                                                                              \
    do {                                                                                           \
        uint32_t e = T[b >> (64 - FAST_BITS)];                                                     \
        int adv = (int)(e >> 5) & 63;                                                              \
        if (__builtin_expect(!e || k + adv >= 64, 0)) goto slow;                                   \
        *dp = (uint32_t)(b >> 48) << 16 | e;                                                       \
        DROP(e & 31);                                                                              \
        int isdc = (int)(e >> 14) & 1;                                                             \
        dp += isdc;                                                                                \
        int rs_ = isdc | (int)(e >> 15); /* a block starts or ends: k restarts (a DC entry's       \
                                            "advance" is its size) */                              \
        k = ((k + adv) & (rs_ - 1)) | rs_;                                                         \
        uint64_t nx_ = sm_next(sched, S.full);                                                     \
        uint64_t tac_ = (uint64_t)(S.F + ((sched & 15) * 2 - 1) * SM_TAB);                         \
        uint64_t tdn_ = (uint64_t)(S.F + ((nx_ & 15) * 2 - 2) * SM_TAB);                           \
        T = (const uint16_t *)sm_pick(e & SM_EOB, tdn_, sm_pick(e & SM_ISDC, tac_, (uint64_t)T));  \
        sched = sm_pick(e & SM_EOB, nx_, sched);                                                   \
    } while (0)

/* A step sm_slow takes, the fast loop's state passed through memory. */
#define SM_SLOW()                                                                                  \
    do {                                                                                           \
        sm_state st = {b, sched, n, k, p, T, dp};                                                  \
        if (sm_slow(&S, &st) < 0) goto bad;                                                        \
        b = st.b, sched = st.sched, n = st.n, k = st.k, p = st.p, T = st.T, dp = st.dp;            \
    } while (0)

/* Phase 1 at 1/8 with the state machine, then phase 2's planes from the DC differences. */
static int skip_scan(const struct jpeg_decompress_struct *ci, comp *cs, int nc, data *d, int mx,
                     int my, const uint16_t *fast) {
    sm_slots S = {.F = fast, .full = 0};
    comp *slot_c[MAX_BLOCKS];
    int slot_x[MAX_BLOCKS], slot_y[MAX_BLOCKS], nslot = 0;
    for (int i = 0; i < nc; i++) {
        int t = (int)((cs[i].dc->fast - fast) / (2 * SM_TAB)); /* its table pair */
        S.h[2 * t] = cs[i].dc, S.h[2 * t + 1] = cs[i].ac;
        for (int y = 0; y < cs[i].v; y++)
            for (int x = 0; x < cs[i].h; x++) {
                slot_c[nslot] = &cs[i], slot_x[nslot] = x, slot_y[nslot] = y;
                S.full |= (uint64_t)(t + 1) << (4 * nslot++);
            }
    }
    size_t mcus = (size_t)mx * my, ri = ci->restart_interval ? ci->restart_interval : mcus;
    uint32_t *dcs = malloc((mcus * nslot + 8) * sizeof *dcs);
    if (!dcs) return -1;
    const uint8_t *lim = d->buf + d->len + 16; /* p runs up to 8 bytes ahead of the bits used */
    size_t seg = 0;
    for (size_t m0 = 0; m0 < mcus; m0 += ri, seg++) {
        uint64_t b = 0, sched = S.full;
        int n = 0, k = 1;
        const uint8_t *p = d->buf + (seg ? d->ends[seg - 1] : 0);
        size_t end = (m0 + ri < mcus ? m0 + ri : mcus) * nslot;
        uint32_t *dp = dcs + m0 * nslot, *dend = dcs + end;
        const uint16_t *T = S.F; /* component 0's DC table */
        /* a group of 4 steps starts at most 2 blocks: stop 2 short of the segment's end */
        while (dp + 2 < dend) {
            if (p > lim) goto bad;
            REFILL(); /* 2 x 27 bits <= 56 */
            SM_STEP(slow);
            SM_STEP(slow);
            REFILL();
            SM_STEP(slow);
            SM_STEP(slow);
            continue;
        slow:
            SM_SLOW();
        }
        /* the last blocks one step at a time, until the segment's last block has ended */
        while (dp < dend || T != S.F + ((sched & 15) * 2 - 2) * SM_TAB) {
            if (p > lim) goto bad;
            REFILL();
            SM_STEP(slow1);
            continue;
        slow1:
            SM_SLOW();
        }
        /* the segment used up to its last byte, then RSTn in order, or EOI after the last */
        long used = (long)(p - d->buf) * 8 - n, segend = (long)d->ends[seg] * 8;
        if (used > segend || segend - used >= 8) goto bad;
        if (end < mcus * nslot ? seg + 1 >= d->nseg || d->rst[seg] != 0xD0 + (seg & 7)
                               : seg + 1 != d->nseg)
            goto bad;
    }
    /* the DC differences, predicted per component (reset at each restart), into the planes:
     * MCU by MCU without a division, the predictions in locals */
    const uint32_t *w = dcs;
    int pred[3] = {0, 0, 0}, ci_[MAX_BLOCKS];
    for (int q = 0; q < nslot; q++) ci_[q] = (int)(slot_c[q] - cs);
    size_t left = ri;
    for (int my_ = 0; my_ < my; my_++) {
        uint8_t *row[MAX_BLOCKS]; /* each slot's first sample in this MCU row */
        for (int q = 0; q < nslot; q++) {
            const comp *c = slot_c[q];
            row[q] = c->plane + (size_t)(my_ * c->v + slot_y[q]) * c->pw + slot_x[q];
        }
        for (int mx_ = 0; mx_ < mx; mx_++) {
            if (left-- == 0) {
                pred[0] = pred[1] = pred[2] = 0;
                left = ri - 1;
            }
            for (int q = 0; q < nslot; q++) {
                const comp *c = slot_c[q];
                uint32_t x = *w++;
                int v;
                if (x & 1u << 14) {
                    int l = (int)(x & 31), sz = (int)(x >> 5) & 15;
                    int bits = (int)(x >> 16 >> (16 - l)) & ((1 << sz) - 1);
                    v = extend(bits, sz | (sz == 0)) & -(sz != 0);
                } else {
                    v = (int16_t)(x >> 16);
                }
                int64_t sum = (int64_t)pred[ci_[q]] + v;
                if (sum > INT32_MAX || sum < INT32_MIN) goto bad; /* libjpeg: JERR_BAD_DCT_COEF */
                pred[ci_[q]] = (int)sum;
                row[q][(size_t)mx_ * c->h] =
                    idct_limit(DESCALE((int64_t)((int16_t)sum * c->q[0]), 3));
            }
        }
    }
    free(dcs);
    return 0;
bad:
    free(dcs);
    return -1;
}

/* libjpeg's YCbCr -> RGB tables (jdcolor.c, SCALEBITS 16). */
typedef struct {
    int cr_r[256], cb_b[256];
    int64_t cr_g[256], cb_g[256];
} ycc;

#define FIX16(x) ((int64_t)((x)*65536.0 + 0.5))

static void ycc_tables(ycc *t) {
    for (int i = 0; i < 256; i++) {
        int64_t x = i - 128;
        t->cr_r[i] = (int)((FIX16(1.40200) * x + 32768) >> 16);
        t->cb_b[i] = (int)((FIX16(1.77200) * x + 32768) >> 16);
        t->cr_g[i] = -FIX16(0.71414) * x;
        t->cb_g[i] = -FIX16(0.34414) * x + 32768;
    }
}

static inline uint8_t clamp255(int64_t v) {
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Phase 2: rows out. */
static int emit_rows(const struct jpeg_decompress_struct *ci, const comp *cs, int nc,
                     const sn_jdc_out *out) {
    int ow = (int)((ci->image_width + 7) / 8), oh = (int)((ci->image_height + 7) / 8);
    uint8_t *mem = malloc((size_t)ow * 3 + 4 + 64 + 3 * ((size_t)ow + 8));
    if (!mem) return -1;
    uint8_t *row = mem + ((64 - ((uintptr_t)mem & 63)) & 63);
    memset(row + (size_t)ow * 3, 0, 4);
    uint8_t *wide[3] = {row + (size_t)ow * 3 + 4, NULL, NULL}; /* a component's row, widened */
    for (int i = 1; i < 3; i++) wide[i] = wide[i - 1] + ow + 8;
    ycc t;
    if (ci->jpeg_color_space == JCS_YCbCr) ycc_tables(&t);
    for (int y = 0; y < oh; y++) {
        if (!out->need(out->ctx, y)) continue;
        if (nc == 1) {
            const uint8_t *g = cs[0].plane + (size_t)y * cs[0].pw;
            for (int x = 0; x < ow; x++) row[x * 3] = row[x * 3 + 1] = row[x * 3 + 2] = g[x];
        } else {
            const uint8_t *pc[3];
            for (int i = 0; i < 3; i++) { /* box upsampling: each sample repeated hx times */
                const uint8_t *src = cs[i].plane + (size_t)(y / cs[i].vx) * cs[i].pw;
                int hx = cs[i].hx;
                if (hx == 1) {
                    pc[i] = src;
                    continue;
                }
                for (int x = 0, sx = 0; x < ow; x += hx, sx++)
                    for (int r = 0; r < hx; r++) wide[i][x + r] = src[sx]; /* ow + 8 >= x + hx */
                pc[i] = wide[i];
            }
            const uint8_t *p0 = pc[0], *p1 = pc[1], *p2 = pc[2];
            if (ci->jpeg_color_space == JCS_RGB) {
                for (int x = 0; x < ow; x++) {
                    row[x * 3] = p0[x];
                    row[x * 3 + 1] = p1[x];
                    row[x * 3 + 2] = p2[x];
                }
            } else {
                for (int x = 0; x < ow; x++) {
                    int Y = p0[x], cb = p1[x], cr = p2[x];
                    row[x * 3] = clamp255(Y + t.cr_r[cr]);
                    row[x * 3 + 1] = clamp255(Y + ((t.cb_g[cb] + t.cr_g[cr]) >> 16));
                    row[x * 3 + 2] = clamp255(Y + t.cb_b[cb]);
                }
            }
        }
        out->row(out->ctx, y, row);
    }
    free(mem);
    return 0;
}

/* ---- full scale, only the samples the caller reads -------------------------------------- */

/* libjpeg's zigzag -> natural order, with its 16 extra entries for a run past 63. */
static const uint8_t natural[80] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
                                    63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

/* libjpeg's ISLOW 1-D butterfly (jidctint.c, both passes), before the descale. */
static void islow_1d(const int64_t in[8], int64_t out[8]) {
    enum {
        C0298 = 2446,
        C0390 = 3196,
        C0541 = 4433,
        C0765 = 6270,
        C0899 = 7373,
        C1175 = 9633,
        C1501 = 12299,
        C1847 = 15137,
        C1961 = 16069,
        C2053 = 16819,
        C2562 = 20995,
        C3072 = 25172
    };
    int64_t z1 = (in[2] + in[6]) * C0541;
    int64_t t2 = z1 - in[6] * C1847, t3 = z1 + in[2] * C0765;
    int64_t t0 = (in[0] + in[4]) * 8192, t1 = (in[0] - in[4]) * 8192;
    int64_t t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
    int64_t o3 = in[1], o2 = in[3], o1 = in[5], o0 = in[7];
    int64_t z4 = o1 + o3, z3 = o0 + o2, z2 = o1 + o2, zz1 = o0 + o3;
    int64_t z5 = (z3 + z4) * C1175;
    o3 *= C1501, o2 *= C3072, o1 *= C2053, o0 *= C0298;
    z4 = z4 * -C0390 + z5, z3 = z3 * -C1961 + z5;
    zz1 *= -C0899, z2 *= -C2562;
    o3 += zz1 + z4, o2 += z2 + z3, o1 += z2 + z4, o0 += zz1 + z3;
    out[0] = t10 + o3, out[7] = t10 - o3, out[1] = t11 + o2, out[6] = t11 - o2;
    out[2] = t12 + o1, out[5] = t12 - o1, out[3] = t13 + o0, out[4] = t13 - o0;
}

void sn_jdc_idct_init(sn_jdc_idct *t) {
    for (int k = 0; k < 8; k++) {
        int64_t in[8] = {0}, out[8];
        in[k] = 1;
        islow_1d(in, out);
        for (int r = 0; r < 8; r++) t->m[r][k] = (int16_t)out[r];
    }
    for (int p = 0; p < 4; p++)
        for (int c = 0; c < 8; c++)
            t->pc[p][c] = (int32_t)((uint32_t)(uint16_t)t->m[c][2 * p] |
                                    (uint32_t)(uint16_t)t->m[c][2 * p + 1] << 16);
}

int sn_jdc_idct_rows_scalar(const sn_jdc_idct *t, const int16_t *dq, unsigned rows,
                            uint8_t out[8][8]) {
    int bad = 0;
    for (int r = 0; r < 8; r++) {
        if (!(rows >> r & 1)) continue;
        int32_t ws[8];
        for (int u = 0; u < 8; u++) { /* pass 1: column u at row r */
            int32_t acc = 0;
            for (int k = 0; k < 8; k++) acc += dq[k * 8 + u] * t->m[r][k];
            ws[u] = (acc + 1024) >> 11;
            bad |= ws[u] > SN_JDC_WS_MAX || ws[u] < -SN_JDC_WS_MAX;
        }
        for (int c = 0; c < 8; c++) { /* pass 2: row r at column c */
            int64_t acc = 0;          /* 64 bits: ws may be past its bound here (then declined) */
            for (int u = 0; u < 8; u++) acc += (int64_t)ws[u] * t->m[c][u];
            int64_t px = (acc + (1 << 17)) >> 18;
            bad |= px < -512 || px > 511;
            out[r][c] = idct_limit(px);
        }
    }
    return bad ? -1 : 0;
}

#if !defined(__x86_64__) && !defined(__i386__)
/* Other architectures (ARM64) build without jpegdc_avx2.c. */
int sn_jdc_idct_rows_avx2(const sn_jdc_idct *t, const int16_t *dq, unsigned rows,
                          uint8_t out[8][8]) {
    return sn_jdc_idct_rows_scalar(t, dq, rows, out);
}
#endif

/* How libjpeg-turbo upsamples a component at full scale (jdsample.c, fancy upsampling on). */
enum { UP_FULL, UP_H2V1, UP_H1V2, UP_H2V2, UP_BOX };

static int up_method(const struct jpeg_decompress_struct *ci, const comp *c, int nc) {
    if (nc == 1 || (c->hx == 1 && c->vx == 1)) return UP_FULL;
    if (c->hx == 2 && c->vx == 1) return c->cw > 2 ? UP_H2V1 : UP_BOX;
    if (c->hx == 1 && c->vx == 2) return UP_H1V2;
    if (c->hx == 2 && c->vx == 2) return c->cw > 2 ? UP_H2V2 : UP_BOX;
    (void)ci;
    return UP_BOX;
}

/* The component's sample lines under image line t (of `size`): the nearer one, and for fancy
 * upsampling the farther one (the edge's own line at the image's edge). */
static void vlines(const comp *c, int y, int *a, int *b) {
    if (c->up == UP_H1V2 || c->up == UP_H2V2) {
        int i = y >> 1;
        *a = i, *b = y & 1 ? (i + 1 < c->ch ? i + 1 : i) : (i > 0 ? i - 1 : 0);
    } else {
        *a = *b = y / c->vx;
    }
}
static void hlines(const comp *c, int x, int *a, int *b) {
    if (c->up == UP_H2V1 || c->up == UP_H2V2) {
        int j = x >> 1;
        *a = j, *b = x & 1 ? (j + 1 < c->cw ? j + 1 : j) : (j > 0 ? j - 1 : j);
    } else {
        *a = *b = x / c->hx;
    }
}

/* Full-scale counterpart of the 1/8 tables: the component geometry and, from the caller's
 * rows and columns, which samples (and so which blocks) are read. */
static int plan_comps(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out, comp *cs,
                      int nc, int mx, int my) {
    int W = (int)ci->image_width, H = (int)ci->image_height;
    for (int i = 0; i < nc; i++) {
        comp *c = &cs[i];
        c->cw = (int)(((long)W * c->h + c->h * c->hx - 1) / (c->h * c->hx));
        c->ch = (int)(((long)H * c->v + c->v * c->vx - 1) / (c->v * c->vx));
        c->bw = nc == 1 ? mx : mx * c->h, c->bh = nc == 1 ? my : my * c->v;
        c->up = up_method(ci, c, nc);
        c->rowm = calloc((size_t)c->bh, 1), c->colm = calloc((size_t)c->bw, 1);
        c->rrank = malloc((size_t)c->ch * sizeof *c->rrank);
        c->crank = malloc((size_t)c->cw * sizeof *c->crank);
        if (!c->rowm || !c->colm || !c->rrank || !c->crank) return -1;
        for (int k = 0; k < c->ch; k++) c->rrank[k] = -1;
        for (int k = 0; k < c->cw; k++) c->crank[k] = -1;
    }
    for (int y = 0; y < H; y++) {
        if (!out->need(out->ctx, y)) continue;
        for (int i = 0; i < nc; i++) {
            int a, b;
            vlines(&cs[i], y, &a, &b);
            cs[i].rrank[a] = cs[i].rrank[b] = 0;
        }
    }
    for (int x = 0; x < W; x++) {
        if (!out->need_col(out->ctx, x)) continue;
        for (int i = 0; i < nc; i++) {
            int a, b;
            hlines(&cs[i], x, &a, &b);
            cs[i].crank[a] = cs[i].crank[b] = 0;
        }
    }
    for (int i = 0; i < nc; i++) {
        comp *c = &cs[i];
        for (int k = 0; k < c->ch; k++)
            if (c->rrank[k] == 0) c->rrank[k] = c->nr++, c->rowm[k >> 3] |= (uint8_t)(1 << (k & 7));
        for (int k = 0; k < c->cw; k++)
            if (c->crank[k] == 0)
                c->crank[k] = c->ncl++, c->colm[k >> 3] |= (uint8_t)(1 << (k & 7));
        if (!(c->plane = malloc((size_t)c->nr * c->ncl + 1))) return -1;
    }
    return 0;
}

typedef int (*idct_fn)(const sn_jdc_idct *, const int16_t *, unsigned, uint8_t (*)[8]);

/* One needed block: its coefficients decoded (as libjpeg's decode_mcu), dequantized, then
 * the IDCT of the rows read, whose columns read go to the compact plane. Bit reader state as
 * in skip_ac. -1: decline. */
static inline __attribute__((always_inline)) int full_block(comp *c, const sn_jdc_idct *it,
                                                            idct_fn idct, int bx, int by,
                                                            uint64_t *bp, int *np,
                                                            const uint8_t **pp) {
    uint64_t b = *bp;
    int n = *np;
    const uint8_t *p = *pp;
    _Alignas(32) int16_t dq[64];
    memset(dq, 0, sizeof dq);
    REFILL();
    READ_DC(c);
    int v = (int16_t)c->pred * c->q[0];
    int bad = v > SN_JDC_DQ_MAX || v < -SN_JDC_DQ_MAX;
    dq[0] = (int16_t)v;
    const htab *t = c->ac;
    for (int k = 1; k < 64;) {
        REFILL();
        for (int i = 0; i < 4 && k < 64; i++) { /* 4 x 12 bits <= 56 */
            int32_t e = t->sym1[b >> (64 - FAST_BITS)];
            if (!e) goto one;
            DROP(e & 63);
            if (e & 128) goto eob;
            k += (e >> 8) & 15;
            int z = natural[k++];
            v = (e >> 16) * c->q[z];
            bad |= (unsigned)(v + SN_JDC_DQ_MAX) > 2 * SN_JDC_DQ_MAX;
            dq[z] = (int16_t)v;
        }
        continue;
    one: /* a long code, a code with many extra bits, or ZRL */
        REFILL();
        int l, sym = slow_symbol(b, t, &l);
        if (sym < 0) return -1;
        DROP(l);
        int r = sym >> 4, s = sym & 15;
        if (s) {
            k += r;
            v = extend((int)(b >> (64 - s)), s);
            DROP(s);
            int z = natural[k++];
            v *= c->q[z];
            bad |= (unsigned)(v + SN_JDC_DQ_MAX) > 2 * SN_JDC_DQ_MAX;
            dq[z] = (int16_t)v;
        } else if (r == 15) {
            k += 16;
        } else {
            break;
        }
    }
eob:;
    uint8_t px[8][8];
    unsigned rm = c->rowm[by], cm = c->colm[bx];
    if (bad || idct(it, dq, rm, px) < 0) return -1;
    for (unsigned rr = rm; rr; rr &= rr - 1) {
        int r = __builtin_ctz(rr);
        uint8_t *o = c->plane + (size_t)c->rrank[by * 8 + r] * c->ncl;
        const int32_t *cr = c->crank + bx * 8;
        for (unsigned cc = cm; cc; cc &= cc - 1) {
            int x = __builtin_ctz(cc);
            o[cr[x]] = px[r][x];
        }
    }
    *bp = b, *np = n, *pp = p;
    return 0;
}

/* Phase 1 at full scale: every block of the scan; those under a read row and a read column are
 * decoded whole and inverse-transformed where read (full_block), the others' AC codes are
 * skipped. -1: decline. */
static int decode_full(const struct jpeg_decompress_struct *ci, comp *cs, int nc, data *d, int mx,
                       int my) {
    comp *slot_c[MAX_BLOCKS];
    int slot_x[MAX_BLOCKS], slot_y[MAX_BLOCKS], nslot = 0;
    for (int i = 0; i < nc; i++)
        for (int y = 0; y < cs[i].v; y++)
            for (int x = 0; x < cs[i].h; x++)
                slot_c[nslot] = &cs[i], slot_x[nslot] = x, slot_y[nslot++] = y;
    long ri = ci->restart_interval, left = ri;
    size_t seg = 0;
    uint64_t b = 0;
    int n = 0;
    const uint8_t *p = d->buf;
    const uint8_t *lim = d->buf + d->len + 16; /* p runs up to 8 bytes ahead of the bits used */
    sn_jdc_idct it;
    sn_jdc_idct_init(&it);
    idct_fn idct = sn_rs_have_avx2() ? sn_jdc_idct_rows_avx2 : sn_jdc_idct_rows_scalar;
    for (int my_ = 0; my_ < my; my_++) {
        for (int mx_ = 0; mx_ < mx; mx_++) {
            if (ri && left == 0) { /* restart: the segment must be used up to its last byte */
                long used = (long)(p - d->buf) * 8 - n;
                long end = (long)d->ends[seg] * 8;
                if (seg + 1 >= d->nseg || used > end || end - used >= 8 ||
                    d->rst[seg] != 0xD0 + (seg & 7))
                    return -1;
                p = d->buf + d->ends[seg++], b = 0, n = 0;
                for (int i = 0; i < nc; i++) cs[i].pred = 0;
                left = ri;
            }
            left--;
            for (int j = 0; j < nslot; j++) {
                comp *c = slot_c[j];
                int bx = mx_ * c->h + slot_x[j], by = my_ * c->v + slot_y[j];
                if (p > lim) return -1;
                if (c->rowm[by] && c->colm[bx]) {
                    if (full_block(c, &it, idct, bx, by, &b, &n, &p) < 0) return -1;
                    continue;
                }
                REFILL();
                READ_DC(c);
                if (skip_ac(c->ac, &b, &n, &p) < 0) return -1;
            }
        }
    }
    /* the scan ends in the last segment, with fewer than 8 bits left, then EOI */
    long used = (long)(p - d->buf) * 8 - n;
    long end = (long)d->ends[seg] * 8;
    if (seg + 1 != d->nseg || used > end || end - used >= 8) return -1;
    return 0;
}

/* Phase 2 at full scale: libjpeg's upsampling (jdsample.c: the triangle filters and their
 * rounding, replication at the edges) and colour conversion of the read pixels only. */
static int emit_full(const struct jpeg_decompress_struct *ci, const comp *cs, int nc,
                     const sn_jdc_out *out) {
    int W = (int)ci->image_width, H = (int)ci->image_height, nx = 0;
    size_t rowb = (size_t)W * 3 + 4 + 64;
    int32_t *xs = malloc((size_t)W * sizeof *xs); /* the read columns */
    int32_t *cx = malloc((size_t)W * 2 * 3 * sizeof *cx);
    uint8_t *val = malloc((size_t)W * 3 + 4);
    uint8_t *mem = calloc(rowb, 1);
    if (!xs || !cx || !val || !mem) {
        free(xs), free(cx), free(val), free(mem);
        return -1;
    }
    uint8_t *row = mem + ((64 - ((uintptr_t)mem & 63)) & 63);
    for (int x = 0; x < W; x++)
        if (out->need_col(out->ctx, x)) xs[nx++] = x;
    for (int i = 0; i < nc; i++) /* compact columns of each read column's two taps */
        for (int k = 0; k < nx; k++) {
            int a, b;
            hlines(&cs[i], xs[k], &a, &b);
            cx[(size_t)i * 2 * W + 2 * k] = cs[i].crank[a];
            cx[(size_t)i * 2 * W + 2 * k + 1] = cs[i].crank[b];
        }
    ycc t;
    if (ci->jpeg_color_space == JCS_YCbCr) ycc_tables(&t);
    for (int y = 0; y < H; y++) {
        if (!out->need(out->ctx, y)) continue;
        for (int i = 0; i < nc; i++) {
            const comp *c = &cs[i];
            int a, b;
            vlines(c, y, &a, &b);
            const uint8_t *pa = c->plane + (size_t)c->rrank[a] * c->ncl;
            const uint8_t *pb = c->plane + (size_t)c->rrank[b] * c->ncl;
            const int32_t *x2 = cx + (size_t)i * 2 * W;
            uint8_t *v = val + (size_t)i * W;
            switch (c->up) {
            case UP_FULL:
            case UP_BOX:
                for (int k = 0; k < nx; k++) v[k] = pa[x2[2 * k]];
                break;
            case UP_H2V1:
                for (int k = 0; k < nx; k++)
                    v[k] =
                        (uint8_t)((pa[x2[2 * k]] * 3 + pa[x2[2 * k + 1]] + 1 + (xs[k] & 1)) >> 2);
                break;
            case UP_H1V2: {
                int bias = 1 + (y & 1);
                for (int k = 0; k < nx; k++)
                    v[k] = (uint8_t)((pa[x2[2 * k]] * 3 + pb[x2[2 * k]] + bias) >> 2);
                break;
            }
            default: /* UP_H2V2 */
                for (int k = 0; k < nx; k++) {
                    int j = x2[2 * k], jn = x2[2 * k + 1];
                    int s0 = pa[j] * 3 + pb[j], s1 = pa[jn] * 3 + pb[jn];
                    v[k] = (uint8_t)((s0 * 3 + s1 + 8 - (xs[k] & 1)) >> 4);
                }
            }
        }
        if (nc == 1) {
            for (int k = 0; k < nx; k++) memset(row + (size_t)xs[k] * 3, val[k], 3);
        } else if (ci->jpeg_color_space == JCS_RGB) {
            for (int k = 0; k < nx; k++) {
                uint8_t *o = row + (size_t)xs[k] * 3;
                o[0] = val[k], o[1] = val[W + k], o[2] = val[2 * W + k];
            }
        } else {
            for (int k = 0; k < nx; k++) {
                int Y = val[k], cb = val[W + k], cr = val[2 * W + k];
                uint8_t *o = row + (size_t)xs[k] * 3;
                o[0] = clamp255(Y + t.cr_r[cr]);
                o[1] = clamp255(Y + ((t.cb_g[cb] + t.cr_g[cr]) >> 16));
                o[2] = clamp255(Y + t.cb_b[cb]);
            }
        }
        out->row(out->ctx, y, row);
    }
    free(xs), free(cx), free(val), free(mem);
    return 0;
}

size_t sn_jdc_full_mem(const struct jpeg_decompress_struct *ci, size_t len, int rows, int cols) {
    int mx, my;
    mcu_grid(ci, &mx, &my);
    size_t W = ci->image_width, H = ci->image_height;
    size_t n = len + PAD + 2 * 3 * (sizeof(htab) + FAST_BYTES) + 3 * SYM1_BYTES +
               W * (3 + 3 * 4 + 6 * 4 + 3) + 128;
    for (int i = 0; i < ci->num_components; i++) {
        const jpeg_component_info *c = &ci->comp_info[i];
        size_t ch = (H * c->v_samp_factor + ci->max_v_samp_factor - 1) / ci->max_v_samp_factor;
        size_t cw = (W * c->h_samp_factor + ci->max_h_samp_factor - 1) / ci->max_h_samp_factor;
        size_t r = 2 * (size_t)rows < ch ? 2 * (size_t)rows : ch;
        size_t k = 2 * (size_t)cols < cw ? 2 * (size_t)cols : cw;
        n += (ch + cw) * 4 + (size_t)(mx + my) * 4 + r * k + 1;
    }
    return n + max_segments(ci, mx, my) * (sizeof(size_t) + 1);
}

/* Both decoders: component geometry, quantizers and Huffman tables (ac_kind as build()),
 * the scan's bytes unstuffed; then at 1/8 the planes, at full scale the plan of what is read;
 * then the scan and the rows out. */
static sn_jdc_status run(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out, int full) {
    if (!sn_jdc_eligible(ci)) return SN_JDC_DECLINE;
    int nc = ci->num_components, mx, my;
    mcu_grid(ci, &mx, &my);
    comp cs[3];
    memset(cs, 0, sizeof cs);
    htab *tabs = malloc(2 * (size_t)nc * sizeof *tabs);
    uint16_t *fast = malloc(2 * (size_t)nc * SM_TAB * sizeof *fast);
    int32_t *sym1 = full ? malloc((size_t)nc * SYM1_BYTES) : NULL;
    data d = {0};
    sn_jdc_status st = SN_JDC_NOMEM;
    if (!tabs || !fast || (full && !sym1)) goto done;
    for (int i = 0; i < nc; i++) {
        const jpeg_component_info *ji = &ci->comp_info[i];
        comp *c = &cs[i];
        tabs[2 * i].sym1 = NULL;
        tabs[2 * i].fast = fast + (size_t)2 * i * SM_TAB;
        tabs[2 * i + 1].fast = fast + (size_t)(2 * i + 1) * SM_TAB;
        tabs[2 * i + 1].sym1 = full ? sym1 + (size_t)i * (1 << FAST_BITS) : NULL;
        c->h = nc == 1 ? 1 : ji->h_samp_factor, c->v = nc == 1 ? 1 : ji->v_samp_factor;
        c->hx = nc == 1 ? 1 : ci->max_h_samp_factor / c->h;
        c->vx = nc == 1 ? 1 : ci->max_v_samp_factor / c->v;
        c->pw = mx * c->h, c->ph = my * c->v;
        const JQUANT_TBL *q = ci->quant_tbl_ptrs[ji->quant_tbl_no];
        for (int k = 0; k < 64; k++) c->q[k] = (int16_t)q->quantval[k];
        if (!full && !(c->plane = malloc(plane_bytes(ci, i, mx, my)))) goto done;
        int dn = ji->dc_tbl_no, an = ji->ac_tbl_no, same = -1;
        for (int j = 0; j < i; j++) /* Cb and Cr share their tables: one copy in the cache */
            if (ci->comp_info[j].dc_tbl_no == dn && ci->comp_info[j].ac_tbl_no == an) same = j;
        if (same >= 0 && !full) {
            c->dc = cs[same].dc, c->ac = cs[same].ac;
            continue;
        }
        if (dn < 0 || dn >= NUM_HUFF_TBLS || an < 0 || an >= NUM_HUFF_TBLS ||
            build(&tabs[2 * i], ci->dc_huff_tbl_ptrs[dn], 0) < 0 ||
            build(&tabs[2 * i + 1], ci->ac_huff_tbl_ptrs[an], 1) < 0) {
            st = SN_JDC_DECLINE;
            goto done;
        }
        c->dc = &tabs[2 * i], c->ac = &tabs[2 * i + 1];
    }
    if (full && plan_comps(ci, out, cs, nc, mx, my) < 0) goto done;
    const struct jpeg_source_mgr *src = ci->src;
    if (!src || !src->next_input_byte) {
        st = SN_JDC_DECLINE;
        goto done;
    }
    if (unstuff(src->next_input_byte, src->bytes_in_buffer, max_segments(ci, mx, my), &d) < 0) {
        st = d.buf && d.ends && d.rst ? SN_JDC_DECLINE : SN_JDC_NOMEM;
        goto done;
    }
    d.len = d.ends[d.nseg - 1];
    memset(d.buf + d.len, 0, PAD);
    if ((full ? decode_full(ci, cs, nc, &d, mx, my) : skip_scan(ci, cs, nc, &d, mx, my, fast)) <
        0) {
        st = SN_JDC_DECLINE;
        goto done;
    }
    st = (full ? emit_full(ci, cs, nc, out) : emit_rows(ci, cs, nc, out)) < 0 ? SN_JDC_NOMEM
                                                                              : SN_JDC_DONE;
done:
    for (int i = 0; i < nc; i++) {
        free(cs[i].rowm), free(cs[i].colm), free(cs[i].rrank), free(cs[i].crank);
        free(cs[i].plane);
    }
    free(tabs);
    free(fast);
    free(sym1);
    free(d.buf);
    free(d.ends);
    free(d.rst);
    return st;
}

sn_jdc_status sn_jdc_decode(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out) {
    return run(ci, out, 0);
}

sn_jdc_status sn_jdc_decode_full(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out) {
    return out->need_col ? run(ci, out, 1) : SN_JDC_DECLINE;
}
