#!/usr/bin/env bash
# Cluster mode, fencing: node a is paused (SIGSTOP) in the middle of a fan-out, its leases
# expire and b takes its partitions over; after SIGCONT, a sends nothing for a partition
# under the lease it lost. Shown with a's own per-partition counters (each ownership period
# with its sends and its last send time; requests written outside any lease) and with
# fedisim's per-host request counts and arrival times.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need openssl
NACT=${NACT:-120}
NHOSTS=${NHOSTS:-30}
[ "$HD_ASAN" = 1 ] && NACT=90
TOTAL=$((NACT * NHOSTS))
LEASE=3000
PARTITIONS=16
mkcerts
setup_actor "$T/db-keys"
cat >"$T/profiles.ini" <<'P'
[*]
latency = uniform 40..60
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
start_nats
for n in a b; do start_node "$n" --max-inflight-host 1; done
wait_balanced a b
gen_envelopes https "$TLS_PORT" "$NACT" "$NHOSTS" >"$T/env.jsonl"
"$HERALD" enqueue --cluster "$NATS_URL" "$T/env.jsonl" >/dev/null || fail "enqueue --cluster"
for _ in $(seq 400); do [ "$(fs_requests)" -ge $((TOTAL / 8)) ] && break; sleep 0.05; done
cluster_status | jq -c '.nodes.a.partitions' >"$T/a-parts.json"
t_stop=$(date +%s%3N)
kill -STOP "${NODE_PID[a]}"
wait_balanced b # a's leases expired: b owns every partition
t_take=$(date +%s%3N)
sleep 1
t_cont=$(date +%s%3N)
kill -CONT "${NODE_PID[a]}"
echo "a paused at $t_stop, b owns all at $t_take (+$((t_take - t_stop)) ms), a resumed at $t_cont"
mid=$(fs_requests)
[ "$mid" -lt "$TOTAL" ] || fail "the fan-out ended before a resumed: make it larger"
wait_pairs "$TOTAL" 120
sleep 1
for n in a b; do stop_node "$n"; done
stop_fedisim
R="$T/fedisim.report.json"
A=$(grep -h '^{"cluster_node":"a"' "$T/node-a.log" | tail -1)
B=$(grep -h '^{"cluster_node":"b"' "$T/node-b.log" | tail -1)
[ -n "$A" ] && [ -n "$B" ] || fail "missing node reports"
# Every partition a held when paused: the period it lost ended after SIGCONT (a noticed on
# waking), and its last request in that period was written before SIGCONT.
checked=0
for p in $(jq -r '.[]' "$T/a-parts.json"); do
    per=$(jq -c --arg p "$p" '.partitions[$p].periods // [] | map(select(.end == "lost")) | .[0] // empty' <<<"$A")
    [ -n "$per" ] || fail "a has no lost period for partition $p: $(jq -c --arg p "$p" '.partitions[$p]' <<<"$A")"
    last=$(jq .last_send_ms <<<"$per")
    sends=$(jq .sends <<<"$per")
    if [ "$sends" -gt 0 ] && [ "$last" -ge "$t_cont" ]; then
        fail "a wrote a request for partition $p at $last, after SIGCONT ($t_cont), under a lost lease"
    fi
    checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "a held no partition when paused"
out=$(jq '[.partitions[].sends_outside_leases] | add // 0' <<<"$A")
[ "$out" = 0 ] || fail "a wrote $out requests outside its leases"
# fedisim: every request to a host of a's lost partitions is one the nodes counted (a's and
# b's counters add up to fedisim's per-host counts), and the hosts got requests after b took
# over (b finished their fan-out).
sum_nodes=0; sum_fs=0; late=0
for h in $(seq "$NHOSTS"); do
    host="h$h.fedi.test"
    p=$("$HERALD" cluster partition "$host" "$PARTITIONS")
    jq -e --argjson p "$p" 'index($p) != null' "$T/a-parts.json" >/dev/null || continue
    sum_fs=$((sum_fs + $(jq --arg h "$host" '.per_host[$h].requests // 0' "$R")))
    [ "$(jq --arg h "$host" '.per_host[$h].last_ms // 0' "$R")" -gt "$t_take" ] && late=$((late + 1))
done
for p in $(jq -r '.[]' "$T/a-parts.json"); do
    sum_nodes=$((sum_nodes + $(jq --arg p "$p" '.partitions[$p].sends // 0' <<<"$A") + \
                             $(jq --arg p "$p" '.partitions[$p].sends // 0' <<<"$B")))
done
echo "a's partitions: fedisim counted $sum_fs requests to their hosts, the nodes $sum_nodes; $late hosts got requests after the takeover"
[ "$sum_fs" = "$sum_nodes" ] || fail "fedisim $sum_fs requests vs nodes' counters $sum_nodes"
[ "$late" -gt 0 ] || fail "no host of a's partitions got a request after the takeover"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "LOST: fedisim has $(jq .unique_pairs "$R") of $TOTAL pairs"
pass "fencing: $checked partitions moved while a was paused; a wrote none of their requests after SIGCONT"
