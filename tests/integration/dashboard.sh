#!/usr/bin/env bash
# The dashboard in a real browser: headless Chromium driven through chromedriver
# (tools/dashboard_check.mjs) against `herald run --listen` during a fan-out to fedisim
# (HOSTS hosts) beside many hosts whose port is closed (failing with connect errors), so
# that the table holds MANY hosts. Saves a screenshot under the test's temp dir (its path is
# printed; HD_KEEP_TMP=1 keeps it) and copies it to the build dir as dashboard.png.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl; need node
command -v chromium >/dev/null 2>&1 || { echo "SKIP: chromium not installed" >&2; exit 77; }
command -v chromedriver >/dev/null 2>&1 || { echo "SKIP: chromedriver not installed" >&2; exit 77; }
[ -x "$FEDISIM" ] || { echo "SKIP: fedisim not built" >&2; exit 77; }
HOSTS=300
NACT=$([ "$HD_ASAN" = 1 ] && echo 2 || echo 5) # activities of each of the two fan-outs
FAILING=$([ "$HD_ASAN" = 1 ] && echo 2000 || echo 20000)
mkcerts
DB="$T/db"
setup_actor "$DB"
printf '[*]\nlatency = fixed 20\n' >"$T/profiles.ini"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --profiles "$T/profiles.ini"
freeport() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
CLOSED=$(freeport)
gen_envelopes https "$TLS_PORT" "$NACT" "$HOSTS" a >"$T/fanout.jsonl"
gen_envelopes https "$TLS_PORT" "$NACT" "$HOSTS" b >"$T/more.jsonl"
# the failing hosts (enqueued first, and failed once before the browser starts, so that
# their signing does not slow its start): one delivery each, 1,000 inboxes an envelope
awk -v n="$FAILING" -v p="$CLOSED" 'BEGIN {
    for (e = 0; e * 1000 < n; e++) {
        printf "{\"activity\":{\"@context\":\"https://www.w3.org/ns/activitystreams\",\"id\":\"https://social.example/act/f%d\",\"type\":\"Create\",\"actor\":\"https://social.example/users/alice\",\"to\":[\"https://www.w3.org/ns/activitystreams#Public\"],\"object\":{\"id\":\"https://social.example/notes/f%d\",\"type\":\"Note\",\"content\":\"x\"}},\"inboxes\":[", e, e
        for (i = e * 1000; i < (e + 1) * 1000 && i < n; i++)
            printf "%s\"http://x%d.down.test:%d/inbox\"", (i > e * 1000 ? "," : ""), i, p
        printf "]}\n"
    }
}' >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
PORT=$(freeport)
(umask 077; echo "token-$RANDOM$RANDOM$RANDOM" >"$T/token")
"$HERALD" --db "$DB" run --listen "127.0.0.1:$PORT" --token-file "$T/token" \
    --resolve "*:$TLS_PORT:127.0.0.1" --resolve "*:$CLOSED:127.0.0.1" --ca-file "$T/certs/ca.pem" \
    --allow-private-addresses --retry-base 3600000 2>"$T/run.log" &
RUN=$!
PIDS+=("$RUN")
for _ in $(seq 600); do
    n=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" 2>/dev/null |
        awk '$1 == "herald_deliveries_total{outcome=\"retry\"}" {print $2}' || true)
    [ "${n:-0}" -ge "$FAILING" ] && break
    sleep 0.1
done
[ "${n:-0}" -ge "$FAILING" ] || fail "the $FAILING failing hosts did not fail ($n)"
DPORT=$(freeport)
chromedriver --port="$DPORT" --allowed-ips=127.0.0.1 >"$T/chromedriver.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do
    curl -s --max-time 1 "http://127.0.0.1:$DPORT/status" | grep -q '"ready": *true' && break
    sleep 0.1
done
# the fan-out the page is opened on
curl -sS --max-time 30 -H "Authorization: Bearer $(cat "$T/token")" -H "Content-Type: application/x-ndjson" \
    --data-binary "@$T/fanout.jsonl" "http://127.0.0.1:$PORT/v1/activities" | jq -e --argjson n "$NACT" '.accepted == $n' >/dev/null ||
    fail "fan-out"
# over h2c too, the page goes with its Content-Security-Policy
curl -sS --max-time 5 --http2-prior-knowledge -o /dev/null -D "$T/h2.headers" "http://127.0.0.1:$PORT/" ||
    fail "GET / over h2c"
grep -qi "^content-security-policy: default-src 'none'" "$T/h2.headers" || { cat "$T/h2.headers"; fail "no CSP over h2c"; }
mkdir -p "$T/chromium"
SHOT="$T/dashboard.png"
DRIVER="http://127.0.0.1:$DPORT" BASE="http://127.0.0.1:$PORT" TOKEN="$(cat "$T/token")" \
    PROFILE_DIR="$T/chromium" SHOT="$SHOT" HOSTS=$HOSTS MANY=$((HOSTS + FAILING)) MORE="$T/more.jsonl" \
    FANOUT=$((2 * NACT * HOSTS)) \
    timeout 480 node "$HD_SRC/tools/dashboard_check.mjs" ||
    { tail -5 "$T/run.log"; tail -5 "$T/chromedriver.log"; fail "dashboard"; }
[ -s "$SHOT" ] || fail "no screenshot"
cp "$SHOT" "$HD_BUILD/dashboard.png"
echo "screenshot: $SHOT (copied to $HD_BUILD/dashboard.png)"
grep -q "$(cat "$T/token")" "$T/run.log" "$T/chromedriver.log" && fail "the token reached a log"
pass "the dashboard in headless Chromium: token form, hosts of a running fan-out, updates, chart, sort, filter, $((HOSTS + FAILING)) hosts"
kill -TERM "$RUN"
wait "$RUN" || fail "herald run exit $?"
