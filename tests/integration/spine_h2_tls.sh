#!/usr/bin/env bash
# The delivery spine over HTTP/2 + TLS: 10,000 signed deliveries over 100 host names to
# fedisim (which verifies every signature with OpenSSL, independently of Herald's signer).
# Every request must be accepted, none lost, none duplicated; Herald's stats must agree.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all

NACT=100; [ "$HD_ASAN" = 1 ] && NACT=20
TOTAL=$((NACT * 100))
gen_envelopes https "$TLS_PORT" "$NACT" 100 >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >"$T/enq.out" || fail "enqueue refused lines: $(grep -m3 false "$T/enq.out")"
[ "$(grep -c '"ok":true' "$T/enq.out")" = "$NACT" ] || fail "expected $NACT accepted envelopes"

timeout 300 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses 2>"$T/run.log" || { tail -20 "$T/run.log"; fail "herald run failed"; }
grep summary "$T/run.log"
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature,by_proto}' "$R"
[ "$(jq .deliveries.done "$T/stats.json")" = "$TOTAL" ] || fail "herald done != $TOTAL: $(head -c 300 "$T/stats.json")"
[ "$(jq '.deliveries.pending + .deliveries.retrying + .deliveries.failed' "$T/stats.json")" = 0 ] || fail "left over deliveries"
[ "$(jq .unique_pairs "$R")" = "$TOTAL" ] || fail "receiver saw $(jq .unique_pairs "$R") unique pairs, want $TOTAL"
[ "$(jq .duplicates "$R")" = 0 ] || fail "duplicates: $(jq .duplicates "$R")"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures: $(jq .bad_signature "$R")"
[ "$(jq '.by_proto.h2 // 0' "$R")" = "$TOTAL" ] || fail "not all over h2: $(jq -c .by_proto "$R")"
[ "$(jq '.hosts' "$R")" = 100 ] || fail "hosts: $(jq .hosts "$R")"
pass "$TOTAL deliveries over h2/TLS to 100 hosts, all verified, none lost or duplicated"
