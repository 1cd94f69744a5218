#!/usr/bin/env bash
# The delivery spine over HTTP/1.1: 10,000 signed deliveries over 100 host names to an
# HTTP/1.1-only TLS server (ALPN offers only http/1.1) and 2,000 to a plain-HTTP HTTP/1.1-only
# server (h2c prior knowledge refused, Herald falls back and remembers).
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
start_fedisim --tls-h1-port 0 --h1-port 0 --keys "$T/keys.jsonl" --verify all

NACT=100; NPLAIN=20
[ "$HD_ASAN" = 1 ] && { NACT=20; NPLAIN=5; }
TOTAL=$(((NACT + NPLAIN) * 100))
gen_envelopes https "$TLS_H1_PORT" "$NACT" 100 >"$T/env.jsonl"
gen_envelopes http "$H1_PORT" "$NPLAIN" 100 plain >>"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >"$T/enq.out" || fail "enqueue refused lines"
timeout 300 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_H1_PORT:127.0.0.1" \
    --resolve "*:$H1_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    2>"$T/run.log" || { tail -20 "$T/run.log"; fail "herald run failed"; }
grep summary "$T/run.log"
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature,by_proto}' "$R"
[ "$(jq .deliveries.done "$T/stats.json")" = "$TOTAL" ] || fail "herald done != $TOTAL"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "receiver unique pairs $(jq .unique_pairs "$R") != $TOTAL"
[ "$(jq .duplicates "$R")" = 0 ] || fail "duplicates"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures"
[ "$(jq '.by_proto.h1 // 0' "$R")" = "$TOTAL" ] || fail "not all over h1: $(jq -c .by_proto "$R")"
pass "$TOTAL deliveries over HTTP/1.1 (TLS and plain), all verified, none lost or duplicated"
