/* zip.h - reading the zip archives torch.save writes (torch >= 1.6): the central directory
 * (zip64 included), stored (uncompressed) entries, and their CRC-32. Pure functions over a
 * buffer the caller owns. Also the little-endian readers the checkpoint code shares. */
#ifndef SN_ZIP_H
#define SN_ZIP_H

#include <stddef.h>
#include <stdint.h>

static inline uint16_t sn_rd16le(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t sn_rd32le(const uint8_t *p) {
    return (uint32_t)sn_rd16le(p) | (uint32_t)sn_rd16le(p + 2) << 16;
}
static inline uint64_t sn_rd64le(const uint8_t *p) {
    return (uint64_t)sn_rd32le(p) | (uint64_t)sn_rd32le(p + 4) << 32;
}

typedef struct {
    const uint8_t *name;
    size_t nlen;
    uint16_t method;
    uint32_t crc;
    uint64_t csize, usize, local;
} sn_zip_entry;

typedef struct {
    const uint8_t *buf;
    size_t size;
    sn_zip_entry *e;
    size_t n;
} sn_zip;

/* Parse the central directory of buf. Returns 0, or -1 with err (z->e may need freeing). */
int sn_zip_open(sn_zip *z, const uint8_t *buf, size_t size, char *err, size_t errlen);
/* The entry called name, or NULL. */
const sn_zip_entry *sn_zip_find(const sn_zip *z, const char *name);
/* The data of a stored entry, CRC-checked; NULL with err otherwise. */
const uint8_t *sn_zip_data(const sn_zip *z, const sn_zip_entry *e, char *err, size_t errlen);

/* CRC-32 (zip polynomial) of n bytes, continuing from crc (start with 0). */
uint32_t sn_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
