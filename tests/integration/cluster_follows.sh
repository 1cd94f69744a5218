#!/usr/bin/env bash
# Cluster mode, follows through JetStream: `herald follow import|remove --cluster` publish to
# the follow stream, every node applies it (a node that starts later, on an empty store,
# rebuilds the follows from the stream), and a `to_followers` post reaches each distinct
# delivery inbox exactly once, from the owner of its host's partition.
source "$(dirname "$0")/lib/common.sh"
source "$(dirname "$0")/lib/cluster.sh"
need jq; need openssl
mkcerts
setup_actor "$T/db-keys"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all
start_nats
for n in a b; do start_node "$n"; done
wait_balanced a b
# 40 followers over 20 hosts; hosts 1-5 have a shared inbox: 5 shared + 30 personal = 35
# distinct delivery inboxes.
A=https://social.example/users/alice
for i in $(seq 40); do
    h=$(( (i % 20) + 1 ))
    if [ "$h" -le 5 ]; then sh="\"https://h$h.fedi.test:$TLS_PORT/inbox\""; else sh=null; fi
    printf '{"actor":"%s","follower":"https://h%d.fedi.test/users/f%d","inbox":"https://h%d.fedi.test:%d/users/f%d/inbox","shared_inbox":%s}\n' \
        "$A" "$h" "$i" "$h" "$TLS_PORT" "$i" "$sh"
done >"$T/follows.jsonl"
"$HERALD" follow import --cluster "$NATS_URL" "$T/follows.jsonl" | jq -e '.published == 40' >/dev/null \
    || fail "follow import --cluster"
post() {
    printf '{"activity":{"id":"https://social.example/act/%s","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/%s","type":"Note","content":"hi"}},"to_followers":true}\n' "$1" "$A" "$1" |
        "$HERALD" enqueue --cluster "$NATS_URL" - >/dev/null || fail "enqueue $1"
}
post one
wait_pairs 35 60
# Five personal-inbox followers leave; a third node joins with an empty store.
for i in 6 7 8 9 10; do
    h=$(( (i % 20) + 1 ))
    "$HERALD" follow remove --cluster "$NATS_URL" --actor "$A" --follower "https://h$h.fedi.test/users/f$i" \
        || fail "follow remove --cluster"
done
start_node c
wait_balanced a b c
post two
wait_pairs 65 60
sleep 1
# Node c, which never saw a follow command, holds the follow graph from the stream.
stop_node c
n=$("$HERALD" --db "$T/db-c" follow list --actor "$A" --count | jq -r '.follows // .count // .' 2>/dev/null || true)
echo "node c's store: $n"
for n in a b; do stop_node "$n"; done
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
[ "$(jq .unique_pairs "$R")" = 65 ] || fail "fedisim has $(jq .unique_pairs "$R") pairs, expected 35 + 30"
[ "$(jq .duplicates "$R")" = 0 ] || fail "duplicates"
[ "$(jq .requests "$R")" = 65 ] || fail "$(jq .requests "$R") requests for 65 pairs"
pass "follows through JetStream: 35 then 30 distinct delivery inboxes, each once; a new node rebuilt them"
