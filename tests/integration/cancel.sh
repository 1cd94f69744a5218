#!/usr/bin/env bash
# Cancellation: a Delete of an object whose Create has not yet been delivered
# to a host cancels both for that host, and a Delete (or Update) never goes to a host that
# never received the object.
#   1. Create, Update and Delete all queued before the engine runs: none of them reaches the
#      host (three cancelled), checked on the receiver.
#   2. The engine runs; the Create fails on a host that refuses connections (never reached) and
#      waits for its retry; then the Delete is enqueued: both are cancelled there while the
#      engine runs. The same Delete goes to a host that got the Create (sent, after it), and
#      to a host the Create was never addressed to (cancelled, never sent).
#   3. A Create refused with 400 (a dead letter) at one host: its later Update and Delete are
#      not sent there; a healthy host gets all three.
#   4. A 503 answer may have been acted on: that Create is never cancelled (ordering.sh shows
#      the Delete then waits behind it).
#   5. A crash while a Create is in flight (sent, no answer recorded), then its Delete: after
#      an unclean stop nothing queued before is cancelled; the Create goes again, then the
#      Delete.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[bad.fedi.test]
error_400 = 1
[busy.fedi.test]
error_503 = 1
retry_after = 0
[slow.fedi.test]
latency = fixed 2000
[*]
latency = fixed 1
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
A=https://social.example/users/alice
P=$TLS_PORT
DOWN=1 # nothing listens on 127.0.0.1:1: connection refused, the request never leaves
RUN=(--resolve "*:$P:127.0.0.1" --resolve "down.fedi.test:$DOWN:127.0.0.1"
    --ca-file "$T/certs/ca.pem" --allow-private-addresses --breaker-threshold 1000)
act() { # id type object inbox-hosts...
    local id=$1 type=$2 obj=$3 o inb="" h
    shift 3
    if [ "$type" = Create ] || [ "$type" = Update ]; then
        o="{\"id\":\"$obj\",\"type\":\"Note\",\"content\":\"$id\",\"to\":\"as:Public\"}"
    else
        o="\"$obj\""
    fi
    for h in "$@"; do
        if [ "$h" = down.fedi.test ]; then inb="$inb,\"https://$h:$DOWN/inbox\""
        else inb="$inb,\"https://$h:$P/inbox\""; fi
    done
    echo "{\"activity\":{\"id\":\"https://social.example/$id\",\"type\":\"$type\",\"actor\":\"$A\",\"object\":$o},\"inboxes\":[${inb#,}]}"
}
enq() { "$HERALD" --db "$DB" enqueue - >>"$T/enq.out" 2>&1 || { cat "$T/enq.out"; fail "enqueue"; }; }
run_idle() { timeout -s TERM 60 "$HERALD" --db "$DB" run --until-idle "${RUN[@]}" "$@" 2>>"$T/run.log" ||
    fail "run failed: $(tail -3 "$T/run.log")"; }
cancelled() { "$HERALD" --db "$DB" stats --json | jq .deliveries.cancelled; }
report() { rm -f "$T/fedisim.report.json"; kill -USR1 "$FS_PID"; wait_file "$T/fedisim.report.json" 50; }
req() { jq --arg h "$1" '.per_host[$h].requests // 0' "$T/fedisim.report.json"; }
acc() { jq --arg h "$1" '.per_host[$h].accepted // 0' "$T/fedisim.report.json"; }

