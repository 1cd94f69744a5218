#!/usr/bin/env bash
# Idle cleartext connections: a fan-out over h2c to 20 hosts (one thread, idle connections
# allowed for 60 s and without caps) closes each host's connection as soon as it goes idle
# for the first time with nothing waiting ("idle close", reason=cleartext-first in the debug
# log), since a new h2c connection costs less than keeping one; a second fan-out to the same
# hosts finds new connections (each host's origin went idle before) worth keeping: they go
# idle without that close. Every delivery arrives once.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
start_fedisim --h2c-port 0 --keys "$T/keys.jsonl" --verify all
N=20

gen_envelopes http "$H2C_PORT" 1 "$N" first >"$T/first.jsonl"
gen_envelopes http "$H2C_PORT" 1 "$N" second >"$T/second.jsonl"
"$HERALD" --db "$DB" enqueue "$T/first.jsonl" >/dev/null || fail "enqueue"
# The second fan-out is enqueued while the first runs, so that both meet one process.
( sleep 1; "$HERALD" --db "$DB" enqueue "$T/second.jsonl" >/dev/null ) &
ENQ=$!
timeout 120 "$HERALD" --db "$DB" --log-level debug run --threads 1 --idle-timeout 60s \
    --max-idle-conns 0 --max-idle-memory 0 --resolve "*:$H2C_PORT:127.0.0.1" \
    --allow-private-addresses 2>"$T/run.log" &
RUN=$!
wait "$ENQ"
for _ in $(seq 1 300); do
    [ "$("$HERALD" --db "$DB" stats --json | jq '.deliveries.done')" = $((2 * N)) ] && break
    sleep 0.1
done
sleep 0.5
kill -TERM "$RUN"; wait "$RUN" || true
first=$(grep -c 'msg="idle close" .*reason=cleartext-first' "$T/run.log" || true)
opened=$(grep -c 'msg="connected" .*proto=2' "$T/run.log" || true)
stop_fedisim
[ "$("$HERALD" --db "$DB" stats --json | jq '.deliveries.done')" = $((2 * N)) ] ||
    fail "herald done $("$HERALD" --db "$DB" stats --json | jq -c .deliveries) != $((2 * N))"
[ "$(jq .unique_pairs "$T/fedisim.report.json")" = $((2 * N)) ] ||
    fail "fedisim accepted $(jq .unique_pairs "$T/fedisim.report.json") != $((2 * N))"
[ "$(jq .duplicates "$T/fedisim.report.json")" = 0 ] || fail "duplicates"
# First fan-out: every host's first connection closed at its first idle moment (a host
# whose request was still waiting keeps it: a few fewer). Second: none more.
[ "$first" -ge $((N - 3)) ] && [ "$first" -le "$N" ] ||
    fail "$first first-idle closes of cleartext connections, want $((N - 3))-$N"
[ "$opened" -ge $((N + 1)) ] || fail "$opened h2 connections, want the second fan-out on new ones"
pass "h2c: $first of $N first connections closed at their first idle moment, $opened opened, $((2 * N)) delivered once"
