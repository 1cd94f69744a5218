#!/usr/bin/env bash
# Secrets: key material (RSA and Ed25519 private keys), the Signature header values Herald
# sent and the ingest bearer token never appear in any output of a full run: debug-level logs
# of `herald run`, stats, key/host/dead/gone listings (text and JSON), the metrics endpoint and
# the hosts view, nor in the errors for refused or damaged keys. Store files are 0600 (also
# under umask 000), the directory 0700, and a store directory that group or others can write
# is refused. (Core dumps: herald is non-dumpable, see tests/integration/nodump.sh.)
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl
HOSTILE="$HD_BUILD/tests/hostile_server"
mkcerts
DB="$T/db"
OUT="$T/out"
mkdir -p "$OUT"
(umask 000; "$HERALD" --db "$DB" federation mode open >/dev/null) || fail "create store"
setup_actor "$DB"
openssl genpkey -algorithm ed25519 -out "$T/alice-ed.pem" 2>/dev/null
"$HERALD" --db "$DB" key add --key-id "https://social.example/users/alice#ed25519-key" \
    --actor "https://social.example/users/alice" --pem "$T/alice-ed.pem" >"$OUT/keyadd-ed.out" 2>&1 ||
    fail "ed25519 key add: $(cat "$OUT/keyadd-ed.out")"
# refused and damaged keys: their error messages
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$T/small.pem" 2>/dev/null
"$HERALD" --db "$DB" key add --key-id "https://social.example/users/bob#k" \
    --actor "https://social.example/users/bob" --pem "$T/small.pem" >"$OUT/keyadd-small.out" 2>&1 &&
    fail "an RSA-1024 key was accepted"
sed '5s/./#/g' "$T/alice.pem" >"$T/damaged.pem"
"$HERALD" --db "$DB" key add --key-id "https://social.example/users/carol#k" \
    --actor "https://social.example/users/carol" --pem "$T/damaged.pem" >"$OUT/keyadd-bad.out" 2>&1 &&
    fail "a damaged key was accepted"

# receivers: one that accepts (and records the request heads), one that answers 403
start_recv() {
    "$HOSTILE" --mode "$2" --port-file "$T/$1.port" --tls-cert "$T/certs/server.pem" \
        --tls-key "$T/certs/server.key" --dump "$T/$1.heads" --max-seconds 120 \
        >"$T/$1.log" 2>&1 &
    PIDS+=($!)
    wait_file "$T/$1.port" 50
}
start_recv ok h1-ok
start_recv no h1-403
OKP=$(cat "$T/ok.port"); NOP=$(cat "$T/no.port")
for a in 1 2 3 4 5; do
    printf '{"activity":{"id":"https://social.example/act/s%d","type":"Create","actor":"https://social.example/users/alice","object":{"id":"https://social.example/n/s%d"}},"inboxes":["https://ok.fedi.test:%s/users/u%d/inbox","https://no.fedi.test:%s/users/u%d/inbox"]}\n' \
        "$a" "$a" "$OKP" "$a" "$NOP" "$a"
done >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >"$OUT/enqueue.out" 2>&1 || fail "enqueue"
printf '{"activity":{"id":"x","type":"Create","actor":"https://social.example/users/nokey"},"inboxes":["https://ok.fedi.test/inbox"]}\n' |
    "$HERALD" --db "$DB" enqueue - >"$OUT/enqueue-bad.out" 2>&1 || true
printf 'token-%s%s\n' "$RANDOM$RANDOM" "$RANDOM$RANDOM" >"$T/token"
chmod 600 "$T/token"
TOKEN=$(head -1 "$T/token")
PORT=$((20000 + RANDOM % 40000))
"$HERALD" --db "$DB" --log-level debug run --resolve "*:$OKP:127.0.0.1" --resolve "*:$NOP:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses --listen "127.0.0.1:$PORT" \
    --token-file "$T/token" 2>"$OUT/run.log" &
pid=$!
for _ in $(seq 100); do
    [ "$("$HERALD" --db "$DB" stats --json | jq '.deliveries.done + .deliveries.failed')" = 10 ] && break
    sleep 0.1
