/* config.c - server settings from defaults, a JSON file (jansson), SHUFFLENET_* environment
 * variables and command-line flags. One table lists every scalar key; its flag is the key with
 * dashes (--max-batch) and its variable the key in capitals (SHUFFLENET_MAX_BATCH). Models
 * come from the file's "models" object, or from --model/--synth (SHUFFLENET_MODEL/_SYNTH,
 * comma-separated), which replace the configured ones. */
#include "server/config.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { K_INT, K_I64, K_STR } ktype;

typedef struct {
    const char *key;
    ktype type;
    size_t off;
    long long min, max;  /* K_INT/K_I64 range; K_STR: buffer size in max */
    const char *choices; /* K_STR: "a|b" or NULL */
    const char *help;
} keydef;

#define OFF(f) offsetof(sn_config, f)
static const keydef keys[] = {
    {"listen", K_STR, OFF(listen), 0, sizeof(((sn_config *)0)->listen), NULL,
     "address:port to listen on (default 127.0.0.1:8080)"},
    {"default_model", K_STR, OFF(default_model), 0, SN_MODEL_NAMELEN, NULL,
     "model used when a request names none (default: the first)"},
    {"workers", K_INT, OFF(workers), 1, 256, NULL,
     "inference worker threads (default: the CPUs this process may use: affinity mask and "
     "cgroup CPU quota)"},
    {"http_threads", K_INT, OFF(http_threads), 1, 64, NULL,
     "HTTP threads in libmicrohttpd's pool (default: 2 x usable CPUs, at least 4)"},
    {"max_batch", K_INT, OFF(max_batch), 1, 256, NULL, "images per batch at most (default 8)"},
    {"max_batch_delay_us", K_INT, OFF(max_batch_delay_us), 0, 10000000, NULL,
     "wait this long after the first image for a batch to fill; 0 = take what is there "
     "(default 2000)"},
    {"queue_size", K_INT, OFF(queue_size), 1, 1000000, NULL,
     "queued images per model before 503 overloaded (default 64)"},
    {"request_timeout_ms", K_INT, OFF(request_timeout_ms), 1, 3600000, NULL,
     "deadline of a queued request; past it the answer is 504 (default 10000)"},
    {"drain_timeout_ms", K_INT, OFF(drain_timeout_ms), 0, 3600000, NULL,
     "on SIGTERM/SIGINT, wait this long for admitted requests (default 30000)"},
    {"shutdown_delay_ms", K_INT, OFF(shutdown_delay_ms), 0, 3600000, NULL,
     "on SIGTERM, keep serving this long before the drain while /readyz answers 503 and "
     "every reply says Connection: close, so load balancers take this replica out first; "
     "SIGINT or a second signal skips it (default 5000)"},
    {"connection_timeout_s", K_INT, OFF(connection_timeout_s), 1, 3600, NULL,
     "close a connection idle (nothing received or sent) this long (default 30)"},
    {"header_timeout_s", K_INT, OFF(header_timeout_s), 1, 3600, NULL,
     "close a new connection that has not sent its request headers this long after it was "
     "accepted, however slowly they trickle in (slowloris; default 10)"},
    {"max_connections", K_INT, OFF(max_connections), 1, 100000, NULL,
     "open connections at most; more are refused at accept (default 1024)"},
    {"per_ip_connections", K_INT, OFF(per_ip_connections), 0, 100000, NULL,
     "open connections from one client address at most; 0 = no limit (default 512)"},
    {"body_limit", K_I64, OFF(body_limit), 1, 1LL << 34, NULL,
     "request body limit in bytes, suffix K/M/G allowed (default 16M)"},
    {"max_pixels", K_I64, OFF(max_pixels), 1, 1LL << 40, NULL,
     "pixel budget of one image, read from its header (default 40000000)"},
    {"max_images", K_INT, OFF(max_images), 1, 256, NULL,
     "image parts in one multipart request at most (default 16)"},
    {"preprocess", K_STR, OFF(preprocess), 0, 8, "fast|exact",
     "fast: JPEGs decoded at the cheapest DCT scale M/8 that still covers the crop; exact: "
     "full-resolution decode, the model's reference pixels (default fast)"},
    {"memory_budget", K_I64, OFF(memory_budget), 1 << 20, 1LL << 40, NULL,
     "bytes that request bodies in flight and decoding may hold; past it 503 overloaded before "
     "the body is read; suffix K/M/G (default: half the cgroup memory limit, else 512M)"},
    {"log_format", K_STR, OFF(log_format), 0, 16, "text|json",
     "access log format on stderr (default text)"},
    {"labels", K_STR, OFF(labels), 0, 1024, NULL,
     "class list TSV (default: SHUFFLENET_LABELS, config/imagenet-classes.tsv, ...)"},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static void defaults(sn_config *c) {
    memset(c, 0, sizeof *c);
    /* CPUs this container may use (affinity and cgroup quota), not the host's cores */
    sn_limits_read("/proc/self/cgroup", "/sys/fs/cgroup", &c->limits);
    long n = sn_limits_cpus(&c->limits);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1:8080");
    c->workers = (int)n;
    /* The HTTP threads receive bodies, split multipart and write replies; decoding runs in
     * the workers. They are mostly idle, so their count matters little; two per CPU (at
     * least 4) keeps one large body from delaying the other connections of its thread. */
    c->http_threads = n < 2 ? 4 : (int)(2 * n > 64 ? 64 : 2 * n);
    c->max_batch = 8;
    c->max_batch_delay_us = 2000;
    c->queue_size = 64;
    c->request_timeout_ms = 10000;
    c->drain_timeout_ms = 30000;
    c->shutdown_delay_ms = 5000;
    c->connection_timeout_s = 30;
    c->header_timeout_s = 10;
    c->max_connections = 1024;
    c->per_ip_connections = 512;
    c->body_limit = 16LL << 20;
    c->max_pixels = 40000000;
    c->max_images = 16;
    snprintf(c->preprocess, sizeof c->preprocess, "fast");
    c->memory_budget = c->limits.memory_max > 0 ? c->limits.memory_max / 2 : 512LL << 20;
    snprintf(c->log_format, sizeof c->log_format, "text");
}

/* Integer with an optional K/M/G (binary) suffix. */
static int parse_i64(const char *s, long long *out) {
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno) return -1;
    long long mul = 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mul = 1LL << 10;
            break;
        case 'M':
            mul = 1LL << 20;
            break;
        case 'G':
            mul = 1LL << 30;
            break;
        default:
            return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'B' || *end == 'b') end++;
        if (*end) return -1;
    }
    if (v > (1LL << 50) || v < -(1LL << 50)) return -1;
    *out = v * mul;
    return 0;
}

