#!/usr/bin/env bash
# fedisim host profiles: dead hosts (refuse over TLS by SNI and over h1 by Host; hang),
# 429 with Retry-After (seconds and HTTP-date), a per-host rate limit, fixed latency,
# injected 5xx, GOAWAY after N streams, resets, and --max-seconds ending the run.
set -euo pipefail
: "${HD_BUILD:?}" "${HD_SRC:?}"
FEDISIM=$HD_BUILD/bench/fedisim
[ -x "$FEDISIM" ] || { echo "skip: $FEDISIM not built"; exit 77; }
for t in curl openssl nghttp; do
    command -v "$t" >/dev/null || { echo "skip: $t missing"; exit 77; }
done
export LC_ALL=C
T=$(mktemp -d /tmp/fedisim_profiles.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && tail -20 "$T/log" >&2; exit 1; }
port() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$T/ready.json"; }
jnum() { grep -o "\"$1\": [0-9]*" "$2" | head -1 | awk '{print $2}'; }
start() {
    rm -f "$T/ready.json"
    "$FEDISIM" --bind 127.0.0.1 --cert "$T/certs/server.pem" --key "$T/certs/server.key" \
        --ready-file "$T/ready.json" --report "$T/report.json" "$@" >"$T/log" 2>&1 &
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
cat >"$T/profiles.ini" <<'INI'
; test profiles
[dead.fedi.test]
dead = refuse
[hang.fedi.test]
dead = hang
[busy.fedi.test]
error_429 = 1.0
retry_after = 30
[busydate.fedi.test]
error_503 = 1.0
retry_after = 120
retry_after_format = date
[limited.fedi.test]
rate = 1
burst = 2
retry_after = 7
[slow.fedi.test]
latency = fixed 400
[*.err.test]
error_500 = 0.5
error_502 = 0.5
[goaway.fedi.test]
goaway_after = 3
[reset.fedi.test]
reset = 1.0
[*]
latency = uniform 0 2
INI
start --tls-port 0 --h2c-port 0 --h1-port 0 --profiles "$T/profiles.ini" --max-seconds 120
TLS=$(port tls_port); H2C=$(port h2c_port); H1=$(port h1_port)
printf '{"id":"https://origin.test/act/1","type":"Create"}' >"$T/a.json"
CT='Content-Type: application/activity+json'
# req URL args... -> "status"; headers in $T/h.txt
req() {
    local url=$1; shift
    curl -sS -o /dev/null -D "$T/h.txt" -w '%{http_code}' --max-time 5 --cacert "$T/certs/ca.pem" \
        -X POST -H "$CT" --data-binary @"$T/a.json" "$@" "$url"
}

# Dead (refuse): TLS fails in the handshake (SNI), HTTP/1.1 gets the connection closed.
rc=0; req "https://dead.fedi.test:$TLS/inbox" --resolve "dead.fedi.test:$TLS:127.0.0.1" \
    >/dev/null 2>&1 || rc=$?
[ "$rc" = 35 ] || [ "$rc" = 56 ] || [ "$rc" = 52 ] || fail "dead over TLS: curl rc=$rc"
rc=0; req "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: dead.fedi.test' >/dev/null 2>&1 || rc=$?
[ "$rc" = 52 ] || [ "$rc" = 56 ] || fail "dead over h1: curl rc=$rc"
# Dead (hang): no answer before curl gives up.
rc=0; curl -sS -o /dev/null --max-time 1 -X POST --data-binary @"$T/a.json" \
    -H 'Host: hang.fedi.test' "http://127.0.0.1:$H1/inbox" 2>/dev/null || rc=$?
[ "$rc" = 28 ] || fail "hang: curl rc=$rc"
rc=0; curl -sS -o /dev/null --max-time 1 --cacert "$T/certs/ca.pem" \
    --resolve "hang.fedi.test:$TLS:127.0.0.1" "https://hang.fedi.test:$TLS/inbox" 2>/dev/null || rc=$?
[ "$rc" = 28 ] || fail "hang over TLS: curl rc=$rc"

# 429 with Retry-After in seconds (h2 over TLS and h1).
s=$(req "https://busy.fedi.test:$TLS/inbox" --http2 --resolve "busy.fedi.test:$TLS:127.0.0.1")
[ "$s" = 429 ] || fail "busy h2: $s"
grep -qi '^retry-after: 30' "$T/h.txt" || fail "busy h2 Retry-After: $(cat "$T/h.txt")"
s=$(req "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: busy.fedi.test')
[ "$s" = 429 ] || fail "busy h1: $s"
grep -qi '^retry-after: 30' "$T/h.txt" || fail "busy h1 Retry-After"
# 503 with Retry-After as an HTTP-date.
s=$(req "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: busydate.fedi.test')
[ "$s" = 503 ] || fail "busydate: $s"
grep -qiE '^retry-after: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT' "$T/h.txt" ||
    fail "Retry-After date: $(cat "$T/h.txt")"

# Rate limit: burst 2 at 1/s, so of 5 quick requests 2 pass and 3 get 429 Retry-After: 7.
ok=0; limited=0
for i in 1 2 3 4 5; do
    s=$(req "http://127.0.0.1:$H2C/inbox" --http2-prior-knowledge -H 'Host: limited.fedi.test')
    case $s in
    202) ok=$((ok + 1)) ;;
    429) limited=$((limited + 1)); grep -qi '^retry-after: 7' "$T/h.txt" || fail "limited RA" ;;
    *) fail "limited: $s" ;;
    esac
