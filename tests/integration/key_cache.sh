#!/usr/bin/env bash
# A signing key evicted from a loop thread's key cache is loaded again from the store when a
# request still needs it. Many actors post once each, with the cache capped far below their
# number (--key-cache 16), and every inbox answers 503 about half the time: a retried
# delivery finds its activity cached but its key long evicted. Every delivery must arrive,
# signed with its own actor's key (fedisim verifies every signature), and none may end as a
# dead letter.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
NACT=2000
[ "$HD_ASAN" = 1 ] && NACT=500
NHOSTS=8
mkcerts
DB="$T/db"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k.pem" 2>/dev/null
"$HD_BUILD/tests/actors_bulk" "$DB" "$T/k.pem" "$NACT" || fail "actors_bulk"
"$HERALD" --db "$DB" key export-public >"$T/keys.jsonl"
[ "$(wc -l <"$T/keys.jsonl")" = "$NACT" ] || fail "want $NACT keys"
cat >"$T/profiles.ini" <<'P'
[*]
error_503 = 0.5
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini" \
    --seed 7
P=$TLS_PORT
awk -v na="$NACT" -v nh="$NHOSTS" -v p="$P" 'BEGIN {
    for (a = 1; a <= na; a++)
        printf "{\"activity\":{\"id\":\"https://social.example/act/%d\",\"type\":\"Note\",\"actor\":\"https://social.example/users/u%d\",\"content\":\"post %d\"},\"inboxes\":[\"https://h%d.fedi.test:%d/users/r%d/inbox\"]}\n", a, a, a, a % nh, p, a
}' >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >"$T/enq.out" || fail "enqueue: $(grep -m1 false "$T/enq.out")"
# Retries come quickly (50-200 ms), a 503's Retry-After pauses nothing (cap 0), and the
# breaker never opens: the run is about keys, not about backoff.
timeout -s TERM 300 "$HERALD" --db "$DB" run --until-idle --threads 2 --key-cache 16 \
    --resolve "*:$P:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    --retry-base 50 --retry-cap 200 --retry-after-cap 0 --max-attempts 1000 \
    --breaker-threshold 100000 2>"$T/run.log" || fail "run: $(tail -3 "$T/run.log")"
grep '^summary:' "$T/run.log"
"$HERALD" --db "$DB" dead list --json >"$T/dead.jsonl" || fail "dead list"
ndead=$(grep -c . "$T/dead.jsonl" || true)
[ "$ndead" = 0 ] || fail "$ndead dead letters, e.g. $(head -2 "$T/dead.jsonl")"
stop_fedisim
R="$T/fedisim.report.json"
jq '{requests, accepted, unique_pairs, duplicates, bad_signature, by_status}' -c "$R"
retried=$(jq '.by_status["503"] // 0' "$R")
[ "$retried" -ge $((NACT / 4)) ] || fail "only $retried 503s: the test did not retry enough"
[ "$(jq .unique_pairs "$R")" = "$NACT" ] || fail "want $NACT deliveries, fedisim accepted $(jq .unique_pairs "$R")"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures: $(jq -c .bad_signature_reasons "$R")"
grep -q 'delivered='"$NACT"' ' "$T/run.log" || fail "summary: $(grep '^summary:' "$T/run.log")"
pass "$NACT actors, key cache 16, $retried retried deliveries: all delivered, none dead"
