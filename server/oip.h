/* oip.h - the Open Inference Protocol (KServe v2) inference request and response for a
 * ShuffleNet classifier, with Triton's binary tensor data and classification extensions.
 *
 * Pure code: no HTTP, no threads, no globals. sn_oip_parse takes the request body (a JSON
 * header, then any binary tensor data) and checks it against the model: one input, either
 *   "image"  BYTES [N] or [N, 1]: encoded JPEG/PNG, base64 strings in JSON or binary
 *            elements (a 4-byte little-endian length before each; one element may come
 *            without it), decoded later by the workers exactly as /classify's uploads;
 *   "input"  FP32 [N, 3, S, S]: the preprocessed tensor, JSON (flat or nested) or binary;
 * and the outputs "logits" / "probabilities" FP32 [N, classes], each optionally as
 * classification (BYTES [N, K], "value:index:label") and/or binary. Every problem is one
 * line in err (the caller answers 400 with it).
 *
 * Allocation bound: the JSON header is parsed by jansson (about 50 bytes per JSON value),
 * after a scan that refuses a header holding more values than the largest valid request
 * (max_batch tensors) needs; the parsed request holds at most N tensors of 3*S*S floats
 * plus the decoded base64 bytes (never more than the header's length). */
#ifndef SN_OIP_H
#define SN_OIP_H

#include <stddef.h>
#include <stdint.h>

#include "common/labels.h"

#define SN_OIP_INPUT_IMAGE  "image"
#define SN_OIP_INPUT_TENSOR "input"

/* What the parser checks a request against. */
typedef struct {
    int input_size;  /* S */
    int num_classes; /* classes */
    int max_batch;   /* N at most */
    /* Memory budget hooks (optional, as in sn_input_opts): the JSON tree jansson builds is
     * reserved (SN_OIP_JSON_BYTES a value, counted before parsing) and released after. */
    int (*reserve)(void *ctx, long long bytes);
    void (*release)(void *ctx, long long bytes);
    void *budget_ctx;
} sn_oip_model;

/* What jansson takes per JSON value, at most: a json_t real/integer (24 bytes, a 32-byte
 * malloc chunk) plus its slot in a doubling array (up to 16 bytes), rounded up. */
#define SN_OIP_JSON_BYTES 64

enum { SN_OIP_LOGITS, SN_OIP_PROBS, SN_OIP_NOUT };

typedef struct {
    int want;     /* return this output */
    int classify; /* > 0: as Triton's classification, the top K "value:index:label" */
    int binary;   /* in the binary part */
} sn_oip_output;

typedef struct {
    char *id;  /* "id", NULL when absent */
    int image; /* 1: encoded images (img, img_len); 0: tensor */
    int n;     /* batch */
    const uint8_t **img;
    size_t *img_len;
    float *tensor; /* n x 3*S*S floats */
    uint8_t *buf;  /* decoded base64 */
    sn_oip_output out[SN_OIP_NOUT];
    int order[SN_OIP_NOUT]; /* the outputs in the order they were asked for */
    int nout;
} sn_oip_request;

/* Parse body[0..len). header_len: the Inference-Header-Content-Length value (the JSON's
 * length; the rest of the body is binary tensor data), or -1 when the header is absent and
 * the whole body is JSON. On success returns 0 and req (free it with sn_oip_request_free)
 * may point into body; on failure -1 with err naming the problem (-2: out of memory, -3: the
 * memory budget refused the JSON tree) and req empty. */
int sn_oip_parse(const sn_oip_model *m, const uint8_t *body, size_t len, long long header_len,
                 sn_oip_request *req, char *err, size_t errlen);
void sn_oip_request_free(sn_oip_request *req);

/* The response to req: logits holds req->n x m->num_classes raw logits; probabilities are
 * their softmax (sn_softmax, as /classify's scores). version may be NULL. When any output is
 * binary, *json_len is the JSON header's length (for Inference-Header-Content-Length),
 * else 0. Returns a malloc'd body of *len bytes, or NULL when out of memory. */
char *sn_oip_response(const sn_oip_model *m, const sn_oip_request *req, const char *model_name,
                      const char *version, const float *logits, const sn_labels *labels,
                      size_t *len, size_t *json_len);

#endif
