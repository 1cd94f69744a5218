#!/usr/bin/env bash
# Hostile HTTP/2 servers (TLS, ALPN h2, frames written by hand): invalid frames and HPACK,
# missing :status, PUSH_PROMISE, flow-control violations, SETTINGS and PING floods, an
# RST_STREAM storm, GOAWAY mid-stream and before any stream, a CONTINUATION flood, a 100 KB
# header, a 1xx flood, a trickled body and MAX_CONCURRENT_STREAMS 0, all in one `herald run`
# next to a healthy host.
source "$(dirname "$0")/hostile_lib.bash"
for m in h2-ok h2-bad-frame h2-data-stream0 h2-bad-hpack h2-no-status h2-push \
    h2-window-overflow h2-flow-violation h2-settings-flood h2-ping-flood h2-rst-storm \
    h2-goaway-mid h2-goaway-zero h2-continuation-flood h2-big-header h2-1xx-flood h2-trickle \
    h2-zero-streams; do
    start_hostile "$m" "$m"
done
run_cases "${RUN_SECONDS:-8}"
expect h2-ok done
expect h2-bad-frame retry 'protocol|reset|closed'
expect h2-data-stream0 retry 'protocol|reset|closed'
expect h2-bad-hpack retry 'protocol|reset|closed'
expect h2-no-status retry 'protocol|reset|closed'
expect h2-push retry 'protocol|reset|closed'
expect h2-window-overflow retry 'protocol|reset|closed'
expect h2-flow-violation retry 'protocol|reset|closed|timeout'
expect h2-settings-flood retry 'protocol|reset|closed|timeout'
expect h2-ping-flood retry 'protocol|reset|closed|timeout'
expect h2-rst-storm retry 'reset|closed'
expect h2-goaway-mid retry 'reset|protocol|closed'
expect h2-goaway-zero retry 'refused|reset'
expect h2-continuation-flood retry 'too large|protocol|reset|closed'
expect h2-big-header retry 'too large|protocol|reset|closed'
expect h2-1xx-flood retry 'too large|protocol|reset|closed|timeout'
expect h2-trickle retry 'timeout'
expect h2-zero-streams retry 'timeout'
# A client may open streams before the server's SETTINGS arrive (RFC 9113 6.5.2), so each
# connection may carry the NCASE requests sent right after the handshake; never more.
zr=$(hstat h2-zero-streams requests); zc=$(hstat h2-zero-streams connections)
echo "h2-zero-streams: $zr requests on $zc connections"
[ "$zr" -le $((zc * ${NCASE:-2})) ] || fail "streams opened after SETTINGS_MAX_CONCURRENT_STREAMS 0"
finish hostile_h2
