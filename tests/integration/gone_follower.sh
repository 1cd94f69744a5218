#!/usr/bin/env bash
# 404 or 410 from a personal inbox is final, the follower is reported gone
# (`herald gone list`) and removed from the audience. A 404 from a shared inbox removes
# nobody. Followers on p404.fedi.test (answers 404 to everything):
#   bob    inbox .../users/bob/inbox  (found from the inbox: one lookup)
#   carol  inbox .../people/carol/in  (found by a scan of the actor's follows)
#   erin   shared inbox .../inbox     (a shared inbox answering 404 says nothing of erin)
# and dave on ok.fedi.test. After one post to the followers, bob and carol are gone; the next
# post goes to the two shared inboxes only.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
setup_actor "$DB"
cat >"$T/profiles.ini" <<'P'
[p404.fedi.test]
error_404 = 1
P
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"
P=$TLS_PORT
A=https://social.example/users/alice
H() { "$HERALD" --db "$DB" "$@"; }
G=https://p404.fedi.test:$P
H follow add --actor "$A" --follower "$G/users/bob" --inbox "$G/users/bob/inbox" >/dev/null
H follow add --actor "$A" --follower "$G/users/carol" --inbox "$G/people/carol/in" >/dev/null
H follow add --actor "$A" --follower "$G/users/erin" --inbox "$G/users/erin/inbox" \
    --shared-inbox "$G/inbox" >/dev/null
H follow add --actor "$A" --follower "https://ok.fedi.test:$P/users/dave" \
    --inbox "https://ok.fedi.test:$P/users/dave/inbox" --shared-inbox "https://ok.fedi.test:$P/inbox" >/dev/null
count() { H follow list --actor "$A" --count | awk -v k="$1" '$1 == k { print $2 }'; }
[ "$(count follows)" = 4 ] || fail "setup: $(count follows) follows"
post() {
    printf '{"activity":{"id":"https://social.example/p/%s","type":"Create","actor":"%s","object":{"id":"https://social.example/n/%s","to":["https://www.w3.org/ns/activitystreams#Public"]}},"to_followers":true}\n' "$1" "$A" "$1" |
        H enqueue - >"$T/enq$1.out" || fail "enqueue: $(cat "$T/enq$1.out")"
    jq .deliveries "$T/enq$1.out"
}
[ "$(post 1)" = 4 ] || fail "first post: want 4 deliveries (bob, carol, p404 shared, ok shared)"
timeout -s TERM 60 "$HERALD" --db "$DB" run --until-idle --resolve "*:$P:127.0.0.1" \
    --ca-file "$T/certs/ca.pem" --allow-private-addresses 2>"$T/run.log" ||
    fail "run: $(tail -3 "$T/run.log")"
H gone list >"$T/gone.txt" 2>&1 || true
cat "$T/gone.txt"
grep -q "users/bob/inbox" "$T/gone.txt" || fail "bob's inbox not in gone list"
grep -q "people/carol/in" "$T/gone.txt" || fail "carol's inbox not in gone list"
grep -q "$G/inbox" "$T/gone.txt" && fail "a shared inbox answering 404 was reported as a gone follower"
H follow list --actor "$A" >"$T/follows.jsonl"
echo "follows left: $(jq -r .follower "$T/follows.jsonl" | tr '\n' ' ')"
[ "$(count follows)" = 2 ] || fail "want 2 follows left (erin, dave), have $(count follows)"
grep -q '/users/bob"' "$T/follows.jsonl" && fail "bob still follows"
grep -q '/users/carol"' "$T/follows.jsonl" && fail "carol still follows"
[ "$(count delivery_inboxes)" = 2 ] || fail "want 2 delivery inboxes, have $(count delivery_inboxes)"
[ "$(post 2)" = 2 ] || fail "second post: want 2 deliveries (the shared inboxes)"
stop_fedisim
pass "404 from personal inboxes: followers reported gone and removed from the audience"
