/* preprocess.h - a whole decoded 8-bit RGB image -> network input tensor, exactly as the
 * model's metadata says: resize the short side (OpenCV INTER_LINEAR or Pillow antialiased
 * bilinear), centre crop with Python's round-half-to-even offsets, channel order,
 * (x - mean) / std. This is the straightforward reference: the service's streaming path
 * (resize.h, fed by stream.h) is tested bit-identical against it on every shape, preset and
 * orientation (tests/unit/test_preprocess.c, test_stream.c, fuzz_image); nothing in the
 * service calls it. */
#ifndef SN_PREPROCESS_H
#define SN_PREPROCESS_H

#include <stdint.h>
#include "engine/shufflenet.h"

/* Size the short side of a w x h image is resized to, per p (long side rounded or floored). */
void sn_preprocess_resized_size(const sn_preprocess *p, int w, int h, int *rw, int *rh);

/* rgb: w*h*3 bytes (R,G,B). out: [3][crop][crop] float32 in the model's channel order,
 * plane c = (x - mean[c]) / std[c]. Only the crop window of the resized image is computed
 * (one crop*crop*3 scratch buffer plus coefficient tables, allocated per call), so it is
 * thread-safe and cheap for any input size. OpenCV mode is bit-exact with cv2.resize
 * INTER_LINEAR on uint8 as x86 builds run it (including its SIMD vertical-pass rounding).
 * Returns 0, or -1 on bad arguments / allocation failure (err filled). */
int sn_preprocess_image(const sn_preprocess *p, const uint8_t *rgb, int w, int h, float *out,
                        char *err, size_t errlen);

#endif
