/* jpegdc.c - baseline JPEG at scale 1/8 with a skipping entropy decoder (jpegdc.h).
 *
 * Phase 1 decodes every block of the scan into one sample per block and component, DC / 8
 * with libjpeg's rounding and range limit, in planes at the 1/8 scale. The AC codes are only
 * parsed, several at a time: a 12-bit lookup gives how many bits a run of complete (code +
 * extra bits) AC symbols takes, how far they move along the zigzag and whether the run ends
 * in EOB. Phase 2 box-upsamples the planes (libjpeg's own choice at 1/8: no fancy
 * upsampling), converts YCbCr to RGB with libjpeg's fixed-point tables and hands out the rows
 * the caller needs. Any fault (bad table, bad code, a marker or the file's end in the wrong
 * place, leftover bytes libjpeg would warn about) declines in phase 1, before a row is out.
 *
 * The entropy-coded bytes are first copied out without their stuffing (FF 00 -> FF) and split
 * at restart markers, so the bit reader refills branch-free from a padded buffer. */
#include "common/jpegdc.h"

#include <stdlib.h>
#include <string.h>

#define LOOK_BITS  9   /* canonical lookahead: codes up to 9 bits in one lookup */
#define FAST_BITS  12  /* multi-symbol / DC+extra lookup width */
#define PAD        512 /* zero bytes after the data: a block reads at most ~250 bytes */
#define MAX_BLOCKS 10  /* libjpeg's D_MAX_BLOCKS_IN_MCU */

typedef struct {
    uint16_t look[1 << LOOK_BITS]; /* (length << 8) | symbol; 0: longer code */
    int32_t maxcode[18];           /* largest code of each length, -1: none */
    int32_t valoff[17];            /* symbol index of code c of length l: c + valoff[l] */
    uint8_t val[256];
    /* DC: (code + extra bits) | size << 8. AC: bits | zigzag advance << 8 | EOB << 15 for a
     * run of whole symbols. 0: take the one-symbol path. */
    uint32_t fast[1 << FAST_BITS];
} htab;

