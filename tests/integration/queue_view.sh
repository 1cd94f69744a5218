#!/usr/bin/env bash
# `herald queue list|flush|shape`, like postqueue -p, postqueue -f and qshape. A first run
# sends to hosts that refuse connections (127.0.0.2, where nothing listens), so every delivery
# waits for a retry an hour away with its last error. The list shows each delivery (inbox,
# state, attempts, next due, last error), filters by host, activity and state, and pages
# with a cursor that covers every delivery exactly once; the shape counts by host and age.
# Then a running engine pointed at fedisim sends nothing for an hour... until `queue flush`:
# the engine sees it within a second or two and delivers everything.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
H() { "$HERALD" --db "$DB" "$@"; }
setup_actor "$DB"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
A=https://social.example/users/alice
NACT=4
for a in $(seq $NACT); do
    printf '{"activity":{"id":"https://social.example/act/q%d","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/q%d","type":"Note"}},"inboxes":["https://h1.fedi.test:%d/users/u%d/inbox","https://h2.fedi.test:%d/inbox","https://h3.fedi.test:%d/inbox"]}\n' \
        "$a" "$A" "$a" "$TLS_PORT" "$a" "$TLS_PORT" "$TLS_PORT"
done >"$T/env.jsonl"
H enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
TOTAL=$((NACT * 3))

# Before any run: everything pending and due now.
H queue list --json >"$T/l0.json" || fail "queue list"
[ "$(jq '.deliveries | length' "$T/l0.json")" = $TOTAL ] || fail "list: $(cat "$T/l0.json")"
[ "$(jq '[.deliveries[] | select(.state == "pending" and .attempts == 0)] | length' "$T/l0.json")" = $TOTAL ] ||
    fail "not all pending"
[ "$(jq .next "$T/l0.json")" = null ] || fail "a next cursor with nothing more"

# A run where every host refuses connections: all retrying, next due in about an hour.
timeout 60 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.2" \
    --allow-private-addresses --ca-file "$T/certs/ca.pem" --retry-base 1h --retry-cap 1h \
    --breaker-threshold 1000 2>"$T/run1.log" || { tail -5 "$T/run1.log"; fail "run 1"; }
now=$(date +%s%3N)
H queue list --json >"$T/l1.json" || fail "queue list after run 1"
jq -e --argjson now "$now" --argjson n $TOTAL '.deliveries | length == $n and
    all(.[]; .state == "retrying" and .attempts == 1 and .next_due_ms > $now + 2800000
        and .next_due_ms < $now + 4400000 and .enqueued_ms <= $now and (.last_error | length) > 0
        and (.inbox | startswith("https://")) and (.activity_id | startswith("https://social.example/act/q")))' \
    "$T/l1.json" >/dev/null || fail "retrying entries (now $now): $(jq -c --argjson now "$now" '[.deliveries[] | select(.state != "retrying" or .attempts != 1 or .next_due_ms <= $now + 2800000 or .next_due_ms >= $now + 4400000 or .enqueued_ms > $now or (.last_error | length) == 0)]' "$T/l1.json")"
H queue list >"$T/l1.txt" || fail "queue list text"
grep -q '^host ' "$T/l1.txt" || fail "no header"
[ "$(grep -c 'fedi.test' "$T/l1.txt")" = $TOTAL ] || fail "text rows: $(cat "$T/l1.txt")"
grep -Eq 'retrying +1 in ([45][0-9]m[0-9]{2}s|1h[0-9]{2}m)' "$T/l1.txt" || fail "no readable next due: $(sed -n 2p "$T/l1.txt")"
grep -Eq '20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z' "$T/l1.txt" || fail "no ISO 8601 time"
grep -Eq '\[0 [^]]+\]' "$T/l1.txt" || fail "no last error in the text view"
grep -Eq '1[0-9]{12}' "$T/l1.txt" && fail "epoch milliseconds in the text view"
pass "queue list: inbox, state, attempts, next due (readable, ms in JSON) and last error"

# Filters.
[ "$(H queue list --json --host h2.fedi.test | jq '[.deliveries[] | select(.host == "h2.fedi.test")] | length')" = $NACT ] ||
    fail "--host"
