#!/usr/bin/env bash
# Cluster mode, operator controls through JetStream: `herald block add`, `host pause` and
# `host resume` given once with --cluster apply on every node's store within about a second
# (each node's `block list` / `host show` says so while the nodes run), a suspended domain
# gets no request from any node, a paused host none until it is resumed, and then all of its
# deliveries. POST and DELETE /v1/follows on a node's endpoint go to the follow stream and
# apply on every node. Usage errors of the --cluster forms exit 2 naming the argument.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need openssl
PARTITIONS=16
t_start=$(date +%s)
mkcerts
setup_actor "$T/db-keys"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
start_nats
printf 'token-%s\n' "$RANDOM$RANDOM" >"$T/token"
chmod 600 "$T/token"
start_node a --listen "unix:$T/a.sock" --token-file "$T/token"
start_node b
wait_balanced a b
echo "nodes balanced after $(( $(date +%s) - t_start )) s"

# --- usage errors (no connection needed)
usage() { # WANT_IN_STDERR ARGS...
    local want=$1 rc=0
    shift
    "$HERALD" "$@" >/dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "$*: exit $rc, want 2"
    grep -q -- "$want" "$T/err" || fail "$*: stderr does not name $want: $(cat "$T/err")"
}
usage --severity block add x.test --cluster "$NATS_URL"
usage --dry-run block add x.test --severity suspend --dry-run --cluster "$NATS_URL"
usage --no-such-flag host pause x.test --no-such-flag --cluster "$NATS_URL"
usage --max-inflight host set x.test --cluster "$NATS_URL"
usage --rate host set x.test --rate fast --cluster "$NATS_URL"
usage --force federation mode allowlist --cluster "$NATS_URL"
usage --cluster block remove x.test --cluster
usage list block list --cluster "$NATS_URL"

# 12 hosts, one follower each.
A=https://social.example/users/alice
for h in $(seq 12); do
    printf '{"actor":"%s","follower":"https://h%d.fedi.test/users/f","inbox":"https://h%d.fedi.test:%d/users/f/inbox"}\n' \
        "$A" "$h" "$h" "$TLS_PORT"
done >"$T/follows.jsonl"
"$HERALD" follow import --cluster "$NATS_URL" "$T/follows.jsonl" | jq -e '.published == 12' >/dev/null \
    || fail "follow import --cluster"

# For each node, the hosts whose partition it owns: one of each is blocked, one paused.
S=$(cluster_status)
owner() { jq -r --arg p "$("$HERALD" cluster partition "$1" "$PARTITIONS")" '.partitions[$p].node' <<<"$S"; }
declare -A OWN
for h in $(seq 12); do
    o=$(owner "h$h.fedi.test")
    OWN[$o]="${OWN[$o]:-} h$h.fedi.test"
done
read -r -a HA <<<"${OWN[a]:-}"
read -r -a HB <<<"${OWN[b]:-}"
[ "${#HA[@]}" -ge 3 ] && [ "${#HB[@]}" -ge 3 ] || fail "hosts per node: a ${#HA[@]}, b ${#HB[@]} (want 3 each)"
BLOCKED=("${HA[0]}" "${HB[0]}")
PAUSED=("${HA[1]}" "${HB[1]}")
echo "blocked ${BLOCKED[*]}, paused ${PAUSED[*]}"

# wait_applied DESC CMD...: until CMD succeeds against both nodes' stores ({} is the store);
# prints the milliseconds it took.
wait_applied() {
    local desc=$1 t0 ok
    shift
    t0=$(date +%s%3N)
    for _ in $(seq 100); do
        ok=1
        for n in a b; do "$@" "$T/db-$n" >/dev/null 2>&1 || ok=0; done
        [ "$ok" = 1 ] && { echo "$desc applied on a and b in $(( $(date +%s%3N) - t0 )) ms"; return 0; }
        sleep 0.05
    done
    fail "$desc not applied on both nodes within 5 s"
}
blocked_on() { "$HERALD" --db "$2" block list --json | jq -se --arg d "$1" 'map(select(.domain == $d and .severity == "suspend")) | length == 1'; }
paused_on() { # WANT HOST DB (a node with nothing for the host has no record: not paused)
    local p
    p=$("$HERALD" --db "$3" host show "$2" --json 2>/dev/null | jq -r .paused 2>/dev/null || true)
    [ "${p:-false}" = "$1" ]
}

