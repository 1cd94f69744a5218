#!/usr/bin/env bash
# Hostile TLS and TCP behaviour: a fatal alert, plain text or silence in answer to the
# ClientHello; expired, self-signed and wrong-host certificates; connections reset right after
# accept, after the handshake, after the request and in the middle of the response. All in one
# `herald run` next to a healthy host. See hostile_lib.bash for what each case checks.
source "$(dirname "$0")/hostile_lib.bash"
extra_certs
for m in tls-alert tls-garbage tls-silent reset-accept reset-tls reset-request \
    reset-mid-response; do
    start_hostile "$m" "$m"
done
start_hostile cert-expired h1-ok "$T/certs/expired.pem" "$T/certs/expired.key"
start_hostile cert-self h1-ok "$T/certs/self.pem" "$T/certs/self.key"
start_hostile cert-wrong-host h1-ok "$T/certs/wrong.pem" "$T/certs/wrong.key"
start_hostile h1-ok h1-ok
run_cases "${RUN_SECONDS:-6}"
expect h1-ok done
expect tls-alert retry 'tls'
expect tls-garbage retry 'tls'
expect tls-silent retry 'timeout'
expect reset-accept retry 'tls|reset|closed'
expect reset-tls retry 'reset|closed|tls'
expect reset-request retry 'reset|closed'
expect reset-mid-response retry 'reset|closed'
for c in cert-expired cert-self cert-wrong-host; do
    expect "$c" retry 'certificate|verif'
    [ "$(hstat "$c" requests)" = 0 ] || fail "$c: a request was sent over an unverified connection"
done
finish hostile_tls
