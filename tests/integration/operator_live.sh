#!/usr/bin/env bash
# Live operator controls on a running engine: `host pause` stops new requests to a host
# within a second and `host resume` restarts them; `host set --rate` throttles; a domain
# block (suspend) stops deliveries to a host while the engine runs; `stats` shows in-flight
# requests from the engine's live report.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[*]
latency = fixed 50
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
awk -v p="$TLS_PORT" 'BEGIN {
  for (a = 1; a <= 400; a++) {
    printf "{\"activity\":{\"id\":\"https://social.example/act/%d\",\"type\":\"Like\",\"actor\":\"https://social.example/users/alice\",\"object\":\"https://x.example/n/%d\"},\"inboxes\":[\"https://paused.fedi.test:%d/inbox\",\"https://blocked.fedi.test:%d/inbox\",\"https://slowed.fedi.test:%d/inbox\"]}\n", a, a, p, p, p
  }
}' >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
"$HERALD" --db "$DB" host pause paused.fedi.test >/dev/null || fail "host pause"
"$HERALD" --db "$DB" host set slowed.fedi.test --rate 5 >/dev/null || fail "host set"
"$HERALD" --db "$DB" run --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" \
    --allow-private-addresses --max-inflight-host 4 2>"$T/run.log" &
RUN_PID=$!
PIDS+=("$RUN_PID")
sleep 2
hostreq() { curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" \
    "https://fedi.test:$TLS_PORT/_fedisim/stats" | jq -r --arg h "$1" '(.per_host[$h] // {}).requests // 0'; }
[ "$(hostreq paused.fedi.test)" = 0 ] || fail "paused host received requests"
# live in-flight shows up in stats while the engine runs
"$HERALD" --db "$DB" stats --json | jq -e '[.hosts[].in_flight] | add > 0' >/dev/null || fail "no live in_flight in stats"
# rate 5/s: about 10 requests in 2 s, far below what 4 in flight at 50 ms allow (160)
s1=$(hostreq slowed.fedi.test); sleep 2; s2=$(hostreq slowed.fedi.test)
[ "$((s2 - s1))" -le 14 ] || fail "rate limit not applied: $((s2 - s1)) requests in 2 s"
[ "$((s2 - s1))" -ge 4 ] || fail "rate-limited host starved: $((s2 - s1)) requests in 2 s"
# block while running: requests to blocked.fedi.test stop within a second
"$HERALD" --db "$DB" block add blocked.fedi.test --severity suspend >/dev/null || fail "block add"
sleep 1.2
b1=$(hostreq blocked.fedi.test); sleep 1; b2=$(hostreq blocked.fedi.test)
[ "$((b2 - b1))" -le 4 ] || fail "blocked host still receiving ($b1 then $b2)"
# resume: the paused host starts receiving within a second
"$HERALD" --db "$DB" host resume paused.fedi.test >/dev/null || fail "host resume"
sleep 1.5
[ "$(hostreq paused.fedi.test)" -gt 0 ] || fail "resumed host received nothing"
kill -TERM "$RUN_PID"; wait "$RUN_PID" || fail "run did not exit 0 on SIGTERM"
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
q=$(jq -r '.hosts[] | select(.host == "blocked.fedi.test") | .queued' "$T/stats.json")
[ "${q:-0}" = 0 ] || fail "blocked host still has $q queued deliveries"
pass "live pause/resume, rate limit and block take effect in a running engine within a second"
