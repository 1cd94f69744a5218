/* systemd readiness protocol (sd_notify) without libsystemd: one datagram with
 * newline-separated VAR=value assignments to the AF_UNIX socket named by $NOTIFY_SOCKET
 * (a path, or an abstract name written with a leading '@'). Used for Type=notify units:
 * READY=1 once the store is open and the ingest endpoint listens, RELOADING=1 / READY=1
 * around a configuration reload, STOPPING=1 when draining starts, STATUS=... lines. */
#ifndef HD_NOTIFY_H
#define HD_NOTIFY_H

/* Sends state (e.g. "READY=1\nSTATUS=delivering") to $NOTIFY_SOCKET. Returns 1 when sent,
 * 0 when $NOTIFY_SOCKET is unset (not under systemd: nothing to do), or -errno
 * (-EINVAL for a malformed socket name). Safe from any thread; never blocks for long (the
 * socket is non-blocking). */
int hd_notify(const char *state);

/* Same with the socket name given explicitly (NULL behaves as unset); for tests. */
int hd_notify_to(const char *socket_name, const char *state);

#endif
