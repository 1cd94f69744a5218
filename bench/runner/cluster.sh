# shellcheck shell=bash
# Sourced by herald-bench: the `cluster` scenario (bench/README.md, "The cluster scenario").
#
# The same fan-out (POSTS activities, each to one inbox on each of HOSTS hosts, explicit
# inbox lists) is delivered by a plain single node (the reference: `herald run` without
# --cluster, the envelopes POSTed to its ingest endpoint), then by clusters of 1, 2 and 4
# nodes (`herald run --cluster --node nK` over one `nats-server -js` on loopback with a
# temporary store, the envelopes published with `herald enqueue --cluster`). Every node, the
# reference too, runs in a cgroup of its own with the same CPU quota (--node-cpu, default 0.3
# core): cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us, or cgroup v2 cpu.max. nats-server,
# fedisim and the producer run outside the quotas. The configurations are interleaved
# (reference, 1, 2, 4, then again), --runs times (default 3), and the medians are compared.
#
# Needs root (or write access to the cgroup hierarchy); exits 77 with a message otherwise.

CL_CPU="" CL_ACCT="" CL_VER="" CL_GROUPS=()

# cl_detect: finds a writable cpu controller. cgroup v1 first (the cpu controller, and
# cpuacct for the usage, which may be mounted with it or apart), else cgroup v2 with the cpu
# controller available. Sets CL_VER (1|2), CL_CPU (where groups are made), CL_ACCT (v1's
# cpuacct directory, empty when there is none: then /proc/PID/stat gives the usage).
cl_detect() {
    local mnt type opts rest own
    while read -r _ mnt type opts rest; do
        [ "$type" = cgroup ] || continue
        case ",$opts," in *,cpu,*) CL_CPU=$mnt ;; esac
        case ",$opts," in *,cpuacct,*) CL_ACCT=$mnt ;; esac
    done </proc/self/mounts
    if [ -n "$CL_CPU" ] && [ -e "$CL_CPU/cpu.cfs_quota_us" ]; then
        CL_VER=1
        # Inside a container the process's own group is the place to make children in.
        own=$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ { print $3; exit }' /proc/self/cgroup)
        [ -z "$own" ] || [ "$own" = / ] || [ ! -w "$CL_CPU$own" ] || CL_CPU=$CL_CPU$own
        if [ -n "$CL_ACCT" ]; then
            own=$(awk -F: '$2 ~ /(^|,)cpuacct(,|$)/ { print $3; exit }' /proc/self/cgroup)
            [ -z "$own" ] || [ "$own" = / ] || [ ! -w "$CL_ACCT$own" ] || CL_ACCT=$CL_ACCT$own
        fi
        return 0
    fi
    CL_CPU="" CL_ACCT=""
    while read -r _ mnt type opts rest; do
        [ "$type" = cgroup2 ] || continue
        if grep -qw cpu "$mnt/cgroup.controllers" 2>/dev/null; then
            CL_VER=2 CL_CPU=$mnt
            grep -qw cpu "$mnt/cgroup.subtree_control" 2>/dev/null ||
                echo +cpu >"$mnt/cgroup.subtree_control" 2>/dev/null || true
            return 0
        fi
    done </proc/self/mounts
    return 1
}

# cl_cg_make NAME CPUS: a group NAME limited to CPUS cores (period 100 ms).
cl_cg_make() {
    local name=$1 cpus=$2 quota
    quota=$(awk -v c="$cpus" 'BEGIN { printf "%d", c * 100000 }')
    mkdir "$CL_CPU/$name" 2>/dev/null || return 1
    CL_GROUPS+=("$name")
    if [ "$CL_VER" = 1 ]; then
        echo 100000 >"$CL_CPU/$name/cpu.cfs_period_us" &&
            echo "$quota" >"$CL_CPU/$name/cpu.cfs_quota_us" || return 1
        if [ -n "$CL_ACCT" ] && [ "$CL_ACCT" != "$CL_CPU" ]; then
            mkdir "$CL_ACCT/$name" 2>/dev/null || return 1
        fi
    else
        echo "$quota 100000" >"$CL_CPU/$name/cpu.max" || return 1
    fi
}

