#!/usr/bin/env bash
# The cluster demo: builds Herald and fedisim, starts nats-server (JetStream, on loopback,
# temporary store), three Herald nodes and fedisim (100 simulated hosts over HTTP/2+TLS),
# publishes a fan-out of 6 posts x 2,000 inboxes to JetStream, kills one node with -9 on the
# way, and prints a summary: who owned what, and fedisim's counts of lost and duplicate
# deliveries. docs/cluster.md explains the design.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${HD_BUILD:-}" ]; then # an existing build (tests, CI)
    B=$HD_BUILD
else
    bash tools/deps.sh
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
    B=build
fi
HERALD=$B/engine/herald
D=$(mktemp -d /tmp/herald-cluster-demo-XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
port() { # a free loopback port
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}
NATS_PORT=$(port)
NATS="nats://127.0.0.1:$NATS_PORT"
nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$D/js" >"$D/nats.log" 2>&1 &
PIDS+=($!)
bash bench/mkcerts.sh "$D/certs" >/dev/null 2>&1
cat >"$D/profiles.ini" <<'P'
[*]
latency = uniform 5..25
P
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$D/alice.pem" 2>/dev/null
# Keys are provisioned on every node (never sent over the bus).
for n in n1 n2 n3; do
    $HERALD --db "$D/db-$n" key add --key-id https://social.example/users/alice#main-key \
        --actor https://social.example/users/alice --pem "$D/alice.pem" >/dev/null
done
$HERALD --db "$D/db-n1" key export-public >"$D/keys.jsonl"
$B/bench/fedisim --bind 127.0.0.1 --tls-port 0 --cert "$D/certs/server.pem" \
    --key "$D/certs/server.key" --profiles "$D/profiles.ini" --keys "$D/keys.jsonl" \
    --verify all --ready-file "$D/ready" --report "$D/report.json" --max-seconds 600 --quiet &
FS=$!
PIDS+=($FS)
for _ in $(seq 100); do [ -s "$D/ready" ] && break; sleep 0.1; done
TLS=$(jq -r .tls_port "$D/ready")
stats() { curl -s --max-time 2 --cacert "$D/certs/ca.pem" --resolve "fedi.test:$TLS:127.0.0.1" \
    "https://fedi.test:$TLS/_fedisim/stats"; }
declare -A NODE
for n in n1 n2 n3; do
    $HERALD --db "$D/db-$n" run --cluster "$NATS" --node "$n" --cluster-lease 5s \
        --resolve "*:$TLS:127.0.0.1" --ca-file "$D/certs/ca.pem" --allow-private-addresses \
        --threads 1 --max-inflight-host 2 2>"$D/$n.log" &
    NODE[$n]=$!
    PIDS+=($!)
done
echo "== three nodes; waiting until they share the 256 partitions"
for _ in $(seq 300); do
    $HERALD cluster status --cluster "$NATS" --json >"$D/status.json" 2>/dev/null || true
    [ "$(jq '[.nodes[] | select(.live) | .partitions | length | select(. > 0)] | length' "$D/status.json" 2>/dev/null)" = 3 ] &&
        [ "$(jq '[.nodes[] | .partitions | length] | add' "$D/status.json")" = 256 ] && break
    sleep 0.2
done
$HERALD cluster status --cluster "$NATS"
# 6 posts, each to 20 inboxes on each of 100 hosts: 12,000 deliveries.
NACT=6
TOTAL=$((NACT * 2000))
awk -v tls="$TLS" -v na="$NACT" 'BEGIN {
  for (a = 1; a <= na; a++) {
    printf "{\"activity\":{\"@context\":\"https://www.w3.org/ns/activitystreams\",\"id\":\"https://social.example/notes/%d/activity\",\"type\":\"Create\",\"actor\":\"https://social.example/users/alice\",\"to\":[\"https://www.w3.org/ns/activitystreams#Public\"],\"object\":{\"id\":\"https://social.example/notes/%d\",\"type\":\"Note\",\"content\":\"Hello from the cluster %d\"}},\"inboxes\":[", a, a, a
    n = 0
    for (h = 1; h <= 100; h++) for (u = 1; u <= 20; u++)
      printf "%s\"https://h%d.fedi.test:%d/users/u%d/inbox\"", (n++ ? "," : ""), h, tls, u
    printf "]}\n"
  }
}' >"$D/envelopes.jsonl"
echo "== publish to JetStream (each line answered after its PubAck)"
$HERALD enqueue --cluster "$NATS" "$D/envelopes.jsonl"
echo "== fan-out; node n2 is killed with -9 at a third"
killed=0
t0=$(date +%s)
while :; do
    s=$(stats)
    got=$(jq -r '.unique_pairs // 0' <<<"$s")
    printf '  %5ds  delivered %6d / %d  requests %6d  duplicates %d\n' $(($(date +%s) - t0)) \
        "$got" "$TOTAL" "$(jq -r '.requests // 0' <<<"$s")" "$(jq -r '.duplicates // 0' <<<"$s")"
    if [ "$killed" = 0 ] && [ "$got" -ge $((TOTAL / 3)) ]; then
        { kill -9 "${NODE[n2]}"; wait "${NODE[n2]}"; } 2>/dev/null || true
        killed=1
        echo "  -- kill -9 n2; its partitions move to n1 and n3 within the 5 s lease"
    fi
    [ "$got" -ge "$TOTAL" ] && break
    [ $(($(date +%s) - t0)) -gt 300 ] && { echo "  gave up after 300 s"; break; }
    sleep 1
done
sleep 1
$HERALD cluster status --cluster "$NATS"
for n in n1 n3; do kill -TERM "${NODE[$n]}"; done
for n in n1 n3; do wait "${NODE[$n]}" 2>/dev/null || true; done
kill -TERM "$FS"; wait "$FS" 2>/dev/null || true
R="$D/report.json"
echo "== summary"
for n in n1 n3; do
    grep -h '^{"cluster_node"' "$D/$n.log" | tail -1 |
        jq -r '"node \(.cluster_node): enqueued \(.enqueued), re-derived after the kill \(.replayed), requests \([.partitions[].sends] | add // 0)"'
done
jq -r --argjson total "$TOTAL" '"fedisim: \(.unique_pairs) of \($total) (activity, inbox) pairs received, lost \($total - .unique_pairs), duplicate requests \(.duplicates), bad signatures \(.bad_signature)"' "$R"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ]
