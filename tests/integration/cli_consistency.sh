#!/usr/bin/env bash
# One consistent command line: every subcommand answers --help with its usage (exit 0), as
# `herald help CMD [SUB]` does; an unknown argument is a usage error (exit 2) that names it;
# read-only commands never create a store and say clearly when there is none; a bad value
# names the flag it was given to; durations read 250ms|10s|5m|1h with bare numbers in each
# flag's unit; `run --resolve foo` fails before the engine starts and leaves the store clean;
# `enqueue DIRECTORY` is an error.
source "$(dirname "$0")/lib/common.sh"
DB="$T/db"
H() { "$HERALD" --db "$DB" "$@"; }

# --- --help on every command and subcommand, and `herald help`
CMDS=("key" "key add" "key list" "key export-public" "key import" "key remove" "actor" "actor set" "follow"
    "follow add" "follow remove" "follow import" "follow list" "enqueue" "run" "stats" "top"
    "sign" "block" "block add" "block remove" "block list" "block export" "block import"
    "allow" "allow add" "allow remove" "allow list" "federation" "federation mode" "host"
    "host list" "host show" "host pause" "host resume" "host set" "host reset" "dead"
    "dead list" "dead retry" "dead purge" "gone" "gone list" "queue" "queue list" "queue flush"
    "queue shape" "cluster" "cluster status" "cluster partition"
    "activity" "activity show" "activity cancel")
