/* stub_server.c - a tiny HTTP/1.1 server for testing shufflenet-loadgen: every request gets a
 * small JSON reply after a fixed delay, optionally with a one-off stall (the whole server
 * freezes for a while), chunked replies or periodic Connection: close. Single thread, ppoll,
 * keep-alive. Prints "port N" on stdout once listening and "requests N connections N" when
 * it gets SIGTERM or SIGINT.
 *
 *   stub_server [--listen ADDR] [--port P] [--delay-ms D] [--stall-at-ms S --stall-ms L]
 *               [--chunked] [--close-every N] [--status CODE]
 *
 * The stall window starts S ms after the first request arrived: a request arriving inside
 * it is handled as if it arrived at its end, and no reply leaves during it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC   4096
#define INMAX  (1 << 20)
#define PENDMX 64

typedef struct {
    int fd;
    char *in;
    size_t inlen;
    char *out;
    size_t outlen, outoff, outcap;
    uint64_t due[PENDMX];
    int npend;
    int closing;
} client;

static volatile sig_atomic_t quit;
static client cl[MAXC];
static double delay_ms, stall_at_ms = -1, stall_ms;
static int chunked, close_every, status_code = 200;
static uint64_t first_ns, nreq, nconn;

static void on_sig(int s) {
    (void)s;
    quit = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void stall_window(uint64_t *ws, uint64_t *we) {
    if (stall_at_ms < 0 || !first_ns) {
        *ws = *we = 0;
        return;
    }
    *ws = first_ns + (uint64_t)(stall_at_ms * 1e6);
    *we = *ws + (uint64_t)(stall_ms * 1e6);
}

static void drop(client *c) {
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static void out_append(client *c, const char *s, size_t n) {
    if (c->outlen + n > c->outcap) {
        size_t cap = (c->outlen + n) * 2;
        char *p = realloc(c->out, cap);
        if (!p) abort();
        c->out = p;
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, s, n);
    c->outlen += n;
}

static void respond(client *c) {
    static uint64_t served;
    char body[128], head[256];
    served++;
    int close_now = close_every > 0 && served % (uint64_t)close_every == 0;
    int bl = snprintf(body, sizeof body, "{\"ok\": true, \"served\": %llu}\n",
                      (unsigned long long)served);
    const char *conn = close_now ? "Connection: close\r\n" : "";
    if (chunked) {
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 %d Stub\r\nContent-Type: application/json\r\n%s"
                          "Transfer-Encoding: chunked\r\n\r\n",
                          status_code, conn);
        out_append(c, head, (size_t)hl);
        int half = bl / 2; /* two data chunks, one with an extension, then an empty trailer */
        char ck[64];
        int n = snprintf(ck, sizeof ck, "%x;ext=1\r\n", half);
        out_append(c, ck, (size_t)n);
        out_append(c, body, (size_t)half);
        n = snprintf(ck, sizeof ck, "\r\n%X\r\n", bl - half);
        out_append(c, ck, (size_t)n);
        out_append(c, body + half, (size_t)(bl - half));
        const char *tail = "\r\n0\r\nX-Trailer: 1\r\n\r\n";
        out_append(c, tail, strlen(tail));
    } else {
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 %d Stub\r\nContent-Type: application/json\r\n%s"
                          "Content-Length: %d\r\n\r\n",
                          status_code, conn, bl);
        out_append(c, head, (size_t)hl);
        out_append(c, body, (size_t)bl);
    }
    if (close_now) c->closing = 1;
}

/* Takes every complete request out of c->in and schedules its reply. */
static int parse_requests(client *c, uint64_t now) {
    for (;;) {
        char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
        if (!end) return c->inlen >= INMAX ? -1 : 0;
        size_t head = (size_t)(end - c->in) + 4;
        size_t cl = 0;
        for (char *p = c->in; p < end;) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) nl = end;
            if (strncasecmp(p, "Content-Length:", 15) == 0) cl = strtoul(p + 15, NULL, 10);
            p = nl + 1;
        }
        if (cl > INMAX) return -1;
        if (c->inlen < head + cl) return 0;
        memmove(c->in, c->in + head + cl, c->inlen - head - cl);
        c->inlen -= head + cl;
        if (c->npend == PENDMX) return -1;
        if (!first_ns) first_ns = now;
        nreq++;
        uint64_t ws, we, arrive = now;
        stall_window(&ws, &we);
        if (arrive >= ws && arrive < we) arrive = we;
        uint64_t due = arrive + (uint64_t)(delay_ms * 1e6);
        if (due >= ws && due < we) due = we;
        c->due[c->npend++] = due;
    }
}

