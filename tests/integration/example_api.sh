#!/usr/bin/env bash
# tools/example_api (the C API example) runs as documented: a first run enqueues, a second
# run reports the duplicate, and the CLI sees what the API stored.
source "$(dirname "$0")/lib/common.sh"
need jq
EX="$HD_BUILD/tools/example_api"
[ -x "$EX" ] || fail "no $EX"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/k.pem" 2>/dev/null ||
    fail "openssl genpkey"
"$EX" "$T/db" "$T/k.pem" >"$T/out1" || fail "first run: $(cat "$T/out1")"
grep -q '^enqueued seq=1 deliveries=1$' "$T/out1" || fail "first run said: $(cat "$T/out1")"
"$EX" "$T/db" "$T/k.pem" >"$T/out2" || fail "second run"
grep -q '^already enqueued as seq=1$' "$T/out2" || fail "second run said: $(cat "$T/out2")"
S=$("$HERALD" --db "$T/db" stats --json)
[ "$(jq .activities <<<"$S")" = 1 ] || fail "stats: $S"
[ "$(jq -r '.hosts[0].host' <<<"$S")" = mastodon.example ] || fail "host: $S"
"$HERALD" --db "$T/db" key list | grep -q 'https://social.example/users/alice#main-key' ||
    fail "key not listed"
pass "example_api: enqueue, duplicate, visible to the CLI"

# The operator's controls of the C API: host controls, a suspend keeping the delivery as a
# dead letter, unblock and retry, the actor's federation choice; each audited (source=api).
"$EX" "$T/db2" "$T/k.pem" admin >"$T/out3" 2>"$T/err3" || fail "admin: $(cat "$T/out3" "$T/err3")"
grep -q '^host mastodon.example: paused=0 max_inflight=8 rate=2.5$' "$T/out3" || fail "admin host: $(cat "$T/out3")"
grep -q '^suspended mastodon.example: 1 queued deliveries became dead letters$' "$T/out3" || fail "admin block"
grep -q '^dead letters: 1$' "$T/out3" && grep -q '^unblocked; requeued 1 (kept 0)$' "$T/out3" ||
    fail "admin dead letters: $(cat "$T/out3")"
for op in block_add block_remove dead_retry actor_federation; do
    grep -q "mod=audit op=$op .*source=api" "$T/err3" || fail "no audit line for $op: $(cat "$T/err3")"
done
S=$("$HERALD" --db "$T/db2" stats --json)
[ "$(jq .deliveries.pending <<<"$S")" = 1 ] && [ "$(jq .deliveries.dropped <<<"$S")" = 0 ] ||
    fail "admin left: $S"
"$HERALD" --db "$T/db2" host show mastodon.example --json | jq -e '.max_inflight == 0 and .paused == false' >/dev/null ||
    fail "host controls not cleared"
pass "example_api admin: host controls, blocks, dead letters, federation choice (audited)"

# Installed: `cmake --install` into a prefix, then the example built out of tree with
# pkg-config against that prefix only, shared and static.
need pkg-config; need cc
P="$T/prefix"
cmake --install "$HD_BUILD" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$T/install.log")"
for f in bin/herald lib/libherald.so lib/libherald.a include/herald/herald.h lib/pkgconfig/herald.pc \
    lib/systemd/system/herald.service share/doc/herald/herald.ini.example; do
    [ -e "$P/$f" ] || fail "not installed: $f"
done
so=$(readlink "$P/lib/libherald.so")
[ "$so" = libherald.so.0 ] || fail "libherald.so -> $so, want libherald.so.0"
objdump -p "$P/lib/libherald.so" | grep -Eq 'SONAME +libherald\.so\.0$' || fail "SONAME"
others=$(nm -D --defined-only "$P/lib/libherald.so" | awk '$3 != "" {print $3}' | grep -v '^herald_' | grep -v '^HERALD_0$' || true)
[ -z "$others" ] || fail "libherald.so exports more than herald_*: $(head -3 <<<"$others")"
"$P/bin/herald" --version | grep -q '^herald ' || fail "installed bin/herald"
SAN=()
[ "$HD_ASAN" = 1 ] && SAN=(-fsanitize=address,undefined)
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
mkdir "$T/oot" && cp "$HD_SRC/tools/example_api.c" "$T/oot/"
# shellcheck disable=SC2046 # pkg-config output is a list of flags
cc "${SAN[@]}" -o "$T/oot/example_api" "$T/oot/example_api.c" $(pkg-config --cflags --libs herald) ||
    fail "out-of-tree build with pkg-config"
LD_LIBRARY_PATH="$P/lib" ldd "$T/oot/example_api" >"$T/ldd.txt" 2>&1 || true
grep -q "$P/lib/libherald.so.0" "$T/ldd.txt" || fail "not linked to the installed library: $(cat "$T/ldd.txt")"
LD_LIBRARY_PATH="$P/lib" "$T/oot/example_api" "$T/db3" "$T/k.pem" admin >"$T/out4" 2>/dev/null ||
    fail "the out-of-tree example failed: $(cat "$T/out4")"
grep -q '^enqueued seq=1 deliveries=1$' "$T/out4" && grep -q '^unblocked; requeued 1' "$T/out4" ||
    fail "out-of-tree example said: $(cat "$T/out4")"
# Static: the archive and the dependencies' own shared libraries.
# shellcheck disable=SC2046
cc "${SAN[@]}" -o "$T/oot/example_static" "$T/oot/example_api.c" $(pkg-config --cflags herald) \
    "$P/lib/libherald.a" $(pkg-config --libs lmdb msgpack wolfssl libcrypto jansson libidn2) -lpthread -lm ||
    fail "static link against libherald.a"
ldd "$T/oot/example_static" >"$T/ldd2.txt" 2>&1 || true
grep -q libherald "$T/ldd2.txt" && fail "the static example links libherald.so"
"$T/oot/example_static" "$T/db4" "$T/k.pem" >"$T/out5" || fail "static example: $(cat "$T/out5")"
grep -q '^enqueued seq=1 deliveries=1$' "$T/out5" || fail "static example said: $(cat "$T/out5")"
pass "cmake --install: bin, libherald.so.0 (herald_* only) and .a, headers, herald.pc, unit, example config; example_api built out of tree with pkg-config, shared and static"
