/* shared.h - the unit tests' way to ../shared (or $SN_SHARED): a test that needs a file from
 * it calls sn_test_shared(); when the file is absent (a user's fresh clone) the test is
 * skipped with a visible reason, and Criterion counts it as skipped, never as passed. */
#ifndef SN_TEST_SHARED_H
#define SN_TEST_SHARED_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/util.h"

/* The shared folder, whether or not it exists. */
static inline const char *sn_test_shared_dir(void) {
    const char *s = getenv("SN_SHARED");
    return s && *s ? s : "../shared";
}

/* The shared folder if rel (a path inside it) is readable; else skips the calling test. */
static inline const char *sn_test_shared(const char *rel) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", sn_test_shared_dir(), rel);
    if (access(p, R_OK) != 0) cr_skip_test("SKIP: %s not found (../shared is absent)", p);
    return sn_test_shared_dir();
}

/* The whole file at path (asserting it can be read); free() it. */
static inline uint8_t *sn_test_read(const char *path, size_t *len) {
    char err[1200];
    uint8_t *b = sn_read_file(path, 0, len, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    return b;
}

#endif
