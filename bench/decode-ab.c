/* decode-ab.c - build/decode-ab: the 1/8-scale JPEG decode of fast mode, the skipping decoder
 * (common/jpegdc.c) against libjpeg-turbo's own 1/8 decode, in one process, alternately.
 * Each round opens the file, decodes a centre window as the service's plan would read it
 * (every row of it) and closes; per file the median of the per-round time ratios is printed.
 * Usage: build/decode-ab [--rounds N] FILE.jpg...   (pin it: taskset -c 1 build/decode-ab) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    int rounds = 21, first = 1;
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: decode-ab [--rounds N] FILE.jpg...\n"
               "  Times the 1/8-scale decode of each JPEG with the skipping decoder and with\n"
               "  libjpeg-turbo, alternately, N rounds (default 21); prints medians and the\n"
               "  median per-round ratio libjpeg / skipping.\n");
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "--rounds")) {
        rounds = atoi(argv[2]);
        first = 3;
    }
    if (rounds < 1 || first >= argc) {
        fprintf(stderr, "usage: decode-ab [--rounds N] FILE.jpg...\n");
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
            a[i] = decode(d, (size_t)len, 0, &used);
            b[i] = decode(d, (size_t)len, 1, &u);
            if (a[i] < 0 || b[i] < 0) status = 1;
            r[i] = b[i] / a[i];
        }
        if (status == 0)
            printf("%s: skipping %.2f ms%s, libjpeg %.2f ms, libjpeg/skipping %.2fx\n", argv[f],
                   median(a, rounds) * 1e3, used ? "" : " (declined: libjpeg both times)",
                   median(b, rounds) * 1e3, median(r, rounds));
        free(d);
    }
    free(a), free(b), free(r);
    return status;
}
