#!/usr/bin/env bash
# docs/openapi.yaml against the running endpoint: tools/openapi_check.mjs validates the
# document served at /v1/openapi.json (OpenAPI 3.1) and checks every documented route and
# response (status, media type, headers, body schema), including 429 over --max-queued and
# 503 while draining, and that every route the server dispatches is documented. The validators come from npm at pinned versions, cached under
# ${HD_NPM_CACHE:-~/.cache/herald/npm}/openapi (lib/npm_tools.sh).
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/npm_tools.sh"
need node; need npm; need curl
NPM_DIR=$(npm_tools openapi "${HD_NPM_OPENAPI[@]}") || fail "cannot install the validators"
DB="$T/db"
setup_actor "$DB"
# A port with nothing listening (connect failures, kept queued) and a server that accepts
# and never answers (a request that stays in flight, so that a drain lasts).
CLOSED=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
node -e 'const s=require("net").createServer(()=>{}).listen(0,"127.0.0.1",()=>{require("fs").writeFileSync(process.argv[1],String(s.address().port))})' \
    "$T/bh.port" &
PIDS+=("$!")
wait_file "$T/bh.port" || fail "blackhole server"
BH=$(cat "$T/bh.port")
for a in 1 2 3; do
    printf '{"activity":{"@context":"https://www.w3.org/ns/activitystreams","id":"https://social.example/act/s%d","type":"Create","actor":"https://social.example/users/alice","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/s%d","type":"Note","content":"hi"}},"inboxes":["http://h1.test:%d/u%d/inbox","http://h2.test:%d/u%d/inbox","http://slow.test:%d/u%d/inbox"]}\n' \
        "$a" "$a" "$CLOSED" "$a" "$CLOSED" "$a" "$BH" "$a"
done >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
(umask 077; echo "token-$RANDOM$RANDOM$RANDOM" >"$T/token")
"$HERALD" --db "$DB" run --listen "127.0.0.1:$PORT" --token-file "$T/token" \
    --resolve "*:$CLOSED:127.0.0.1" --resolve "*:$BH:127.0.0.1" --allow-private-addresses \
    --retry-base 3600000 --response-timeout 60000 --drain-timeout 4s --max-queued 12 \
    2>"$T/run.log" &
RUN=$!
PIDS+=("$RUN")
for _ in $(seq 100); do
    curl -s --max-time 1 "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
# A second actor's key for POST/DELETE /v1/keys (bob has no deliveries, so it can go).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/bob.pem" 2>/dev/null ||
    fail "openssl genpkey"
# The paths the server's sources route (compared with the check's route table): the literals
# of engine/ops/ingestsrv.c, the /v1/activities/ prefix of ingestsrv_v1.c, the dashboard's files.
SERVER_PATHS=$( {
    grep -o 'path_is(r, "[^"]*")' "$HD_SRC/engine/ops/ingestsrv.c" | sed 's/.*"\(.*\)")/\1/'
    grep -o 'pfx\[\] = "[^"]*"' "$HD_SRC/engine/ops/ingestsrv_v1.c" | sed 's/.*= "\(.*\)"/\1/'
    for f in "$HD_SRC"/engine/ops/web/*.html "$HD_SRC"/engine/ops/web/*.js "$HD_SRC"/engine/ops/web/*.css; do
        b=$(basename "$f"); [ "$b" = index.html ] && echo / || echo "/$b"
    done
    echo /v1/openapi.json
} | sort -u)
[ "$(echo "$SERVER_PATHS" | wc -l)" -ge 10 ] || fail "could not read the routes from the sources"
HD_NPM_DIR="$NPM_DIR" BASE="http://127.0.0.1:$PORT" TOKEN="$(cat "$T/token")" HERALD_PID=$RUN \
    SLOW_HOST=slow.test CLOSED_PORT=$CLOSED BOB_PEM="$T/bob.pem" SERVER_PATHS="$SERVER_PATHS" \
    timeout 120 node "$HD_SRC/tools/openapi_check.mjs" ||
    { tail -20 "$T/run.log"; fail "the endpoint does not match docs/openapi.yaml"; }
wait "$RUN" || true
! grep -q 'Sanitizer' "$T/run.log" || { grep -A20 'Sanitizer' "$T/run.log" | head -40; fail "sanitizer report"; }
pass "docs/openapi.yaml: every route and response checked against the running endpoint"