for d in "${BLOCKED[@]}"; do
    "$HERALD" block add "$d" --severity suspend --cluster "$NATS_URL" || fail "block add --cluster"
    wait_applied "block $d" blocked_on "$d"
done
for h in "${PAUSED[@]}"; do
    "$HERALD" host pause "$h" --cluster "$NATS_URL" || fail "host pause --cluster"
    wait_applied "pause $h" paused_on true "$h"
done

post() {
    printf '{"activity":{"id":"https://social.example/act/%s","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/%s","type":"Note","content":"hi"}},"to_followers":true}\n' "$1" "$A" "$1" |
        "$HERALD" enqueue --cluster "$NATS_URL" - >/dev/null || fail "enqueue $1"
}
stats() {
    curl -s --max-time 2 --cacert "$T/certs/ca.pem" --resolve "fedi.test:$TLS_PORT:127.0.0.1" \
        "https://fedi.test:$TLS_PORT/_fedisim/stats"
}
requests_to() { stats | jq --arg h "$1" '.per_host[$h].requests // 0'; }
post one
wait_pairs 8 60 # 12 hosts - 2 blocked - 2 paused
sleep 1         # time for a wrong request to arrive
for h in "${BLOCKED[@]}" "${PAUSED[@]}"; do
    [ "$(requests_to "$h")" = 0 ] || fail "$h got a request while blocked or paused"
done
[ "$(stats | jq .unique_pairs)" = 8 ] || fail "more than the 8 unblocked, unpaused hosts got requests"

for h in "${PAUSED[@]}"; do
    "$HERALD" host resume "$h" --cluster "$NATS_URL" || fail "host resume --cluster"
    wait_applied "resume $h" paused_on false "$h"
done
wait_pairs 10 60 # the 8, and the 2 resumed hosts
for h in "${PAUSED[@]}"; do
    [ "$(requests_to "$h")" -ge 1 ] || fail "$h got nothing after resume"
done

# --- POST and DELETE /v1/follows on node a's endpoint go to the follow stream: node b, whose
# endpoint was not asked, has the follower too, and a post reaches it (whichever node owns it).
ep() { # METHOD BODY: prints the status code; the answer in $T/ep.json
    curl -sS --max-time 10 --unix-socket "$T/a.sock" -o "$T/ep.json" -w '%{http_code}' -X "$1" \
        -H "Authorization: Bearer $(head -1 "$T/token")" --data-binary "$2" http://herald/v1/follows
}
F13='{"actor":"'$A'","follower":"https://h13.fedi.test/users/f","inbox":"https://h13.fedi.test:'$TLS_PORT'/users/f/inbox"}'
code=$(ep POST "$F13")
[ "$code" = 200 ] && jq -e '.published == 1' "$T/ep.json" >/dev/null || fail "POST /v1/follows: $code $(cat "$T/ep.json")"
code=$(ep POST '{"actor":"'$A'","follower":"https://h14.fedi.test/users/f"}')
[ "$code" = 400 ] || fail "POST /v1/follows without inbox: $code, want 400"
follows_on() { "$HERALD" --db "$2" follow list --actor "$A" --count 2>/dev/null | grep -qx "follows $1"; }
wait_applied "POST /v1/follows" follows_on 13
post two
wait_pairs 21 60 # 10 + 11 (h13 new; the 2 blocked hosts still nothing)
code=$(ep DELETE '{"actor":"'$A'","follower":"https://h13.fedi.test/users/f"}')
[ "$code" = 200 ] && jq -e '.published == 1' "$T/ep.json" >/dev/null || fail "DELETE /v1/follows: $code $(cat "$T/ep.json")"
wait_applied "DELETE /v1/follows" follows_on 12
post three
wait_pairs 31 60 # + 10: h13 no longer
sleep 0.5
[ "$(requests_to h13.fedi.test)" = 1 ] || fail "h13 got $(requests_to h13.fedi.test) requests, want 1 (post two only)"

