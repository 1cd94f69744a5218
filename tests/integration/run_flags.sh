#!/usr/bin/env bash
# `herald run` refuses a bad value with exit 2 and names the flag it was given, for every
# flag that takes a number or a word (the error names flags through a table indexed by the
# option's value: a table out of order named the wrong flag).
source "$(dirname "$0")/lib/common.sh"
DB="$T/db"
for f in threads max-inflight-host connect-timeout tls-timeout response-timeout retry-base \
    retry-cap max-attempts window-init breaker-threshold probe-base probe-max retry-after-cap \
    max-age dead-days day-length dead-probe max-active-hosts idle-timeout dead-host-queue \
    key-cache; do
    rc=0
    "$HERALD" --db "$DB" run --"$f" bogus 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "--$f bogus: exit $rc, want 2"
    grep -q -- "--$f: bogus" "$T/err" || fail "--$f bogus: $(cat "$T/err")"
done
pass "every numeric or word flag of herald run names itself when its value is refused"
