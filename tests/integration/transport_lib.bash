# Helpers sourced by tests/integration/transport_*.sh (not a test itself: no .sh suffix).
# Servers listen on 127.0.0.1 only, on ephemeral or random ports, and are killed on exit.
set -u
B=${HD_BUILD:?}/tests
T=$(mktemp -d /tmp/hd-transport.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "SKIP: $1 not installed" >&2; exit 77; }; }

# jget JSON KEY: integer value of "KEY":N (first occurrence), empty if absent
jget() { printf '%s' "$1" | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2; }
# expect_eq JSON KEY VALUE
expect_eq() {
    local v
    v=$(jget "$1" "$2")
    [ "${v:-0}" = "$3" ] || fail "$2 = ${v:-absent}, want $3 in: $1"
}

# A test CA, a server certificate for h1.fedi.test / h2.fedi.test / 127.0.0.1, a certificate
# without the IP, and an untrusted self-signed one.
make_pki() {
    need openssl
    local d=$T/pki
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" \
        -out "$d/ca.pem" -days 2 -subj "/CN=Herald Test CA" 2>/dev/null || fail "openssl ca"
    issue() { # name SAN
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$1.key" \
            -out "$d/$1.csr" -subj "/CN=$1" 2>/dev/null || fail "openssl csr"
        printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
            "$2" >"$d/$1.ext"
        openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
            -out "$d/$1.pem" -days 2 -extfile "$d/$1.ext" 2>/dev/null || fail "openssl sign"
    }
    issue server "DNS:h1.fedi.test,DNS:h2.fedi.test,IP:127.0.0.1"
    issue noip "DNS:h1.fedi.test"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/self.key" \
        -out "$d/self.pem" -days 2 -subj "/CN=h1.fedi.test" \
        -addext "subjectAltName=DNS:h1.fedi.test,IP:127.0.0.1" 2>/dev/null || fail "openssl self"
    PKI=$d
}

wait_file() { # file
    for _ in $(seq 600); do [ -s "$1" ] && return 0; sleep 0.05; done
    fail "server did not start ($1)"
}

# start_tool NAME ARGS...: starts tests/tools/NAME with --port-file/--stats-file; sets PORT, STATS
start_tool() {
    local name=$1
    shift
    local pf=$T/port.$RANDOM$RANDOM
    STATS=$T/stats.$RANDOM$RANDOM
    "$B/$name" --port-file "$pf" --stats-file "$STATS" --max-seconds 300 "$@" &
    PIDS+=($!)
    LAST_PID=$!
    wait_file "$pf"
    PORT=$(cat "$pf")
}

stat_of() { sleep 0.1; grep -o "$1=[0-9]*" "$STATS" | cut -d= -f2; }

# start_nghttpd ARGS...: nghttpd on a random free port of 127.0.0.1; sets PORT
start_nghttpd() {
    need nghttpd
    for _ in 1 2 3 4 5 6 7 8; do
        PORT=$((20000 + RANDOM % 40000))
        nghttpd -a 127.0.0.1 "$PORT" "$@" >"$T/nghttpd.log" 2>&1 &
        LAST_PID=$!
        for _ in $(seq 40); do
            kill -0 "$LAST_PID" 2>/dev/null || break
            if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
                PIDS+=("$LAST_PID")
                return 0
            fi
            sleep 0.05
        done
        kill "$LAST_PID" 2>/dev/null
        wait "$LAST_PID" 2>/dev/null
    done
    fail "nghttpd did not start"
}

probe() { timeout 120 "$B/http_probe" "$@"; }

# start_s_server ARGS...: openssl s_server -www on a random port of 127.0.0.1; sets PORT
start_s_server() {
    for _ in 1 2 3 4 5 6 7 8; do
        PORT=$((20000 + RANDOM % 40000))
        openssl s_server -accept "127.0.0.1:$PORT" -quiet -www "$@" >"$T/s_server.log" 2>&1 &
        LAST_PID=$!
        for _ in $(seq 40); do
            kill -0 "$LAST_PID" 2>/dev/null || break
            if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
                PIDS+=("$LAST_PID")
                return 0
            fi
            sleep 0.05
        done
        kill "$LAST_PID" 2>/dev/null
        wait "$LAST_PID" 2>/dev/null
    done
    return 1
}