# --- the other controls reach both stores: host set, block import and remove, allow add,
# federation mode, actor set.
"$HERALD" host set h12.fedi.test --max-inflight 3 --rate 5 --cluster "$NATS_URL" >/dev/null || fail "host set --cluster"
set_on() { [ "$("$HERALD" --db "$1" host show h12.fedi.test --json | jq -c '[.max_inflight, .rate]')" = "[3,5]" ]; }
wait_applied "host set" set_on
printf '#domain,#severity\nspam1.test,suspend\nspam2.test,silence\n' >"$T/blocks.csv"
"$HERALD" block import "$T/blocks.csv" --cluster "$NATS_URL" | jq -e '.published == 2' >/dev/null || fail "block import --cluster"
"$HERALD" block remove spam1.test --cluster "$NATS_URL" >/dev/null || fail "block remove --cluster"
imported_on() { "$HERALD" --db "$1" block list --json | jq -se 'map(.domain) | (index("spam2.test") != null) and (index("spam1.test") == null)' >/dev/null; }
wait_applied "block import + remove" imported_on
"$HERALD" allow add friends.test --cluster "$NATS_URL" >/dev/null || fail "allow add --cluster"
allowed_on() { "$HERALD" --db "$1" allow list --json | grep -q friends.test; }
wait_applied "allow add" allowed_on
"$HERALD" federation mode open --cluster "$NATS_URL" >/dev/null || fail "federation mode --cluster"
"$HERALD" actor set --actor "$A" --federation all --cluster "$NATS_URL" >/dev/null || fail "actor set --cluster"
applied_on() { grep -q "op=$1" "$T/node-$2.log"; }
for op in federation.mode actor.federation; do
    for n in a b; do
        for _ in $(seq 100); do applied_on "$op" "$n" && break; sleep 0.05; done
        applied_on "$op" "$n" || fail "node $n did not apply $op"
    done
done

# --- a control of a schema this version cannot read (published raw over the NATS protocol,
# header Herald-Schema: 2) stops each node's control reading there: neither it nor the valid
# control after it is applied, and each node says so.
raw_pub() { # SUBJECT SCHEMA BODY
    local hdr
    hdr=$(printf 'NATS/1.0\r\nHerald-Schema: %s\r\n\r\n' "$2")
    exec 4<>"/dev/tcp/127.0.0.1/$NATS_PORT"
    printf 'CONNECT {"verbose":false,"headers":true}\r\nHPUB %s %d %d\r\n%s%s\r\nPING\r\n' \
        "$1" "${#hdr}" $(( ${#hdr} + ${#3} )) "$hdr" "$3" >&4
    timeout 5 grep -q -m1 PONG <&4 || fail "nats-server did not answer the raw publish"
    exec 4>&-
}
raw_pub herald.v1.ctl.block.0000000000000001 2 '{"v":2,"op":"block.add","domain":"future.test","severity":"suspend"}'
"$HERALD" block add after.test --severity suspend --cluster "$NATS_URL" >/dev/null || fail "block add after.test"
for n in a b; do
    for _ in $(seq 100); do grep -q 'control of an unknown schema' "$T/node-$n.log" && break; sleep 0.05; done
    grep -q 'control of an unknown schema' "$T/node-$n.log" || fail "node $n did not refuse the schema-2 control"
done
sleep 0.5 # the control after it would be applied in the same pass
for n in a b; do
    "$HERALD" --db "$T/db-$n" block list --json | grep -qE 'future.test|after.test' \
        && fail "node $n applied past a control it cannot read"
done

for n in a b; do stop_node "$n"; done
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
[ "$(jq .unique_pairs "$R")" = 31 ] || fail "fedisim has $(jq .unique_pairs "$R") pairs, expected 31"
[ "$(jq .duplicates "$R")" = 0 ] || fail "duplicates"
for d in "${BLOCKED[@]}"; do
    [ "$(jq --arg h "$d" '.per_host[$h].requests // 0' "$R")" = 0 ] || fail "$d got requests"
done
grep -q 'control applied' "$T/node-a.log" && grep -q 'control applied' "$T/node-b.log" \
    || fail "a node did not log its applied controls"
pass "block (suspend) and host pause/resume given once through the cluster applied on both nodes; blocked hosts got 0 requests, paused hosts none until resumed; host set, block import/remove, allow, federation mode, actor set applied on both; a control of an unknown schema stops the reading there; POST/DELETE /v1/follows on one node applied on both"
