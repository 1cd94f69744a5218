#!/usr/bin/env bash
# fedisim's independent verifier: requests signed in this script with the openssl CLI
# (draft-cavage rsa-sha256 / hs2019 and RFC 9421 rsa-v1_5-sha256, each with RSA and Ed25519)
# are accepted; tampered, stale, unsigned, wrongly signed or unknown-key requests get 401 and
# are counted as bad_signature; a host profile can accept only one scheme. When the herald
# binary is built, `herald sign` output is checked against fedisim too (interop).
set -euo pipefail
: "${HD_BUILD:?}" "${HD_SRC:?}"
FEDISIM=$HD_BUILD/bench/fedisim
[ -x "$FEDISIM" ] || { echo "skip: $FEDISIM not built"; exit 77; }
for t in curl openssl base64; do
    command -v "$t" >/dev/null || { echo "skip: $t missing"; exit 77; }
done
export LC_ALL=C
T=$(mktemp -d /tmp/fedisim_verify.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$T/log" ] && tail -20 "$T/log" >&2; exit 1; }
port() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$T/ready.json"; }
jnum() { grep -o "\"$1\": [0-9]*" "$2" | head -1 | awk '{print $2}'; }
start() {
    rm -f "$T/ready.json"
    "$FEDISIM" --bind 127.0.0.1 --cert "$T/certs/server.pem" --key "$T/certs/server.key" \
        --ready-file "$T/ready.json" --report "$T/report.json" --max-seconds 120 "$@" \
        >"$T/log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        [ -s "$T/ready.json" ] && return 0
        if ! kill -0 "$PID" 2>/dev/null; then
            wait "$PID" && rc=0 || rc=$?
            PID=
            [ "$rc" = 77 ] && { echo "skip: no io_uring"; exit 77; }
            fail "fedisim exited with $rc"
        fi
        sleep 0.1
    done
    fail "fedisim not ready"
}
stop() {
    kill -TERM "$PID"
    for _ in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    wait "$PID" || fail "fedisim exit code $?"
    PID=
}

"$HD_SRC/bench/mkcerts.sh" "$T/certs" >/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/alice.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/mallory.pem" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$T/ed.pem" 2>/dev/null
keyline() { # key_id private.pem
    local pub
    pub=$(openssl pkey -in "$2" -pubout | awk '{printf "%s\\n", $0}')
    printf '{"key_id":"%s","public_pem":"%s"}\n' "$1" "$pub"
}
ALICE=https://origin.test/users/alice#main-key
ED=https://origin.test/users/ed#ed25519-key
{ keyline "$ALICE" "$T/alice.pem"; keyline "$ED" "$T/ed.pem"; } >"$T/keys.jsonl"

cat >"$T/profiles.ini" <<'INI'
[cavage-only.fedi.test]
signature = cavage
[rfc9421-only.fedi.test]
signature = rfc9421
INI
start --tls-port 0 --h1-port 0 --keys "$T/keys.jsonl" --profiles "$T/profiles.ini"
TLS=$(port tls_port); H1=$(port h1_port)
grep -q 'keys=2' "$T/log" || fail "keys not loaded: $(cat "$T/log")"

CTV=application/activity+json
printf '{"id":"https://origin.test/act/%s","type":"Create","actor":"https://origin.test/users/alice"}' 1 >"$T/b1.json"
printf '{"id":"https://origin.test/act/%s","type":"Create","actor":"https://origin.test/users/alice"}' 2 >"$T/b2.json"

# sign HOST PATH BODYFILE KEYFILE KEYID [ALG] [HEADERS] [DATE]: sets DATE DIGEST SIGHDR
sign() {
    local host=$1 path=$2 body=$3 key=$4 keyid=$5 alg=${6:-rsa-sha256}
    local headers=${7:-(request-target) host date digest content-type} ss h sig
    DATE=${8:-$(date -u '+%a, %d %b %Y %H:%M:%S GMT')}
    DIGEST="SHA-256=$(openssl dgst -sha256 -binary <"$body" | base64 -w0)"
    ss=
    for h in $headers; do
        case $h in
        "(request-target)") ss+="(request-target): post $path" ;;
        host) ss+="host: $host" ;;
        date) ss+="date: $DATE" ;;
        digest) ss+="digest: $DIGEST" ;;
        content-type) ss+="content-type: $CTV" ;;
        esac
        ss+=$'\n'
    done
    ss=${ss%$'\n'}
    printf '%s' "$ss" >"$T/ss.txt"
    if [ "$alg" = ed25519 ] || grep -q ED25519 <(openssl pkey -in "$key" -noout -text 2>&1); then
        sig=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$T/ss.txt" | base64 -w0)
    else
        sig=$(openssl dgst -sha256 -sign "$key" "$T/ss.txt" | base64 -w0)
    fi
    SIGHDR="keyId=\"$keyid\",algorithm=\"$alg\",headers=\"$headers\",signature=\"$sig\""
}
# send URL BODYFILE curl-args... -> prints the status
send() {
    local url=$1 body=$2; shift 2
    curl -sS -o "$T/resp.txt" -w '%{http_code}' --max-time 10 --cacert "$T/certs/ca.pem" \
        -X POST -H "Content-Type: $CTV" -H "Date: $DATE" -H "Digest: $DIGEST" \
        --data-binary @"$body" "$@" "$url"
}
expect() { # want got what
    [ "$1" = "$2" ] || fail "$3: status $2, want $1 ($(cat "$T/resp.txt" 2>/dev/null))"
}

