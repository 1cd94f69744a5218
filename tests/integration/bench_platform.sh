#!/usr/bin/env bash
# herald-bench `platform`, short: 10 actors post at 150 deliveries/s for 3 s over TLS to 100
# hosts (fedisim), pinned with --pin and profiled with --perf where the machine allows. Checks
# the record: per-delivery latency (fedisim's accept log joined with Herald's commit times)
# for every delivery, 0 lost, 0 duplicated, the in-run sign ratios, the pinning, the perf
# summary, the plots; and that --pin refuses a single CPU with a clear message.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need curl; need taskset
HB="$HD_BUILD/bench/herald-bench"
[ -x "$HB" ] || fail "$HB is not built"
[ -x "$HD_BUILD/bench/popgen/popgen" ] || { echo "SKIP: popgen not built" >&2; exit 77; }

# --pin on one CPU: refused before anything starts.
cpu0=$(awk '/^Cpus_allowed_list:/ { split($2, a, /[,-]/); print a[1] }' /proc/self/status)
if taskset -c "$cpu0" "$HB" platform --small --pin --rate 100 --out "$T/one" --no-results \
    >"$T/one.log" 2>&1; then
    fail "--pin on one CPU was accepted"
fi
grep -q 'needs at least 2 CPUs' "$T/one.log" || fail "--pin on one CPU: $(cat "$T/one.log")"
[ ! -d "$T/one" ] || [ -z "$(ls -A "$T/one")" ] || fail "--pin on one CPU left a run behind"

args=(platform --small --duration 3 --rate 150 --leaf-certs 8 --out "$T/out" --no-results)
pinned=0 perfed=0
if [ "$(nproc)" -ge 2 ]; then args+=(--pin); pinned=1; fi
if command -v perf >/dev/null && perf record -e cpu-clock -o "$T/probe.data" true >/dev/null 2>&1; then
    args+=(--perf); perfed=1
fi
"$HB" "${args[@]}" >"$T/platform.log" 2>&1 ||
    { tail -20 "$T/platform.log"; fail "herald-bench ${args[*]} failed"; }
R=$(ls "$T"/out/platform-small-*/record.json | head -1)
[ -s "$R" ] || fail "no record.json"
jq -e '.scenario == "platform-small" and (.command | test("^herald-bench platform --small"))
    and .setup.platform.rate_deliveries_per_s == 150 and .setup.platform.rate_source == "--rate"
    and .setup.platform.posts_per_s > 0 and .setup.platform.duration_s == 3
    and .setup.deliveries_expected > 0 and .figures.delivered == .setup.deliveries_expected
    and .figures.lost == 0 and .figures.duplicates == 0 and .receiver.missing == 0
    and .receiver.unexpected == 0 and .receiver.bad_signature == 0 and .checks.agree
    and (.figures.latency_s.method | test("^per delivery"))
    and .figures.latency_s.completed == .setup.deliveries_expected
    and .figures.latency_s.unjoined == 0
    and .figures.latency_s.p50 >= 0 and .figures.latency_s.p99 >= .figures.latency_s.p50
    and .figures.latency_s.max >= .figures.latency_s.p99
    and .ratios.cpu_per_delivery_over_run_sign > 0
    and .ratios.wall_over_deliveries_x_run_sign > 0 and .figures.wall_s > 0' "$R" >/dev/null ||
    fail "record fields: $(jq -c '{setup: (.setup | del(.expected_by_class)), figures, ratios, receiver}' "$R")"
D=$(dirname "$R")
if [ "$pinned" = 1 ]; then
    jq -e '.setup.pin.tool == "taskset" and (.setup.pin.herald_cpu != .setup.pin.fedisim_cpu)
        and (.command | test(" --pin"))' "$R" >/dev/null || fail "pin: $(jq -c .setup.pin "$R")"
fi
if [ "$perfed" = 1 ]; then
    jq -e '.profile.samples > 0 and (.profile.self_percent_by_group | keys
        == ["crypto_libraries", "hpack_nghttp2", "kernel", "lmdb", "other", "signing", "tls"])
        and .profile.self_percent_by_group.signing >= 0' "$R" >/dev/null ||
        fail "perf: $(jq -c .profile "$R")"
    grep -q '^top symbols' "$D/perf-summary.txt" || fail "perf summary: $(cat "$D/perf-summary.txt")"
fi
if command -v gnuplot >/dev/null; then
    for p in rate latency latency-time backlog; do [ -s "$D/$p.png" ] || fail "no $p.png"; done
fi
# Each delivery's latency is in the per-delivery file, one line per accepted pair.
[ "$(gzip -dc "$D/latency-per-delivery.dat.gz" | wc -l)" = "$(jq .setup.deliveries_expected "$R")" ] ||
    fail "latency-per-delivery.dat.gz does not hold one line per delivery"
grep 'platform:' "$T/platform.log" | tail -1
pass "herald-bench platform --small: per-delivery latency for every delivery, 0 lost, 0 duplicated (pin=$pinned perf=$perfed)"
