#!/usr/bin/env bash
# FEP-8fcf Collection-Synchronization. Alice's followers sit on a few hosts; a follower's id
# may name another host than its inbox. A followers-only Create (to Alice's followers, not
# Public) is sent with `herald run --collection-sync-url`; a plain-HTTP receiver logs every
# request. An independent check (tests/integration/lib/csync_check.py: Python's hashlib and
# cryptography) recomputes each host's digest from the follower list, verifies every
# signature (draft-cavage; RFC 9421 for rfc.test, which accepts nothing else) with Alice's
# public key and requires the header to be among the signed ones;
# public Creates and explicit-only posts carry no header. Two rounds: after the first follows
# (hosts of one and of many followers), then after removes and an add.
source "$(dirname "$0")/lib/common.sh"
need jq; need openssl; need python3
python3 -c 'import cryptography' 2>/dev/null || { echo "SKIP: python3-cryptography" >&2; exit 77; }
DB="$T/db"
setup_actor "$DB"
openssl pkey -in "$T/alice.pem" -pubout -out "$T/alice.pub" 2>/dev/null
ALICE=https://social.example/users/alice
TPL='{actor}/followers_synchronization'
LIB="$(dirname "$0")/lib"
python3 "$LIB/csync_recv.py" "$T/req.jsonl" "$T/port" 120 &
PIDS+=("$!")
wait_file "$T/port"
P=$(cat "$T/port")
follow() { # follow add|remove ID [INBOX [SHARED]]
    if [ "$1" = add ]; then
        "$HERALD" --db "$DB" follow add --actor "$ALICE" --follower "$2" --inbox "$3" \
            ${4:+--shared-inbox "$4"} >/dev/null || fail "follow add $2"
    else
        "$HERALD" --db "$DB" follow remove --actor "$ALICE" --follower "$2" >/dev/null || fail "follow remove $2"
    fi
}
ONE="http://one.test:$P"; MANY="http://many.test:$P"; ELSE="http://elsewhere.test:$P"
follow add "$ONE/users/f1" "$ONE/users/f1/inbox"
for i in 1 2 3 4 5 6; do follow add "$MANY/users/m$i" "$MANY/users/m$i/inbox" "$MANY/inbox"; done
# id on many.test, inbox on elsewhere.test: counted for many.test, delivered to elsewhere.test
follow add "$MANY/users/m7" "$ELSE/inbox/m7"
# rfc.test verifies RFC 9421 only: the header must be among its signed components
RFC="http://rfc.test:$P"
follow add "$RFC/users/r1" "$RFC/users/r1/inbox" "$RFC/inbox"
follow add "$RFC/users/r2" "$RFC/users/r2/inbox" "$RFC/inbox"

post() { # post ROUND [EXTRA_INBOX]
    local r=$1 extra=${2:-}
    {
      printf '{"activity":{"id":"https://social.example/act/fo%s","type":"Create","actor":"%s","to":["%s/followers"],"object":{"id":"https://social.example/n/fo%s","type":"Note","to":["%s/followers"],"content":"followers only"}},"to_followers":true%s}\n' \
          "$r" "$ALICE" "$ALICE" "$r" "$ALICE" "${extra:+,\"inboxes\":[\"$extra\"]}"
      printf '{"activity":{"id":"https://social.example/act/pub%s","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["%s/followers"],"object":{"id":"https://social.example/n/pub%s","type":"Note","content":"public"}},"to_followers":true}\n' \
          "$r" "$ALICE" "$ALICE" "$r"
      printf '{"activity":{"id":"https://social.example/act/dm%s","type":"Create","actor":"%s","to":["%s/users/m1"],"object":{"id":"https://social.example/n/dm%s","type":"Note","content":"direct"}},"inboxes":["%s/inbox"]}\n' \
          "$r" "$ALICE" "$MANY" "$r" "$MANY"
    } | "$HERALD" --db "$DB" enqueue - >/dev/null || fail "enqueue round $r"
    timeout -s TERM 60 "$HERALD" --db "$DB" run --until-idle --threads 1 \
        --resolve "*:$P:127.0.0.1" --allow-private-addresses \
        --collection-sync-url "$TPL" 2>"$T/run$r.log" || fail "run: $(tail -3 "$T/run$r.log")"
    mv "$T/req.jsonl" "$T/req$r.jsonl"
}
check() { # check ROUND WANT_WITH_HEADER
    "$HERALD" --db "$DB" follow list --actor "$ALICE" >"$T/fl$1.jsonl" 2>/dev/null ||
        fail "follow list"
    jq -r '.follower' "$T/fl$1.jsonl" >"$T/followers$1.txt"
    out=$(python3 "$LIB/csync_check.py" "$T/req$1.jsonl" "$T/followers$1.txt" "$T/alice.pub" \
        "$ALICE" "$TPL") || fail "round $1: $out"
    echo "round $1: $out"
    echo "$out" | grep -q "with_header=$2 " || fail "round $1: want $2 requests with the header: $out"
}

post 1
check 1 3 # one.test (1), many.test (7, one delivered elsewhere), rfc.test (2, RFC 9421)
grep -q "rfc9421=0 " <<<"$out" && fail "no RFC 9421 request was checked"
pass "hosts of one, two and seven followers: digests match hashlib, header signed (cavage and RFC 9421)"

follow remove "$MANY/users/m1"; follow remove "$MANY/users/m2"; follow remove "$MANY/users/m3"
follow remove "$ONE/users/f1"
follow remove "$RFC/users/r1"
follow add "$MANY/users/m8" "$MANY/users/m8/inbox" "$MANY/inbox"
post 2 "$ONE/users/f1/inbox" # one.test now has no follower: delivered, no header
check 2 2
pass "after removes and an add: digests match hashlib; a host without followers gets none"
