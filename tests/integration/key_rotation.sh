#!/usr/bin/env bash
# Key rotation during a run, key import and key removal, through the CLI and the ingest
# endpoint. Alice's activities go to two hosts; one is paused. fedisim knows only Alice's
# new key, so every request to the first host (signed before the rotation with the old key,
# which loads the activities into the runner's cache) fails verification. The new key is
# imported over POST /v1/keys while the engine runs, the old one removed (it is no longer
# Alice's key: allowed although deliveries are queued), the new one refused with its count,
# then the paused host resumed: every delivery to it arrives signed with the new key, and
# fedisim verifies each one. Also: `herald key import` reports bad lines by number.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl
N=40
mkcerts
DB="$T/db"
ALICE=https://social.example/users/alice
K1="$ALICE#old-key"
K2="$ALICE#new-key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k1.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k2.pem" 2>/dev/null
"$HERALD" --db "$DB" key add --key-id "$K1" --actor "$ALICE" --pem "$T/k1.pem" >/dev/null
# fedisim knows only the new key
openssl pkey -in "$T/k2.pem" -pubout -out "$T/k2.pub" 2>/dev/null
jq -cn --arg k "$K2" --arg a "$ALICE" --rawfile p "$T/k2.pub" \
    '{key_id: $k, actor: $a, public_pem: $p}' >"$T/keys.jsonl"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
P=$TLS_PORT
awk -v p="$P" -v n="$N" -v a="$ALICE" 'BEGIN {
  for (i = 1; i <= n; i++)
    printf "{\"activity\":{\"id\":\"https://social.example/act/%d\",\"type\":\"Like\",\"actor\":\"%s\",\"object\":\"https://x.example/n/%d\"},\"inboxes\":[\"https://first.fedi.test:%d/inbox\",\"https://later.fedi.test:%d/inbox\"]}\n", i, a, i, p, p
}' >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
"$HERALD" --db "$DB" host pause later.fedi.test >/dev/null || fail "host pause"

SOCK="$T/ingest.sock"
printf 'token-%s\n' "$RANDOM$RANDOM" >"$T/token"
TOKEN=$(head -1 "$T/token")
# One loop thread: both hosts' deliveries share one activity cache. Retries wait an hour:
# the first host's failures stay failed, and nothing but the resumed host sends later.
"$HERALD" --db "$DB" run --threads 1 --listen "unix:$SOCK" --token-file "$T/token" \
    --resolve "*:$P:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    --retry-base 3600000 --retry-cap 3600000 2>"$T/run.log" &
