#!/usr/bin/env bash
# Cluster-wide views: two nodes put their summaries into the bucket; after a fan-out,
# `stats --cluster --json` totals equal the sum of the nodes' own counts and fedisim's
# accepted count, and `top --cluster --once` lists the hosts of both nodes.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need openssl
NACT=6
NHOSTS=24
TOTAL=$((NACT * NHOSTS))
mkcerts
setup_actor "$T/db-keys"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
start_nats
PARTITIONS=16
for n in a b; do start_node "$n"; done
wait_balanced a b
gen_envelopes https "$TLS_PORT" "$NACT" "$NHOSTS" >"$T/env.jsonl"
"$HERALD" enqueue --cluster "$NATS_URL" "$T/env.jsonl" >"$T/enq.out" || fail "enqueue --cluster"
wait_pairs "$TOTAL" 60
# The summaries are put once a second: wait until the merged totals show every delivery.
ok=0
for _ in $(seq 50); do
    "$HERALD" stats --cluster "$NATS_URL" --json >"$T/stats.json" || fail "stats --cluster"
    [ "$(jq '.totals.done' "$T/stats.json")" = "$TOTAL" ] &&
        [ "$(jq '.nodes | length' "$T/stats.json")" = 2 ] && { ok=1; break; }
    sleep 0.2
done
[ "$ok" = 1 ] || fail "stats --cluster: $(jq -c '{totals, nodes: (.nodes | keys)}' "$T/stats.json"), want done $TOTAL over 2 nodes"
accepted=$(curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" \
    "https://fedi.test:$TLS_PORT/_fedisim/stats" | jq -r '.accepted')
sum=0
for n in a b; do
    d=$("$HERALD" --db "$T/db-$n" stats --json | jq '.deliveries.done')
    nd=$(jq --arg n "$n" '.nodes[$n].totals.done' "$T/stats.json")
    echo "node $n: done $d (its summary: $nd)"
    [ "$d" -gt 0 ] || fail "node $n delivered nothing"
    [ "$d" = "$nd" ] || fail "node $n: store says $d done, its summary $nd"
    sum=$((sum + d))
done
jq -c '.totals' "$T/stats.json"
[ "$sum" = "$(jq .totals.done "$T/stats.json")" ] || fail "sum of the nodes $sum != cluster total"
[ "$accepted" = "$sum" ] || fail "fedisim accepted $accepted, the nodes $sum"
jq -e '.totals.failed == 0 and .totals.queued == 0 and .schema == 1' "$T/stats.json" >/dev/null ||
    fail "totals: $(jq -c .totals "$T/stats.json")"
"$HERALD" stats --cluster "$NATS_URL" >"$T/stats.txt" || fail "stats --cluster (text)"
grep -Eq "^total +$TOTAL " "$T/stats.txt" || fail "stats --cluster text: $(cat "$T/stats.txt")"
pass "stats --cluster: $sum done = node a + node b = fedisim's $accepted accepted"

# top --cluster: every host once, and each node's hosts among them.
"$HERALD" top --cluster "$NATS_URL" --once >"$T/top.txt" || fail "top --cluster"
grep -Eo '^h[0-9]+\.fedi\.test' "$T/top.txt" | sort >"$T/top.hosts"
[ "$(sort -u "$T/top.hosts" | wc -l)" = "$NHOSTS" ] && [ "$(wc -l <"$T/top.hosts")" = "$NHOSTS" ] ||
    fail "top --cluster lists $(wc -l <"$T/top.hosts") rows, want the $NHOSTS hosts once: $(cat "$T/top.txt")"
for n in a b; do
    "$HERALD" --db "$T/db-$n" top --once | grep -Eo '^h[0-9]+\.fedi\.test' | sort -u >"$T/hosts-$n"
    [ -s "$T/hosts-$n" ] || fail "node $n has no hosts"
    comm -23 "$T/hosts-$n" "$T/top.hosts" | grep -q . && fail "top --cluster misses hosts of node $n"
done
comm -12 "$T/hosts-a" "$T/hosts-b" | grep -q . && fail "a host on both nodes"
rc=0; "$HERALD" top --cluster-ca "$T/certs/ca.pem" --once 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--cluster URL' "$T/err" || fail "top --cluster-ca without --cluster: $rc $(cat "$T/err")"
pass "top --cluster --once lists the $NHOSTS hosts of both nodes, each once"

for n in a b; do stop_node "$n"; done
stop_fedisim
