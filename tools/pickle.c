/* pickle.c - torch-free reader of PyTorch checkpoints (see pickle.h): the two torch.save
 * containers (zip: zip.c; legacy: five pickles and raw storages) fed to the pickle VM
 * (pickle_vm.c), and the flat state dict collected from its result. */
#include "tools/pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "tools/pickle_vm.h"
#include "tools/zip.h"

static int cmp_sref(const void *a, const void *b) {
    const storage_ref *x = *(storage_ref *const *)a, *y = *(storage_ref *const *)b;
    return strcmp(x->key, y->key);
}

/* Storage refs sorted by key, with consistent dtype and size per key checked. */
static storage_ref **sorted_srefs(vm *m, char *err, size_t errlen) {
    storage_ref **s = malloc((m->nsrefs ? m->nsrefs : 1) * sizeof *s);
    if (!s) {
        sn_errf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < m->nsrefs; i++) s[i] = &m->srefs[i];
    qsort(s, m->nsrefs, sizeof *s, cmp_sref);
    for (size_t i = 1; i < m->nsrefs; i++)
        if (strcmp(s[i]->key, s[i - 1]->key) == 0 &&
            (s[i]->dtype != s[i - 1]->dtype || s[i]->numel != s[i - 1]->numel)) {
            sn_errf(err, errlen, "pickle: storage '%s' is declared with two types or sizes",
                    s[i]->key);
            free(s);
            return NULL;
        }
    return s;
}

static int load_zip(vm *m, const uint8_t *buf, size_t size, value **root, char *err,
                    size_t errlen) {
    sn_zip z;
    int rc = -1;
    storage_ref **s = NULL;
    if (sn_zip_open(&z, buf, size, err, errlen) != 0) goto out;
    const sn_zip_entry *pkl = NULL;
    for (size_t i = 0; i < z.n; i++) {
        const sn_zip_entry *e = &z.e[i];
        if ((e->nlen == 8 || (e->nlen > 8 && e->name[e->nlen - 9] == '/')) &&
            memcmp(e->name + e->nlen - 8, "data.pkl", 8) == 0) {
            if (pkl) {
                sn_errf(err, errlen, "zip: more than one data.pkl record");
                goto out;
            }
            pkl = e;
        }
    }
    if (!pkl) {
        sn_errf(err, errlen, "zip: no data.pkl record (not a torch.save zip checkpoint)");
        goto out;
    }
    size_t plen = pkl->nlen - 8;
    if (plen > 200 || memchr(pkl->name, 0, plen)) {
        sn_errf(err, errlen, "zip: bad record prefix");
        goto out;
    }
    char prefix[256], name[320];
    memcpy(prefix, pkl->name, plen);
    prefix[plen] = 0;
    const uint8_t *pd = sn_zip_data(&z, pkl, err, errlen);
    if (!pd) goto out;

    snprintf(name, sizeof name, "%sbyteorder", prefix);
    const sn_zip_entry *bo = sn_zip_find(&z, name);
    if (bo) {
        const uint8_t *bd = sn_zip_data(&z, bo, err, errlen);
        if (!bd) goto out;
        if (bo->usize != 6 || memcmp(bd, "little", 6) != 0) {
            sn_errf(err, errlen, "zip: checkpoint is not little-endian");
            goto out;
        }
    }

    m->p = pd;
    m->end = pd + pkl->usize;
    if (!(*root = sn_pv_run(m))) goto out;

    if (!(s = sorted_srefs(m, err, errlen))) goto out;
    uint64_t checked = 0;
    for (size_t i = 0; i < m->nsrefs; i++) {
        if (i && strcmp(s[i]->key, s[i - 1]->key) == 0) {
            s[i]->data = s[i - 1]->data;
            continue;
        }
        snprintf(name, sizeof name, "%sdata/%s", prefix, s[i]->key);
        const sn_zip_entry *e = sn_zip_find(&z, name);
        if (!e) {
            sn_errf(err, errlen, "zip: storage record '%s' is missing", name);
            goto out;
        }
        uint64_t want = (uint64_t)s[i]->numel * sn_pt_dtype_size(s[i]->dtype);
        if (e->usize != want) {
            sn_errf(err, errlen, "zip: storage record '%s' has %llu bytes, expected %llu", name,
                    (unsigned long long)e->usize, (unsigned long long)want);
            goto out;
        }
        /* Records that share bytes could make the CRC work quadratic: bound it by the file. */
        checked += e->usize;
        if (checked > size) {
            sn_errf(err, errlen, "zip: storage records overlap");
            goto out;
        }
        if (!(s[i]->data = sn_zip_data(&z, e, err, errlen))) goto out;
    }
    rc = 0;
out:
    free(s);
    free(z.e);
    return rc;
}

