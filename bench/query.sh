#!/usr/bin/env bash
# Query benchmark (issue 4, item 7): mlaudit serve with its index against PostgreSQL on the
# same machine, same events, same run. See bench/README.md, section "Query". Usage:
#
#   [N=1000000] [REPS=500] [Q3_REPS=50] [KEEP=1] bench/query.sh
#
# Phases (each prints its figures; a summary with the targets of issue 4 comes last):
#   [1] bulk ingest with indexing on: `mlaudit send --batch 1000 --concurrency 4` of N events
#       into a fresh server; events/s acknowledged; index lag sampled from /metrics every
#       0.1 s; time until everything is indexed; index bytes/event after the server closed.
#   [2] Q1-Q5 over HTTP (crates/server/examples/query_bench.rs), p50/p99, one request at a time.
#   [3] PostgreSQL: COPY of the same events into the table of bench/ingest.sh plus a GIN index
#       on body; the same five questions with the same parameters, with pgbench (one client,
#       simple protocol, per-transaction latency log); p50/p99; table size.
# Everything runs on the real disk under bench/.cache/ (never a tmpfs), with fsync on.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$REPO/bench/.cache"
MLAUDIT_BIN="$REPO/target/release/mlaudit"
SEED=1
N=${N:-1000000}
REPS=${REPS:-500}
Q3_REPS=${Q3_REPS:-50}
KEEP=${KEEP:-0}
case "${1:-}" in
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
  "") ;;
  *) echo "query.sh: takes no arguments; set N, REPS, Q3_REPS, KEEP in the environment (try --help)" >&2; exit 2 ;;
esac

# Settings from the environment must not change what is measured.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^MLAUDIT_' || true)

BENCH=query.sh
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

# ---------------------------------------------------------------- cleanup
SERVER_PID=""
SAMPLER_PID=""
PG_STARTED=0
PGDIR="$CACHE/pg-query"
RUN=""
cleanup() {
  local rc=$?
  set +e
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "$PG_STARTED" = 1 ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1
  fi
  if [ "$KEEP" = 0 ]; then
    [ -n "$RUN" ] && rm -rf "$RUN"
    rm -rf "$PGDIR"
  elif [ -n "$RUN" ]; then
    log "kept $RUN and $PGDIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$CACHE"
chmod 755 "$CACHE"
RUN="$CACHE/query-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN"
chmod 755 "$RUN"
FSTYPE=$(stat -f -c %T "$RUN")
case "$FSTYPE" in
  tmpfs|ramfs) die "$RUN is on $FSTYPE: fdatasync is free there; run from a checkout on a real disk" ;;
esac

# ---------------------------------------------------------------- build
log "== building (release)"
(cd "$REPO" && cargo build --release -p mlaudit --bins && cargo build --release -p server --example query_bench) >&2
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
MLAUDIT="$TARGET_DIR/release/mlaudit"
QBENCH="$TARGET_DIR/release/examples/query_bench"
[ -x "$MLAUDIT" ] && [ -x "$QBENCH" ] || die "release binaries not found in $TARGET_DIR/release"

# ---------------------------------------------------------------- events and parameters
EVENTS_FILE="$CACHE/events-$N-seed$SEED.ndjson"
if [ ! -s "$EVENTS_FILE" ]; then
  log "== generating $N events"
  "$MLAUDIT_BIN" demo events "$N" --seed "$SEED" > "$EVENTS_FILE.tmp"
  mv "$EVENTS_FILE.tmp" "$EVENTS_FILE"
fi
CSV_FILE="${EVENTS_FILE%.ndjson}.csv"
if [ ! -s "$CSV_FILE" ]; then
  log "== converting the events to CSV for COPY"
  python3 - "$EVENTS_FILE" > "$CSV_FILE.tmp" <<'PY'
import csv, json, sys
w = csv.writer(sys.stdout, lineterminator="\n")
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        line = line.strip()
        if not line:
            continue
        e = json.loads(line)
        actor = e.get("actor") or {}
        res = e.get("resource") or {}
        w.writerow([e.get("id", ""), e.get("time", ""), e.get("action", ""), actor.get("id", ""),
                    res.get("type", ""), res.get("id", ""), line])
PY
  mv "$CSV_FILE.tmp" "$CSV_FILE"
