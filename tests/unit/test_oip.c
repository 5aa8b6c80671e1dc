/* test_oip.c - the v2 (Open Inference Protocol) request parser and response builder
 * (server/oip.c, server/oip_reply.c, whose objects the unit binary links). A small model
 * (S = 2, 4 classes, batch at most 3) keeps the tensors short. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/oip.h"

static const sn_oip_model M = {.input_size = 2, .num_classes = 4, .max_batch = 3};
static char err[512];

static int parse(const char *json, const void *bin, size_t binlen, sn_oip_request *q) {
    /* binary images point into the body: it lives until the next parse */
    static uint8_t body[4096];
    size_t jl = strlen(json);
    cr_assert(jl + binlen <= sizeof body);
    memcpy(body, json, jl);
    if (binlen) memcpy(body + jl, bin, binlen);
    return sn_oip_parse(&M, body, jl + binlen, bin ? (long long)jl : -1, q, err, sizeof err);
}

Test(oip, base64_padding_variants) {
    /* "abcd" = YWJjZA==, "abc" = YWJj, "ab" = YWI= ; unpadded forms are accepted too */
    const char *ok[] = {"YWJjZA==", "YWJjZA", "YWJj", "YWI=", "YWI"};
    const size_t len[] = {4, 4, 3, 2, 2};
    for (int i = 0; i < 5; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
                 "\"data\":[\"%s\"]}]}",
                 ok[i]);
        sn_oip_request q;
        cr_assert_eq(parse(json, NULL, 0, &q), 0, "%s: %s", ok[i], err);
        cr_assert_eq(q.img_len[0], len[i], "%s", ok[i]);
        cr_assert_eq(memcmp(q.img[0], "abcd", len[i]), 0);
        sn_oip_request_free(&q);
    }
    const char *bad[] = {"YWJjZ", "YW=J", "YWJj====", "YW Jj", "YWJj-_"};
    for (int i = 0; i < 5; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
                 "\"data\":[\"%s\"]}]}",
                 bad[i]);
        sn_oip_request q;
        cr_assert_eq(parse(json, NULL, 0, &q), -1, "%s accepted", bad[i]);
        cr_assert(strstr(err, "base64"), "%s", err);
    }
}

Test(oip, bytes_binary_with_and_without_prefix) {
    const char *j2 = "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2,1],"
                     "\"parameters\":{\"binary_data_size\":13}}]}";
    sn_oip_request q;
    cr_assert_eq(parse(j2, "\3\0\0\0abc\2\0\0\0xy", 13, &q), 0, "%s", err);
    cr_assert_eq(q.n, 2);
    cr_assert_eq(q.img_len[0], 3);
    cr_assert_eq(memcmp(q.img[1], "xy", 2), 0);
    sn_oip_request_free(&q);
    /* one element without its length prefix (OpenVINO's examples) */
    const char *j1 = "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],"
                     "\"parameters\":{\"binary_data_size\":5}}]}";
    cr_assert_eq(parse(j1, "\xff\xd8\xff\xe0z", 5, &q), 0, "%s", err);
    cr_assert_eq(q.img_len[0], 5);
    sn_oip_request_free(&q);
    /* two elements must both carry it */
    const char *j2b = "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2],"
                      "\"parameters\":{\"binary_data_size\":6}}]}";
    cr_assert_eq(parse(j2b, "abcxyz", 6, &q), -1);
    cr_assert(strstr(err, "4-byte"), "%s", err);
}

Test(oip, fp32_nested_equals_flat_and_defaults) {
    sn_oip_request a, b;
    const char *flat = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,2,2],"
                       "\"data\":[1,2,3,4,5,6,7,8,9,10,11,12.5]}]}";
    const char *nested =
        "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,2,2],"
        "\"data\":[[[[1,2],[3,4]],[[5,6],[7,8]],[[9,10],[11,12.5]]]]}],\"id\":\"x\"}";
    cr_assert_eq(parse(flat, NULL, 0, &a), 0, "%s", err);
    cr_assert_eq(parse(nested, NULL, 0, &b), 0, "%s", err);
    cr_assert_eq(memcmp(a.tensor, b.tensor, 12 * sizeof(float)), 0);
    cr_assert_float_eq(b.tensor[11], 12.5f, 0);
    cr_assert_null(a.id);
    cr_assert_str_eq(b.id, "x");
    /* no outputs asked: both, JSON */
    cr_assert_eq(a.nout, 2);
    cr_assert(a.out[SN_OIP_LOGITS].want && a.out[SN_OIP_PROBS].want);
    cr_assert(!a.out[SN_OIP_LOGITS].binary && !a.out[SN_OIP_PROBS].classify);
    sn_oip_request_free(&a);
    sn_oip_request_free(&b);
}

