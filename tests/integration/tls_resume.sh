#!/usr/bin/env bash
# TLS session resumption across runs: fedisim keeps its ticket key in a file (--ticket-key-file,
# created 0600 when missing), Herald keeps the sessions in its store (table tlssess). A
# fan-out to N hosts, then both restarted (fedisim on the same port with the same key file)
# and a second fan-out to the same N hosts plus M new ones: the N resume, the M new hosts
# make full handshakes (a session is only offered to the host name and port it came from),
# nothing is lost. Then fedisim restarted with another key file and a certificate for the
# wrong name: the saved sessions cannot resume, the full handshake fails verification, and
# nothing is delivered to it.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
N=8; M=4; NACT=3
[ "$HD_ASAN" = 1 ] && N=5 && M=2 && NACT=2
KEYF="$T/tickets.key"

run_herald() { # LOG: one run to idle, sessions and deliveries kept in the store
    timeout 120 "$HERALD" --db "$DB" --log-level debug run --until-idle --idle-timeout 60s \
        --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
        2>"$1" || { grep -v ' debug ' "$1" | tail -20; fail "herald run failed ($1)"; }
}
report() { jq -r ".$1 // 0" "$T/fedisim.report.json"; }

# ---- run 1: every handshake is a full one ----
start_fedisim --tls-port 0 --ticket-key-file "$KEYF" --keys "$T/keys.jsonl" --verify all
PORT=$TLS_PORT
[ "$(stat -c %a "$KEYF")" = 600 ] || fail "ticket key file mode $(stat -c %a "$KEYF")"
[ "$(stat -c %s "$KEYF")" = 48 ] || fail "ticket key file size $(stat -c %s "$KEYF")"
cp "$KEYF" "$T/tickets.key.orig"
gen_envelopes https "$PORT" "$NACT" "$N" r1 >"$T/env1.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env1.jsonl" >/dev/null || fail "enqueue 1"
run_herald "$T/run1.log"
stop_fedisim
T1=$((NACT * N))
[ "$(report unique_pairs)" = "$T1" ] || fail "run 1: fedisim has $(report unique_pairs) pairs, want $T1"
[ "$(report tls_full)" -ge "$N" ] || fail "run 1: tls_full $(report tls_full) < $N"
echo "run 1: tls_full=$(report tls_full) tls_resumed=$(report tls_resumed)"
[ "$(stat -c %a "$DB/data.mdb")" = 600 ] || fail "store mode"
# The sessions are secrets: no log line carries their bytes (the ticket is not logged at all).
grep -qi 'ticket=' "$T/run1.log" && fail "a ticket in the log"

# ---- run 2: both restarted; the N known hosts resume, the M new ones do not ----
start_fedisim --tls-port "$PORT" --ticket-key-file "$KEYF" --keys "$T/keys.jsonl" --verify all
[ "$TLS_PORT" = "$PORT" ] || fail "fedisim came back on port $TLS_PORT, not $PORT"
cmp -s "$KEYF" "$T/tickets.key.orig" || fail "the ticket key file changed on restart"
gen_envelopes https "$PORT" "$NACT" "$((N + M))" r2 >"$T/env2.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env2.jsonl" >/dev/null || fail "enqueue 2"
run_herald "$T/run2.log"
grep -q 'TLS sessions loaded' "$T/run2.log" || fail "run 2 loaded no TLS session from the store"
stop_fedisim
T2=$((NACT * (N + M)))
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
[ "$(report unique_pairs)" = "$T2" ] || fail "run 2: fedisim has $(report unique_pairs) pairs, want $T2"
[ "$(jq .deliveries.done "$T/stats.json")" = "$((T1 + T2))" ] || fail "herald done $(jq .deliveries.done "$T/stats.json"), want $((T1 + T2))"
[ "$(report bad_signature)" = 0 ] || fail "bad signatures"
RES=$(report tls_resumed); FULL=$(report tls_full)
echo "run 2: tls_full=$FULL tls_resumed=$RES (N=$N known hosts, M=$M new)"
[ "$RES" -ge $((N - 1)) ] || fail "run 2: only $RES resumed handshakes, want >= $((N - 1))"
# Per host, from Herald's side: a new host never resumed (no session of another host was
# offered to it: fedisim, holding the key, would have accepted any of them).
for h in $(seq $((N + 1)) $((N + M))); do
    grep -q "tls established\" host=h$h.fedi.test resumed=0" "$T/run2.log" ||
        fail "h$h.fedi.test: no full handshake in run 2"
    grep -q "tls established\" host=h$h.fedi.test resumed=1" "$T/run2.log" &&
        fail "h$h.fedi.test resumed a session it never had"
done
[ "$FULL" -ge "$M" ] || fail "run 2: tls_full $FULL < $M new hosts"

# ---- run 3: another server for the same names (new ticket key, certificate for another
# name): the saved sessions do not resume, the full handshake is refused ----
cp "$T/certs/wrong.pem" "$T/certs/server.pem"
cp "$T/certs/wrong.key" "$T/certs/server.key"
start_fedisim --tls-port "$PORT" --ticket-key-file "$T/other.key" --keys "$T/keys.jsonl" --verify all
gen_envelopes https "$PORT" 1 "$N" r3 >"$T/env3.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env3.jsonl" >/dev/null || fail "enqueue 3"
timeout 60 "$HERALD" --db "$DB" --log-level debug run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses 2>"$T/run3.log" || true
stop_fedisim
[ "$(report requests)" = 0 ] || fail "run 3: the wrong server got $(report requests) requests"
[ "$(report tls_resumed)" = 0 ] || fail "run 3: $(report tls_resumed) handshakes resumed with a server that lacks the key"
"$HERALD" --db "$DB" stats --json >"$T/stats3.json"
[ "$(jq .deliveries.done "$T/stats3.json")" = "$((T1 + T2))" ] || fail "run 3 delivered to the wrong server"
grep -q 'certificate\|verif' "$T/run3.log" || fail "run 3: no verification failure in the log"
pass "run 2 resumed $RES of $N known hosts after both restarts, $M new hosts full, 0 lost ($((T1 + T2)) delivered); a server without the key and with the wrong certificate refused"
