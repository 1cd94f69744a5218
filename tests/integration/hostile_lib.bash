# Helpers sourced by tests/integration/hostile_*.sh (not a test itself: no .sh suffix).
# Each script starts one tests/tools/hostile_server per misbehaviour (host LABEL.fedi.test on
# its own port), a healthy fedisim host (ok.fedi.test) and ONE `herald run` against all of
# them with short timeouts, stops it with SIGTERM after RUN_SECONDS and checks, per case, how
# the delivery was classified, that Herald exited 0, that its peak RSS stayed under RSS_MAX_MB
# and that every delivery to the healthy host was made.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
HOSTILE="$HD_BUILD/tests/hostile_server"
[ -x "$HOSTILE" ] || { echo "SKIP: hostile_server not built" >&2; exit 77; }
mkcerts
DB="$T/db"
setup_actor "$DB"
LABELS=()
declare -A HPORT HSTATS
RESOLVE=()
NHEALTHY=${NHEALTHY:-150}
# Peak RSS bound for one run against every case of a script: Herald's own buffers are capped
# (see README "Hardening"); the sanitizer build carries its shadow memory and its 256 MB
# quarantine of freed blocks.
if [ "${HD_ASAN:-0}" = 1 ] || ldd "$HERALD" 2>/dev/null | grep -c libasan >/dev/null; then
    RSS_MAX_MB=${RSS_MAX_MB:-512}
else
    RSS_MAX_MB=${RSS_MAX_MB:-64}
fi

# extra_certs: expired (signed by the test CA, valid 2020-01-01..2020-02-01) and self-signed
# certificates for *.fedi.test in $T/certs.
extra_certs() {
    local d=$T/certs
    mkdir -p "$d/cadb"
    : >"$d/cadb/index"
    echo 01 >"$d/cadb/serial"
    cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $d/cadb/index
new_certs_dir = $d/cadb
serial = $d/cadb/serial
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
EOF
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/expired.key" \
        -out "$d/expired.csr" -subj "/CN=cert-expired.fedi.test" \
        -addext "subjectAltName=DNS:*.fedi.test" 2>/dev/null || fail "openssl csr"
    openssl ca -batch -config "$d/ca.cnf" -cert "$d/ca.pem" -keyfile "$d/ca.key" \
        -in "$d/expired.csr" -out "$d/expired.crt" -startdate 20200101000000Z \
        -enddate 20200201000000Z >/dev/null 2>&1 || fail "openssl ca (expired cert)"
    cat "$d/expired.crt" "$d/ca.pem" >"$d/expired.pem"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/self.key" \
        -out "$d/self.pem" -days 2 -subj "/CN=cert-self.fedi.test" \
        -addext "subjectAltName=DNS:*.fedi.test" 2>/dev/null || fail "openssl self-signed"
}

# start_hostile LABEL MODE [CERT KEY]: hostile_server in MODE as LABEL.fedi.test
start_hostile() {
    local label=$1 mode=$2 cert=${3:-$T/certs/server.pem} key=${4:-$T/certs/server.key}
    local pf="$T/$label.port"
    HSTATS[$label]="$T/$label.stats"
    "$HOSTILE" --mode "$mode" --port-file "$pf" --stats-file "${HSTATS[$label]}" \
        --tls-cert "$cert" --tls-key "$key" --max-seconds 120 \
        --location "https://$label.fedi.test:0/redirected" >"$T/$label.log" 2>&1 &
    PIDS+=($!)
    wait_file "$pf" 300
    HPORT[$label]=$(cat "$pf")
    LABELS+=("$label")
    RESOLVE+=(--resolve "*:${HPORT[$label]}:127.0.0.1")
}

hstat() { grep -o "$2=[0-9]*" "${HSTATS[$1]}" | cut -d= -f2; }

