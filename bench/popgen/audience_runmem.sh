#!/usr/bin/env bash
# `herald run` memory does not grow with the number of follows: the same post to the same
# 200 shared inboxes, once from an actor with 2,000 followers and once from one with
# 1,000,000 (all on those 200 hosts, all with a shared inbox), delivered to a loopback
# fedisim; compares max_rss_mb from the run summary. The runner reads queued deliveries,
# never follows.
#
#   HD_BUILD=build HD_SRC=. bash bench/popgen/audience_runmem.sh
source "$HD_SRC/tests/integration/lib/common.sh"
need jq; need openssl
A=https://social.example/users/alice
mkcerts
start_fedisim --tls-port 0 --max-conns 2000
for n in 2000 1000000; do
    DB="$T/db$n"
    setup_actor "$DB"
    "$HD_BUILD/bench/popgen/popgen" --actor "$A" --follows "$n" --hosts 200 --shared-pct 100 \
        --port "$TLS_PORT" --out "$T/pop$n.jsonl" --summary "$T/pop$n.json"
    "$HERALD" --db "$DB" follow import "$T/pop$n.jsonl" >/dev/null || fail "import $n"
    printf '{"activity":{"id":"https://social.example/act/mem%s","type":"Create","actor":"%s","to":["https://www.w3.org/ns/activitystreams#Public"],"object":{"id":"https://social.example/notes/mem%s","type":"Note","content":"hello"}},"to_followers":true}\n' \
        "$n" "$A" "$n" | "$HERALD" --db "$DB" enqueue - >"$T/enq$n.json" || fail "enqueue $n"
    timeout 600 "$HERALD" --db "$DB" run --until-idle --resolve "*:$TLS_PORT:127.0.0.1" \
        --ca-file "$T/certs/ca.pem" --allow-private-addresses --tls-timeout 60000 \
        2>"$T/run$n.log" || fail "run $n"
    s=$(grep -o 'summary:.*' "$T/run$n.log")
    echo "follows=$n deliveries=$(jq .deliveries "$T/enq$n.json") $s"
done
