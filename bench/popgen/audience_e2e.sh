#!/usr/bin/env bash
# End to end for audiences: one post to N followers (default 1,000,000 over 20,000 hosts,
# popgen's skew) delivered to a loopback fedisim over TLS/h2, which verifies every signature
# and checks every (activity, inbox) pair against popgen's list of the distinct delivery
# inboxes: exactly one request per distinct delivery inbox, none missing, none unexpected,
# no duplicates.
#
#   HD_BUILD=build HD_SRC=. bash bench/popgen/audience_e2e.sh [FOLLOWS] [HOSTS]
#
# Prints the import / enqueue / delivery timings and the receiver's counts as one JSON line
# (also kept in $T/result.json with HD_KEEP_TMP=1). Not a ctest test: it runs for minutes.
source "$HD_SRC/tests/integration/lib/common.sh"
need jq; need openssl
FOLLOWS=${1:-1000000}
HOSTS=${2:-20000}
A=https://social.example/users/alice
POST=https://social.example/act/e2e-post-1
POPGEN="$HD_BUILD/bench/popgen/popgen"
AUDBENCH="$HD_BUILD/bench/popgen/audbench"
now() { date +%s.%N; }

mkcerts
DB="$T/db"
setup_actor "$DB"
FS_MAX_SECONDS=3000
# popgen writes the port into every URL and fedisim reads popgen's --expect at start, so the
# port is chosen up front: one the kernel found free a moment before (a random one could be
# held by another test's connection; the run then fails with fedisim's reason).
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
    fail "no free port"
"$POPGEN" --actor "$A" --follows "$FOLLOWS" --hosts "$HOSTS" --port "$PORT" \
    --out "$T/pop.jsonl" --expect "$T/expect.jsonl" --expect-id "$POST" \
    --summary "$T/pop.json" || fail "popgen"
cat "$T/pop.json"
start_fedisim --tls-port "$PORT" --keys "$T/keys.jsonl" --verify all --expect "$T/expect.jsonl" \
    --max-conns 30000
[ "$TLS_PORT" = "$PORT" ] || fail "fedisim did not take port $PORT"

t0=$(now)
"$HERALD" --db "$DB" follow import "$T/pop.jsonl" >"$T/import.json" || fail "import: $(cat "$T/import.json")"
t1=$(now)
cat "$T/import.json"
"$HERALD" --db "$DB" follow list --actor "$A" --count
printf '{"activity":{"@context":"https://www.w3.org/ns/activitystreams","id":"%s","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["%s/followers"],"object":{"id":"https://social.example/notes/e2e-1","type":"Note","content":"hello, a million followers"}},"to_followers":true}\n' \
    "$POST" "$A" "$A" >"$T/post.json"
"$AUDBENCH" enqueue --db "$DB" --file "$T/post.json" >"$T/enq.json" || fail "enqueue"
cat "$T/enq.json"
t2=$(now)
# Thousands of hosts at once means thousands of TLS handshakes queued at one single-threaded
# receiver on a 2-core VM: generous timeouts, so that a slow handshake is not a failure.
timeout 2400 "$HERALD" --db "$DB" run --until-idle --resolve "*:$PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses --connect-timeout 60000 \
    --tls-timeout 120000 --response-timeout 120000 ${HD_RUN_ARGS:-} 2>"$T/run.log" ||
    { tail -20 "$T/run.log"; fail "herald run failed"; }
t3=$(now)
grep summary "$T/run.log" || true
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
DISTINCT=$(jq .distinct_delivery_inboxes "$T/pop.json")
jq -c --argjson distinct "$DISTINCT" \
    --arg import_s "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')" \
    --arg run_s "$(awk -v a="$t2" -v b="$t3" 'BEGIN{printf "%.2f", b-a}')" \
    --slurpfile enq "$T/enq.json" \
    '{distinct_delivery_inboxes:$distinct, import_s:($import_s|tonumber), enqueue:$enq[0],
      run_s:($run_s|tonumber), requests, accepted, unique_pairs, duplicates, expected, missing,
      unexpected, bad_signature, verified, hosts, by_proto}' "$R" | tee "$T/result.json"
[ "$(jq .deliveries.done "$T/stats.json")" = "$DISTINCT" ] || fail "herald done != $DISTINCT: $(head -c 300 "$T/stats.json")"
[ "$(jq .unique_pairs "$R")" = "$DISTINCT" ] || fail "unique pairs $(jq .unique_pairs "$R") != $DISTINCT"
[ "$(jq .requests "$R")" = "$DISTINCT" ] || fail "requests $(jq .requests "$R") != $DISTINCT"
[ "$(jq .duplicates "$R")" = 0 ] || fail "duplicates"
[ "$(jq .missing "$R")" = 0 ] || fail "missing $(jq .missing "$R")"
[ "$(jq .unexpected "$R")" = 0 ] || fail "unexpected $(jq .unexpected "$R")"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures"
pass "one post to $FOLLOWS followers: $DISTINCT requests, one per distinct delivery inbox, all verified and expected"
