#!/usr/bin/env bash
# The service contract: readiness and reload/stop notifications over $NOTIFY_SOCKET (as systemd
# Type=notify sees them), and the SIGTERM drain deadline: with a request stuck in flight at a
# receiver that never answers, `herald run` exits 0 within the deadline and the delivery stays
# queued for the next run (at-least-once, nothing lost).
source "$(dirname "$0")/lib/common.sh"
need jq
HELPER="$HD_BUILD/tests/ops_helper"
[ -x "$HELPER" ] || fail "no $HELPER"
DB="$T/db"
setup_actor "$DB"

"$HELPER" notify "$T/notify.sock" "$T/notify.log" &
PIDS+=($!)
"$HELPER" blackhole "$T/bh.port" &
PIDS+=($!)
wait_file "$T/bh.port"
for _ in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
BH=$(cat "$T/bh.port")

printf '{"activity":{"id":"https://social.example/a/1","type":"Create","actor":"https://social.example/users/alice"},"inboxes":["http://127.0.0.1:%s/inbox"]}\n' "$BH" |
    "$HERALD" --db "$DB" enqueue - >/dev/null || fail "enqueue"
printf '[run]\nresponse_timeout = 60s\ndrain_timeout = 1500ms\n' >"$T/herald.ini"

NOTIFY_SOCKET="$T/notify.sock" "$HERALD" --db "$DB" run --config "$T/herald.ini" \
    --allow-private-addresses 2>"$T/run.log" &
RUN=$!
PIDS+=("$RUN")
for _ in $(seq 50); do grep -q 'READY=1' "$T/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'READY=1' "$T/notify.log" || { cat "$T/run.log"; fail "no READY=1"; }
pass "READY=1 sent to \$NOTIFY_SOCKET"

kill -HUP "$RUN"
for _ in $(seq 50); do grep -q 'RELOADING=1' "$T/notify.log" && break; sleep 0.1; done
grep -q 'RELOADING=1' "$T/notify.log" || fail "no RELOADING=1"
pass "SIGHUP: RELOADING=1 then READY=1"

# the request is in flight once the blackhole has a connection (it never answers)
for _ in $(seq 200); do [ -e "$T/bh.port.got" ] && break; sleep 0.05; done
[ -e "$T/bh.port.got" ] || fail "nothing reached the blackhole"
sleep 0.3 # connected; the request follows at once
start=$(date +%s%N)
kill -TERM "$RUN"
rc=0
wait "$RUN" || rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" = 0 ] || { tail -5 "$T/run.log"; fail "exit $rc after SIGTERM"; }
[ "$ms" -ge 1400 ] || fail "exited after ${ms} ms: did not wait for the request in flight"
[ "$ms" -lt 6000 ] || fail "drain took ${ms} ms with a 1.5 s deadline"
grep -q 'STOPPING=1' "$T/notify.log" || fail "no STOPPING=1"
pass "SIGTERM: STOPPING=1, exit 0 after ${ms} ms (deadline 1.5 s, response timeout 60 s)"

S=$("$HERALD" --db "$DB" stats --json)
[ "$(jq '.deliveries.pending + .deliveries.retrying' <<<"$S")" = 1 ] ||
    fail "the interrupted delivery is not queued: $S"
[ "$(jq .deliveries.done <<<"$S")" = 0 ] || fail "done?"
pass "the delivery cut off by the deadline is still queued for the next run"

# A slow receiver (answers after 1.5 s) inside the deadline: SIGTERM waits for the answer and
# the delivery is done.
"$HELPER" slow "$T/slow.port" 1500 &
PIDS+=($!)
wait_file "$T/slow.port"
SLOW=$(cat "$T/slow.port")
printf '{"activity":{"id":"https://social.example/a/2","type":"Create","actor":"https://social.example/users/alice"},"inboxes":["http://127.0.0.1:%s/inbox"]}\n' "$SLOW" |
    "$HERALD" --db "$DB" enqueue - >/dev/null || fail "enqueue 2"
printf '[run]\nresponse_timeout = 60s\ndrain_timeout = 5s\nretry_base = 1h\n' >"$T/herald.ini"
"$HERALD" --db "$DB" run --config "$T/herald.ini" --allow-private-addresses 2>"$T/run2.log" &
RUN=$!
PIDS+=("$RUN")
for _ in $(seq 200); do [ -e "$T/slow.port.got" ] && break; sleep 0.05; done # request in flight
[ -e "$T/slow.port.got" ] || fail "the slow receiver never got the request"
kill -TERM "$RUN"
rc=0
wait "$RUN" || rc=$?
[ "$rc" = 0 ] || { tail -5 "$T/run2.log"; fail "exit $rc after SIGTERM (slow)"; }
S=$("$HERALD" --db "$DB" stats --json)
[ "$(jq .deliveries.done <<<"$S")" = 1 ] || { tail -5 "$T/run2.log"; fail "the request in flight was not finished: $S"; }
pass "SIGTERM waited for the slow answer inside the deadline: delivered"

# The shipped unit file passes systemd's own checks (with ExecStart pointing at this build).
if command -v systemd-analyze >/dev/null 2>&1; then
    sed "s|/usr/local/bin/herald|$HERALD|" "$HD_SRC/tools/herald.service" >"$T/herald.service"
    out=$(timeout 30 systemd-analyze verify "$T/herald.service" 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warnings: $out"
    pass "tools/herald.service passes systemd-analyze verify"
fi
