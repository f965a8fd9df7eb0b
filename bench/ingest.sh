#!/usr/bin/env bash
# Ingest benchmark: mlaudit serve against PostgreSQL on the same machine, same events, same run.
# See bench/README.md, section "Ingest". Usage:
#
#   bench/ingest.sh [--quick] [--events N] [--single-events K] [--overload-secs S] [--perf] [--keep]
#
# Phases (each prints its figures; a summary with the targets of issues 3 and 12 comes last):
#   [1] bulk: `mlaudit send --batch 1000 --concurrency 4` of N events into a fresh server
#       (pseudonymization on, the default); events/s acknowledged (durable) and searchable
#       (send start until index lag 0), index lag p50/p99 during the send (/metrics every
#       0.1 s), server CPU per event, bytes on disk per event for each file of the data dir.
#   [2] PostgreSQL COPY of the same N events into a typical audit table; events/s; ratio.
#   [3] one event per request, 32 clients (examples/load.rs) against a fresh server, K events,
#       vs pgbench with 32 clients doing single-row autocommit INSERTs; ratio; server RSS.
#   [4] sustained overload: 256 one-event clients plus rounds of `mlaudit send --concurrency 16`
#       for S seconds; server RSS sampled every 0.5 s (bounded or growing?), 503s counted.
# Everything runs on the real disk under bench/.cache/ (never a tmpfs), with fsync on.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$REPO/bench/.cache"
MLAUDIT_BIN="$REPO/target/release/mlaudit"
SEED=1
ARGS="$*"

QUICK=0
EVENTS=""
SINGLE_EVENTS=""
OVERLOAD_SECS=""
PERF=0
KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --events) EVENTS="$2"; shift ;;
    --single-events) SINGLE_EVENTS="$2"; shift ;;
    --overload-secs) OVERLOAD_SECS="$2"; shift ;;
    --perf) PERF=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "ingest.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  EVENTS=${EVENTS:-100000}; SINGLE_EVENTS=${SINGLE_EVENTS:-20000}; OVERLOAD_SECS=${OVERLOAD_SECS:-8}
else
  EVENTS=${EVENTS:-1000000}; SINGLE_EVENTS=${SINGLE_EVENTS:-100000}; OVERLOAD_SECS=${OVERLOAD_SECS:-20}
fi
SINGLE_CLIENTS=32
OVERLOAD_CLIENTS=256
OVERLOAD_SEND_EVENTS=$(( EVENTS < 200000 ? EVENTS : 200000 ))
PG_CLIENTS=32

# Settings from the environment must not change what is measured.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^MLAUDIT_' || true)

BENCH=ingest.sh
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# timed NAME CMD...: runs CMD with stdout in NAME.out, stderr in NAME.err, and its CPU time
# (user + system, children included) in NAME.cpu, in seconds.
timed() {
  local name=$1; shift
  local TIMEFORMAT='%U %S' rc=0
  { time "$@" > "$name.out" 2> "$name.err"; } 2> "$name.time" || rc=$?
  awk '{ print $1 + $2 }' "$name.time" > "$name.cpu"
  return "$rc"
}

