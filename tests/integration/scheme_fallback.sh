#!/usr/bin/env bash
# Signature scheme per host: rfc.fedi.test verifies only RFC 9421, cav.fedi.test only
# draft-cavage. Herald starts with draft-cavage; a 401 makes it retry once with RFC 9421 and
# remember the scheme that worked (also across runs, in the store). 5xx and timeouts never
# switch schemes. fedisim verifies every signature with OpenSSL.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[rfc.fedi.test]
signature = rfc9421
[cav.fedi.test]
signature = cavage
[flaky.fedi.test]
error_503 = 1
retry_after = 0
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
gen() { # gen PREFIX N: N activities to each host
    awk -v p="$TLS_PORT" -v pf="$1" -v n="$2" 'BEGIN { for (a = 1; a <= n; a++)
      printf "{\"activity\":{\"id\":\"https://social.example/%s%d\",\"type\":\"Like\",\"actor\":\"https://social.example/users/alice\",\"object\":\"https://x.example/n/%d\"},\"inboxes\":[\"https://rfc.fedi.test:%d/inbox\",\"https://cav.fedi.test:%d/inbox\",\"https://flaky.fedi.test:%d/inbox\"]}\n", pf, a, a, p, p, p }'
}
RUN=("$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem"
     --allow-private-addresses --retry-base 60000)
gen a 50 >"$T/a.jsonl"
"$HERALD" --db "$DB" enqueue "$T/a.jsonl" >/dev/null || fail "enqueue"
timeout 120 "${RUN[@]}" 2>"$T/run1.log" || { tail "$T/run1.log"; fail "run 1"; }
stats() { curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" \
    "https://fedi.test:$TLS_PORT/_fedisim/stats"; }
S1=$(stats)
ph() { echo "$1" | jq -r --arg h "$2" --arg f "$3" '(.per_host[$h] // {})[$f] // 0'; }
echo "run 1: rfc accepted=$(ph "$S1" rfc.fedi.test accepted) bad_sig=$(ph "$S1" rfc.fedi.test bad_signature); cav accepted=$(ph "$S1" cav.fedi.test accepted) bad_sig=$(ph "$S1" cav.fedi.test bad_signature)"
[ "$(ph "$S1" rfc.fedi.test accepted)" = 50 ] || fail "RFC 9421-only host: not all accepted after the fallback"
[ "$(ph "$S1" cav.fedi.test accepted)" = 50 ] || fail "cavage-only host: not all accepted"
[ "$(ph "$S1" cav.fedi.test bad_signature)" = 0 ] || fail "cavage host saw RFC 9421 attempts"
# only the first window (at most --window-init = 4 requests) went out with the wrong scheme
b1=$(ph "$S1" rfc.fedi.test bad_signature)
[ "$b1" -ge 1 ] && [ "$b1" -le 4 ] || fail "RFC 9421 host: $b1 wrong-scheme requests (want 1..4)"
# 503s never switch schemes: the flaky host only ever saw cavage (no 401s from a scheme it refuses)
[ "$(ph "$S1" flaky.fedi.test bad_signature)" = 0 ] || fail "flaky host got signature errors"
"$HERALD" --db "$DB" stats --json | jq -e '.deliveries.failed == 0' >/dev/null || fail "a 401 dropped a delivery"
# run 2: the scheme is remembered in the store: no more wrong-scheme requests
gen b 20 >"$T/b.jsonl"
"$HERALD" --db "$DB" enqueue "$T/b.jsonl" >/dev/null || fail "enqueue 2"
timeout 120 "${RUN[@]}" 2>"$T/run2.log" || fail "run 2"
S2=$(stats)
[ "$(ph "$S2" rfc.fedi.test accepted)" = 70 ] || fail "run 2: RFC 9421 host accepted $(ph "$S2" rfc.fedi.test accepted)"
[ "$(ph "$S2" rfc.fedi.test bad_signature)" = "$b1" ] || fail "run 2 sent draft-cavage again to the RFC 9421 host"
pass "per-host scheme fallback on 401, remembered across runs; 503 never switches"
