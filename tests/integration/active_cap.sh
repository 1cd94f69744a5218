#!/usr/bin/env bash
# The active-host cap bounds connections (and so memory): with --threads 1
# --max-active-hosts 3, at most 3 hosts have requests in flight at any moment (sampled from
# the engine's live report), and every host is still served (FIFO slots, no starvation). The
# slow pool is off (--slow-hosts 0): it would add slots for hosts that wait long.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
printf '[*]\nlatency = fixed 20\n' >"$T/profiles.ini"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
gen_envelopes https "$TLS_PORT" 30 20 >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
"$HERALD" --db "$DB" run --until-idle --threads 1 --max-active-hosts 3 --slow-hosts 0 --max-inflight-host 4 \
    --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    2>"$T/run.log" &
RUN=$!
PIDS+=("$RUN")
max=0
for _ in $(seq 40); do
    kill -0 "$RUN" 2>/dev/null || break
    n=$("$HERALD" --db "$DB" stats --json | jq '[.hosts[] | select(.in_flight > 0)] | length')
    [ "$n" -gt "$max" ] && max=$n
    sleep 0.25
done
wait "$RUN" || fail "run failed"
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
echo "most hosts seen in flight at once: $max"
[ "$max" -le 3 ] || fail "$max hosts in flight at once, cap is 3"
[ "$(jq .deliveries.done "$T/stats.json")" = 600 ] || fail "not all 600 delivered"
pass "active-host cap holds (max $max of 3) and every host is served"
