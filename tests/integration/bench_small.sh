#!/usr/bin/env bash
# herald-bench end to end, small: `herald-bench healthy --small` and `hostile --small` (400
# hosts, 20,000 follows, one post each) against fedisim. Checks the JSON record's fields and
# that fedisim's loss and duplicate counts agree with Herald's own stats: every pair Herald
# counts done was accepted once by the receiver, and the pairs the receiver is missing are
# exactly the deliveries Herald still holds (pending, retrying or failed).
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl; need h2load
HB="$HD_BUILD/bench/herald-bench"
[ -x "$HB" ] || fail "$HB is not built"
[ -x "$HD_BUILD/bench/popgen/popgen" ] || { echo "SKIP: popgen not built" >&2; exit 77; }

check_record() { # SCENARIO
    local rec
    rec=$(ls "$T"/out/"$1"-small-*/record.json | head -1)
    [ -s "$rec" ] || fail "$1: no record.json"
    jq -e '(.scenario | type == "string") and (.commit | type == "string")
        and (.machine | type == "string") and (.command | test("^herald-bench "))
        and (.figures.delivered | type == "number") and (.figures.deliveries_per_s > 0)
        and (.figures.cpu_s_per_1000 > 0) and (.figures.max_rss_mb > 0)
        and (.figures.latency_s.p50 | type == "number") and (.figures.latency_s.p99 >= .figures.latency_s.p50)
        and (.figures.latency_s.max >= .figures.latency_s.p99)
        and (.figures.lost == 0) and (.limits.sign_ops_per_s_core > 0) and (.limits.h2load_rps > 0)
        and (.ratios.cpu_per_delivery_over_sign > 0) and (.ratios.rate_over_h2load > 0)
        and (.receiver.bad_signature == 0) and (.receiver.unexpected == 0)
        and (.figures.healthy_class.per_s > 0)' "$rec" >/dev/null ||
        fail "$1: record fields: $(jq -c '{figures, limits: (.limits | del(.signrate)), ratios}' "$rec")"
    jq -e '.checks.agree and .checks.herald_done_eq_receiver_unique
        and .checks.receiver_missing_eq_herald_open' "$rec" >/dev/null ||
        fail "$1: fedisim and Herald disagree: $(jq -c '{checks, receiver, herald_stats}' "$rec")"
    echo "$rec"
}

"$HB" healthy --small --out "$T/out" --no-results >"$T/healthy.log" 2>&1 ||
    { tail -20 "$T/healthy.log"; fail "herald-bench healthy --small failed"; }
R=$(check_record healthy)
jq -e '.figures.delivered == .setup.deliveries_expected and .figures.duplicates == 0
    and .receiver.missing == 0 and (.figures.fanout_s > 0)' "$R" >/dev/null ||
    fail "healthy: not every delivery made exactly once: $(jq -c '{figures, receiver}' "$R")"
if command -v gnuplot >/dev/null; then
    for p in rate latency backlog; do
        [ -s "$(dirname "$R")/$p.png" ] || fail "healthy: no $p.png"
    done
fi
grep 'delivered' "$T/healthy.log" | head -1
# Over TLS the run measures the TLS floors next to it: h2load with a fresh full handshake per
# connection at the run's deliveries per host (every handshake full at fedisim), and
# tlsresume's resumed (every one resumed at fedisim) and full handshakes.
if [ -x "$HD_BUILD/bench/tlsfloor/tlsresume" ]; then
    jq -e '(.limits.tls_bare.deliveries_per_host > 1) and (.limits.tls_bare_cold_cpu_us_per_req > 0)
        and (.limits.tls_bare.cold.passes | length >= 1
             and all(.fedisim_full_handshakes == .connections and .succeeded == .requests))
        and (.limits.tls_bare.cold.passes[0].protocol | test("TLSv1.3"))
        and (.limits.tls_bare_resumed_cpu_us_per_conn > 0)
        and (.limits.tls_bare.resumed.fedisim_resumed_handshakes == .limits.tls_bare.resumed.timed_connections)
        and (.limits.tls_bare.resumed.failed == 0) and (.limits.tls_bare_full_wolfssl_cpu_us_per_conn > 0)
        and (.limits.tls_bare_resumed_psk_only_cpu_us_per_conn > 0)
        and (.limits.tls_bare.resumed_psk_only.fedisim_resumed_handshakes == .limits.tls_bare.resumed_psk_only.timed_connections)
        and (.ratios.tls_floor_cold_over_sign > 1) and (.ratios.cpu_per_delivery_over_tls_floor_cold > 0)
        and (.ratios.tls_floor_cold_wolfssl_over_sign > 1) and (.ratios.tls_floor_cold_best_over_sign > 1)
        and (.ratios.cpu_per_delivery_over_tls_floor_cold_best > 0)' "$R" >/dev/null ||
        fail "healthy: TLS floor fields: $(jq -c '{tls_bare: .limits.tls_bare, ratios}' "$R")"
    grep 'TLS floor, cold' "$T/healthy.log" | head -1
fi

"$HB" hostile --small --out "$T/out" --no-results >"$T/hostile.log" 2>&1 ||
    { tail -20 "$T/hostile.log"; fail "herald-bench hostile --small failed"; }
R=$(check_record hostile)
# Dead and failing hosts leave deliveries behind; the healthy class must be complete.
jq -e '.figures.delivered < .setup.deliveries_expected and .receiver.missing > 0
    and .figures.healthy_class.seconds > 0 and .receiver.connections_refused > 0' "$R" >/dev/null ||
    fail "hostile: expected failing hosts: $(jq -c '{figures, receiver}' "$R")"
grep 'delivered' "$T/hostile.log" | head -1

# summary mode reads the records back.
"$HB" summary "$T/out" | jq -e -s 'length == 2 and all(.agree_all)' >/dev/null ||
    fail "summary: $("$HB" summary "$T/out")"
pass "herald-bench healthy/hostile --small: records complete, fedisim and Herald agree"
