#!/usr/bin/env bash
# herald-bench target mode against fedisim standing in for a lab's receivers: two --target
# inboxes on two hosts, --resolve to 127.0.0.1, --allow-private-addresses, a key id without
# a #fragment (GoToSocial's .../main-key form) whose public key fedisim verifies; checks the
# record, that fedisim accepted every delivery with valid signatures, and the three plots.
# Also: a loopback target without --allow-private-addresses is refused before anything is
# sent, and an unresolvable one names --resolve.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl
HB="$HD_BUILD/bench/herald-bench"
[ -x "$HB" ] || fail "$HB is not built"
[ -x "$FEDISIM" ] || { echo "SKIP: fedisim not built" >&2; exit 77; }
mkcerts
KEYID="https://lab.example/users/bench/main-key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/bench.pem" 2>/dev/null
"$HERALD" --db "$T/kdb" key add --key-id "$KEYID" --actor "https://lab.example/users/bench" \
    --pem "$T/bench.pem" >/dev/null || fail "key add"
"$HERALD" --db "$T/kdb" key export-public >"$T/keys.jsonl"
printf '[*]\nlatency = fixed 5\n' >"$T/profiles.ini"
FS_MAX_SECONDS=120 start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --profiles "$T/profiles.ini"
T1="https://h1.fedi.test:$TLS_PORT/users/u1/inbox"
T2="https://h2.fedi.test:$TLS_PORT/inbox"

# refused: loopback without the flag; a host that does not resolve
if "$HB" --target "$T1" --rate 5 --duration 1 --i-own-the-target --resolve "h1.fedi.test:$TLS_PORT:127.0.0.1" \
    --out "$T/out0" 2>"$T/refused.txt"; then fail "a loopback target ran without --allow-private-addresses"; fi
grep -q 'private or loopback address; add --allow-private-addresses' "$T/refused.txt" || { cat "$T/refused.txt"; fail "refusal text"; }
[ "$(jq -r '.requests // 0' <(curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" "https://fedi.test:$TLS_PORT/_fedisim/stats"))" = 0 ] ||
    fail "something was sent before the refusal"
if "$HB" --target "https://nx.invalid/inbox" --rate 5 --duration 1 --i-own-the-target --out "$T/out0" 2>"$T/nx.txt"; then
    fail "an unresolvable target ran"; fi
grep -q 'does not resolve (add --resolve nx.invalid:443:ADDR)' "$T/nx.txt" || { cat "$T/nx.txt"; fail "unresolvable text"; }
pass "refused before sending: a loopback target without --allow-private-addresses, an unresolvable one"

"$HB" --target "$T1" --target "$T2" --rate 20 --duration 2 --i-own-the-target \
    --resolve "*:$TLS_PORT:127.0.0.1" --allow-private-addresses --ca-file "$T/certs/ca.pem" \
    --key-id "$KEYID" --pem "$T/bench.pem" --out "$T/out" >"$T/record.out" 2>"$T/hb.log" ||
    { cat "$T/hb.log"; fail "herald-bench --target"; }
REC=$(ls "$T"/out/target-*/record.json | head -1)
[ -s "$REC" ] || fail "no record"
jq -e '(.targets | length) == 2 and .deliveries_expected == 80 and .deliveries.done == 80
    and .actor == "https://lab.example/users/bench" and .key_id == "https://lab.example/users/bench/main-key"
    and .allow_private_addresses and .deliveries_per_s > 0 and (.latency_s.p50 | type == "number")
    and .latency_s.max >= .latency_s.p50 and (.hosts | length) == 2' "$REC" >/dev/null ||
    { cat "$REC"; fail "record"; }
stop_fedisim
jq -e '.accepted == 80 and .bad_signature == 0 and .verified == 80' "$T/fedisim.report.json" >/dev/null ||
    fail "fedisim: $(jq -c '{requests, accepted, verified, bad_signature}' "$T/fedisim.report.json")"
pass "two targets, --resolve, private addresses allowed, key id without #fragment: 80/80 delivered, verified by the receiver"
if command -v gnuplot >/dev/null 2>&1; then
    d=$(dirname "$REC")
    for p in rate latency backlog; do
        [ -s "$d/$p.png" ] || fail "no $p.png"
    done
    pass "the scenarios' plots: rate.png, latency.png, backlog.png"
fi
