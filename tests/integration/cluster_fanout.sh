#!/usr/bin/env bash
# Cluster mode: three nodes over one nats-server. Every node reads every activity and
# delivers only the hosts of the partitions it owns. fedisim's per-pair counts show exactly
# one request per (activity, inbox): nothing lost, no duplicate, every node took a share.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need openssl
NACT=${NACT:-30}
NHOSTS=${NHOSTS:-60}
[ "$HD_ASAN" = 1 ] && NACT=10
TOTAL=$(((NACT + 1) * NHOSTS)) # the last activity comes through node a's endpoint
mkcerts
setup_actor "$T/db-keys"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
start_nats
printf 'token-%s\n' "$RANDOM$RANDOM" >"$T/token"
chmod 600 "$T/token"
start_node a --listen "unix:$T/a.sock" --token-file "$T/token"
for n in b c; do start_node "$n"; done
wait_balanced a b c # steady state: each node owns a share, every partition has an owner
# A duplicate publish (same activity id) is acknowledged as a duplicate and adds nothing.
gen_envelopes https "$TLS_PORT" "$NACT" "$NHOSTS" >"$T/env.jsonl"
"$HERALD" enqueue --cluster "$NATS_URL" "$T/env.jsonl" >"$T/enq.out" || fail "enqueue --cluster"
[ "$(jq -s 'map(select(.ok)) | length' "$T/enq.out")" = "$NACT" ] || fail "not every line acknowledged"
head -1 "$T/env.jsonl" | "$HERALD" enqueue --cluster "$NATS_URL" - | jq -e '.duplicate == true' >/dev/null \
    || fail "a re-published activity id was not de-duplicated"
# Refused: a message of an unknown shape never reaches the stream.
echo '{"activity":{"type":"Create"}}' | "$HERALD" enqueue --cluster "$NATS_URL" - >/dev/null \
    && fail "an envelope without an id was accepted"
# Node a's ingest endpoint takes work for the whole cluster: it publishes to JetStream and
# answers once acknowledged; the partitions' owners deliver it.
gen_envelopes https "$TLS_PORT" 1 "$NHOSTS" viaendpoint >"$T/env-ep.jsonl"
for _ in $(seq 50); do [ -S "$T/a.sock" ] && break; sleep 0.1; done
code=$(curl -sS --max-time 10 --unix-socket "$T/a.sock" -o "$T/ep.json" -w '%{http_code}' \
    -H "Authorization: Bearer $(head -1 "$T/token")" -H 'Content-Type: application/json' \
    --data-binary "@$T/env-ep.jsonl" http://h/v1/activities)
[ "$code" = 202 ] || fail "endpoint in cluster mode answered $code: $(cat "$T/ep.json")"
jq -e '.accepted == 1 and .results[0].seq > 0' "$T/ep.json" >/dev/null || fail "endpoint: $(cat "$T/ep.json")"
wait_pairs "$TOTAL" 120
sleep 1 # late duplicates would show now
cluster_status >"$T/status.json"
jq -c '.nodes | map_values({partitions: (.partitions | length), backlog, enqueued})' "$T/status.json"
for n in a b c; do stop_node "$n"; done
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "LOST: fedisim has $(jq .unique_pairs "$R") of $TOTAL pairs"
[ "$(jq .duplicates "$R")" = 0 ] || fail "$(jq .duplicates "$R") duplicate requests in steady state"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures"
# Each node's own count of requests, from its closing report: all three took part.
for n in a b c; do
    s=$(grep -h '^{"cluster_node"' "$T/node-$n.log" | tail -1 | jq '[.partitions[].sends] | add // 0')
    echo "node $n sent $s"
    [ "$s" -gt 0 ] || fail "node $n sent nothing"
done
pass "3 nodes, $TOTAL deliveries, each (activity, inbox) exactly once"
