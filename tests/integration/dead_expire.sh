#!/usr/bin/env bash
# Dead hosts: their queue is kept or expired, by configuration.
# down.fedi.test refuses connections. Days are shrunk to 200 ms and 2 failing days make a host
# dead. A first run makes it dead; then, with the default (`--dead-host-queue keep`), its
# queue stays as it is; with `--dead-host-queue expire` (or `dead_host_queue = expire` in the
# config file) every queued delivery becomes a dead letter counted as expired, and nothing is
# sent (its probe is a day away).
source "$(dirname "$0")/lib/common.sh"
need jq
DB="$T/db"
setup_actor "$DB"
A=https://social.example/users/alice
enq() { # first last: activities n$first..n$last to the down host
    for i in $(seq "$1" "$2"); do
        echo "{\"activity\":{\"id\":\"https://social.example/a$i\",\"type\":\"Create\",\"actor\":\"$A\",\"object\":{\"id\":\"https://social.example/n$i\",\"type\":\"Note\"}},\"inboxes\":[\"https://down.fedi.test:1/inbox\"]}"
    done | "$HERALD" --db "$DB" enqueue - >/dev/null || fail "enqueue"
}
RUN=(--resolve "down.fedi.test:1:127.0.0.1" --allow-private-addresses --retry-base 100
    --retry-cap 100 --max-attempts 1000 --breaker-threshold 1000 --day-length 200
    --dead-days 2 --dead-probe 600000)
host() { "$HERALD" --db "$DB" stats --json | jq -c '.hosts[] | select(.host == "down.fedi.test")'; }

enq 1 5
timeout -s TERM 2 "$HERALD" --db "$DB" run "${RUN[@]}" 2>>"$T/run.log" || true
"$HERALD" --db "$DB" host show down.fedi.test >"$T/show1.txt" 2>&1 || true
grep -q "^state: *dead" "$T/show1.txt" || { cat "$T/show1.txt"; fail "the host did not become dead"; }
h0=$(host)
echo "after the first run: $h0"
enq 6 8
# keep (the default): the dead host's queue is kept
timeout -s TERM 20 "$HERALD" --db "$DB" run --until-idle "${RUN[@]}" 2>>"$T/run.log" ||
    { tail -5 "$T/run.log"; cat "$T/show1.txt"; fail "run (keep) failed"; }
h=$(host)
echo "keep:   $h"
[ "$(echo "$h" | jq .queued)" = 8 ] || fail "keep: the dead host's 8 deliveries must stay queued"
[ "$(echo "$h" | jq .failures)" = "$(echo "$h0" | jq .failures)" ] ||
    fail "keep: requests were attempted to a dead host before its probe time"
[ "$("$HERALD" --db "$DB" stats --json | jq .deliveries.failed)" = 0 ] || fail "keep: dead letters"
# expire, from the config file: every queued delivery becomes an expired dead letter
printf '[run]\ndead_host_queue = expire\n' >"$T/herald.ini"
timeout -s TERM 20 "$HERALD" --db "$DB" run --config "$T/herald.ini" --until-idle "${RUN[@]}" \
    2>>"$T/run.log" || fail "run (expire) failed: $(tail -3 "$T/run.log")"
h=$(host)
echo "expire: $h"
[ "$(echo "$h" | jq .queued)" = 0 ] || fail "expire: the dead host's queue must be empty"
"$HERALD" --db "$DB" dead list --json >"$T/dead.jsonl"
[ "$(grep -c 'queue expired' "$T/dead.jsonl")" = 8 ] ||
    { cat "$T/dead.jsonl"; fail "expire: want 8 dead letters saying the queue expired"; }
# a bad value is a clear error
printf '[run]\ndead_host_queue = sometimes\n' >"$T/bad.ini"
if "$HERALD" --db "$DB" run --config "$T/bad.ini" --until-idle "${RUN[@]}" 2>"$T/bad.err"; then
    fail "a bad dead_host_queue value was accepted"
fi
grep -q 'keep or expire' "$T/bad.err" || { cat "$T/bad.err"; fail "unclear error"; }
"$HERALD" --db "$DB" run --dead-host-queue never 2>/dev/null && fail "bad flag value accepted"
pass "dead host queue: kept by default, expired into dead letters with dead_host_queue = expire"
