#!/usr/bin/env bash
# Cluster mode: kill -9 one of three nodes in the middle of a fan-out. The survivors own its
# partitions within the lease (3 s here) plus a heartbeat, re-derive from the stream what it
# had not finished (its store is deleted too: nothing is read from it), and fedisim ends with
# every (activity, inbox) pair. Duplicates are counted (fedisim) and reported with the nodes'
# own count of re-derived deliveries, which bounds them.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need openssl
NACT=${NACT:-40}
NHOSTS=${NHOSTS:-60}
[ "$HD_ASAN" = 1 ] && NACT=30
TOTAL=$((NACT * NHOSTS))
LEASE=3000
mkcerts
setup_actor "$T/db-keys"
cat >"$T/profiles.ini" <<'P'
[*]
latency = uniform 50..100
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
start_nats
# One request at a time per host, 50-100 ms each: a host's share takes seconds, so b still
# has work when it is killed, even when the machine is slow to poll fedisim.
for n in a b c; do start_node "$n" --max-inflight-host 1; done
wait_balanced a b c
gen_envelopes https "$TLS_PORT" "$NACT" "$NHOSTS" >"$T/env.jsonl"
"$HERALD" enqueue --cluster "$NATS_URL" "$T/env.jsonl" >/dev/null || fail "enqueue --cluster"
# Kill b once a quarter of the pairs have arrived.
for _ in $(seq 600); do
    [ "$(fs_requests)" -ge $((TOTAL / 4)) ] && break
    sleep 0.05
done
before=$(fs_requests)
t0=$(date +%s%N)
{ kill -9 "${NODE_PID[b]}"; wait "${NODE_PID[b]}"; } 2>/dev/null || true
rm -rf "$T/db-b" # its disk is gone for good
[ "$before" -lt "$TOTAL" ] || fail "the fan-out ended before the kill: make it larger"
wait_balanced a c
took=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "killed b at $before of $TOTAL requests; a and c own every partition after ${took} ms"
[ "$took" -le $((LEASE + 5000)) ] || fail "takeover took ${took} ms (lease ${LEASE} ms)"
wait_pairs "$TOTAL" 120
sleep 1
for n in a c; do stop_node "$n"; done
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
replayed=0
for n in a c; do
    r=$(grep -h '^{"cluster_node"' "$T/node-$n.log" | tail -1 | jq .replayed)
    replayed=$((replayed + r))
done
dups=$(jq .duplicates "$R")
echo "re-derived deliveries on the survivors: $replayed; duplicates seen by fedisim: $dups"
[ "$replayed" -gt 0 ] || fail "the survivors re-derived nothing: b had finished its share before the kill"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "LOST: fedisim has $(jq .unique_pairs "$R") of $TOTAL pairs"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures"
[ "$dups" -le "$replayed" ] || fail "$dups duplicates, more than the $replayed re-derived deliveries"
# The survivors re-derived through batched fetches (one pull request for many stream
# messages), not one round trip per message.
fetches=0 fetched=0
for n in a c; do
    l=$(grep -h '^{"cluster_node"' "$T/node-$n.log" | tail -1)
    fetches=$((fetches + $(jq '.replay_fetches // 0' <<<"$l")))
    fetched=$((fetched + $(jq '.replay_fetched // 0' <<<"$l")))
done
echo "replay reads: $fetched stream messages in $fetches fetches"
[ "$fetched" -gt 0 ] && [ "$fetches" -lt "$fetched" ] ||
    fail "replay read $fetched messages in $fetches fetches: not batched"
pass "kill -9 mid fan-out: takeover in ${took} ms, $TOTAL pairs, none lost, $dups duplicates (<= $replayed re-derived)"
