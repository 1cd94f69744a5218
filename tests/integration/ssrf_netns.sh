#!/usr/bin/env bash
# SSRF guard, end to end at the resolver/guard layer, in a network namespace that has only
# loopback: nothing the probe does can leave the machine. tests/tools/addr_probe.c checks
# that hd_addr_check refuses every non-public class, that names steered to loopback through
# --resolve-style overrides (exact, "*", mapped, NAT64, 6to4, compatible) are refused before
# connect while a control with allow_private does connect, that a rebound name is refused on
# its next dial, and that the system resolver fails fast inside the namespace.
# Needs root and `ip netns`; exits 77 (skip) otherwise.
set -u
HD_BUILD=${HD_BUILD:-$(dirname "$0")/../../build}
PROBE="$HD_BUILD/tests/addr_probe"

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root for ip netns"
    exit 77
fi
if ! command -v ip >/dev/null 2>&1; then
    echo "SKIP: no ip(8)"
    exit 77
fi
if [ ! -x "$PROBE" ]; then
    echo "FAIL: $PROBE not built"
    exit 1
fi

NS="herald-ssrf-$$"
if ! ip netns add "$NS" 2>/dev/null; then
    echo "SKIP: ip netns add failed (no privilege or no netns support)"
    exit 77
fi
trap 'ip netns del "$NS" 2>/dev/null' EXIT

if ! ip netns exec "$NS" ip link set lo up; then
    echo "SKIP: cannot bring up lo in the namespace"
    exit 77
fi
# The namespace must have nothing but loopback, and no route off the machine.
links=$(ip netns exec "$NS" ip -o link show | awk -F': ' '{print $2}' | grep -v '^lo$' || true)
if [ -n "$links" ]; then
    echo "FAIL: namespace has more than loopback: $links"
    exit 1
fi
if ip netns exec "$NS" ip route get 93.184.216.34 >/dev/null 2>&1; then
    echo "FAIL: namespace has a route off the machine"
    exit 1
fi

ip netns exec "$NS" timeout 60 "$PROBE"
rc=$?
if [ $rc -ne 0 ]; then
    echo "FAIL: addr_probe exited $rc"
    exit 1
fi
echo "ssrf_netns: ok"
exit 0