Test(oip, batch_limit_and_sizes) {
    sn_oip_request q;
    cr_assert_eq(parse("{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[4],"
                       "\"data\":[\"\",\"\",\"\",\"\"]}]}",
                       NULL, 0, &q),
                 -1);
    cr_assert(strstr(err, "limit of 3"), "%s", err);
    float t[13] = {0}; /* one more than the tensor, for the left-over case */
    const char *j = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,2,2],"
                    "\"parameters\":{\"binary_data_size\":48}}]}";
    cr_assert_eq(parse(j, t, 48, &q), 0, "%s", err);
    sn_oip_request_free(&q);
    cr_assert_eq(parse(j, t, 44, &q), -1); /* the body is shorter than binary_data_size */
    cr_assert_eq(parse(j, t, 52, &q), -1); /* bytes left over */
    cr_assert(strstr(err, "add up to 48"), "%s", err);
}

Test(oip, binary_response_layout) {
    sn_oip_request q;
    const char *j = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[2,3,2,2],"
                    "\"parameters\":{\"binary_data_size\":96}}],\"outputs\":[{\"name\":"
                    "\"probabilities\",\"parameters\":{\"classification\":2,\"binary_data\":true}},"
                    "{\"name\":\"logits\",\"parameters\":{\"binary_data\":true}}]}";
    float t[24] = {0};
    cr_assert_eq(parse(j, t, 96, &q), 0, "%s", err);
    const float logits[8] = {1, 3, 2, 0, 5, 5, -1, 0};
    size_t len, jl;
    char *r = sn_oip_response(&M, &q, "m", "1", logits, NULL, &len, &jl);
    cr_assert_not_null(r);
    cr_assert(jl > 0 && jl < len);
    cr_assert(strstr(r, "\"binary_data_size\":32"), "%.*s", (int)jl, r); /* 2x4 FP32 */
    /* the classification part comes first: 2 images x 2 elements, each after its length */
    const uint8_t *b = (const uint8_t *)r + jl;
    uint32_t l0 = b[0] | b[1] << 8;
    cr_assert_eq(memcmp(b + 4, "0.", 2), 0);
    cr_assert(memchr(b + 4, ':', l0) != NULL);
    char first[64];
    snprintf(first, sizeof first, "%.*s", (int)l0, (const char *)b + 4);
    cr_assert(strstr(first, ":1:"), "best of {1,3,2,0} is index 1: %s", first);
    /* logits come last, as sent */
    cr_assert_eq(memcmp(r + len - 32, logits, 32), 0);
    /* image 2 ties 5 and 5: the lower index first */
    size_t o = 0;
    for (int k = 0; k < 2; k++) o += 4 + (b[o] | b[o + 1] << 8);
    snprintf(first, sizeof first, "%.*s", (int)(b[o] | b[o + 1] << 8), (const char *)b + o + 4);
    cr_assert(strstr(first, ":0:"), "%s", first);
    free(r);
    sn_oip_request_free(&q);
}

/* A budget of `left` bytes: the parser reserves its JSON tree before parsing and gives it
 * back after, on success and on failure alike. */
static long long left, held;
static int take(void *ctx, long long n) {
    (void)ctx;
    if (n > left) return -1;
    left -= n, held += n;
    return 0;
}
static void give(void *ctx, long long n) {
    (void)ctx;
    left += n, held -= n;
}

Test(oip, json_tree_reserved_against_the_budget) {
    sn_oip_model m = M;
    m.reserve = take, m.release = give;
    const char *json = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,2,"
                       "2],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12]}]}";
    const uint8_t *b = (const uint8_t *)json;
    sn_oip_request q;
    /* 12 numbers + the containers: more than 12 values, each SN_OIP_JSON_BYTES */
    left = 12 * SN_OIP_JSON_BYTES, held = 0;
    cr_assert_eq(sn_oip_parse(&m, b, strlen(json), -1, &q, err, sizeof err), -3);
    cr_assert(strstr(err, "memory budget"), "%s", err);
    cr_assert_eq(left, 12 * SN_OIP_JSON_BYTES, "nothing stays reserved after a refusal");
    left = 1 << 20;
    cr_assert_eq(sn_oip_parse(&m, b, strlen(json), -1, &q, err, sizeof err), 0, "%s", err);
    cr_assert_eq(held, 0, "the tree's reservation is given back after parsing");
    cr_assert_eq(q.tensor[11], 12.0f);
    sn_oip_request_free(&q);
    const char *bad = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,3,2,"
                      "2],\"data\":[1,2,3]}]}";
    cr_assert_eq(sn_oip_parse(&m, (const uint8_t *)bad, strlen(bad), -1, &q, err, sizeof err), -1);
    cr_assert_eq(held, 0, "and after a request that fails to parse");
}
