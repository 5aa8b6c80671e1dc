/* pickle_vm.c - a minimal, iterative pickle VM for torch.save's object pickles (see
 * pickle.h for what it accepts).
 *
 * VM values live in a pool owned by the VM and are freed all at once, so the memo, the stack
 * and containers can share them freely (pickle semantics: a memoised dict is one object).
 * Every opcode reads a bounded number of bytes and creates at most one value, so memory is
 * linear in the pickle size, and nothing recurses. */
#include "tools/pickle_vm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "tools/zip.h"

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

/* ---- values -------------------------------------------------------------------------- */
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

void sn_pv_free(vm *m) {
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
value *sn_pv_dict_get(const value *d, const char *k) {
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

value *sn_pv_run(vm *m) {
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
            rc = memo_put(m, sn_rd32le(m->p));
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
            rc = memo_get(m, sn_rd32le(m->p));
            m->p += 4;
            break;
        case 'J': /* BININT */
            if (need(m, 4) != 0) return NULL;
            rc = push(m, make_int(m, (int32_t)sn_rd32le(m->p)));
            m->p += 4;
            break;
        case 'K': /* BININT1 */
            if (need(m, 1) != 0) return NULL;
            rc = push(m, make_int(m, *m->p++));
            break;
        case 'M': /* BININT2 */
            if (need(m, 2) != 0) return NULL;
            rc = push(m, make_int(m, sn_rd16le(m->p)));
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
            n = sn_rd32le(m->p);
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
