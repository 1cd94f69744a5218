#!/usr/bin/env bash
# herald follow add|remove|import|list: idempotent adds, updates, removal of an absent follow,
# JSON lines and CSV imports with bad lines reported by number (and changing nothing), counts
# of follows and distinct delivery inboxes; federation none drops queued deliveries.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
DB="$T/db"
A=https://social.example/users/alice
H() { "$HERALD" --db "$DB" "$@"; }
count() { H follow list --actor "$A" --count | awk -v k="$1" '$1 == k { print $2 }'; }

out=$(H follow add --actor "$A" --follower https://b.example/users/bob \
    --inbox https://b.example/users/bob/inbox --shared-inbox https://b.example/inbox)
[[ $out == added:* ]] || fail "add: $out"
out=$(H follow add --actor "$A" --follower https://b.example/users/bob \
    --inbox https://b.example/users/bob/inbox --shared-inbox https://B.example:443/inbox)
[[ $out == unchanged:* ]] || fail "second add (same after normalisation): $out"
out=$(H follow add --actor "$A" --follower https://b.example/users/bob \
    --inbox https://b.example/users/bob/inbox)
[[ $out == updated:* ]] || fail "update: $out"
[ "$(count follows)" = 1 ] && [ "$(count delivery_inboxes)" = 1 ] || fail "counts after update"
out=$(H follow remove --actor "$A" --follower https://b.example/users/bob)
[[ $out == removed:* ]] || fail "remove: $out"
out=$(H follow remove --actor "$A" --follower https://b.example/users/bob)
[[ $out == "not following"* ]] || fail "remove absent: $out"
H follow add --actor "$A" --follower x 2>/dev/null && fail "add without --inbox accepted"
[ "$(count follows)" = 0 ] || fail "count after remove"

# JSON lines: shared_inbox absent or null; bad lines reported with their number.
cat >"$T/f.jsonl" <<EOF
{"actor":"$A","follower":"https://b.example/users/bob","inbox":"https://b.example/users/bob/inbox","shared_inbox":"https://b.example/inbox"}
{"actor":"$A","follower":"https://b.example/users/carol","inbox":"https://b.example/users/carol/inbox","shared_inbox":"https://b.example/inbox"}
{"actor":"$A","follower":"https://c.example/dave","inbox":"https://c.example/dave/inbox","shared_inbox":null}

{"actor":"$A","follower":"https://d.example/erin","inbox":"https://d.example/erin/inbox"}
{"actor":"$A","follower":"https://d.example/bad","inbox":"ftp://d.example/x"}
{"actor":"$A","follower":"https://d.example/bad2","inbox":"https://d.example/i","sharedInbox":"https://d.example/inbox"}
not json
EOF
H follow import "$T/f.jsonl" >"$T/imp.json" 2>"$T/imp.err" && fail "import with bad lines exited 0"
cat "$T/imp.err"
[ "$(jq .added "$T/imp.json")" = 4 ] || fail "added: $(cat "$T/imp.json")"
[ "$(jq .bad "$T/imp.json")" = 3 ] || fail "bad: $(cat "$T/imp.json")"
grep -q '^line 6: ' "$T/imp.err" && grep -q '^line 7: ' "$T/imp.err" && grep -q '^line 8: ' "$T/imp.err" ||
    fail "bad lines not reported by number: $(cat "$T/imp.err")"
[ "$(count follows)" = 4 ] && [ "$(count delivery_inboxes)" = 3 ] || fail "counts after JSON import"
# Importing the same file again changes nothing.
H follow import "$T/f.jsonl" >"$T/imp2.json" 2>/dev/null || true
[ "$(jq .unchanged "$T/imp2.json")" = 4 ] && [ "$(jq .added "$T/imp2.json")" = 0 ] || fail "re-import: $(cat "$T/imp2.json")"

# CSV with a header row (any column order; empty shared_inbox = none); from stdin.
printf 'follower,actor,inbox,shared_inbox\nhttps://e.example/f,%s,https://e.example/f/inbox,https://e.example/inbox\n"https://e.example/g",%s,https://e.example/g/inbox,\nhttps://e.example/h,%s\n' \
    "$A" "$A" "$A" | H follow import - >"$T/imp3.json" 2>"$T/imp3.err" && fail "CSV bad line not reported"
grep -q '^line 4: ' "$T/imp3.err" || fail "CSV bad line number: $(cat "$T/imp3.err")"
[ "$(jq .added "$T/imp3.json")" = 2 ] || fail "CSV added: $(cat "$T/imp3.json")"
[ "$(count follows)" = 6 ] && [ "$(count delivery_inboxes)" = 5 ] || fail "counts after CSV import"

# list round-trips through import
H follow list --actor "$A" >"$T/list.jsonl"
[ "$(wc -l <"$T/list.jsonl")" = 6 ] || fail "list lines"
[ "$(jq -r 'select(.follower=="https://c.example/dave") | .shared_inbox' "$T/list.jsonl")" = null ] || fail "list shared null"
H follow import "$T/list.jsonl" >"$T/imp4.json" || fail "re-import of list output"
[ "$(jq .unchanged "$T/imp4.json")" = 6 ] || fail "list output is not import input: $(cat "$T/imp4.json")"

# A post to the followers, then federation none: its queued deliveries are dropped (counted).
setup_actor "$DB"
printf '{"activity":{"id":"https://social.example/a/1","type":"Create","actor":"%s","object":{"id":"https://social.example/n/1","to":["https://www.w3.org/ns/activitystreams#Public"]}},"to_followers":true,"inboxes":["https://x.example/inbox",{"inbox":"https://b.example/users/zed/inbox","shared_inbox":"https://b.example/inbox"}]}\n' "$A" |
    H enqueue - >"$T/enq.out" || fail "enqueue: $(cat "$T/enq.out")"
[ "$(jq .deliveries "$T/enq.out")" = 6 ] || fail "deliveries: $(cat "$T/enq.out")"
H actor set --actor "$A" --federation none 2>"$T/none.err" >/dev/null || fail "actor set none"
grep -q 'dropped=6' "$T/none.err" || fail "drop not reported: $(cat "$T/none.err")"
H stats --json >"$T/stats.json"
[ "$(jq '.deliveries.pending' "$T/stats.json")" = 0 ] || fail "still pending after none"
printf '{"activity":{"id":"https://social.example/a/2","type":"Create","actor":"%s","object":{"id":"https://social.example/n/2","to":["https://www.w3.org/ns/activitystreams#Public"]}},"to_followers":true}\n' "$A" |
    H enqueue - >"$T/enq2.out" && fail "enqueue accepted for federation none"
grep -q 'none' "$T/enq2.out" || fail "refusal reason: $(cat "$T/enq2.out")"
pass "follow add/update/remove/import/list, bad lines by number, to_followers, federation none drop"
