#!/usr/bin/env bash
# fedisim --leaf-certs: a distinct certificate per virtual host, picked from the SNI name
# (mkcerts.sh DIR 8 makes DIR/leaf/0..7). Each presented certificate verifies against the
# test CA for its name, a name always gets the same one, several appear over 16 names, a
# handshake without SNI gets --cert, both TLS listeners agree, dead = refuse still refuses
# at SNI; then Herald delivers through it to 16 hosts, every request verified.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
C="$T/certs"
bash "$HD_SRC/bench/mkcerts.sh" "$C" 8 >/dev/null 2>&1 || fail "mkcerts.sh DIR 8 failed"
for i in $(seq 0 7); do
    [ -s "$C/leaf/$i.pem" ] && [ -s "$C/leaf/$i.key" ] || fail "missing leaf/$i.pem or .key"
    [ "$(stat -c %a "$C/leaf/$i.key")" = 600 ] || fail "leaf/$i.key mode $(stat -c %a "$C/leaf/$i.key")"
    openssl verify -CAfile "$C/ca.pem" "$C/leaf/$i.pem" >/dev/null || fail "leaf/$i.pem does not verify"
done
[ ! -e "$C/leaf/8.pem" ] || fail "more than 8 leaves"
# The files of a plain mkcerts.sh run are all still there.
for f in ca.pem ca.key server.pem server.key wrong.pem wrong.key; do [ -s "$C/$f" ] || fail "no $f"; done

# A directory without 0.pem is refused at start-up (exit 1, with a message).
mkdir "$T/empty"
rc=0
"$FEDISIM" --tls-port 0 --cert "$C/server.pem" --key "$C/server.key" --leaf-certs "$T/empty" \
    --max-seconds 5 >"$T/empty.log" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q 'no leaf certificate' "$T/empty.log" || fail "empty --leaf-certs: rc=$rc $(cat "$T/empty.log")"

DB="$T/db"
setup_actor "$DB"
printf '[dead-*.fedi.test]\ndead = refuse\n' >"$T/profiles.ini"
start_fedisim --tls-port 0 --tls-h1-port 0 --leaf-certs "$C/leaf" --profiles "$T/profiles.ini" \
    --keys "$T/keys.jsonl" --verify all

