#!/usr/bin/env bash
# HTTP/2: 2,000 POSTs over one TLS connection to nghttpd with many concurrent streams, h2c
# prior knowledge to nghttpd --no-tls, and an IP-literal origin verified against its IP SAN.
. "$(dirname "$0")/transport_lib.bash"
make_pki

start_nghttpd --echo-upload "$PKI/server.key" "$PKI/server.pem"
out=$(probe --url "https://h2.fedi.test:$PORT/inbox" --resolve "h2.fedi.test:$PORT:127.0.0.1" \
    --allow-private-addresses --ca-file "$PKI/ca.pem" --count 2000 --concurrency 300) ||
    fail "probe: $out"
echo "h2 tls: $out"
expect_eq "$out" ok2xx 2000
expect_eq "$out" 2 2000          # versions.2 (first "2": key of the versions object)
expect_eq "$out" origin_version 2
expect_eq "$out" max_streams 100
expect_eq "$out" idle_after_shutdown 1

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
echo "transport_h2: ok"
