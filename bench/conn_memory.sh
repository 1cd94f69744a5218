#!/usr/bin/env bash
# Peak RSS of `herald run` for one post to N TLS hosts (one delivery each) against fedisim,
# for given --max-active-hosts / --idle-timeout values. Usage:
#   HD_BUILD=build HD_SRC=. bash bench/conn_memory.sh [HOSTS] [CAP] [IDLE_MS]
# Prints Herald's summary line (max_rss_mb is the figure).
set -euo pipefail
HOSTS=${1:-5000}; CAP=${2:-128}; IDLE=${3:-2000}
source "${HD_SRC:-.}/tests/integration/lib/common.sh"
mkcerts
DB="$T/db"
setup_actor "$DB"
start_fedisim --tls-port 0 --keys "$T/keys.jsonl" --verify none
gen_envelopes https "$TLS_PORT" 1 "$HOSTS" >"$T/env.jsonl"
"$HERALD" --db "$DB" enqueue "$T/env.jsonl" >/dev/null
"$HERALD" --db "$DB" run --until-idle --max-active-hosts "$CAP" --idle-timeout "$IDLE" \
    --resolve "*:$TLS_PORT:127.0.0.1" --ca-file "$T/certs/ca.pem" --allow-private-addresses \
    2>&1 | grep summary | sed "s/^/hosts=$HOSTS cap=$CAP idle_ms=$IDLE /"
