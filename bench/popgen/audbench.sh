#!/usr/bin/env bash
# Audience figures, RUNS times (default 3), medians printed at the end:
#  - `herald follow import` of FOLLOWS follows of one actor over HOSTS hosts (popgen):
#    wall time, and user+sys CPU time (the VM is shared: wall time includes waiting for CPU);
#  - store cost per follow: pages of the follows + audience + fwactors DBIs / follows, and
#    the data file size / follows (audbench stat);
#  - one post with "to_followers": true: time until all its deliveries are committed
#    (audbench enqueue: ingest + commit in one write transaction, fsync included) and its
#    CPU time; and the whole `herald enqueue` process (open, ingest, commit, exit).
#
#   HD_BUILD=build bash bench/popgen/audbench.sh [FOLLOWS] [HOSTS] [RUNS]
set -euo pipefail
: "${HD_BUILD:?HD_BUILD must point at the build directory}"
FOLLOWS=${1:-1000000}
HOSTS=${2:-20000}
RUNS=${3:-3}
HERALD="$HD_BUILD/engine/herald"
POPGEN="$HD_BUILD/bench/popgen/popgen"
AUDBENCH="$HD_BUILD/bench/popgen/audbench"
A=https://social.example/users/alice
W=$(mktemp -d /tmp/hd-audbench-XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 700 "$W"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/k.pem" 2>/dev/null
"$POPGEN" --actor "$A" --follows "$FOLLOWS" --hosts "$HOSTS" --out "$W/pop.jsonl" \
    --summary "$W/pop.json"
echo "population: $(cat "$W/pop.json")"
post() {
    printf '{"activity":{"id":"https://social.example/act/%s","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/%s","type":"Note","content":"hello"}},"to_followers":true}\n' \
        "$1" "$A" "$1"
}
: >"$W/runs.tsv"
for r in $(seq "$RUNS"); do
    DB="$W/db$r"
    "$HERALD" --db "$DB" key add --key-id "$A#main-key" --actor "$A" --pem "$W/k.pem" >/dev/null
    sync
    /usr/bin/time -f '%e %U %S' -o "$W/time" "$HERALD" --db "$DB" follow import "$W/pop.jsonl" \
        >"$W/import.json"
    read -r iwall iuser isys <"$W/time"
    "$AUDBENCH" stat --db "$DB" --actor "$A" >"$W/stat.json"
    post "r$r-a" >"$W/post.json"
    "$AUDBENCH" enqueue --db "$DB" --file "$W/post.json" >"$W/enq.json"
    post "r$r-b" >"$W/post2.json"
    /usr/bin/time -f '%e' -o "$W/time2" "$HERALD" --db "$DB" enqueue "$W/post2.json" >"$W/enq2.json"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$iwall" \
        "$(awk -v u="$iuser" -v s="$isys" 'BEGIN{printf "%.2f", u+s}')" \
        "$(jq .store_bytes_per_follow "$W/stat.json")" \
        "$(jq .data_file_bytes_per_follow "$W/stat.json")" \
        "$(jq .persisted_ms "$W/enq.json")" "$(jq .cpu_ms "$W/enq.json")" \
        "$(jq .deliveries "$W/enq.json")" "$(awk '{printf "%.0f", $1 * 1000}' "$W/time2")" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$W/runs.tsv"
    echo "run $r: import $(cat "$W/import.json") time ${iwall}s (cpu ${iuser}+${isys}s);" \
        "stat $(cat "$W/stat.json"); enqueue $(cat "$W/enq.json");" \
        "herald enqueue process $(cat "$W/time2")s $(cat "$W/enq2.json"); load $(cut -d' ' -f1-3 /proc/loadavg)"
    rm -rf "$DB"
done
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
col() { cut -f"$1" "$W/runs.tsv" | median; }
echo "medians over $RUNS runs: import_wall_s=$(col 1) import_cpu_s=$(col 2)" \
    "store_bytes_per_follow=$(col 3) data_file_bytes_per_follow=$(col 4)" \
    "enqueue_persisted_ms=$(col 5) enqueue_cpu_ms=$(col 6) deliveries=$(col 7)" \
    "herald_enqueue_process_ms=$(col 8)"
