#!/usr/bin/env bash
# HTTP/1.1: h2c refused -> fallback, keep-alive reuse (plain and TLS without ALPN h2), idle
# close, and misbehaving servers classified correctly.
. "$(dirname "$0")/transport_lib.bash"
make_pki
R() { echo "--resolve h1.fedi.test:$PORT:127.0.0.1 --allow-private-addresses"; }

# Plain: the h2c preface gets a 400, the origin falls back to HTTP/1.1 and stays there.
start_tool h1_server
out=$(probe --url "http://h1.fedi.test:$PORT/inbox" $(R) --count 300 --concurrency 20 \
    --max-h1-conns 4) || fail "probe: $out"
echo "h1 plain: $out"
expect_eq "$out" ok2xx 300
expect_eq "$out" origin_version 1
conns=$(stat_of connections)
[ "$conns" -le 5 ] || fail "keep-alive not reused: $conns connections (1 probe + 4 max)"

# h2c refused by closing the connection instead of answering.
start_tool h1_server --mode preface-close
out=$(probe --url "http://h1.fedi.test:$PORT/inbox" $(R) --count 20 --concurrency 5) ||
    fail "probe: $out"
echo "h1 preface-close: $out"
expect_eq "$out" ok2xx 20

# TLS without ALPN h2: HTTP/1.1 over TLS, keep-alive.
start_tool h1_server --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key"
out=$(probe --url "https://h1.fedi.test:$PORT/inbox" $(R) --ca-file "$PKI/ca.pem" --count 300 \
    --concurrency 20 --max-h1-conns 3) || fail "probe: $out"
echo "h1 tls: $out"
expect_eq "$out" ok2xx 300
expect_eq "$out" origin_version 1
conns=$(stat_of connections)
[ "$conns" -le 3 ] || fail "TLS keep-alive not reused: $conns connections"

# A reconnect after an idle close resumes the TLS session of the first connection.
out=$(probe --url "https://h1.fedi.test:$PORT/inbox" $(R) --ca-file "$PKI/ca.pem" --count 3 \
    --rounds 2 --pause-ms 500 --idle-timeout-ms 100 -v 2>"$T/resume.log") || fail "probe: $out"
echo "h1 tls resume: $out"
expect_eq "$out" ok2xx 6
grep -q 'tls established.*resumed=1' "$T/resume.log" || fail "no TLS session resumption"
expect_eq "$out" tls_handshakes 2
expect_eq "$out" tls_resumed 1

# A new connection per request (Connection: close) over TLS, several at once, all resuming:
# a session must never be offered with another connection's ticket (BAD_BINDER).
start_tool h1_server --mode close --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key"
out=$(probe --url "https://h1.fedi.test:$PORT/inbox" $(R) --ca-file "$PKI/ca.pem" --count 100 \
    --concurrency 20) || fail "probe: $out"
echo "h1 tls close: $out"
expect_eq "$out" ok2xx 100

# Idle connections are closed after idle_timeout_ms; the next batch reconnects.
start_tool h1_server
out=$(probe --url "http://h1.fedi.test:$PORT/inbox" $(R) --count 20 --concurrency 1 \
    --rounds 2 --pause-ms 600 --idle-timeout-ms 200) || fail "probe: $out"
echo "h1 idle: $out"
expect_eq "$out" ok2xx 40 # 20 per round
conns=$(stat_of connections)
[ "$conns" -eq 3 ] || fail "idle close: $conns connections, want 3 (probe, round 1, round 2)"

# Idle connections are also capped by count, the oldest idle closed first: 3 keep-alive
# connections go idle after round 1; with a cap of 1, two of them close at once, so round 2
# opens two more (1 probe + 3 + 2); without the cap (0) the 3 serve round 2 as well.
for cap in 1 0; do
    start_tool h1_server
    out=$(probe --url "http://h1.fedi.test:$PORT/inbox" $(R) --count 30 --concurrency 3 \
        --max-h1-conns 3 --rounds 2 --pause-ms 300 --idle-timeout-ms 10000 --max-idle-conns $cap) ||
        fail "probe: $out"
    echo "h1 idle cap $cap: $out"
    expect_eq "$out" ok2xx 60
    conns=$(stat_of connections)
    want=$([ "$cap" = 1 ] && echo 6 || echo 4)
    [ "$conns" -eq "$want" ] || fail "idle cap $cap: $conns connections, want $want"
done

# Retry-After passes through; chunked and close-delimited bodies.
start_tool h1_server --status 429 --retry-after 120 --mode chunked \
    --accept-signature 'sig1=("@method" "@target-uri");alg=ed25519'
out=$(probe --url "http://h1.fedi.test:$PORT/inbox" $(R) --count 5 --concurrency 5) ||
    fail "probe: $out"
echo "h1 429: $out"
expect_eq "$out" 429 5
expect_eq "$out" body_bytes 25
printf '%s' "$out" | grep -q '"retry_after":"120"' || fail "Retry-After not passed: $out"
printf '%s' "$out" | grep -q "\"accept_signature\":\"sig1=('@method' '@target-uri');alg=ed25519\"" ||
    fail "Accept-Signature not passed: $out"
start_tool h1_server --mode close
out=$(probe --url "http://h1.fedi.test:$PORT/inbox" $(R) --count 10 --concurrency 2) ||
    fail "probe: $out"
expect_eq "$out" ok2xx 10

# Misbehaviour: malformed, oversized headers, and bodies that never end.
check_err() { # mode error-key
    start_tool h1_server --mode "$1"
    out=$(probe --url "http://h1.fedi.test:$PORT/inbox" $(R) --count 4 --concurrency 2 \
        --response-timeout-ms 600) || fail "probe: $out"
    echo "h1 $1: $out"
    expect_eq "$out" "$2" 4
}
check_err garbage protocol
check_err big-headers too_large
check_err silent timeout_response
check_err lying-cl timeout_response
check_err trickle timeout_response
echo "transport_h1: ok"
