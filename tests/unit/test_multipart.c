/* test_multipart.c - the multipart/form-data parser (server/multipart.c, whose object the
 * unit binary links). */
#include <criterion/criterion.h>
#include <string.h>

#include "server/multipart.h"

static char err[256];

static int parse(const char *b, const char *body, sn_part *parts, int max) {
    return sn_multipart_parse(b, (const uint8_t *)body, strlen(body), parts, max, err, sizeof err);
}

Test(multipart, boundary_plain_and_quoted) {
    char b[80];
    cr_assert_eq(
        sn_multipart_boundary("multipart/form-data; boundary=abc123", b, sizeof b, err, sizeof err),
        0);
    cr_assert_str_eq(b, "abc123");
    cr_assert_eq(sn_multipart_boundary("Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c\"", b,
                                       sizeof b, err, sizeof err),
                 0);
    cr_assert_str_eq(b, "a b:c");
}

Test(multipart, boundary_rejects_bad) {
    char b[80];
    cr_assert_eq(sn_multipart_boundary("image/png", b, sizeof b, err, sizeof err), -1);
    cr_assert_eq(sn_multipart_boundary("multipart/form-data", b, sizeof b, err, sizeof err), -1);
    cr_assert_eq(
        sn_multipart_boundary("multipart/form-data; boundary=", b, sizeof b, err, sizeof err), -1);
    cr_assert_eq(
        sn_multipart_boundary("multipart/form-data; boundary=\"abc", b, sizeof b, err, sizeof err),
        -1);
    char longb[120] = "multipart/form-data; boundary=";
    memset(longb + strlen(longb), 'x', 75);
    cr_assert_eq(sn_multipart_boundary(longb, b, sizeof b, err, sizeof err), -1);
    cr_assert_eq(
        sn_multipart_boundary("multipart/form-datax; boundary=a", b, sizeof b, err, sizeof err),
        -1);
}

Test(multipart, two_parts_with_binary_content) {
    const char body[] = "preamble\r\n--XyZ\r\n"
                        "Content-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                        "Content-Type: image/png\r\n\r\n"
                        "\x89PNG\r\n--Xy\0Z\r\n"
                        "--XyZ\r\n"
                        "content-disposition: form-data; name=top_k\r\n\r\n"
                        "3\r\n--XyZ--\r\nepilogue";
    sn_part p[4];
    int n =
        sn_multipart_parse("XyZ", (const uint8_t *)body, sizeof body - 1, p, 4, err, sizeof err);
    cr_assert_eq(n, 2, "%s", err);
    cr_assert_str_eq(p[0].name, "image");
    cr_assert_str_eq(p[0].filename, "a.png");
    cr_assert_eq(p[0].has_filename, 1);
    cr_assert_str_eq(p[0].content_type, "image/png");
    cr_assert_eq(p[0].len, 12);
    cr_assert_eq(memcmp(p[0].data, "\x89PNG\r\n--Xy\0Z", 12), 0);
    cr_assert_str_eq(p[1].name, "top_k");
    cr_assert_eq(p[1].has_filename, 0);
    cr_assert_eq(p[1].len, 1);
    cr_assert_eq(p[1].data[0], '3');
}

Test(multipart, empty_part_and_no_headers) {
    sn_part p[2];
    cr_assert_eq(parse("b", "--b\r\n\r\n\r\n--b--", p, 2), 1, "%s", err);
    cr_assert_eq(p[0].len, 0);
    cr_assert_str_eq(p[0].name, "");
}

Test(multipart, malformed_bodies) {
    sn_part p[2];
    cr_assert_eq(parse("b", "", p, 2), -1);
    cr_assert_eq(parse("b", "no boundary here", p, 2), -1);
    cr_assert_eq(parse("b", "--b--", p, 2), -1); /* no parts */
    cr_assert_eq(parse("b", "--b\r\nContent-Disposition: form-data\r\n\r\nabc", p, 2), -1);
    cr_assert_eq(parse("b", "--b\r\nContent-Disposition: form-data", p, 2), -1);
    cr_assert_eq(parse("b", "--bjunk\r\n\r\nx\r\n--b--", p, 2), -1);
    cr_assert_eq(parse("b", "--b\r\nNoColonHere\r\n\r\nx\r\n--b--", p, 2), -1);
    cr_assert_eq(parse("b", "--b\r\nContent-Disposition: attachment\r\n\r\nx\r\n--b--", p, 2), -1);
    cr_assert_eq(
        parse("b", "--b\r\nContent-Disposition: form-data; name=\"x\r\n\r\nx\r\n--b--", p, 2), -1);
    cr_assert_str_neq(err, "");
}

Test(multipart, too_many_parts) {
    sn_part p[2];
    cr_assert_eq(parse("b", "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--", p, 2), -1);
    cr_assert_eq(parse("b", "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b--", p, 2), 2);
}

Test(multipart, every_truncation_is_rejected_cleanly) {
    const char body[] = "--q\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n"
                        "payload\r\n--q--\r\n";
    sn_part p[2];
    size_t full = sizeof body - 1;
    /* any prefix that cuts before the closing "--" is malformed, never a crash */
    for (size_t n = 0; n < full - 4; n++)
        cr_assert_eq(sn_multipart_parse("q", (const uint8_t *)body, n, p, 2, err, sizeof err), -1,
                     "prefix %zu accepted", n);
    cr_assert_eq(sn_multipart_parse("q", (const uint8_t *)body, full, p, 2, err, sizeof err), 1);
    cr_assert_eq(p[0].len, 7);
}
