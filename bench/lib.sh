# Shared by bench/ingest.sh and bench/query.sh (sourced, not run). The caller sets BENCH
# (its name, for messages) and, before start_postgres, PGDIR.

log() { printf '%s\n' "$*" >&2; }
die() { log "$BENCH: $*"; exit 1; }
# Division and formatting with awk (bash has integers only).
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
now() { date +%s.%N; }
# pct FILE Q: the Q-quantile (0..1) of the numbers in FILE, one per line.
pct() { sort -g "$1" | awk -v q="$2" '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } i = int((NR - 1) * q + 0.5) + 1; print a[i] }'; }
# lag_entries: the server's mlaudit_index_lag_entries (needs SERVER_URL, MLAUDIT_TOKEN).
lag_entries() { curl -fsS -H "Authorization: Bearer $MLAUDIT_TOKEN" "$SERVER_URL/metrics" | awk '$1 == "mlaudit_index_lag_entries" { print $2 }'; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# CPU seconds (user + system) a process has used so far.
cpu_secs() {
  awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# start_postgres [DIR…]: a fresh PostgreSQL cluster in $PGDIR on a free loopback port, with
# fsync and synchronous commit on (installs the server with apt-get when run as root and it
# is missing). DIRs are made readable by the server's OS user. Sets PGBIN, PGPORT,
# PGVERSION, PG_STARTED=1 and as_pg (runs a command as that user).
start_postgres() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    PGBIN=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
  else
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  fi
  if [ -z "${PGBIN:-}" ] || [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pgbench" ]; then
    [ "$(id -u)" = 0 ] || die "PostgreSQL server binaries are missing: apt-get install postgresql"
    log "== installing PostgreSQL (apt-get)"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then PG_OS_USER=postgres; else PG_OS_USER=nobody; fi
    as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }
  else
    PG_OS_USER=$(id -un)
    as_pg() { "$@"; }
  fi
  if [ -f "$PGDIR/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGDIR"
  mkdir -p "$PGDIR"
  [ "$(id -u)" = 0 ] && chown "$PG_OS_USER" "$PGDIR" "$@"
  PGPORT=$(free_port)
  as_pg "$PGBIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w start \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -c unix_socket_directories=$PGDIR -c fsync=on -c synchronous_commit=on" >/dev/null
  PG_STARTED=1
  PGVERSION=$("$PGBIN/postgres" --version | awk '{ print $3 }')
}
