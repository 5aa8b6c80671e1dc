/* fuzz_oip.c - libFuzzer target for the v2 (Open Inference Protocol) request parser and the
 * response builder (server/oip.c, server/oip_reply.c). Input: byte 0 bit 0 says whether an
 * Inference-Header-Content-Length is given, bytes 1-2 (little-endian) are its value; the rest
 * is the body (JSON header + binary tensor data). A small model (S = 4, 10 classes, batch at
 * most 4) keeps FP32 requests within reach. Every image must lie inside the body, and a parsed
 * request must produce a response. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "server/oip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    const uint8_t *body = data + 3;
    size_t len = size - 3;
    long long hl = (data[0] & 1) ? (long long)(data[1] | data[2] << 8) : -1;
    const sn_oip_model m = {.input_size = 4, .num_classes = 10, .max_batch = 4};
    sn_oip_request q;
    char err[512];
    if (sn_oip_parse(&m, body, len, hl, &q, err, sizeof err) != 0) return 0;
    if (q.n < 1 || q.n > m.max_batch || q.nout < 1 || q.nout > SN_OIP_NOUT) __builtin_trap();
    for (int i = 0; q.image && i < q.n; i++) {
        const uint8_t *p = q.img[i];
        int in_body = p >= body && p + q.img_len[i] <= body + len;
        int in_buf = q.buf && p >= q.buf;
        if (!in_body && !in_buf) __builtin_trap();
    }
    float logits[4 * 10];
    for (int i = 0; i < 40; i++) logits[i] = (float)(i % 7) - 3.0f;
    size_t rlen, jlen;
    char *resp = sn_oip_response(&m, &q, "m", "1", logits, NULL, &rlen, &jlen);
    if (!resp || jlen > rlen) __builtin_trap();
    free(resp);
    sn_oip_request_free(&q);
    return 0;
}
