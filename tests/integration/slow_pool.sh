#!/usr/bin/env bash
# The slow pool keeps hung and slow hosts off the active-host slots healthy hosts need. One
# loop thread with only 2 main slots (--max-active-hosts 2); 4 hosts accept TCP and never
# answer the TLS handshake (held for the 16 s TLS time-out, then their breaker opens), 2
# answer after 1.5 s, 14 are healthy; the hung ones come first in the hosts' order, so
# without a slow pool they would take both slots and every healthy host would wait out the
# 16 s (with --slow-hosts 0 this test fails). With --slow-hosts 8
# --slow-after 300ms they move to the slow pool: the healthy and slow hosts' 80 deliveries
# must all be accepted within 12 s while the 4 hung hosts still have requests in flight
# (holding their connections). Then the run ends once the hung ones time out.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl
mkcerts
DB="$T/db"
setup_actor "$DB"
{
    for h in 10 11 12 13; do printf '[h%s.fedi.test]\ndead = hang\n' "$h"; done
    for h in 14 15; do printf '[h%s.fedi.test]\nlatency = fixed 1500\n' "$h"; done
    printf '[*]\nlatency = none\n'
} >"$T/profiles.ini"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
gen_envelopes https "$TLS_PORT" 5 20 >"$T/env.jsonl" # h1..h20: 100 deliveries, 80 answerable
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
start=$(date +%s%N)
"$HERALD" --db "$DB" --log-level info run --until-idle --threads 1 --max-active-hosts 2 \
    --slow-hosts 8 --slow-after 300ms --tls-timeout 16s --response-timeout 16s \
    --breaker-threshold 1 \
    --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    >"$T/run.out" 2>"$T/run.log" &
RUN=$!
PIDS+=("$RUN")

# Healthy and slow hosts: all 80 within 12 s.
pairs=0
took_ms=0
while [ "$took_ms" -lt 12000 ]; do
    pairs=$(fs_pairs)
    took_ms=$((($(date +%s%N) - start) / 1000000))
    [ "$pairs" -ge 80 ] && break
    kill -0 "$RUN" 2>/dev/null || break
    sleep 0.1
done
echo "answerable deliveries accepted: $pairs of 80 after ${took_ms} ms"
[ "$pairs" -ge 80 ] || fail "healthy and slow hosts not served within 12 s ($pairs of 80)"
kill -0 "$RUN" 2>/dev/null || fail "the run ended before the hung hosts' time-out"

# The hung hosts still hold their requests (and connections): the engine's live report.
hung=""
for _ in $(seq 30); do
    hung=$("$HERALD" --db "$DB" stats --json |
        jq -r '[.hosts[] | select(.in_flight > 0) | .host] | sort | join(" ")')
    [ "$hung" = "h10.fedi.test h11.fedi.test h12.fedi.test h13.fedi.test" ] && break
    sleep 0.2
done
echo "hosts in flight: $hung"
[ "$hung" = "h10.fedi.test h11.fedi.test h12.fedi.test h13.fedi.test" ] ||
    fail "expected the 4 hung hosts in flight, got: $hung"

wait "$RUN" || fail "run failed: $(tail -5 "$T/run.log")"
grep -q 'delivered=80 ' "$T/run.out" "$T/run.log" || fail "summary: $(grep summary "$T/run.out" "$T/run.log")"
moves=$(grep -o 'slow_pool_moves=[0-9]*' "$T/run.log" | cut -d= -f2)
echo "hosts moved to the slow pool: ${moves:-none}"
[ "${moves:-0}" -ge 4 ] || fail "expected at least the 4 hung hosts moved to the slow pool"
pass "hung hosts left the main slots to healthy ones (80 of 80 in ${took_ms} ms) and kept their connections"