# 1. Correct over HTTP/1.1 (Host header).
sign a.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 202 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "good h1"
# 2. Correct over TLS h2 (:authority carries the port).
sign "a.fedi.test:$TLS" /users/bob/inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 202 "$(send "https://a.fedi.test:$TLS/users/bob/inbox" "$T/b1.json" --http2 \
    --resolve "a.fedi.test:$TLS:127.0.0.1" -H "Signature: $SIGHDR")" "good h2"
# 3. hs2019 with an RSA key (PKCS#1 v1.5, as Mastodon does).
sign a.fedi.test /inbox "$T/b2.json" "$T/alice.pem" "$ALICE" hs2019
expect 202 "$(send "http://127.0.0.1:$H1/inbox" "$T/b2.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "good hs2019"
# 4. Ed25519 (hs2019).
sign b.fedi.test /inbox "$T/b2.json" "$T/ed.pem" "$ED" hs2019
expect 202 "$(send "http://127.0.0.1:$H1/inbox" "$T/b2.json" --http1.1 -H 'Host: b.fedi.test' \
    -H "Signature: $SIGHDR")" "good ed25519"
# 5. Body changed after signing: the Digest no longer matches.
sign a.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b2.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "tampered body"
# 6. Signed by another key under alice's key id.
sign a.fedi.test /inbox "$T/b1.json" "$T/mallory.pem" "$ALICE"
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "wrong key"
# 7. Unknown key id.
sign a.fedi.test /inbox "$T/b1.json" "$T/mallory.pem" https://evil.test/users/m#key
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "unknown key"
# 8. The headers list leaves out digest.
sign a.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE" rsa-sha256 "(request-target) host date"
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "short headers list"
# 9. A Date ten minutes old, correctly signed.
sign a.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE" rsa-sha256 "" \
    "$(date -u -d '-10 min' '+%a, %d %b %Y %H:%M:%S GMT')"
sign a.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE" rsa-sha256 \
    "(request-target) host date digest content-type" "$DATE"
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "stale date"
# 10. Signed for another host than the one it is sent to.
sign b.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test' \
    -H "Signature: $SIGHDR")" "wrong host"
# 11. No signature at all.
sign a.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test')" \
    "unsigned"