done
[ "$ok" = 2 ] && [ "$limited" = 3 ] || fail "rate limit: ok=$ok limited=$limited"

# Latency: fixed 400 ms.
t=$(curl -sS -o /dev/null -w '%{time_total}' --max-time 5 -X POST -H "$CT" \
    --data-binary @"$T/a.json" -H 'Host: slow.fedi.test' "http://127.0.0.1:$H1/inbox")
awk -v t="$t" 'BEGIN { exit !(t >= 0.38 && t < 3) }' || fail "slow: $t s"

# Wildcard profile: only 500 and 502.
for i in 1 2 3 4 5 6; do
    s=$(req "http://127.0.0.1:$H1/inbox" --http1.1 -H "Host: x$i.err.test")
    [ "$s" = 500 ] || [ "$s" = 502 ] || fail "err.test: $s"
done

# GOAWAY after 3 streams on one h2 connection: nghttp sends 5 requests on one connection;
# 3 are answered, then GOAWAY names the third stream (nghttp numbers its streams 13, 15, ...).
U="http://127.0.0.1:$H2C"
nghttp -v -H ':authority: goaway.fedi.test' "$U/i1" "$U/i2" "$U/i3" "$U/i4" "$U/i5" -d "$T/a.json" \
    >"$T/goaway.out" 2>&1 || true
grep -q 'recv GOAWAY frame' "$T/goaway.out" || fail "no GOAWAY: $(tail -5 "$T/goaway.out")"
grep -q 'last_stream_id=17' "$T/goaway.out" || fail "GOAWAY last stream: $(grep -A1 GOAWAY "$T/goaway.out")"
[ "$(grep -c ':status: 202' "$T/goaway.out")" = 3 ] || fail "GOAWAY: not 3 answers"

# Reset: h2 gets RST_STREAM, h1 gets the connection closed.
rc=0; req "http://127.0.0.1:$H2C/inbox" --http2-prior-knowledge -H 'Host: reset.fedi.test' \
    >/dev/null 2>&1 || rc=$?
[ "$rc" = 92 ] || [ "$rc" = 16 ] || [ "$rc" = 56 ] || fail "reset h2: curl rc=$rc"
rc=0; req "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: reset.fedi.test' >/dev/null 2>&1 || rc=$?
[ "$rc" = 52 ] || [ "$rc" = 56 ] || fail "reset h1: curl rc=$rc"

# Default profile still answers 202.
s=$(req "http://127.0.0.1:$H1/inbox" --http1.1 -H 'Host: fine.fedi.test')
[ "$s" = 202 ] || fail "default: $s"
stop
R=$T/report.json
[ "$(jnum 429 "$R")" = 5 ] || fail "429 count $(jnum 429 "$R")"
[ "$(jnum rate_limited "$R")" = 3 ] || fail "rate_limited"
[ "$(jnum connections_refused "$R")" = 2 ] || fail "connections_refused (TLS by SNI + h1 by Host)"
[ "$(jnum goaways "$R")" = 1 ] || fail "goaways"
[ "$(jnum resets "$R")" = 2 ] || fail "resets"
[ "$(jnum accepted "$R")" = 7 ] || fail "accepted $(jnum accepted "$R"): $(cat "$R")"

# Bad profile files are refused at start-up.
printf '[x.test]\nlatency = sometimes\n' >"$T/bad.ini"
"$FEDISIM" --h1-port 0 --profiles "$T/bad.ini" --max-seconds 2 >"$T/bad.log" 2>&1 && fail "bad profile accepted"
# The shipped profiles in bench/profiles load.
for f in "$HD_SRC"/bench/profiles/*.ini; do
    "$FEDISIM" --h1-port 0 --profiles "$f" --max-seconds 0.2 --quiet >"$T/p.log" 2>&1 ||
        fail "bench/profiles/$(basename "$f") refused: $(cat "$T/p.log")"
done
# --max-seconds ends the run and still writes the report.
start --h1-port 0 --max-seconds 1
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID" 2>/dev/null && fail "--max-seconds did not stop fedisim"
wait "$PID" || fail "exit code after --max-seconds"
PID=
[ -s "$T/report.json" ] || fail "no report after --max-seconds"
echo "fedisim_profiles: ok"
