#!/usr/bin/env bash
# Per-host operator commands around a real delivery run against fedisim (TLS, h2): a host
# answering 400 leaves dead letters; `dead list` shows them (status, error, body snippet),
# `host list --sort failures` puts that host first, `host show` merges the record, controls
# and dead letters; pause/resume/set/reset write the controls; `dead retry` requeues with
# attempts reset and counts fixed (the letters keep their activity bodies), a second run
# delivers them again (and they die again); `dead purge` removes them.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
mkcerts
DB="$T/db"
H() { "$HERALD" --db "$DB" "$@"; }
stat() { H stats --json | jq "$1"; }
setup_actor "$DB"
cat >"$T/profiles.ini" <<'INI'
[bad.fedi.test]
status = 400
INI
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify all --profiles "$T/profiles.ini"

for a in 1 2 3; do
    printf '{"activity":{"id":"https://social.example/act/o%d","type":"Create","actor":"https://social.example/users/alice","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/o%d","type":"Note"}},"inboxes":["https://h1.fedi.test:%d/inbox","https://h2.fedi.test:%d/inbox","https://bad.fedi.test:%d/users/u%d/inbox"]}\n' \
        "$a" "$a" "$TLS_PORT" "$TLS_PORT" "$TLS_PORT" "$a"
done >"$T/env.jsonl"
H enqueue "$T/env.jsonl" >"$T/enq.out" || fail "enqueue: $(cat "$T/enq.out")"
run() {
    timeout 120 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" \
        --ca-file "$T/certs/ca.pem" --allow-private-addresses 2>"$T/run.log" ||
        { tail -20 "$T/run.log"; fail "herald run failed"; }
}
run
[ "$(stat .deliveries.done)" = 6 ] || fail "done $(stat .deliveries.done)"
[ "$(stat .deliveries.failed)" = 3 ] || fail "failed $(stat .deliveries.failed)"

# dead letters
H dead list --json >"$T/dead.json"
[ "$(wc -l <"$T/dead.json")" = 3 ] || fail "dead list: $(cat "$T/dead.json")"
[ "$(jq -r .host "$T/dead.json" | sort -u)" = bad.fedi.test ] || fail "dead hosts"
[ "$(jq .status "$T/dead.json" | sort -u)" = 400 ] || fail "dead status"
jq -e 'select(.attempts == 1 and (.inbox | test("^https://bad.fedi.test:[0-9]+/users/u[123]/inbox$")))' \
    "$T/dead.json" >/dev/null || fail "dead fields: $(head -1 "$T/dead.json")"
[ "$(H dead list --json --host h1.fedi.test | wc -l)" = 0 ] || fail "dead list --host"
H dead list | grep -q "bad.fedi.test" || fail "dead list text"
pass "dead letters listed with status, attempts and inbox"

# host view
H host list --json --sort failures >"$T/hosts.json"
[ "$(head -1 "$T/hosts.json" | jq -r .host)" = bad.fedi.test ] || fail "sort failures: $(cat "$T/hosts.json")"
[ "$(jq -s 'length' "$T/hosts.json")" = 3 ] || fail "host count"
[ "$(jq -r 'select(.host == "h1.fedi.test") | .done' "$T/hosts.json")" = 3 ] || fail "h1 done"
H host list --sort backlog | head -1 | grep -q "^host " || fail "text header"
H host show bad.fedi.test --json >"$T/bad.json"
[ "$(jq .dead_letters "$T/bad.json")" = 3 ] || fail "show dead_letters: $(cat "$T/bad.json")"
[ "$(jq .failed "$T/bad.json")" = 3 ] || fail "show failed"
# live is what a running engine reported in the last 5 s (the run just ended): null or fresh
case "$(jq -r '.live | type' "$T/bad.json")" in
null) ;;
object) jq -e '.live | .updated_ms > 0 and (.breaker | type) == "string"' "$T/bad.json" >/dev/null ||
    fail "live fields: $(jq -c .live "$T/bad.json")" ;;
