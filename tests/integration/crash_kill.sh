#!/usr/bin/env bash
# Crash safety at scale: a 50,000-delivery fan-out (500 activities x 100 hosts over HTTP/2+TLS,
# every signature verified by fedisim), `herald run` killed with SIGKILL at 20 random moments
# and restarted each time, then run to completion. fedisim's per-(activity, inbox) counts
# prove that nothing was lost; duplicates are reported and must stay within what can have been
# in flight at the kills (each kill: at most hosts x --max-inflight-host requests on the wire,
# answered-but-uncommitted ones included, since a delivery stays leased until its ack commits).
# Labelled "long" (tests/CMakeLists.txt); tools/test.sh runs it in the normal build only.
# KILLS, NACT and NHOSTS can be changed from the environment.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
KILLS=${KILLS:-20}
NACT=${NACT:-500}
NHOSTS=${NHOSTS:-100}
WINDOW=8
TOTAL=$((NACT * NHOSTS))
mkcerts
DB="$T/db"
setup_actor "$DB"
# Answers take 1-10 ms, so that every kill lands while requests are in flight.
cat >"$T/profiles.ini" <<'P'
[*]
latency = uniform 1..10
P
FS_MAX_SECONDS=900 start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all \
    --profiles "$T/profiles.ini"
gen_envelopes https "$TLS_PORT" "$NACT" "$NHOSTS" k >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
RUN=("$HERALD" --db "$DB" run --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem"
     --allow-private-addresses --max-inflight-host "$WINDOW" --threads 2)
start_s=$(date +%s)
for i in $(seq "$KILLS"); do
    "${RUN[@]}" 2>>"$T/run.log" &
    pid=$!
    # A random point of the fan-out: once the receiver has seen 100 to 2,500 more requests
    # since this start (bounded: 20 s at most, e.g. during start-up on a slow machine).
    base=$(fs_requests); target=$((base + 100 + RANDOM % 2400))
    for _ in $(seq 400); do
        [ "$(fs_requests)" -ge "$target" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null || { tail -5 "$T/run.log"; fail "herald run exited on its own before kill $i"; }
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    done_now=$("$HERALD" --db "$DB" stats --json | jq .deliveries.done) || fail "stats after kill $i: store does not open"
    echo "kill $i: receiver at $(fs_requests) requests, herald done $done_now / $TOTAL"
done
timeout 600 "${RUN[@]}" --until-idle 2>>"$T/run.log" || { tail "$T/run.log"; fail "final run failed"; }
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "LOST deliveries: receiver has $(jq .unique_pairs "$R") of $TOTAL (activity, inbox) pairs"
[ "$(jq .deliveries.done "$T/stats.json")" = "$TOTAL" ] || fail "herald done $(jq .deliveries.done "$T/stats.json") != $TOTAL"
[ "$(jq '.bad_signature // 0' "$R")" = 0 ] || fail "bad signatures"
[ "$(jq '.deliveries.pending + .deliveries.retrying + .deliveries.failed' "$T/stats.json")" = 0 ] ||
    fail "deliveries left over: $(jq -c .deliveries "$T/stats.json")"
dups=$(jq .duplicates "$R")
bound=$((KILLS * NHOSTS * WINDOW))
[ "$dups" -le "$bound" ] || fail "duplicates $dups above the in-flight bound $bound"
pass "$KILLS kills in $(( $(date +%s) - start_s )) s, $TOTAL deliveries, none lost, $dups duplicates (bound: $KILLS kills x $NHOSTS hosts x window $WINDOW = $bound; $(( dups / KILLS )) per kill)"
