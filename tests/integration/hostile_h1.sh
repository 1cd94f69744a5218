#!/usr/bin/env bash
# Hostile HTTP/1.1 servers (over TLS, no ALPN): oversized header block and value, endless
# bodies, trickled responses, lying Content-Length, malformed status lines, chunking and
# headers, HTTP/0.9 garbage, a 1xx flood and redirects, all in one `herald run` next to a
# healthy host. See hostile_lib.bash for what each case checks.
source "$(dirname "$0")/hostile_lib.bash"
for m in h1-ok h1-403 h1-big-headers h1-big-value h1-endless-body h1-endless-chunked h1-trickle \
    h1-trickle-body h1-cl-long-close h1-cl-long-hang h1-cl-short h1-cl-double h1-bad-status \
    h1-bad-version h1-bad-chunk h1-chunk-overflow h1-header-nocolon h1-http09 h1-1xx-flood \
    h1-redirect-302 h1-redirect-307 h1-redirect-308; do
    start_hostile "$m" "$m"
done
run_cases "${RUN_SECONDS:-8}"
expect h1-ok done
expect h1-403 final 403
expect h1-big-headers retry 'too large|header'
expect h1-big-value retry 'too large|header'
expect h1-endless-body retry 'timeout'
expect h1-endless-chunked retry 'timeout'
expect h1-trickle retry 'timeout'
expect h1-trickle-body retry 'timeout'
expect h1-cl-long-close retry 'reset|closed'
expect h1-cl-long-hang retry 'timeout'
expect h1-cl-short done
expect h1-cl-double retry 'protocol'
expect h1-bad-status retry 'protocol'
expect h1-bad-version retry 'protocol'
expect h1-bad-chunk retry 'protocol'
expect h1-chunk-overflow retry 'protocol'
expect h1-header-nocolon retry 'protocol'
expect h1-http09 retry 'protocol|reset'
expect h1-1xx-flood retry 'timeout|too large|protocol'
for r in 302 307 308; do
    expect "h1-redirect-$r" final "^$r "
    [ "$(hstat h1-redirect-$r redirected)" = 0 ] || fail "redirect $r was followed"
done
finish hostile_h1