/* Set one scalar key from a string; `from` names the source for the message. */
static int set_key(sn_config *c, const keydef *k, const char *val, const char *from, char *err,
                   size_t errlen) {
    char *base = (char *)c + k->off;
    if (k->type == K_STR) {
        if (strlen(val) >= (size_t)k->max) {
            snprintf(err, errlen, "%s: key \"%s\": value too long", from, k->key);
            return -1;
        }
        if (k->choices) {
            int ok = 0;
            const char *p = k->choices;
            size_t vl = strlen(val);
            while (*p) {
                const char *bar = strchr(p, '|');
                size_t n = bar ? (size_t)(bar - p) : strlen(p);
                if (n == vl && strncmp(p, val, n) == 0) ok = 1;
                p += n + (bar != NULL);
            }
            if (!ok) {
                snprintf(err, errlen, "%s: key \"%s\": \"%s\" is not one of %s", from, k->key, val,
                         k->choices);
                return -1;
            }
        }
        snprintf(base, (size_t)k->max, "%s", val);
        return 0;
    }
    long long v;
    if (parse_i64(val, &v) < 0 || v < k->min || v > k->max) {
        snprintf(err, errlen, "%s: key \"%s\": \"%s\" is not an integer in %lld..%lld", from,
                 k->key, val, k->min, k->max);
        return -1;
    }
    if (k->type == K_INT)
        *(int *)base = (int)v;
    else
        *(long long *)base = v;
    return 0;
}

static int name_ok(const char *s) {
    if (!*s || strlen(s) >= SN_MODEL_NAMELEN) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s)) return 0;
    return 1;
}

