#!/usr/bin/env bash
# One trust store per run: a run to h2c hosts only never parses the system CA bundle (no
# "trust store loaded"), and a run over TLS with two loop threads parses its --ca-file once
# (both threads share it), verifies every host and delivers everything.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
start_fedisim --tls-port 0 --h2c-port 0 --keys "$T/keys.jsonl" --verify all

# --- h2c only, no --ca-file: the system bundle is never read
gen_envelopes http "$H2C_PORT" 2 6 c >"$T/h2c.jsonl"
"$HERALD" --db "$DB" enqueue "$T/h2c.jsonl" >/dev/null || fail "enqueue (h2c)"
timeout 120 "$HERALD" --db "$DB" --log-level debug run --until-idle --threads 2 \
    --resolve "*:$H2C_PORT:127.0.0.1" --allow-private-addresses \
    2>"$T/h2c.log" || { tail "$T/h2c.log"; fail "run (h2c)"; }
n=$(grep -c 'msg="trust store loaded"' "$T/h2c.log" || true)
[ "$n" = 0 ] || fail "h2c run loaded a trust store $n times: $(grep -m2 'trust store loaded' "$T/h2c.log")"

# --- TLS, two threads, --ca-file: parsed once
gen_envelopes https "$TLS_PORT" 2 12 s >"$T/tls.jsonl"
"$HERALD" --db "$DB" enqueue "$T/tls.jsonl" >/dev/null || fail "enqueue (tls)"
timeout 120 "$HERALD" --db "$DB" --log-level debug run --until-idle --threads 2 \
    --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    2>"$T/tls.log" || { tail "$T/tls.log"; fail "run (tls)"; }
n=$(grep -c 'msg="trust store loaded"' "$T/tls.log" || true)
[ "$n" = 1 ] || fail "TLS run with 2 threads loaded the trust store $n times, want 1"
h=$(grep -c 'msg="handshake done"' "$T/tls.log" || true)
[ "$h" -ge 12 ] || fail "$h handshakes logged, want >= 12"
stop_fedisim
[ "$(jq .unique_pairs "$T/fedisim.report.json")" = 36 ] ||
    fail "fedisim accepted $(jq .unique_pairs "$T/fedisim.report.json") != 36"

# --- a CA file that is not PEM: a clear error at start, nothing lost
echo "not a certificate" >"$T/bad.pem"
gen_envelopes https "$TLS_PORT" 1 2 b >"$T/bad.jsonl"
"$HERALD" --db "$DB" enqueue "$T/bad.jsonl" >/dev/null || fail "enqueue (bad)"
if timeout 60 "$HERALD" --db "$DB" run --until-idle --ca-file "$T/bad.pem" 2>"$T/bad.log"; then
    fail "run with a bad --ca-file succeeded"
fi
grep -q 'cannot load CA certificates' "$T/bad.log" || fail "no clear error: $(tail -3 "$T/bad.log")"
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
[ "$(jq .deliveries.pending "$T/stats.json")" = 2 ] ||
    fail "bad --ca-file: pending $(jq .deliveries.pending "$T/stats.json") != 2"
pass "h2c run: no trust store; TLS run, 2 threads: 1 trust store, $h handshakes, 36 delivered; bad --ca-file refused at start, 2 kept"
