#!/usr/bin/env bash
# TLS key-exchange groups: Herald offers X25519 first (its TLS 1.3 key share) and P-256 next.
# 1. Against fedisim (wolfSSL, every group): every handshake negotiates X25519.
# 2. Against Debian's nghttpd limited to P-256 (OpenSSL config "Groups = P-256"): the server
#    answers the X25519 share with a HelloRetryRequest, and every delivery still succeeds over
#    P-256, with full certificate and host-name verification.
# 3. Against nghttpd limited to TLS 1.2 (the ServerKeyExchange signature goes through the same
#    ECDSA verification as TLS 1.3's CertificateVerify, see engine/net/tls_pk.h): nghttpd picks
#    P-256 for TLS 1.2 ECDHE whatever the client's order.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need nghttpd
mkcerts
DB="$T/db"
setup_actor "$DB"

# --- 1. fedisim: X25519
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
gen_envelopes https "$TLS_PORT" 5 20 fs >"$T/env1.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env1.jsonl" >/dev/null || fail "enqueue (fedisim)"
timeout 120 "$HERALD" --db "$DB" --log-level debug run --until-idle \
    --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    2>"$T/run1.log" || { tail "$T/run1.log"; fail "run (fedisim)"; }
stop_fedisim
n=$(grep -c 'msg="handshake done"' "$T/run1.log" || true)
x=$(grep -c 'msg="handshake done".* group=X25519' "$T/run1.log" || true)
[ "$n" -ge 20 ] || fail "fedisim: $n handshakes logged, want >= 20"
[ "$x" = "$n" ] || fail "fedisim: $x of $n handshakes used X25519: $(grep -m3 'handshake done' "$T/run1.log")"
[ "$(jq .unique_pairs "$T/fedisim.report.json")" = 100 ] || fail "fedisim accepted $(jq .unique_pairs "$T/fedisim.report.json") != 100"

# nghttpd_case NAME "OPENSSL CONF LINES" NACT WANT_VERSION WANT_GROUP [REFUSED_GROUP]: nghttpd
# configured by those system_default lines, NACT activities to 10 hosts; every handshake
# must show WANT_VERSION and WANT_GROUP. With REFUSED_GROUP, openssl s_client offering only
# that group must first fail (the restriction is in force, or the case would prove nothing).
nghttpd_case() {
    local name=$1 conf=$2 nact=$3 ver=$4 group=$5 refused=${6:-} port ng n g
    printf 'openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\n%s\n' \
        "$conf" >"$T/$name.cnf"
    port=$((20000 + RANDOM % 30000))
    for _ in 1 2 3; do
        OPENSSL_CONF="$T/$name.cnf" nghttpd -a 127.0.0.1 --echo-upload "$port" \
            "$T/certs/server.key" "$T/certs/server.pem" >"$T/$name.nghttpd.log" 2>&1 &
        ng=$!
        PIDS+=("$ng")
        for _ in $(seq 50); do
            (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            kill -0 "$ng" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$ng" 2>/dev/null && break
        port=$((20000 + RANDOM % 30000))
    done
    kill -0 "$ng" 2>/dev/null || fail "$name: nghttpd did not start"
    if [ -n "$refused" ] && echo | timeout 10 openssl s_client -connect "127.0.0.1:$port" \
        -servername h1.fedi.test -groups "$refused" >"$T/$name.sclient" 2>&1; then
        grep -q "Server Temp Key: .*$refused" "$T/$name.sclient" &&
            fail "$name: nghttpd accepted $refused although its OpenSSL config refuses it"
    fi
    gen_envelopes https "$port" "$nact" 10 "$name" >"$T/$name.jsonl"
    "$HERALD" --db "$DB" enqueue "$T/$name.jsonl" >/dev/null || fail "$name: enqueue"
    timeout 120 "$HERALD" --db "$DB" --log-level debug run --until-idle \
        --resolve "*:$port:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
        2>"$T/$name.run.log" || { tail "$T/$name.run.log"; fail "$name: herald run"; }
    kill "$ng" 2>/dev/null || true
    n=$(grep -c 'msg="handshake done"' "$T/$name.run.log" || true)
    g=$(grep -c "msg=\"handshake done\" version=$ver group=$group " "$T/$name.run.log" || true)
    [ "$n" -ge 10 ] || fail "$name: $n handshakes logged, want >= 10"
    [ "$g" = "$n" ] ||
        fail "$name: $g of $n handshakes with $ver/$group: $(grep -m3 'handshake done' "$T/$name.run.log")"
    DONE=$((DONE + nact * 10))
    "$HERALD" --db "$DB" stats --json >"$T/stats.json"
    [ "$(jq .deliveries.done "$T/stats.json")" = "$DONE" ] ||
        fail "$name: done $(jq .deliveries.done "$T/stats.json") != $DONE"
    [ "$(jq '.deliveries.failed + .deliveries.retrying + .deliveries.pending' "$T/stats.json")" = 0 ] ||
        fail "$name: left over deliveries"
    echo "$name: $n handshakes, all $ver with $group; $((nact * 10)) deliveries done"
}
DONE=100 # fedisim's

# --- 2. TLS 1.3, P-256 only: HelloRetryRequest from the X25519 share to P-256
nghttpd_case p256 "Groups = P-256" 10 TLSv1.3 SECP256R1 X25519
# --- 3. TLS 1.2 (ECDHE with the server's choice, P-256)
nghttpd_case tls12 "Protocol = ALL, -TLSv1.3" 5 TLSv1.2 SECP256R1
pass "fedisim: $x handshakes over X25519; P-256-only nghttpd: HelloRetryRequest to P-256; TLS 1.2 nghttpd: P-256; $DONE deliveries done"