/* Canonical code tables with libjpeg's validity checks (jpeg_make_d_derived_tbl). */
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
            if (le && l + s <= FAST_BITS) e = (uint32_t)(l + s) | (uint32_t)s << 8;
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
            if (pos) e = (uint32_t)pos | (uint32_t)adv << 8 | (uint32_t)eob << 15;
        }
        t->fast[i] = e;
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
    int h, v;       /* sampling factors */
    int hx, vx;     /* box upsampling factors to the output */
    int pw, ph;     /* plane size in samples */
    uint8_t *plane; /* samples at the output scale, MCU-padded */
    const htab *dc, *ac;
    int16_t q[64]; /* natural order, as libjpeg's ISLOW_MULT_TYPE */
    int pred;
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
    size_t n = len + PAD + 6 * sizeof(htab) + ((size_t)ci->image_width / 8 + 1) * 3 + 128;
    for (int i = 0; i < ci->num_components; i++) n += plane_bytes(ci, i, mx, my);
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
        while (j < n && p[j] == 0xFF) j++; /* fill bytes before a marker */
        if (j >= n) return -1;
        if (p[j] == 0) {
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
            l_ = (int)(e_ & 31), s_ = (int)(e_ >> 8) & 15;                                         \
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

/* Phase 1: every block into the planes, DC / 8; the AC codes skipped. -1: decline. */
static int decode_blocks(const struct jpeg_decompress_struct *ci, comp *cs, int nc, data *d, int mx,
                         int my) {
    comp *slot_c[MAX_BLOCKS];
    int slot_x[MAX_BLOCKS], slot_y[MAX_BLOCKS], nslot = 0;
    for (int i = 0; i < nc; i++)
        for (int y = 0; y < (nc == 1 ? 1 : cs[i].v); y++)
            for (int x = 0; x < (nc == 1 ? 1 : cs[i].h); x++)
                slot_c[nslot] = &cs[i], slot_x[nslot] = x, slot_y[nslot++] = y;
    long ri = ci->restart_interval, left = ri;
    size_t seg = 0;
    uint64_t b = 0;
    int n = 0;
    const uint8_t *p = d->buf;
    const uint8_t *lim = d->buf + d->len + 16; /* p runs up to 8 bytes ahead of the bits used */
    for (int my_ = 0; my_ < my; my_++) {
        uint8_t *row[MAX_BLOCKS]; /* each slot's first sample in this MCU row */
        int step[MAX_BLOCKS];     /* and how far the next MCU's is */
        for (int j = 0; j < nslot; j++) {
            comp *c = slot_c[j];
            int h = nc == 1 ? 1 : c->h, v = nc == 1 ? 1 : c->v;
            row[j] = c->plane + ((size_t)my_ * v + slot_y[j]) * c->pw + slot_x[j];
            step[j] = h;
        }
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
                uint8_t *out = row[j] + (size_t)mx_ * step[j];
                if (p > lim) return -1;
                REFILL();
                READ_DC(c);
                const htab *t = c->ac;
                int k = 1;
                for (;;) { /* skip the AC terms, zigzag 1..63 */
                    REFILL();
                    for (int i = 0; i < 4; i++) { /* 4 x 12 bits <= 56 */
                        uint32_t e = t->fast[b >> (64 - FAST_BITS)];
                        int adv = (int)(e >> 8) & 127;
                        if (!e || k + adv >= 64) goto one;
                        DROP((int)(e & 31));
                        if (e >> 15) goto eob;
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
            eob:
                *out = idct_limit(DESCALE((int64_t)((int16_t)c->pred * c->q[0]), 3));
            }
        }
    }
    /* the scan ends in the last segment, with fewer than 8 bits left, then EOI */
    long used = (long)(p - d->buf) * 8 - n;
    long end = (long)d->ends[seg] * 8;
    if (seg + 1 != d->nseg || used > end || end - used >= 8) return -1;
    return 0;
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
    uint8_t *mem = malloc((size_t)ow * 3 + 4 + 64);
    if (!mem) return -1;
    uint8_t *row = mem + ((64 - ((uintptr_t)mem & 63)) & 63);
    memset(row + (size_t)ow * 3, 0, 4);
    ycc t;
    if (ci->jpeg_color_space == JCS_YCbCr) ycc_tables(&t);
    for (int y = 0; y < oh; y++) {
        if (!out->need(out->ctx, y)) continue;
        if (nc == 1) {
            const uint8_t *g = cs[0].plane + (size_t)y * cs[0].pw;
            for (int x = 0; x < ow; x++) row[x * 3] = row[x * 3 + 1] = row[x * 3 + 2] = g[x];
        } else {
            const uint8_t *p0 = cs[0].plane + (size_t)(y / cs[0].vx) * cs[0].pw;
            const uint8_t *p1 = cs[1].plane + (size_t)(y / cs[1].vx) * cs[1].pw;
            const uint8_t *p2 = cs[2].plane + (size_t)(y / cs[2].vx) * cs[2].pw;
            int h0 = cs[0].hx, h1 = cs[1].hx, h2 = cs[2].hx;
            if (ci->jpeg_color_space == JCS_RGB) {
                for (int x = 0; x < ow; x++) {
                    row[x * 3] = p0[x / h0];
                    row[x * 3 + 1] = p1[x / h1];
                    row[x * 3 + 2] = p2[x / h2];
                }
            } else {
                for (int x = 0; x < ow; x++) {
                    int Y = p0[x / h0], cb = p1[x / h1], cr = p2[x / h2];
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

sn_jdc_status sn_jdc_decode(const struct jpeg_decompress_struct *ci, const sn_jdc_out *out) {
    if (!sn_jdc_eligible(ci)) return SN_JDC_DECLINE;
    int nc = ci->num_components, mx, my;
    mcu_grid(ci, &mx, &my);
    comp cs[3];
    memset(cs, 0, sizeof cs);
    htab *tabs = malloc(2 * (size_t)nc * sizeof *tabs);
    data d = {0};
    sn_jdc_status st = SN_JDC_NOMEM;
    if (!tabs) goto done;
    for (int i = 0; i < nc; i++) {
        const jpeg_component_info *ji = &ci->comp_info[i];
        comp *c = &cs[i];
        c->h = ji->h_samp_factor, c->v = ji->v_samp_factor;
        c->hx = nc == 1 ? 1 : ci->max_h_samp_factor / c->h;
        c->vx = nc == 1 ? 1 : ci->max_v_samp_factor / c->v;
        c->pw = nc == 1 ? mx : mx * c->h;
        c->ph = nc == 1 ? my : my * c->v;
        const JQUANT_TBL *q = ci->quant_tbl_ptrs[ji->quant_tbl_no];
        for (int k = 0; k < 64; k++) c->q[k] = (int16_t)q->quantval[k];
        if (!(c->plane = malloc(plane_bytes(ci, i, mx, my)))) goto done;
        st = SN_JDC_DECLINE;
        int dn = ji->dc_tbl_no, an = ji->ac_tbl_no;
        if (dn < 0 || dn >= NUM_HUFF_TBLS || an < 0 || an >= NUM_HUFF_TBLS ||
            build(&tabs[2 * i], ci->dc_huff_tbl_ptrs[dn], 0) < 0 ||
            build(&tabs[2 * i + 1], ci->ac_huff_tbl_ptrs[an], 1) < 0)
            goto done;
        c->dc = &tabs[2 * i], c->ac = &tabs[2 * i + 1];
        st = SN_JDC_NOMEM;
    }
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
    if (decode_blocks(ci, cs, nc, &d, mx, my) < 0) {
        st = SN_JDC_DECLINE;
        goto done;
    }
    st = emit_rows(ci, cs, nc, out) < 0 ? SN_JDC_NOMEM : SN_JDC_DONE;
done:
    for (int i = 0; i < nc; i++) free(cs[i].plane);
    free(tabs);
    free(d.buf);
    free(d.ends);
    free(d.rst);
    return st;
}
