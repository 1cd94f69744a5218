#!/usr/bin/env bash
# Herald against an independent HTTP/2 server: Debian's nghttpd over TLS (test CA made here),
# 1,000 signed deliveries over 10 host names, all answered 200 (nghttpd --echo-upload).
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need nghttpd
mkcerts
DB="$T/db"
setup_actor "$DB"
PORT=$((20000 + RANDOM % 30000))
for _ in 1 2 3; do
    nghttpd -a 127.0.0.1 --echo-upload "$PORT" "$T/certs/server.key" "$T/certs/server.pem" \
        >"$T/nghttpd.log" 2>&1 &
    NG=$!
    PIDS+=("$NG")
    sleep 0.5
    kill -0 "$NG" 2>/dev/null && break
    PORT=$((20000 + RANDOM % 30000))
done
kill -0 "$NG" 2>/dev/null || fail "nghttpd did not start"
gen_envelopes https "$PORT" 100 10 >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
timeout 120 "$HERALD" --db "$DB" run --until-idle --resolve "*:$PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses 2>"$T/run.log" || { tail "$T/run.log"; fail "run"; }
grep summary "$T/run.log"
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
[ "$(jq .deliveries.done "$T/stats.json")" = 1000 ] || fail "done $(jq .deliveries.done "$T/stats.json") != 1000"
[ "$(jq '.deliveries.failed + .deliveries.retrying + .deliveries.pending' "$T/stats.json")" = 0 ] || fail "left over"
pass "1000 deliveries to nghttpd over h2/TLS"