fi
# Query parameters drawn from the events (seeded, so every run asks the same questions):
# Q1 actor and 7-day window ending at one of its events, Q2 a dataset, Q4 the last 24 h,
# Q5 a dataset some model.train event names in `related`. 200 of each.
PARAMS="$CACHE/params-$N-seed$SEED"
if [ ! -s "$PARAMS/q5.tsv" ]; then
  log "== drawing query parameters from the events"
  mkdir -p "$PARAMS"
  python3 - "$EVENTS_FILE" "$PARAMS" <<'PY'
import json, random, sys
from datetime import datetime, timedelta, timezone
events, out = sys.argv[1], sys.argv[2]
def parse(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))
def fmt(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
rnd = random.Random(4)
actor_events, datasets, trained_on = [], [], set()
last = None
with open(events, encoding="utf-8") as f:
    for line in f:
        e = json.loads(line)
        t = parse(e["time"])
        last = t if last is None or t > last else last
        actor_events.append((e["actor"]["id"], t))
        res = e.get("resource") or {}
        if res.get("type") == "dataset":
            datasets.append(res["id"])
        if e["action"] == "model.train":
            for r in e.get("related") or []:
                if r.get("type") == "dataset":
                    trained_on.add(r["id"])
K = 200
with open(f"{out}/q1.tsv", "w") as f:
    for actor, t in rnd.sample(actor_events, K):
        end = t.replace(microsecond=0) + timedelta(seconds=1)
        f.write(f"{actor}\t{fmt(end - timedelta(days=7))}\t{fmt(end)}\n")
with open(f"{out}/q2.tsv", "w") as f:
    for d in rnd.sample(datasets, K):
        f.write(f"{d}\n")
with open(f"{out}/q4.tsv", "w") as f:
    end = last.replace(microsecond=0) + timedelta(seconds=1)
    f.write(f"{fmt(end - timedelta(days=1))}\t{fmt(end)}\n")
with open(f"{out}/q5.tsv", "w") as f:
    for d in rnd.sample(sorted(trained_on), min(K, len(trained_on))):
        f.write(f"{d}\n")
PY
fi

echo "mlaudit query benchmark: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r), $FSTYPE at $RUN"
echo "events: $N (mlaudit demo events --seed $SEED), $REPS runs per query (Q3: $Q3_REPS), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------- [1] ingest with indexing
echo "[1] mlaudit bulk ingest with indexing: send --batch 1000 --concurrency 4, fresh data dir"
DATA="$RUN/data"
"$MLAUDIT" serve --data-dir "$DATA" --listen 127.0.0.1:0 2> "$RUN/server.log" &
SERVER_PID=$!
SERVER_URL=""
for _ in $(seq 1 300); do
  SERVER_URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$RUN/server.log" | head -1)
  [ -n "$SERVER_URL" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN/server.log" >&2; die "the server exited"; }
  sleep 0.1
done
[ -n "$SERVER_URL" ] || die "the server did not start within 30 s"
# Every request needs a token: the admin token the server wrote on first start, read by
# `mlaudit send`, examples/query_bench.rs and the /metrics sampler.
export MLAUDIT_TOKEN; MLAUDIT_TOKEN=$(cat "$DATA/admin.token")
# The lag sampler: "seconds-since-start lag_entries" every 0.1 s.
t0=$(now)
( while :; do echo "$(calc '%.2f' "$(now) - $t0") $(lag_entries)"; sleep 0.1; done ) > "$RUN/lag.txt" 2>/dev/null &
SAMPLER_PID=$!
cpu0=$(cpu_secs "$SERVER_PID")
"$MLAUDIT" send --url "$SERVER_URL" --batch 1000 --concurrency 4 --quiet "$EVENTS_FILE" 2> "$RUN/send.err" \
  || { cat "$RUN/send.err" >&2; die "mlaudit send failed"; }
t_sent=$(now)
sed 's/^/   /' "$RUN/send.err"
BULK_RATE=$(sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' "$RUN/send.err")
BULK_SENT=$(sed -n 's/^sent \([0-9]*\) events.*/\1/p' "$RUN/send.err")
[ "$BULK_SENT" = "$N" ] || die "sent $BULK_SENT events, expected $N"
# Wait until the index holds everything.
for _ in $(seq 1 6000); do
  [ "$(lag_entries)" = 0 ] && break
  sleep 0.02
done
t_indexed=$(now)
[ "$(lag_entries)" = 0 ] || die "the index did not catch up within 120 s of the last acknowledgement"
cpu1=$(cpu_secs "$SERVER_PID")
kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
SEND_SECS=$(calc '%.3f' "$t_sent - $t0")
INDEXED_SECS=$(calc '%.3f' "$t_indexed - $t0")
INDEX_RATE=$(calc '%.0f' "$N / ($t_indexed - $t0)")
DRAIN_SECS=$(calc '%.2f' "$t_indexed - $t_sent")
# Samples taken while the send ran; lag in seconds = lag entries / acknowledged rate (how long
# the ledger took to gain that many entries).
awk -v end="$SEND_SECS" '$1 <= end && $2 != "" { print $2 }' "$RUN/lag.txt" > "$RUN/lag-entries.txt"
LAG_SAMPLES=$(wc -l < "$RUN/lag-entries.txt")
LAG_P50=$(pct "$RUN/lag-entries.txt" 0.5)
LAG_P99=$(pct "$RUN/lag-entries.txt" 0.99)
LAG_MAX=$(pct "$RUN/lag-entries.txt" 1)
LAG_P99_S=$(calc '%.2f' "$LAG_P99 / $BULK_RATE")
LAG_MAX_S=$(calc '%.2f' "$LAG_MAX / $BULK_RATE")
echo "   acknowledged: $BULK_RATE events/s ($SEND_SECS s); everything indexed after $INDEXED_SECS s: $INDEX_RATE events/s indexed, $DRAIN_SECS s after the last acknowledgement"
echo "   index lag during the send ($LAG_SAMPLES samples of /metrics every 0.1 s): p50 $LAG_P50, p99 $LAG_P99, max $LAG_MAX entries; p99 $LAG_P99_S s, max $LAG_MAX_S s at $BULK_RATE events/s"
echo "   server CPU $(calc '%.1f' "($cpu1 - $cpu0) * 1e6 / $N") us/event (ingest + index)"
echo

# ---------------------------------------------------------------- [2] queries over HTTP
echo "[2] mlaudit queries over HTTP (query_bench: one request at a time, keep-alive; latency of the whole query, all pages)"
"$QBENCH" --url "$SERVER_URL" --params "$PARAMS" --reps "$REPS" --q3-reps "$Q3_REPS" > "$RUN/qbench.out" \
  || { cat "$RUN/qbench.out" >&2; die "query_bench failed"; }
grep -v '^RESULT' "$RUN/qbench.out" | sed 's/^/   /'
res() { sed -n "s/^RESULT.* $1=\([^ ]*\).*/\1/p" "$RUN/qbench.out"; }
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || die "the server exited with status $? (see $RUN/server.log)"
SERVER_PID=""
# The index after a clean close: SQLite checkpointed the WAL into the file.
INDEX_BYTES=0
for f in "$DATA/index.sqlite" "$DATA/index.sqlite-wal"; do
  [ -f "$f" ] && INDEX_BYTES=$((INDEX_BYTES + $(stat -c %s "$f")))
done
INDEX_BPE=$(calc '%.0f' "$INDEX_BYTES / $N")
DATA_BPE=$(calc '%.0f' "$(du -s -B1 "$DATA" | cut -f1) / $N")
LEDGER_BPE=$(calc '%.0f' "$(du -s -B1 "$DATA/ledger" | cut -f1) / $N")
echo "   on disk: index $INDEX_BPE bytes/event ($(calc '%.1f' "$INDEX_BYTES / 1048576") MiB), ledger $LEDGER_BPE, whole data dir $DATA_BPE bytes/event"
echo "   index by table and SQLite index (dbstat), bytes/event:"
sqlite3 "$DATA/index.sqlite" "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC" \
  | awk -F'|' -v n="$N" '{ printf "     %-28s %7.1f\n", $1, $2 / n }'
echo

# ---------------------------------------------------------------- [3] PostgreSQL
start_postgres "$RUN"
psql_() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAtX "$@"; }
echo "[3] PostgreSQL $PGVERSION: the table of bench/ingest.sh (4 indexes) + GIN (jsonb_path_ops) on body, COPY of the same $N events"
psql_ <<'SQL'
CREATE TABLE audit_events (
  event_id      text UNIQUE,
  time          timestamptz,
  action        text,
  actor         text,
  resource_type text,
  resource_id   text,
  body          jsonb
);
CREATE INDEX ON audit_events (actor, time);
CREATE INDEX ON audit_events (resource_type, resource_id, time);
CREATE INDEX ON audit_events (action, time);
CREATE INDEX ON audit_events (time);
CREATE TABLE q1p (i serial PRIMARY KEY, actor text, t_from timestamptz, t_to timestamptz);
CREATE TABLE q2p (i serial PRIMARY KEY, ds text);
CREATE TABLE q4p (i serial PRIMARY KEY, t_from timestamptz, t_to timestamptz);
CREATE TABLE q5p (i serial PRIMARY KEY, ds text);
SQL
t0=$(now)
psql_ -c "\\copy audit_events (event_id, time, action, actor, resource_type, resource_id, body) FROM '$CSV_FILE' WITH (FORMAT csv)"
t1=$(now)
psql_ -c "CREATE INDEX audit_events_body ON audit_events USING gin (body jsonb_path_ops)"
t2=$(now)
psql_ -c "VACUUM ANALYZE audit_events"
psql_ -c "\\copy q1p (actor, t_from, t_to) FROM '$PARAMS/q1.tsv'" -c "\\copy q2p (ds) FROM '$PARAMS/q2.tsv'" \
  -c "\\copy q4p (t_from, t_to) FROM '$PARAMS/q4.tsv'" -c "\\copy q5p (ds) FROM '$PARAMS/q5.tsv'" -c "ANALYZE"
PG_BYTES=$(psql_ -c "SELECT pg_total_relation_size('audit_events')")
PG_GIN_BYTES=$(psql_ -c "SELECT pg_relation_size('audit_events_body')")
PG_BPE=$(calc '%.0f' "$PG_BYTES / $N")
echo "   COPY $(calc '%.1f' "$t1 - $t0") s, GIN index $(calc '%.1f' "$t2 - $t1") s; table + indexes + TOAST $PG_BPE bytes/event (GIN alone $(calc '%.0f' "$PG_GIN_BYTES / $N"))"
# The queries. Parameters come from the q*p tables (row :i), as scalar subqueries, so each
# transaction is one statement; looking up one row by primary key costs microseconds.
cat > "$RUN/pg-q1.sql" <<SQL
\\set i random(1, $(wc -l < "$PARAMS/q1.tsv"))
SELECT body FROM audit_events WHERE actor = (SELECT actor FROM q1p WHERE i = :i) AND time >= (SELECT t_from FROM q1p WHERE i = :i) AND time < (SELECT t_to FROM q1p WHERE i = :i) ORDER BY time DESC LIMIT 100;
SQL
cat > "$RUN/pg-q2.sql" <<SQL
\\set i random(1, $(wc -l < "$PARAMS/q2.tsv"))
SELECT body FROM audit_events WHERE resource_type = 'dataset' AND resource_id = (SELECT ds FROM q2p WHERE i = :i) ORDER BY time;
SQL
cat > "$RUN/pg-q3.sql" <<SQL
SELECT date_trunc('day', time AT TIME ZONE 'UTC') AS day, action, count(*) FROM audit_events GROUP BY 1, 2;
SQL
cat > "$RUN/pg-q4.sql" <<SQL
SELECT body FROM audit_events WHERE time >= (SELECT t_from FROM q4p WHERE i = 1) AND time < (SELECT t_to FROM q4p WHERE i = 1) AND body->>'outcome' = 'denied' ORDER BY time DESC;
SQL
cat > "$RUN/pg-q5.sql" <<SQL
\\set i random(1, $(wc -l < "$PARAMS/q5.tsv"))
SELECT body FROM audit_events WHERE body @> jsonb_build_object('related', jsonb_build_array(jsonb_build_object('type', 'dataset', 'id', (SELECT ds FROM q5p WHERE i = :i)))) AND action LIKE 'model.%' UNION ALL SELECT body FROM audit_events WHERE resource_type = 'dataset' AND resource_id = (SELECT ds FROM q5p WHERE i = :i) AND action = 'dataset.use';
SQL
echo "   pgbench -n -c 1 -t REPS -f q.sql -l (simple protocol; latency per transaction from the log, in the database, no HTTP):"
pg_run() {
  local q=$1 reps=$2
  (cd "$RUN" && as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -c 1 -t "$reps" \
     -f "pg-$q.sql" -l --log-prefix="txlog-$q" --random-seed=4 postgres > "pgbench-$q.out" 2>&1) \
     || { cat "$RUN/pgbench-$q.out" >&2; die "pgbench $q failed"; }
  cat "$RUN"/txlog-"$q".* | awk '$3 ~ /^[0-9]+$/ { print $3 / 1000 }' > "$RUN/lat-$q.txt"
  local p50 p99 max
  p50=$(pct "$RUN/lat-$q.txt" 0.5); p99=$(pct "$RUN/lat-$q.txt" 0.99); max=$(pct "$RUN/lat-$q.txt" 1)
  echo "   ${q^^}: p50 $(calc '%.3f' "$p50") ms, p99 $(calc '%.3f' "$p99") ms, max $(calc '%.3f' "$max") ms over $reps runs" >&2
  printf '%s %s\n' "$(calc '%.3f' "$p50")" "$(calc '%.3f' "$p99")"
}
for q in q1 q2 q3 q4 q5; do
  # One untimed warm-up pass per query.
  as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -c 1 -t 20 -f "$RUN/pg-$q.sql" postgres >/dev/null 2>&1 || true
done
PG_RES=()
for q in q1 q2 q3 q4 q5; do
  reps=$REPS
  [ "$q" = q3 ] && reps=$Q3_REPS
  PG_RES+=("$(pg_run "$q" "$reps" 2>> "$RUN/pg-lines.txt")")
done
sed 's/^/ /' "$RUN/pg-lines.txt"
# Result sizes, so that both sides are seen to answer the same questions.
echo "   rows for parameter row 1: Q1 $(psql_ -c "SELECT count(*) FROM (SELECT 1 FROM audit_events e, q1p p WHERE p.i = 1 AND e.actor = p.actor AND e.time >= p.t_from AND e.time < p.t_to LIMIT 100) s"), Q2 $(psql_ -c "SELECT count(*) FROM audit_events e, q2p p WHERE p.i = 1 AND e.resource_type = 'dataset' AND e.resource_id = p.ds"), Q4 $(psql_ -c "SELECT count(*) FROM audit_events e, q4p p WHERE p.i = 1 AND e.time >= p.t_from AND e.time < p.t_to AND e.body->>'outcome' = 'denied'")"
echo

# ---------------------------------------------------------------- summary
pass() { [ "$1" = na ] && { echo "n/a"; return; }; awk "BEGIN { exit !($2) }" && echo "met" || echo "NOT met"; }
row() { printf '%-44s %-26s %-26s %s\n' "$1" "$2" "$3" "$4"; }
echo "=============================================================== summary (N=$N)"
row "" "mlaudit (HTTP) p50 / p99" "PostgreSQL (in DB) p50 / p99" "target (issue 4, p50 over HTTP)"
i=0
for q in q1 q2 q3 q4 q5; do
  read -r pg50 pg99 <<< "${PG_RES[$i]}"
  m50=$(res "${q}_p50"); m99=$(res "${q}_p99")
  case $q in
    q1) what="Q1 actor, 7-day window, newest 100"; tgt=2 ;;
    q2) what="Q2 full history of one dataset"; tgt=2 ;;
    q3) what="Q3 counts by action per day, everything"; tgt=10 ;;
    q4) what="Q4 denied events, last 24 h"; tgt=2 ;;
    q5) what="Q5 models trained on a dataset"; tgt=2 ;;
  esac
  row "$what" "$m50 / $m99 ms" "$pg50 / $pg99 ms" "<= $tgt ms: $(pass "$m50" "$m50 <= $tgt")"
  i=$((i + 1))
done
row "bulk ingest with indexing (acknowledged)" "$BULK_RATE ev/s" "" ""
row "indexed (N / time until lag 0)" "$INDEX_RATE ev/s" "" ">= 150,000 ev/s: $(pass "$INDEX_RATE" "$INDEX_RATE >= 150000")"
row "index lag p99 during the send" "$LAG_P99 entries, $LAG_P99_S s" "" "<= 2 s: $(pass "$LAG_P99_S" "$LAG_P99_S <= 2")"
row "index bytes/event" "$INDEX_BPE" "$PG_BPE (whole table)" "<= 250: $(pass "$INDEX_BPE" "$INDEX_BPE <= 250")"
echo "$(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: N=$N REPS=$REPS Q3_REPS=$Q3_REPS bench/query.sh"