static const uint8_t legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                         0x20, 0x6a, 0xa8, 0x50, 0x19};

static int load_legacy(vm *m, const uint8_t *buf, size_t size, value **root, char *err,
                       size_t errlen) {
    m->p = buf;
    m->end = buf + size;
    value *v = sn_pv_run(m);
    if (!v) return -1;
    if (v->t != V_BIGINT || v->slen != 10 || memcmp(v->s, legacy_magic, 10) != 0)
        return sn_errf(err, errlen, "legacy: bad magic number");
    if (!(v = sn_pv_run(m))) return -1;
    if (v->t != V_INT || v->i != 1001)
        return sn_errf(err, errlen, "legacy: unsupported protocol version");
    if (!(v = sn_pv_run(m))) return -1;
    value *le = sn_pv_dict_get(v, "little_endian");
    if (le && le->t == V_BOOL && !le->i)
        return sn_errf(err, errlen, "legacy: checkpoint is big-endian");
    if (!(*root = sn_pv_run(m))) return -1;
    value *keys = sn_pv_run(m);
    if (!keys) return -1;
    if (keys->t != V_LIST) return sn_errf(err, errlen, "legacy: storage key list is not a list");

    storage_ref **s = sorted_srefs(m, err, errlen);
    if (!s) return -1;
    int rc = -1;
    const uint8_t *p = m->p, *end = buf + size;
    for (size_t k = 0; k < keys->n; k++) {
        value *key = keys->items[k];
        if (key->t != V_STR) {
            sn_errf(err, errlen, "legacy: storage key %zu is not a string", k);
            goto out;
        }
        storage_ref probe = {.key = key->s}, *pp = &probe;
        storage_ref **hit = bsearch(&pp, s, m->nsrefs, sizeof *s, cmp_sref);
        if (!hit) {
            sn_errf(err, errlen, "legacy: storage '%.64s' is not used by any tensor", key->s);
            goto out;
        }
        while (hit > s && strcmp(hit[-1]->key, key->s) == 0) hit--;
        if ((*hit)->data) {
            sn_errf(err, errlen, "legacy: storage '%.64s' listed twice", key->s);
            goto out;
        }
        if (end - p < 8) {
            sn_errf(err, errlen, "legacy: file truncated in storage '%.64s'", key->s);
            goto out;
        }
        uint64_t count = sn_rd64le(p);
        p += 8;
        if (count != (uint64_t)(*hit)->numel) {
            sn_errf(err, errlen, "legacy: storage '%.64s' holds %llu elements, expected %lld",
                    key->s, (unsigned long long)count, (long long)(*hit)->numel);
            goto out;
        }
        size_t nbytes = (size_t)count * sn_pt_dtype_size((*hit)->dtype);
        if ((size_t)(end - p) < nbytes) {
            sn_errf(err, errlen, "legacy: file truncated in storage '%.64s'", key->s);
            goto out;
        }
        for (storage_ref **q = hit; q < s + m->nsrefs && strcmp((*q)->key, key->s) == 0; q++)
            (*q)->data = p;
        p += nbytes;
    }
    for (size_t i = 0; i < m->nsrefs; i++)
        if (!m->srefs[i].data) {
            sn_errf(err, errlen, "legacy: storage '%.64s' is missing from the file",
                    m->srefs[i].key);
            goto out;
        }
    if (p != end) {
        sn_errf(err, errlen, "legacy: %zu unexpected bytes after the last storage",
                (size_t)(end - p));
        goto out;
    }
    rc = 0;
out:
    free(s);
    return rc;
}

