#!/usr/bin/env bash
# Signature checks of the TLS handshake, which Herald hands to OpenSSL for ECDSA keys
# (engine/net/tls_pk.c through wolfSSL's public-key callback): a server certificate whose
# signature by the (trusted) test CA is corrupted, and a server whose CertificateVerify is
# signed with a key other than its certificate's, must both be refused before any request is
# sent; a correct server next to them gets every delivery. An openssl s_client check first
# proves each bad server is bad for an independent client too.
source "$(dirname "$0")/hostile_lib.bash"
d=$T/certs

# The leaf with the last byte of its signature flipped (still well-formed DER: the last byte
# of the ECDSA s value), followed by the CA as in server.pem.
openssl x509 -in "$d/server.pem" -outform DER -out "$d/leaf.der" 2>/dev/null || fail "leaf DER"
n=$(stat -c %s "$d/leaf.der")
last=$(od -An -tu1 -j $((n - 1)) -N 1 "$d/leaf.der" | tr -d ' ')
head -c $((n - 1)) "$d/leaf.der" >"$d/badsig.der"
printf "\\$(printf '%03o' $(((last ^ 1) & 255)))" >>"$d/badsig.der"
cmp -s "$d/leaf.der" "$d/badsig.der" && fail "corrupting the signature changed nothing"
openssl x509 -inform DER -in "$d/badsig.der" -out "$d/badsig.crt" 2>/dev/null || fail "bad-signature cert no longer parses"
cat "$d/badsig.crt" "$d/ca.pem" >"$d/badsig.pem"
openssl verify -CAfile "$d/ca.pem" "$d/badsig.crt" >/dev/null 2>&1 &&
    fail "openssl verify accepts the corrupted certificate"

start_hostile cert-bad-sig h1-ok "$d/badsig.pem" "$d/server.key"
# wolfSSL's server does not check that its key matches its certificate: it signs the
# CertificateVerify with wrong.key (also P-256) under server.pem's public key.
start_hostile cert-bad-key h1-ok "$d/server.pem" "$d/wrong.key"
start_hostile h1-ok h1-ok
for c in cert-bad-sig cert-bad-key; do
    if echo | timeout 10 openssl s_client -connect "127.0.0.1:${HPORT[$c]}" \
        -servername "$c.fedi.test" -CAfile "$d/ca.pem" -verify_return_error >"$T/$c.sclient" 2>&1; then
        fail "$c: openssl s_client completed the handshake"
    fi
done
run_cases "${RUN_SECONDS:-4}"
expect h1-ok done
for c in cert-bad-sig cert-bad-key; do
    expect "$c" retry 'certificate|verif|tls'
    [ "$(hstat "$c" requests)" = 0 ] || fail "$c: a request was sent over an unverified connection"
done
finish tls_verify