static sn_model_conf *add_model(sn_config *c, const char *name, const char *from, char *err,
                                size_t errlen) {
    if (!name_ok(name)) {
        snprintf(err, errlen, "%s: model name \"%s\" must be 1-63 of [A-Za-z0-9._-]", from, name);
        return NULL;
    }
    for (int i = 0; i < c->nmodels; i++)
        if (strcmp(c->models[i].name, name) == 0) {
            snprintf(err, errlen, "%s: model \"%s\" given twice", from, name);
            return NULL;
        }
    if (c->nmodels == SN_MAX_MODELS) {
        snprintf(err, errlen, "%s: more than %d models", from, SN_MAX_MODELS);
        return NULL;
    }
    sn_model_conf *m = &c->models[c->nmodels++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->synth_seed = 1;
    return m;
}

/* "NAME=FILE" (synth = 0) or "NAME=G:WIDTH[:SEED]" (synth = 1). */
static int add_model_spec(sn_config *c, const char *spec, int synth, const char *from, char *err,
                          size_t errlen) {
    const char *eq = strchr(spec, '=');
    char name[SN_MODEL_NAMELEN];
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof name || !eq[1]) {
        snprintf(err, errlen, "%s: \"%s\" is not NAME=%s", from, spec,
                 synth ? "GROUPS:WIDTH" : "FILE");
        return -1;
    }
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = 0;
    sn_model_conf *m = add_model(c, name, from, err, errlen);
    if (!m) return -1;
    if (!synth) {
        if (strlen(eq + 1) >= sizeof m->path) {
            snprintf(err, errlen, "%s: path too long", from);
            return -1;
        }
        snprintf(m->path, sizeof m->path, "%s", eq + 1);
        return 0;
    }
    int g, seed = 1, used = 0;
    double w;
    int n = sscanf(eq + 1, "%d:%lf%n:%d%n", &g, &w, &used, &seed, &used);
    if (n < 2 || eq[1 + used] != 0 || g < 1 || g > 64 || !(w > 0 && w <= 4)) {
        snprintf(err, errlen,
                 "%s: \"%s\" is not NAME=GROUPS:WIDTH[:SEED] (groups 1..64, width 0..4)", from,
                 spec);
        return -1;
    }
    m->synth_groups = g;
    m->synth_width = w;
    m->synth_seed = seed;
    return 0;
}

/* Comma-separated list of specs from an environment variable. */
static int add_model_list(sn_config *c, const char *list, int synth, const char *from, char *err,
                          size_t errlen) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (add_model_spec(c, tok, synth, from, err, errlen) < 0) return -1;
    return 0;
}

static int load_models_json(sn_config *c, json_t *obj, const char *from, char *err, size_t errlen) {
    if (!json_is_object(obj)) {
        snprintf(err, errlen, "%s: key \"models\": must be an object of name -> {path|synth}",
                 from);
        return -1;
    }
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v) {
        sn_model_conf *m = add_model(c, name, from, err, errlen);
        if (!m) return -1;
        json_t *path = json_object_get(v, "path"), *synth = json_object_get(v, "synth");
        if (!json_is_object(v) || (path == NULL) == (synth == NULL) || json_object_size(v) != 1) {
            snprintf(err, errlen,
                     "%s: key \"models.%s\": needs exactly one of \"path\" or \"synth\"", from,
                     name);
            return -1;
        }
        if (path) {
            if (!json_is_string(path) || json_string_length(path) >= sizeof m->path) {
                snprintf(err, errlen, "%s: key \"models.%s.path\": must be a string", from, name);
                return -1;
            }
            snprintf(m->path, sizeof m->path, "%s", json_string_value(path));
            continue;
        }
        json_t *g = json_object_get(synth, "groups"), *w = json_object_get(synth, "width");
        json_t *s = json_object_get(synth, "seed");
        if (!json_is_integer(g) || json_integer_value(g) < 1 || json_integer_value(g) > 64 ||
            (w &&
             (!json_is_number(w) || !(json_number_value(w) > 0 && json_number_value(w) <= 4))) ||
            (s && !json_is_integer(s))) {
            snprintf(err, errlen,
                     "%s: key \"models.%s.synth\": needs \"groups\" 1..64, optional \"width\" "
                     "(0..4] and integer \"seed\"",
                     from, name);
            return -1;
        }
        m->synth_groups = (int)json_integer_value(g);
        m->synth_width = w ? json_number_value(w) : 1.0;
        m->synth_seed = s ? (int)json_integer_value(s) : 1;
    }
    return 0;
}

