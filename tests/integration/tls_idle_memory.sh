#!/usr/bin/env bash
# The idle cap by memory (--max-idle-memory, config key max_idle_memory): an idle TLS
# connection counts HD_CONN_IDLE_TLS_BYTES (100 KiB) and connections never reused may hold an
# eighth of the cap, so 2400k keeps 3 of them (one thread): a fan-out to 20 TLS hosts (each
# done after one busy spell) closes the others as they go idle, the one idle the longest
# first ("idle cap" in the debug log), and still delivers everything. With 0 (and
# no count cap) nothing is closed for the cap. Bad values are refused with a clear error.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
N=20

run_case() { # NAME MEMORY: one activity to N hosts, one thread, idle connections kept 60 s
    local name=$1 mem=$2
    gen_envelopes https "$TLS_PORT" 1 "$N" "$name" >"$T/$name.jsonl"
    "$HERALD" --db "$DB" enqueue "$T/$name.jsonl" >/dev/null || fail "$name: enqueue"
    timeout 120 "$HERALD" --db "$DB" --log-level debug run --until-idle --threads 1 \
        --idle-timeout 60s --max-idle-conns 0 --max-idle-memory "$mem" \
        --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
        2>"$T/$name.log" || { tail "$T/$name.log"; fail "$name: run"; }
    grep -c 'msg="idle cap"' "$T/$name.log" || true
}
capped=$(run_case capped 2400k)
# 20 connections go idle one after another, 3 may stay: 17 closed (a few fewer when a
# connection's host still had a request waiting as it went idle).
[ "$capped" -ge 14 ] && [ "$capped" -le 17 ] || fail "2400k: $capped idle connections closed, want 14-17"
free=$(run_case free 0)
[ "$free" = 0 ] || fail "0: $free idle connections closed for the cap, want 0"
stop_fedisim
[ "$(jq .unique_pairs "$T/fedisim.report.json")" = $((2 * N)) ] ||
    fail "fedisim accepted $(jq .unique_pairs "$T/fedisim.report.json") != $((2 * N))"

# Bad values: refused before anything runs.
if "$HERALD" --db "$DB" run --until-idle --max-idle-memory 12x 2>"$T/bad.err"; then
    fail "--max-idle-memory 12x accepted"
fi
grep -q 'max-idle-memory' "$T/bad.err" || fail "no clear error: $(cat "$T/bad.err")"
printf '[run]\nmax_idle_memory = lots\n' >"$T/bad.ini"
if "$HERALD" --db "$DB" run --config "$T/bad.ini" --until-idle 2>"$T/badini.err"; then
    fail "max_idle_memory = lots accepted"
fi
grep -q 'max_idle_memory' "$T/badini.err" || fail "no clear config error: $(cat "$T/badini.err")"
pass "2400k: $capped idle TLS connections closed by the memory cap; 0: none; $((2 * N)) delivered; bad values refused"
