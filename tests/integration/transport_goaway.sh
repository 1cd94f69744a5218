#!/usr/bin/env bash
# HTTP/2 limits and resets against tests/tools/h2_server (h2c): SETTINGS_MAX_CONCURRENT_STREAMS
# is honoured, GOAWAY and REFUSED_STREAM retry unprocessed requests once on a new connection,
# a silent server ends in response timeouts without killing the connection.
. "$(dirname "$0")/transport_lib.bash"
R() { echo "--resolve h2.fedi.test:$PORT:127.0.0.1 --allow-private-addresses"; }

start_tool h2_server --max-concurrent 5 --delay-ms 5
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" $(R) --count 300 --concurrency 100) ||
    fail "probe: $out"
echo "max-concurrent 5: $out"
expect_eq "$out" ok2xx 300
expect_eq "$out" max_streams 5
[ "$(stat_of max_active)" -le 5 ] || fail "server saw $(stat_of max_active) concurrent streams"
[ "$(stat_of connections)" -eq 1 ] || fail "$(stat_of connections) connections, want 1"

start_tool h2_server --goaway-after 50
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" $(R) --count 400 --concurrency 20) ||
    fail "probe: $out"
echo "goaway: $out"
ok=$(jget "$out" ok2xx)
ref=$(jget "$out" refused_stream)
[ -z "$(jget "$out" reset)" ] || fail "requests reset after GOAWAY: $out"
[ $((ok + ${ref:-0})) -eq 400 ] || fail "goaway accounting: $out"
[ "$ok" -ge 300 ] || fail "too few retried successfully: $out"
[ "$(stat_of connections)" -ge 8 ] || fail "GOAWAY did not lead to new connections"
[ "$(jget "$out" goaways)" -ge 7 ] || fail "GOAWAYs not counted: $out"
[ "$(jget "$out" retries)" -ge 1 ] || fail "retries not counted: $out"

start_tool h2_server --refuse-every 10
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" $(R) --count 300 --concurrency 30) ||
    fail "probe: $out"
echo "refused streams: $out"
[ -z "$(jget "$out" reset)" ] || fail "refused streams became resets: $out"
ok=$(jget "$out" ok2xx)
ref=$(jget "$out" refused_stream)
# about 1 in 10 is refused, and 1 in 10 of their retries again: those fail as refused_stream
[ $((ok + ${ref:-0})) -eq 300 ] || fail "refused accounting: $out"
[ "$ok" -ge 260 ] || fail "refused streams not retried: $out"

start_tool h2_server --silent 1
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" $(R) --count 30 --concurrency 30 \
    --response-timeout-ms 500) || fail "probe: $out"
echo "silent: $out"
expect_eq "$out" timeout_response 30
[ "$(stat_of connections)" -eq 1 ] || fail "response timeouts closed the h2 connection"
# Streams freed by response timeouts go to the requests waiting in the FIFO (150 submitted,
# 100 streams): two rounds of timeouts, nobody waits for the queue deadline.
start_tool h2_server --delay-ms 400
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" $(R) --count 150 --concurrency 150 \
    --response-timeout-ms 250) || fail "probe: $out"
echo "timeouts free streams: $out"
expect_eq "$out" timeout_response 150
[ "$(jget "$out" max_latency_ms)" -lt 1000 ] || fail "queued requests starved: $out"
# Status and Retry-After over h2.
start_tool h2_server --status 503 --retry-after 7
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" $(R) --count 3) || fail "probe: $out"
expect_eq "$out" 503 3
printf '%s' "$out" | grep -q '"retry_after":"7"' || fail "Retry-After not passed on h2: $out"

# Response headers over max_header_bytes: that stream fails with too_large, the connection
# stays up for the others.
start_tool h2_server --big-headers 1
out=$(probe --url "http://h2.fedi.test:$PORT/inbox" $(R) --count 10 --concurrency 5) ||
    fail "probe: $out"
echo "h2 big headers: $out"
expect_eq "$out" too_large 10
[ "$(stat_of connections)" -eq 1 ] || fail "too_large closed the h2 connection"
echo "transport_goaway: ok"
