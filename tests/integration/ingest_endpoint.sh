#!/usr/bin/env bash
# The ingest endpoint of `herald run --listen` over a unix socket and TCP: bearer auth (401),
# one envelope (202, durable seq), duplicate (200, original seq), JSON-lines batch with a
# refused line, backpressure (429 + Retry-After, nothing lost), follows add/remove, /metrics
# through promtool, /v1/hosts, SIGHUP reload (good file applies, bad file keeps the old
# settings) and SIGTERM drain (exit 0, socket removed).
source "$(dirname "$0")/lib/common.sh"
need curl; need jq
DB="$T/db"
setup_actor "$DB"
ACTOR=https://social.example/users/alice
SOCK="$T/ingest.sock"
PORT=$((20000 + RANDOM % 20000))
printf 'secret-token-%s\n' "$RANDOM$RANDOM" >"$T/token"
TOKEN=$(head -1 "$T/token")
cat >"$T/herald.ini" <<INI
[run]
retry_base = 1h
retry_cap = 2h
drain_timeout = 3s
[ingest]
max_queued = 5
retry_after = 7
[metrics]
top_hosts = 3
INI

# Inboxes on 127.0.0.1:1: nothing listens, so deliveries fail and wait an hour to retry,
# staying queued (which is what backpressure counts).
env() { # env ID [EXTRA_KEY]
    printf '{"activity":{"id":"https://social.example/a/%s","type":"Create","actor":"%s","object":{"content":"hi"}},"inboxes":["http://127.0.0.1:1/users/%s/inbox"]%s}' \
        "$1" "$ACTOR" "$1" "${2:-}"
}

# The TCP port is picked at random; if another process holds it, try another one.
for attempt in 1 2 3 4 5; do
    "$HERALD" --db "$DB" run --config "$T/herald.ini" --listen "unix:$SOCK" \
        --listen "127.0.0.1:$PORT" --token-file "$T/token" --allow-private-addresses \
        2>"$T/run.log" &
    RUN_PID=$!
    for _ in $(seq 100); do
        [ -S "$SOCK" ] && break
        kill -0 "$RUN_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -S "$SOCK" ] && break
    wait "$RUN_PID" 2>/dev/null || true
    grep -q "Address already in use" "$T/run.log" || break
    PORT=$((20000 + RANDOM % 20000))
done
PIDS+=("$RUN_PID")
[ -S "$SOCK" ] || { cat "$T/run.log"; fail "no socket"; }
TCP="http://127.0.0.1:$PORT"

U=(curl -sS --max-time 10 --unix-socket "$SOCK")