static int apply_json(sn_config *c, json_t *root, const char *path, char *err, size_t errlen);
static int validate(sn_config *c, char *err, size_t errlen);

static int load_file(sn_config *c, const char *path, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", path, je.line, je.text);
        return -1;
    }
    return apply_json(c, root, path, err, errlen);
}

int sn_config_parse(sn_config *c, const char *text, size_t len, const char *from, char *err,
                    size_t errlen) {
    defaults(c);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d: %s", from, je.line, je.text);
        return -1;
    }
    if (apply_json(c, root, from, err, errlen) < 0) return -1;
    return validate(c, err, errlen);
}

/* Applies a parsed config object; takes the reference to root. */
static int apply_json(sn_config *c, json_t *root, const char *path, char *err, size_t errlen) {
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the config must be a JSON object", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "models") == 0) {
            if (load_models_json(c, v, path, err, errlen) < 0) goto out;
            continue;
        }
        const keydef *k = NULL;
        for (size_t i = 0; i < NKEYS; i++)
            if (strcmp(keys[i].key, key) == 0) k = &keys[i];
        if (!k) {
            snprintf(err, errlen, "%s: unknown key \"%s\" (see --help)", path, key);
            goto out;
        }
        char buf[1100];
        if (json_is_string(v))
            snprintf(buf, sizeof buf, "%s", json_string_value(v));
        else if (json_is_integer(v) && k->type != K_STR)
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        else {
            snprintf(err, errlen, "%s: key \"%s\": must be %s", path, key,
                     k->type == K_STR ? "a string" : "an integer");
            goto out;
        }
        if (set_key(c, k, buf, path, err, errlen) < 0) goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

void sn_config_usage(FILE *f) {
    fprintf(
        f, "usage: shufflenet-server [options]\n\n"
           "Serves ShuffleNet v1 image classification over HTTP.\n"
           "Settings come from built-in defaults, then the config file, then SHUFFLENET_*\n"
           "environment variables, then these flags (each overrides the last).\n\n"
           "  --config FILE            JSON config (SHUFFLENET_CONFIG; default\n"
           "                           config/shufflenet-server.json when present)\n"
           "  --model NAME=FILE        serve a safetensors model (repeatable; replaces the\n"
           "                           configured models; SHUFFLENET_MODEL, comma-separated)\n"
           "  --synth NAME=G:WIDTH[:SEED]  serve synthetic weights (repeatable; SHUFFLENET_SYNTH)\n"
           "  --help                   this text\n\n"
           "Keys (config file key / --flag / SHUFFLENET_VARIABLE):\n");
    for (size_t i = 0; i < NKEYS; i++) {
        char flag[64], env[64];
        size_t j;
        for (j = 0; keys[i].key[j]; j++) {
            flag[j] = keys[i].key[j] == '_' ? '-' : keys[i].key[j];
            env[j] = (char)toupper((unsigned char)keys[i].key[j]);
        }
        flag[j] = env[j] = 0;
        fprintf(f, "  %-20s --%-20s SHUFFLENET_%s\n      %s\n", keys[i].key, flag, env,
                keys[i].help);
    }
    fprintf(f,
            "  %-20s (file only)  {\"NAME\": {\"path\": FILE} | {\"synth\": {\"groups\": G, "
            "\"width\": W, \"seed\": S}}, ...}\n",
            "models");
}

/* Match argv[*i] against --name; the value is "=v" or the next argument. */
static const char *flag_value(int argc, char **argv, int *i, const char *name, int *matched) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    *matched = 0;
    if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0) return NULL;
    if (a[2 + n] == '=') {
        *matched = 1;
        return a + 3 + n;
    }
    if (a[2 + n] != 0) return NULL;
    *matched = 1;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

int sn_config_split_listen(const char *listen, char *host, size_t cap, int *port) {
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen) return -1;
    const char *h = listen, *he = colon;
    if (*h == '[') {
        if (he[-1] != ']') return -1;
        h++;
        he--;
    }
    if ((size_t)(he - h) >= cap || he == h) return -1;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

