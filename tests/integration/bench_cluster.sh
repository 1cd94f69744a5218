#!/usr/bin/env bash
# herald-bench cluster, smoke size: the plain node, a one-node and a two-node cluster (300
# deliveries each, one round), every node in a cgroup with a 0.3-core quota. Checks that the
# record has its fields, that nothing was lost or duplicated, that the quota held (no node used
# more CPU than 0.3 core over its run's window), and that the cgroups are gone afterwards.
# Skips (77) when cgroups cannot be written (not root) or nats-server is missing.
source "$(dirname "$0")/lib/common.sh"
need jq; need curl; need openssl; need nats-server
BENCH="$HD_BUILD/bench/herald-bench"
[ -x "$BENCH" ] || fail "$BENCH is not built"
rc=0
timeout 240 "$BENCH" cluster --small --runs 1 --nodes 1,2 --out "$T/out" --no-results \
    --no-plots >"$T/bench.out" 2>"$T/bench.err" || rc=$?
if [ "$rc" = 77 ]; then
    echo "SKIP: $(grep -m1 'cluster:' "$T/bench.err")" >&2
    exit 77
fi
cat "$T/bench.err" >&2
[ "$rc" = 0 ] || fail "herald-bench cluster exited $rc"
J=$(cat "$T/bench.out")
[ -s "$J" ] || J=$(find "$T/out" -name cluster.json | head -1)
[ -s "$J" ] || fail "no cluster.json"

jq -e '.scenario == "cluster" and .setup.deliveries == 300 and .setup.node_cpu == 0.3
    and .setup.runs == 1 and .setup.nodes == [1, 2] and (.setup.cgroup.version | IN(1, 2))
    and (.medians | keys == ["cluster-1", "cluster-2", "single"])
    and ([.medians[] | .deliveries_per_s, .wall_s, .cpu_us_per_delivery,
          .cpu_us_per_delivery_max_node] | all(type == "number" and . > 0))
    and (.ratios["2"] | (.throughput_over_n_x_one | type == "number")
          and (.cpu_per_delivery_over_one | type == "number"))
    and (.ratios.one_over_single.throughput | type == "number")
    and (.checks | has("throughput_target") and has("cpu_target"))' "$J" >/dev/null ||
    fail "cluster.json lacks fields: $(jq -c '{setup, medians, ratios, checks}' "$J")"

# Every run complete, exactly once per (activity, inbox), as fedisim counted.
jq -e '.checks.all_complete and .checks.no_loss and .checks.no_duplicates
    and .checks.no_bad_signature and (.runs | length == 3)
    and all(.runs[]; .receiver.unique_pairs == 300 and .lost == 0 and .duplicates == 0
        and .receiver.missing == 0)' "$J" >/dev/null ||
    fail "loss or duplicates: $(jq -c '[.runs[] | {config, receiver}]' "$J")"

# Per node: its deliveries add up to the fan-out, each node of the two-node cluster took a
# share under its own leases, and its CPU over the window stayed within the quota (0.3 core x
# the window, plus one 100 ms period of slack).
jq -e 'all(.runs[]; . as $r | ([.nodes[].delivered] | add) == 300 and (.nodes | length) == .nodes_n
        and all(.nodes[]; .cpu_s > 0 and .cpu_s <= 0.3 * $r.window_s + 0.03))' "$J" >/dev/null ||
    fail "node figures: $(jq -c '[.runs[] | {config, window_s, nodes: [.nodes[] | {name, delivered, cpu_s}]}]' "$J")"
jq -e '.runs[] | select(.config == "cluster-2") | all(.nodes[]; .delivered > 0 and .partitions > 0
        and .sends_outside_leases == 0)' "$J" >/dev/null ||
    fail "two-node shares: $(jq -c '.runs[] | select(.config == "cluster-2") | .nodes' "$J")"

# The cgroups the bench made are gone.
CG=$(jq -r .setup.cgroup.cpu "$J")
for g in $(jq -r '.runs[].nodes[].cgroup' "$J"); do
    [ ! -d "$CG/$g" ] || fail "cgroup $CG/$g left behind"
done
pass "herald-bench cluster (smoke): $(jq -r '[.medians | to_entries[] | "\(.key) \(.value.deliveries_per_s)/s"] | join(", ")' "$J"); 0 lost, 0 duplicates"
