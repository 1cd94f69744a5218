#!/usr/bin/env bash
# The effective policy of a host: `host show` lists max in flight and rate with their source
# (default, config [host], host set), in text and JSON; `host set --clear` removes the host set
# overrides; a config section [host "bücher.example"] is read as its A-label name; `host set`
# wins over the file, setting by setting, and the file over the default.
source "$(dirname "$0")/lib/common.sh"
need jq
DB="$T/db"
H() { "$HERALD" --db "$DB" "$@"; }
cat >"$T/herald.ini" <<'INI'
[run]
max_inflight_host = 32

[host "Bücher.Example"]
max_inflight = 8
rate = 2.5

[host "rate-only.example"]
rate = 1
INI
H federation mode open >/dev/null 2>&1 # creates the store
S() { H host show "$1" --config "$T/herald.ini" --json | jq -c '.settings | [.max_inflight.value, .max_inflight.source, .rate.value, .rate.source]'; }

[ "$(S xn--bcher-kva.example)" = '[8,"config [host]",2.5,"config [host]"]' ] ||
    fail "IDN section: $(S xn--bcher-kva.example)"
[ "$(S bücher.example)" = '[8,"config [host]",2.5,"config [host]"]' ] || fail "IDN argument"
[ "$(S rate-only.example)" = '[32,"default",1,"config [host]"]' ] || fail "rate only: $(S rate-only.example)"
pass "config [host \"bücher.example\"] is read as xn--bcher-kva.example; show gives each source"

H host set bücher.example --rate 5 >/dev/null || fail "host set --rate"
[ "$(S xn--bcher-kva.example)" = '[8,"config [host]",5,"host set"]' ] ||
    fail "host set wins, setting by setting: $(S xn--bcher-kva.example)"
H host set rate-only.example --max-inflight 4 >/dev/null
[ "$(S rate-only.example)" = '[4,"host set",1,"config [host]"]' ] || fail "host set max: $(S rate-only.example)"
H host show xn--bcher-kva.example --config "$T/herald.ini" >"$T/show.txt"
grep -Eq '^max in flight: +8 \(config \[host\]\)$' "$T/show.txt" || fail "text: $(cat "$T/show.txt")"
grep -Eq '^rate limit: +5 requests/s \(host set\)$' "$T/show.txt" || fail "text rate: $(cat "$T/show.txt")"
H host show xn--bcher-kva.example >"$T/show.txt"
grep -Eq '^max in flight: +64 \(default\)$' "$T/show.txt" || fail "no --config: $(cat "$T/show.txt")"
grep -q 'config file not read' "$T/show.txt" || fail "no --config note"
pass "host set wins over the config, setting by setting; without --config the file is not guessed"

H host set bücher.example --clear >"$T/out" || fail "--clear"
grep -q 'from the config or the default' "$T/out" || fail "--clear output: $(cat "$T/out")"
[ "$(S xn--bcher-kva.example)" = '[8,"config [host]",2.5,"config [host]"]' ] || fail "after --clear: $(S xn--bcher-kva.example)"
H host set rate-only.example --clear --rate 3 >/dev/null
[ "$(S rate-only.example)" = '[32,"default",3,"host set"]' ] || fail "--clear then --rate: $(S rate-only.example)"
rc=0; H host set rate-only.example 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "host set with nothing to set: exit $rc"
pass "host set --clear removes the overrides"

printf '[host "bad/name"]\nrate = 1\n' >"$T/bad.ini"
rc=0; H host show x.example --config "$T/bad.ini" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q 'bad host section' "$T/err" || fail "a bad section name: $rc $(cat "$T/err")"
pass "a bad [host] section name is refused with the line"