# cl_cg_procs NAME: the cgroup.procs files a process of group NAME is written to.
cl_cg_procs() {
    echo "$CL_CPU/$1/cgroup.procs"
    if [ "$CL_VER" = 1 ] && [ -n "$CL_ACCT" ] && [ "$CL_ACCT" != "$CL_CPU" ]; then
        echo "$CL_ACCT/$1/cgroup.procs"
    fi
}

# cl_cg_usage_ns NAME PID: CPU time used by the group (cpuacct.usage, or cpu.stat
# usage_usec), else by the process (/proc/PID/stat, every thread), in nanoseconds.
cl_cg_usage_ns() {
    local name=$1 pid=$2 acct=${CL_ACCT:-}
    if [ "$CL_VER" = 1 ] && [ -n "$acct" ] && [ -r "$acct/$name/cpuacct.usage" ]; then
        cat "$acct/$name/cpuacct.usage"
    elif [ "$CL_VER" = 2 ] && [ -r "$CL_CPU/$name/cpu.stat" ]; then
        awk '$1 == "usage_usec" { printf "%d\n", $2 * 1000 }' "$CL_CPU/$name/cpu.stat"
    else
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1e9 / hz }' \
            "/proc/$pid/stat" 2>/dev/null || echo 0
    fi
}

# cl_cg_throttled NAME: periods in which the quota held the group back (cpu.stat nr_throttled).
cl_cg_throttled() {
    awk '$1 == "nr_throttled" { print $2 }' "$CL_CPU/$1/cpu.stat" 2>/dev/null | grep . || echo 0
}

# cl_cg_remove NAME: removes the group (its processes are gone; retried briefly).
cl_cg_remove() {
    local name=$1 d
    for d in "$CL_CPU/$name" ${CL_ACCT:+"$CL_ACCT/$name"}; do
        [ -d "$d" ] || continue
        for _ in $(seq 50); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
    done
}

cl_cg_remove_all() {
    local g
    for g in "${CL_GROUPS[@]:-}"; do [ -z "$g" ] || cl_cg_remove "$g"; done
}

# cl_need_cgroups: a probe group with a quota, made and removed; exit 77 when not writable.
cl_need_cgroups() {
    local probe=herald-bench-$$-probe
    if ! cl_detect; then
        log "cluster: no cgroup cpu controller is mounted (v1 cpu or v2 with cpu); cannot hold nodes to a CPU share"
        exit 77
    fi
    if ! cl_cg_make "$probe" "$NODE_CPU"; then
        cl_cg_remove "$probe"
        log "cluster: cannot create a CPU-limited cgroup under $CL_CPU (cgroup v$CL_VER): the cluster scenario needs root (or write access to that hierarchy)"
        exit 77
    fi
    cl_cg_remove "$probe"
    CL_GROUPS=()
}

# cl_start NAME LOG CMD...: starts CMD in cgroup NAME (made here, quota NODE_CPU), stderr
# to LOG; the process is moved into the group before it execs, so all its threads are in it.
# Sets CL_PID.
cl_start() {
    local name=$1 lg=$2
    shift 2
    cl_cg_make "$name" "$NODE_CPU" || die "cannot create cgroup $name under $CL_CPU"
    local procs
    mapfile -t procs < <(cl_cg_procs "$name")
    (
        for f in "${procs[@]}"; do echo "$BASHPID" >"$f" || exit 97; done
        exec "$@"
    ) >>"$lg.out" 2>>"$lg" &
    CL_PID=$!
    PIDS+=("$CL_PID")
}

