#!/usr/bin/env bash
# fedisim --threads 2: SO_REUSEPORT listeners per worker, one shared count. Load over TLS h2
# and h2c from several connections must add up exactly, and a per-host rate limit (a token
# bucket shared by the workers) must let exactly its burst through.
set -euo pipefail
: "${HD_BUILD:?}" "${HD_SRC:?}"
FEDISIM=$HD_BUILD/bench/fedisim
[ -x "$FEDISIM" ] || { echo "skip: $FEDISIM not built"; exit 77; }
for t in curl openssl h2load; do
    command -v "$t" >/dev/null || { echo "skip: $t missing"; exit 77; }
done
T=$(mktemp -d /tmp/fedisim_threads.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && tail -20 "$T/log" >&2; exit 1; }
port() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$T/ready.json"; }
jnum() { grep -o "\"$1\": [0-9]*" "$2" | head -1 | awk '{print $2}'; }

"$HD_SRC/bench/mkcerts.sh" "$T/certs" >/dev/null
printf '[limited.fedi.test]\nrate = 0.01\nburst = 5\n' >"$T/profiles.ini"
"$FEDISIM" --threads 2 --bind 127.0.0.1 --cert "$T/certs/server.pem" \
    --key "$T/certs/server.key" --tls-port 0 --h2c-port 0 --h1-port 0 \
    --profiles "$T/profiles.ini" --ready-file "$T/ready.json" --report "$T/report.json" \
    --max-seconds 120 >"$T/log" 2>&1 &
PID=$!
for _ in $(seq 600); do
    [ -s "$T/ready.json" ] && break
    kill -0 "$PID" 2>/dev/null || { wait "$PID" && rc=0 || rc=$?; PID=; [ "$rc" = 77 ] && exit 77; fail "exited $rc"; }
    sleep 0.1
done
[ -s "$T/ready.json" ] || fail "not ready"
grep -q 'threads=2' "$T/log" || fail "not two threads: $(cat "$T/log")"
TLS=$(port tls_port); H2C=$(port h2c_port); H1=$(port h1_port)
printf '{"id":"https://o.test/act/1"}' >"$T/a1.json"
printf '{"id":"https://o.test/act/2"}' >"$T/a2.json"
CT='content-type: application/activity+json'

h2load -n 3000 -c 8 -m 10 -d "$T/a1.json" -H "$CT" -H ':authority: x.fedi.test' \
    "https://127.0.0.1:$TLS/inbox" >"$T/h1.out" 2>&1 || fail "h2load tls"
grep -q "3000 succeeded" "$T/h1.out" || fail "tls: $(grep requests: "$T/h1.out")"
h2load -n 2000 -c 8 -m 10 -d "$T/a2.json" -H "$CT" -H ':authority: x.fedi.test' \
    "http://127.0.0.1:$H2C/inbox" >"$T/h2.out" 2>&1 || fail "h2load h2c"
grep -q "2000 succeeded" "$T/h2.out" || fail "h2c: $(grep requests: "$T/h2.out")"
# 20 requests to the rate-limited host over 20 connections (spread over both workers).
ok=0
for i in $(seq 20); do
    s=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --http1.1 -X POST -H "$CT" \
        -H 'Host: limited.fedi.test' --data-binary @"$T/a1.json" "http://127.0.0.1:$H1/inbox")
    [ "$s" = 202 ] && ok=$((ok + 1))
done
[ "$ok" = 5 ] || fail "rate limit across workers: $ok accepted, want 5"

kill -TERM "$PID"
for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
wait "$PID" || fail "exit code $?"
PID=
R=$T/report.json
[ "$(jnum requests "$R")" = 5020 ] || fail "requests $(jnum requests "$R")"
[ "$(jnum accepted "$R")" = 5005 ] || fail "accepted $(jnum accepted "$R")"
[ "$(jnum unique_pairs "$R")" = 3 ] || fail "unique_pairs $(jnum unique_pairs "$R")"
[ "$(jnum duplicates "$R")" = 5002 ] || fail "duplicates $(jnum duplicates "$R")"
[ "$(jnum h2 "$R")" = 5000 ] || fail "h2 $(jnum h2 "$R")"
[ "$(jnum rate_limited "$R")" = 15 ] || fail "rate_limited $(jnum rate_limited "$R")"
[ "$(jnum connections "$R")" -ge 36 ] || fail "connections $(jnum connections "$R")"
echo "fedisim_threads: ok"
