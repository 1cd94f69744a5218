# Helpers for the cluster tests (sourced after common.sh): a nats-server with JetStream on a
# free loopback port and a temporary store, and herald nodes, each with its own store
# holding the same signing key (keys are provisioned on every node: docs/cluster.md).
need nats-server

# free_port: a TCP port nothing listens on now (checked with ss), from a range unlikely to
# collide with parallel runs.
free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 30000))
        ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
    done
    fail "no free port"
}

# start_nats: starts nats-server -js on NATS_PORT (chosen once), store in $T/js. A port this
# function chose and another process took first (tests run in parallel) is chosen again, up
# to 5 times; a restart keeps its port.
start_nats() {
    local chosen=0 up=0 attempt logpos newlog
    [ -n "${NATS_PORT:-}" ] || { NATS_PORT=$(free_port); chosen=1; }
    mkdir -p "$T/js"
    for attempt in 1 2 3 4 5; do
        logpos=$(stat -c %s "$T/nats.log" 2>/dev/null || echo 0)
        nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$T/js" >>"$T/nats.log" 2>&1 &
        NATS_PID=$!
        PIDS+=("$NATS_PID")
        # A restart recovers the JetStream store before it listens: slow on a loaded machine.
        # Up: this server logged that it is ready and answers on the port (another process
        # listening on a port this server failed to bind does not count).
        up=0
        for _ in $(seq 300); do
            newlog=$(tail -c +"$((logpos + 1))" "$T/nats.log")
            if kill -0 "$NATS_PID" 2>/dev/null && [[ $newlog == *"Server is ready"* ]] &&
                (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; then
                up=1
                break
            fi
            kill -0 "$NATS_PID" 2>/dev/null || break
            sleep 0.1
        done
        [ "$up" = 1 ] && break
        newlog=$(tail -c +"$((logpos + 1))" "$T/nats.log")
        [ "$chosen" = 1 ] && [[ $newlog == *"address already in use"* ]] || break
        wait "$NATS_PID" 2>/dev/null || true
        echo "nats-server: port $NATS_PORT taken (attempt $attempt), choosing another" >&2
        NATS_PORT=$(free_port)
    done
    [ "$up" = 1 ] || { tail -20 "$T/nats.log" >&2; fail "nats-server not listening on $NATS_PORT after 30 s"; }
    NATS_URL="nats://127.0.0.1:$NATS_PORT"
}

stop_nats() {
    kill -TERM "$NATS_PID" 2>/dev/null || true
    wait "$NATS_PID" 2>/dev/null || true
}

# node_db NAME: a store for node NAME with alice's key ($T/alice.pem made by setup_actor).
node_db() {
    local db="$T/db-$1"
    if [ ! -d "$db" ]; then
        "$HERALD" --db "$db" key add --key-id "https://social.example/users/alice#main-key" \
            --actor "https://social.example/users/alice" --pem "$T/alice.pem" >/dev/null
    fi
    echo "$db"
}

# start_node NAME [ARGS...]: starts `herald run --cluster` for NAME; its pid in NODE_PID[NAME].
declare -A NODE_PID
start_node() {
    local name=$1
    shift
    local db
    db=$(node_db "$name")
    "$HERALD" --db "$db" run --cluster "$NATS_URL" --node "$name" \
        --cluster-partitions "${PARTITIONS:-64}" --cluster-lease "${LEASE:-3000}" \
        --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" \
        --allow-private-addresses --threads 1 --max-inflight-host 4 --retry-base 200 \
        --retry-cap 1000 --drain-timeout 2s "$@" >>"$T/node-$name.out" 2>>"$T/node-$name.log" &
    NODE_PID[$name]=$!
    PIDS+=("${NODE_PID[$name]}")
}

# stop_node NAME: SIGTERM and wait (bounded).
stop_node() {
    local pid=${NODE_PID[$1]}
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# cluster_status: herald cluster status --json (an error object when NATS does not answer,
# so that the waits below retry instead of ending the test under set -e).
cluster_status() {
    "$HERALD" cluster status --cluster "$NATS_URL" --json 2>>"$T/status.err" ||
        echo '{"nodes":{},"partitions":[],"error":"status failed"}'
}

# wait_balanced NAME...: until exactly these nodes are live, each owns a share, and they own
# all partitions between them under valid leases (bounded, 60 s).
wait_balanced() {
    local names want=${PARTITIONS:-64} s
    names=$(printf '%s\n' "$@" | sort | jq -R . | jq -sc .)
    for _ in $(seq 300); do
        s=$(cluster_status | jq -c --argjson names "$names" --argjson want "$want" '
            ([.nodes | to_entries[] | select(.value.live) | .key] | sort) as $live
            | [.nodes[] | select(.live) | .partitions | length] as $k
            | [.partitions[] | select(.lease_valid and .node != "")] | length as $valid
            | {ok: ($live == $names and ($k | all(. > 0)) and ($k | add) == $want
                    and $valid == $want), live: $live, shares: $k}')
        [ "$(jq .ok <<<"$s")" = true ] && return 0
        sleep 0.2
    done
    tail -3 "$T/status.err" 2>/dev/null >&2 || true
    fail "cluster not balanced over $*: $s"
}

# wait_pairs N [SECS]: until fedisim has seen N distinct (activity, inbox) pairs.
wait_pairs() {
    local want=$1 secs=${2:-90} n=0
    for _ in $(seq $((secs * 5))); do
        n=$(curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" \
            "https://fedi.test:$TLS_PORT/_fedisim/stats" | jq -r '.unique_pairs // 0' 2>/dev/null || echo 0)
        [ "$n" -ge "$want" ] && return 0
        sleep 0.2
    done
    fail "fedisim saw $n of $want pairs"
}