# RFC 9421: sign9421 URL BODYFILE KEYFILE KEYID [ALG] [CREATED]: sets CDIG SIGIN SIGV
sign9421() {
    local url=$1 body=$2 key=$3 keyid=$4 alg=${5:-} created=${6:-$(date +%s)} params base
    CDIG="sha-256=:$(openssl dgst -sha256 -binary <"$body" | base64 -w0):"
    params="(\"@method\" \"@target-uri\" \"content-digest\" \"content-type\");created=$created;keyid=\"$keyid\""
    [ -n "$alg" ] && params+=";alg=\"$alg\""
    base="\"@method\": POST"$'\n'"\"@target-uri\": $url"$'\n'"\"content-digest\": $CDIG"$'\n'
    base+="\"content-type\": $CTV"$'\n'"\"@signature-params\": $params"
    printf '%s' "$base" >"$T/base.txt"
    if grep -q ED25519 <(openssl pkey -in "$key" -noout -text 2>&1); then
        SIGV=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$T/base.txt" | base64 -w0)
    else
        SIGV=$(openssl dgst -sha256 -sign "$key" "$T/base.txt" | base64 -w0)
    fi
    SIGIN="sig1=$params"
}
send9421() { # URL BODYFILE curl-args...
    local url=$1 body=$2; shift 2
    curl -sS -o "$T/resp.txt" -w '%{http_code}' --max-time 10 --cacert "$T/certs/ca.pem" \
        -X POST -H "Content-Type: $CTV" -H "Content-Digest: $CDIG" -H "Signature-Input: $SIGIN" \
        -H "Signature: sig1=:$SIGV:" --data-binary @"$body" "$@" "$url"
}
# 12. RFC 9421 rsa-v1_5-sha256 over HTTP/1.1.
sign9421 http://a.fedi.test/inbox "$T/b1.json" "$T/alice.pem" "$ALICE" rsa-v1_5-sha256
expect 202 "$(send9421 "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test')" \
    "9421 rsa"
# 13. RFC 9421 Ed25519 without an alg parameter, over TLS h2.
sign9421 "https://c.fedi.test:$TLS/inbox" "$T/b2.json" "$T/ed.pem" "$ED"
expect 202 "$(send9421 "https://c.fedi.test:$TLS/inbox" "$T/b2.json" --http2 \
    --resolve "c.fedi.test:$TLS:127.0.0.1")" "9421 ed25519 h2"
# 14. RFC 9421, body changed after signing.
sign9421 http://a.fedi.test/inbox "$T/b1.json" "$T/alice.pem" "$ALICE" rsa-v1_5-sha256
expect 401 "$(send9421 "http://127.0.0.1:$H1/inbox" "$T/b2.json" --http1.1 -H 'Host: a.fedi.test')" \
    "9421 tampered"
# 15. RFC 9421, created ten minutes ago.
sign9421 http://a.fedi.test/inbox "$T/b1.json" "$T/alice.pem" "$ALICE" rsa-v1_5-sha256 \
    "$(($(date +%s) - 600))"
expect 401 "$(send9421 "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 -H 'Host: a.fedi.test')" \
    "9421 stale"
# 16. A cavage-only host refuses a good RFC 9421 request, an RFC 9421-only host a good
#     cavage one (reason "scheme"); each accepts its own.
sign9421 http://cavage-only.fedi.test/inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 401 "$(send9421 "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 \
    -H 'Host: cavage-only.fedi.test')" "9421 at cavage-only"
sign cavage-only.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 202 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 \
    -H 'Host: cavage-only.fedi.test' -H "Signature: $SIGHDR")" "cavage at cavage-only"
sign rfc9421-only.fedi.test /inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 401 "$(send "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 \
    -H 'Host: rfc9421-only.fedi.test' -H "Signature: $SIGHDR")" "cavage at rfc9421-only"
