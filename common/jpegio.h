/* jpegio.h - libjpeg-turbo and libpng plumbing shared by the whole-image decoder (image.c)
 * and the streaming one (stream.c): an error manager that never exits (errors and
 * corrupt-data warnings longjmp back with a status), the memory cap, the scan limit, EXIF
 * orientation, output colour space, Adobe CMYK, and libpng's reader set to 8-bit RGB the way
 * OpenCV's IMREAD_COLOR does it. Internal to common/. */
#ifndef SN_JPEGIO_H
#define SN_JPEGIO_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jpeglib.h>
#include <png.h>

#include "common/image.h"

#define SN_DIM_MAX 65535 /* largest width or height either decoder accepts */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg sees only this */
    jmp_buf jb;
    sn_image_status status;
    char msg[JMSG_LENGTH_MAX];
} sn_jpeg_err;

/* Error manager, memory cap (from the pixel budget), scan limit, memory source, APP1 kept.
 * The caller has done setjmp(e->jb) and memset cinfo/e/pr to 0. */
void sn_jpeg_setup(struct jpeg_decompress_struct *ci, sn_jpeg_err *e, struct jpeg_progress_mgr *pr,
                   long long max_pixels, const uint8_t *data, size_t len);
/* Jump back to the setjmp with status st (msg already in e->msg, or empty). */
void sn_jpeg_fail(struct jpeg_decompress_struct *ci, sn_image_status st);
/* After jpeg_read_header: refuse sizes over the budget (longjmp SN_IMG_TOO_LARGE). */
void sn_jpeg_check_size(struct jpeg_decompress_struct *ci, long long max_pixels);
/* EXIF orientation (1..8; 1 when absent or malformed) from the saved APP1 markers. */
int sn_jpeg_orientation(struct jpeg_decompress_struct *ci);
/* Output colour space: RGB, or CMYK for CMYK/YCCK (returns 1); longjmp on others. */
int sn_jpeg_set_color(struct jpeg_decompress_struct *ci);
/* Adobe CMYK/YCCK scanline (w pixels) to RGB as OpenCV does it. */
void sn_jpeg_cmyk_to_rgb(const uint8_t *in, uint8_t *out, int w, int inverted);
/* The error line for status e->status after the longjmp. */
void sn_jpeg_errmsg(const sn_jpeg_err *e, char *err, size_t errlen);

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    char msg[160];
} sn_png_src;

/* A libpng reader over src with its limits, errors longjmp'ing to png_jmpbuf; NULL on OOM. */
png_structp sn_png_reader(sn_png_src *src, png_infop *info);
/* After png_read_info: transforms to 8-bit RGB, checked. png_error on a surprise. */
void sn_png_to_rgb(png_structp png, png_infop info);

#endif
