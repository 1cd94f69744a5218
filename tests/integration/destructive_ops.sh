#!/usr/bin/env bash
# Destructive operations: --dry-run for `block add --severity suspend`, `federation mode
# allowlist`, `actor set --federation none` and `dead purge` prints what would go, host by
# host, and changes nothing; a suspend keeps what it takes out of the queue as dead letters
# "blocked", and `dead retry` after the unblock puts them back (counters and host records
# restored); replacing a block says what changed; every destructive operation writes one
# audit line (op, target, deliveries, source), whatever the log level.
source "$(dirname "$0")/lib/common.sh"
need jq
DB="$T/db"
H() { "$HERALD" --db "$DB" "$@"; }
setup_actor "$DB"
A=https://social.example/users/alice
for a in 1 2 3; do
    printf '{"activity":{"id":"https://social.example/act/d%d","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/d%d","type":"Note"}},"inboxes":["https://h1.fedi.test/users/u%d/inbox","https://h2.fedi.test/inbox"]}\n' \
        "$a" "$A" "$a" "$a"
done | H enqueue - >/dev/null || fail "enqueue"
queued() { H queue list --json ${1:+--host "$1"} | jq '.deliveries | length'; }
st() { H stats --json | jq "$1"; }
[ "$(queued)" = 6 ] || fail "setup: $(queued) queued"

# block add --severity suspend --dry-run: what would go, and nothing changes.
H --log-level error block add h1.fedi.test --severity suspend --dry-run >"$T/out" 2>"$T/err" ||
    fail "dry run: $(cat "$T/err")"
grep -q '^dry run: blocking h1.fedi.test (suspend) would take 3 queued deliveries out of the queue on 1 host' "$T/out" ||
    fail "dry-run text: $(cat "$T/out")"
grep -Eq '^  h1.fedi.test +3$' "$T/out" || fail "dry-run host line: $(cat "$T/out")"
grep -q '^nothing changed$' "$T/out" || fail "dry-run end: $(cat "$T/out")"
[ "$(queued)" = 6 ] && [ -z "$(H block list)" ] && [ "$(st .deliveries.dropped)" = 0 ] ||
    fail "the dry run changed something"
grep -q 'mod=audit' "$T/err" && fail "a dry run wrote an audit line"
pass "block add --severity suspend --dry-run lists what would go and changes nothing"

# The suspend itself: kept as dead letters "blocked", one audit line even at --log-level error.
H --log-level error block add h1.fedi.test --severity suspend >"$T/out" 2>"$T/err" || fail "block add"
grep -q 'dropped 3 queued deliveries on 1 host' "$T/out" || fail "block add output: $(cat "$T/out")"
[ "$(grep -c 'mod=audit' "$T/err")" = 1 ] || fail "want one audit line: $(cat "$T/err")"
grep -q 'mod=audit op=block_add target="h1.fedi.test" deliveries=3 source=cli detail="severity=suspend"' "$T/err" ||
    fail "audit line: $(cat "$T/err")"
[ "$(queued h1.fedi.test)" = 0 ] && [ "$(queued h2.fedi.test)" = 3 ] || fail "queue after suspend"
H dead list --json >"$T/dead.json"
[ "$(jq -s '[.[] | select(.host == "h1.fedi.test" and .error == "blocked" and .status == 0)] | length' "$T/dead.json")" = 3 ] ||
    fail "dead letters: $(cat "$T/dead.json")"
[ "$(st .deliveries.dropped)" = 3 ] || fail "dropped $(st .deliveries.dropped)"
pass "a suspend keeps the deliveries it takes out as dead letters \"blocked\", with one audit line"

# Replacing the block says so.
H block add h1.fedi.test --severity silence --comment "spam wave" >"$T/out" 2>"$T/err" || fail "replace"
grep -q '^replaced the block of h1.fedi.test: severity suspend -> silence, comment "" -> "spam wave"' "$T/out" ||
    fail "replace output: $(cat "$T/out")"
grep -q 'op=block_add target="h1.fedi.test" deliveries=0 source=cli detail="severity=silence replaced=suspend"' "$T/err" ||
    fail "replace audit: $(cat "$T/err")"
H block add h1.fedi.test --severity silence --comment "spam wave" 2>/dev/null | grep -q 'already blocked so' ||
    fail "the same block again"
pass "replacing a block's severity or comment says what changed"