sign9421 http://rfc9421-only.fedi.test/inbox "$T/b1.json" "$T/alice.pem" "$ALICE"
expect 202 "$(send9421 "http://127.0.0.1:$H1/inbox" "$T/b1.json" --http1.1 \
    -H 'Host: rfc9421-only.fedi.test')" "9421 at rfc9421-only"

# 17. Interop: the headers `herald sign` prints verify here (both schemes, every alg).
HERALD=$HD_BUILD/engine/herald
interop=0
if [ -x "$HERALD" ]; then
    for combo in "cavage alice.pem $ALICE -" "rfc9421 alice.pem $ALICE rsa-v1_5-sha256" \
        "rfc9421 alice.pem $ALICE rsa-pss-sha512" "rfc9421 ed.pem $ED ed25519" \
        "cavage ed.pem $ED -"; do
        set -- $combo
        alg=(); [ "$4" != - ] && alg=(--alg "$4")
        "$HERALD" sign --pem "$T/$2" --key-id "$3" --method POST --url http://d.fedi.test/inbox \
            --header "Content-Type: $CTV" --body "$T/b1.json" --scheme "$1" "${alg[@]}" \
            >"$T/hdrs.txt" 2>/dev/null || fail "herald sign $combo"
        hargs=()
        while IFS= read -r l; do [ -n "$l" ] && hargs+=(-H "$l"); done <"$T/hdrs.txt"
        s=$(curl -sS -o "$T/resp.txt" -w '%{http_code}' --max-time 10 --http1.1 -X POST \
            -H "Content-Type: $CTV" "${hargs[@]}" --data-binary @"$T/b1.json" \
            "http://127.0.0.1:$H1/inbox")
        expect 202 "$s" "herald sign $combo"
        interop=$((interop + 1))
    done
else
    echo "note: $HERALD not built, interop part skipped"
fi
stop

R=$T/report.json
[ "$(jnum requests "$R")" = $((19 + interop)) ] || fail "requests $(jnum requests "$R")"
[ "$(jnum accepted "$R")" = $((8 + interop)) ] || fail "accepted $(jnum accepted "$R")"
[ "$(jnum bad_signature "$R")" = 11 ] || fail "bad_signature $(jnum bad_signature "$R")"
[ "$(jnum 401 "$R")" = 11 ] || fail "401 count"
[ "$(jnum verified "$R")" = $((19 + interop)) ] || fail "verified $(jnum verified "$R")"
[ "$(jnum digest "$R")" = 2 ] || fail "digest reason"
[ "$(jnum signature "$R")" = 2 ] || fail "signature reason"
[ "$(jnum unknown_key "$R")" = 1 ] || fail "unknown_key reason"
[ "$(jnum headers_list "$R")" = 1 ] || fail "headers_list reason"
[ "$(jnum date "$R")" = 2 ] || fail "date reason"
[ "$(jnum no_signature "$R")" = 1 ] || fail "no_signature reason"
[ "$(jnum scheme "$R")" = 2 ] || fail "scheme reason"
[ "$(jnum verified_rfc9421 "$R")" -ge 3 ] || fail "verified_rfc9421"

# --verify sample:2 checks every other request: of 6 unsigned requests 3 get 401.
start --h1-port 0 --keys "$T/keys.jsonl" --verify sample:2
H1=$(port h1_port)
n401=0
for i in 1 2 3 4 5 6; do
    s=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --http1.1 -X POST \
        -H "Content-Type: $CTV" -H 'Host: a.fedi.test' --data-binary @"$T/b1.json" \
        "http://127.0.0.1:$H1/inbox")
    [ "$s" = 401 ] && n401=$((n401 + 1))
done
stop
[ "$n401" = 3 ] || fail "sample:2 gave $n401 401s of 6"
[ "$(jnum verified "$R")" = 3 ] && [ "$(jnum unverified "$R")" = 3 ] || fail "sample:2 counts"
echo "fedisim_verify: ok (herald sign interop checks: $interop)"