# --- auth
code=$("${U[@]}" -o /dev/null -w '%{http_code}' -X POST --data-binary "$(env 0)" http://h/v1/activities)
[ "$code" = 401 ] || fail "no token: $code"
code=$("${U[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer wrong" -X POST \
    --data-binary "$(env 0)" http://h/v1/activities)
[ "$code" = 401 ] || fail "wrong token: $code"
code=$("${U[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN}x" -X POST \
    --data-binary "$(env 0)" http://h/v1/activities)
[ "$code" = 401 ] || fail "token with a suffix: $code"
[ "$("${U[@]}" http://h/healthz)" = ok ] || fail "healthz"
# the token is checked before any body is read: headers announcing 1 MB, no body sent
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/activities HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n' >&3
first=$(timeout 5 head -1 <&3 | tr -d '\r') || true
exec 3<&-
[ "$first" = "HTTP/1.1 401 Unauthorized" ] || fail "no early 401: $first"
pass "401 without or with a wrong token"

AUTH=(-H "Authorization: Bearer $TOKEN")
# --- one envelope (application/json)
"${U[@]}" "${AUTH[@]}" -H 'Content-Type: application/json' -o "$T/r1.json" -w '%{http_code}' \
    --data-binary "$(env 1)" http://h/v1/activities >"$T/c1"
[ "$(cat "$T/c1")" = 202 ] || { cat "$T/r1.json"; fail "single: $(cat "$T/c1")"; }
SEQ1=$(jq -r '.results[0].seq' "$T/r1.json")
[ "$(jq -r '.results[0].ok' "$T/r1.json")" = true ] || fail "single not ok"
# durable: a separate process sees it in the store right away
[ "$("$HERALD" --db "$DB" stats --json | jq .activities)" = 1 ] || fail "not in the store"
pass "single envelope 202 seq=$SEQ1, in the store"

# --- duplicate: 200 with the original seq (over TCP this time)
curl -sS --max-time 10 "${AUTH[@]}" -H 'Content-Type: application/json' -o "$T/r2.json" \
    -w '%{http_code}' --data-binary "$(env 1)" "$TCP/v1/activities" >"$T/c2"
[ "$(cat "$T/c2")" = 200 ] || { cat "$T/r2.json"; fail "duplicate: $(cat "$T/c2")"; }
[ "$(jq -r '.results[0].duplicate' "$T/r2.json")" = true ] || fail "not marked duplicate"
[ "$(jq -r '.results[0].seq' "$T/r2.json")" = "$SEQ1" ] || fail "duplicate seq differs"
pass "duplicate 200 with the original seq over TCP"

# --- batch: JSON lines, one refused (unknown envelope key)
{ env 2; echo; env 3 ',"inboxs":[]'; echo; echo; env 4; echo; } >"$T/batch.jsonl"
curl -sS --max-time 10 "${AUTH[@]}" -H 'Content-Type: application/x-ndjson' -o "$T/r3.json" \
    -w '%{http_code}' --data-binary "@$T/batch.jsonl" "$TCP/v1/activities" >"$T/c3"
[ "$(cat "$T/c3")" = 202 ] || { cat "$T/r3.json"; fail "batch: $(cat "$T/c3")"; }
[ "$(jq .accepted "$T/r3.json")" = 2 ] || fail "batch accepted $(jq -c . "$T/r3.json")"
[ "$(jq .refused "$T/r3.json")" = 1 ] || fail "batch refused"
[ "$(jq -r '.results[1].line' "$T/r3.json")" = 2 ] || fail "line numbers"
[ "$(jq -r '.results[2].line' "$T/r3.json")" = 4 ] || fail "blank lines keep numbering"
pass "batch: 2 accepted, line 2 refused, line numbers kept"

# --- backpressure: 3 queued; 2 more reach the bound of 5; the next one gets 429
{ env 5; echo; env 6; } | "${U[@]}" "${AUTH[@]}" -o /dev/null -w '%{http_code}' \
    --data-binary @- http://h/v1/activities >"$T/c4"
[ "$(cat "$T/c4")" = 202 ] || fail "fill to the bound: $(cat "$T/c4")"
sleep 0.3 # the endpoint reuses its queue depth for 250 ms
"${U[@]}" "${AUTH[@]}" -D "$T/h5" -o "$T/r5.json" -w '%{http_code}' \
    --data-binary "$(env 7)" http://h/v1/activities >"$T/c5"
[ "$(cat "$T/c5")" = 429 ] || { cat "$T/r5.json"; fail "over the bound: $(cat "$T/c5")"; }
grep -qi '^Retry-After: 7' "$T/h5" || fail "no Retry-After: $(cat "$T/h5")"
[ "$("$HERALD" --db "$DB" stats --json | jq .activities)" = 5 ] || fail "activities != 5"
pass "429 with Retry-After over the bound; the refused activity was not stored, none lost"

# --- follows
printf '{"actor":"%s","follower":"https://m.example/users/bob","inbox":"https://m.example/users/bob/inbox","shared_inbox":"https://m.example/inbox"}\n' "$ACTOR" >"$T/f.jsonl"
"${U[@]}" "${AUTH[@]}" -o "$T/f1.json" -w '%{http_code}' --data-binary "@$T/f.jsonl" \
    http://h/v1/follows >"$T/cf1"
[ "$(cat "$T/cf1")" = 200 ] && [ "$(jq .added "$T/f1.json")" = 1 ] || fail "follow add: $(cat "$T/f1.json")"
printf '{"actor":"%s","follower":"https://m.example/users/bob"}\n' "$ACTOR" >"$T/u.jsonl"
"${U[@]}" "${AUTH[@]}" -X DELETE -o "$T/f2.json" -w '%{http_code}' --data-binary "@$T/u.jsonl" \
    http://h/v1/follows >"$T/cf2"
[ "$(cat "$T/cf2")" = 200 ] && [ "$(jq .removed "$T/f2.json")" = 1 ] || fail "follow remove: $(cat "$T/f2.json")"
code=$("${U[@]}" "${AUTH[@]}" -o /dev/null -w '%{http_code}' --data-binary '{"actor":"x"}' http://h/v1/follows)
[ "$code" = 400 ] || fail "bad follow: $code"
pass "follows add and remove"

# --- metrics (no token needed) and hosts view (token needed)
"${U[@]}" -o "$T/metrics.txt" -w '%{http_code}' http://h/metrics >"$T/cm"
[ "$(cat "$T/cm")" = 200 ] || fail "metrics: $(cat "$T/cm")"
grep -q '^herald_ingest_total{result="accepted"} 5$' "$T/metrics.txt" || fail "ingest counter"
grep -q '^herald_ingest_throttled_total 1$' "$T/metrics.txt" || fail "throttled counter"
grep -q '^herald_queue_deliveries' "$T/metrics.txt" || fail "queue depth"
grep -q '^herald_host_backlog{host="127.0.0.1"} 5$' "$T/metrics.txt" || fail "host backlog"
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$T/metrics.txt" || fail "promtool check metrics"
    pass "metrics pass promtool"
else
    echo "note: promtool not installed; format not checked" >&2
fi
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$TCP/v1/hosts")
[ "$code" = 401 ] || fail "/v1/hosts without the token: $code"
curl -sS --max-time 10 "${AUTH[@]}" "$TCP/v1/hosts" | jq -e '.hosts[0].host == "127.0.0.1"' >/dev/null ||
    fail "hosts view"
pass "/metrics, and /v1/hosts only with the token"

# --- reload: a bad file keeps the old settings; a good one applies
printf '[ingest]\nmax_queued = lots\n' >"$T/herald.ini"
kill -HUP "$RUN_PID"
for _ in $(seq 50); do grep -q 'reload failed' "$T/run.log" && break; sleep 0.1; done
grep -q 'reload failed; keeping the old settings.*herald.ini:2: bad value for max_queued' "$T/run.log" ||
    { tail -5 "$T/run.log"; fail "bad reload not reported"; }
code=$("${U[@]}" "${AUTH[@]}" -o /dev/null -w '%{http_code}' --data-binary "$(env 8)" http://h/v1/activities)
[ "$code" = 429 ] || fail "old bound not kept: $code"
printf '[run]\ndrain_timeout = 3s\n[ingest]\nmax_queued = 100\n' >"$T/herald.ini"
kill -HUP "$RUN_PID"
for _ in $(seq 50); do grep -q 'msg="reloaded' "$T/run.log" && break; sleep 0.1; done
grep -q 'msg="reloaded' "$T/run.log" || fail "good reload not logged"
code=$("${U[@]}" "${AUTH[@]}" -o /dev/null -w '%{http_code}' --data-binary "$(env 8)" http://h/v1/activities)
[ "$code" = 202 ] || fail "new bound not applied: $code"
"${U[@]}" http://h/metrics >"$T/metrics2.txt"
grep -q '^herald_config_reloads_total{result="error"} 1$' "$T/metrics2.txt" || fail "reload error counter"
pass "SIGHUP: bad file kept the old settings and said why; good file applied"

# --- herald top, one plain frame
rc=0; "$HERALD" top --once --listen "unix:$SOCK" >"$T/top.txt" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "answered 401: the endpoint needs its token" "$T/top.txt" ||
    fail "top without the token: exit $rc: $(cat "$T/top.txt")"
"$HERALD" top --once --listen "unix:$SOCK" --token-file "$T/token" >"$T/top.txt" || fail "top failed"
grep -qF "$TOKEN" "$T/top.txt" && fail "top printed the token"
grep -Eq '^HOST +BACKLOG' "$T/top.txt" || fail "top header: $(cat "$T/top.txt")"
grep -Eq '^127.0.0.1 +6 ' "$T/top.txt" || fail "top row: $(cat "$T/top.txt")"
"$HERALD" top --once --listen "127.0.0.1:$PORT" --token-file "$T/token" --sort host >/dev/null || fail "top over TCP"
pass "herald top --once shows the host with its backlog"

# --- h2c (prior knowledge) on the same sockets. One URL per curl run: curl 7.88 cannot reuse
# a prior-knowledge connection (curl#10634, fixed in 8.0); h2load covers reuse and multiplexing.
H2=(curl -sS --max-time 10 --http2-prior-knowledge)
code=$("${H2[@]}" --unix-socket "$SOCK" -o /dev/null -w '%{http_code} %{http_version}' \
    --data-binary "$(env 9)" http://h/v1/activities)
[ "$code" = "401 2" ] || fail "h2c without token: $code"
"${H2[@]}" --unix-socket "$SOCK" "${AUTH[@]}" -H 'Content-Type: application/json' -o "$T/r9.json" \
    -w '%{http_code} %{http_version}' --data-binary "$(env 9)" http://h/v1/activities >"$T/c9"
[ "$(cat "$T/c9")" = "202 2" ] || { cat "$T/r9.json"; fail "h2c single: $(cat "$T/c9")"; }
"${H2[@]}" "${AUTH[@]}" -o "$T/r10.json" -w '%{http_code}' --data-binary "$(env 9)" \
    "$TCP/v1/activities" >"$T/c10"
[ "$(cat "$T/c10")" = 200 ] && [ "$(jq -r '.results[0].duplicate' "$T/r10.json")" = true ] ||
    fail "h2c duplicate: $(cat "$T/c10") $(cat "$T/r10.json")"
"${H2[@]}" -o "$T/metrics3.txt" "$TCP/metrics" || fail "h2c metrics"
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$T/metrics3.txt" || fail "promtool on h2c metrics"
fi
if command -v h2load >/dev/null 2>&1; then
    h2load -n 200 -c 2 -m 10 "$TCP/healthz" >"$T/h2load.txt" 2>&1 || fail "h2load"
    grep -q '200 succeeded' "$T/h2load.txt" || fail "h2load: $(grep requests: "$T/h2load.txt")"
fi
pass "h2c: 401, 202, duplicate 200, metrics; 200 multiplexed requests over 2 connections"

# --- drain: SIGTERM exits 0, endpoint gone
kill -TERM "$RUN_PID"
rc=0
for _ in $(seq 100); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
wait "$RUN_PID" || rc=$?
[ "$rc" = 0 ] || { tail -5 "$T/run.log"; fail "exit status $rc after SIGTERM"; }
[ ! -e "$SOCK" ] || fail "socket file left behind"
[ "$("$HERALD" --db "$DB" stats --json | jq .activities)" = 7 ] || fail "activities after restart"
pass "SIGTERM: drained, exit 0, socket removed; every accepted activity is in the store"
