#!/usr/bin/env bash
# TLS key-exchange groups: Herald offers X25519 first (its TLS 1.3 key share) and P-256 next.
# 1. Against fedisim (wolfSSL, every group): every handshake negotiates X25519.
# 2. Against Debian's nghttpd limited to P-256 (OpenSSL config "Groups = P-256"): the server
#    answers the X25519 share with a HelloRetryRequest, and every delivery still succeeds over
#    P-256, with full certificate and host-name verification.
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

# --- 2. nghttpd with P-256 only
cat >"$T/p256.cnf" <<'CNF'
openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Groups = P-256
CNF
PORT=$((20000 + RANDOM % 30000))
for _ in 1 2 3; do
    OPENSSL_CONF="$T/p256.cnf" nghttpd -a 127.0.0.1 --echo-upload "$PORT" \
        "$T/certs/server.key" "$T/certs/server.pem" >"$T/nghttpd.log" 2>&1 &
    NG=$!
    PIDS+=("$NG")
    for _ in $(seq 50); do
        (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        kill -0 "$NG" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$NG" 2>/dev/null && break
    PORT=$((20000 + RANDOM % 30000))
done
kill -0 "$NG" 2>/dev/null || fail "nghttpd did not start"
# The restriction must be in force, or this part would prove nothing.
if echo | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -servername h1.fedi.test \
    -groups X25519 >"$T/sclient.log" 2>&1; then
    grep -q 'Server Temp Key: X25519' "$T/sclient.log" &&
        fail "nghttpd accepted X25519 although its OpenSSL config allows only P-256"
fi
gen_envelopes https "$PORT" 10 10 ng >"$T/env2.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env2.jsonl" >/dev/null || fail "enqueue (nghttpd)"
timeout 120 "$HERALD" --db "$DB" --log-level debug run --until-idle \
    --resolve "*:$PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    2>"$T/run2.log" || { tail "$T/run2.log"; fail "run (nghttpd)"; }
grep summary "$T/run2.log"
n=$(grep -c 'msg="handshake done"' "$T/run2.log" || true)
p=$(grep -c 'msg="handshake done".* group=SECP256R1' "$T/run2.log" || true)
[ "$n" -ge 10 ] || fail "nghttpd: $n handshakes logged, want >= 10"
[ "$p" = "$n" ] || fail "nghttpd: $p of $n handshakes used P-256: $(grep -m3 'handshake done' "$T/run2.log")"
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
[ "$(jq .deliveries.done "$T/stats.json")" = 200 ] || fail "done $(jq .deliveries.done "$T/stats.json") != 200"
[ "$(jq '.deliveries.failed + .deliveries.retrying + .deliveries.pending' "$T/stats.json")" = 0 ] ||
    fail "left over deliveries"
pass "fedisim: $x handshakes over X25519; P-256-only nghttpd: $p handshakes over P-256 (HelloRetryRequest), 200 deliveries done"
