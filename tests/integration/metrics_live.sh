#!/usr/bin/env bash
# Metrics from a delivering engine: `herald run --listen` against fedisim, where
# h3.fedi.test answers every request with 500. Checks the runner's hooks through GET /metrics
# (deliveries by outcome, requests, latency/sign/commit histograms, per-host series, the
# breaker gauge), promtool on the live output, `herald top --once` and the rate-limited
# per-host warning in the log.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl
[ -x "$FEDISIM" ] || { echo "SKIP: fedisim not built" >&2; exit 77; }
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'INI'
[*]
latency = fixed 20
[h3.fedi.test]
error_500 = 1.0
INI
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --profiles "$T/profiles.ini"
gen_envelopes https "$TLS_PORT" 20 5 >"$T/env.jsonl" # 100 deliveries, 20 per host
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
echo "token-$RANDOM$RANDOM" >"$T/token"
SOCK="$T/ingest.sock"
printf '[host "h2.fedi.test"]\nmax_inflight = 1\n' >"$T/herald.ini"
"$HERALD" --db "$DB" run --config "$T/herald.ini" --listen "unix:$SOCK" --token-file "$T/token" \
    --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    --retry-base 3600000 2>"$T/run.log" &
RUN=$!
PIDS+=("$RUN")
M() { curl -sS --max-time 5 --unix-socket "$SOCK" http://h/metrics >"$T/m.txt" 2>/dev/null; }
val() { awk -v k="$1" '$1 == k {print $2}' "$T/m.txt"; }
for _ in $(seq 300); do
    M || true
    [ "$(val 'herald_deliveries_total{outcome="done"}')" = 80 ] && break
    sleep 0.1
done
[ "$(val 'herald_deliveries_total{outcome="done"}')" = 80 ] ||
    { cat "$T/m.txt" | grep -v bucket | head -40; fail "done != 80"; }
sleep 0.5
M
req=$(val herald_requests_total)
[ "$req" -ge 85 ] || fail "requests $req"
[ "$(val herald_delivery_duration_seconds_count)" = "$req" ] || fail "latency count != requests"
[ "$(val herald_sign_duration_seconds_count)" -ge "$req" ] || fail "sign count"
[ "$(val herald_store_commits_total)" -ge 1 ] || fail "commits"
[ "$(val herald_store_commit_duration_seconds_count)" -ge 1 ] || fail "commit histogram"
# 20 ms answers: the median is above the 10 ms bucket, below 1 s
awk '$1 ~ /^herald_delivery_duration_seconds_bucket\{le="0.01"\}/ {b=$2} END {exit !(b < 80)}' "$T/m.txt" ||
    fail "latency below 10 ms for most requests?"
[ "$(val herald_in_flight)" = 0 ] || fail "in flight $(val herald_in_flight)"
[ "$(val herald_breakers_open)" = 1 ] || fail "breakers open $(val herald_breakers_open)"
[ "$(val 'herald_host_breaker{host="h3.fedi.test",state="open"}')" = 1 ] || fail "h3 breaker"
[ "$(val 'herald_host_backlog{host="h3.fedi.test"}')" = 20 ] || fail "h3 backlog"
[ "$(val 'herald_host_deliveries_total{host="h1.fedi.test",outcome="done"}')" = 20 ] ||
    fail "h1 done (top hosts: $(grep -c '^herald_host_backlog' "$T/m.txt"))"
[ "$(val 'herald_host_window{host="h2.fedi.test"}')" = 1 ] || fail "h2 window not capped by its [host] section"
[ "$(val 'herald_host_window{host="h1.fedi.test"}')" -gt 1 ] || fail "h1 window"
pass "live metrics: 80 done, $req requests, latency/sign/commit histograms, h3 breaker open, [host] max_inflight caps h2 at 1"
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$T/m.txt" || fail "promtool"
    pass "promtool accepts the live output"
fi
"$HERALD" top --once --listen "unix:$SOCK" --token-file "$T/token" >"$T/top.txt" || fail "top"
grep -Eq '^h3\.fedi\.test +20 +[0-9]+ .* open +[0-9]+ 5xx +HTTP 500' "$T/top.txt" || { cat "$T/top.txt"; fail "top h3 row"; }
grep -Eq '^h1\.fedi\.test +0 ' "$T/top.txt" || { cat "$T/top.txt"; fail "top h1 row"; }
pass "herald top shows h3 with its backlog, open breaker and last error"
# without an endpoint: the store and the live records the engine publishes there
sleep 1.2 # live records are written once a second
"$HERALD" --db "$DB" top --once >"$T/top2.txt" || fail "top from the store"
grep -Eq '^h3\.fedi\.test +20 +[0-9]+ .* open +[0-9]+ 5xx +HTTP 500' "$T/top2.txt" || { cat "$T/top2.txt"; fail "store top h3 row"; }
grep -Eq '^h1\.fedi\.test +0 ' "$T/top2.txt" || { cat "$T/top2.txt"; fail "store top h1 row"; }
pass "herald top without an endpoint reads the store and the engine's live records"
n=$(grep -c 'circuit breaker open.*host=h3.fedi.test' "$T/run.log" || true)
[ "$n" = 1 ] || fail "breaker warnings for h3: $n"
pass "one rate-limited warning for the h3 breaker"
kill -TERM "$RUN"
wait "$RUN" || fail "herald run exit $?"
