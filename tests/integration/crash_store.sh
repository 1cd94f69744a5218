#!/usr/bin/env bash
# Store safety around crashes: (1) a second `herald run` on a store that a running one holds
# refuses to start with a clear message and changes nothing; (2) a `herald run` killed with
# SIGKILL mid-delivery leaves a stale LMDB reader slot (seen with mdb_stat -r), and the next
# open of the store clears it (logged) and the next run completes every delivery; (3) the
# run lock dies with the process, so no manual clean-up is ever needed.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need mdb_stat
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[*]
latency = fixed 200
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
gen_envelopes https "$TLS_PORT" 40 10 >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
RUN=("$HERALD" --db "$DB" run --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem"
     --allow-private-addresses --max-inflight-host 2 --threads 2)
"${RUN[@]}" 2>"$T/run1.log" &
pid=$!
for _ in $(seq 100); do [ "$(fs_requests)" -ge 5 ] && break; sleep 0.1; done
[ "$(fs_requests)" -ge 5 ] || fail "first run sent nothing"

# (1) a second run while the first holds the store
rc=0
timeout 20 "${RUN[@]}" --until-idle 2>"$T/run2.log" || rc=$?
cat "$T/run2.log"
[ "$rc" != 0 ] || fail "a second herald run on the same store started"
[ "$rc" != 124 ] || fail "the second herald run hung instead of refusing"
grep -q "another herald run is using the store" "$T/run2.log" || fail "no clear message"
kill -0 "$pid" 2>/dev/null || fail "the first run died when a second one tried to start"
pass "second run refused (exit $rc) while the first kept running"

# (2) SIGKILL mid-delivery. When the killed process was the store's only user, LMDB resets
# the reader table on the next open by itself; a stale slot survives when another process
# keeps the store open meanwhile (an operator's `herald follow import` waiting on its input
# here: it holds no transaction while it reads), and stays until someone runs
# mdb_reader_check: Herald does on every open.
mkfifo "$T/enq.fifo"
"$HERALD" --db "$DB" follow import "$T/enq.fifo" >"$T/enq.out" 2>&1 &
enq=$!
PIDS+=("$enq")
exec 7>"$T/enq.fifo"
sleep 0.5
kill -0 "$enq" 2>/dev/null || fail "follow import did not stay up"
mdb_stat -r "$DB" >"$T/readers.before" 2>&1 || true
grep -Eq "^ *$pid " "$T/readers.before" || { cat "$T/readers.before"; fail "no reader slot for the running herald (pid $pid)"; }
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
mdb_stat -r "$DB" >"$T/readers.dead" 2>&1 || true
grep -Eq "^ *$pid " "$T/readers.dead" || { cat "$T/readers.dead"; fail "expected a stale reader slot of the killed pid $pid"; }
echo "stale reader slot of killed pid $pid present: $(grep -E "^ *$pid " "$T/readers.dead" | head -1)"
# the next open clears it (hd_store_open runs mdb_reader_check) and says so at info level
timeout 20 "$HERALD" --db "$DB" --log-level info stats --json >"$T/stats.json" 2>"$T/stats.log" ||
    { cat "$T/stats.log"; fail "store left by a crash does not open"; }
grep -q "cleared stale readers" "$T/stats.log" || { cat "$T/stats.log"; fail "stale readers not reported cleared"; }
mdb_stat -r "$DB" >"$T/readers.after" 2>&1 || true
if grep -Eq "^ *$pid " "$T/readers.after"; then cat "$T/readers.after"; fail "stale reader still there"; fi
pass "stale reader of the killed run cleared on the next open"
exec 7>&-
wait "$enq" || fail "follow import (empty input) failed: $(cat "$T/enq.out")"

# (3) the run lock went with the process: a fresh run starts and completes everything
timeout 120 "${RUN[@]}" --until-idle 2>"$T/run3.log" || { tail "$T/run3.log"; fail "run after the crash failed"; }
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
[ "$(jq .deliveries.done "$T/stats.json")" = 400 ] || fail "done $(jq .deliveries.done "$T/stats.json") != 400"
[ "$(jq .unique_pairs "$T/fedisim.report.json")" = 400 ] || fail "receiver has $(jq .unique_pairs "$T/fedisim.report.json") of 400"
pass "run after SIGKILL: no manual clean-up, 400 of 400 delivered, $(jq .duplicates "$T/fedisim.report.json") duplicates"