# cl_stop PID: SIGTERM, wait up to 30 s (a node drains, checkpoints and releases), then -9.
cl_stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# cl_wait_port PORT: until something accepts on 127.0.0.1:PORT (bounded, 20 s).
cl_wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# cl_wait_balanced URL N: until N nodes are live, each owns a share, and every partition has
# an owner under a valid lease (bounded, 60 s).
cl_wait_balanced() {
    local url=$1 nn=$2 s=""
    for _ in $(seq 300); do
        s=$("$HERALD" cluster status --cluster "$url" --json 2>/dev/null | jq -c --argjson n "$nn" \
            --argjson p "$PARTS" '[.nodes[] | select(.live) | .partitions | length] as $k
            | ([.partitions[] | select(.lease_valid and .node != "")] | length) as $v
            | {ok: (($k | length) == $n and ($k | all(. > 0)) and ($k | add) == $p and $v == $p),
               shares: $k}' 2>/dev/null || true)
        [ "$(jq -r '.ok // false' <<<"$s" 2>/dev/null)" = true ] && return 0
        sleep 0.2
    done
    die "cluster of $nn nodes not balanced within 60 s: $s"
}

# cl_run_config KIND NODES REPEAT: one run of one configuration; writes its record.
# KIND: single (the plain node) or cluster.
cl_run_config() {
    local kind=$1 nn=$2 k=$3
    local cfg=single
    [ "$kind" = single ] || cfg=cluster-$nn
    RUNID=$(date -u +%Y%m%dT%H%M%SZ)-$cfg-r$k
    local run=$CL_OUT/$cfg-r$k
    local w=$run/work
    mkdir -p "$w"; chmod 700 "$w"
    log "cluster: run $k/$RUNS, $cfg ($([ "$kind" = single ] && echo "plain node" || echo "$nn node(s)"), $NODE_CPU core each)"
    local load0 port
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    port=$(pick_port)

    # --- the fan-out: POSTS activities, each to one inbox on each of HOSTS hosts
    activity __N__ 1 >"$w/activity.tmpl"
    awk -v s="$SCHEME" -v pt="$port" -v np="$POSTS" -v nh="$HOSTS" '{ t = $0 }
        END { for (p = 1; p <= np; p++) {
            a = t; gsub(/__N__/, p, a); printf "{\"activity\":%s,\"inboxes\":[", a
            for (h = 0; h < nh; h++)
                printf "%s\"%s://h%d.fedi.test:%d/users/u%d/inbox\"", (h > 0 ? "," : ""), s, h, pt, p % 7
            print "]}" } }' "$w/activity.tmpl" >"$w/posts.jsonl"
    awk -v s="$SCHEME" -v pt="$port" -v rid="$RUNID" -v nh="$HOSTS" '{
        for (h = 0; h < nh; h++)
            printf "{\"id\":\"https://social.example/act/%s-%d\",\"inbox\":\"%s://h%d.fedi.test:%d/users/u%d/inbox\"}\n", rid, NR, s, h, pt, NR % 7 }' \
        "$w/posts.jsonl" >"$w/expect.jsonl"
    local deliveries
    deliveries=$(wc -l <"$w/expect.jsonl")

    # --- fedisim (outside the quotas), sampled verification
    local listen=(--tls-port "$port")
    [ "$LEAFS" -gt 0 ] && listen+=(--leaf-certs "$CL_CERTS/leaf")
    [ "$SCHEME" = http ] && listen=(--h2c-port "$port")
    "$FEDISIM" --bind 127.0.0.1 --cert "$CL_CERTS/server.pem" --key "$CL_CERTS/server.key" \
        "${listen[@]}" --h1-port 0 --profiles "$CL_PROFILES" --keys "$CL_KEYS" \
        --verify "$VERIFY" --expect "$w/expect.jsonl" --max-conns 30000 --seed "$SEED" \
        --ready-file "$w/fedisim.ready" --report "$w/fedisim.report.json" \
        --max-seconds $((TIME_LIMIT + 300)) --quiet >"$w/fedisim.log" 2>&1 &
    local fs_pid=$!
    PIDS+=("$fs_pid")
    wait_file "$w/fedisim.ready" 600 || die "fedisim did not start: $(tail -3 "$w/fedisim.log")"
    local ctl
    ctl=$(jq -r .h1_port "$w/fedisim.ready")
    cl_pairs() {
        curl -s --max-time 5 -H 'Host: ctl.fedi.test' "http://127.0.0.1:$ctl/_fedisim/stats" |
            jq -r '.unique_pairs // 0' 2>/dev/null || echo 0
    }

    # --- nats-server (cluster only), the nodes in their cgroups
    local nats_pid="" url="" npid=() ngrp=() i db
    local ra=(--resolve "*:$port:127.0.0.1" --ca-file "$CL_CERTS/ca.pem" --allow-private-addresses
        --threads "${THREADS:-1}")
    # shellcheck disable=SC2206
    ra+=($RUN_ARGS)
    if [ "$kind" = cluster ]; then
        local nport
        nport=$(pick_port)
        nats-server -js -a 127.0.0.1 -p "$nport" -sd "$w/js" >"$w/nats.log" 2>&1 &
        nats_pid=$!
        PIDS+=("$nats_pid")
        cl_wait_port "$nport" || die "nats-server did not start: $(tail -3 "$w/nats.log")"
        url=nats://127.0.0.1:$nport
    fi
    for i in $(seq "$nn"); do
        db=$w/db-n$i
        "$HERALD" --db "$db" key add --key-id "https://social.example/users/a1#main-key" \
            --actor "https://social.example/users/a1" --pem "$CL_KEY" >/dev/null ||
            die "herald key add failed"
        ngrp+=("herald-bench-$$-$cfg-r$k-n$i")
        if [ "$kind" = single ]; then
            head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$w/token"
            chmod 600 "$w/token"
            cl_start "${ngrp[-1]}" "$w/n$i.log" "$HERALD" --db "$db" run "${ra[@]}" \
                --listen "unix:$w/h.sock" --token-file "$w/token"
        else
            cl_start "${ngrp[-1]}" "$w/n$i.log" "$HERALD" --db "$db" run "${ra[@]}" \
                --cluster "$url" --node "n$i" --cluster-partitions "$PARTS"
        fi
        npid+=("$CL_PID")
    done
    if [ "$kind" = single ]; then
        for _ in $(seq 300); do [ -S "$w/h.sock" ] && break; sleep 0.1; done
        [ -S "$w/h.sock" ] || die "herald run did not open its ingest socket: $(tail -3 "$w/n1.log")"
    else
        cl_wait_balanced "$url" "$nn"
        "$HERALD" cluster status --cluster "$url" --json >"$w/status-before.json" 2>/dev/null || true
    fi

    # --- the fan-out, timed from the hand-over to fedisim holding every pair
    local cpu0=() thr0=() t0 busy0
    for i in $(seq 0 $((nn - 1))); do
        cpu0+=("$(cl_cg_usage_ns "${ngrp[$i]}" "${npid[$i]}")")
        thr0+=("$(cl_cg_throttled "${ngrp[$i]}")")
    done
    busy0=$(busy_jiffies)
    local fs0 nats0=0
    fs0=$(proc_cpu_s "$fs_pid")
    [ -z "$nats_pid" ] || nats0=$(proc_cpu_s "$nats_pid")
    t0=$(now_ms)
    if [ "$kind" = single ]; then
        curl -s --max-time 120 --unix-socket "$w/h.sock" -H "Authorization: Bearer $(cat "$w/token")" \
            -H 'Content-Type: application/x-ndjson' --data-binary "@$w/posts.jsonl" \
            http://herald/v1/activities >"$w/enq.out" || die "POST /v1/activities failed"
        local sent
        sent=$(jq -s '[.. | objects | .deliveries? // empty] | add // 0' "$w/enq.out" 2>/dev/null || echo 0)
        [ "$sent" = "$deliveries" ] || log "ingest answered $sent deliveries, expected $deliveries"
    else
        "$HERALD" enqueue --cluster "$url" "$w/posts.jsonl" >"$w/enq.out" ||
            die "enqueue --cluster refused lines: $(grep -m3 false "$w/enq.out")"
    fi
    local t_enq u=0 last=-1 still=0
    t_enq=$(now_ms)
    while [ $(( $(now_ms) - t0 )) -lt $((TIME_LIMIT * 1000)) ]; do
        u=$(cl_pairs)
        [ "$u" -ge "$deliveries" ] && break
        if [ "$u" = "$last" ]; then still=$((still + 1)); else still=0; last=$u; fi
        [ "$still" -lt 100 ] || break # nothing for 20 s
        sleep 0.2
    done
    local t1 cpu1=() thr1=() busy1 fs1 nats1=0
    t1=$(now_ms)
    for i in $(seq 0 $((nn - 1))); do
        cpu1+=("$(cl_cg_usage_ns "${ngrp[$i]}" "${npid[$i]}")")
        thr1+=("$(cl_cg_throttled "${ngrp[$i]}")")
    done
    busy1=$(busy_jiffies)
    fs1=$(proc_cpu_s "$fs_pid")
    [ -z "$nats_pid" ] || nats1=$(proc_cpu_s "$nats_pid")
    [ "$u" -ge "$deliveries" ] || log "$cfg: fedisim holds $u of $deliveries pairs after $(( (t1 - t0) / 1000 )) s"
    [ "$kind" = single ] || "$HERALD" cluster status --cluster "$url" --json >"$w/status-after.json" 2>/dev/null || true

    # --- stop: nodes (closing reports), nats-server, fedisim (its report)
    for i in $(seq 0 $((nn - 1))); do cl_stop "${npid[$i]}"; done
    for i in $(seq 0 $((nn - 1))); do cl_cg_remove "${ngrp[$i]}"; done
    if [ -n "$nats_pid" ]; then
        kill -TERM "$nats_pid" 2>/dev/null || true
        wait "$nats_pid" 2>/dev/null || true
    fi
    rm -f "$w/fedisim.report.json"
    kill -TERM "$fs_pid" 2>/dev/null || true
    wait "$fs_pid" 2>/dev/null || true
    [ -s "$w/fedisim.report.json" ] || die "fedisim wrote no report"

    # --- per node: CPU in the window, deliveries (summary line), closing report
    : >"$w/nodes.jsonl"
    for i in $(seq 0 $((nn - 1))); do
        local lg=$w/n$((i + 1)).log sum rep
        sum=$(grep -o 'summary:.*' "$lg" | tail -1 || true)
        [ -n "$sum" ] || die "node n$((i + 1)) printed no summary: $(tail -3 "$lg")"
        rep=$(grep -h '^{"cluster_node"' "$lg" | tail -1 || true)
        [ -s "$w/status-before.json" ] || echo '{}' >"$w/status-before.json"
        jq -nc --arg name "n$((i + 1))" --arg sum "$sum" --argjson rep "${rep:-null}" \
            --arg group "${ngrp[$i]}" \
            --slurpfile st "$w/status-before.json" \
            --argjson c0 "${cpu0[$i]}" --argjson c1 "${cpu1[$i]}" \
            --argjson th "$(( ${thr1[$i]} - ${thr0[$i]} ))" '
            def sv($k): ($sum | capture(" " + $k + "=(?<v>[0-9.]+)") | .v | tonumber) // null;
            {name: $name, cgroup: $group, delivered: sv("delivered"), attempts: sv("attempts"),
             cpu_s: (($c1 - $c0) / 1e9 * 1000 | round / 1000),
             throttled_periods: $th,
             enqueued: ($rep.enqueued // null), replayed: ($rep.replayed // null),
             refused: ($rep.refused // null),
             sends: (if $rep then [$rep.partitions[] | .sends] | add // 0 else null end),
             partitions: ($st[0].nodes[$name].partitions // null | if . then length else null end),
             sends_outside_leases: (if $rep then [$rep.partitions[] | .sends_outside_leases] | add // 0 else null end)}
            | .cpu_us_per_delivery = (if .delivered and .delivered > 0 then .cpu_s * 1e6 / .delivered | round else null end)' \
            >>"$w/nodes.jsonl" || die "could not read node n$((i + 1))'s figures"
    done
    local rec=$run/run.json # not record.json: `herald-bench summary` reads those
    jq -n --arg config "$cfg" --arg kind "$kind" --argjson nodes_n "$nn" --argjson repeat "$k" \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg load0 "$load0" \
        --arg load1 "$(cut -d' ' -f1-3 /proc/loadavg)" --argjson deliveries "$deliveries" \
        --argjson t0 "$t0" --argjson t_enq "$t_enq" --argjson t1 "$t1" \
        --argjson fs_cpu "$(awk -v a="$fs0" -v b="$fs1" 'BEGIN { print b - a }')" \
        --argjson nats_cpu "$(awk -v a="$nats0" -v b="$nats1" 'BEGIN { print b - a }')" \
        --argjson busy "$(awk -v a="$busy0" -v b="$busy1" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }')" \
        --slurpfile nodes "$w/nodes.jsonl" --slurpfile f "$w/fedisim.report.json" '
        def r3: . * 1000 | round / 1000;
        $f[0] as $f |
        (($nodes | map(.cpu_s) | add)) as $cpu |
        (if $f.unique_pairs == $deliveries and $f.last_accept_ms > 0
         then ($f.last_accept_ms - $t0) / 1000 else null end) as $wall |
        {config: $config, kind: $kind, nodes_n: $nodes_n, repeat: $repeat, date: $date,
         load: {before: $load0, after: $load1, machine_busy_cpu_s: ($busy | r3),
                others_cpu_s: (($busy - $cpu - $fs_cpu - $nats_cpu) | r3)},
         deliveries_expected: $deliveries, complete: ($wall != null),
         wall_s: (if $wall then $wall | r3 else null end),
         hand_over_s: (($t_enq - $t0) / 1000 | r3),
         window_s: (($t1 - $t0) / 1000 | r3),
         deliveries_per_s: (if $wall and $wall > 0 then $deliveries / $wall | r3 else null end),
         cpu_s: ($cpu | r3),
         cpu_us_per_delivery: (if $f.unique_pairs > 0 then $cpu * 1e6 / $f.unique_pairs | r3 else null end),
         cpu_us_per_delivery_max_node: ([$nodes[] | .cpu_us_per_delivery // empty] | max),
         share_max_over_mean: (if ($nodes | length) > 0 and $f.unique_pairs > 0
             then ([$nodes[] | .delivered // 0] | max) * ($nodes | length) / $f.unique_pairs | r3 else null end),
         throttled_periods: ([$nodes[] | .throttled_periods] | add),
         nats_cpu_s: (if $kind == "cluster" then $nats_cpu | r3 else null end),
         fedisim_cpu_s: ($fs_cpu | r3),
         lost: ([$deliveries - $f.unique_pairs, 0] | max),
         duplicates: $f.duplicates,
         receiver: ($f | {requests, accepted, unique_pairs, duplicates, expected, missing,
                         unexpected, bad_signature, verified}),
         nodes: $nodes}' >"$rec" || die "could not build the record of $cfg (see $w)"
    jq -r '"  \(.config): \(.receiver.unique_pairs)/\(.deliveries_expected) in \(.wall_s // "incomplete") s = \(.deliveries_per_s // "-")/s; CPU \(.cpu_s) s = \(.cpu_us_per_delivery) us per delivery (max node \(.cpu_us_per_delivery_max_node)); throttled periods \(.throttled_periods); lost \(.lost), duplicates \(.duplicates); nodes " + ([.nodes[] | "\(.name) \(.delivered)"] | join(", "))' \
        "$rec" >&2
    cp "$w/fedisim.report.json" "$run/fedisim-report.json"
    for i in $(seq "$nn"); do cp "$w/n$i.log" "$run/n$i.log"; done
    [ "$KEEP" = 1 ] || rm -rf "$w"
    CL_RECORDS+=("$rec")
}

# cl_summary: medians per configuration, the ratios, the checks; cluster.json + a summary.
cl_summary() {
    local out=$CL_OUT/cluster.json
    jq -s --arg cmd "$CMDLINE" --arg commit "$(git_commit)" --arg machine "$(machine_desc)" \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg alg "$ALG" --arg scheme "$SCHEME" \
        --arg mix "$MIX" --arg verify "$VERIFY" --argjson hosts "$HOSTS" --argjson posts "$POSTS" \
        --argjson node_cpu "$NODE_CPU" --argjson parts "$PARTS" --argjson runs "$RUNS" \
        --arg cgv "$CL_VER" --arg cgcpu "$CL_CPU" --arg cgacct "$CL_ACCT" --arg nodes "$NODES" \
        --argjson cores "$(nproc)" '
        def med: map(select(. != null)) | sort | if length == 0 then null
            elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
        def r3: if . == null then null else . * 1000 | round / 1000 end;
        . as $recs |
        (reduce ($recs | group_by(.config))[] as $g ({}; .[$g[0].config] = {
            kind: $g[0].kind, nodes: $g[0].nodes_n, runs: ($g | length),
            complete_runs: ([$g[] | select(.complete)] | length),
            deliveries_per_s: ([$g[].deliveries_per_s] | med | r3),
            wall_s: ([$g[].wall_s] | med | r3),
            cpu_us_per_delivery: ([$g[].cpu_us_per_delivery] | med | r3),
            cpu_us_per_delivery_max_node: ([$g[].cpu_us_per_delivery_max_node] | med | r3),
            share_max_over_mean: ([$g[].share_max_over_mean] | med | r3),
            nats_cpu_s: ([$g[].nats_cpu_s] | med | r3),
            fedisim_cpu_s: ([$g[].fedisim_cpu_s] | med | r3),
            lost: ([$g[].lost] | add), duplicates: ([$g[].duplicates] | add)})) as $m |
        ($m["cluster-1"]) as $one |
        {scenario: "cluster", command: $cmd, date: $date, commit: $commit, machine: $machine,
         setup: {alg: $alg, scheme: $scheme, mix: $mix, verify: $verify, hosts: $hosts,
                 posts: $posts, deliveries: ($hosts * $posts), node_cpu: $node_cpu,
                 partitions: $parts, runs: $runs, nodes: ($nodes | split(",") | map(tonumber)),
                 cores: $cores,
                 cgroup: {version: ($cgv | tonumber), cpu: $cgcpu,
                          usage: (if $cgv == "2" then "cpu.stat usage_usec"
                                  elif $cgacct != "" then "cpuacct.usage" else "/proc/PID/stat" end),
                          quota: (if $cgv == "2" then "cpu.max" else "cpu.cfs_quota_us / cpu.cfs_period_us" end)},
                 measured: "wall: from the hand-over (POST to the plain node, herald enqueue --cluster) to fedisim'"'"'s last first-accept of a pair; CPU: each node'"'"'s cgroup usage over the same window (to when every pair was seen, 0.2 s polls)"},
         medians: $m,
         ratios: (([$m | to_entries[] | select(.value.kind == "cluster" and .value.nodes > 1)
             | {key: (.value.nodes | tostring), value: {
                 throughput_over_n_x_one: (if $one.deliveries_per_s and .value.deliveries_per_s
                     then .value.deliveries_per_s / (.value.nodes * $one.deliveries_per_s) | r3 else null end),
                 cpu_per_delivery_over_one: (if $one.cpu_us_per_delivery and .value.cpu_us_per_delivery
                     then .value.cpu_us_per_delivery / $one.cpu_us_per_delivery | r3 else null end),
                 cpu_per_delivery_max_node_over_one: (if $one.cpu_us_per_delivery_max_node and .value.cpu_us_per_delivery_max_node
                     then .value.cpu_us_per_delivery_max_node / $one.cpu_us_per_delivery_max_node | r3 else null end)}}]
             | from_entries)
           + (if $m.single and $one then {one_over_single: {
                 throughput: (if $m.single.deliveries_per_s and $one.deliveries_per_s
                     then $one.deliveries_per_s / $m.single.deliveries_per_s | r3 else null end),
                 cpu_per_delivery: (if $m.single.cpu_us_per_delivery and $one.cpu_us_per_delivery
                     then $one.cpu_us_per_delivery / $m.single.cpu_us_per_delivery | r3 else null end)}}
              else {} end)),
         targets: {throughput_over_n_x_one_min: 0.85, cpu_per_delivery_over_one_max: 1.1},
         runs: $recs}
        | .checks = {
            all_complete: ([.runs[] | .complete] | all),
            no_loss: ([.runs[] | .lost] | add == 0),
            no_duplicates: ([.runs[] | .duplicates] | add == 0),
            no_bad_signature: ([.runs[] | .receiver.bad_signature] | add == 0),
            throughput_target: ([.ratios | to_entries[] | select(.key | test("^[0-9]+$")) | .value.throughput_over_n_x_one
                | if . == null then false else . >= 0.85 end] | if length == 0 then null else all end),
            cpu_target: ([.ratios | to_entries[] | select(.key | test("^[0-9]+$")) | .value.cpu_per_delivery_over_one
                | if . == null then false else . <= 1.1 end] | if length == 0 then null else all end)}' \
        "${CL_RECORDS[@]}" >"$out" || die "could not build $out"
    log "cluster: medians of $RUNS run(s) per configuration ($out)"
    jq -r '"  configuration   deliveries/s   wall s   CPU us/delivery (max node)   max share   lost  dup",
        (.medians | to_entries | sort_by(if .value.kind == "single" then 0 else .value.nodes end)[] |
         "  \(.key | . + "               " | .[0:15]) \(.value.deliveries_per_s | tostring | "            " + . | .[-12:])   \(.value.wall_s | tostring | "      " + . | .[-6:])   \(.value.cpu_us_per_delivery | tostring | "         " + . | .[-9:]) (\(.value.cpu_us_per_delivery_max_node))   \(.value.share_max_over_mean)   \(.value.lost)  \(.value.duplicates)"),
        (.ratios | to_entries[] | select(.key | test("^[0-9]+$")) |
         "  \(.key) nodes: throughput / (\(.key) x one node) = \(.value.throughput_over_n_x_one) (target >= 0.85); CPU per delivery / one node'"'"'s = \(.value.cpu_per_delivery_over_one) (target <= 1.1; max node \(.value.cpu_per_delivery_max_node_over_one))"),
        (if .ratios.one_over_single then "  one-node cluster / plain node: throughput \(.ratios.one_over_single.throughput), CPU per delivery \(.ratios.one_over_single.cpu_per_delivery)" else empty end),
        "  checks: \(.checks | tostring)"' "$out" >&2
    [ "$NORESULTS" = 1 ] || jq -r --arg out "${out#"$HB_SRC"/}" '"- herald-bench cluster \(.date) · commit \(.commit) · \(.machine) · `\(.command)` · \(.setup.deliveries) deliveries (\(.setup.posts) posts x \(.setup.hosts) hosts, \(.setup.alg), \(.setup.scheme)), \(.setup.node_cpu) core per node (cgroup v\(.setup.cgroup.version)), medians of \(.setup.runs): " + ([.medians | to_entries[] | "\(.key) \(.value.deliveries_per_s)/s \(.value.cpu_us_per_delivery) us/delivery"] | join(", ")) + " · ratios: " + ([.ratios | to_entries[] | select(.key | test("^[0-9]+$")) | "\(.key) nodes throughput \(.value.throughput_over_n_x_one), CPU \(.value.cpu_per_delivery_over_one)"] | join("; ")) + " · lost \([.runs[].lost] | add), dup \([.runs[].duplicates] | add)"' \
        "$out" >>"$RESULTS"
    echo "$out"
}

# cluster_main: the scenario. Certificates, key and profiles once; then RUNS rounds of the
# configurations (plain node, then each node count), interleaved so that a change in the
# machine's load touches every configuration alike.
cluster_main() {
    command -v nats-server >/dev/null || die "nats-server is not installed (bash tools/deps.sh)"
    if ! [[ $NODE_CPU =~ ^[0-9]*[.]?[0-9]+$ ]] ||
        ! awk -v c="$NODE_CPU" 'BEGIN { exit !(c >= 0.01 && c <= 64) }'; then
        die "--node-cpu needs a number of cores (0.01..64)"
    fi
    [[ $NODES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--nodes needs a list like 1,2,4"
    [[ ,$NODES, == *,1,* ]] || die "--nodes must include 1 (the one-node cluster is the reference of the ratios)"
    [[ $PARTS =~ ^[1-9][0-9]*$ ]] || die "--partitions needs a positive integer"
    cl_need_cgroups
    trap 'cleanup; cl_cg_remove_all' EXIT
    CL_OUT=$OUT/cluster-$(date -u +%Y%m%dT%H%M%SZ)-$$
    mkdir -p "$CL_OUT"
    log "cluster: $HOSTS hosts x $POSTS posts = $((HOSTS * POSTS)) deliveries, $ALG, $SCHEME, verify $VERIFY; plain node and clusters of $NODES node(s), $NODE_CPU core each (cgroup v$CL_VER under $CL_CPU); $RUNS round(s) -> $CL_OUT"
    local c=$CL_OUT/common
    mkdir -p "$c"; chmod 700 "$c"
    CL_CERTS=$c/certs CL_KEY=$c/key.pem CL_PROFILES=$c/profiles.ini CL_KEYS=$c/keys.jsonl
    bash "$HB_SRC/bench/mkcerts.sh" "$CL_CERTS" "$([ "$SCHEME" = https ] && echo "$LEAFS" || echo 0)" \
        >/dev/null 2>&1 || die "mkcerts failed"
    [ "$SCHEME" = https ] || LEAFS=0
    if [ "$ALG" = rsa ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$CL_KEY" 2>/dev/null
    else
        openssl genpkey -algorithm ED25519 -out "$CL_KEY" 2>/dev/null
    fi
    "$HERALD" --db "$c/db" key add --key-id "https://social.example/users/a1#main-key" \
        --actor "https://social.example/users/a1" --pem "$CL_KEY" >/dev/null || die "herald key add failed"
    "$HERALD" --db "$c/db" key export-public >"$CL_KEYS"
    rm -rf "$c/db"
    hb_profiles "$MIX" "$CL_PROFILES"
    CL_RECORDS=()
    local k n
    for k in $(seq "$RUNS"); do
        cl_run_config single 1 "$k"
        for n in ${NODES//,/ }; do cl_run_config cluster "$n" "$k"; done
    done
    cl_summary # prints the path of cluster.json
    [ "$KEEP" = 1 ] || rm -rf "$c"
}
