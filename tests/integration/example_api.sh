#!/usr/bin/env bash
# tools/example_api (the C API example) runs as documented: a first run enqueues, a second
# run reports the duplicate, and the CLI sees what the API stored.
source "$(dirname "$0")/lib/common.sh"
need jq
EX="$HD_BUILD/tools/example_api"
[ -x "$EX" ] || fail "no $EX"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k.pem" 2>/dev/null ||
    fail "openssl genpkey"
"$EX" "$T/db" "$T/k.pem" >"$T/out1" || fail "first run: $(cat "$T/out1")"
grep -q '^enqueued seq=1 deliveries=1$' "$T/out1" || fail "first run said: $(cat "$T/out1")"
"$EX" "$T/db" "$T/k.pem" >"$T/out2" || fail "second run"
grep -q '^already enqueued as seq=1$' "$T/out2" || fail "second run said: $(cat "$T/out2")"
S=$("$HERALD" --db "$T/db" stats --json)
[ "$(jq .activities <<<"$S")" = 1 ] || fail "stats: $S"
[ "$(jq -r '.hosts[0].host' <<<"$S")" = mastodon.example ] || fail "host: $S"
"$HERALD" --db "$T/db" key list | grep -q 'https://social.example/users/alice#main-key' ||
    fail "key not listed"
pass "example_api: enqueue, duplicate, visible to the CLI"