# ---------------------------------------------------------------- cleanup
SERVER_PID=""
SAMPLER_PID=""
LAG_SAMPLER_PID=""
PERF_PID=""
PG_STARTED=0
PGDIR="$CACHE/pg"
RUN=""
cleanup() {
  local rc=$?
  set +e
  [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null && wait "$SAMPLER_PID" 2>/dev/null
  [ -n "$LAG_SAMPLER_PID" ] && kill "$LAG_SAMPLER_PID" 2>/dev/null && wait "$LAG_SAMPLER_PID" 2>/dev/null
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
RUN="$CACHE/run-$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN"
FSTYPE=$(stat -f -c %T "$RUN")
case "$FSTYPE" in
  tmpfs|ramfs) die "$RUN is on $FSTYPE: fdatasync is free there; run from a checkout on a real disk" ;;
esac

# ---------------------------------------------------------------- build
log "== building (release)"
(cd "$REPO" && cargo build --release -p mlaudit --bins && cargo build --release -p server --example load) >&2
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
MLAUDIT="$TARGET_DIR/release/mlaudit"
LOAD="$TARGET_DIR/release/examples/load"
[ -x "$MLAUDIT" ] && [ -x "$LOAD" ] || die "release binaries not found in $TARGET_DIR/release"

# ---------------------------------------------------------------- events
EVENTS_FILE="$CACHE/events-$EVENTS-seed$SEED.ndjson"
if [ ! -s "$EVENTS_FILE" ]; then
  log "== generating $EVENTS events"
  "$MLAUDIT_BIN" demo events "$EVENTS" --seed "$SEED" > "$EVENTS_FILE.tmp"
  mv "$EVENTS_FILE.tmp" "$EVENTS_FILE"
fi
EVENTS_BYTES=$(stat -c %s "$EVENTS_FILE")

# ---------------------------------------------------------------- mlaudit server
# start_server DIR: starts `mlaudit serve` on a free loopback port; sets SERVER_PID, SERVER_URL.
start_server() {
  local dir=$1
  "$MLAUDIT" serve --data-dir "$dir" --listen 127.0.0.1:0 2> "$dir.log" &
  SERVER_PID=$!
  local i
  for i in $(seq 1 300); do
    SERVER_URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$dir.log" | head -1)
    if [ -n "$SERVER_URL" ]; then
      # Every request needs a token: the admin token the server wrote on first start
      # (admin may ingest), read by `mlaudit send` and examples/load.rs.
      export MLAUDIT_TOKEN; MLAUDIT_TOKEN=$(cat "$dir/admin.token")
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir.log" >&2; die "the server exited"; }
    sleep 0.1
  done
  die "the server did not start within 30 s (see $dir.log)"
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || die "the server exited with status $? (see the log in $RUN)"
  SERVER_PID=""
}
# start_sampler PID FILE: appends "seconds rss_kb" every 0.5 s while PID lives.
start_sampler() {
  local pid=$1 out=$2
  : > "$out"
  ( t0=$(now); while kill -0 "$pid" 2>/dev/null; do
      echo "$(calc '%.1f' "$(now) - $t0") $(rss_kb "$pid")" >> "$out"; sleep 0.5
    done ) &
  SAMPLER_PID=$!
}
stop_sampler() { kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""; }
rss_max_mb() { awk '{ if ($2 > m) m = $2 } END { printf "%.0f", m / 1024 }' "$1"; }
# With --perf, profile the server during a phase and print where its CPU time goes.
start_perf() {
  [ "$PERF" = 1 ] || return 0
  perf record -F 499 -g -p "$SERVER_PID" -o "$RUN/perf-$1.data" >/dev/null 2>&1 &
  PERF_PID=$!
}
stop_perf() {
  [ "$PERF" = 1 ] && [ -n "$PERF_PID" ] || return 0
  kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=""
  echo "   perf, server CPU by thread:"
  perf report -i "$RUN/perf-$1.data" --no-children -g none --sort comm --stdio 2>/dev/null \
    | grep '%' | grep -v '^#' | head -8 | sed 's/^ */     /' || true
  echo "   perf, server, top symbols (self time):"
  perf report -i "$RUN/perf-$1.data" --no-children -g none --sort comm,dso,sym --stdio 2>/dev/null \
    | grep '%' | grep -v '^#' | head -25 | sed 's/^ */     /' || true
}

echo "mlaudit ingest benchmark: $(date -u +%FT%TZ), $(nproc) cores, $(uname -r), $FSTYPE at $RUN"
echo "events: $EVENTS (mlaudit demo events --seed $SEED, $(calc '%.0f' "$EVENTS_BYTES / $EVENTS") bytes/event NDJSON), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# ---------------------------------------------------------------- [1] bulk
echo "[1] mlaudit bulk: send --batch 1000 --concurrency 4, fresh data dir"
start_server "$RUN/bulk"
start_sampler "$SERVER_PID" "$RUN/rss-bulk.txt"
start_perf bulk
t0=$(now)
( while :; do echo "$(calc '%.2f' "$(now) - $t0") $(lag_entries)"; sleep 0.1; done ) > "$RUN/lag-bulk.txt" 2>/dev/null &
LAG_SAMPLER_PID=$!
cpu0=$(cpu_secs "$SERVER_PID")
timed "$RUN/send-bulk" "$MLAUDIT" send --url "$SERVER_URL" --batch 1000 --concurrency 4 --quiet "$EVENTS_FILE" \
  || { cat "$RUN/send-bulk.err" >&2; die "mlaudit send failed"; }
t1=$(now); cpu1=$(cpu_secs "$SERVER_PID")
# Searchable: until the index holds everything (the server keeps indexing after the send).
for _ in $(seq 1 6000); do
  [ "$(lag_entries)" = 0 ] && break
  sleep 0.02
done
t_indexed=$(now); cpu_indexed=$(cpu_secs "$SERVER_PID")
[ "$(lag_entries)" = 0 ] || die "the index did not catch up within 120 s of the last acknowledgement"
kill "$LAG_SAMPLER_PID" 2>/dev/null || true; wait "$LAG_SAMPLER_PID" 2>/dev/null || true; LAG_SAMPLER_PID=""
stop_perf bulk
stop_sampler
sed 's/^/   /' "$RUN/send-bulk.err"
BULK_RATE=$(sed -n 's/.*(\([0-9]*\) events\/s).*/\1/p' "$RUN/send-bulk.err")
BULK_SENT=$(sed -n 's/^sent \([0-9]*\) events.*/\1/p' "$RUN/send-bulk.err")
[ "$BULK_SENT" = "$EVENTS" ] || die "sent $BULK_SENT events, expected $EVENTS"
SEARCHABLE_RATE=$(calc '%.0f' "$EVENTS / ($t_indexed - $t0)")
SEND_SECS=$(calc '%.3f' "$t1 - $t0")
awk -v end="$SEND_SECS" '$1 <= end && $2 != "" { print $2 }' "$RUN/lag-bulk.txt" > "$RUN/lag-bulk-entries.txt"
LAG_P50=$(pct "$RUN/lag-bulk-entries.txt" 0.5)
LAG_P99=$(pct "$RUN/lag-bulk-entries.txt" 0.99)
# Lag in seconds: lag entries / acknowledged rate (how long the ledger took to gain them).
LAG_P50_S=$(calc '%.2f' "$LAG_P50 / $BULK_RATE")
LAG_P99_S=$(calc '%.2f' "$LAG_P99 / $BULK_RATE")
BULK_CPU_US=$(calc '%.1f' "($cpu1 - $cpu0) * 1e6 / $EVENTS")
SEARCHABLE_CPU_US=$(calc '%.1f' "($cpu_indexed - $cpu0) * 1e6 / $EVENTS")
BULK_CLIENT_CPU_US=$(calc '%.1f' "$(cat "$RUN/send-bulk.cpu") * 1e6 / $EVENTS")
BULK_RSS_MB=$(rss_max_mb "$RUN/rss-bulk.txt")
stop_server   # final checkpoint written
LEDGER_BYTES=$(du -s -B1 "$RUN/bulk/ledger" | cut -f1)
DATA_BYTES=$(du -s -B1 "$RUN/bulk" | cut -f1)
BULK_BYTES_PER_EVENT=$(calc '%.0f' "$LEDGER_BYTES / $EVENTS")
DATA_BYTES_PER_EVENT=$(calc '%.0f' "$DATA_BYTES / $EVENTS")
# Bytes per event of each top-level file or directory of the data dir (SQLite -wal/-shm
# files counted with their database).
PER_FILE=$(cd "$RUN/bulk" && for f in *; do
    case "$f" in *-wal|*-shm) continue ;; esac
    b=$(du -s -B1 "$f" "$f-wal" "$f-shm" 2>/dev/null | awk '{ s += $1 } END { print s }')
    printf '%s %s\n' "$b" "$f"
  done | sort -rn | awk -v n="$EVENTS" '$1 / n >= 0.5 { printf "%s%s %.0f", sep, $2, $1 / n; sep = ", " }')