# Unblocked (silence delivers): dead retry brings the blocked letters back.
H block remove h1.fedi.test >/dev/null 2>"$T/err" || fail "block remove"
grep -q 'op=block_remove target="h1.fedi.test"' "$T/err" || fail "remove audit"
H dead retry --host h1.fedi.test >"$T/out" 2>"$T/err" || fail "dead retry"
grep -q 'requeued 3 dead letters' "$T/out" || fail "retry: $(cat "$T/out")"
grep -q 'op=dead_retry target="h1.fedi.test" deliveries=3 source=cli' "$T/err" || fail "retry audit"
[ "$(queued h1.fedi.test)" = 3 ] || fail "not requeued"
[ "$(st .deliveries.dropped)" = 0 ] && [ "$(st .deliveries.failed)" = 0 ] ||
    fail "counters after retry: $(H stats --json | jq -c .deliveries)"
[ "$(H host show h1.fedi.test --json | jq '[.queued, .failed]' -c)" = "[3,0]" ] ||
    fail "host record: $(H host show h1.fedi.test --json)"
pass "after the unblock, dead retry puts the blocked deliveries back (counters and host record too)"

# federation mode allowlist --dry-run
H allow add h2.fedi.test >/dev/null 2>&1
H federation mode allowlist --dry-run >"$T/out" 2>"$T/err" || fail "allowlist dry run"
grep -q 'would take 3 queued deliveries out of the queue on 1 host' "$T/out" || fail "allowlist dry: $(cat "$T/out")"
grep -Eq '^  h1.fedi.test +3$' "$T/out" || fail "allowlist dry host"
[ "$(H federation mode)" = open ] && [ "$(queued)" = 6 ] || fail "allowlist dry run changed something"
grep -q 'mod=audit' "$T/err" && fail "dry run audited"
H federation mode allowlist >/dev/null 2>"$T/err" || fail "allowlist"
grep -q 'op=federation_mode target="allowlist" deliveries=3 source=cli' "$T/err" || fail "allowlist audit: $(cat "$T/err")"
H federation mode open >/dev/null 2>&1
H dead retry >/dev/null 2>&1
[ "$(queued)" = 6 ] || fail "allowlist letters not back"
pass "federation mode allowlist --dry-run, then the real switch, audited"

# actor set --federation none --dry-run
H actor set --actor "$A" --federation none --dry-run >"$T/out" 2>"$T/err" || fail "actor dry"
grep -q "^dry run: federation none for $A would drop 6 queued deliveries" "$T/out" || fail "actor dry: $(cat "$T/out")"
grep -Eq '^  h1.fedi.test +3$' "$T/out" && grep -Eq '^  h2.fedi.test +3$' "$T/out" || fail "actor dry hosts"
[ "$(queued)" = 6 ] && grep -q 'nothing changed' "$T/out" || fail "actor dry run changed something"
H actor set --actor "$A" --federation none >"$T/out" 2>"$T/err" || fail "actor set none"
grep -q "op=actor_federation target=\"$A\" deliveries=6 source=cli detail=\"federation=none\"" "$T/err" ||
    fail "actor audit: $(cat "$T/err")"
[ "$(queued)" = 0 ] || fail "actor none left deliveries"
pass "actor set --federation none --dry-run, then the real drop, audited"

# dead purge --dry-run (the 3 letters of run-less failures: make some with a suspend)
H actor set --actor "$A" --federation all >/dev/null 2>&1
printf '{"activity":{"id":"https://social.example/act/d9","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/d9","type":"Note"}},"inboxes":["https://h3.fedi.test/inbox","https://h4.fedi.test/inbox"]}\n' "$A" |
    H enqueue - >/dev/null || fail "enqueue 2"
H block add h3.fedi.test --severity suspend >/dev/null 2>&1
H block add h4.fedi.test --severity suspend >/dev/null 2>&1
H dead purge --dry-run >"$T/out" 2>"$T/err" || fail "purge dry"
grep -q '^dry run: purge would delete 2 dead letters on 2 hosts' "$T/out" || fail "purge dry: $(cat "$T/out")"
[ "$(H dead list --json | wc -l)" = 2 ] || fail "purge dry run deleted"
H dead purge --host h3.fedi.test >/dev/null 2>"$T/err" || fail "purge"
grep -q 'op=dead_purge target="h3.fedi.test" deliveries=1 source=cli' "$T/err" || fail "purge audit"
[ "$(H dead list --json | wc -l)" = 1 ] || fail "purge --host"
pass "dead purge --dry-run counts per host and deletes nothing; the purge is audited"
