#!/usr/bin/env bash
# fedisim edge cases: chunked and pipelined HTTP/1.1, Expect: 100-continue, body caps (413)
# on h1 and h2, --expect (missing / unexpected pairs), POST /_fedisim/reset, the connection
# cap, and the wrong-host certificate from mkcerts.sh.
set -euo pipefail
: "${HD_BUILD:?}" "${HD_SRC:?}"
FEDISIM=$HD_BUILD/bench/fedisim
[ -x "$FEDISIM" ] || { echo "skip: $FEDISIM not built"; exit 77; }
for t in curl openssl; do
    command -v "$t" >/dev/null || { echo "skip: $t missing"; exit 77; }
done
export LC_ALL=C
T=$(mktemp -d /tmp/fedisim_edge.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && tail -20 "$T/log" >&2; exit 1; }
port() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$T/ready.json"; }
jnum() { grep -o "\"$1\": [0-9]*" "$2" | head -1 | awk '{print $2}'; }
start() {
    rm -f "$T/ready.json"
    "$FEDISIM" --bind 127.0.0.1 --ready-file "$T/ready.json" --report "$T/report.json" \
        --max-seconds 120 "$@" >"$T/log" 2>&1 &
    PID=$!
    for _ in $(seq 600); do
        [ -s "$T/ready.json" ] && return 0
        if ! kill -0 "$PID" 2>/dev/null; then
            wait "$PID" && rc=0 || rc=$?
            PID=
            [ "$rc" = 77 ] && { echo "skip: no io_uring"; exit 77; }
            fail "fedisim exited with $rc"
        fi
        sleep 0.1
    done
    fail "fedisim not ready"
}
stop() {
    kill -TERM "$PID"
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    wait "$PID" || fail "fedisim exit code $?"
    PID=
}
CT='Content-Type: application/activity+json'
"$HD_SRC/bench/mkcerts.sh" "$T/certs" >/dev/null
for i in 1 2 3 4; do printf '{"id":"https://o.test/act/%s"}' "$i" >"$T/a$i.json"; done
cat >"$T/expect.jsonl" <<JSONL
{"id":"https://o.test/act/1","inbox":"http://a.fedi.test/inbox"}
{"id":"https://o.test/act/2","inbox":"http://a.fedi.test/inbox"}
{"activity_id":"https://o.test/act/3","inbox":"http://b.fedi.test/users/x/inbox"}
JSONL
start --h1-port 0 --h2c-port 0 --expect "$T/expect.jsonl" --cert "$T/certs/server.pem" \
    --key "$T/certs/server.key"
H1=$(port h1_port); H2C=$(port h2c_port)
post() { curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -X POST -H "$CT" "$@"; }

# Chunked body (listed in --expect) and Expect: 100-continue (listed).
s=$(post --http1.1 -H 'Transfer-Encoding: chunked' -H 'Host: a.fedi.test' \
    --data-binary @"$T/a1.json" "http://127.0.0.1:$H1/inbox")
[ "$s" = 202 ] || fail "chunked: $s"
s=$(post --http1.1 -H 'Expect: 100-continue' -H 'Host: A.Fedi.Test' --data-binary @"$T/a2.json" \
    "http://127.0.0.1:$H1/inbox")
[ "$s" = 202 ] || fail "expect-continue: $s"
# Not listed in --expect.
s=$(post --http1.1 -H 'Host: a.fedi.test' --data-binary @"$T/a4.json" "http://127.0.0.1:$H1/inbox")
[ "$s" = 202 ] || fail "unlisted: $s"
# Two pipelined requests in one write, answered in order on one connection.
exec 3<>"/dev/tcp/127.0.0.1/$H1"
b=$(cat "$T/a4.json")
printf 'POST /p1 HTTP/1.1\r\nHost: c.fedi.test\r\nContent-Length: %d\r\n\r\n%sPOST /p2 HTTP/1.1\r\nHost: c.fedi.test\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "${#b}" "$b" "${#b}" "$b" >&3
resp=$(timeout 5 cat <&3 || true)
exec 3>&-
[ "$(printf '%s' "$resp" | grep -c '^HTTP/1.1 202')" = 2 ] || fail "pipelining: '$resp'"
# Body over 1 MiB: 413 on h1 (before the body is read) and on h2.
head -c 1100000 /dev/zero | tr '\0' 'a' >"$T/big.txt"
s=$(post --http1.1 -H 'Host: a.fedi.test' --data-binary @"$T/big.txt" "http://127.0.0.1:$H1/inbox")
[ "$s" = 413 ] || fail "h1 413: $s"
s=$(post --http2-prior-knowledge -H 'Host: a.fedi.test' --data-binary @"$T/big.txt" \
    "http://127.0.0.1:$H2C/inbox")
[ "$s" = 413 ] || fail "h2 413: $s"
# Header block over 16 KiB: 431.
long=$(head -c 20000 /dev/zero | tr '\0' 'h')
s=$(post --http1.1 -H 'Host: a.fedi.test' -H "X-Long: $long" --data-binary @"$T/a1.json" \
    "http://127.0.0.1:$H1/inbox")
[ "$s" = 431 ] || fail "h1 431: $s"
curl -sS --max-time 5 "http://127.0.0.1:$H1/_fedisim/stats" >"$T/stats.json"
grep -q '"expected":3,"missing":1,"unexpected":3' "$T/stats.json" || fail "expect: $(cat "$T/stats.json")"
grep -q '"accepted":5,' "$T/stats.json" || fail "accepted: $(cat "$T/stats.json")"
# Reset clears the counters (the expected list stays).
s=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$H1/_fedisim/reset")
[ "$s" = 200 ] || fail "reset: $s"
curl -sS --max-time 5 "http://127.0.0.1:$H1/_fedisim/stats" >"$T/stats.json"
grep -q '"requests":0,"accepted":0,"unique_pairs":0' "$T/stats.json" || fail "after reset: $(cat "$T/stats.json")"
grep -q '"expected":3,"missing":3' "$T/stats.json" || fail "expect after reset"
stop

# Connection cap: with --max-conns 2 the third connection is closed at once.
start --h1-port 0 --max-conns 2
H1=$(port h1_port)
exec 3<>"/dev/tcp/127.0.0.1/$H1" 4<>"/dev/tcp/127.0.0.1/$H1"
sleep 0.3
exec 5<>"/dev/tcp/127.0.0.1/$H1"
rest=$(timeout 3 cat <&5 || echo timeout)
[ -z "$rest" ] || fail "third connection not closed: '$rest'"
exec 3>&- 4>&- 5>&-
stop
[ "$(jnum connections_over_limit "$T/report.json")" -ge 1 ] || fail "connections_over_limit"

# The wrong-host certificate: a client checking names refuses it.
start --tls-port 0 --cert "$T/certs/wrong.pem" --key "$T/certs/wrong.key"
TLS=$(port tls_port)
rc=0; curl -sS -o /dev/null --max-time 5 --cacert "$T/certs/ca.pem" \
    --resolve "a.fedi.test:$TLS:127.0.0.1" "https://a.fedi.test:$TLS/_fedisim/stats" 2>/dev/null || rc=$?
[ "$rc" = 60 ] || [ "$rc" = 51 ] || fail "wrong cert accepted: rc=$rc"
s=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$T/certs/ca.pem" \
    --resolve "wrong.example:$TLS:127.0.0.1" "https://wrong.example:$TLS/_fedisim/stats")
[ "$s" = 200 ] || fail "wrong.example with its own cert: $s"
stop
echo "fedisim_edge: ok"
