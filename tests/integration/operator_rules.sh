#!/usr/bin/env bash
# Defederation through the CLI, on a store with queued deliveries (no engine running):
# a suspend drops the domain's queued deliveries (subdomains too, not look-alikes), each
# counted, and `herald stats` agrees; new deliveries to it are refused at enqueue and
# reported per envelope; silence/noop change nothing; "*." covers subdomains only;
# Mastodon CSV export -> import round-trips; a bad CSV is refused with line numbers and
# changes nothing; allowlist mode keeps only allowed domains.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl
DB="$T/db"
H() { "$HERALD" --db "$DB" "$@"; }
setup_actor "$DB"

env_line() { # ID INBOX...
    local id=$1 first=1 s
    shift
    s="{\"activity\":{\"id\":\"https://social.example/act/$id\",\"type\":\"Create\",\"actor\":\"https://social.example/users/alice\",\"to\":[\"https://www.w3.org/ns/activitystreams#Public\"],\"object\":{\"id\":\"https://social.example/notes/$id\",\"type\":\"Note\"}},\"inboxes\":["
    for i in "$@"; do
        [ $first = 1 ] || s="$s,"
        s="$s\"$i\""
        first=0
    done
    echo "$s]}"
}
stat() { H stats --json | jq "$1"; }
host_queued() { H stats --json | jq "[.hosts[] | select(.host == \"$1\") | .queued] | add // 0"; }

# 4 activities x 6 hosts, plus subdomains and look-alikes
gen_envelopes https 443 4 6 >"$T/env.jsonl"
env_line x1 https://a.h2.fedi.test/inbox https://b.a.h2.fedi.test/inbox \
    https://xh2.fedi.test/inbox https://h3.fedi.test/shared https://a.h3.fedi.test/inbox \
    https://h5.fedi.test/shared >>"$T/env.jsonl"
H enqueue "$T/env.jsonl" >"$T/enq.out" || fail "enqueue: $(cat "$T/enq.out")"
[ "$(stat .deliveries.pending)" = 30 ] || fail "pending $(stat .deliveries.pending), want 30"

# suspend h2.fedi.test: h2 (4) + a.h2 (1) + b.a.h2 (1) dropped; xh2 kept
out=$(H block add H2.fedi.test --severity suspend --comment "spam, abuse")
echo "$out"
grep -q "dropped 6 queued deliveries on 3 hosts" <<<"$out" || fail "block add output: $out"
[ "$(stat .deliveries.dropped)" = 6 ] || fail "stats dropped $(stat .deliveries.dropped)"
[ "$(stat .deliveries.pending)" = 24 ] || fail "pending $(stat .deliveries.pending), want 24"
[ "$(host_queued h2.fedi.test)" = 0 ] || fail "h2 still queued"
[ "$(host_queued a.h2.fedi.test)" = 0 ] || fail "a.h2 still queued"
[ "$(host_queued xh2.fedi.test)" = 1 ] || fail "look-alike xh2 was dropped"
pass "suspend drops the domain and its subdomains, counted; stats agree"

# "*." covers subdomains only
out=$(H block add '*.h3.fedi.test' --severity suspend)
grep -q "dropped 1 queued delivery on 1 host" <<<"$out" || fail "wildcard: $out"
[ "$(host_queued h3.fedi.test)" = 5 ] || fail "h3 itself must stay queued"
[ "$(stat .deliveries.dropped)" = 7 ] || fail "dropped $(stat .deliveries.dropped)"

# silence and noop drop nothing
out=$(H block add h5.fedi.test --severity silence --reject-media)
grep -q dropped <<<"$out" && fail "silence dropped deliveries: $out"
H block add h6.fedi.test --severity noop --reject-reports >/dev/null
[ "$(host_queued h5.fedi.test)" = 5 ] || fail "silence changed the queue"
[ "$(stat .deliveries.dropped)" = 7 ] || fail "dropped changed"
pass "wildcards cover subdomains only; silence and noop keep delivering"

# new deliveries to a suspended domain are refused at enqueue and reported
env_line x2 https://h2.fedi.test/inbox https://c.h2.fedi.test/inbox https://h4.fedi.test/inbox \
    | H enqueue - >"$T/enq2.out" || fail "enqueue x2: $(cat "$T/enq2.out")"
[ "$(jq .refused_by_rules "$T/enq2.out")" = 2 ] || fail "refused_by_rules: $(cat "$T/enq2.out")"
[ "$(jq .deliveries "$T/enq2.out")" = 1 ] || fail "deliveries: $(cat "$T/enq2.out")"
[ "$(stat .deliveries.dropped)" = 9 ] || fail "dropped $(stat .deliveries.dropped), want 9"
[ "$(host_queued h2.fedi.test)" = 0 ] || fail "h2 queued after a refused enqueue"
pass "enqueue refuses inboxes on suspended domains and says how many"

# list / export / import round trip
H block list --json >"$T/list.json"
[ "$(wc -l <"$T/list.json")" = 4 ] || fail "block list: $(cat "$T/list.json")"
[ "$(jq -r 'select(.domain == "h2.fedi.test") | .comment' "$T/list.json")" = "spam, abuse" ] ||
    fail "comment lost"
