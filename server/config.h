/* config.h - the server's settings: built-in defaults, then the JSON config file, then
 * SHUFFLENET_* environment variables, then command-line flags, each overriding the last. */
#ifndef SN_CONFIG_H
#define SN_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "server/limits.h"

#define SN_MAX_MODELS    16
#define SN_MODEL_NAMELEN 64

typedef struct {
    char name[SN_MODEL_NAMELEN];
    char path[1024];  /* safetensors file; "" for a synthetic model */
    int synth_groups; /* > 0: synthesise with these groups ... */
    double synth_width;
    int synth_seed;
} sn_model_conf;

typedef struct {
    char listen[160]; /* "ADDR:PORT", "[v6]:PORT" */
    long long body_limit;
    long long max_pixels;
    int max_images;          /* image parts per request */
    char preprocess[8];      /* "fast" or "exact" (common/input.h, sn_pre_mode) */
    long long memory_budget; /* bytes of bodies in flight + decoder buffers (server/budget.h) */
    int workers;
    int http_threads;
    int max_batch;
    int max_batch_delay_us;
    int queue_size;
    int request_timeout_ms;
    int drain_timeout_ms;
    int shutdown_delay_ms;    /* SIGTERM: unready but serving this long before the drain */
    int connection_timeout_s; /* idle connection closed after this long */
    int header_timeout_s;     /* a new connection must send its headers within this */
    int max_connections;      /* open connections at most */
    int per_ip_connections;   /* open connections from one address at most; 0 = no limit */
    char log_format[16];      /* "text" or "json" */
    char labels[1024];        /* "" = default lookup */
    char default_model[SN_MODEL_NAMELEN];
    int nmodels;
    sn_model_conf models[SN_MAX_MODELS];
    char config_path[1024]; /* the file that was read, "" if none */
    sn_limits limits;       /* CPUs and memory the container allows (defaults follow them) */
} sn_config;

/* Fill c from defaults, config file (--config, $SHUFFLENET_CONFIG, or
 * config/shufflenet-server.json when present), environment and argv. Returns 0, 1 when
 * --help was printed (exit 0), or -1 with a message naming the key in err. */
int sn_config_load(sn_config *c, int argc, char **argv, char *err, size_t errlen);

/* Defaults, then a JSON config text (as a config file holds), validated; from names it in
 * messages. For tests and fuzzing. Returns 0 or -1 with a message naming the key. */
int sn_config_parse(sn_config *c, const char *text, size_t len, const char *from, char *err,
                    size_t errlen);

/* Parse "ADDR:PORT" into host and port. Returns 0 or -1. */
int sn_config_split_listen(const char *listen, char *host, size_t cap, int *port);

void sn_config_usage(FILE *f);

#endif