[ "$(H queue list --json --host h9.fedi.test | jq '.deliveries | length')" = 0 ] || fail "--host none"
[ "$(H queue list --json --activity https://social.example/act/q2 | jq '[.deliveries[] | select(.activity_id == "https://social.example/act/q2")] | length')" = 3 ] ||
    fail "--activity ID"
seq2=$(jq '[.deliveries[] | select(.activity_id == "https://social.example/act/q2")][0].activity_seq' "$T/l1.json")
[ "$(H queue list --json --activity "$seq2" | jq '.deliveries | length')" = 3 ] || fail "--activity SEQ"
[ "$(H queue list --json --state pending | jq '.deliveries | length')" = 0 ] || fail "--state pending"
[ "$(H queue list --json --state waiting | jq '.deliveries | length')" = $TOTAL ] || fail "--state waiting"
rc=0; H queue list --activity https://social.example/act/none 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'no activity' "$T/err" || fail "unknown activity: $rc $(cat "$T/err")"
rc=0; H queue list --state stuck 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--state: stuck' "$T/err" || fail "bad --state: $rc"
rc=0; H queue list --after zz 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--after' "$T/err" || fail "bad cursor: $rc"
pass "queue list --host, --activity (id or seq), --state"

# Paging: pages of 5 cover every delivery once, in order.
: >"$T/pages.txt"
cursor=""
pages=0
while :; do
    if [ -n "$cursor" ]; then H queue list --json --limit 5 --after "$cursor" >"$T/p.json"
    else H queue list --json --limit 5 >"$T/p.json"; fi
    jq -r '.deliveries[] | "\(.host) \(.activity_seq) \(.index)"' "$T/p.json" >>"$T/pages.txt"
    pages=$((pages + 1))
    cursor=$(jq -r '.next // empty' "$T/p.json")
    [ -z "$cursor" ] && break
    [ $pages -lt 10 ] || fail "paging does not end"
done
[ $pages = 3 ] || fail "want 3 pages of 5 for $TOTAL, got $pages"
jq -r '.deliveries[] | "\(.host) \(.activity_seq) \(.index)"' "$T/l1.json" >"$T/all.txt"
cmp -s "$T/pages.txt" "$T/all.txt" || fail "pages differ from the whole list"
H queue list --limit 5 | tail -1 | grep -q '^more: herald queue list --after [0-9a-f]*$' ||
    fail "text view gives no next page"
pass "queue list pages with --limit and --after: every delivery once, in order"

# Shape.
H queue shape --json >"$T/shape.json" || fail "queue shape"
jq -e --argjson n $TOTAL --argjson a $NACT '.total.total == $n and .total.counts[0] == $n and
    .host_count == 3 and (.hosts | length) == 3 and all(.hosts[]; .total == $a and .counts[0] == $a)
    and (.bucket_upper_minutes | length) == 9' "$T/shape.json" >/dev/null ||
    fail "shape: $(cat "$T/shape.json")"
H queue shape >"$T/shape.txt"
grep -Eq "^TOTAL +$TOTAL +$TOTAL " "$T/shape.txt" || fail "shape text: $(cat "$T/shape.txt")"
[ "$(H queue shape --limit 1 | grep -c 'fedi.test')" = 1 ] || fail "shape --limit"
pass "queue shape: counts by host and age bucket"

# A running engine, now pointed at fedisim, waits for the retry times... until a flush.
"$HERALD" --db "$DB" run --resolve "*:$TLS_PORT:127.0.0.1" --allow-private-addresses \
    --ca-file "$T/certs/ca.pem" --retry-base 1h --retry-cap 1h 2>"$T/run2.log" &
RUN_PID=$!
PIDS+=("$RUN_PID")
sleep 2
[ "$(H stats --json | jq .deliveries.done)" = 0 ] || fail "delivered before the retry time"
H queue flush --host h1.fedi.test >"$T/flush.out" || fail "flush --host"
grep -q "^$NACT deliveries waiting for a retry are due now on h1.fedi.test" "$T/flush.out" ||
    fail "flush output: $(cat "$T/flush.out")"
for _ in $(seq 100); do
    [ "$(H stats --json | jq .deliveries.done)" = $NACT ] && break
    sleep 0.1
done
[ "$(H stats --json | jq .deliveries.done)" = $NACT ] ||
    fail "the running engine did not send the flushed host's deliveries: $(H stats --json | jq -c .deliveries)"
[ "$(H queue list --json --host h2.fedi.test | jq '.deliveries | length')" = $NACT ] ||
    fail "other hosts were flushed too"
H queue flush >"$T/flush.out" || fail "flush"
for _ in $(seq 150); do
    [ "$(H stats --json | jq .deliveries.done)" = $TOTAL ] && break
    sleep 0.1
done
[ "$(H stats --json | jq .deliveries.done)" = $TOTAL ] || fail "flush: not everything delivered"
[ "$(H queue list --json | jq '.deliveries | length')" = 0 ] || fail "queue not empty"
kill -TERM "$RUN_PID"; wait "$RUN_PID" || fail "run exit status"
pass "queue flush: a running engine sends waiting retries at once (one host, then all)"