H block export >"$T/export.csv"
head -1 "$T/export.csv" | grep -qx '#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate' ||
    fail "export header: $(head -1 "$T/export.csv")"
grep -qx 'h2.fedi.test,suspend,false,false,"spam, abuse",false' "$T/export.csv" || fail "export row: $(cat "$T/export.csv")"
for d in h2.fedi.test '*.h3.fedi.test' h5.fedi.test h6.fedi.test; do H block remove "$d" >/dev/null; done
[ -z "$(H block list)" ] || fail "blocks left after removal"
H block import "$T/export.csv" | grep -q "imported 4 blocks (4 new, 0 replaced)" || fail "import"
H block export | cmp - "$T/export.csv" || fail "export after import differs"
pass "Mastodon CSV export -> import -> export is identical"

# a Mastodon export with quoting, CRLF and a wildcard
printf '#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\r\n' >"$T/masto.csv"
printf 'spam.example,suspend,true,true,"Spam, ""lots""\nof it",false\r\n' >>"$T/masto.csv"
printf '*.wild.example,silence,false,false,,true\r\n' >>"$T/masto.csv"
H block import "$T/masto.csv" | grep -q "imported 2 blocks (2 new" || fail "masto import"
H block export >"$T/export2.csv"
H block import "$T/export2.csv" | grep -q "(0 new, 6 replaced)" || fail "re-import"
H block export | cmp - "$T/export2.csv" || fail "second round trip differs"
H block list --json | jq -e 'select(.domain == "spam.example") | .comment == "Spam, \"lots\"\nof it"' >/dev/null ||
    fail "quoted comment: $(H block list --json | grep spam)"

# a bad file: every bad line reported with its number, nothing changed
printf '#domain,#severity\nok.example,suspend\nbad example,suspend\nx.example,obliterate\n' >"$T/bad.csv"
H block export >"$T/before.csv"
if H block import "$T/bad.csv" 2>"$T/bad.err"; then fail "bad import accepted"; fi
cat "$T/bad.err"
grep -q "bad.csv:3: invalid domain" "$T/bad.err" || fail "line 3 not reported"
grep -q "bad.csv:4: unknown severity" "$T/bad.err" || fail "line 4 not reported"
grep -q "nothing imported" "$T/bad.err" || fail "no 'nothing imported'"
H block export | cmp - "$T/before.csv" || fail "bad import changed the rules"
pass "bad CSV lines reported by line number; nothing imported"

# allowlist mode: refused with an empty list, then only allowed domains keep deliveries
if H federation mode allowlist 2>/dev/null; then fail "allowlist with nothing allowed"; fi
[ "$(H federation mode)" = open ] || fail "mode changed"
H allow add h1.fedi.test >/dev/null
H allow add '*.h4.fedi.test' >/dev/null
before=$(stat .deliveries.dropped)
q1=$(host_queued h1.fedi.test)
out=$(H federation mode allowlist)
echo "$out"
[ "$(H federation mode)" = allowlist ] || fail "mode not allowlist"
[ "$(stat .deliveries.pending)" = "$q1" ] || fail "pending $(stat .deliveries.pending), want $q1 (h1 only)"
[ "$(host_queued h4.fedi.test)" = 0 ] || fail "h4 itself is not allowed by *.h4"
dropped=$(stat .deliveries.dropped)
grep -q "dropped $((dropped - before)) queued" <<<"$out" || fail "mode output: $out"
env_line x3 https://h1.fedi.test/inbox https://a.h4.fedi.test/inbox https://h4.fedi.test/inbox \
    https://other.example/inbox | H enqueue - >"$T/enq3.out"
[ "$(jq .deliveries "$T/enq3.out")" = 2 ] || fail "allowlist enqueue: $(cat "$T/enq3.out")"
[ "$(jq .refused_by_rules "$T/enq3.out")" = 2 ] || fail "allowlist refused: $(cat "$T/enq3.out")"
H allow list | grep -qx h1.fedi.test || fail "allow list"
H federation mode open >/dev/null
env_line x4 https://other.example/inbox | H enqueue - | jq -e '.deliveries == 1' >/dev/null ||
    fail "open mode refuses"
pass "allowlist mode: only allowed domains (and *. subdomains) receive anything"

# a fan-out to many hosts (the snapshot path of the enqueue check): look-alikes of a blocked
# host (h20..h29 for h2) are not refused
H block add h7.fedi.test --severity suspend >/dev/null
gen_envelopes https 443 1 70 big | H enqueue - >"$T/enq4.out"
[ "$(jq .deliveries "$T/enq4.out")" = 68 ] || fail "fan-out: $(cat "$T/enq4.out")"
[ "$(jq .refused_by_rules "$T/enq4.out")" = 2 ] || fail "fan-out refused: $(cat "$T/enq4.out")"
[ "$(host_queued h20.fedi.test)" = 1 ] || fail "look-alike h20 refused"
pass "fan-out to 70 hosts: only the blocked two refused"

# totals still add up: every delivery is done, pending, retrying, failed or dropped
total=$(( $(stat .deliveries.pending) + $(stat .deliveries.retrying) + $(stat .deliveries.dropped) ))
[ "$total" = $((30 + 3 + 4 + 1 + 70)) ] || fail "accounting: $total"
pass "operator rules"
