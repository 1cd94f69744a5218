#!/usr/bin/env bash
# Per-host policy against a scripted misbehaving receiver (fedisim profiles), in one run:
# healthy hosts finish at full speed while others rate-limit with Retry-After (seconds and
# HTTP-date), fail with bursts of 503, answer 404/410/400, hang past the response timeout, or
# refuse connections (the breaker must open and probe instead of hammering).
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[ra.fedi.test]
rate = 1
burst = 1
retry_after = 2
[radate.fedi.test]
rate = 1
burst = 1
retry_after = 3
retry_after_format = date
[flaky.fedi.test]
error_503 = 0.3
retry_after = 0
[p404.fedi.test]
error_404 = 1
[bad.fedi.test]
error_400 = 1
[slow.fedi.test]
latency = fixed 3000
[dead.fedi.test]
dead = refuse
[*]
latency = fixed 1
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
# 40 activities, each to one personal inbox on every host
awk -v p="$TLS_PORT" 'BEGIN {
  split("ok ra radate flaky p404 bad slow dead", hs, " ")
  for (a = 1; a <= 40; a++) {
    printf "{\"activity\":{\"id\":\"https://social.example/act/%d\",\"type\":\"Create\",\"actor\":\"https://social.example/users/alice\",\"object\":{\"id\":\"https://social.example/n/%d\",\"to\":\"as:Public\"}},\"inboxes\":[", a, a
    for (i = 1; i <= 8; i++) printf "%s\"https://%s.fedi.test:%d/users/u%d/inbox\"", (i > 1 ? "," : ""), hs[i], p, a
    printf "]}\n"
  }
}' >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null || fail "enqueue"
start=$(date +%s%N)
timeout -s TERM 9 "$HERALD" --db "$DB" run --resolve "*:$TLS_PORT:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses --retry-base 200 --retry-cap 400 \
    --breaker-threshold 5 --probe-base 500 --response-timeout 1000 --connect-timeout 1000 \
    2>"$T/run.log" || true
"$HERALD" --db "$DB" stats --json >"$T/stats.json"
stop_fedisim
R="$T/fedisim.report.json"
host() { jq -c --arg h "$1" '.hosts[] | select(.host == $h)' "$T/stats.json"; }
fs() { jq -r --arg h "$1" --arg f "$2" '(.per_host[$h] // {})[$f] // 0' "$R"; }
for h in ok ra radate flaky p404 bad slow dead; do echo "$h: herald $(host $h.fedi.test) fedisim requests=$(fs $h.fedi.test requests) accepted=$(fs $h.fedi.test accepted)"; done

# healthy and flaky hosts complete (503 bursts are retried)
[ "$(host ok.fedi.test | jq .done)" = 40 ] || fail "ok host not complete"
# (503s are retried, never final; with a 30% failure rate a few may still wait for a retry)
[ "$(host flaky.fedi.test | jq .done)" -ge 34 ] || fail "flaky host (503 30% of the time): too few done after retries"
[ "$(host flaky.fedi.test | jq .failed)" = 0 ] || fail "503 must be retried, not final"
# 404 from a personal inbox and 400: final dead letters, never retried
[ "$(host p404.fedi.test | jq .failed)" = 40 ] || fail "404s on personal inboxes must be final"
host p404.fedi.test | jq -r .last_error | grep -q "follower gone" || fail "404 not reported as follower gone"
[ "$(host bad.fedi.test | jq .failed)" = 40 ] || fail "400s must be final"
[ "$(fs bad.fedi.test requests)" = 40 ] || fail "400s were retried"
# Retry-After (2 s as seconds, 3 s as a date) pauses the whole host: in 9 s at most a handful
# of requests per pause (the window halves on each 429), never a storm: with retries every
# 200-400 ms and no host-wide pause the 35 waiting deliveries would send hundreds
for h in ra radate; do
    n=$(fs $h.fedi.test requests)
    [ "$n" -le 20 ] || fail "$h: $n requests in 9 s despite Retry-After"
    [ "$(fs $h.fedi.test accepted)" -ge 2 ] || fail "$h: nothing accepted"
done
# slow answers: response timeout, retried (nothing done, nothing failed)
host slow.fedi.test | jq -r .last_error | grep -q "response timeout" || fail "slow host not timed out"
[ "$(host slow.fedi.test | jq .failed)" = 0 ] || fail "timeouts must be retried, not final"
# dead host: the breaker opens after 5 failures and probes after 0.5 s, 1 s, 2 s, 4 s: few attempts
f=$(host dead.fedi.test | jq .failures)
[ "$f" -le 16 ] || fail "dead host attempted $f times in 9 s: breaker not working"
[ "$(host dead.fedi.test | jq .failed)" = 0 ] || fail "dead host deliveries must wait, not fail"
pass "policy: healthy done, 503 retried, 404/400 final, Retry-After honoured per host, timeouts retried, breaker holds a dead host"
