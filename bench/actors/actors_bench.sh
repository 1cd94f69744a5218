#!/usr/bin/env bash
# Millions of actors, measured: key import and a fan-out of many distinct actors.
#
#   bench/actors/actors_bench.sh BUILD_DIR [NKEYS] [NACTORS] [NINBOX]
#
# 1. Key import: NKEYS (default 200,000) JSON lines {"key_id","actor","pem"}, RSA-2048 PEMs
#    from a pool of 32 generated keys (the import checks and stores every line the same way
#    whatever the key; generating 200,000 RSA keys would take hours), through
#    `herald key import` in its default groups of 1,000 per transaction. Reports wall and CPU
#    time, keys per second, and the bytes per key: the pages of the keys and actors tables
#    (mdb_stat -a) over NKEYS, and the data file over NKEYS.
# 2. Fan-out: NACTORS (default 50,000) distinct actors post once each to NINBOX (default 3)
#    inboxes on NINBOX hosts of fedisim (TLS, HTTP/2, every 10th request's signature
#    verified), then the same number of posts by one actor, each in a fresh store, and the
#    many-actor run once more with a key cache that holds every actor's key. Every delivery
#    must arrive (fedisim's unique pairs) with no bad signature. Reports the run summary:
#    CPU per delivery, signatures and their CPU, and the key loads it implies.
#
# Prints one "RESULT" line per measurement. Needs openssl, python3, jq, mdb_stat.
set -euo pipefail
B=$(cd "${1:?usage: actors_bench.sh BUILD_DIR [NKEYS] [NACTORS] [NINBOX]}" && pwd)
NKEYS=${2:-200000}
NACTORS=${3:-50000}
NINBOX=${4:-3}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
HERALD="$B/engine/herald"
FEDISIM="$B/bench/fedisim"
T=$(mktemp -d /tmp/hd-actors-bench-XXXXXX)
FS_PID=
cleanup() { [ -n "$FS_PID" ] && kill "$FS_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
echo "date=$(date -u +%FT%TZ) commit=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo ?) nproc=$(nproc) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\""

# A pool of 32 RSA-2048 keys, and JSON lines for N actors u1..uN: keys.jsonl (private, for
# the import) and pub.jsonl (public, for fedisim).
mkdir -p "$T/pool"
for i in $(seq 0 31); do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/pool/$i.pem" 2>/dev/null
    openssl pkey -in "$T/pool/$i.pem" -pubout -out "$T/pool/$i.pub" 2>/dev/null
done
gen_keys() { # gen_keys N OUT_PRIVATE OUT_PUBLIC
    python3 - "$1" "$2" "$3" "$T/pool" <<'PY'
import json, sys
n, out, pub, pool = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
priv = [open("%s/%d.pem" % (pool, i)).read() for i in range(32)]
pubs = [open("%s/%d.pub" % (pool, i)).read() for i in range(32)]
with open(out, "w") as f, open(pub, "w") as g:
    for i in range(1, n + 1):
        a = "https://social.example/users/u%d" % i
        f.write(json.dumps({"key_id": a + "#main-key", "actor": a, "pem": priv[i % 32]}) + "\n")
        g.write(json.dumps({"key_id": a + "#main-key", "actor": a, "public_pem": pubs[i % 32]}) + "\n")
PY
}

# ---- 1. key import
gen_keys "$NKEYS" "$T/keys.jsonl" "$T/keys.pub.jsonl"
TIMEFORMAT="%R %U %S"
{ time "$HERALD" --db "$T/kdb" key import "$T/keys.jsonl" >"$T/import.out" 2>"$T/import.err"; } 2>"$T/import.time"
read -r wall usr sys <"$T/import.time"
grep -q "imported $NKEYS keys, 0 bad lines" "$T/import.out" || { cat "$T/import.out" "$T/import.err"; exit 1; }
pages() { mdb_stat -a "$T/kdb" | awk -v db="$1" '
    $0 ~ "^Status of " db "$" { on = 1; next } /^Status of / { on = 0 }
    on && /Branch pages|Leaf pages|Overflow pages/ { s += $3 } END { print s + 0 }'; }
psz=$(mdb_stat -e "$T/kdb" | awk '/Page size/ { print $3 }')
kp=$(pages keys); ap=$(pages actors)
fsz=$(stat -c %s "$T/kdb/data.mdb")
python3 - "$NKEYS" "$wall" "$usr" "$sys" "$psz" "$kp" "$ap" "$fsz" <<'PY'
import sys
n, wall, usr, sys_, psz, kp, ap, fsz = sys.argv[1:]
n = int(n); wall = float(wall); cpu = float(usr) + float(sys_); psz = int(psz)
print("RESULT key_import keys=%d wall_s=%.2f cpu_s=%.2f keys_per_s=%.0f cpu_us_per_key=%.1f "
      "bytes_per_key_tables=%.0f (keys %d pages, actors %d pages of %d) bytes_per_key_file=%.0f"
      % (n, wall, cpu, n / wall, cpu * 1e6 / n, (int(kp) + int(ap)) * psz / n, int(kp), int(ap),
         psz, int(fsz) / n))
PY
rm -rf "$T/kdb"

# ---- 2. fan-out: NACTORS actors once each, vs one actor, same deliveries
bash "$SRC/bench/mkcerts.sh" "$T/certs" >/dev/null 2>&1
gen_keys "$NACTORS" "$T/fan.jsonl" "$T/fan.pub.jsonl"
start_fedisim() {
    rm -f "$T/fs.ready" "$T/fs.report.json"
    "$FEDISIM" --bind 127.0.0.1 --cert "$T/certs/server.pem" --key "$T/certs/server.key" \
        --tls-port 0 --keys "$T/fan.pub.jsonl" --verify sample:10 --ready-file "$T/fs.ready" \
        --report "$T/fs.report.json" --max-seconds 3600 --quiet >"$T/fs.log" 2>&1 &
    FS_PID=$!
    for _ in $(seq 600); do [ -s "$T/fs.ready" ] && break; sleep 0.1; done
    P=$(jq -r .tls_port "$T/fs.ready")
}
stop_fedisim() {
    kill -TERM "$FS_PID"; wait "$FS_PID" 2>/dev/null || true; FS_PID=
}
fanout() { # fanout LABEL ACTORS(many|one) [RUN FLAGS...]
    local label=$1 who=$2; shift 2
    local db="$T/db-$label"
    start_fedisim
    if [ "$who" = many ]; then
        "$HERALD" --db "$db" key import "$T/fan.jsonl" >/dev/null
    else
        head -1 "$T/fan.jsonl" | "$HERALD" --db "$db" key import - >/dev/null
    fi
    awk -v n="$NACTORS" -v k="$NINBOX" -v p="$P" -v who="$who" 'BEGIN {
        for (i = 1; i <= n; i++) {
            a = who == "many" ? i : 1
            printf "{\"activity\":{\"id\":\"https://social.example/act/%d\",\"type\":\"Create\",\"actor\":\"https://social.example/users/u%d\",\"to\":[\"https://www.w3.org/ns/activitystreams#Public\"],\"object\":{\"id\":\"https://social.example/n/%d\",\"type\":\"Note\",\"content\":\"post %d\"}},\"inboxes\":[", i, a, i, i
            for (h = 1; h <= k; h++)
                printf "%s\"https://h%d.fedi.test:%d/users/r%d/inbox\"", (h > 1 ? "," : ""), h, p, i % 100
            printf "]}\n"
        }
    }' | "$HERALD" --db "$db" enqueue - >/dev/null
    "$HERALD" --db "$db" run --until-idle --threads 2 --resolve "*:$P:127.0.0.1" \
        --ca-file "$T/certs/ca.pem" --allow-private-addresses "$@" 2>"$T/run-$label.log"
    stop_fedisim
    local sum want=$((NACTORS * NINBOX))
    sum=$(grep '^summary:' "$T/run-$label.log")
    local pairs bad
    pairs=$(jq .unique_pairs "$T/fs.report.json"); bad=$(jq .bad_signature "$T/fs.report.json")
    [ "$pairs" = "$want" ] && [ "$bad" = 0 ] || { echo "FAIL $label: fedisim pairs=$pairs bad=$bad, want $want" >&2; exit 1; }
    echo "RESULT fanout $label actors=$([ "$who" = many ] && echo "$NACTORS" || echo 1) posts=$NACTORS inboxes_each=$NINBOX fedisim_pairs=$pairs bad_signatures=$bad ${sum#summary: }"
    rm -rf "$db"
}
fanout one_actor one
fanout many_actors many
fanout many_actors_cache_all many --key-cache $((NACTORS + 1000))