# 1. everything queued before the engine looks: nothing reaches pre.fedi.test
{ act c1 Create https://social.example/n1 pre.fedi.test ok.fedi.test
  act u1 Update https://social.example/n1 pre.fedi.test ok.fedi.test
  act d1 Delete https://social.example/n1 pre.fedi.test; } | enq
run_idle
report
[ "$(req pre.fedi.test)" = 0 ] || fail "pre.fedi.test received $(req pre.fedi.test) requests; want 0"
[ "$(acc ok.fedi.test)" = 2 ] || fail "ok.fedi.test (no Delete for it) must get Create and Update"
[ "$(cancelled)" = 3 ] || fail "cancelled = $(cancelled), want 3 (Create, Update, Delete)"
echo "1: Create+Update+Delete queued together: 0 requests to the host, 3 cancelled"

# 2. the Create waits for a retry on a host that refused the connection; the Delete comes
c0=$(cancelled)
act c2 Create https://social.example/n2 down.fedi.test got.fedi.test | enq
timeout -s TERM 6 "$HERALD" --db "$DB" run "${RUN[@]}" --retry-base 30000 --retry-cap 30000 \
    2>>"$T/run.log" &
RPID=$!
for _ in $(seq 50); do # until the Create failed once on the down host
    [ "$("$HERALD" --db "$DB" stats --json |
        jq '[.hosts[] | select(.host == "down.fedi.test") | .retrying] | add // 0')" = 1 ] && break
    sleep 0.1
done
act d2 Delete https://social.example/n2 down.fedi.test got.fedi.test new.fedi.test | enq
wait "$RPID" || true
report
dn=$("$HERALD" --db "$DB" stats --json | jq -c '.hosts[] | select(.host == "down.fedi.test")')
echo "down host after the run: $dn"
[ "$(echo "$dn" | jq .queued)" = 0 ] || fail "down host: Create and Delete must both be cancelled"
[ "$(( $(cancelled) - c0 ))" = 3 ] ||
    fail "cancelled $(( $(cancelled) - c0 )), want 3 (Create+Delete on down, Delete on new)"
[ "$(acc got.fedi.test)" = 2 ] || fail "got.fedi.test must receive the Create then the Delete"
[ "$(req new.fedi.test)" = 0 ] || fail "new.fedi.test never had the object but got a request"
echo "2: Create waiting on a refused host + Delete: both cancelled live; Delete follows where sent"

# 3. a Create refused with 400 (dead letter): its Update and Delete are not sent there
c0=$(cancelled)
act c3 Create https://social.example/n3 bad.fedi.test ok3.fedi.test | enq
run_idle
{ act u3 Update https://social.example/n3 bad.fedi.test ok3.fedi.test
  act d3 Delete https://social.example/n3 bad.fedi.test ok3.fedi.test; } | enq
run_idle
report
[ "$(req bad.fedi.test)" = 1 ] || fail "bad.fedi.test got $(req bad.fedi.test) requests; want 1"
[ "$(acc ok3.fedi.test)" = 3 ] || fail "ok3.fedi.test must receive Create, Update and Delete"
[ "$(( $(cancelled) - c0 ))" = 2 ] || fail "cancelled $(( $(cancelled) - c0 )), want 2"
echo "3: Create refused with 400: its Update and Delete not sent there; others get all three"

# 4. a 503 may have been acted on: the Create is not cancelled, the Delete stays behind it
c0=$(cancelled)
act c4 Create https://social.example/n4 busy.fedi.test | enq
timeout -s TERM 3 "$HERALD" --db "$DB" run "${RUN[@]}" --retry-base 30000 2>>"$T/run.log" || true
act d4 Delete https://social.example/n4 busy.fedi.test | enq
timeout -s TERM 3 "$HERALD" --db "$DB" run "${RUN[@]}" --retry-base 100 --retry-cap 100 \
    2>>"$T/run.log" || true
bz=$("$HERALD" --db "$DB" stats --json | jq -c '.hosts[] | select(.host == "busy.fedi.test")')
[ "$(( $(cancelled) - c0 ))" = 0 ] || fail "a Create answered 503 was cancelled"
[ "$(echo "$bz" | jq .queued)" = 2 ] || fail "busy host: Create and Delete must stay queued: $bz"
echo "4: Create answered 503: not cancelled, Delete waits"

# 5. kill -9 while the Create is in flight, then the Delete
c0=$(cancelled)
act c5 Create https://social.example/n5 slow.fedi.test | enq
"$HERALD" --db "$DB" run "${RUN[@]}" 2>>"$T/run.log" &
RPID=$!
for _ in $(seq 100); do # until fedisim has the request (it answers 2 s later)
    report
    [ "$(req slow.fedi.test)" -ge 1 ] && break
    sleep 0.1
done
kill -9 "$RPID"; wait "$RPID" 2>/dev/null || true
act d5 Delete https://social.example/n5 slow.fedi.test | enq
run_idle
grep -q 'did not stop cleanly' "$T/run.log" || fail "the unclean stop was not noticed"
report
[ "$(( $(cancelled) - c0 ))" = 0 ] || fail "a Create possibly sent before a crash was cancelled"
[ "$(acc slow.fedi.test)" -ge 2 ] || fail "slow host: want the Create again and the Delete"
sl=$("$HERALD" --db "$DB" stats --json | jq -c '.hosts[] | select(.host == "slow.fedi.test")')
[ "$(echo "$sl" | jq .queued)" = 0 ] || fail "slow host: not everything delivered: $sl"
echo "5: crash with the Create in flight: not cancelled after the restart; Delete follows"
stop_fedisim
pass "cancellation: deleted before delivery cancels both; Deletes only where the object went"
