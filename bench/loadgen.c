/* loadgen.c - shufflenet-loadgen: command line, target checks (loopback only unless
 * --allow-remote), request bodies from image files, and the report (text, JSON or CSV).
 * The connection engine is in loadgen_run.c. */
#include "bench/loadgen.h"
#include "bench/loadgen_http.h"
#include "engine/util.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PROG            "shufflenet-loadgen"
#define IMAGE_MAX       (64u << 20)
#define MAX_CONNS       10000
#define DEFAULT_CAP     256
#define DEFAULT_TIMEOUT 10.0

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: " PROG " --url URL [--model NAME] (--rate R [--poisson] | --connections N)\n"
        "       [--duration SECONDS] [--requests N] --image FILE... [--multipart]\n"
        "       [--json | --csv] [options]\n"
        "\n"
        "HTTP/1.1 keep-alive load generator for shufflenet-server. It POSTs the image files\n"
        "round-robin and reports throughput, latency percentiles and errors by status.\n"
        "\n"
        "  --url URL          http://HOST[:PORT][/PATH]; without a path it posts to /classify,\n"
        "                     or /v1/models/NAME/classify with --model\n"
        "  --model NAME       target one model\n"
        "  --rate R           open loop: R arrivals per second; latency counts from each\n"
        "                     request's intended send time (no coordinated omission)\n"
        "  --poisson          open loop with exponential inter-arrival times (default: constant)\n"
        "  --connections N    closed loop with N connections, each sending as soon as its last\n"
        "                     response is in; with --rate, the cap on open connections\n"
        "                     (default %d), beyond which arrivals queue with their clock running\n"
        "  --duration S       stop issuing requests after S seconds (fractions allowed)\n"
        "  --requests N       stop issuing after N requests (at least one bound is required)\n"
        "  --image FILE...    request bodies, used round-robin; more files may follow\n"
        "  --multipart        send multipart/form-data (part \"image\") instead of the raw\n"
        "                     file with Content-Type from its magic bytes\n"
        "  --request FILE...  instead of --image: files each holding one complete HTTP/1.1\n"
        "                     request (head and body, keep-alive), sent as they are (e.g.\n"
        "                     v2 inference requests built by bench/v2-bench.py)\n"
        "  --timeout S        per-request timeout in seconds (default %.0f)\n"
        "  --seed N           seed for --poisson (default 1)\n"
        "  --json | --csv     machine-readable report on stdout (--csv-header prints the CSV\n"
        "                     header line first)\n"
        "  --quiet            no live progress line (it is shown only when stderr is a TTY)\n"
        "  --allow-remote     allow targets outside 127.0.0.0/8, ::1 and localhost\n"
        "  -h, --help         this help\n"
        "\n"
        "Latency percentiles cover every HTTP response (any status), from a log-linear\n"
        "histogram with < 1%% relative error. Connection errors and timeouts are counted\n"
        "separately. Exit status: 0 when the run completed, 1 on errors before it, 2 on\n"
        "bad usage or a refused target.\n",
        DEFAULT_CAP, DEFAULT_TIMEOUT);
}

