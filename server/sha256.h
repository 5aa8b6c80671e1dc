/* sha256.h - SHA-256 of a file, to report which weights a model was loaded from. */
#ifndef SN_SHA256_H
#define SN_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t block[64];
    size_t fill;
} sn_sha256;

void sn_sha256_init(sn_sha256 *s);
void sn_sha256_update(sn_sha256 *s, const void *data, size_t len);
void sn_sha256_final(sn_sha256 *s, uint8_t out[32]);
/* Hex digest of a file into hex (65 bytes). Returns 0 or -1 when it cannot be read. */
int sn_sha256_file(const char *path, char hex[65]);

#endif
