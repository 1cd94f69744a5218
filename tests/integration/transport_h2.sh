#!/usr/bin/env bash
# HTTP/2: 2,000 POSTs over one TLS connection to nghttpd with many concurrent streams, h2c
# prior knowledge to nghttpd --no-tls, and an IP-literal origin verified against its IP SAN.
. "$(dirname "$0")/transport_lib.bash"
make_pki

start_nghttpd -v --echo-upload "$PKI/server.key" "$PKI/server.pem"
out=$(probe --url "https://h2.fedi.test:$PORT/inbox" --resolve "h2.fedi.test:$PORT:127.0.0.1" \
    --allow-private-addresses --ca-file "$PKI/ca.pem" --count 2000 --concurrency 300) ||
    fail "probe: $out"
echo "h2 tls: $out"
# nghttpd -v tags every line with its session id: count the sessions that carried requests
# (the readiness check of start_nghttpd is a bare TCP connect and gets an id too).
sessions=$(grep 'recv HEADERS' "$T/nghttpd.log" | grep -o '^\[id=[0-9]*\]' | sort -u | wc -l)
[ "$sessions" -eq 1 ] || fail "2000 requests used $sessions h2 connections, want 1"
expect_eq "$out" ok2xx 2000
expect_eq "$out" 2 2000          # versions.2 (first "2": key of the versions object)
expect_eq "$out" origin_version 2
expect_eq "$out" max_streams 100
expect_eq "$out" idle_after_shutdown 1

# Large request bodies go out under flow control; the echoed 700 KB responses are read and
# dropped past max_body (4096 per response kept).
head -c 700000 /dev/zero | tr '\0' 'a' >"$T/big.json"
out=$(probe --url "https://h2.fedi.test:$PORT/inbox" --resolve "h2.fedi.test:$PORT:127.0.0.1" \
    --allow-private-addresses --ca-file "$PKI/ca.pem" --count 10 --concurrency 10 \
    --body "$T/big.json") || fail "probe: $out"
echo "h2 big bodies: $out"
expect_eq "$out" ok2xx 10
expect_eq "$out" body_bytes 40960

out=$(probe --url "https://127.0.0.1:$PORT/inbox" --allow-private-addresses \
    --ca-file "$PKI/ca.pem" --count 50 --concurrency 50) || fail "probe: $out"
echo "h2 tls ip literal: $out"
expect_eq "$out" ok2xx 50

start_nghttpd --no-tls --echo-upload
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" --resolve "h2.fedi.test:$PORT:127.0.0.1" \
    --allow-private-addresses --count 1000 --concurrency 200) || fail "probe: $out"
echo "h2c: $out"
expect_eq "$out" ok2xx 1000
expect_eq "$out" origin_version 2
# IPv6 loopback, both as a --resolve answer and as a literal (skipped without ::1).
if grep -qs "00000000000000000000000000000001" /proc/net/if_inet6; then
    for _ in 1 2 3 4 5; do
        PORT=$((20000 + RANDOM % 40000))
        nghttpd -a ::1 --no-tls --echo-upload "$PORT" >/dev/null 2>&1 &
        LAST_PID=$!
        PIDS+=("$LAST_PID")
        sleep 0.3
        kill -0 "$LAST_PID" 2>/dev/null && break
    done
    out=$(probe --url "http://h2.fedi.test:$PORT/inbox" --resolve "h2.fedi.test:$PORT:[::1]" \
        --allow-private-addresses --count 20 --concurrency 10) || fail "probe: $out"
    echo "h2c over ::1: $out"
    expect_eq "$out" ok2xx 20
    out=$(probe --url "http://[::1]:$PORT/inbox" --allow-private-addresses --count 5) ||
        fail "probe: $out"
    expect_eq "$out" ok2xx 5
else
    echo "no ::1 here: IPv6 not checked"
fi
echo "transport_h2: ok"