# run_cases SECONDS: enqueues NCASE activities to every hostile host (inbox /users/u1/inbox),
# NHEALTHY to the healthy host, runs Herald for SECONDS, stops it with SIGTERM and reads back
# stats, dead letters and the summary line.
run_cases() {
    local secs=$1 a l pid rc
    cat >"$T/profiles.ini" <<'P'
[*]
latency = fixed 10
P
    start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
    RESOLVE+=(--resolve "*:$TLS_PORT:127.0.0.1")
    for a in $(seq "${NCASE:-2}"); do
        printf '{"activity":{"id":"https://social.example/act/h%d","type":"Create","actor":"https://social.example/users/alice","object":{"id":"https://social.example/n/h%d","to":"as:Public"}},"inboxes":[' "$a" "$a"
        local sep=""
        for l in "${LABELS[@]}"; do
            printf '%s"https://%s.fedi.test:%s/users/u1/inbox"' "$sep" "$l" "${HPORT[$l]}"
            sep=,
        done
        printf ']}\n'
    done >"$T/env.jsonl"
    for a in $(seq "$NHEALTHY"); do
        printf '{"activity":{"id":"https://social.example/act/ok%d","type":"Create","actor":"https://social.example/users/alice","object":{"id":"https://social.example/n/ok%d","to":"as:Public"}},"inboxes":["https://ok.fedi.test:%s/users/u%d/inbox"]}\n' "$a" "$a" "$TLS_PORT" "$a"
    done >>"$T/env.jsonl"
    "$HERALD" --db "$DB" enqueue "$T/env.jsonl" >"$T/enqueue.out" || fail "enqueue"
    # Short timeouts and quick retries so that every case plays out a few times in SECONDS;
    # a breaker threshold above what a run reaches keeps every host attempting.
    "$HERALD" --db "$DB" run "${RESOLVE[@]}" --ca-file "$T/certs/ca.pem" \
        --allow-private-addresses --threads 2 --max-inflight-host 4 \
        --connect-timeout 1000 --tls-timeout 1000 --response-timeout 2000 \
        --retry-base 300 --retry-cap 1500 --max-attempts 1000 --breaker-threshold 1000 \
        2>"$T/run.log" &
    pid=$!
    for _ in $(seq $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    # Then until the healthy host is complete (at most 30 s more: a slow sanitizer build
    # shares its loop threads with hosts that stream at full speed).
    for _ in $(seq 60); do
        kill -0 "$pid" 2>/dev/null || break
        [ "$(healthy_done)" = "$NHEALTHY" ] && break
        sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null || { tail -20 "$T/run.log"; fail "herald run died during the run"; }
    kill -TERM "$pid"
    rc=0
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; fail "herald run did not stop within 15 s of SIGTERM"; }
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || { tail -20 "$T/run.log"; fail "herald run exited $rc after SIGTERM"; }
    "$HERALD" --db "$DB" stats --json >"$T/stats.json" || fail "stats"
    "$HERALD" --db "$DB" dead list --json >"$T/dead.jsonl" || fail "dead list"
    RSS=$(grep -o 'max_rss_mb=[0-9.]*' "$T/run.log" | tail -1 | cut -d= -f2)
    [ -n "$RSS" ] || { tail -5 "$T/run.log"; fail "no summary line"; }
    echo "herald: exit 0 on SIGTERM, peak RSS ${RSS} MB (bound ${RSS_MAX_MB} MB)"
    awk -v r="$RSS" -v m="$RSS_MAX_MB" 'BEGIN { exit !(r + 0 <= m + 0) }' ||
        fail "peak RSS ${RSS} MB above ${RSS_MAX_MB} MB"
    local okdone
    okdone=$(healthy_done)
    [ "$okdone" = "$NHEALTHY" ] || fail "healthy host: $okdone of $NHEALTHY delivered"
    echo "healthy host: $okdone of $NHEALTHY delivered during the run"
}

healthy_done() {
    "$HERALD" --db "$DB" stats --json 2>/dev/null |
        jq --arg h ok.fedi.test '[.hosts[] | select(.host == $h) | .done] | add // 0'
}

hostrec() { jq -c --arg h "$1.fedi.test" '.hosts[] | select(.host == $h)' "$T/stats.json"; }

NFAIL=0
# expect LABEL retry|final|done [REGEX]: retry = nothing done, nothing final, at least one
# failed attempt (last_error matching REGEX); final = every delivery a dead letter (its error or
# status matching REGEX); done = every delivery made.
expect() {
    local l=$1 want=$2 re=${3:-.} r done failed failures err n=${NCASE:-2} ok=1
    r=$(hostrec "$l")
    done=$(jq -r '.done // 0' <<<"${r:-{\}}")
    failed=$(jq -r '.failed // 0' <<<"${r:-{\}}")
    failures=$(jq -r '.failures // 0' <<<"${r:-{\}}")
    err=$(jq -r '.last_error // ""' <<<"${r:-{\}}")
    case $want in
    retry)
        [ "$done" = 0 ] && [ "$failed" = 0 ] && [ "$failures" -ge 1 ] || ok=0
        grep -Eqi -- "$re" <<<"$err" || ok=0
        ;;
    final)
        [ "$failed" = "$n" ] && [ "$done" = 0 ] || ok=0
        err=$(jq -r --arg h "$l.fedi.test" 'select(.inbox | contains($h)) | "\(.status) \(.error)"' \
            "$T/dead.jsonl" | head -1)
        grep -Eqi -- "$re" <<<"$err" || ok=0
        ;;
    done)
        [ "$done" = "$n" ] && [ "$failed" = 0 ] || ok=0
        ;;
    esac
    if [ $ok = 1 ]; then
        printf 'ok    %-24s %-6s done=%s failed=%s failures=%s: %s\n' "$l" "$want" "$done" "$failed" "$failures" "$err"
    else
        printf 'WRONG %-24s want %-6s done=%s failed=%s failures=%s: %s\n' "$l" "$want" "$done" "$failed" "$failures" "$err"
        NFAIL=$((NFAIL + 1))
    fi
}

finish() {
    [ "$NFAIL" = 0 ] || fail "$NFAIL of ${#LABELS[@]} cases misclassified"
    pass "$1: ${#LABELS[@]} cases classified as expected; Herald up, RSS ${RSS} MB <= ${RSS_MAX_MB} MB, healthy host complete"
}
