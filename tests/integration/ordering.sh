#!/usr/bin/env bash
# Ordering on a host: a Delete (or Update/Undo) never overtakes the delivery of its object's
# Create. order.fedi.test answers every request 503, so the Create keeps being retried: the
# Delete to that host must never be sent (it stays pending with no attempt), while on a
# healthy host both go, Create first. The Delete is enqueued after the Create's first attempt:
# a 503 may have been acted on, so the pair is not cancelled (cancel.sh: a Create that never
# reached the host is cancelled with its Delete instead).
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[order.fedi.test]
error_503 = 1
retry_after = 0
[*]
latency = fixed 1
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
A=https://social.example/users/alice
cat >"$T/c.jsonl" <<J
{"activity":{"id":"https://social.example/c1","type":"Create","actor":"$A","object":{"id":"https://social.example/n1","type":"Note","to":"as:Public"}},"inboxes":["https://order.fedi.test:$TLS_PORT/inbox","https://ok.fedi.test:$TLS_PORT/inbox"]}
J
cat >"$T/d.jsonl" <<J
{"activity":{"id":"https://social.example/d1","type":"Delete","actor":"$A","object":"https://social.example/n1"},"inboxes":["https://order.fedi.test:$TLS_PORT/inbox","https://ok.fedi.test:$TLS_PORT/inbox"]}
J
run() {
    timeout -s TERM "$1" "$HERALD" --db "$DB" run --resolve "*:$TLS_PORT:127.0.0.1" \
        --ca-file "$T/certs/ca.pem" --allow-private-addresses --retry-base 300 --retry-cap 300 \
        --max-attempts 1000 --breaker-threshold 1000 2>>"$T/run.log" || true
}
"$HERALD" --db "$DB" enqueue "$T/c.jsonl" >"$T/enq.out" || { cat "$T/enq.out"; fail "enqueue"; }
run 2
"$HERALD" --db "$DB" enqueue "$T/d.jsonl" >>"$T/enq.out" || { cat "$T/enq.out"; fail "enqueue"; }
run 3
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
h=$(jq -c '.hosts[] | select(.host == "order.fedi.test")' "$T/stats.json")
echo "order host: $h; receiver saw $(jq '.per_host["order.fedi.test"].requests' "$R") requests"
[ "$(echo "$h" | jq .queued)" = 2 ] || fail "both deliveries must still be queued"
[ "$(echo "$h" | jq .retrying)" = 1 ] || fail "only the Create may have been attempted"
# every request the failing host received was a Create attempt
[ "$(jq '.per_host["order.fedi.test"].requests' "$R")" = "$(echo "$h" | jq .failures)" ] ||
    fail "the failing host received more requests than Create attempts: a Delete overtook"
[ "$(jq '.per_host["ok.fedi.test"].accepted' "$R")" = 2 ] || fail "healthy host did not get both"
pass "a Delete waits for its Create on the same host; healthy hosts get both"
