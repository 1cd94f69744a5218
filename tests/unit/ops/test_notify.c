/* sd_notify: datagrams reach a path socket and an abstract one; no socket is a no-op. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "t.h"

static int bind_dgram(const char *name, socklen_t *len)
{
    struct sockaddr_un sa;
    size_t n = strlen(name);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    T_OK(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = 0;
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
    T_EQ_INT(bind(fd, (struct sockaddr *)&sa, *len), 0);
    return fd;
}

int main(void)
{
    char path[64], abs[64], buf[256];
    socklen_t l;
    ssize_t n;
    int fd;

    T_EQ_INT(hd_notify_to(NULL, "READY=1"), 0);
    T_EQ_INT(hd_notify_to("", "READY=1"), 0);
    T_EQ_INT(hd_notify_to("relative/path", "READY=1"), -EINVAL);

    snprintf(path, sizeof(path), "/tmp/hd-notify-%d.sock", (int)getpid());
    unlink(path);
    fd = bind_dgram(path, &l);
    T_EQ_INT(hd_notify_to(path, "READY=1\nSTATUS=up"), 1);
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    T_EQ_INT(n, 17);
    buf[n] = 0;
    T_EQ_STR(buf, "READY=1\nSTATUS=up");
    close(fd);
    unlink(path);
    /* nobody listening any more */
    T_OK(hd_notify_to(path, "READY=1") < 0);

    snprintf(abs, sizeof(abs), "@hd-notify-test-%d", (int)getpid());
    fd = bind_dgram(abs, &l);
    T_EQ_INT(hd_notify_to(abs, "STOPPING=1"), 1);
    n = recv(fd, buf, sizeof(buf) - 1, 0);
    T_EQ_INT(n, 10);
    close(fd);
    T_DONE();
}
