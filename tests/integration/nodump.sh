#!/usr/bin/env bash
# Herald holds parsed private keys: the program makes itself non-dumpable at start (no core
# dump; /proc/PID/mem, environ and ptrace closed even to its own user). Checked on a running
# `herald run` the way its own user would try to read it: as an unprivileged user (nobody
# when the test runs as root), a dumpable process of that user (sleep) is readable through
# /proc, herald is not.
source "$(dirname "$0")/lib/common.sh"
AS=()
if [ "$(id -u)" = 0 ]; then
    need setpriv
    AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chmod 711 "$T" # nobody may reach its own directory below
fi
mkdir "$T/u"
cp "$HERALD" "$T/u/herald" # the build directory may be closed to that user
[ "$(id -u)" = 0 ] && chown -R 65534:65534 "$T/u"
readable() { "${AS[@]}" cat "/proc/$1/environ" >/dev/null 2>&1; }

"${AS[@]}" sleep 60 &
CONTROL=$!
PIDS+=("$CONTROL")
sleep 0.2
readable "$CONTROL" || { echo "SKIP: /proc/PID/environ of a dumpable process is not readable here" >&2; exit 77; }

"${AS[@]}" "$T/u/herald" --db "$T/u/db" run 2>"$T/run.log" &
RUNPID=$!
PIDS+=("$RUNPID")
for _ in $(seq 100); do grep -q 'msg="started"' "$T/run.log" && break; sleep 0.1; done
grep -q 'msg="started"' "$T/run.log" || fail "herald run did not start: $(tail -3 "$T/run.log")"
readable "$RUNPID" && fail "herald run is dumpable: its own user reads /proc/$RUNPID/environ"
kill -TERM "$RUNPID"
wait "$RUNPID" || fail "herald run exit code $?"
pass "herald run is not dumpable; a process of the same user is"