RUN_PID=$!
PIDS+=("$RUN_PID")
hostreq() { curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$P:127.0.0.1" \
    "https://fedi.test:$P/_fedisim/stats" | jq -r --arg h "$1" --arg f "$2" '(.per_host[$h] // {})[$f] // 0'; }
for _ in $(seq 300); do
    [ "$(hostreq first.fedi.test bad_signature)" -ge "$N" ] && break
    sleep 0.1
done
bad1=$(hostreq first.fedi.test bad_signature)
[ "$bad1" -ge "$N" ] || fail "first host: $bad1 bad signatures, want >= $N (signed with the old key)"
[ "$(hostreq later.fedi.test requests)" = 0 ] || fail "paused host received requests"

# rotation over the endpoint, with a bad line between two blank ones
U=(curl -sS --max-time 20 --unix-socket "$SOCK" -H "Authorization: Bearer $TOKEN")
{ echo; echo '{"key_id":"x"}'; echo;
  jq -cn --arg k "$K2" --arg a "$ALICE" --rawfile p "$T/k2.pem" '{key_id: $k, actor: $a, pem: $p}'; } >"$T/rot.jsonl"
code=$("${U[@]}" -o "$T/rot.json" -w '%{http_code}' -X POST --data-binary "@$T/rot.jsonl" http://h/v1/keys)
[ "$code" = 200 ] || fail "POST /v1/keys: $code $(cat "$T/rot.json")"
[ "$(jq -c '[.imported, .bad, .errors[0].line]' "$T/rot.json")" = "[1,1,2]" ] ||
    fail "import answer: $(cat "$T/rot.json")"
code=$(curl -sS --max-time 5 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' -X POST \
    --data-binary "@$T/rot.jsonl" http://h/v1/keys)
[ "$code" = 401 ] || fail "POST /v1/keys without a token: $code"
grep -q "BEGIN" "$T/rot.json" && fail "key material in the answer"
"$HERALD" --db "$DB" key list | grep -q "new-key" || fail "new key not listed"

# the old key is no longer Alice's: removed although her deliveries are queued
code=$("${U[@]}" -o "$T/rm1.json" -w '%{http_code}' -X DELETE \
    --data-binary "$(jq -cn --arg k "$K1" '{key_id: $k}')" http://h/v1/keys)
[ "$code" = 200 ] || fail "DELETE /v1/keys old key: $code $(cat "$T/rm1.json")"
# the new key is her only one: refused with the count (N to each host)
code=$("${U[@]}" -o "$T/rm2.json" -w '%{http_code}' -X DELETE \
    --data-binary "$(jq -cn --arg k "$K2" '{key_id: $k}')" http://h/v1/keys)
[ "$code" = 409 ] || fail "DELETE /v1/keys only key: $code $(cat "$T/rm2.json")"
[ "$(jq .pending "$T/rm2.json")" = $((2 * N)) ] || fail "pending: $(cat "$T/rm2.json")"
if "$HERALD" --db "$DB" key remove --key-id "$K2" 2>"$T/rm.err"; then fail "CLI removed the only key"; fi
grep -q "$((2 * N)) deliveries" "$T/rm.err" || fail "CLI refusal: $(cat "$T/rm.err")"
code=$("${U[@]}" -o /dev/null -w '%{http_code}' -X DELETE --data-binary '{"key_id":"nope"}' http://h/v1/keys)
[ "$code" = 404 ] || fail "DELETE unknown key: $code"

"$HERALD" --db "$DB" host resume later.fedi.test >/dev/null || fail "host resume"
for _ in $(seq 300); do
    [ "$(hostreq later.fedi.test accepted)" -ge "$N" ] && break
    sleep 0.1
done
kill -TERM "$RUN_PID"; wait "$RUN_PID" || fail "run did not exit 0 on SIGTERM"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '.per_host' "$R"
[ "$(jq '.per_host["later.fedi.test"].accepted' "$R")" = "$N" ] ||
    fail "resumed host accepted $(jq -c '.per_host["later.fedi.test"]' "$R"), want $N"
[ "$(jq '.per_host["later.fedi.test"].bad_signature' "$R")" = 0 ] ||
    fail "resumed host: requests signed with the old key after the rotation"
pass "rotation over the endpoint while running: $N cached activities signed with the new key"

# CLI import: bad lines by number, the good ones stored, exit 1 because of the bad ones
{ jq -cn --arg p "$(cat "$T/k1.pem")" '{key_id: "https://social.example/users/bob#k", actor: "https://social.example/users/bob", pem: $p}'
  echo 'nonsense'
  jq -cn '{key_id: "https://social.example/users/eve#k", actor: "https://social.example/users/eve", pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}'
  jq -cn --arg p "$(cat "$T/k1.pem")" '{key_id: "https://social.example/users/carol#k", actor: "https://social.example/users/carol", pem: $p}'
} >"$T/imp.jsonl"
if "$HERALD" --db "$DB" key import "$T/imp.jsonl" >"$T/imp.out" 2>"$T/imp.err"; then
    fail "import with bad lines exited 0"
fi
grep -q "^herald key import: line 2: not a JSON object" "$T/imp.err" || fail "line 2: $(cat "$T/imp.err")"
grep -q "^herald key import: line 3: " "$T/imp.err" || fail "line 3: $(cat "$T/imp.err")"
grep -q "BEGIN\|AAAA" "$T/imp.err" && fail "key material on stderr"
grep -q "imported 2 keys, 2 bad lines, 4 lines" "$T/imp.out" || fail "summary: $(cat "$T/imp.out")"
[ "$("$HERALD" --db "$DB" key list | grep -c 'users/\(bob\|carol\)#k')" = 2 ] || fail "imported keys"
pass "key import: bad lines 2 and 3 reported by number, 2 keys stored"