# Each command in its own background job, four at a time (a sanitizer build takes 0.1-0.2 s
# of CPU to start a process); a job writes what failed to $T/N.fail.
per_cmd() { # INDEX COMMAND...: --help, `herald help`, and an unknown option
    local n=$1 rc
    shift
    rc=0; H "$@" --help >"$T/$n.out" 2>"$T/$n.err" || rc=$?
    [ "$rc" = 0 ] || { echo "$* --help: exit $rc: $(cat "$T/$n.err")" >"$T/$n.fail"; return; }
    grep -q '^usage: herald' "$T/$n.out" || { echo "$* --help printed no usage" >"$T/$n.fail"; return; }
    [ -s "$T/$n.err" ] && { echo "$* --help wrote to stderr: $(cat "$T/$n.err")" >"$T/$n.fail"; return; }
    # `herald help CMD [SUB]`: every command, or in a sanitizer build the groups only
    if [ "$HD_ASAN" = 0 ] || [ $# = 1 ]; then
        rc=0; H help "$@" >"$T/$n.out2" 2>&1 || rc=$?
        [ "$rc" = 0 ] || { echo "help $*: exit $rc" >"$T/$n.fail"; return; }
        cmp -s "$T/$n.out" "$T/$n.out2" || { echo "help $* differs from $* --help" >"$T/$n.fail"; return; }
    fi
    rc=0; H "$@" --no-such-flag </dev/null >/dev/null 2>"$T/$n.err" || rc=$?
    [ "$rc" = 2 ] || { echo "$* --no-such-flag: exit $rc, want 2" >"$T/$n.fail"; return; }
    grep -q -- '--no-such-flag' "$T/$n.err" || echo "$* --no-such-flag: $(cat "$T/$n.err")" >"$T/$n.fail"
}
n=0
for c in "${CMDS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge 4 ]; do wait -n || true; done
    n=$((n + 1))
    # shellcheck disable=SC2086 # word splitting of "key add" is meant
    per_cmd $n $c &
done
wait
if ls "$T"/*.fail >/dev/null 2>&1; then fail "$(cat "$T"/*.fail)"; fi
[ -e "$DB" ] && fail "--help created the store"
rc=0; H help >"$T/out" || rc=$?
[ "$rc" = 0 ] && grep -q '^usage: herald' "$T/out" || fail "herald help: exit $rc"
rc=0; H help no-such-command 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "help no-such-command: exit $rc, want 2"
pass "--help on ${#CMDS[@]} commands and subcommands prints usage and exits 0, herald help CMD matches, an unknown option exits 2 naming it"

# --- unknown arguments are usage errors that name the argument (options: above)
for c in "stats" "key list" "key export-public" "block list" "block export" "allow list" \
    "gone list" "dead list" "host list" "run" "top" "queue list" "queue shape"; do
    rc=0
    # shellcheck disable=SC2086
    H $c stray-word >/dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "$c stray-word: exit $rc, want 2"
    grep -q 'unexpected argument stray-word' "$T/err" || fail "$c stray-word: $(cat "$T/err")"
done
rc=0; H stats --json=yes >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--json takes no value' "$T/err" || fail "stats --json=yes: $rc $(cat "$T/err")"
rc=0; H run --threads 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--threads needs a value' "$T/err" || fail "run --threads: $rc $(cat "$T/err")"
[ -e "$DB" ] && fail "a usage error created the store"
pass "unknown options and stray arguments exit 2 and name the argument, for every command"

# --- read-only commands on a missing store: a clear error, nothing created
for c in "stats" "host list" "host show a.example" "key list" "key export-public" "block list" \
    "block export" "allow list" "federation mode" "dead list" "gone list" \
    "follow list --actor https://a.example/u" "top --once" "queue list" "queue shape"; do
    rc=0
    # shellcheck disable=SC2086
    "$HERALD" --db "$T/missing" $c >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 1 ] || fail "$c on a missing store: exit $rc, want 1"
    grep -q "no store at $T/missing" "$T/err" || fail "$c on a missing store: $(cat "$T/err")"
    [ -e "$T/missing" ] && fail "$c created a store at $T/missing"
    [ -s "$T/out" ] && fail "$c printed figures for a missing store: $(cat "$T/out")"
done
mkdir -m 700 "$T/emptydir"
rc=0; "$HERALD" --db "$T/emptydir" stats 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "no store at" "$T/err" || fail "stats on an empty directory: $rc $(cat "$T/err")"
[ -z "$(ls -A "$T/emptydir")" ] || fail "stats wrote into an empty directory: $(ls "$T/emptydir")"
pass "read-only commands on a missing store exit 1 with 'no store at', create nothing"

# --- an error names the right flag
rc=0; H run --idle-timeout 0 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- 'invalid value for --idle-timeout: 0' "$T/err" ||
    fail "run --idle-timeout 0: $rc $(cat "$T/err")"
grep -q -- '--max-active-hosts' "$T/err" && fail "run --idle-timeout 0 names --max-active-hosts"
rc=0; H run --dead-host-queue maybe 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- 'invalid value for --dead-host-queue: maybe' "$T/err" ||
    fail "run --dead-host-queue maybe: $rc $(cat "$T/err")"
grep -q -- '--idle-timeout' "$T/err" && fail "--dead-host-queue maybe names --idle-timeout"
rc=0; H block add x.example --severity hard 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--severity: hard' "$T/err" || fail "block add --severity hard: $(cat "$T/err")"
rc=0; H host set a.example --rate fast 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--rate: fast' "$T/err" || fail "host set --rate fast: $(cat "$T/err")"
rc=0; H top --sort speed --once 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- '--sort: speed' "$T/err" || fail "top --sort speed: $(cat "$T/err")"
pass "bad values name the flag they were given to"

# --- durations: one syntax, bare numbers in the flag's documented unit
setup_actor "$DB"
rc=0; H run --until-idle --threads 1 --connect-timeout 250ms --tls-timeout 1500 \
    --response-timeout 1h --retry-base 5m --retry-cap 2d --idle-timeout 10s --drain-timeout 1500 \
    --max-age 30d --probe-base 10s >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "run with durations: exit $rc: $(cat "$T/err")"
rc=0; H run --until-idle --threads 1 --drain-timeout 10s --connect-timeout 1500ms >/dev/null \
    2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "run with durations (2): exit $rc: $(cat "$T/err")"
for v in 10x 1.5s -5s s ""; do
    rc=0; H run --until-idle --connect-timeout "$v" 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] && grep -q -- "invalid value for --connect-timeout" "$T/err" ||
        fail "--connect-timeout '$v': exit $rc: $(cat "$T/err")"
done
rc=0; H run --until-idle --idle-timeout 2h 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "--idle-timeout 2h (over its 1h bound) accepted"
for v in 2 0.5 500ms 1m; do
    rc=0; H top --once --interval "$v" >/dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 0 ] || fail "top --interval $v: exit $rc: $(cat "$T/err")"
done
for v in 0 100ms 2h; do
    rc=0; H top --once --interval "$v" >/dev/null 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "top --interval $v: exit $rc, want 2"
done
pass "durations 250ms|10s|5m|1h and bare numbers accepted, malformed ones name the flag"

# --- --resolve foo: refused before the engine starts; the store stays clean
rc=0; H run --until-idle --resolve foo 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "run --resolve foo: exit $rc, want 2"
grep -q -- 'invalid value for --resolve: foo' "$T/err" || fail "--resolve foo: $(cat "$T/err")"
grep -q 'ready' "$T/err" && fail "--resolve foo logged ready first: $(cat "$T/err")"
rc=0; H run --until-idle --resolve a.example:443:127.0.0.1 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "a good --resolve was refused: $(cat "$T/err")"
grep -q 'did not stop cleanly' "$T/err" && fail "--resolve foo left the store marked unclean"
pass "--resolve foo is a usage error before ready; the next run finds a clean stop"

# --- enqueue DIRECTORY is an error
rc=0; H enqueue "$T" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'is a directory' "$T/err" || fail "enqueue DIRECTORY: exit $rc $(cat "$T/err")"
rc=0; H enqueue "$T/no-such-file" 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'cannot open' "$T/err" || fail "enqueue a missing file: exit $rc"
pass "enqueue of a directory or a missing file is an error"

# --- herald sign's defaults are what the engine signs (engine/sched/send.c)
printf '%s' '{"type":"Create"}' >"$T/body.json"
out=$("$HERALD" sign --scheme rfc9421 --pem "$T/alice.pem" --key-id K --method POST \
    --url https://h.example/inbox --body "$T/body.json") || fail "sign --scheme rfc9421"
grep -Eqx 'Signature-Input: sig1=\("@method" "@target-uri" "content-type" "content-digest" "date"\);created=[0-9]+;keyid="K";alg="rsa-v1_5-sha256"' <<<"$out" ||
    fail "sign rfc9421 defaults differ from the engine's: $out"
grep -q '^Content-Digest: sha-256=:' <<<"$out" || fail "sign rfc9421: no Content-Digest: $out"
out=$("$HERALD" sign --pem "$T/alice.pem" --key-id K --method POST \
    --url https://h.example/inbox --body "$T/body.json") || fail "sign cavage"
grep -q 'headers="(request-target) host date digest content-type"' <<<"$out" ||
    fail "sign cavage defaults differ from the engine's: $out"
pass "herald sign without --components signs the engine's components, both schemes"
