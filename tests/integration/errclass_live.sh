#!/usr/bin/env bash
# Failures per host by class over 5 minutes and 1 hour: a run against fedisim where
# h1.fedi.test answers 404, h2 429 and h3 500, h4's port is closed (connect) and nx.invalid
# has no address (DNS; no --resolve entry, so the system resolver answers or times out).
# Checks `host show` (text and --json), /v1/hosts, /metrics, `top --once` from the endpoint
# and from the store, and one rate-limited warn line per failing host.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl; need python3
[ -x "$FEDISIM" ] || { echo "SKIP: fedisim not built" >&2; exit 77; }
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'INI'
[h1.fedi.test]
error_404 = 1.0
[h2.fedi.test]
error_429 = 1.0
[h3.fedi.test]
error_500 = 1.0
INI
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --profiles "$T/profiles.ini"
CLOSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for a in 1 2 3 4; do
    printf '{"activity":{"@context":"https://www.w3.org/ns/activitystreams","id":"https://social.example/act/e%d","type":"Create","actor":"https://social.example/users/alice","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/e%d","type":"Note","content":"hi"}},"inboxes":["https://h1.fedi.test:%d/users/u%d/inbox","https://h2.fedi.test:%d/users/u%d/inbox","https://h3.fedi.test:%d/users/u%d/inbox","https://h4.fedi.test:%d/users/u%d/inbox","https://nx.invalid/users/u%d/inbox"]}\n' \
        "$a" "$a" "$TLS_PORT" "$a" "$TLS_PORT" "$a" "$TLS_PORT" "$a" "$CLOSED" "$a" "$a"
done >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
echo "token-$RANDOM$RANDOM" >"$T/token"
SOCK="$T/ingest.sock"
"$HERALD" --db "$DB" run --listen "unix:$SOCK" --token-file "$T/token" \
    --resolve "h1.fedi.test:$TLS_PORT:127.0.0.1" --resolve "h2.fedi.test:$TLS_PORT:127.0.0.1" \
    --resolve "h3.fedi.test:$TLS_PORT:127.0.0.1" --resolve "h4.fedi.test:$CLOSED:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses --retry-base 3600000 \
    2>"$T/run.log" &
RUN=$!
PIDS+=("$RUN")
H() { curl -sS --max-time 5 --unix-socket "$SOCK" -H "Authorization: Bearer $(cat "$T/token")" \
    http://h/v1/hosts >"$T/hosts.json" 2>/dev/null; }
cnt() { jq -r --arg h "$1" --arg c "$2" --arg w "${3:-5m}" \
    '[.hosts[] | select(.host == $h) | .errors[$w].by_class[$c].count // 0] | add // 0' "$T/hosts.json"; }
ok=0
for _ in $(seq 150); do
    if H && [ "$(cnt h1.fedi.test 404)" -ge 1 ] && [ "$(cnt h2.fedi.test 429)" -ge 1 ] &&
        [ "$(cnt h3.fedi.test 5xx)" -ge 2 ] && [ "$(cnt h4.fedi.test connect)" -ge 1 ] &&
        [ "$(cnt nx.invalid dns)" -ge 1 ]; then
        ok=1
        break
    fi
    sleep 0.1
done
[ "$ok" = 1 ] || { jq -c '.hosts[] | {host, errors}' "$T/hosts.json"; tail -20 "$T/run.log"; fail "/v1/hosts errors by class"; }
[ "$(cnt h3.fedi.test 5xx 1h)" -ge 2 ] || fail "1h window"
r=$(jq -r '.hosts[] | select(.host == "h3.fedi.test") | .errors["5m"].per_s' "$T/hosts.json")
awk -v r="$r" 'BEGIN {exit !(r > 0 && r < 1)}' || fail "h3 rate $r"
[ "$(jq -r '.hosts[] | select(.host == "h3.fedi.test") | .errors["5m"].by_class["404"] // "none"' "$T/hosts.json")" = none ] ||
    fail "h3 has a 404 class"
pass "/v1/hosts: 404, 429, 5xx, connect and dns counted per host over 5 min and 1 h, with rates"

curl -sS --max-time 5 --unix-socket "$SOCK" http://h/metrics >"$T/m.txt"
val() { awk -v k="$1" '$1 == k {print $2}' "$T/m.txt"; }
[ "$(val 'herald_host_errors{host="h3.fedi.test",class="5xx",window="5m"}')" -ge 2 ] || fail "metrics h3 5xx"
[ "$(val 'herald_host_errors{host="nx.invalid",class="dns",window="1h"}')" -ge 1 ] || fail "metrics nx dns"
[ "$(val 'herald_host_errors{host="h4.fedi.test",class="connect",window="5m"}')" -ge 1 ] || fail "metrics h4 connect"
[ -n "$(val 'herald_host_error_rate{host="h1.fedi.test",class="404",window="5m"}')" ] || fail "metrics h1 rate"
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$T/m.txt" || fail "promtool"
fi
pass "/metrics: herald_host_errors and herald_host_error_rate by host, class and window"

sleep 1.3 # the live report (with the failures) reaches the store within a second
"$HERALD" --db "$DB" host show h3.fedi.test >"$T/show.txt" || fail "host show"
grep -Eq '^errors 5 min: +5xx [0-9]+ \([0-9.]+/s\)' "$T/show.txt" || { cat "$T/show.txt"; fail "host show 5 min"; }
grep -Eq '^errors 1 h: +5xx [0-9]+ ' "$T/show.txt" || { cat "$T/show.txt"; fail "host show 1 h"; }
"$HERALD" --db "$DB" host show nx.invalid --json >"$T/show.json" || fail "host show --json"
[ "$(jq -r '.errors["5m"].by_class.dns.count' "$T/show.json")" -ge 1 ] || { cat "$T/show.json"; fail "host show --json dns"; }
pass "host show: failures by class with rates over 5 min and 1 h (text and JSON)"

"$HERALD" top --once --listen "unix:$SOCK" --token-file "$T/token" >"$T/top.txt" || fail "top"
grep -Eq '^h4\.fedi\.test .* [0-9]+ connect ' "$T/top.txt" || { cat "$T/top.txt"; fail "top h4 errors"; }
"$HERALD" --db "$DB" top --once >"$T/top2.txt" || fail "top from the store"
grep -Eq '^h1\.fedi\.test .* [0-9]+ 404 ' "$T/top2.txt" || { cat "$T/top2.txt"; fail "store top h1 errors"; }
pass "top: failures over 5 min with their largest class, from the endpoint and from the store"

for h in h1.fedi.test h3.fedi.test h4.fedi.test nx.invalid; do
    n=$(grep -Ec "level=warn .*msg=\"delivery failed\".*host=$h( |$)" "$T/run.log" || true)
    [ "$n" = 1 ] || { grep 'delivery failed' "$T/run.log"; fail "warn lines for $h: $n"; }
done
grep -Eq 'msg="delivery failed" class=dns .*host=nx.invalid( |$)' "$T/run.log" || fail "dns warn line"
pass "one warn line per failing host (rate-limited), with its class"
kill -TERM "$RUN"
wait "$RUN" || fail "herald run exit $?"