static int validate(sn_config *c, char *err, size_t errlen) {
    char host[128];
    int port;
    if (sn_config_split_listen(c->listen, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "key \"listen\": \"%s\" is not ADDR:PORT", c->listen);
        return -1;
    }
    if (c->default_model[0]) {
        int found = 0;
        for (int i = 0; i < c->nmodels; i++)
            if (strcmp(c->models[i].name, c->default_model) == 0) found = 1;
        if (!found) {
            snprintf(err, errlen, "key \"default_model\": \"%s\" is not a configured model",
                     c->default_model);
            return -1;
        }
    } else if (c->nmodels > 0) {
        snprintf(c->default_model, sizeof c->default_model, "%s", c->models[0].name);
    }
    return 0;
}

int sn_config_load(sn_config *c, int argc, char **argv, char *err, size_t errlen) {
    defaults(c);
    int m;
    const char *cfg = getenv("SHUFFLENET_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            sn_config_usage(stdout);
            return 1;
        }
        const char *v = flag_value(argc, argv, &i, "config", &m);
        if (m) {
            if (!v) {
                snprintf(err, errlen, "--config needs a file");
                return -1;
            }
            cfg = v;
        }
    }
    if (!cfg && access("config/shufflenet-server.json", R_OK) == 0)
        cfg = "config/shufflenet-server.json";
    if (cfg) {
        if (load_file(c, cfg, err, errlen) < 0) return -1;
        snprintf(c->config_path, sizeof c->config_path, "%s", cfg);
    }

    /* A default model named by the file only makes sense with the file's models: when the
     * environment or flags replace the models, it is dropped unless they name one too. */
    int explicit_default = 0, models_replaced = 0;

    /* environment */
    for (size_t i = 0; i < NKEYS; i++) {
        char env[64] = "SHUFFLENET_";
        size_t j = strlen(env);
        for (const char *k = keys[i].key; *k; k++) env[j++] = (char)toupper((unsigned char)*k);
        env[j] = 0;
        const char *v = getenv(env);
        if (v && set_key(c, &keys[i], v, env, err, errlen) < 0) return -1;
        if (v && !strcmp(keys[i].key, "default_model")) explicit_default = 1;
    }
    const char *em = getenv("SHUFFLENET_MODEL"), *es = getenv("SHUFFLENET_SYNTH");
    if (em || es) {
        c->nmodels = 0;
        models_replaced = 1;
        if (em && add_model_list(c, em, 0, "SHUFFLENET_MODEL", err, errlen) < 0) return -1;
        if (es && add_model_list(c, es, 1, "SHUFFLENET_SYNTH", err, errlen) < 0) return -1;
    }

    /* flags */
    int replaced = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = flag_value(argc, argv, &i, "config", &m);
        if (m) continue;
        int is_model = 0, is_synth = 0;
        v = flag_value(argc, argv, &i, "model", &is_model);
        if (!is_model) v = flag_value(argc, argv, &i, "synth", &is_synth);
        if (is_model || is_synth) {
            const char *fl = is_model ? "--model" : "--synth";
            if (!v) {
                snprintf(err, errlen, "%s needs a value", fl);
                return -1;
            }
            if (!replaced) c->nmodels = 0, replaced = 1, models_replaced = 1;
            if (add_model_spec(c, v, is_synth, fl, err, errlen) < 0) return -1;
            continue;
        }
        const keydef *k = NULL;
        for (size_t j = 0; j < NKEYS && !k; j++) {
            char flag[64];
            size_t n;
            for (n = 0; keys[j].key[n]; n++) flag[n] = keys[j].key[n] == '_' ? '-' : keys[j].key[n];
            flag[n] = 0;
            int save = i;
            v = flag_value(argc, argv, &i, flag, &m);
            if (m) {
                if (!v) {
                    snprintf(err, errlen, "--%s needs a value", flag);
                    return -1;
                }
                k = &keys[j];
            } else {
                i = save;
            }
        }
        if (!k) {
            snprintf(err, errlen, "unknown option \"%s\" (see --help)", argv[i]);
            return -1;
        }
        char from[80];
        snprintf(from, sizeof from, "flag --%s", k->key);
        for (char *p = from; *p; p++)
            if (*p == '_') *p = '-';
        if (set_key(c, k, v, from, err, errlen) < 0) return -1;
        if (!strcmp(k->key, "default_model")) explicit_default = 1;
    }
    if (models_replaced && !explicit_default) c->default_model[0] = 0;
    return validate(c, err, errlen);
}