static void flush_due(client *c, uint64_t now) {
    uint64_t ws, we;
    stall_window(&ws, &we);
    if (now >= ws && now < we) return;
    int k = 0;
    while (k < c->npend && c->due[k] <= now && !c->closing) respond(c), k++;
    memmove(c->due, c->due + k, (size_t)(c->npend - k) * sizeof c->due[0]);
    c->npend -= k;
}

int main(int argc, char **argv) {
    const char *listen_addr = "127.0.0.1";
    int port = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--chunked"))
            chunked = 1;
        else if (!v)
            goto usage;
        else if (!strcmp(a, "--listen"))
            listen_addr = v, i++;
        else if (!strcmp(a, "--port"))
            port = atoi(v), i++;
        else if (!strcmp(a, "--delay-ms"))
            delay_ms = atof(v), i++;
        else if (!strcmp(a, "--stall-at-ms"))
            stall_at_ms = atof(v), i++;
        else if (!strcmp(a, "--stall-ms"))
            stall_ms = atof(v), i++;
        else if (!strcmp(a, "--close-every"))
            close_every = atoi(v), i++;
        else if (!strcmp(a, "--status"))
            status_code = atoi(v), i++;
        else
            goto usage;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_sig};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, listen_addr, &sin.sin_addr) != 1 ||
        bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(ls, 1024) < 0) {
        perror("stub_server: listen");
        return 1;
    }
    socklen_t sl = sizeof sin;
    getsockname(ls, (struct sockaddr *)&sin, &sl);
    printf("port %d\n", ntohs(sin.sin_port));
    fflush(stdout);
    for (int i = 0; i < MAXC; i++) cl[i].fd = -1;

    static struct pollfd pf[MAXC + 1];
    static int idx[MAXC + 1];
    while (!quit) {
        uint64_t now = now_ns(), wake = now + 100000000ull;
        uint64_t ws, we;
        stall_window(&ws, &we);
        int np = 0;
        pf[np] = (struct pollfd){.fd = ls, .events = POLLIN};
        idx[np++] = -1;
        for (int i = 0; i < MAXC; i++) {
            client *c = &cl[i];
            if (c->fd < 0) continue;
            flush_due(c, now);
            if (c->npend && c->due[0] < wake) wake = c->due[0];
            if (c->npend && now >= ws && now < we && we < wake) wake = we;
            short ev = c->closing ? 0 : POLLIN;
            if (c->outoff < c->outlen) ev |= POLLOUT;
            pf[np] = (struct pollfd){.fd = c->fd, .events = ev};
            idx[np++] = i;
        }
        uint64_t w = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = (time_t)(w / 1000000000ull),
                              .tv_nsec = (long)(w % 1000000000ull)};
        if (ppoll(pf, (nfds_t)np, &ts, NULL) < 0 && errno != EINTR) break;
        now = now_ns();
        for (int k = 0; k < np; k++) {
            if (idx[k] < 0) {
                if (!(pf[k].revents & POLLIN)) continue;
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int j = 0;
                    while (j < MAXC && cl[j].fd >= 0) j++;
                    if (j == MAXC) {
                        close(fd);
                        continue;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    cl[j].fd = fd;
                    cl[j].in = malloc(INMAX);
                    nconn++;
                }
                continue;
            }
            client *c = &cl[idx[k]];
            if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = read(c->fd, c->in + c->inlen, INMAX - c->inlen);
                if (n == 0 || (n < 0 && errno != EAGAIN)) {
                    drop(c);
                    continue;
                }
                if (n > 0) {
                    c->inlen += (size_t)n;
                    if (parse_requests(c, now) < 0) {
                        drop(c);
                        continue;
                    }
                    flush_due(c, now);
                }
            }
            if (c->outoff < c->outlen) {
                ssize_t n = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
                if (n < 0 && errno != EAGAIN) {
                    drop(c);
                    continue;
                }
                if (n > 0) c->outoff += (size_t)n;
                if (c->outoff == c->outlen) {
                    c->outoff = c->outlen = 0;
                    if (c->closing) drop(c);
                }
            }
        }
    }
    for (int i = 0; i < MAXC; i++)
        if (cl[i].fd >= 0) drop(&cl[i]);
    close(ls);
    printf("requests %llu connections %llu\n", (unsigned long long)nreq, (unsigned long long)nconn);
    fflush(stdout);
    return 0;
usage:
    fprintf(stderr, "usage: stub_server [--listen ADDR] [--port P] [--delay-ms D] "
                    "[--stall-at-ms S --stall-ms L] [--chunked] [--close-every N] "
                    "[--status CODE]\n");
    return 2;
}