echo "   acknowledged $BULK_RATE events/s ($SEND_SECS s); searchable (index lag 0) after $(calc '%.2f' "$t_indexed - $t0") s: $SEARCHABLE_RATE events/s"
echo "   index lag during the send ($(wc -l < "$RUN/lag-bulk-entries.txt") samples): p50 $LAG_P50 entries ($LAG_P50_S s), p99 $LAG_P99 entries ($LAG_P99_S s)"
echo "   wall $(calc '%.2f' "$t1 - $t0") s incl. process start; CPU per event: server $BULK_CPU_US us until acknowledged, $SEARCHABLE_CPU_US us until searchable; client (send) $BULK_CLIENT_CPU_US us; server RSS max $BULK_RSS_MB MB"
echo "   on disk: ledger $BULK_BYTES_PER_EVENT bytes/event ($(calc '%.1f' "$LEDGER_BYTES / 1048576") MiB), whole data dir $DATA_BYTES_PER_EVENT bytes/event: $PER_FILE"
echo

# ---------------------------------------------------------------- PostgreSQL
start_postgres
psql_() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAtX "$@"; }
# CPU seconds of the whole PostgreSQL server: the postmaster, its live children, and the
# children it has reaped (backends of finished connections).
PG_PM_PID=$(head -1 "$PGDIR/data/postmaster.pid")
pg_cpu_secs() {
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pm="$PG_PM_PID" -v t="$(getconf CLK_TCK)" '
    $1 == pm { s += $14 + $15 + $16 + $17 } $4 == pm { s += $14 + $15 } END { print s / t }'
}
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
SQL

