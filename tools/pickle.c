/* pickle.c - torch-free reader of PyTorch checkpoints (see pickle.h): a minimal pickle VM,
 * the zip container (central directory, stored entries, CRC-32) and the legacy container.
 *
 * VM values live in a pool owned by the VM and are freed all at once, so the memo, the stack
 * and containers can share them freely (pickle semantics: a memoised dict is one object).
 * Every opcode reads a bounded number of bytes and creates at most one value, so memory is
 * linear in the pickle size, and nothing recurses. */
#include "tools/pickle.h"
#include "engine/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) {
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static const struct {
    const char *storage; /* torch.<storage> global */
    const char *name;
    size_t size;
} dtypes[SN_PT_NDTYPES] = {
    [SN_PT_F32] = {"FloatStorage", "float32", 4}, [SN_PT_F64] = {"DoubleStorage", "float64", 8},
    [SN_PT_F16] = {"HalfStorage", "float16", 2},  [SN_PT_BF16] = {"BFloat16Storage", "bfloat16", 2},
    [SN_PT_I64] = {"LongStorage", "int64", 8},    [SN_PT_I32] = {"IntStorage", "int32", 4},
    [SN_PT_I16] = {"ShortStorage", "int16", 2},   [SN_PT_I8] = {"CharStorage", "int8", 1},
    [SN_PT_U8] = {"ByteStorage", "uint8", 1},     [SN_PT_BOOL] = {"BoolStorage", "bool", 1},
};

const char *sn_pt_dtype_name(sn_pt_dtype t) {
    return (unsigned)t < SN_PT_NDTYPES ? dtypes[t].name : "?";
}
size_t sn_pt_dtype_size(sn_pt_dtype t) {
    return (unsigned)t < SN_PT_NDTYPES ? dtypes[t].size : 0;
}

uint32_t sn_pt_crc32(uint32_t crc, const uint8_t *p, size_t n) {
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

/* ---- values -------------------------------------------------------------------------- */

typedef enum {
    V_NONE,
    V_BOOL,
    V_INT,
    V_BIGINT, /* LONG1 wider than 8 bytes: raw little-endian bytes in s */
    V_FLOAT,
    V_STR,
    V_TUPLE,
    V_LIST,
    V_DICT, /* items holds key, value, key, value, ... in insertion order */
    V_GLOBAL,
    V_STORAGE, /* a persistent id: i indexes vm.srefs */
    V_TENSOR   /* i indexes vm.srefs, the rest in ten */
} vtype;

enum { G_ORDEREDDICT, G_REBUILD_TENSOR_V2, G_STORAGE };

typedef struct {
    int64_t offset;
    int ndim;
    int64_t shape[SN_PT_MAX_DIMS];
    int64_t numel;
} tensor_info;

typedef struct value value;
struct value {
    vtype t;
    int kind; /* V_GLOBAL: G_* */
    int64_t i;
    double f;
    char *s; /* V_STR, V_BIGINT (length slen), V_GLOBAL ("module.name") */
    size_t slen;
    value **items;
    size_t n, cap;
    tensor_info *ten;
};

typedef struct { /* one persistent storage id */
    char *key;
    sn_pt_dtype dtype;
    int64_t numel;
    const uint8_t *data; /* resolved from the container */
} storage_ref;

typedef struct {
    const uint8_t *start, *p, *end; /* the current pickle */
    value **pool;
    size_t npool, poolcap;
    value **stack;
    size_t sp, stackcap;
    size_t *marks;
    size_t nmarks, markcap;
    value **memo;
    size_t memocap, memolimit, memocount;
    storage_ref *srefs;
    size_t nsrefs, srefcap;
    char *err;
    size_t errlen;
} vm;

static int vm_fail(vm *m, const char *fmt, ...) {
    if (m->err && m->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->err, m->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Grow *arr (element size es) to hold at least need elements. */
static int grow(void *arr, size_t *cap, size_t need, size_t es) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / es) return -1;
        c *= 2;
    }
    void *p = realloc(*(void **)arr, c * es);
    if (!p) return -1;
    *(void **)arr = p;
    *cap = c;
    return 0;
}

