#!/usr/bin/env bash
# Makes a throw-away test PKI in DIR for fedisim and Herald's integration tests:
#   ca.pem / ca.key          a test CA (trust it with herald --ca-file DIR/ca.pem)
#   server.pem / server.key  *.fedi.test, fedi.test, localhost, 127.0.0.1 (chain: leaf + CA)
#   wrong.pem / wrong.key    wrong.example only: for host-name mismatch tests
#   leaf/N.pem / leaf/N.key  with NLEAF > 0, N = 0..NLEAF-1: each its own key and certificate
#                            for the same names as server.pem, signed by the same CA (chain:
#                            leaf + CA), for fedisim --leaf-certs DIR/leaf
# P-256 keys, 30 days. Key files are mode 0600. Needs the openssl CLI (3.x).
set -euo pipefail
dir=${1:?usage: mkcerts.sh DIR [NLEAF]}
nleaf=${2:-0}
case $nleaf in
'' | *[!0-9]*)
    echo "mkcerts.sh: NLEAF must be a number" >&2
    exit 2
    ;;
esac
mkdir -p "$dir"
cd "$dir"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=fedisim test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem 2>/dev/null

leaf() { # name, subjectAltName
    local name=$1 san=$2
    openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/$name.ec" 2>/dev/null
    # PKCS#8 ("BEGIN PRIVATE KEY"): what every TLS stack loads.
    openssl pkcs8 -topk8 -nocrypt -in "$tmp/$name.ec" -out "$name.key"
    openssl req -new -key "$name.key" -subj "/CN=${san%%,*}" -out "$tmp/$name.csr" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "$san" > "$tmp/$name.ext"
    openssl x509 -req -in "$tmp/$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -CAserial "$tmp/ca.srl" -days 30 -sha256 -extfile "$tmp/$name.ext" \
        -out "$tmp/$name.crt" 2>/dev/null
    cat "$tmp/$name.crt" ca.pem > "$name.pem"
}
leaf server "DNS:*.fedi.test,DNS:fedi.test,DNS:localhost,IP:127.0.0.1"
leaf wrong "DNS:wrong.example"
chmod 0600 ca.key server.key wrong.key
chmod 0644 ca.pem server.pem wrong.pem

if [ "$nleaf" -gt 0 ]; then
    # Per-host leaves: one openssl process each (key, PKCS#8 key file and CA-signed
    # certificate at once with req -x509 -CA, OpenSSL 3), two at a time. Serials are random.
    mkdir -p leaf
    cat > "$tmp/leaf.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = fedi.test
[ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:*.fedi.test,DNS:fedi.test,DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
    export tmp
    seq 0 $((nleaf - 1)) | xargs -P2 -I{} sh -c '
        openssl req -x509 -config "$tmp/leaf.cnf" -extensions ext -subj "/CN=fedisim leaf {}" \
            -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf/{}.key \
            -CA ca.pem -CAkey ca.key -days 30 -sha256 -out "$tmp/{}.crt" 2>"$tmp/{}.err" ||
            { cat "$tmp/{}.err" >&2; exit 255; }
        cat "$tmp/{}.crt" ca.pem > leaf/{}.pem'
    chmod 0600 leaf/*.key
    chmod 0644 leaf/*.pem
fi
echo "$dir"
