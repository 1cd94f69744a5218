# Shared helpers for integration tests (sourced). Every server a test starts is on 127.0.0.1,
# is killed on exit, and every wait is bounded.
set -euo pipefail
# A command that ends a test through set -e names itself (and its line) on stderr: otherwise
# such a failure prints nothing at all.
set -E
trap 'echo "error: ${BASH_SOURCE[0]##*/}:$LINENO: \"$BASH_COMMAND\" exited $?" >&2' ERR

: "${HD_BUILD:?HD_BUILD must point at the build directory}"
: "${HD_SRC:?HD_SRC must point at the source directory}"
HERALD="$HD_BUILD/engine/herald"
FEDISIM="$HD_BUILD/bench/fedisim"
# Sanitizer builds run the same tests on smaller volumes (the full volumes are proven by the
# normal build in the same suite); HD_SCALE=1 forces full volumes.
HD_ASAN=0
grep -q '^HD_SANITIZE:BOOL=ON' "$HD_BUILD/CMakeCache.txt" 2>/dev/null && HD_ASAN=1
[ "${HD_SCALE:-0}" = 1 ] && HD_ASAN=0
T="$(mktemp -d /tmp/hd-it-XXXXXX)"
chmod 700 "$T"
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    if [ "${HD_KEEP_TMP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $*"; }

need() { command -v "$1" >/dev/null 2>&1 || { echo "SKIP: $1 not installed" >&2; exit 77; }; }

# Waits (bounded) until FILE exists and is non-empty.
wait_file() {
    local f=$1 limit=${2:-100}
    for _ in $(seq "$limit"); do
        [ -s "$f" ] && return 0
        sleep 0.1
    done
    fail "timed out waiting for $f"
}

# mkcerts: test CA and server certs in $T/certs
mkcerts() {
    bash "$HD_SRC/bench/mkcerts.sh" "$T/certs" >/dev/null 2>&1 || fail "mkcerts failed"
}

# start_fedisim ARGS...: starts fedisim, waits for its ready file, sets FS_PID and port vars.
start_fedisim() {
    rm -f "$T/fedisim.ready" # a ready file left by an earlier fedisim would name its dead ports
    "$FEDISIM" --bind 127.0.0.1 --cert "$T/certs/server.pem" --key "$T/certs/server.key" \
        --ready-file "$T/fedisim.ready" --report "$T/fedisim.report.json" \
        --max-seconds "${FS_MAX_SECONDS:-300}" --quiet "$@" >"$T/fedisim.log" 2>&1 &
    FS_PID=$!
    PIDS+=("$FS_PID")
    # Up to 60 s: a loaded CI machine (the clang fuzz build runs beside). A fedisim that exits
    # first (a port taken, bad arguments) fails at once, with its reason.
    for _ in $(seq 600); do
        [ -s "$T/fedisim.ready" ] && break
        kill -0 "$FS_PID" 2>/dev/null || fail "fedisim exited before it was ready: $(tail -3 "$T/fedisim.log")"
        sleep 0.1
    done
    [ -s "$T/fedisim.ready" ] || fail "timed out waiting for $T/fedisim.ready"
    TLS_PORT=$(jq -r '.tls_port // 0' "$T/fedisim.ready")
    TLS_H1_PORT=$(jq -r '.tls_h1_port // 0' "$T/fedisim.ready")
    H2C_PORT=$(jq -r '.h2c_port // 0' "$T/fedisim.ready")
    H1_PORT=$(jq -r '.h1_port // 0' "$T/fedisim.ready")
}

# stop_fedisim: SIGTERM and wait for the final report.
stop_fedisim() {
    rm -f "$T/fedisim.report.json"
    kill -TERM "$FS_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$FS_PID" 2>/dev/null || break; sleep 0.1; done
    wait_file "$T/fedisim.report.json" 50
}

# setup_actor DB: a fresh RSA-2048 key for https://social.example/users/alice
setup_actor() {
    local db=$1
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/alice.pem" 2>/dev/null
    "$HERALD" --db "$db" key add --key-id "https://social.example/users/alice#main-key" \
        --actor "https://social.example/users/alice" --pem "$T/alice.pem" >/dev/null
    "$HERALD" --db "$db" key export-public >"$T/keys.jsonl"
}

# gen_envelopes SCHEME PORT NACT NHOSTS [PREFIX]: NACT activities, each to one inbox on each of
# NHOSTS hosts h<i>.fedi.test, so NACT*NHOSTS deliveries.
gen_envelopes() {
    local scheme=$1 port=$2 nact=$3 nhosts=$4 prefix=${5:-a}
    awk -v s="$scheme" -v p="$port" -v na="$nact" -v nh="$nhosts" -v pf="$prefix" 'BEGIN {
        for (a = 1; a <= na; a++) {
            printf "{\"activity\":{\"@context\":\"https://www.w3.org/ns/activitystreams\",\"id\":\"https://social.example/act/%s%d\",\"type\":\"Create\",\"actor\":\"https://social.example/users/alice\",\"to\":[\"https://www.w3.org/ns/activitystreams#Public\"],\"object\":{\"id\":\"https://social.example/notes/%s%d\",\"type\":\"Note\",\"content\":\"hello %d\"}},\"inboxes\":[", pf, a, pf, a, a
            for (h = 1; h <= nh; h++) {
                printf "%s\"%s://h%d.fedi.test:%d/users/u%d/inbox\"", (h > 1 ? "," : ""), s, h, p, a % 7
            }
            printf "]}\n"
        }
    }'
}

# fs_pairs: distinct (activity, inbox) pairs fedisim has accepted so far.
fs_pairs() {
    curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" \
        "https://fedi.test:$TLS_PORT/_fedisim/stats" | jq -r '.unique_pairs // 0' 2>/dev/null || echo 0
}

# fs_requests: requests fedisim has received so far (its live stats endpoint over TLS).
fs_requests() {
    curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" \
        "https://fedi.test:$TLS_PORT/_fedisim/stats" | jq -r '.requests // 0' 2>/dev/null || echo 0
}
