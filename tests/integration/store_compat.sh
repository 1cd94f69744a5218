#!/usr/bin/env bash
# A store written by an earlier binary (tests/data/store/v1-data.mdb.gz, schema 1) opens and
# delivers unchanged: its key signs, its follows and rules hold, its 55 queued deliveries
# arrive once each with valid signatures, and the records read back as they were written.
# The fixture's inboxes name port 39443 on h2c: the test skips if that port is taken.
source "$(dirname "$0")/lib/common.sh"
need jq; need gzip
PORT=39443
mkcerts
DB="$T/db"
mkdir -m 700 "$DB"
gzip -dc "$HD_SRC/tests/data/store/v1-data.mdb.gz" >"$DB/data.mdb"
chmod 600 "$DB/data.mdb"

# the records as written
"$HERALD" --db "$DB" key list --json >"$T/keys.json" || fail "key list"
jq -e -s 'length == 1 and .[0].key_id == "https://social.example/users/alice#main-key"' \
    "$T/keys.json" >/dev/null || fail "key list: $(cat "$T/keys.json")"
"$HERALD" --db "$DB" follow list --actor https://social.example/users/alice --count >"$T/count"
grep -qx 'follows 30' "$T/count" && grep -qx 'delivery_inboxes 10' "$T/count" ||
    fail "follow count: $(cat "$T/count")"
"$HERALD" --db "$DB" block list --json | jq -e -s '.[0].domain == "blocked.test"' >/dev/null ||
    fail "block list"
"$HERALD" --db "$DB" stats --json >"$T/before.json"
[ "$(jq .activities "$T/before.json")" = 5 ] || fail "activities: $(jq -c . "$T/before.json")"
[ "$(jq .deliveries.pending "$T/before.json")" = 55 ] || fail "pending: $(jq -c . "$T/before.json")"
"$HERALD" --db "$DB" key export-public >"$T/keys.jsonl"

if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then
    echo "SKIP: port $PORT is in use" >&2
    exit 77
fi
start_fedisim --h2c-port "$PORT" --keys "$T/keys.jsonl" --verify all
[ "$H2C_PORT" = "$PORT" ] || fail "fedisim h2c port $H2C_PORT"
timeout 120 "$HERALD" --db "$DB" run --until-idle --resolve "*:$PORT:127.0.0.1" \
    --allow-private-addresses 2>"$T/run.log" || { tail -20 "$T/run.log"; fail "herald run failed"; }
"$HERALD" --db "$DB" stats --json >"$T/after.json"
stop_fedisim
R="$T/fedisim.report.json"
jq -c '{requests,accepted,unique_pairs,duplicates,bad_signature}' "$R"
[ "$(jq .deliveries.done "$T/after.json")" = 55 ] || fail "done: $(jq -c .deliveries "$T/after.json")"
[ "$(jq .deliveries.pending "$T/after.json")" = 0 ] || fail "still pending"
[ "$(jq .unique_pairs "$R")" = 55 ] || fail "receiver unique pairs $(jq .unique_pairs "$R")"
[ "$(jq .duplicates "$R")" = 0 ] || fail "duplicates"
[ "$(jq .bad_signature "$R")" = 0 ] || fail "bad signatures"
pass "a schema-1 store written by an earlier binary delivered its 55 queued deliveries, all verified"
