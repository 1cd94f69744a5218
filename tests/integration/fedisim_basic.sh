#!/usr/bin/env bash
# fedisim over every listener: TLS (ALPN h2 and http/1.1), TLS http/1.1-only, h2c with
# HTTP/1.1 fallback, plain HTTP/1.1 rejecting the h2 preface; counting of pairs, duplicates,
# statuses and protocols; the stats endpoint; SIGUSR1 and exit reports.
set -euo pipefail
: "${HD_BUILD:?}" "${HD_SRC:?}"
FEDISIM=$HD_BUILD/bench/fedisim
[ -x "$FEDISIM" ] || { echo "skip: $FEDISIM not built"; exit 77; }
for t in curl openssl nghttp h2load; do
    command -v "$t" >/dev/null || { echo "skip: $t missing"; exit 77; }
done
T=$(mktemp -d /tmp/fedisim_basic.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && tail -20 "$T/log" >&2; exit 1; }
port() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$T/ready.json"; }
# jnum KEY FILE: first "KEY": N in a report (top-level keys come first).
jnum() { grep -o "\"$1\": [0-9]*" "$2" | head -1 | awk '{print $2}'; }
start() {
    rm -f "$T/ready.json"
    "$FEDISIM" --bind 127.0.0.1 --cert "$T/certs/server.pem" --key "$T/certs/server.key" \
        --ready-file "$T/ready.json" --report "$T/report.json" --max-seconds 120 "$@" \
        >"$T/log" 2>&1 &
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

"$HD_SRC/bench/mkcerts.sh" "$T/certs" >/dev/null
start --tls-port 0 --tls-h1-port 0 --h2c-port 0 --h1-port 0
TLS=$(port tls_port); TLSH1=$(port tls_h1_port); H2C=$(port h2c_port); H1=$(port h1_port)
[ -n "$TLS" ] && [ -n "$TLSH1" ] && [ -n "$H2C" ] && [ -n "$H1" ] || fail "ready file: $(cat "$T/ready.json")"
grep -q "\"pid\":$PID" "$T/ready.json" || fail "pid missing from ready file"

CT='Content-Type: application/activity+json'
printf '{"id":"https://origin.test/act/1","type":"Create"}' >"$T/a1.json"
printf '{"id":"https://origin.test/act/2","type":"Create"}' >"$T/a2.json"
post() { # url extra-curl-args... -> prints "status version"
    local url=$1; shift
    curl -sS -o /dev/null -w '%{http_code} %{http_version}' --max-time 10 \
        --cacert "$T/certs/ca.pem" -X POST -H "$CT" "$@" "$url"
}

# 1. plain HTTP/1.1, same activity twice to the same inbox: one pair, one duplicate.
r=$(post "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: a.fedi.test' --data-binary @"$T/a1.json")
[ "$r" = "202 1.1" ] || fail "h1 post: $r"
r=$(post "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: a.fedi.test' --data-binary @"$T/a1.json")
[ "$r" = "202 1.1" ] || fail "h1 repost: $r"
# 2. TLS with ALPN: curl picks h2.
r=$(post "https://a.fedi.test:$TLS/inbox" --http2 --resolve "a.fedi.test:$TLS:127.0.0.1" \
    --data-binary @"$T/a1.json")
[ "$r" = "202 2" ] || fail "tls h2 post: $r"
# 3. TLS, http/1.1 only: ALPN must not offer h2 even when curl asks for it.
r=$(post "https://b.fedi.test:$TLSH1/users/x/inbox" --http2 \
    --resolve "b.fedi.test:$TLSH1:127.0.0.1" --data-binary @"$T/a1.json")
[ "$r" = "202 1.1" ] || fail "tls h1-only post: $r"
# 4. h2c prior knowledge, and HTTP/1.1 on the same port.
r=$(post "http://127.0.0.1:$H2C/inbox" --http2-prior-knowledge -H 'Host: c.fedi.test' \
    --data-binary @"$T/a2.json")
[ "$r" = "202 2" ] || fail "h2c post: $r"
r=$(post "http://127.0.0.1:$H2C/inbox" --http1.1 -H 'Host: c.fedi.test' --data-binary @"$T/a2.json")
[ "$r" = "202 1.1" ] || fail "h2c-port h1 post: $r"
# 5. The h1-only port answers an h2 preface with 505 and closes.
exec 3<>"/dev/tcp/127.0.0.1/$H1"
printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0' >&3
resp=$(timeout 5 cat <&3 || true)
exec 3>&-
case "$resp" in "HTTP/1.1 505"*) ;; *) fail "h2 preface on h1 port: '$resp'";; esac
# 6. Not JSON with an id: 400, not counted as accepted.
r=$(post "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: a.fedi.test' --data-binary 'nope')
[ "$r" = "400 1.1" ] || fail "bad json: $r"
# 7. nghttp over TLS h2 with its own :authority.
nghttp -H ':authority: d.fedi.test' -H "content-type: application/activity+json" \
    -d "$T/a2.json" "https://127.0.0.1:$TLS/inbox" -s >"$T/nghttp.out" 2>&1 || fail "nghttp"
# 8. h2load: 300 requests of one activity to one inbox over h2c: 1 pair, 299 duplicates;
#    and 200 over TLS h2.
h2load -n 300 -c 3 -m 10 -d "$T/a1.json" -H "$CT" -H ':authority: e.fedi.test' \
    "http://127.0.0.1:$H2C/inbox" >"$T/h2load1.out" 2>&1 || fail "h2load h2c"
grep -q "300 succeeded" "$T/h2load1.out" || fail "h2load h2c: $(grep requests: "$T/h2load1.out")"
h2load -n 200 -c 2 -m 10 -d "$T/a2.json" -H "$CT" -H ':authority: e.fedi.test' \
    "https://127.0.0.1:$TLS/inbox" >"$T/h2load2.out" 2>&1 || fail "h2load tls"
grep -q "200 succeeded" "$T/h2load2.out" || fail "h2load tls: $(grep requests: "$T/h2load2.out")"
grep -q "h2" "$T/h2load2.out" || fail "h2load tls did not negotiate h2"

# 9. The stats endpoint on any host and port.
curl -sS --max-time 5 "http://127.0.0.1:$H1/_fedisim/stats" >"$T/stats.json" || fail "stats"
grep -q "\"requests\":508," "$T/stats.json" || fail "stats: $(cat "$T/stats.json")"
# 10. SIGUSR1 writes the report and fedisim keeps running.
rm -f "$T/report.json"
kill -USR1 "$PID"
for _ in $(seq 50); do [ -s "$T/report.json" ] && break; sleep 0.1; done
[ -s "$T/report.json" ] || fail "no report after SIGUSR1"
kill -0 "$PID" || fail "fedisim died on SIGUSR1"
stop

R=$T/report.json
# requests: 2 + 1 + 1 + 2 + 1 (bad json) + 1 (nghttp) + 300 + 200 = 508
[ "$(jnum requests "$R")" = 508 ] || fail "requests $(jnum requests "$R") != 508"
[ "$(jnum accepted "$R")" = 507 ] || fail "accepted $(jnum accepted "$R") != 507"
# pairs: a1 http://a.fedi.test/inbox (twice), a1 https://a.fedi.test:TLS/inbox,
# a1 https://b.fedi.test:TLSH1/users/x/inbox, a2 http://c.fedi.test/inbox (twice),
# a2 https://d.fedi.test/inbox, a1 http://e.fedi.test/inbox (300), a2 https://e.fedi.test/inbox (200)
[ "$(jnum unique_pairs "$R")" = 7 ] || fail "unique_pairs $(jnum unique_pairs "$R") != 7"
[ "$(jnum duplicates "$R")" = 500 ] || fail "duplicates $(jnum duplicates "$R") != 500"
[ "$(jnum h2 "$R")" = 503 ] || fail "h2 $(jnum h2 "$R") != 503"
[ "$(jnum h1 "$R")" = 5 ] || fail "h1 $(jnum h1 "$R") != 5"
[ "$(jnum 202 "$R")" = 507 ] || fail "202 count"
[ "$(jnum 400 "$R")" = 1 ] || fail "400 count"
[ "$(jnum h1_preface_rejects "$R")" = 1 ] || fail "preface rejects"
[ "$(jnum hosts "$R")" = 5 ] || fail "hosts $(jnum hosts "$R") != 5"
echo "fedisim_basic: ok"