# ---------------------------------------------------------------- [2] COPY
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
        # Empty unquoted CSV fields are NULL.
        w.writerow([e.get("id", ""), e.get("time", ""), e.get("action", ""), actor.get("id", ""),
                    res.get("type", ""), res.get("id", ""), line])
PY
  mv "$CSV_FILE.tmp" "$CSV_FILE"
fi
echo "[2] PostgreSQL $PGVERSION COPY FROM STDIN (CSV) of the same $EVENTS events, 1 unique + 4 indexes, fsync=on, synchronous_commit=on"
psql_ -c "CHECKPOINT"
pcpu0=$(pg_cpu_secs); t0=$(now)
timed "$RUN/copy" psql_ -c "\\copy audit_events (event_id, time, action, actor, resource_type, resource_id, body) FROM '$CSV_FILE' WITH (FORMAT csv)" \
  || { cat "$RUN/copy.err" >&2; die "COPY failed"; }
t1=$(now); pcpu1=$(pg_cpu_secs)
PG_COPY_CPU_US=$(calc '%.1f' "($pcpu1 - $pcpu0) * 1e6 / $EVENTS")
PG_COPY_CLIENT_CPU_US=$(calc '%.1f' "$(cat "$RUN/copy.cpu") * 1e6 / $EVENTS")
PG_ROWS=$(psql_ -c "SELECT count(*) FROM audit_events")
[ "$PG_ROWS" = "$EVENTS" ] || die "PostgreSQL has $PG_ROWS rows, expected $EVENTS"
PG_COPY_SECS=$(calc '%.2f' "$t1 - $t0")
PG_COPY_RATE=$(calc '%.0f' "$EVENTS / ($t1 - $t0)")
PG_BYTES=$(psql_ -c "SELECT pg_total_relation_size('audit_events')")
PG_BYTES_PER_EVENT=$(calc '%.0f' "$PG_BYTES / $EVENTS")
BULK_RATIO=$(calc '%.2f' "$BULK_RATE / $PG_COPY_RATE")
echo "   $EVENTS rows in $PG_COPY_SECS s ($PG_COPY_RATE events/s); CPU per event: server $PG_COPY_CPU_US us, client (psql) $PG_COPY_CLIENT_CPU_US us"
echo "   on disk: table + indexes + TOAST $PG_BYTES_PER_EVENT bytes/event (WAL not counted)"
echo "   ratio mlaudit / PostgreSQL COPY: ${BULK_RATIO}x"
echo

