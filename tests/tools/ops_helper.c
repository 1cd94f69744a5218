/* ops_helper: stand-ins for the service integration test (no Python, no socat here).
 *   ops_helper notify PATH OUT     receive sd_notify datagrams on PATH, append each to OUT
 *   ops_helper blackhole PORTFILE  accept TCP on 127.0.0.1 (port written to PORTFILE) and
 *                                  never answer: requests stay in flight
 *   ops_helper slow PORTFILE MS    answer each HTTP/1.1 request 202 after MS milliseconds
 *                                  (creates PORTFILE.got when a request has arrived)
 * Both run until SIGTERM or 120 s, whichever comes first. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_term(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int notify_mode(const char *path, const char *out)
{
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    time_t end = time(NULL) + 120;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("notify bind");
        return 1;
    }
    while (!g_stop && time(NULL) < end) {
        struct pollfd p = {fd, POLLIN, 0};
        char buf[4096];
        ssize_t n;
        FILE *f;
        if (poll(&p, 1, 200) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = 0;
        f = fopen(out, "a");
        if (f) {
            fprintf(f, "%s\n--\n", buf);
            fclose(f);
        }
    }
    unlink(path);
    return 0;
}

static int blackhole_mode(const char *portfile)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), conns[256], nconns = 0, one = 1;
    time_t end = time(NULL) + 120;
    FILE *f;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("blackhole");
        return 1;
    }
    f = fopen(portfile, "w");
    if (!f)
        return 1;
    fprintf(f, "%u\n", ntohs(sa.sin_port));
    fclose(f);
    while (!g_stop && time(NULL) < end) {
        struct pollfd p = {fd, POLLIN, 0};
        int c;
        if (poll(&p, 1, 200) <= 0)
            continue;
        c = accept(fd, NULL, NULL);
        if (c >= 0 && nconns < 256)
            conns[nconns++] = c; /* held open, never read from or answered */
        if (c >= 0) {
            char got[4096];
            FILE *g;
            snprintf(got, sizeof(got), "%s.got", portfile); /* a connection is in */
            g = fopen(got, "w");
            if (g)
                fclose(g);
        }
        else if (c >= 0)
            close(c);
    }
    for (int i = 0; i < nconns; i++)
        close(conns[i]);
    close(fd);
    return 0;
}

/* Answers each request 202 after delay_ms, one connection at a time (enough for one test
 * delivery). Reads until the end of the headers plus Content-Length bytes. */
static int slow_mode(const char *portfile, int delay_ms)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    time_t end = time(NULL) + 120;
    FILE *f;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return 1;
    f = fopen(portfile, "w");
    if (!f)
        return 1;
    fprintf(f, "%u\n", ntohs(sa.sin_port));
    fclose(f);
    while (!g_stop && time(NULL) < end) {
        struct pollfd p = {fd, POLLIN, 0};
        char buf[65536];
        size_t n = 0;
        int c;
        if (poll(&p, 1, 200) <= 0)
            continue;
        c = accept(fd, NULL, NULL);
        if (c < 0)
            continue;
        for (;;) {
            char *h;
            ssize_t r = recv(c, buf + n, sizeof(buf) - 1 - n, 0);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = 0;
            h = strstr(buf, "\r\n\r\n");
            if (h) {
                char *cl = strcasestr(buf, "content-length:");
                size_t want = (size_t)(h + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
                if (n >= want) {
                    static const char ok[] =
                        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                    struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
                    char got[4096];
                    FILE *g;
                    /* tell the test a request is in flight (PORTFILE.got) */
                    snprintf(got, sizeof(got), "%s.got", portfile);
                    g = fopen(got, "w");
                    if (g)
                        fclose(g);
                    nanosleep(&ts, NULL);
                    if (send(c, ok, sizeof(ok) - 1, MSG_NOSIGNAL) < 0)
                        perror("send");
                    break;
                }
            }
        }
        close(c);
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    if (argc == 4 && !strcmp(argv[1], "notify"))
        return notify_mode(argv[2], argv[3]);
    if (argc == 3 && !strcmp(argv[1], "blackhole"))
        return blackhole_mode(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "slow"))
        return slow_mode(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: ops_helper notify PATH OUT | blackhole PORTFILE | slow PORTFILE MS\n");
    return 2;
}
