#!/usr/bin/env bash
# Cluster mode, in phases over one run: SIGTERM hands a node's partitions over at once (well
# before its lease would expire); the node restarts on its store and rejoins; a fourth node
# joins and takes its share; nats-server restarts in the middle of a fan-out and the nodes
# reconnect. fedisim ends with every (activity, inbox) pair of both batches.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need openssl
NACT=${NACT:-20}
NHOSTS=${NHOSTS:-60}
[ "$HD_ASAN" = 1 ] && NACT=8
TOTAL=$((2 * NACT * NHOSTS))
LEASE=${LEASE:-4000}
mkcerts
setup_actor "$T/db-keys"
cat >"$T/profiles.ini" <<'P'
[*]
latency = uniform 5..30
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
start_nats
for n in a b c; do start_node "$n" --max-inflight-host 2; done
wait_balanced a b c

# Phase 1: SIGTERM c in the middle of batch 1; a and b own everything before c's lease ends.
gen_envelopes https "$TLS_PORT" "$NACT" "$NHOSTS" one >"$T/env1.jsonl"
gen_envelopes https "$TLS_PORT" "$NACT" "$NHOSTS" two >"$T/env2.jsonl"
"$HERALD" enqueue --cluster "$NATS_URL" "$T/env1.jsonl" >/dev/null || fail "enqueue batch 1"
for _ in $(seq 400); do [ "$(fs_requests)" -ge $((NACT * NHOSTS / 4)) ] && break; sleep 0.05; done
t0=$(date +%s%N)
stop_node c
wait_balanced a b
took=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "phase 1: SIGTERM c; a and b own every partition after ${took} ms (lease ${LEASE} ms)"
grep -q '"released":[1-9]' "$T/node-c.log" || fail "c released no lease at SIGTERM"

# Phase 2: c restarts on its store and rejoins.
start_node c --max-inflight-host 2
wait_balanced a b c
echo "phase 2: c rejoined"

# Phase 3: a fourth node joins.
start_node d --max-inflight-host 2
wait_balanced a b c d
echo "phase 3: d joined"
wait_pairs $((NACT * NHOSTS)) 90

# Phase 4: nats-server restarts in the middle of batch 2: as soon as its first requests
# arrive (a batch takes about a second here, less than a poll takes on a loaded machine).
base=$(fs_requests)
"$HERALD" enqueue --cluster "$NATS_URL" "$T/env2.jsonl" >/dev/null || fail "enqueue batch 2"
for _ in $(seq 1000); do [ "$(fs_requests)" -gt "$base" ] && break; sleep 0.02; done
mid=$(fs_pairs)
[ "$mid" -lt "$TOTAL" ] || fail "batch 2 ended before the nats-server restart"
stop_nats
sleep 1
start_nats
echo "phase 4: nats-server restarted"
wait_pairs "$TOTAL" 120
wait_balanced a b c d
sleep 1
for n in a b c d; do stop_node "$n"; done
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "LOST: fedisim has $(jq .unique_pairs "$R") of $TOTAL pairs"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures"
[ "$took" -lt "$LEASE" ] || fail "SIGTERM hand-over took ${took} ms, not faster than the lease"
pass "SIGTERM hand-over in ${took} ms, restart, join, nats-server restart: $TOTAL pairs, $(jq .duplicates "$R") duplicates"