# ---------------------------------------------------------------- [3] one event per request
echo "[3] one event per request, $SINGLE_CLIENTS clients, $SINGLE_EVENTS events"
start_server "$RUN/single"
sleep 0.5
RSS_IDLE_MB=$(calc '%.0f' "$(rss_kb "$SERVER_PID") / 1024")
start_sampler "$SERVER_PID" "$RUN/rss-single.txt"
start_perf single
cpu0=$(cpu_secs "$SERVER_PID")
timed "$RUN/load-single" "$LOAD" --url "$SERVER_URL" --file "$EVENTS_FILE" --clients "$SINGLE_CLIENTS" --events "$SINGLE_EVENTS" \
  || { cat "$RUN/load-single.err" >&2; die "the load generator failed"; }
cpu1=$(cpu_secs "$SERVER_PID")
stop_perf single
stop_sampler
grep -v '^RESULT' "$RUN/load-single.out" | sed 's/^/   mlaudit: /'
result() { sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$1"; }
SINGLE_RATE=$(result "$RUN/load-single.out" rate)
SINGLE_P50=$(result "$RUN/load-single.out" p50_ms)
SINGLE_P99=$(result "$RUN/load-single.out" p99_ms)
SINGLE_CPU_US=$(calc '%.1f' "($cpu1 - $cpu0) * 1e6 / $SINGLE_EVENTS")
SINGLE_CLIENT_CPU_US=$(calc '%.1f' "$(cat "$RUN/load-single.cpu") * 1e6 / $SINGLE_EVENTS")
SINGLE_RSS_MB=$(rss_max_mb "$RUN/rss-single.txt")
echo "   mlaudit: CPU per event: server $SINGLE_CPU_US us, client (load) $SINGLE_CLIENT_CPU_US us; server RSS idle $RSS_IDLE_MB MB, max during the run $SINGLE_RSS_MB MB"

# PostgreSQL: the same shape of event as one row per autocommit transaction, fresh table.
psql_ -c "TRUNCATE audit_events" -c "CHECKPOINT"
PG_TX_PER_CLIENT=$(( (SINGLE_EVENTS + PG_CLIENTS - 1) / PG_CLIENTS ))
# A dataset.read event of the generated mix as the body; colons are written \072 so that
# pgbench does not take them for variables.
BODY_SQL=$(python3 - "$EVENTS_FILE" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        if json.loads(line)["action"] == "dataset.read":
            print("E'" + line.strip().replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\072") + "'")
            break
PY
)
cat > "$RUN/insert.sql" <<SQL
\\set u random(0, 999)
\\set d random(0, 4999)
INSERT INTO audit_events (event_id, time, action, actor, resource_type, resource_id, body) VALUES (gen_random_uuid()::text, now(), 'dataset.read', 'user' || :u || '@example.com', 'dataset', 'ds-' || :d, $BODY_SQL::jsonb);
SQL
pcpu0=$(pg_cpu_secs)
(cd "$RUN" && timed "$RUN/pgbench" "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -n -M prepared \
   -c "$PG_CLIENTS" -j 2 -t "$PG_TX_PER_CLIENT" -f insert.sql -l --log-prefix=txlog postgres) \
   || { cat "$RUN/pgbench.out" "$RUN/pgbench.err" >&2; die "pgbench failed"; }
sleep 0.5   # let the backends exit, so that the postmaster has their CPU time
pcpu1=$(pg_cpu_secs)
PG_SINGLE_RATE=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$RUN/pgbench.out" | head -1)
PG_SINGLE_RATE=$(calc '%.0f' "$PG_SINGLE_RATE")
PG_SINGLE_TX=$(( PG_TX_PER_CLIENT * PG_CLIENTS ))
PG_SINGLE_CPU_US=$(calc '%.1f' "($pcpu1 - $pcpu0) * 1e6 / $PG_SINGLE_TX")
PG_SINGLE_CLIENT_CPU_US=$(calc '%.1f' "$(cat "$RUN/pgbench.cpu") * 1e6 / $PG_SINGLE_TX")
# Per-transaction log: the third field is the latency in microseconds.
read -r PG_P50 PG_P99 < <(cat "$RUN"/txlog.* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n \
  | awk '{ a[NR] = $1 } END { printf "%.2f %.2f\n", a[int((NR - 1) * 0.5 + 1.5)] / 1000, a[int((NR - 1) * 0.99 + 1.5)] / 1000 }')
SINGLE_RATIO=$(calc '%.2f' "$SINGLE_RATE / $PG_SINGLE_RATE")
echo "   PostgreSQL: pgbench -M prepared -c $PG_CLIENTS -j 2, $PG_SINGLE_TX single-row autocommit INSERTs: $PG_SINGLE_RATE events/s; latency p50 $PG_P50 ms, p99 $PG_P99 ms"
echo "   PostgreSQL: CPU per event: server $PG_SINGLE_CPU_US us, client (pgbench) $PG_SINGLE_CLIENT_CPU_US us"
echo "   ratio mlaudit / PostgreSQL single-row: ${SINGLE_RATIO}x"
echo

# ---------------------------------------------------------------- [4] overload
echo "[4] sustained overload, same server, $OVERLOAD_SECS s: $OVERLOAD_CLIENTS one-event clients + send --batch 1000 --concurrency 16 in a loop"
# overload_send DEADLINE: rounds of `mlaudit send` of the first 100,000 events, each round with
# its own id prefix (so every round appends), until the deadline.
overload_send() {
  local deadline=$1 r=0
  while awk "BEGIN { exit !($(now) < $deadline) }"; do
    head -n 100000 "$EVENTS_FILE" | sed "s/^{\"id\":\"/{\"id\":\"ov$r-/" \
      | "$MLAUDIT" send --url "$SERVER_URL" --batch 1000 --concurrency 16 --quiet - 2>> "$RUN/send-overload.txt" \
      || echo "send round $r failed with status $?" >> "$RUN/send-overload.txt"
    r=$((r + 1))
  done
}
RSS_BEFORE_MB=$(calc '%.0f' "$(rss_kb "$SERVER_PID") / 1024")
start_sampler "$SERVER_PID" "$RUN/rss-overload.txt"
: > "$RUN/send-overload.txt"
overload_send "$(calc '%.3f' "$(now) + $OVERLOAD_SECS")" &
SEND_PID=$!
"$LOAD" --url "$SERVER_URL" --file "$EVENTS_FILE" --clients "$OVERLOAD_CLIENTS" --duration "$OVERLOAD_SECS" \
  --id-prefix o- > "$RUN/load-overload.txt" || die "the load generator failed under overload"
wait "$SEND_PID"
sleep 1
RSS_AFTER_MB=$(calc '%.0f' "$(rss_kb "$SERVER_PID") / 1024")
stop_sampler
grep -v '^RESULT' "$RUN/load-overload.txt" | sed 's/^/   load: /'
sed 's/^/   send: /' "$RUN/send-overload.txt"
SEND_FAILURES=$(grep -c 'failed' "$RUN/send-overload.txt" || true)
OVERLOAD_SENT=$(awk '/^sent / { s += $2 } END { print s + 0 }' "$RUN/send-overload.txt")
OVERLOAD_BUSY=$(result "$RUN/load-overload.txt" busy)
OVERLOAD_RATE=$(result "$RUN/load-overload.txt" rate)
OVERLOAD_RSS_MB=$(rss_max_mb "$RUN/rss-overload.txt")
# Bounded, not growing: compare the peak of the first and the second half of the samples.
read -r RSS_H1 RSS_H2 < <(awk '{ r[NR] = $2 } END { h = int(NR / 2);
  for (i = 1; i <= NR; i++) { if (i <= h) { if (r[i] > a) a = r[i] } else { if (r[i] > b) b = r[i] } }
  printf "%.0f %.0f\n", a / 1024, b / 1024 }' "$RUN/rss-overload.txt")
echo "   server RSS: before $RSS_BEFORE_MB MB, max $OVERLOAD_RSS_MB MB (first half max $RSS_H1 MB, second half max $RSS_H2 MB, $(wc -l < "$RUN/rss-overload.txt") samples), 1 s after $RSS_AFTER_MB MB"
echo "   batches: $OVERLOAD_SENT events in $(grep -c '^sent ' "$RUN/send-overload.txt" || true) send rounds, $SEND_FAILURES failed rounds"
stop_server
echo

# ---------------------------------------------------------------- summary
MODE=$([ "$QUICK" = 1 ] && echo "--quick" || echo "full")
pass() { awk "BEGIN { exit !($1) }" && echo "met" || echo "NOT met"; }
row() { printf '%-42s %-22s %s\n' "$1" "$2" "$3"; }
echo "=============================================================== summary ($MODE)"
row "" "measured" "target (issue 3)"
row "bulk: send --batch 1000 x4, durable" "$BULK_RATE ev/s" ">= 150,000 ev/s (issue 12): $(pass "$BULK_RATE >= 150000")"
row "bulk: searchable (until index lag 0)" "$SEARCHABLE_RATE ev/s" ">= 100,000 ev/s and >= 3x COPY: $(pass "$SEARCHABLE_RATE >= 100000 && $SEARCHABLE_RATE >= 3 * $PG_COPY_RATE")"
row "index lag during the bulk send" "p50 $LAG_P50_S s, p99 $LAG_P99_S s" "(issue 12: p99 <= 1 s at 50,000 ev/s steady; this is a bulk send)"
row "PostgreSQL $PGVERSION COPY, same events" "$PG_COPY_RATE ev/s" "(issue: ~53,000 ev/s measured)"
row "ratio bulk / COPY" "${BULK_RATIO}x" ">= 4x: $(pass "$BULK_RATIO >= 4")"
row "one event/request, $SINGLE_CLIENTS clients" "$SINGLE_RATE ev/s" "p50 $SINGLE_P50 ms, p99 $SINGLE_P99 ms"
row "PostgreSQL single-row INSERT, $PG_CLIENTS clients" "$PG_SINGLE_RATE ev/s" "p50 $PG_P50 ms, p99 $PG_P99 ms (issue: ~10,000-15,000 ev/s)"
row "ratio one-event / single-row INSERT" "${SINGLE_RATIO}x" ">= 3x: $(pass "$SINGLE_RATIO >= 3")"
row "server RSS max, $SINGLE_CLIENTS clients / overload" "$SINGLE_RSS_MB / $OVERLOAD_RSS_MB MB" "bounded: halves $RSS_H1 -> $RSS_H2 MB; $OVERLOAD_BUSY x 503, $SEND_FAILURES failed send rounds"
row "bytes on disk/event: ledger, data dir" "$BULK_BYTES_PER_EVENT, $DATA_BYTES_PER_EVENT" "data dir <= 350 (issue 12): $(pass "$DATA_BYTES_PER_EVENT <= 350"); PostgreSQL $PG_BYTES_PER_EVENT"
row "server CPU/event: bulk, one-event" "$BULK_CPU_US, $SINGLE_CPU_US us" "PostgreSQL: $PG_COPY_CPU_US, $PG_SINGLE_CPU_US us"
row "client CPU/event: bulk, one-event" "$BULK_CLIENT_CPU_US, $SINGLE_CLIENT_CPU_US us" "PostgreSQL: $PG_COPY_CLIENT_CPU_US, $PG_SINGLE_CLIENT_CPU_US us"
echo "events $EVENTS, one-event $SINGLE_EVENTS, overload ${OVERLOAD_SECS} s ($OVERLOAD_RATE one-event ev/s + $OVERLOAD_SENT batched events acked); $(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/ingest.sh $ARGS"
