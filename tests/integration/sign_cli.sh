#!/usr/bin/env bash
# `herald sign` end to end: the draft-cavage-12 Appendix C vectors byte for byte, and
# signatures from every backend and key form (RSA 2048/4096, PKCS#1/PKCS#8) verified by an
# independent verifier (openssl dgst -verify) over a signing string rebuilt here in shell.
set -u
: "${HD_BUILD:?}" "${HD_SRC:?}"
command -v openssl >/dev/null || { echo "SKIP: no openssl CLI"; exit 77; }

# Use `herald sign` once main.c dispatches to it, else the stand-in tool.
if [ -x "$HD_BUILD/engine/herald" ] && "$HD_BUILD/engine/herald" sign --help >/dev/null 2>&1; then
    SIGN=("$HD_BUILD/engine/herald" sign)
else
    SIGN=("$HD_BUILD/tests/sign_cli" sign)
fi
[ -x "${SIGN[0]}" ] || { echo "SKIP: no signing binary"; exit 77; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

DATA="$HD_SRC/tests/data/sign"
URL='http://example.com/foo?param=value&pet=dog'
DATE='Sun, 05 Jan 2014 21:31:40 GMT'
printf '%s' '{"hello": "world"}' > "$T/body.json"

# --- Appendix C vectors (both backends, and auto) ---
for be in wolfssl openssl auto; do
    out=$("${SIGN[@]}" --backend "$be" --pem "$DATA/cavage-test.pem" --key-id Test \
          --method POST --url "$URL" -H "Date: $DATE" --components date) || bad "C.1 $be rc"
    grep -qx 'Signature: keyId="Test",algorithm="rsa-sha256",headers="date",signature="SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s7uEGKKCs+FLEEaDV5lp7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM="' <<<"$out" \
        && ok "C.1 default test ($be)" || bad "C.1 ($be): $out"
    # Basic test: default components without a body are "(request-target) host date".
    out=$("${SIGN[@]}" --backend "$be" --pem "$DATA/cavage-test.pem" --key-id Test \
          --method POST --url "$URL" -H "Date: $DATE") || bad "C.2 $be rc"
    expect=$'Host: example.com\nDate: Sun, 05 Jan 2014 21:31:40 GMT\nSignature: keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date",signature="qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0="'
    [ "$out" = "$expect" ] && ok "C.2 basic test ($be)" || bad "C.2 ($be): $out"
    # All headers test: Digest computed from the body by herald.
    out=$("${SIGN[@]}" --backend "$be" --pem "$DATA/cavage-test.pem" --key-id Test \
          --method POST --url "$URL" -H "Date: $DATE" -H 'Content-Type: application/json' \
          -H 'Content-Length: 18' --body "$T/body.json" \
          --components '(request-target) host date content-type digest content-length') \
        || bad "C.3 $be rc"
    expect=$'Host: example.com\nDate: Sun, 05 Jan 2014 21:31:40 GMT\nDigest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\nSignature: keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date content-type digest content-length",signature="vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE="'
    [ "$out" = "$expect" ] && ok "C.3 all headers test ($be)" || bad "C.3 ($be): $out"
done

# --- Generated keys, verified by openssl ---
sig_of() { sed -n 's/^Signature: .*signature="\([^"]*\)".*/\1/p'; }
for bits in 2048 4096; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:$bits -out "$T/k8.pem" 2>/dev/null \
        || { bad "keygen $bits"; continue; }
    openssl pkey -in "$T/k8.pem" -traditional -out "$T/k1.pem" 2>/dev/null \
        || openssl rsa -in "$T/k8.pem" -traditional -out "$T/k1.pem" 2>/dev/null
    openssl pkey -in "$T/k8.pem" -pubout -out "$T/pub.pem"
    head -1 "$T/k1.pem" | grep -q 'BEGIN RSA PRIVATE KEY' || bad "no PKCS#1 form"
    head -1 "$T/k8.pem" | grep -q 'BEGIN PRIVATE KEY' || bad "no PKCS#8 form"
    dig="SHA-256=$(openssl dgst -sha256 -binary "$T/body.json" | base64 -w0)"
    for form in k1 k8; do
        for be in wolfssl openssl; do
            url='https://Inbox.Example.org:443/users/alice/inbox?x=1'
            out=$("${SIGN[@]}" --backend "$be" --pem "$T/$form.pem" --key-id 'https://a.example/actor#main-key' \
                  --method POST --url "$url" -H "Date: $DATE" --body "$T/body.json") \
                || { bad "sign $bits $form $be"; continue; }
            # Default with a body: (request-target) host date digest content-type.
            printf '%s' "(request-target): post /users/alice/inbox?x=1
host: inbox.example.org
date: $DATE
digest: $dig
content-type: application/activity+json" > "$T/base"
            sig_of <<<"$out" | base64 -d > "$T/sig.bin"
            grep -qx "Digest: $dig" <<<"$out" || bad "digest line $bits $form $be"
            grep -qx 'Content-Type: application/activity+json' <<<"$out" || bad "ctype $be"
            grep -q 'headers="(request-target) host date digest content-type"' <<<"$out" \
                || bad "headers param $bits $form $be"
            if openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.bin" "$T/base" \
                    >/dev/null 2>&1; then
                ok "RSA-$bits $form $be verifies with openssl"
            else
                bad "RSA-$bits $form $be does not verify: $out"
            fi
        done
    done
    # Both backends must produce the same bytes (PKCS#1 v1.5 is deterministic).
    a=$("${SIGN[@]}" --backend wolfssl --pem "$T/k1.pem" --key-id k --method GET \
        --url http://h.example/ -H "Date: $DATE" | sig_of)
    b=$("${SIGN[@]}" --backend openssl --pem "$T/k8.pem" --key-id k --method GET \
        --url http://h.example/ -H "Date: $DATE" | sig_of)
    [ -n "$a" ] && [ "$a" = "$b" ] && ok "RSA-$bits wolfssl == openssl" || bad "backends differ"
done

# --- Errors ---
"${SIGN[@]}" --pem "$DATA/cavage-test.pub.pem" --key-id k --method GET --url http://h.example/ \
    >/dev/null 2>&1 && bad "public key accepted as private" || ok "public key refused"
"${SIGN[@]}" --pem "$DATA/cavage-test.pem" --key-id k --method GET --url ftp://h.example/ \
    >/dev/null 2>&1; [ $? = 2 ] && ok "bad URL is a usage error" || bad "bad URL"
"${SIGN[@]}" --pem "$DATA/cavage-test.pem" --key-id k --method GET --url http://h.example/ \
    --components 'host date x-absent' >/dev/null 2>&1 && bad "missing header" || ok "missing header refused"
# No key material on stdout/stderr.
out=$("${SIGN[@]}" --pem "$DATA/cavage-test.pem" --key-id k --method GET --url http://h.example/ \
      --show-base 2>&1)
grep -q 'MIIC\|PRIVATE' <<<"$out" && bad "key material printed" || ok "no key material printed"

exit $fail
