#!/usr/bin/env bash
# Failure classification: certificate verification (wrong host, untrusted, IP not in SAN,
# system bundle), private addresses, connect refused, connect timeout, TLS timeout, and
# falling through to the next resolved address.
. "$(dirname "$0")/transport_lib.bash"
make_pki

start_tool h1_server --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key"
GOOD=$PORT
out=$(probe --url "https://wrong.fedi.test:$GOOD/inbox" --resolve "wrong.fedi.test:$GOOD:127.0.0.1" \
    --allow-private-addresses --ca-file "$PKI/ca.pem" --count 3 --concurrency 3) || fail "$out"
echo "wrong host: $out"
expect_eq "$out" tls_verify 3
out=$(probe --url "https://h1.fedi.test:$GOOD/inbox" --resolve "h1.fedi.test:$GOOD:127.0.0.1" \
    --allow-private-addresses --count 2) || fail "$out"
echo "system CA bundle does not trust the test CA: $out"
expect_eq "$out" tls_verify 2

start_tool h1_server --tls-cert "$PKI/self.pem" --tls-key "$PKI/self.key"
out=$(probe --url "https://h1.fedi.test:$PORT/inbox" --resolve "h1.fedi.test:$PORT:127.0.0.1" \
    --allow-private-addresses --ca-file "$PKI/ca.pem" --count 2) || fail "$out"
echo "untrusted: $out"
expect_eq "$out" tls_verify 2

start_tool h1_server --tls-cert "$PKI/noip.pem" --tls-key "$PKI/noip.key"
out=$(probe --url "https://127.0.0.1:$PORT/inbox" --allow-private-addresses \
    --ca-file "$PKI/ca.pem" --count 2) || fail "$out"
echo "IP not in SAN: $out"
expect_eq "$out" tls_verify 2

# The address guard, on literals and on resolved names.
out=$(probe --url "https://127.0.0.1:$GOOD/inbox" --ca-file "$PKI/ca.pem" --count 2) || fail "$out"
echo "private literal: $out"
expect_eq "$out" private_addr 2
out=$(probe --url "https://h1.fedi.test:$GOOD/inbox" --resolve "h1.fedi.test:$GOOD:127.0.0.1" \
    --ca-file "$PKI/ca.pem" --count 2) || fail "$out"
echo "private resolved: $out"
expect_eq "$out" private_addr 2

# Next address after a refused one (nothing listens on 127.0.0.2).
out=$(probe --url "https://h1.fedi.test:$GOOD/inbox" \
    --resolve "h1.fedi.test:$GOOD:127.0.0.2,127.0.0.1" --allow-private-addresses \
    --ca-file "$PKI/ca.pem" --count 3) || fail "$out"
echo "second address: $out"
expect_eq "$out" ok2xx 3

# Connect refused: a port that was just ours and is now closed.
start_tool h1_server
CLOSED=$PORT
kill "$LAST_PID"; wait "$LAST_PID" 2>/dev/null
out=$(probe --url "http://h1.fedi.test:$CLOSED/inbox" --resolve "h1.fedi.test:$CLOSED:127.0.0.1" \
    --allow-private-addresses --count 2) || fail "$out"
echo "refused: $out"
expect_eq "$out" connect 2

# Connect timeout: a listener with a full backlog that never accepts drops our SYN.
start_tool h1_server --mode no-accept
for _ in 1 2 3; do
    (timeout 10 bash -c "exec 5<>/dev/tcp/127.0.0.1/$PORT; sleep 10" 2>/dev/null) &
    PIDS+=($!)
    sleep 0.1
done
# Only meaningful if this kernel drops SYNs to a full backlog (it does on Linux by default).
if timeout 1 bash -c "exec 5<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
    echo "connect timeout: backlog does not fill here, not checked"
else
    out=$(probe --url "http://h1.fedi.test:$PORT/inbox" --resolve "h1.fedi.test:$PORT:127.0.0.1" \
        --allow-private-addresses --count 2 --connect-timeout-ms 400) || fail "$out"
    echo "connect timeout: $out"
    expect_eq "$out" timeout_connect 2
fi

# TLS timeout: a server that accepts and never speaks TLS.
start_tool h1_server --mode silent
out=$(probe --url "https://h1.fedi.test:$PORT/inbox" --resolve "h1.fedi.test:$PORT:127.0.0.1" \
    --allow-private-addresses --ca-file "$PKI/ca.pem" --count 2 --tls-timeout-ms 400) ||
    fail "$out"
echo "tls timeout: $out"
expect_eq "$out" timeout_tls 2
# TLS 1.2 is the floor: a TLS 1.1-only server fails the handshake, a TLS 1.2 one works
# (openssl s_server -www answers GET with a close-delimited HTTP/1.0 response).
if start_s_server -cert "$PKI/server.pem" -key "$PKI/server.key" -tls1_1 \
    -cipher 'DEFAULT@SECLEVEL=0'; then
    out=$(probe --url "https://h1.fedi.test:$PORT/" --resolve "h1.fedi.test:$PORT:127.0.0.1" \
        --allow-private-addresses --ca-file "$PKI/ca.pem" --method GET --count 1) || fail "$out"
    echo "tls 1.1 server: $out"
    expect_eq "$out" tls 1
else
    echo "openssl s_server cannot serve TLS 1.1 here: not checked"
fi
start_s_server -cert "$PKI/server.pem" -key "$PKI/server.key" -tls1_2 || fail "s_server"
out=$(probe --url "https://h1.fedi.test:$PORT/" --resolve "h1.fedi.test:$PORT:127.0.0.1" \
    --allow-private-addresses --ca-file "$PKI/ca.pem" --method GET --count 1) || fail "$out"
echo "tls 1.2 server: $out"
expect_eq "$out" 200 1
expect_eq "$out" origin_version 1
echo "transport_errors: ok"
