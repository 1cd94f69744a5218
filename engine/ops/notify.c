/* sd_notify datagrams (see notify.h). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

int hd_notify_to(const char *name, const char *state)
{
    struct sockaddr_un sa;
    socklen_t salen;
    size_t n;
    ssize_t w;
    int fd, rc = 1;

    if (!name || !name[0])
        return 0;
    n = strlen(name);
    /* '@' names an abstract socket (Linux): the address starts with a NUL byte. */
    if ((name[0] != '/' && name[0] != '@') || n >= sizeof(sa.sun_path) || n < 2)
        return -EINVAL;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = 0;
    salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/' ? 1 : 0));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    if (w < 0)
        rc = -errno;
    close(fd);
    return rc;
}

int hd_notify(const char *state)
{
    return hd_notify_to(getenv("NOTIFY_SOCKET"), state);
}