done
# the endpoint may come up after the first deliveries on a loaded machine: wait for it (bounded)
for _ in $(seq 150); do
    curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$PORT/metrics" && break
    sleep 0.1
done
curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.txt" || true
curl -s --max-time 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/hosts" >"$OUT/hosts-endpoint.json" || true
curl -s --max-time 5 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"activity":{"id":"https://social.example/act/api","type":"Create","actor":"https://social.example/users/alice"},"inboxes":["https://ok.fedi.test:'"$OKP"'/users/api/inbox"]}' \
    "http://127.0.0.1:$PORT/v1/activities" >"$OUT/endpoint-enqueue.json" || true
grep -q "\"ok\":true\|accepted\|seq" "$OUT/endpoint-enqueue.json" || fail "endpoint enqueue: $(cat "$OUT/endpoint-enqueue.json")"
sleep 1
kill -TERM "$pid"; wait "$pid" || fail "herald run exited non-zero"
[ -s "$OUT/metrics.txt" ] || fail "metrics endpoint gave nothing"
H() { "$HERALD" --db "$DB" --log-level debug "$@"; }
H stats >"$OUT/stats.txt" 2>&1
H stats --json >"$OUT/stats.json" 2>&1
H key list >"$OUT/keylist.txt" 2>&1
H key list --json >"$OUT/keylist.json" 2>&1 || true
H dead list >"$OUT/dead.txt" 2>&1
H dead list --json >"$OUT/dead.json" 2>&1
H host list --json >"$OUT/hosts.json" 2>&1
H host show ok.fedi.test >"$OUT/hostshow.txt" 2>&1
H gone list --json >"$OUT/gone.json" 2>&1
[ "$(jq .deliveries.done "$OUT/stats.json")" -ge 6 ] || fail "deliveries not made: $(cat "$OUT/stats.json")"
[ "$(jq .deliveries.failed "$OUT/stats.json")" = 5 ] || fail "no dead letters to list"

# what must never appear: every base64 line of the private keys that is not also in the public
# key (the public key is exported on purpose), a distinctive 24-character part of each, the
# Signature values received, and the bearer token
: >"$T/secrets"
for k in alice alice-ed; do
    openssl pkey -in "$T/$k.pem" -pubout 2>/dev/null >"$T/$k.pub"
    grep -v -- '-----' "$T/$k.pem" | while read -r l; do
        grep -qF -- "$l" "$T/$k.pub" && continue
        echo "$l"; echo "${l:8:24}"
    done >>"$T/secrets"
done
grep -o 'signature="[^"]*"' "$T/ok.heads" | cut -d'"' -f2 | sort -u >"$T/sigs"
[ "$(wc -l <"$T/sigs")" -ge 5 ] || fail "no Signature headers captured"
cat "$T/sigs" >>"$T/secrets"
echo "$TOKEN" >>"$T/secrets"
echo "PRIVATE KEY" >>"$T/secrets"
n=$(wc -l <"$T/secrets")
if grep -rF -f "$T/secrets" "$OUT" >"$T/leaks"; then
    head -5 "$T/leaks" | cut -c1-200
    fail "secret material in outputs (above)"
fi
grep -q "level=debug" "$OUT/run.log" || fail "run log is not at debug level"
pass "$n secret strings absent from $(ls "$OUT" | wc -l) outputs ($(wc -c <"$OUT/run.log") bytes of debug log)"

# store permissions: created under umask 000, still 0700 / 0600
[ "$(stat -c %a "$DB")" = 700 ] || fail "store dir mode $(stat -c %a "$DB")"
for f in "$DB"/*; do
    [ "$(stat -c %a "$f")" = 600 ] || fail "$f mode $(stat -c %a "$f")"
done
for m in 770 707 777 720; do
    chmod "$m" "$DB"
    if "$HERALD" --db "$DB" stats >"$T/perm.out" 2>&1; then fail "store dir mode $m accepted"; fi
    grep -q "writable by group or others" "$T/perm.out" || fail "mode $m: no clear message: $(cat "$T/perm.out")"
done
chmod 700 "$DB"
"$HERALD" --db "$DB" stats >/dev/null || fail "store unusable after chmod 700"
pass "store files 0600 and directory 0700 under umask 000; group/other-writable directory refused"
