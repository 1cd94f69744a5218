#!/usr/bin/env bash
# Installs the Debian 12 packages Herald builds, tests and benchmarks with.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang python3
      liburing-dev libnghttp2-dev libwolfssl-dev ca-certificates liblmdb-dev libmsgpack-dev libc-ares-dev
      libjansson-dev libssl-dev libinih-dev libidn2-dev libnats-dev nats-server
      nghttp2-server nghttp2-client openssl lmdb-utils curl jq gnuplot-nox procps iproute2
      prometheus python3-cryptography linux-perf
      python3-yaml nodejs chromium chromium-driver)
# Debian's npm package; a nodejs that brings its own npm (NodeSource) conflicts with it.
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "herald: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm packages the tests use, at pinned versions, cached outside the tree
# (${HD_NPM_CACHE:-$HOME/.cache/herald/npm}; tests/integration/lib/npm_tools.sh).
if command -v npm >/dev/null 2>&1; then
    source "$(dirname "$0")/../tests/integration/lib/npm_tools.sh"
    npm_tools openapi "${HD_NPM_OPENAPI[@]}" >/dev/null ||
        echo "herald: could not fill the npm cache (the OpenAPI test will try again)" >&2
fi
