#!/usr/bin/env bash
# The demo: builds Herald and fedisim, starts a simulated fediverse on loopback (100 host
# names over HTTP/2+TLS, HTTP/2 cleartext and HTTP/1.1-only servers, a few of them slow or
# flaky), enqueues a fan-out of a few thousand inboxes, delivers it with progress, and prints
# a summary from both sides (Herald's stats and the receiver's independent counts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
B=build
D=$(mktemp -d /tmp/herald-demo-XXXXXX)
trap 'kill $FS 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"' EXIT
bash bench/mkcerts.sh "$D/certs" >/dev/null 2>&1
cat >"$D/profiles.ini" <<'P'
# Most hosts answer at once; a few are slow, one rate-limits, one fails now and then.
[*]
latency = uniform 1..5
[h7.fedi.test]
latency = uniform 200..400
[h13.fedi.test]
rate = 50
retry_after = 1
[h21.fedi.test]
error_503 = 0.2
P
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$D/alice.pem" 2>/dev/null
H="$B/engine/herald --db $D/db"
$H key add --key-id https://social.example/users/alice#main-key \
    --actor https://social.example/users/alice --pem "$D/alice.pem"
$H key export-public >"$D/keys.jsonl"
$B/bench/fedisim --bind 127.0.0.1 --tls-port 0 --h2c-port 0 --h1-port 0 \
    --cert "$D/certs/server.pem" --key "$D/certs/server.key" --profiles "$D/profiles.ini" \
    --keys "$D/keys.jsonl" --verify all --ready-file "$D/ready" --report "$D/report.json" \
    --max-seconds 600 --quiet &
FS=$!
for _ in $(seq 100); do [ -s "$D/ready" ] && break; sleep 0.1; done
TLS=$(jq -r .tls_port "$D/ready"); H2C=$(jq -r .h2c_port "$D/ready"); H1=$(jq -r .h1_port "$D/ready")
# 3 posts, each to 3,000 inboxes over 100 hosts: hosts 1-80 over h2+TLS, 81-90 h2c, 91-100 h1.
awk -v tls="$TLS" -v h2c="$H2C" -v h1="$H1" 'BEGIN {
  for (a = 1; a <= 3; a++) {
    printf "{\"activity\":{\"@context\":\"https://www.w3.org/ns/activitystreams\",\"id\":\"https://social.example/notes/%d/activity\",\"type\":\"Create\",\"actor\":\"https://social.example/users/alice\",\"to\":[\"https://www.w3.org/ns/activitystreams#Public\"],\"object\":{\"id\":\"https://social.example/notes/%d\",\"type\":\"Note\",\"content\":\"Hello, fediverse %d\"}},\"inboxes\":[", a, a, a
    n = 0
    for (h = 1; h <= 100; h++) for (u = 1; u <= 30; u++) {
      url = (h <= 80) ? sprintf("https://h%d.fedi.test:%d", h, tls) : (h <= 90) ? sprintf("http://h%d.fedi.test:%d", h, h2c) : sprintf("http://h%d.fedi.test:%d", h, h1)
      printf "%s\"%s/users/u%d/inbox\"", (n++ ? "," : ""), url, u
    }
    printf "]}\n"
  }
}' >"$D/envelopes.jsonl"
echo "== enqueue"
$H enqueue "$D/envelopes.jsonl"
echo "== run (deliveries to 100 simulated hosts on 127.0.0.1)"
$H run --until-idle --progress --retry-base 1000 --retry-cap 4000 \
    --resolve "*:$TLS:127.0.0.1" --resolve "*:$H2C:127.0.0.1" --resolve "*:$H1:127.0.0.1" \
    --ca-file "$D/certs/ca.pem" --allow-private-addresses
# Deliveries still waiting for a retry (slow / rate-limited hosts): one more pass after it is due.
if [ "$($H stats --json | jq '.deliveries.pending + .deliveries.retrying')" != 0 ]; then
    echo "== some deliveries wait for a retry; running again once they are due"
    sleep 5
    $H run --until-idle --progress --retry-base 1000 --retry-cap 4000 \
        --resolve "*:$TLS:127.0.0.1" --resolve "*:$H2C:127.0.0.1" --resolve "*:$H1:127.0.0.1" \
        --ca-file "$D/certs/ca.pem" --allow-private-addresses
fi
echo "== herald stats"
$H stats >"$D/stats.txt"; head -8 "$D/stats.txt"
kill -TERM $FS; wait $FS 2>/dev/null || true
echo "== receiver (fedisim) report: every request's signature verified with OpenSSL"
jq -c '{requests, accepted, unique_pairs, duplicates, bad_signature, by_proto, by_status}' "$D/report.json"
