/* zip.c - the zip container of torch.save checkpoints (zip.h). */
#include "tools/zip.h"

#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

uint32_t sn_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    static uint32_t table[256];
    static int ready;
    if (!ready) { /* idempotent, so a race between threads is harmless */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    while (n--) crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static int zcmp(const void *a, const void *b) {
    const sn_zip_entry *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* Resolve zip64 values in a central directory entry's extra field (id 0x0001). */
static int zip64_extra(const uint8_t *x, size_t len, sn_zip_entry *e, uint32_t usz, uint32_t csz,
                       uint32_t off) {
    while (len >= 4) {
        uint16_t id = sn_rd16le(x), sz = sn_rd16le(x + 2);
        if ((size_t)sz + 4 > len) return -1;
        if (id == 1) {
            const uint8_t *p = x + 4, *end = x + 4 + sz;
            if (usz == 0xffffffffu) {
                if (end - p < 8) return -1;
                e->usize = sn_rd64le(p), p += 8;
            }
            if (csz == 0xffffffffu) {
                if (end - p < 8) return -1;
                e->csize = sn_rd64le(p), p += 8;
            }
            if (off == 0xffffffffu) {
                if (end - p < 8) return -1;
                e->local = sn_rd64le(p);
            }
            return 0;
        }
        x += 4 + sz;
        len -= 4 + (size_t)sz;
    }
    return usz == 0xffffffffu || csz == 0xffffffffu || off == 0xffffffffu ? -1 : 0;
}

int sn_zip_open(sn_zip *z, const uint8_t *buf, size_t size, char *err, size_t errlen) {
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->size = size;
    if (size < 22) return sn_errf(err, errlen, "zip: file too short");
    size_t eocd = 0;
    int found = 0;
    size_t lo = size - 22 > 65535 ? size - 22 - 65535 : 0;
    for (size_t i = size - 22 + 1; i-- > lo;)
        if (sn_rd32le(buf + i) == 0x06054b50u && i + 22 + sn_rd16le(buf + i + 20) == size) {
            eocd = i;
            found = 1;
            break;
        }
    if (!found) return sn_errf(err, errlen, "zip: end of central directory not found (truncated?)");
    uint64_t count = sn_rd16le(buf + eocd + 10), cdsize = sn_rd32le(buf + eocd + 12),
             cdoff = sn_rd32le(buf + eocd + 16);
    if (sn_rd16le(buf + eocd + 4) != 0 || sn_rd16le(buf + eocd + 6) != 0)
        return sn_errf(err, errlen, "zip: multi-disk archives are not supported");
    if (count == 0xffff || cdsize == 0xffffffffu || cdoff == 0xffffffffu) {
        if (eocd < 20 || sn_rd32le(buf + eocd - 20) != 0x07064b50u)
            return sn_errf(err, errlen, "zip: zip64 locator missing");
        uint64_t o = sn_rd64le(buf + eocd - 20 + 8);
        if (size < 56 || o > size - 56 || sn_rd32le(buf + o) != 0x06064b50u)
            return sn_errf(err, errlen, "zip: bad zip64 end of central directory");
        count = sn_rd64le(buf + o + 32);
        cdsize = sn_rd64le(buf + o + 40);
        cdoff = sn_rd64le(buf + o + 48);
    }
    if (cdoff > size || cdsize > size - cdoff)
        return sn_errf(err, errlen, "zip: central directory lies outside the file");
    if (count > cdsize / 46)
        return sn_errf(err, errlen, "zip: bad entry count %llu", (unsigned long long)count);
    z->e = calloc(count ? count : 1, sizeof(sn_zip_entry));
    if (!z->e) return sn_errf(err, errlen, "zip: out of memory");
    const uint8_t *p = buf + cdoff, *end = buf + cdoff + cdsize;
    for (uint64_t k = 0; k < count; k++) {
        if (end - p < 46 || sn_rd32le(p) != 0x02014b50u)
            return sn_errf(err, errlen, "zip: bad central directory entry %llu",
                           (unsigned long long)k);
        sn_zip_entry *e = &z->e[z->n++];
        size_t nl = sn_rd16le(p + 28), xl = sn_rd16le(p + 30), cl = sn_rd16le(p + 32);
        if ((size_t)(end - p) < 46 + nl + xl + cl)
            return sn_errf(err, errlen, "zip: central directory entry %llu overruns",
                           (unsigned long long)k);
        e->method = sn_rd16le(p + 10);
        e->crc = sn_rd32le(p + 16);
        e->csize = sn_rd32le(p + 20);
        e->usize = sn_rd32le(p + 24);
        e->local = sn_rd32le(p + 42);
        e->name = p + 46;
        e->nlen = nl;
        if (zip64_extra(p + 46 + nl, xl, e, sn_rd32le(p + 24), sn_rd32le(p + 20),
                        sn_rd32le(p + 42)) != 0)
            return sn_errf(err, errlen, "zip: bad zip64 extra field in entry %llu",
                           (unsigned long long)k);
        p += 46 + nl + xl + cl;
    }
    qsort(z->e, z->n, sizeof(sn_zip_entry), zcmp);
    return 0;
}

const sn_zip_entry *sn_zip_find(const sn_zip *z, const char *name) {
    sn_zip_entry key = {.name = (const uint8_t *)name, .nlen = strlen(name)};
    return bsearch(&key, z->e, z->n, sizeof(sn_zip_entry), zcmp);
}

/* The data of a stored entry, CRC-checked. */
const uint8_t *sn_zip_data(const sn_zip *z, const sn_zip_entry *e, char *err, size_t errlen) {
    const char *nm = (const char *)e->name;
    int nl = (int)(e->nlen < 120 ? e->nlen : 120);
    if (e->method != 0) {
        sn_errf(err, errlen,
                "zip: entry '%.*s' is compressed (method %d); torch.save stores "
                "entries uncompressed",
                nl, nm, e->method);
        return NULL;
    }
    if (e->csize != e->usize || e->local > z->size || z->size - e->local < 30 ||
        sn_rd32le(z->buf + e->local) != 0x04034b50u) {
        sn_errf(err, errlen, "zip: bad local header for entry '%.*s'", nl, nm);
        return NULL;
    }
    uint64_t off =
        e->local + 30 + sn_rd16le(z->buf + e->local + 26) + sn_rd16le(z->buf + e->local + 28);
    if (off > z->size || e->usize > z->size - off) {
        sn_errf(err, errlen, "zip: entry '%.*s' runs past the end of the file (truncated?)", nl,
                nm);
        return NULL;
    }
    if (sn_crc32(0, z->buf + off, (size_t)e->usize) != e->crc) {
        sn_errf(err, errlen, "zip: CRC mismatch in entry '%.*s' (corrupt file)", nl, nm);
        return NULL;
    }
    return z->buf + off;
}