*) fail "live: $(jq -c .live "$T/bad.json")" ;;
esac
H host show bad.fedi.test | grep -q "dead letters kept: 3" || fail "show text"
if H host show never.fedi.test 2>/dev/null; then fail "show of an unknown host"; fi
pass "host list (sorted) and host show merge records and dead letters"

# controls
H host pause H1.fedi.test | grep -qx "paused h1.fedi.test" || fail "pause"
[ "$(H host show h1.fedi.test --json | jq .paused)" = true ] || fail "paused not recorded"
H host set h1.fedi.test --max-inflight 4 --rate 2.5 >/dev/null || fail "set"
H host show h1.fedi.test --json >"$T/h1.json"
[ "$(jq .max_inflight "$T/h1.json")" = 4 ] || fail "max_inflight"
[ "$(jq .rate "$T/h1.json")" = 2.5 ] || fail "rate: $(jq .rate "$T/h1.json")"
[ "$(jq .paused "$T/h1.json")" = true ] || fail "set cleared pause"
H host resume h1.fedi.test >/dev/null
[ "$(H host show h1.fedi.test --json | jq .paused)" = false ] || fail "resume"
H host set h1.fedi.test --rate 0 >/dev/null
[ "$(H host show h1.fedi.test --json | jq .rate)" = 0 ] || fail "rate 0"
H host pause paused-only.fedi.test >/dev/null
H host list --json | jq -e 'select(.host == "paused-only.fedi.test" and .paused)' >/dev/null ||
    fail "hosts with controls but no record are listed"
if H host set h1.fedi.test 2>/dev/null; then fail "set without options accepted"; fi
if H host set h1.fedi.test --rate -1 2>/dev/null; then fail "negative rate accepted"; fi
H host reset bad.fedi.test | grep -q "reset bad.fedi.test" || fail "reset"
H host show bad.fedi.test --json >"$T/bad2.json"
[ "$(jq .failures "$T/bad2.json")" = 0 ] || fail "reset failures: $(cat "$T/bad2.json")"
[ "$(jq -r .state "$T/bad2.json")" = alive ] || fail "reset state"
[ "$(jq -r .last_error "$T/bad2.json")" = "" ] || fail "reset last_error"
[ "$(jq .failed "$T/bad2.json")" = 3 ] || fail "reset must keep history (failed)"
pass "pause/resume/set/reset recorded"

# retry: back into the queue with attempts reset; a second run sends them again
out=$(H dead retry --host bad.fedi.test)
grep -q "requeued 3 dead letters" <<<"$out" || fail "retry: $out"
[ "$(stat .deliveries.pending)" = 3 ] || fail "pending after retry $(stat .deliveries.pending)"
[ "$(stat .deliveries.failed)" = 0 ] || fail "failed after retry $(stat .deliveries.failed)"
[ "$(H dead list | wc -l)" = 1 ] || fail "dead letters left after retry"
run
[ "$(stat .deliveries.failed)" = 3 ] || fail "second run: failed $(stat .deliveries.failed)"
[ "$(H dead list --json | jq -sc 'map(.attempts) | unique')" = "[1]" ] || fail "attempts not reset"
stop_fedisim
# the receiver saw each dead letter twice: once per run
[ "$(jq .requests "$T/fedisim.report.json")" = 12 ] || fail "fedisim requests $(jq .requests "$T/fedisim.report.json"), want 12"
pass "dead retry requeues; the next run delivers them again"

# purge
out=$(H dead purge --host bad.fedi.test)
grep -q "purged 3 dead letters" <<<"$out" || fail "purge: $out"
[ "$(H dead list --json | wc -l)" = 0 ] || fail "purge left letters"
[ "$(stat .deliveries.failed)" = 3 ] || fail "purge changed the failed count"
H gone list --json >/dev/null || fail "gone list"
pass "operator host commands"