static value *vnew(vm *m, vtype t) {
    if (grow(&m->pool, &m->poolcap, m->npool + 1, sizeof(value *)) != 0) return NULL;
    value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->t = t;
    m->pool[m->npool++] = v;
    return v;
}

static void vm_free(vm *m) {
    for (size_t i = 0; i < m->npool; i++) {
        free(m->pool[i]->s);
        free(m->pool[i]->items);
        free(m->pool[i]->ten);
        free(m->pool[i]);
    }
    for (size_t i = 0; i < m->nsrefs; i++) free(m->srefs[i].key);
    free(m->pool);
    free(m->stack);
    free(m->marks);
    free(m->memo);
    free(m->srefs);
    memset(m, 0, sizeof *m);
}

/* Push v; a NULL v is a failed constructor whose message (if any) stands. */
static int push(vm *m, value *v) {
    if (!v) return m->err && m->errlen && m->err[0] ? -1 : vm_fail(m, "pickle: out of memory");
    if (grow(&m->stack, &m->stackcap, m->sp + 1, sizeof(value *)) != 0)
        return vm_fail(m, "pickle: out of memory");
    m->stack[m->sp++] = v;
    return 0;
}

static value *pop(vm *m) {
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) {
        vm_fail(m, "pickle: stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static value *top(vm *m) {
    size_t floor = m->nmarks ? m->marks[m->nmarks - 1] : 0;
    if (m->sp <= floor) {
        vm_fail(m, "pickle: stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

static int add_item(vm *m, value *c, value *item) {
    if (grow(&c->items, &c->cap, c->n + 1, sizeof(value *)) != 0)
        return vm_fail(m, "pickle: out of memory");
    c->items[c->n++] = item;
    return 0;
}

/* Pop everything above the last mark into a new container of type t. */
static value *pop_mark(vm *m, vtype t) {
    if (!m->nmarks) {
        vm_fail(m, "pickle: no MARK on the stack");
        return NULL;
    }
    size_t base = m->marks[--m->nmarks];
    value *c = vnew(m, t);
    if (!c) {
        vm_fail(m, "pickle: out of memory");
        return NULL;
    }
    for (size_t k = base; k < m->sp; k++)
        if (add_item(m, c, m->stack[k]) != 0) return NULL;
    m->sp = base;
    return c;
}

static value *make_str(vm *m, const uint8_t *p, size_t n) {
    value *v = vnew(m, V_STR);
    if (!v || !(v->s = malloc(n + 1))) return NULL;
    memcpy(v->s, p, n);
    v->s[n] = 0;
    v->slen = n;
    return v;
}

static value *make_int(vm *m, int64_t x) {
    value *v = vnew(m, V_INT);
    if (v) v->i = x;
    return v;
}

static int is_str(const value *v, const char *s) {
    return v && v->t == V_STR && v->slen == strlen(s) && memcmp(v->s, s, v->slen) == 0;
}

/* Last value stored under string key k in dict d (NULL if absent). */
static value *dict_get(const value *d, const char *k) {
    if (!d || d->t != V_DICT) return NULL;
    for (size_t i = d->n; i >= 2; i -= 2)
        if (is_str(d->items[i - 2], k)) return d->items[i - 1];
    return NULL;
}

/* ---- globals, persistent ids, tensors ------------------------------------------------ */

static value *make_global(vm *m, const char *mod, size_t ml, const char *name, size_t nl) {
    char full[160];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml < 64 ? ml : 64), mod,
             (int)(nl < 64 ? nl : 64), name);
    int kind = -1;
    int64_t dt = 0;
    if (strcmp(full, "collections.OrderedDict") == 0)
        kind = G_ORDEREDDICT;
    else if (strcmp(full, "torch._utils._rebuild_tensor_v2") == 0)
        kind = G_REBUILD_TENSOR_V2;
    else if (ml == 5 && memcmp(mod, "torch", 5) == 0)
        for (int k = 0; k < SN_PT_NDTYPES; k++)
            if (strlen(dtypes[k].storage) == nl && memcmp(name, dtypes[k].storage, nl) == 0) {
                kind = G_STORAGE;
                dt = k;
            }
    if (kind < 0 || memchr(mod, 0, ml) || memchr(name, 0, nl) || ml > 64 || nl > 64) {
        for (char *c = full; *c; c++)
            if ((unsigned char)*c < 32 || (unsigned char)*c > 126) *c = '?';
        vm_fail(m,
                "pickle: unsupported global '%s' (allowed: collections.OrderedDict, "
                "torch._utils._rebuild_tensor_v2, torch.*Storage)",
                full);
        return NULL;
    }
    value *v = vnew(m, V_GLOBAL);
    if (!v || !(v->s = strdup(full))) return NULL;
    v->kind = kind;
    v->i = dt;
    return v;
}

/* ('storage', torch.XStorage, key, location, numel[, None]) -> V_STORAGE */
static value *persistent_load(vm *m, value *pid) {
    if (pid->t != V_TUPLE || pid->n < 5 || pid->n > 6 || !is_str(pid->items[0], "storage") ||
        pid->items[1]->t != V_GLOBAL || pid->items[1]->kind != G_STORAGE ||
        pid->items[2]->t != V_STR || pid->items[3]->t != V_STR || pid->items[4]->t != V_INT) {
        vm_fail(m, "pickle: persistent id is not ('storage', type, key, location, numel)");
        return NULL;
    }
    if (pid->n == 6 && pid->items[5]->t != V_NONE) {
        vm_fail(m, "pickle: storage views (legacy view metadata) are not supported");
        return NULL;
    }
    value *key = pid->items[2];
    if (key->slen == 0 || key->slen > 64 || memchr(key->s, 0, key->slen) ||
        memchr(key->s, '/', key->slen)) {
        vm_fail(m, "pickle: bad storage key");
        return NULL;
    }
    if (pid->items[4]->i < 0) {
        vm_fail(m, "pickle: storage '%s' has a negative size", key->s);
        return NULL;
    }
    if (grow(&m->srefs, &m->srefcap, m->nsrefs + 1, sizeof(storage_ref)) != 0) {
        vm_fail(m, "pickle: out of memory");
        return NULL;
    }
    storage_ref *r = &m->srefs[m->nsrefs];
    memset(r, 0, sizeof *r);
    if (!(r->key = strdup(key->s))) return NULL;
    r->dtype = (sn_pt_dtype)pid->items[1]->i;
    r->numel = pid->items[4]->i;
    value *v = vnew(m, V_STORAGE);
    if (!v) return NULL;
    v->i = (int64_t)m->nsrefs++;
    return v;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static value *rebuild_tensor(vm *m, value *args) {
    if (args->t != V_TUPLE || args->n < 4 || args->n > 7 || args->items[0]->t != V_STORAGE ||
        args->items[1]->t != V_INT || args->items[2]->t != V_TUPLE ||
        args->items[3]->t != V_TUPLE) {
        vm_fail(m, "pickle: _rebuild_tensor_v2 arguments are not (storage, offset, size, "
                   "stride, ...)");
        return NULL;
    }
    value *size = args->items[2], *stride = args->items[3];
    storage_ref *r = &m->srefs[args->items[0]->i];
    if (size->n > SN_PT_MAX_DIMS || size->n != stride->n) {
        vm_fail(m, "pickle: tensor on storage '%s' has %zu sizes and %zu strides (at most %d)",
                r->key, size->n, stride->n, SN_PT_MAX_DIMS);
        return NULL;
    }
    tensor_info *ti = calloc(1, sizeof *ti);
    value *v = vnew(m, V_TENSOR);
    if (!ti || !v) {
        free(ti);
        vm_fail(m, "pickle: out of memory");
        return NULL;
    }
    v->ten = ti;
    v->i = args->items[0]->i;
    ti->offset = args->items[1]->i;
    ti->ndim = (int)size->n;
    int64_t numel = 1;
    for (int d = 0; d < ti->ndim; d++) {
        value *s = size->items[d];
        if (s->t != V_INT || s->i < 0 || stride->items[d]->t != V_INT) {
            vm_fail(m, "pickle: tensor on storage '%s' has a bad size or stride", r->key);
            return NULL;
        }
        ti->shape[d] = s->i;
        if (s->i && numel > INT64_MAX / 16 / s->i) {
            vm_fail(m, "pickle: tensor on storage '%s' is too large", r->key);
            return NULL;
        }
        numel *= s->i;
    }
    ti->numel = numel;
    /* C-contiguous: each dimension of size > 1 strides over the ones after it. */
    int64_t expect = 1;
    for (int d = ti->ndim - 1; d >= 0; d--) {
        if (ti->shape[d] > 1 && stride->items[d]->i != expect) {
            vm_fail(m, "pickle: tensor on storage '%s' is not contiguous", r->key);
            return NULL;
        }
        expect *= ti->shape[d];
    }
    if (ti->offset < 0 || ti->offset > r->numel || numel > r->numel - ti->offset) {
        vm_fail(m,
                "pickle: tensor of %lld elements at offset %lld lies outside storage '%s' "
                "(%lld elements)",
                (long long)numel, (long long)ti->offset, r->key, (long long)r->numel);
        return NULL;
    }
    return v;
}

static int do_reduce(vm *m) {
    value *args = pop(m), *fn = args ? pop(m) : NULL;
    if (!fn) return -1;
    if (fn->t != V_GLOBAL || args->t != V_TUPLE)
        return vm_fail(m, "pickle: REDUCE needs a global and an argument tuple");
    if (fn->kind == G_ORDEREDDICT) {
        if (args->n != 0) return vm_fail(m, "pickle: OrderedDict() with arguments");
        return push(m, vnew(m, V_DICT));
    }
    if (fn->kind == G_REBUILD_TENSOR_V2) {
        value *t = rebuild_tensor(m, args);
        return t ? push(m, t) : -1;
    }
    return vm_fail(m, "pickle: cannot call '%s'", fn->s);
}

/* ---- the VM -------------------------------------------------------------------------- */

static int need(vm *m, size_t n) {
    if ((size_t)(m->end - m->p) < n) return vm_fail(m, "pickle: truncated");
    return 0;
}

static int memo_put(vm *m, uint64_t idx) {
    value *v = top(m);
    if (!v) return -1;
    if (idx >= m->memolimit)
        return vm_fail(m, "pickle: memo index %llu out of range", (unsigned long long)idx);
    if (idx >= m->memocap) {
        size_t old = m->memocap;
        if (grow(&m->memo, &m->memocap, (size_t)idx + 1, sizeof(value *)) != 0)
            return vm_fail(m, "pickle: out of memory");
        memset(m->memo + old, 0, (m->memocap - old) * sizeof(value *));
    }
    if (!m->memo[idx]) m->memocount++;
    m->memo[idx] = v;
    return 0;
}

static int memo_get(vm *m, uint64_t idx) {
    if (idx >= m->memocap || !m->memo[idx])
        return vm_fail(m, "pickle: memo index %llu not set", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

static int set_items(vm *m, value *d, value **kv, size_t n) {
    if (!d || d->t != V_DICT) return vm_fail(m, "pickle: SETITEM(S) on a non-dict");
    if (n % 2) return vm_fail(m, "pickle: SETITEMS with an odd number of items");
    for (size_t k = 0; k < n; k++)
        if (add_item(m, d, kv[k]) != 0) return -1;
    return 0;
}

/* Run one pickle from m->p; leaves m->p after its STOP. */
static value *vm_step_all(vm *m);

static value *vm_run(vm *m) {
    if (m->err && m->errlen) m->err[0] = 0;
    value *v = vm_step_all(m);
    if (!v && m->err && m->errlen && !m->err[0]) vm_fail(m, "pickle: out of memory");
    return v;
}

static value *vm_step_all(vm *m) {
    m->start = m->p;
    m->sp = m->nmarks = m->memocount = 0;
    if (m->memocap) memset(m->memo, 0, m->memocap * sizeof(value *));
    m->memolimit = (size_t)(m->end - m->p);
    for (;;) {
        if (need(m, 1) != 0) return NULL;
        uint8_t op = *m->p++;
        int rc = 0;
        value *v, *w;
        uint64_t n;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(m, 1) != 0) return NULL;
            if (*m->p > 5) {
                vm_fail(m, "pickle: unsupported protocol %d", *m->p);
                return NULL;
            }
            m->p++;
            break;
        case 0x95: /* FRAME */
            if (need(m, 8) != 0) return NULL;
            m->p += 8;
            break;
        case '.': /* STOP */
            if (m->sp != 1 || m->nmarks) {
                vm_fail(m, "pickle: STOP with %zu values and %zu marks on the stack", m->sp,
                        m->nmarks);
                return NULL;
            }
            return m->stack[0];
        case 'c': { /* GLOBAL module\nname\n */
            const uint8_t *a = m->p, *nl1 = memchr(a, '\n', (size_t)(m->end - a));
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1)) : NULL;
            if (!nl2) {
                vm_fail(m, "pickle: truncated GLOBAL");
                return NULL;
            }
            m->p = nl2 + 1;
            rc = push(m, make_global(m, (const char *)a, (size_t)(nl1 - a), (const char *)nl1 + 1,
                                     (size_t)(nl2 - nl1 - 1)));
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if (!(w = pop(m)) || !(v = pop(m))) return NULL;
            if (v->t != V_STR || w->t != V_STR) {
                vm_fail(m, "pickle: STACK_GLOBAL needs two strings");
                return NULL;
            }
            rc = push(m, make_global(m, v->s, v->slen, w->s, w->slen));
            break;
        case 'R': /* REDUCE */
            rc = do_reduce(m);
            break;
        case 'b': /* BUILD: only the state of a dict (OrderedDict._metadata), ignored */
            if (!(w = pop(m)) || !(v = top(m))) return NULL;
            if (v->t != V_DICT) {
                vm_fail(m, "pickle: BUILD on something other than a dict");
                return NULL;
            }
            break;
        case 'Q': /* BINPERSID */
            if (!(v = pop(m))) return NULL;
            if (!(w = persistent_load(m, v))) return NULL;
            rc = push(m, w);
            break;
        case '(': /* MARK */
            if (grow(&m->marks, &m->markcap, m->nmarks + 1, sizeof(size_t)) != 0) {
                vm_fail(m, "pickle: out of memory");
                return NULL;
            }
            m->marks[m->nmarks++] = m->sp;
            break;
        case 't': /* TUPLE */
            rc = push(m, pop_mark(m, V_TUPLE));
            break;
        case 'l': /* LIST */
            rc = push(m, pop_mark(m, V_LIST));
            break;
        case 'd': /* DICT */
            if (!(v = pop_mark(m, V_DICT))) return NULL;
            if (v->n % 2) {
                vm_fail(m, "pickle: DICT with an odd number of items");
                return NULL;
            }
            rc = push(m, v);
            break;
        case ')': /* EMPTY_TUPLE */
            rc = push(m, vnew(m, V_TUPLE));
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */ {
            size_t k = (size_t)(op - 0x84);
            value *items[3];
            for (size_t j = k; j-- > 0;)
                if (!(items[j] = pop(m))) return NULL;
            if (!(v = vnew(m, V_TUPLE))) return NULL;
            for (size_t j = 0; j < k; j++)
                if (add_item(m, v, items[j]) != 0) return NULL;
            rc = push(m, v);
            break;
        }
        case '}': /* EMPTY_DICT */
            rc = push(m, vnew(m, V_DICT));
            break;
        case ']': /* EMPTY_LIST */
            rc = push(m, vnew(m, V_LIST));
            break;
        case 's': { /* SETITEM */
            value *kv[2];
            if (!(kv[1] = pop(m)) || !(kv[0] = pop(m))) return NULL;
            rc = set_items(m, top(m), kv, 2);
            break;
        }
        case 'u': /* SETITEMS */
            if (!(w = pop_mark(m, V_TUPLE))) return NULL;
            rc = set_items(m, top(m), w->items, w->n);
            break;
        case 'a': /* APPEND */
            if (!(w = pop(m)) || !(v = top(m))) return NULL;
            if (v->t != V_LIST) {
                vm_fail(m, "pickle: APPEND to a non-list");
                return NULL;
            }
            rc = add_item(m, v, w);
            break;
        case 'e': /* APPENDS */
            if (!(w = pop_mark(m, V_TUPLE)) || !(v = top(m))) return NULL;
            if (v->t != V_LIST) {
                vm_fail(m, "pickle: APPENDS to a non-list");
                return NULL;
            }
            for (size_t k = 0; k < w->n && rc == 0; k++) rc = add_item(m, v, w->items[k]);
            break;
        case 'q': /* BINPUT */
            if (need(m, 1) != 0) return NULL;
            rc = memo_put(m, *m->p++);
            break;
        case 'r': /* LONG_BINPUT */
            if (need(m, 4) != 0) return NULL;
            rc = memo_put(m, rd32(m->p));
            m->p += 4;
            break;
        case 0x94: /* MEMOIZE */
            rc = memo_put(m, m->memocount);
            break;
        case 'h': /* BINGET */
            if (need(m, 1) != 0) return NULL;
            rc = memo_get(m, *m->p++);
            break;
        case 'j': /* LONG_BINGET */
            if (need(m, 4) != 0) return NULL;
            rc = memo_get(m, rd32(m->p));
            m->p += 4;
            break;
        case 'J': /* BININT */
            if (need(m, 4) != 0) return NULL;
            rc = push(m, make_int(m, (int32_t)rd32(m->p)));
            m->p += 4;
            break;
        case 'K': /* BININT1 */
            if (need(m, 1) != 0) return NULL;
            rc = push(m, make_int(m, *m->p++));
            break;
        case 'M': /* BININT2 */
            if (need(m, 2) != 0) return NULL;
            rc = push(m, make_int(m, rd16(m->p)));
            m->p += 2;
            break;
        case 0x8a: /* LONG1 */
            if (need(m, 1) != 0 || need(m, 1 + (size_t)m->p[0]) != 0) return NULL;
            n = *m->p++;
            if (n <= 8) {
                uint64_t x = 0;
                for (size_t k = 0; k < n; k++) x |= (uint64_t)m->p[k] << (8 * k);
                if (n && n < 8 && (m->p[n - 1] & 0x80)) x |= ~0ull << (8 * n); /* sign */
                rc = push(m, make_int(m, (int64_t)x));
            } else {
                v = make_str(m, m->p, (size_t)n);
                if (v) v->t = V_BIGINT;
                rc = push(m, v);
            }
            m->p += n;
            break;
        case 'X': /* BINUNICODE */
        case 'T': /* BINSTRING */
            if (need(m, 4) != 0) return NULL;
            n = rd32(m->p);
            m->p += 4;
            if (need(m, (size_t)n) != 0) return NULL;
            rc = push(m, make_str(m, m->p, (size_t)n));
            m->p += n;
            break;
        case 0x8c: /* SHORT_BINUNICODE */
        case 'U':  /* SHORT_BINSTRING */
            if (need(m, 1) != 0 || need(m, 1 + (size_t)m->p[0]) != 0) return NULL;
            n = *m->p++;
            rc = push(m, make_str(m, m->p, (size_t)n));
            m->p += n;
            break;
        case 'G': { /* BINFLOAT, big-endian */
            if (need(m, 8) != 0) return NULL;
            uint64_t bits = 0;
            for (int k = 0; k < 8; k++) bits = bits << 8 | m->p[k];
            m->p += 8;
            if (!(v = vnew(m, V_FLOAT))) return NULL;
            memcpy(&v->f, &bits, sizeof v->f);
            rc = push(m, v);
            break;
        }
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if ((v = vnew(m, V_BOOL))) v->i = op == 0x88;
            rc = push(m, v);
            break;
        case 'N': /* NONE */
            rc = push(m, vnew(m, V_NONE));
            break;
        default:
            vm_fail(m, "pickle: unsupported opcode 0x%02x at offset %zu", op,
                    (size_t)(m->p - 1 - m->start));
            return NULL;
        }
        if (rc != 0) return NULL;
    }
}

/* ---- containers ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *name;
    size_t nlen;
    uint16_t method;
    uint32_t crc;
    uint64_t csize, usize, local;
} zentry;

typedef struct {
    const uint8_t *buf;
    size_t size;
    zentry *e;
    size_t n;
} zipfile;

static int zcmp(const void *a, const void *b) {
    const zentry *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* Resolve zip64 values in a central directory entry's extra field (id 0x0001). */
static int zip64_extra(const uint8_t *x, size_t len, zentry *e, uint32_t usz, uint32_t csz,
                       uint32_t off) {
    while (len >= 4) {
        uint16_t id = rd16(x), sz = rd16(x + 2);
        if ((size_t)sz + 4 > len) return -1;
        if (id == 1) {
            const uint8_t *p = x + 4, *end = x + 4 + sz;
            if (usz == 0xffffffffu) {
                if (end - p < 8) return -1;
                e->usize = rd64(p), p += 8;
            }
            if (csz == 0xffffffffu) {
                if (end - p < 8) return -1;
                e->csize = rd64(p), p += 8;
            }
            if (off == 0xffffffffu) {
                if (end - p < 8) return -1;
                e->local = rd64(p);
            }
            return 0;
        }
        x += 4 + sz;
        len -= 4 + (size_t)sz;
    }
    return usz == 0xffffffffu || csz == 0xffffffffu || off == 0xffffffffu ? -1 : 0;
}

static int zip_open(zipfile *z, const uint8_t *buf, size_t size, char *err, size_t errlen) {
    memset(z, 0, sizeof *z);
    z->buf = buf;
    z->size = size;
    if (size < 22) return sn_errf(err, errlen, "zip: file too short");
    size_t eocd = 0;
    int found = 0;
    size_t lo = size - 22 > 65535 ? size - 22 - 65535 : 0;
    for (size_t i = size - 22 + 1; i-- > lo;)
        if (rd32(buf + i) == 0x06054b50u && i + 22 + rd16(buf + i + 20) == size) {
            eocd = i;
            found = 1;
            break;
        }
    if (!found) return sn_errf(err, errlen, "zip: end of central directory not found (truncated?)");
    uint64_t count = rd16(buf + eocd + 10), cdsize = rd32(buf + eocd + 12),
             cdoff = rd32(buf + eocd + 16);
    if (rd16(buf + eocd + 4) != 0 || rd16(buf + eocd + 6) != 0)
        return sn_errf(err, errlen, "zip: multi-disk archives are not supported");
    if (count == 0xffff || cdsize == 0xffffffffu || cdoff == 0xffffffffu) {
        if (eocd < 20 || rd32(buf + eocd - 20) != 0x07064b50u)
            return sn_errf(err, errlen, "zip: zip64 locator missing");
        uint64_t o = rd64(buf + eocd - 20 + 8);
        if (size < 56 || o > size - 56 || rd32(buf + o) != 0x06064b50u)
            return sn_errf(err, errlen, "zip: bad zip64 end of central directory");
        count = rd64(buf + o + 32);
        cdsize = rd64(buf + o + 40);
        cdoff = rd64(buf + o + 48);
    }
    if (cdoff > size || cdsize > size - cdoff)
        return sn_errf(err, errlen, "zip: central directory lies outside the file");
    if (count > cdsize / 46)
        return sn_errf(err, errlen, "zip: bad entry count %llu", (unsigned long long)count);
    z->e = calloc(count ? count : 1, sizeof(zentry));
    if (!z->e) return sn_errf(err, errlen, "zip: out of memory");
    const uint8_t *p = buf + cdoff, *end = buf + cdoff + cdsize;
    for (uint64_t k = 0; k < count; k++) {
        if (end - p < 46 || rd32(p) != 0x02014b50u)
            return sn_errf(err, errlen, "zip: bad central directory entry %llu",
                           (unsigned long long)k);
        zentry *e = &z->e[z->n++];
        size_t nl = rd16(p + 28), xl = rd16(p + 30), cl = rd16(p + 32);
        if ((size_t)(end - p) < 46 + nl + xl + cl)
            return sn_errf(err, errlen, "zip: central directory entry %llu overruns",
                           (unsigned long long)k);
        e->method = rd16(p + 10);
        e->crc = rd32(p + 16);
        e->csize = rd32(p + 20);
        e->usize = rd32(p + 24);
        e->local = rd32(p + 42);
        e->name = p + 46;
        e->nlen = nl;
        if (zip64_extra(p + 46 + nl, xl, e, rd32(p + 24), rd32(p + 20), rd32(p + 42)) != 0)
            return sn_errf(err, errlen, "zip: bad zip64 extra field in entry %llu",
                           (unsigned long long)k);
        p += 46 + nl + xl + cl;
    }
    qsort(z->e, z->n, sizeof(zentry), zcmp);
    return 0;
}

static const zentry *zip_find(const zipfile *z, const char *name) {
    zentry key = {.name = (const uint8_t *)name, .nlen = strlen(name)};
    return bsearch(&key, z->e, z->n, sizeof(zentry), zcmp);
}

/* The data of a stored entry, CRC-checked. */
static const uint8_t *zip_data(const zipfile *z, const zentry *e, char *err, size_t errlen) {
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
        rd32(z->buf + e->local) != 0x04034b50u) {
        sn_errf(err, errlen, "zip: bad local header for entry '%.*s'", nl, nm);
        return NULL;
    }
    uint64_t off = e->local + 30 + rd16(z->buf + e->local + 26) + rd16(z->buf + e->local + 28);
    if (off > z->size || e->usize > z->size - off) {
        sn_errf(err, errlen, "zip: entry '%.*s' runs past the end of the file (truncated?)", nl,
                nm);
        return NULL;
    }
    if (sn_pt_crc32(0, z->buf + off, (size_t)e->usize) != e->crc) {
        sn_errf(err, errlen, "zip: CRC mismatch in entry '%.*s' (corrupt file)", nl, nm);
        return NULL;
    }
    return z->buf + off;
}

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
    zipfile z;
    int rc = -1;
    storage_ref **s = NULL;
    if (zip_open(&z, buf, size, err, errlen) != 0) goto out;
    const zentry *pkl = NULL;
    for (size_t i = 0; i < z.n; i++) {
        const zentry *e = &z.e[i];
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
    const uint8_t *pd = zip_data(&z, pkl, err, errlen);
    if (!pd) goto out;

    snprintf(name, sizeof name, "%sbyteorder", prefix);
    const zentry *bo = zip_find(&z, name);
    if (bo) {
        const uint8_t *bd = zip_data(&z, bo, err, errlen);
        if (!bd) goto out;
        if (bo->usize != 6 || memcmp(bd, "little", 6) != 0) {
            sn_errf(err, errlen, "zip: checkpoint is not little-endian");
            goto out;
        }
    }

    m->p = pd;
    m->end = pd + pkl->usize;
    if (!(*root = vm_run(m))) goto out;

    if (!(s = sorted_srefs(m, err, errlen))) goto out;
    uint64_t checked = 0;
    for (size_t i = 0; i < m->nsrefs; i++) {
        if (i && strcmp(s[i]->key, s[i - 1]->key) == 0) {
            s[i]->data = s[i - 1]->data;
            continue;
        }
        snprintf(name, sizeof name, "%sdata/%s", prefix, s[i]->key);
        const zentry *e = zip_find(&z, name);
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
        if (!(s[i]->data = zip_data(&z, e, err, errlen))) goto out;
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
    value *v = vm_run(m);
    if (!v) return -1;
    if (v->t != V_BIGINT || v->slen != 10 || memcmp(v->s, legacy_magic, 10) != 0)
        return sn_errf(err, errlen, "legacy: bad magic number");
    if (!(v = vm_run(m))) return -1;
    if (v->t != V_INT || v->i != 1001)
        return sn_errf(err, errlen, "legacy: unsupported protocol version");
    if (!(v = vm_run(m))) return -1;
    value *le = dict_get(v, "little_endian");
    if (le && le->t == V_BOOL && !le->i)
        return sn_errf(err, errlen, "legacy: checkpoint is big-endian");
    if (!(*root = vm_run(m))) return -1;
    value *keys = vm_run(m);
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
        uint64_t count = rd64(p);
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
    value *sd = dict_get(root, "state_dict");
    value *meta = dict_get(root, "meta");
    value *syn = dict_get(meta, "synthetic");
    ck->synthetic = syn && syn->t == V_BOOL && syn->i;
    if (sd) {
        if (sd->t != V_DICT) return sn_errf(err, errlen, "checkpoint 'state_dict' is not a dict");
        ck->wrapped = 1;
    } else {
        sd = root;
    }
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
    vm_free(&m);
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
