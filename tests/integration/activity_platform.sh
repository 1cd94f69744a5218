#!/usr/bin/env bash
# The platform's calls on one activity, through the herald binary and its endpoint:
#   1. A held Create ("not_before", epoch ms) is not sent while held, survives a restart,
#      is counted held by `stats` and `activity show`; cancelled during the hold, nothing of it
#      is ever sent, and the edited Create under the same id (RFC 3339 not_before) is accepted
#      and delivered once its hold ends, not before.
#   2. A Delete during the hold cancels the held Create and itself: nothing reaches the host.
#   3. `activity show` counts done and the failing host with its last error; the takedown of
#      a delivered activity reports it delivered.
#   4. "to_known_hosts": every host that took a delivery gets one (priority low), a blocked
#      one none.
#   5. GET /v1/activities/{id} (percent-encoded id) and POST /v1/activities/{id}/cancel.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[bad.fedi.test]
error_400 = 1
[*]
latency = fixed 1
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
A=https://social.example/users/alice
P=$TLS_PORT
RUN=(--resolve "*:$P:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses)
env_of() { # id type object not_before(json or "") hosts...
    local id=$1 type=$2 obj=$3 nb=$4 o inb="" h
    shift 4
    if [ "$type" = Delete ]; then o="\"$obj\""
    else o="{\"id\":\"$obj\",\"type\":\"Note\",\"content\":\"$id\",\"to\":\"as:Public\"}"; fi
    for h in "$@"; do inb="$inb,\"https://$h:$P/inbox\""; done
    printf '{"activity":{"id":"https://social.example/%s","type":"%s","actor":"%s","object":%s},"inboxes":[%s]%s}\n' \
        "$id" "$type" "$A" "$o" "${inb#,}" "${nb:+,\"not_before\":$nb}"
}
enq() { "$HERALD" --db "$DB" enqueue - >"$T/enq.out" 2>&1 || { cat "$T/enq.out"; fail "enqueue"; }; }
run_idle() { timeout -s TERM 60 "$HERALD" --db "$DB" run --until-idle "${RUN[@]}" 2>>"$T/run.log" ||
    fail "run failed: $(tail -3 "$T/run.log")"; }
show() { "$HERALD" --db "$DB" activity show "$1" --json; }
report() { rm -f "$T/fedisim.report.json"; kill -USR1 "$FS_PID"; wait_file "$T/fedisim.report.json" 50; }
req() { jq --arg h "$1" '.per_host[$h].requests // 0' "$T/fedisim.report.json"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# --- 1. hold, restart, cancel during the hold, the edited Create after it
env_of post/1 Create https://social.example/n/1 $(($(now_ms) + 600000)) h1.fedi.test h2.fedi.test | enq
env_of post/2 Create https://social.example/n/2 "" h3.fedi.test | enq
"$HERALD" --db "$DB" stats --json >"$T/s.json"
[ "$(jq .deliveries.held "$T/s.json")" = 2 ] || fail "stats held: $(cat "$T/s.json")"
[ "$(jq .deliveries.pending "$T/s.json")" = 1 ] || fail "stats pending: $(cat "$T/s.json")"
show https://social.example/post/1 | jq -e '.counts.held == 2 and .counts.pending == 0' >/dev/null ||
    fail "show held: $(show https://social.example/post/1)"
run_idle
run_idle # a restart: still held
report
[ "$(req h3.fedi.test)" = 1 ] || fail "h3 got $(req h3.fedi.test)"
[ "$(req h1.fedi.test)" = 0 ] && [ "$(req h2.fedi.test)" = 0 ] || fail "sent during the hold"
show 1 | jq -e '.counts.held == 2 and .not_before_ms > 0 and .priority == "normal"' >/dev/null ||
    fail "held after restart: $(show 1)"
"$HERALD" --db "$DB" activity cancel https://social.example/post/1 >"$T/c.json" || fail "cancel"
jq -e '.cancelled == 2 and .delivered == 0 and .in_flight == 0' "$T/c.json" >/dev/null ||
    fail "cancel answer: $(cat "$T/c.json")"
NB=$(date -u -d "@$(($(date +%s) + 2))" +%Y-%m-%dT%H:%M:%SZ)
env_of post/1 Create https://social.example/n/1 "\"$NB\"" h1.fedi.test | enq
grep -q '"ok":true' "$T/enq.out" || fail "the edited Create was refused: $(cat "$T/enq.out")"
NEWSEQ=$(jq .seq "$T/enq.out")
run_idle
report
[ "$(req h1.fedi.test)" = 1 ] && [ "$(req h2.fedi.test)" = 0 ] ||
    fail "after the hold: h1 $(req h1.fedi.test) h2 $(req h2.fedi.test)"
show https://social.example/post/1 >"$T/show1.json"
jq -e --argjson s "$NEWSEQ" '.seq == $s and .counts.done == 1 and .counts.held == 0 and
    .first_delivery_ms >= .not_before_ms' "$T/show1.json" >/dev/null ||
    fail "edited Create: $(cat "$T/show1.json")"
pass "held deliveries wait (across a restart), a cancel during the hold sends nothing, the edited Create goes after its hold"

# --- 2. a Delete during the hold
env_of post/9 Create https://social.example/n/9 $(($(now_ms) + 600000)) h4.fedi.test | enq
env_of del/9 Delete https://social.example/n/9 "" h4.fedi.test | enq
run_idle
report
[ "$(req h4.fedi.test)" = 0 ] || fail "h4 got $(req h4.fedi.test) during the hold"
show https://social.example/post/9 | jq -e '.counts.cancelled == 1 and .counts.held == 0' \
    >/dev/null || fail "Create after its Delete: $(show https://social.example/post/9)"
pass "a Delete during the hold: neither goes"

# --- 3. status with a failing host, takedown after delivery
env_of post/3 Create https://social.example/n/3 "" h1.fedi.test bad.fedi.test | enq
run_idle
show https://social.example/post/3 >"$T/show3.json"
jq -e '.counts.done == 1 and .counts.failed == 1 and (.failing_hosts | length) == 1 and
    .failing_hosts[0].host == "bad.fedi.test" and .failing_hosts[0].status == 400 and
    .last_delivery_ms >= .first_delivery_ms' "$T/show3.json" >/dev/null ||
    fail "status: $(cat "$T/show3.json")"
"$HERALD" --db "$DB" activity cancel https://social.example/post/3 | jq -e '.delivered == 1 and
    .cancelled == 0' >/dev/null || fail "takedown after delivery"
"$HERALD" --db "$DB" activity show https://social.example/none 2>/dev/null && fail "unknown id shown"
pass "status counts and failing hosts; takedown reports what was delivered"

# --- 4. to_known_hosts: h1 h3 took deliveries (h4 and bad never did); h3 is blocked
"$HERALD" --db "$DB" block add h3.fedi.test --severity suspend >/dev/null
printf '{"activity":{"id":"https://social.example/acct-delete","type":"Delete","actor":"%s","object":"%s"},"to_known_hosts":true}\n' \
    "$A" "$A" | enq
jq -e '.ok and .deliveries == 1' "$T/enq.out" >/dev/null || fail "to_known_hosts: $(cat "$T/enq.out")"
show https://social.example/acct-delete | jq -e '.priority == "low" and .counts.dropped == 1' \
    >/dev/null || fail "account Delete: $(show https://social.example/acct-delete)"
run_idle
report
[ "$(req h1.fedi.test)" = 3 ] || fail "h1 did not get the account Delete: $(req h1.fedi.test)"
pass "to_known_hosts reaches the hosts that know us, low priority, blocked ones skipped"

# --- 5. the endpoint
printf 'tok-%s\n' "$RANDOM$RANDOM" >"$T/token"
TOKEN=$(head -1 "$T/token")
SOCK="$T/herald.sock"
env_of post/5 Create https://social.example/n/5 $(($(now_ms) + 600000)) h1.fedi.test | enq
"$HERALD" --db "$DB" run --listen "unix:$SOCK" --token-file "$T/token" "${RUN[@]}" \
    2>>"$T/run.log" &
RUN_PID=$!
PIDS+=("$RUN_PID")
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "no endpoint socket"
U=(curl -sS --max-time 10 --unix-socket "$SOCK" -H "Authorization: Bearer $TOKEN")
ENC=$(jq -rn '"https://social.example/post/5" | @uri')
"${U[@]}" "http://h/v1/activities/$ENC" | jq -e '.counts.held == 1' >/dev/null ||
    fail "GET status: $("${U[@]}" "http://h/v1/activities/$ENC")"
code=$(curl -sS --max-time 10 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' \
    "http://h/v1/activities/$ENC")
[ "$code" = 401 ] || fail "no token: $code"
code=$("${U[@]}" -o /dev/null -w '%{http_code}' -X POST "http://h/v1/activities/999999/cancel")
[ "$code" = 404 ] || fail "unknown id: $code"
"${U[@]}" -X POST "http://h/v1/activities/$ENC/cancel" | jq -e '.cancelled == 1' >/dev/null ||
    fail "POST cancel"
"${U[@]}" "http://h/v1/activities/$ENC" | jq -e '.cancelled == true and .counts.cancelled == 1' \
    >/dev/null || fail "status after cancel"
kill -TERM "$RUN_PID"
wait "$RUN_PID" || fail "run exit $?"
pass "GET /v1/activities/{id} and POST /v1/activities/{id}/cancel"