static void die_usage(const char *msg, const char *arg) {
    fprintf(stderr, PROG ": %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, "try '" PROG " --help'\n");
    exit(2);
}

static double parse_pos(const char *opt, const char *s, int allow_zero) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v == v) || v < 0 || (!allow_zero && v == 0) || v > 1e9) {
        fprintf(stderr, PROG ": %s needs a positive number, got '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

/* One image file, or NULL after a message: unreadable, empty or over IMAGE_MAX. */
static char *read_image(const char *path, size_t *len) {
    char err[512];
    uint8_t *buf = sn_read_file(path, IMAGE_MAX, len, err, sizeof err);
    if (!buf) {
        fprintf(stderr, PROG ": image %s\n", err);
        return NULL;
    }
    if (*len == 0) {
        fprintf(stderr, PROG ": image %s is empty\n", path);
        free(buf);
        return NULL;
    }
    return (char *)buf;
}

static int valid_model_name(const char *s) {
    if (!*s || strlen(s) > 128) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int is_loopback_sockaddr(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* Resolves the target; for loopback-only runs every address used must be loopback. Prefers
 * IPv4 so that "localhost" reaches a server bound to 127.0.0.1. */
static int resolve(const sn_url *u, int allow_remote, sn_lg_config *cfg) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai, *p;
    if (!allow_remote && strcasecmp(u->host, "localhost") != 0) hints.ai_flags = AI_NUMERICHOST;
    int rc = getaddrinfo(u->host, u->port, &hints, &ai);
    if (rc) {
        fprintf(stderr, PROG ": cannot resolve %s: %s\n", u->host, gai_strerror(rc));
        return -1;
    }
    const struct addrinfo *pick = NULL;
    for (int pass = 0; pass < 2 && !pick; pass++)
        for (p = ai; p && !pick; p = p->ai_next) {
            if (pass == 0 && p->ai_family != AF_INET) continue;
            if (!allow_remote && !is_loopback_sockaddr(p->ai_addr)) continue;
            pick = p;
        }
    if (!pick) {
        fprintf(stderr,
                PROG ": refusing to load-test %s: it does not resolve to a loopback address; "
                     "pass --allow-remote to target other hosts\n",
                u->host);
        freeaddrinfo(ai);
        return -2;
    }
    memcpy(&cfg->addr, pick->ai_addr, pick->ai_addrlen);
    cfg->addrlen = (socklen_t)pick->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static void on_signal(int sig) {
    (void)sig;
    sn_lg_request_stop();
}

static double ms(uint64_t ns) {
    return (double)ns / 1e6;
}

static uint64_t total_errors(const sn_lg_result *r) {
    uint64_t e = r->completed - r->ok;
    for (int i = 0; i < SN_LG_ERR_N; i++) e += r->errors[i];
    return e;
}

static const double QS[] = {0.5, 0.9, 0.99, 0.999};

static void report_text(const sn_lg_config *cfg, const char *url, const sn_lg_result *r) {
    if (cfg->rate > 0)
        printf("%s: open loop, %.1f req/s (%s arrivals), at most %d connections\n", url, cfg->rate,
               cfg->poisson ? "poisson" : "constant", cfg->connections);
    else
        printf("%s: closed loop, %d connections\n", url, cfg->connections);
    printf("  requests    %llu sent, %llu responses (%llu 2xx), %llu errors in %.2f s\n",
           (unsigned long long)r->sent, (unsigned long long)r->completed, (unsigned long long)r->ok,
           (unsigned long long)total_errors(r), r->elapsed_s);
    printf("  throughput  %.1f responses/s, %.1f 2xx/s\n",
           r->elapsed_s > 0 ? (double)r->completed / r->elapsed_s : 0.0,
           r->elapsed_s > 0 ? (double)r->ok / r->elapsed_s : 0.0);
    const sn_hist *h = &r->hist;
    printf("  latency ms  mean %.3f  min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max "
           "%.3f\n",
           sn_hist_mean(h) / 1e6, ms(h->count ? h->min : 0), ms(sn_hist_quantile(h, QS[0])),
           ms(sn_hist_quantile(h, QS[1])), ms(sn_hist_quantile(h, QS[2])),
           ms(sn_hist_quantile(h, QS[3])), ms(h->max));
    printf("  status     ");
    int any = 0;
    for (int s = 0; s < 600; s++)
        if (r->status[s]) printf(" %d: %llu", s, (unsigned long long)r->status[s]), any = 1;
    printf("%s\n", any ? "" : " (no responses)");
    printf("  errors     ");
    for (int i = 0; i < SN_LG_ERR_N; i++)
        printf(" %s %llu", sn_lg_err_names[i], (unsigned long long)r->errors[i]);
    printf("\n  connections %llu opened, at most %d requests in flight",
           (unsigned long long)r->conns_opened, r->max_concurrent);
    if (cfg->rate > 0) printf(", at most %llu queued", (unsigned long long)r->max_queued);
    printf("\n");
}

static void report_json(const sn_lg_config *cfg, const char *url, const char *model,
                        const sn_lg_result *r) {
    const sn_hist *h = &r->hist;
    json_t *st = json_object(), *er = json_object();
    for (int s = 0; s < 600; s++)
        if (r->status[s]) {
            char k[8];
            snprintf(k, sizeof k, "%d", s);
            json_object_set_new(st, k, json_integer((json_int_t)r->status[s]));
        }
    for (int i = 0; i < SN_LG_ERR_N; i++)
        json_object_set_new(er, sn_lg_err_names[i], json_integer((json_int_t)r->errors[i]));
    double el = r->elapsed_s > 0 ? r->elapsed_s : 1;
    json_t *o = json_object();
    json_object_set_new(o, "url", json_string(url));
    json_object_set_new(o, "model", model ? json_string(model) : json_null());
    json_object_set_new(o, "mode", json_string(cfg->rate > 0 ? "open" : "closed"));
    json_object_set_new(o, "rate", cfg->rate > 0 ? json_real(cfg->rate) : json_null());
    json_object_set_new(o, "arrivals",
                        cfg->rate > 0 ? json_string(cfg->poisson ? "poisson" : "constant")
                                      : json_null());
    json_object_set_new(o, "connections", json_integer(cfg->connections));
    json_object_set_new(o, "duration_s", json_real(cfg->duration_s));
    json_object_set_new(o, "elapsed_s", json_real(r->elapsed_s));
    json_object_set_new(o, "sent", json_integer((json_int_t)r->sent));
    json_object_set_new(o, "completed", json_integer((json_int_t)r->completed));
    json_object_set_new(o, "ok", json_integer((json_int_t)r->ok));
    json_object_set_new(o, "errors", json_integer((json_int_t)total_errors(r)));
    json_object_set_new(o, "throughput_rps", json_real((double)r->completed / el));
    json_object_set_new(o, "ok_rps", json_real((double)r->ok / el));
    json_object_set_new(o, "mean_ms", json_real(sn_hist_mean(h) / 1e6));
    json_object_set_new(o, "min_ms", json_real(ms(h->count ? h->min : 0)));
    json_object_set_new(o, "p50_ms", json_real(ms(sn_hist_quantile(h, QS[0]))));
    json_object_set_new(o, "p90_ms", json_real(ms(sn_hist_quantile(h, QS[1]))));
    json_object_set_new(o, "p99_ms", json_real(ms(sn_hist_quantile(h, QS[2]))));
    json_object_set_new(o, "p999_ms", json_real(ms(sn_hist_quantile(h, QS[3]))));
    json_object_set_new(o, "max_ms", json_real(ms(h->max)));
    json_object_set_new(o, "status_counts", st);
    json_object_set_new(o, "error_counts", er);
    json_object_set_new(o, "connections_opened", json_integer((json_int_t)r->conns_opened));
    json_object_set_new(o, "max_in_flight", json_integer(r->max_concurrent));
    json_object_set_new(o, "max_queued", json_integer((json_int_t)r->max_queued));
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(8));
    if (s) printf("%s\n", s);
    free(s);
    json_decref(o);
}

static const char *CSV_HEADER =
    "mode,rate,connections,duration_s,elapsed_s,sent,completed,ok,errors,throughput_rps,ok_rps,"
    "mean_ms,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,status_counts,error_counts";

static void report_csv(const sn_lg_config *cfg, const sn_lg_result *r, int header) {
    const sn_hist *h = &r->hist;
    double el = r->elapsed_s > 0 ? r->elapsed_s : 1;
    if (header) printf("%s\n", CSV_HEADER);
    printf("%s,%.3f,%d,%.3f,%.3f,%llu,%llu,%llu,%llu,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,",
           cfg->rate > 0 ? "open" : "closed", cfg->rate, cfg->connections, cfg->duration_s,
           r->elapsed_s, (unsigned long long)r->sent, (unsigned long long)r->completed,
           (unsigned long long)r->ok, (unsigned long long)total_errors(r),
           (double)r->completed / el, (double)r->ok / el, sn_hist_mean(h) / 1e6,
           ms(sn_hist_quantile(h, QS[0])), ms(sn_hist_quantile(h, QS[1])),
           ms(sn_hist_quantile(h, QS[2])), ms(sn_hist_quantile(h, QS[3])), ms(h->max));
    const char *sep = "";
    for (int s = 0; s < 600; s++)
        if (r->status[s]) printf("%s%d:%llu", sep, s, (unsigned long long)r->status[s]), sep = ";";
    printf(",");
    for (int i = 0; i < SN_LG_ERR_N; i++)
        printf("%s%s:%llu", i ? ";" : "", sn_lg_err_names[i], (unsigned long long)r->errors[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    enum {
        O_JSON = 256,
        O_CSV,
        O_CSV_HEADER,
        O_MULTIPART,
        O_POISSON,
        O_ALLOW,
        O_TIMEOUT,
        O_SEED,
        O_QUIET,
        O_REQUEST
    };
    static const struct option opts[] = {{"url", required_argument, 0, 'u'},
                                         {"model", required_argument, 0, 'm'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"poisson", no_argument, 0, O_POISSON},
                                         {"connections", required_argument, 0, 'c'},
                                         {"duration", required_argument, 0, 'd'},
                                         {"requests", required_argument, 0, 'n'},
                                         {"image", required_argument, 0, 'i'},
                                         {"multipart", no_argument, 0, O_MULTIPART},
                                         {"request", required_argument, 0, O_REQUEST},
                                         {"json", no_argument, 0, O_JSON},
                                         {"csv", no_argument, 0, O_CSV},
                                         {"csv-header", no_argument, 0, O_CSV_HEADER},
                                         {"timeout", required_argument, 0, O_TIMEOUT},
                                         {"seed", required_argument, 0, O_SEED},
                                         {"quiet", no_argument, 0, O_QUIET},
                                         {"allow-remote", no_argument, 0, O_ALLOW},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *url = NULL, *model = NULL;
    const char **images = calloc((size_t)argc + 1, sizeof *images);
    int nimages = 0, multipart = 0, json = 0, csv = 0, csv_header = 0, quiet = 0, allow = 0;
    int prebuilt = 0, plain = 0; /* files given by --request (whole requests), by --image */
    int poisson = 0;
    double rate = 0, duration = 0, timeout = DEFAULT_TIMEOUT, conns = 0;
    double nreq = 0, seed = 1;
    if (!images) return 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "u:m:r:c:d:n:i:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            url = optarg;
            break;
        case 'm':
            model = optarg;
            break;
        case 'r':
            rate = parse_pos("--rate", optarg, 0);
            break;
        case 'c':
            conns = parse_pos("--connections", optarg, 0);
            break;
        case 'd':
            duration = parse_pos("--duration", optarg, 0);
            break;
        case 'n':
            nreq = parse_pos("--requests", optarg, 0);
            break;
        case 'i':
            plain = 1;
            images[nimages++] = optarg;
            break;
        case O_REQUEST:
            prebuilt = 1;
            images[nimages++] = optarg;
            break;
        case O_POISSON:
            poisson = 1;
            break;
        case O_MULTIPART:
            multipart = 1;
            break;
        case O_JSON:
            json = 1;
            break;
        case O_CSV:
            csv = 1;
            break;
        case O_CSV_HEADER:
            csv = csv_header = 1;
            break;
        case O_TIMEOUT:
            timeout = parse_pos("--timeout", optarg, 0);
            break;
        case O_SEED:
            seed = parse_pos("--seed", optarg, 1);
            break;
        case O_QUIET:
            quiet = 1;
            break;
        case O_ALLOW:
            allow = 1;
            break;
        case 'h':
            usage(stdout);
            free(images);
            return 0;
        default:
            die_usage("bad option", NULL);
        }
    }
    int rc = 1;
    sn_lg_request *reqs = NULL;
    sn_lg_result *res = NULL;
    for (int i = optind; i < argc; i++) {
        if (nimages == 0) die_usage("unexpected argument (images go after --image)", argv[i]);
        images[nimages++] = argv[i];
    }
    if (!url) die_usage("--url is required", NULL);
    if (rate == 0 && conns == 0)
        die_usage("give --rate (open loop) or --connections (closed)", NULL);
    if (duration == 0 && nreq == 0)
        die_usage("give --duration or --requests to bound the run", NULL);
    if (nimages == 0) die_usage("--image FILE (or --request FILE) is required", NULL);
    if (prebuilt && (multipart || plain))
        die_usage("--request sends the files as they are: no --image or --multipart", NULL);
    if (json && csv) die_usage("--json and --csv are exclusive", NULL);
    if (conns != (int)conns || conns > MAX_CONNS)
        die_usage("--connections must be an integer <= 10000", NULL);
    if (nreq != (double)(uint64_t)nreq) die_usage("--requests must be an integer", NULL);
    if (model && !valid_model_name(model))
        die_usage("--model takes letters, digits, '.', '_' and '-' only", model);
    if (poisson && rate == 0) die_usage("--poisson needs --rate", NULL);

    sn_url u;
    char err[512];
    if (sn_url_parse(url, &u, err, sizeof err) < 0) die_usage(err, NULL);
    /* The loopback check comes before any name lookup or socket. */
    if (!allow && !sn_host_is_loopback_literal(u.host)) {
        fprintf(stderr,
                PROG ": refusing to load-test %s: only loopback targets (127.0.0.0/8, ::1, "
                     "localhost) are allowed; pass --allow-remote to target a remote host\n",
                u.host);
        rc = 2;
        goto done;
    }
    char path[1200];
    if (u.path[0] && model) die_usage("give --model or a path in --url, not both", NULL);
    if (u.path[0])
        snprintf(path, sizeof path, "%s", u.path);
    else if (model)
        snprintf(path, sizeof path, "/v1/models/%s/classify", model);
    else
        snprintf(path, sizeof path, "/classify");

    sn_lg_config cfg = {0};
    int rr = resolve(&u, allow, &cfg);
    if (rr < 0) {
        rc = rr == -2 ? 2 : 1;
        goto done;
    }
    char host_header[300];
    if (strcmp(u.port, "80") == 0)
        snprintf(host_header, sizeof host_header, u.host_is_v6 ? "[%s]" : "%s", u.host);
    else
        snprintf(host_header, sizeof host_header, u.host_is_v6 ? "[%s]:%s" : "%s:%s", u.host,
                 u.port);

    reqs = calloc((size_t)nimages, sizeof *reqs);
    if (!reqs) goto done;
    for (int i = 0; i < nimages; i++) {
        size_t len;
        char *data = read_image(images[i], &len);
        if (!data) goto done;
        if (prebuilt) {
            reqs[i].data = data;
            reqs[i].len = len;
            continue;
        }
        reqs[i].data = sn_request_build(host_header, path, images[i], (unsigned char *)data, len,
                                        multipart, &reqs[i].len);
        free(data);
        if (!reqs[i].data) {
            fprintf(stderr, PROG ": out of memory building requests\n");
            goto done;
        }
    }

    cfg.requests = reqs;
    cfg.nrequests = (size_t)nimages;
    cfg.rate = rate;
    cfg.poisson = poisson;
    cfg.connections = conns > 0 ? (int)conns : DEFAULT_CAP;
    cfg.duration_s = duration;
    cfg.max_reqs = (uint64_t)nreq;
    cfg.timeout_s = timeout;
    cfg.seed = (uint64_t)seed;
    cfg.progress = !quiet && isatty(STDERR_FILENO);

    /* Many connections need many descriptors: raise the soft limit as far as allowed. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)cfg.connections + 16 > rl.rlim_cur) {
        fprintf(stderr, PROG ": %d connections need more file descriptors than the limit %llu\n",
                cfg.connections, (unsigned long long)rl.rlim_cur);
        goto done;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    res = malloc(sizeof *res);
    if (!res || sn_lg_run(&cfg, res) < 0) goto done;

    char shown[1600];
    snprintf(shown, sizeof shown, "http://%s%s", host_header, path);
    if (json)
        report_json(&cfg, shown, model, res);
    else if (csv)
        report_csv(&cfg, res, csv_header);
    else
        report_text(&cfg, shown, res);
    rc = 0;
done:
    for (int i = 0; reqs && i < nimages; i++) free(reqs[i].data);
    free(reqs);
    free(res);
    free(images);
    return rc;
}
