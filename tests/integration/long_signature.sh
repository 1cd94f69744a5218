#!/usr/bin/env bash
# Signature headers longer than a delivery's own room for them (1 KB): an actor with an
# RSA-4096 key under a 484-character key id. c.fedi.test takes draft-cavage (a Signature of
# about 1.4 KB), r.fedi.test only RFC 9421 (a Signature-Input over the 384 bytes kept for it),
# so Herald switches it after the first 401s. Every request must verify at both, none lost.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
ACTOR="https://social.example/users/long"
KID="$ACTOR#$(printf 'k%.0s' $(seq 450))"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out "$T/long.pem" 2>/dev/null
"$HERALD" --db "$DB" key add --key-id "$KID" --actor "$ACTOR" --pem "$T/long.pem" >/dev/null ||
    fail "add the RSA-4096 key with a long key id"
"$HERALD" --db "$DB" key export-public >"$T/keys.jsonl"
cat >"$T/profiles.ini" <<'P'
[r.fedi.test]
signature = rfc9421
accept_signature = sig1=("@method" "@target-uri" "content-digest");alg="rsa-v1_5-sha256"
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
awk -v p="$TLS_PORT" -v a="$ACTOR" 'BEGIN { for (i = 1; i <= 30; i++)
  printf "{\"activity\":{\"id\":\"https://social.example/ls%d\",\"type\":\"Like\",\"actor\":\"%s\",\"object\":\"https://x.example/n/%d\"},\"inboxes\":[\"https://c.fedi.test:%d/inbox\",\"https://r.fedi.test:%d/inbox\"]}\n", i, a, i, p, p }' >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
timeout 120 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses 2>"$T/run.log" ||
    { tail "$T/run.log"; fail "run"; }
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{accepted, unique_pairs, bad_signature, verified_rfc9421, verified_cavage}' "$R"
[ "$(jq .unique_pairs "$R")" = 60 ] || fail "accepted $(jq .unique_pairs "$R") of 60"
[ "$(jq '.verified_cavage // 0' "$R")" -ge 30 ] || fail "draft-cavage requests not verified"
[ "$(jq '.verified_rfc9421 // 0' "$R")" -ge 30 ] || fail "RFC 9421 requests not verified"
[ "$(jq .deliveries.done "$T/stats.json")" = 60 ] || fail "herald done != 60"
pass "RSA-4096 signatures under a 484-character key id, both schemes, all verified"