fpr() { openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//'; }
# hs PORT NAME: handshake with SNI NAME, the certificate checked against the CA and NAME;
# prints the fingerprint of the presented leaf.
hs() {
    local out="$T/hs.out"
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$2" -CAfile "$C/ca.pem" \
        -verify_hostname "$2" -verify_return_error </dev/null >"$out" 2>&1 ||
        fail "handshake for $2 on port $1 failed: $(grep -a -m3 -i 'error\|verify' "$out")"
    grep -aq 'Verify return code: 0 (ok)' "$out" || fail "$2: $(grep -a 'Verify return' "$out")"
    fpr <"$out"
}
declare -A LEAF
for i in $(seq 0 7); do LEAF[$(fpr <"$C/leaf/$i.pem")]=$i; done
SERVER=$(fpr <"$C/server.pem")

declare -A SEEN
for i in $(seq 1 16); do
    n="h$i.fedi.test"
    a=$(hs "$TLS_PORT" "$n")
    [ -n "${LEAF[$a]:-}" ] || fail "$n got a certificate that is not one of the leaves"
    b=$(hs "$TLS_PORT" "$n")
    c=$(hs "$TLS_H1_PORT" "$n")
    [ "$a" = "$b" ] || fail "$n: a different certificate on the second handshake"
    [ "$a" = "$c" ] || fail "$n: a different certificate on the http/1.1-only listener"
    SEEN[$a]=1
done
[ "${#SEEN[@]}" -ge 2 ] || fail "only ${#SEEN[@]} distinct certificate(s) over 16 names"
echo "16 names: ${#SEEN[@]} distinct leaf certificates"
# The name is lower-cased before hashing: H1.FEDI.TEST is h1.fedi.test's host.
[ "$(hs "$TLS_PORT" H1.FEDI.TEST)" = "$(hs "$TLS_PORT" h1.fedi.test)" ] || fail "case changes the certificate"

# ALPN follows the listener, not the leaf's context (both listeners share the leaves), in
# TLS 1.3 and 1.2; and sessions resume (TLS 1.2 through session IDs in this mode).
for v in -tls1_3 -tls1_2; do
    for pw in "$TLS_PORT h2" "$TLS_H1_PORT http/1.1"; do
        set -- $pw
        timeout 10 openssl s_client "$v" -connect "127.0.0.1:$1" -servername h3.fedi.test \
            -CAfile "$C/ca.pem" -verify_return_error -alpn h2,http/1.1 </dev/null >"$T/alpn.out" 2>&1 ||
            true # s_client may call the close after its EOF an error (with or without leaves)
        grep -aq 'Verify return code: 0 (ok)' "$T/alpn.out" || fail "$v handshake on port $1 failed"
        grep -aq "ALPN protocol: $2" "$T/alpn.out" || fail "$v port $1: want ALPN $2, $(grep -a ALPN "$T/alpn.out")"
        [ "$(fpr <"$T/alpn.out")" = "$(hs "$TLS_PORT" h3.fedi.test)" ] || fail "$v port $1: another certificate"
    done
    rm -f "$T/sess.pem"
    (sleep 0.5; echo) | timeout 10 openssl s_client "$v" -connect "127.0.0.1:$TLS_PORT" \
        -servername h4.fedi.test -CAfile "$C/ca.pem" -sess_out "$T/sess.pem" >"$T/s1.out" 2>&1 || true
    [ -s "$T/sess.pem" ] || fail "$v: no session saved"
    timeout 10 openssl s_client "$v" -connect "127.0.0.1:$TLS_PORT" -servername h4.fedi.test \
        -CAfile "$C/ca.pem" -sess_in "$T/sess.pem" </dev/null >"$T/s2.out" 2>&1 || true
    grep -aq '^Reused' "$T/s2.out" || fail "$v: session not resumed: $(grep -a -m1 -E '^(New|Reused)' "$T/s2.out")"
done

# No SNI: --cert (server.pem).
timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -noservername -CAfile "$C/ca.pem" \
    -verify_return_error </dev/null >"$T/nosni.out" 2>&1 || fail "no-SNI handshake failed"
[ "$(fpr <"$T/nosni.out")" = "$SERVER" ] || fail "no SNI did not get server.pem"

# dead = refuse: the handshake fails at SNI with unrecognized_name.
if timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername dead-1.fedi.test \
    -CAfile "$C/ca.pem" </dev/null >"$T/dead.out" 2>&1; then
    grep -aq 'BEGIN CERTIFICATE' "$T/dead.out" && fail "dead host got a certificate"
fi
grep -aq 'unrecognized name\|alert number 112' "$T/dead.out" || fail "dead host: no unrecognized_name alert"

# Herald through it: 5 activities x 16 hosts, h2 over TLS, each host with its own leaf.
NACT=5; NH=16; TOTAL=$((NACT * NH))
gen_envelopes https "$TLS_PORT" "$NACT" "$NH" >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >"$T/enq.out" || fail "enqueue refused lines"
timeout 120 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" \
    --ca-file "$C/ca.pem" --allow-private-addresses 2>"$T/run.log" || { tail -20 "$T/run.log"; fail "herald run failed"; }
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature,tls_failures,by_proto}' "$R"
[ "$(jq .deliveries.done "$T/stats.json")" = "$TOTAL" ] || fail "herald done != $TOTAL: $(head -c 300 "$T/stats.json")"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "receiver saw $(jq .unique_pairs "$R") unique pairs, want $TOTAL"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures: $(jq .bad_signature "$R")"
[ "$(jq '.verified_cavage + .verified_rfc9421' "$R")" = "$TOTAL" ] || fail "not all verified: $(jq -c '{verified_cavage,verified_rfc9421}' "$R")"
[ "$(jq '.by_proto.h2 // 0' "$R")" = "$TOTAL" ] || fail "not all over h2: $(jq -c .by_proto "$R")"
pass "leaf certificates per SNI host (${#SEEN[@]} of 8 over 16 names), no-SNI gets --cert, dead refuses; $TOTAL Herald deliveries to $NH hosts verified"