/* ---- public -------------------------------------------------------------------------- */

void sn_pt_free(sn_pt_checkpoint *ck) {
    for (int i = 0; i < ck->ntensors; i++) free(ck->tensors[i].name);
    free(ck->tensors);
    free(ck->buf);
    memset(ck, 0, sizeof *ck);
}

static int collect(vm *m, value *root, sn_pt_checkpoint *ck, char *err, size_t errlen) {
    if (root->t != V_DICT) return sn_errf(err, errlen, "checkpoint top level is not a dict");
    value *sd = sn_pv_dict_get(root, "state_dict");
    value *meta = sn_pv_dict_get(root, "meta");
    value *syn = sn_pv_dict_get(meta, "synthetic");
    ck->synthetic = syn && syn->t == V_BOOL && syn->i;
    if (sd && sd->t != V_DICT) return sn_errf(err, errlen, "checkpoint 'state_dict' is not a dict");
    if (!sd) sd = root;
    size_t n = sd->n / 2;
    if (n == 0) return sn_errf(err, errlen, "checkpoint holds no tensors");
    if (n > 1000000) return sn_errf(err, errlen, "checkpoint holds too many entries");
    ck->tensors = calloc(n, sizeof(sn_pt_tensor));
    if (!ck->tensors) return sn_errf(err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        value *k = sd->items[2 * i], *v = sd->items[2 * i + 1];
        if (k->t != V_STR || memchr(k->s, 0, k->slen))
            return sn_errf(err, errlen, "state dict key %zu is not a string", i);
        if (v->t != V_TENSOR)
            return sn_errf(err, errlen, "state dict entry '%.100s' is not a tensor%s", k->s,
                           sd == root ? " (and there is no 'state_dict' key)" : "");
        sn_pt_tensor *t = &ck->tensors[ck->ntensors++];
        storage_ref *r = &m->srefs[v->i];
        if (!(t->name = strdup(k->s))) return sn_errf(err, errlen, "out of memory");
        t->dtype = r->dtype;
        t->ndim = v->ten->ndim;
        memcpy(t->shape, v->ten->shape, sizeof t->shape);
        t->numel = v->ten->numel;
        t->data = r->data + (size_t)v->ten->offset * sn_pt_dtype_size(r->dtype);
    }
    return 0;
}

int sn_pt_parse(uint8_t *buf, size_t size, sn_pt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    ck->buf = buf;
    ck->size = size;
    vm m;
    memset(&m, 0, sizeof m);
    m.err = err;
    m.errlen = errlen;
    value *root = NULL;
    int rc;
    if (size >= 4 && memcmp(buf, "PK\x03\x04", 4) == 0) {
        ck->container = "zip";
        rc = load_zip(&m, buf, size, &root, err, errlen);
    } else if (size >= 3 && buf[0] == 0x80 && buf[1] == 2 && buf[2] == 0x8a) {
        ck->container = "legacy";
        rc = load_legacy(&m, buf, size, &root, err, errlen);
    } else if (size >= 262 && memcmp(buf + 257, "ustar", 5) == 0) {
        rc = sn_errf(err, errlen, "tar checkpoints (torch < 0.4) are not supported");
    } else {
        rc = sn_errf(err, errlen,
                     "not a PyTorch checkpoint (neither a torch.save zip archive "
                     "nor a legacy torch.save stream)");
    }
    if (rc == 0) rc = collect(&m, root, ck, err, errlen);
    sn_pv_free(&m);
    if (rc != 0) sn_pt_free(ck);
    return rc;
}

int sn_pt_load(const char *path, sn_pt_checkpoint *ck, char *err, size_t errlen) {
    memset(ck, 0, sizeof *ck);
    size_t size;
    uint8_t *buf = sn_read_file(path, 0, &size, err, errlen);
    if (!buf) return -1;
    char msg[256];
    if (sn_pt_parse(buf, size, ck, msg, sizeof msg) != 0)
        return sn_errf(err, errlen, "%s: %s", path, msg);
    return 0;
}
