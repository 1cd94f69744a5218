#!/usr/bin/env bash
# Ed25519 with RFC 9421: the actor has an RSA key and an Ed25519 key. ed.fedi.test verifies
# only RFC 9421 and knows only the Ed25519 public key (so an RSA-signed request fails there),
# and answers 401 with Accept-Signature naming ed25519. Herald must switch that host to
# RFC 9421 + Ed25519 after the first window, keep that in the store, and keep using
# draft-cavage + RSA for rsa.fedi.test (a separate receiver that knows only the RSA key).
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
openssl genpkey -algorithm ed25519 -out "$T/ed.pem" 2>/dev/null
"$HERALD" --db "$DB" key add --key-id "https://social.example/users/alice#ed25519-key" \
    --actor "https://social.example/users/alice" --pem "$T/ed.pem" >/dev/null || fail "add ed25519 key"
"$HERALD" --db "$DB" key list | grep -q "ed25519" || fail "key list does not show the Ed25519 key"
# bob has only an Ed25519 key (no RSA): RFC 9421 must sign with alg ed25519 for him
openssl genpkey -algorithm ed25519 -out "$T/bob.pem" 2>/dev/null
"$HERALD" --db "$DB" key add --key-id "https://social.example/users/bob#ed25519-key" \
    --actor "https://social.example/users/bob" --pem "$T/bob.pem" >/dev/null || fail "add bob's key"
"$HERALD" --db "$DB" key export-public >"$T/all.jsonl"
jq -c 'select(.key_id | endswith("#ed25519-key"))' "$T/all.jsonl" >"$T/ed.jsonl"
[ -s "$T/ed.jsonl" ] || fail "Ed25519 public key not exported"
cat >"$T/profiles.ini" <<'P'
[*]
signature = rfc9421
accept_signature = sig1=("@method" "@target-uri" "content-digest");alg="ed25519"
P
# the Ed25519-only receiver
start_fedisim --tls-port 0 --keys "$T/ed.jsonl" --verify all --profiles "$T/profiles.ini"
ED_PORT=$TLS_PORT
awk -v p="$ED_PORT" 'BEGIN { for (a = 1; a <= 40; a++)
  printf "{\"activity\":{\"id\":\"https://social.example/l%d\",\"type\":\"Like\",\"actor\":\"https://social.example/users/alice\",\"object\":\"https://x.example/n/%d\"},\"inboxes\":[\"https://ed.fedi.test:%d/inbox\"]}\n", a, a, p }' >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
timeout 120 "$HERALD" --db "$DB" run --until-idle --resolve "*:$ED_PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses --retry-base 60000 2>"$T/run.log" ||
    { tail "$T/run.log"; fail "run"; }
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{accepted, unique_pairs, bad_signature, verified_rfc9421, verified_cavage}' "$R"
[ "$(jq .unique_pairs "$R")" = 40 ] || fail "Ed25519 receiver accepted $(jq .unique_pairs "$R") of 40"
[ "$(jq .bad_signature "$R")" -le 4 ] || fail "more than the first window was refused"
[ "$(jq '.verified_rfc9421 // 0' "$R")" -ge 40 ] || fail "not verified as RFC 9421"
[ "$(jq .deliveries.done "$T/stats.json")" = 40 ] || fail "herald done != 40"
# a second run starts with Ed25519 right away (remembered in the store)
start_fedisim --tls-port 0 --keys "$T/ed.jsonl" --verify all --profiles "$T/profiles.ini"
awk -v p="$TLS_PORT" 'BEGIN { for (a = 1; a <= 10; a++)
  printf "{\"activity\":{\"id\":\"https://social.example/m%d\",\"type\":\"Like\",\"actor\":\"https://social.example/users/%s\",\"object\":\"https://x.example/n/%d\"},\"inboxes\":[\"https://ed.fedi.test:%d/inbox\"]}\n", a, (a % 2 ? "alice" : "bob"), a, p }' >"$T/env2.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env2.jsonl" >/dev/null || fail "enqueue 2"
timeout 120 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses 2>"$T/run2.log" || fail "run 2"
stop_fedisim
[ "$(jq .unique_pairs "$R")" = 10 ] || fail "run 2: accepted $(jq .unique_pairs "$R") of 10"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "run 2 did not start with Ed25519 (remembered scheme lost)"
pass "Accept-Signature: ed25519 switches a host to RFC 9421 + Ed25519, remembered across runs; an Ed25519-only actor signs with it too"
