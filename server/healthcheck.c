/* healthcheck.c - `shufflenet-server --healthcheck [URL]`: one plain-HTTP GET against the
 * running server (its /readyz by default) that exits 0 on 200 and 1 otherwise, so a container
 * HEALTHCHECK needs neither curl nor a shell in the image. */
#include "server/healthcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/config.h"

#define HC_BUDGET_MS 3000

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Wait for ev on fd until the deadline; 1 ready, 0 time out, -1 error. */
static int wait_fd(int fd, short ev, long long deadline) {
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        return r < 0 ? -1 : r;
    }
}

/* http://HOST[:PORT][/PATH] with HOST a name, an IPv4 address or [IPv6]. */
static int parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                     const char **path) {
    if (strncmp(url, "http://", 7) != 0) return -1;
    const char *h = url + 7, *he;
    if (*h == '[') {
        he = strchr(++h, ']');
        if (!he) return -1;
    } else {
        he = h + strcspn(h, ":/");
    }
    if (he == h || (size_t)(he - h) >= hcap) return -1;
    memcpy(host, h, (size_t)(he - h));
    host[he - h] = 0;
    const char *p = *he == ']' ? he + 1 : he;
    snprintf(port, pcap, "80");
    if (*p == ':') {
        size_t n = strspn(p + 1, "0123456789");
        if (n == 0 || n >= pcap || (p[1 + n] && p[1 + n] != '/')) return -1;
        memcpy(port, p + 1, n);
        port[n] = 0;
        p += 1 + n;
    }
    if (*p && *p != '/') return -1;
    *path = *p ? p : "/";
    return 0;
}

/* http://127.0.0.1:PORT/readyz for the address the server listens on. */
static void default_url(char *url, size_t cap) {
    const char *listen = getenv("SHUFFLENET_LISTEN");
    char host[128];
    int port = 8080;
    if (!listen || sn_config_split_listen(listen, host, sizeof host, &port) < 0) {
        snprintf(url, cap, "http://127.0.0.1:%d/readyz", port);
        return;
    }
    if (strchr(host, ':')) /* IPv6 */
        snprintf(url, cap, "http://[%s]:%d/readyz", strcmp(host, "::") == 0 ? "::1" : host, port);
    else
        snprintf(url, cap, "http://%s:%d/readyz",
                 strcmp(host, "0.0.0.0") == 0 || !*host ? "127.0.0.1" : host, port);
}

int sn_healthcheck(int argc, char **argv) {
    char url[512], host[256], port[8];
    const char *path;
    if (argc > 2) {
        fprintf(stderr, "usage: shufflenet-server --healthcheck [http://HOST:PORT/PATH]\n");
        return 1;
    }
    if (argc == 2)
        snprintf(url, sizeof url, "%s", argv[1]);
    else
        default_url(url, sizeof url);
    if (parse_url(url, host, sizeof host, port, sizeof port, &path) < 0) {
        fprintf(stderr, "healthcheck: \"%s\" is not an http://HOST:PORT/PATH URL\n", url);
        return 1;
    }

    long long deadline = now_ms() + HC_BUDGET_MS;
    struct addrinfo hints = {0}, *ai;
    hints.ai_socktype = SOCK_STREAM;
    int gr = getaddrinfo(host, port, &hints, &ai);
    if (gr != 0) {
        fprintf(stderr, "healthcheck: %s: %s\n", host, gai_strerror(gr));
        return 1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int ok = fd >= 0;
    if (ok && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        ok = errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 1;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (ok && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr)) ok = 0;
        if (!ok) errno = soerr ? soerr : ETIMEDOUT;
    }
    freeaddrinfo(ai);
    if (!ok) {
        fprintf(stderr, "healthcheck: %s: cannot connect: %s\n", url, strerror(errno));
        if (fd >= 0) close(fd);
        return 1;
    }

    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    if (n < 0 || (size_t)n >= sizeof req) {
        fprintf(stderr, "healthcheck: URL too long\n");
        close(fd);
        return 1;
    }
    for (int off = 0; off < n;) {
        if (wait_fd(fd, POLLOUT, deadline) != 1) goto timeout;
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) goto ioerr;
        if (w > 0) off += (int)w;
    }
    /* The status line is all we need: "HTTP/1.x CODE REASON\r\n". */
    char resp[256];
    size_t got = 0;
    while (got < sizeof resp - 1 && !memchr(resp, '\n', got)) {
        if (wait_fd(fd, POLLIN, deadline) != 1) goto timeout;
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r == 0) break;
        if (r < 0 && errno != EAGAIN && errno != EINTR) goto ioerr;
        if (r > 0) got += (size_t)r;
    }
    close(fd);
    resp[got] = 0;
    resp[strcspn(resp, "\r\n")] = 0;
    int code = 0;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &code) != 1) {
        fprintf(stderr, "healthcheck: %s: not an HTTP answer\n", url);
        return 1;
    }
    printf("healthcheck: %s: %s\n", url, resp);
    return code == 200 ? 0 : 1;

timeout:
    fprintf(stderr, "healthcheck: %s: no answer within %d ms\n", url, HC_BUDGET_MS);
    close(fd);
    return 1;
ioerr:
    fprintf(stderr, "healthcheck: %s: %s\n", url, strerror(errno));
    close(fd);
    return 1;
}
