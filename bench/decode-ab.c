/* decode-ab.c - build/decode-ab: our own JPEG decoders (common/jpegdc.c) against
 * libjpeg-turbo, in one process, alternately. Default: the 1/8-scale decode of fast mode, a
 * centre window as the service's plan would read it (every row of it). --exact: exact mode's
 * full-scale decode through the real resampling plan of the megvii models (OpenCV bilinear to
 * 256, centre crop 224, into a tensor), the sparse decoder against libjpeg with crop and row
 * skipping. Each round opens the file, decodes and closes; per file the median of the
 * per-round time ratios is printed.
 * Usage: build/decode-ab [--exact] [--rounds N] FILE.jpg...   (pin it: taskset -c 1 ...) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/resize.h"
#include "common/stream.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int every(void *c, int i) {
    (void)c, (void)i;
    return 1;
}
static void take(void *c, int i, const uint8_t *px, ptrdiff_t step) {
    (void)i, (void)step;
    *(unsigned *)c += px[0]; /* touch the row */
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int plan_row(void *c, int y) {
    return sn_rs_row_needed(c, y);
}
static int plan_col(void *c, int x) {
    return sn_rs_col_needed(c, x);
}
static void plan_feed_row(void *c, int y, const uint8_t *px, ptrdiff_t step) {
    sn_rs_feed_row(c, y, px, step);
}
static void plan_feed_col(void *c, int x, const uint8_t *py, ptrdiff_t step) {
    sn_rs_feed_col(c, x, py, step);
}

/* One exact-mode decode + resample (ours: the sparse full-scale decoder where it takes the
 * file; else libjpeg), seconds; -1 on failure. *used: whether the sparse decoder ran. */
static double decode_exact(const uint8_t *d, size_t n, int ours, int *used) {
    static float tensor[3 * 224 * 224];
    static const sn_preprocess pre = {0,
                                      SN_RESIZE_OPENCV_BILINEAR,
                                      256,
                                      1,
                                      224,
                                      {103.53f, 116.28f, 123.675f},
                                      {57.375f, 57.12f, 58.395f}};
    char err[256];
    sn_stream *s;
    sn_stream_info si;
    double t0 = now();
    if (sn_stream_open(d, n, 0, &s, &si, err, sizeof err) != SN_IMG_OK) {
        fprintf(stderr, "decode-ab: %s\n", err);
        return -1;
    }
    sn_stream_full_scale(s, ours ? 0 : -1);
    sn_rs_plan *pl = sn_rs_plan_new(&pre, si.width, si.height, err, sizeof err);
    if (!pl) {
        fprintf(stderr, "decode-ab: %s\n", err);
        sn_stream_close(s);
        return -1;
    }
    sn_sink k = {0, 0, 0, 0, pl, plan_row, plan_col, plan_feed_row, plan_feed_col};
    sn_rs_plan_box(pl, &k.x0, &k.x1, &k.y0, &k.y1);
    int order = si.orientation <= 2 ? 1 : si.orientation <= 4 ? -1 : 0;
    sn_image_status st = SN_IMG_NOMEM;
    if (sn_rs_begin(pl, tensor, order) == 0) st = sn_stream_run(s, 8, &k, err, sizeof err);
    if (st == SN_IMG_OK && sn_rs_finish(pl, tensor) < 0) st = SN_IMG_INVALID;
    *used = sn_stream_used_full_scale(s);
    sn_rs_plan_free(pl);
    sn_stream_close(s);
    if (st != SN_IMG_OK) {
        fprintf(stderr, "decode-ab: %s\n", err);
        return -1;
    }
    return now() - t0;
}

/* One decode at 1/8 (no_dc: libjpeg's), seconds; -1 on failure. *used: whether the
 * skipping decoder ran. */
static double decode(const uint8_t *d, size_t n, int no_dc, int *used) {
    char err[256];
    sn_stream *s;
    sn_stream_info si;
    unsigned sum = 0;
    double t0 = now();
    if (sn_stream_open(d, n, 0, &s, &si, err, sizeof err) != SN_IMG_OK) {
        fprintf(stderr, "decode-ab: %s\n", err);
        return -1;
    }
    if (no_dc) sn_stream_no_dc(s);
    int w, h;
    sn_stream_scaled_size(s, 1, &w, &h);
    int side = w < h ? w : h, crop = side * 7 / 8; /* the megvii crop: 224 of 256 */
    sn_sink k = {(w - crop) / 2, (w + crop) / 2, (h - crop) / 2,
                 (h + crop) / 2, &sum,           every,
                 every,          take,           take};
    sn_image_status st = sn_stream_run(s, 1, &k, err, sizeof err);
    *used = sn_stream_used_dc(s);
    sn_stream_close(s);
    if (st != SN_IMG_OK) {
        fprintf(stderr, "decode-ab: %s\n", err);
        return -1;
    }
    return now() - t0;
}

int main(int argc, char **argv) {
    int rounds = 21, first = 1, exact = 0;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: decode-ab [--exact] [--rounds N] FILE.jpg...\n"
               "  Times the 1/8-scale decode of each JPEG with the skipping decoder and with\n"
               "  libjpeg-turbo, alternately, N rounds (default 21); prints medians and the\n"
               "  median per-round ratio libjpeg / skipping. --exact: exact mode's full-scale\n"
               "  decode + resample to the 224 tensor, the sparse decoder against libjpeg.\n");
        return 0;
    }
    if (argc > first && !strcmp(argv[first], "--exact")) exact = 1, first++;
    if (argc > first + 1 && !strcmp(argv[first], "--rounds")) {
        rounds = atoi(argv[first + 1]);
        first += 2;
    }
    if (rounds < 1 || first >= argc) {
        fprintf(stderr, "usage: decode-ab [--exact] [--rounds N] FILE.jpg...\n");
        return 2;
    }
    double *a = malloc((size_t)rounds * sizeof *a), *b = malloc((size_t)rounds * sizeof *b);
    double *r = malloc((size_t)rounds * sizeof *r);
    if (!a || !b || !r) return 1;
    int status = 0;
    for (int f = first; f < argc; f++) {
        FILE *fp = fopen(argv[f], "rb");
        if (!fp) {
            fprintf(stderr, "decode-ab: cannot open %s\n", argv[f]);
            status = 1;
            continue;
        }
        fseek(fp, 0, SEEK_END);
        long len = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        uint8_t *d = len > 0 ? malloc((size_t)len) : NULL;
        if (!d || fread(d, 1, (size_t)len, fp) != (size_t)len) {
            fprintf(stderr, "decode-ab: cannot read %s\n", argv[f]);
            fclose(fp);
            free(d);
            status = 1;
            continue;
        }
        fclose(fp);
        int used = 0, u;
        for (int i = 0; i < rounds && status == 0; i++) {
            a[i] =
                exact ? decode_exact(d, (size_t)len, 1, &used) : decode(d, (size_t)len, 0, &used);
            b[i] = exact ? decode_exact(d, (size_t)len, 0, &u) : decode(d, (size_t)len, 1, &u);
            if (a[i] < 0 || b[i] < 0) status = 1;
            r[i] = b[i] / a[i];
        }
        if (status == 0)
            printf("%s: %s %.2f ms%s, libjpeg %.2f ms, libjpeg/ours %.2fx\n", argv[f],
                   exact ? "sparse full-scale" : "skipping", median(a, rounds) * 1e3,
                   used ? "" : " (not taken: libjpeg both times)", median(b, rounds) * 1e3,
                   median(r, rounds));
        free(d);
    }
    free(a), free(b), free(r);
    return status;
}
