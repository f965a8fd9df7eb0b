//! The query index: a SQLite file (`<data-dir>/index.sqlite`) derived from the ledger.
//!
//! It holds the filter columns of every committed event (never the event itself: results
//! are read back from the ledger by `seq`), tags, `related` links for lineage, a contentless
//! FTS5 table over reason, parameters and resource name, and rollups of counts by hour and
//! day. It is fed from committed entries in seq order ([`Index::catch_up`]), whole entry
//! bundles per transaction, and records the next seq to index in `meta`, so after a crash it
//! continues from the ledger; [`Index::rebuild`] starts from nothing. Schema and the
//! reasoning behind each SQLite index: `docs/index.md`.
//!
//! Deliberately absent: no HTTP, no access decision (callers pass the project scope a
//! principal may see, and this crate applies it), no privacy keys (identifiers arrive
//! already pseudonymized; a cleartext filter value is turned into its pseudonym by the
//! caller), and nothing is ever written back to the ledger.
#![warn(missing_docs)]

mod extract;
pub mod fuzz;
mod history;
mod lineage;
mod prune;
mod query;
mod schema;
mod state;
mod stats;
mod summary;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

pub use extract::{extract, IndexedEvent, Related};
pub use history::{Appearance, HistoryHit, HistoryPage, HistoryQuery};
pub use lineage::{
    Lineage, LineageEdge, LineageFilter, LineageNode, NodeRef, Omitted, EDGE_SEQS_MAX,
    LINEAGE_DEPTH_DEFAULT, LINEAGE_DEPTH_MAX, LINEAGE_EDGES_MAX, LINEAGE_NODES_MAX,
    LINEAGE_TYPE_PRIORITY, NODE_VERSIONS_MAX,
};
pub use prune::RetentionRow;
pub use query::{Cursor, Filter, Hit, Order, Page, QueryError, LIMIT_DEFAULT, LIMIT_MAX};
pub use state::{DeploymentState, ServedModel, DEPLOYMENT_ACTIONS, EVALUATIONS_MAX};
pub use stats::{
    parse_interval, Calendar, Stats, StatsBucket, StatsBy, StatsSource, STATS_BUCKETS_MAX,
};
pub use summary::{rfc3339, Summary, SUMMARY_ACTORS_MAX};

/// SQLite read connections open at once, for queries. A query that finds them all busy
/// waits up to [`READER_WAIT`] for one, then fails with [`QueryError::Busy`] (HTTP 503 +
/// `Retry-After`): memory and file handles stay bounded however many requests arrive.
pub const READERS_MAX: usize = 8;

/// How long a query waits for a free read connection before it is refused as busy.
pub const READER_WAIT: Duration = Duration::from_secs(5);

/// Default longest time one query may run in SQLite (`Index::set_query_time_max`); past
/// it SQLite interrupts the statement and the query fails with [`QueryError::TimedOut`]
/// (HTTP 503 `query_timeout`), freeing the connection for others.
pub const QUERY_TIME_MAX_DEFAULT: Duration = Duration::from_secs(10);

/// SQLite virtual-machine steps between two checks of the query deadline (about a
/// millisecond of work or less).
const DEADLINE_CHECK_STEPS: i32 = 10_000;

/// The outcome stored as NULL in `events.outcome` (see `docs/index.md`).
pub(crate) const OUTCOME_SUCCESS: &str = "success";

/// One hour and one day, in milliseconds: the widths of rollup buckets.
pub const HOUR_MS: i64 = 3_600_000;
/// See [`HOUR_MS`].
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Entries indexed per transaction, at most (whole bundles: it may be exceeded by one
/// bundle). Rows, rollups and `next_seq` commit together whatever the size, so a crash loses
/// at most one transaction, which the next catch-up redoes from the ledger.
const TXN_ENTRIES_MAX: usize = 65_536;
/// Entries of a full entry bundle.
const TILE_ENTRIES: usize = tlog::TILE_WIDTH as usize;

/// Page cache of the write connection, in KiB (SQLite's default is 2 MiB): the indexes'
/// hot pages stay in memory instead of being read back from the file for every insert, and
/// a big transaction's dirty pages are not spilled to the WAL before it commits. The hot
/// set is about one leaf per actor, per resource and per related target (tens of MB for
/// the generator's mix); memory is taken only as pages are used.
const WRITER_CACHE_KIB: i64 = 131_072;

/// Most entries of the writer's string-id cache; past it the cache starts over (the ids
/// stay in `strings`, only the memory is bounded).
const STRING_CACHE_MAX: usize = 200_000;

/// The index over one SQLite file.
pub struct Index {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Readers>,
    /// Signalled when a read connection is returned.
    reader_free: Condvar,
    /// Longest time one query may run.
    query_time_max: Mutex<Duration>,
}

/// A read connection in use; back to the pool when dropped, also when a query panics.
struct Lease<'a> {
    index: &'a Index,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.index.readers.lock().unwrap().idle.push(c);
            self.index.reader_free.notify_one();
        }
    }
}

/// The read connections: idle ones, and how many are open in all (idle or in use).
struct Readers {
    idle: Vec<Connection>,
    open: usize,
}

/// The one write connection, and the ids of strings it has seen (`strings` table).
struct Writer {
    conn: Connection,
    /// A copy of some `strings` rows. Only ever holds ids of committed rows: it is cleared
    /// when a transaction fails (its new ids were rolled back) and when the tables are
    /// dropped.
    ids: HashMap<String, i64>,
}

use datadir::open_db;

impl Index {
    /// Opens (or creates) the index. It does not catch up: call [`Index::catch_up`]. An
    /// index written with another schema version is emptied, so the next catch-up rebuilds
    /// it from the ledger.
    pub fn open(path: &Path) -> anyhow::Result<Index> {
        let mut conn = open_db(path)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != schema::SCHEMA_VERSION {
            conn.execute_batch(schema::DROP)?;
        }
        let had_events = table_exists(&conn, "events")?;
        let had_actor_rollup = table_exists(&conn, "rollup_actor")?;
        create_schema(&conn)?;
        if had_events && !had_actor_rollup {
            // An index made before `rollup_actor` existed: fill it from its rows, so that
            // it counts the events indexed so far like the live path does (with the
            // strings, and NULL outcomes as success, as `rollup_actor` holds text).
            let tx = conn.transaction()?;
            tx.execute(
                &format!(
                    "INSERT INTO rollup_actor (bucket, actor, outcome, count)
                     SELECT time - ((time % {DAY_MS}) + {DAY_MS}) % {DAY_MS} AS b, {},
                            COALESCE({}, '{OUTCOME_SUCCESS}'), COUNT(*)
                     FROM events GROUP BY b, actor, outcome",
                    value_of("actor"),
                    value_of("outcome"),
                ),
                [],
            )?;
            tx.commit()?;
        }
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        Ok(Index {
            path: path.to_path_buf(),
            writer: Mutex::new(Writer {
                conn,
                ids: HashMap::new(),
            }),
            readers: Mutex::new(Readers {
                idle: Vec::new(),
                open: 0,
            }),
            reader_free: Condvar::new(),
            query_time_max: Mutex::new(QUERY_TIME_MAX_DEFAULT),
        })
    }

    /// The next seq to index: every entry below it is indexed.
    pub fn next_seq(&self) -> anyhow::Result<u64> {
        let w = self.writer.lock().unwrap();
        Ok(read_next_seq(&w.conn)?)
    }

    /// Indexes the entries of the ledger past [`Index::next_seq`], one entry bundle per
    /// transaction (rows, rollups and the high-water mark commit together). Returns the
    /// number of entries indexed. Stops at the ledger's size when called, so it only ever
    /// indexes durable entries.
    pub fn catch_up(&self, store: &ledger::Store) -> anyhow::Result<u64> {
        self.catch_up_with(store, |_, _| {})
    }

    /// [`Index::catch_up`], calling `progress(indexed_up_to, target)` after each
    /// transaction (for a progress bar and the lag gauge).
    pub fn catch_up_with(
        &self,
        store: &ledger::Store,
        mut progress: impl FnMut(u64, u64),
    ) -> anyhow::Result<u64> {
        let mut w = self.writer.lock().unwrap();
        let start = read_next_seq(&w.conn)?;
        let size = store.size();
        let mut rows = Vec::new();
        // Several bundles per transaction: the pages of the indexes that a transaction
        // dirties are shared by more rows, and commits (and WAL checkpoints) are fewer. The
        // first transaction is one bundle and each next one twice as many entries, up to
        // TXN_ENTRIES_MAX: a small catch-up commits at once, a large one in big steps.
        let mut txn_entries = 1;
        let mut flush = |w: &mut Writer, rows: &mut Vec<IndexedEvent>| -> anyhow::Result<()> {
            let Some(last) = rows.last() else {
                return Ok(());
            };
            let next = last.seq + 1;
            if let Err(e) = write_rows(w, rows, next) {
                w.ids.clear();
                return Err(e.into());
            }
            rows.clear();
            progress(next, size);
            Ok(())
        };
        let end = store.for_each_bundle(start, |first, entries| -> anyhow::Result<()> {
            for (i, e) in entries.iter().enumerate() {
                let s = first + i as u64;
                let row =
                    extract::extract_entry(e).with_context(|| format!("parsing entry {s}"))?;
                if row.seq != s {
                    anyhow::bail!("entry at position {s} says it has seq {}", row.seq);
                }
                rows.push(row);
            }
            if rows.len() >= txn_entries {
                flush(&mut w, &mut rows)?;
                txn_entries = (txn_entries * 2).clamp(TILE_ENTRIES, TXN_ENTRIES_MAX);
            }
            Ok(())
        })?;
        flush(&mut w, &mut rows)?;
        Ok(end - start)
    }

    /// Drops everything and indexes the whole ledger again (`mlaudit reindex`).
    pub fn rebuild(
        &self,
        store: &ledger::Store,
        progress: impl FnMut(u64, u64),
    ) -> anyhow::Result<u64> {
        {
            let mut w = self.writer.lock().unwrap();
            w.ids.clear();
            w.conn.execute_batch(schema::DROP)?;
            create_schema(&w.conn)?;
        }
        self.catch_up_with(store, progress)
    }

    /// Checks the index against the ledger before it is caught up: an index whose
    /// high-water mark is past the ledger's size holds entries the ledger does not (the
    /// ledger was restored from an older backup, the index was not), so it is rebuilt from
    /// the ledger. Returns the previous high-water mark when it rebuilt. Regression (issue
    /// 18.2): such an index answered searches with seqs the ledger cannot read (500).
    pub fn reconcile(&self, store: &ledger::Store) -> anyhow::Result<Option<u64>> {
        let next = self.next_seq()?;
        let size = store.size();
        if next <= size {
            return Ok(None);
        }
        tracing::warn!(
            file = %self.path.display(),
            index_next_seq = next,
            ledger_size = size,
            "the index is ahead of the ledger (was ledger/ restored from a backup?): \
             rebuilding it from the ledger"
        );
        let indexed = self.rebuild(store, |_, _| {})?;
        tracing::warn!(entries = indexed, "index rebuilt from the ledger");
        Ok(Some(next))
    }

    /// Every rollup row of bucket width `width` ([`HOUR_MS`] or [`DAY_MS`]), ordered by
    /// bucket. The stats API will aggregate these; they are exposed whole for it and for
    /// tests.
    pub fn rollup_rows(&self, width: i64) -> Result<Vec<RollupRow>, QueryError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT bucket, action, category, outcome, project, resource_type, count
                 FROM rollup WHERE width = ?1 ORDER BY bucket, action, outcome, project, resource_type",
            )?;
            let rows = stmt.query_map([width], |r| {
                Ok(RollupRow {
                    bucket: r.get(0)?,
                    action: r.get(1)?,
                    category: r.get(2)?,
                    outcome: r.get(3)?,
                    project: r.get(4)?,
                    resource_type: r.get(5)?,
                    count: r.get::<_, i64>(6)? as u64,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// For each event id, the seqs of the indexed events whose `id` has its hash
    /// ([`extract::id_hash`]): the candidates for that id, in seq order. A hash is 64 bits,
    /// so a candidate is almost always the event itself, but callers confirm it against
    /// the entry (the idempotency check does).
    pub fn seqs_by_id(&self, ids: &[&str]) -> Result<Vec<Vec<u64>>, QueryError> {
        self.with_reader_unlimited(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT seq FROM events WHERE id_hash = ?1 ORDER BY seq")?;
            ids.iter()
                .map(|id| {
                    let rows = stmt.query_map([extract::id_hash(id)], |r| r.get::<_, i64>(0))?;
                    rows.map(|s| s.map(|s| s as u64).map_err(QueryError::from))
                        .collect()
                })
                .collect()
        })
    }

    /// Sets the longest time one query may run (default [`QUERY_TIME_MAX_DEFAULT`]).
    pub fn set_query_time_max(&self, max: Duration) {
        *self.query_time_max.lock().unwrap() = max;
    }

    /// Runs `f` on a pooled read connection (one of at most [`READERS_MAX`]), interrupted
    /// by SQLite if it runs past the query time limit.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let max = *self.query_time_max.lock().unwrap();
        let lease = Lease {
            index: self,
            conn: Some(self.checkout()?),
        };
        let conn = lease.conn.as_ref().expect("set above");
        let deadline = Instant::now() + max;
        conn.progress_handler(
            DEADLINE_CHECK_STEPS,
            Some(move || Instant::now() >= deadline),
        );
        let result = f(conn).map_err(|e| match e {
            QueryError::Storage(_) if Instant::now() >= deadline => QueryError::TimedOut(format!(
                "the query ran longer than the limit of {} ms and was stopped: narrow it \
                 (a shorter time range, more filters) or raise query_timeout_ms",
                max.as_millis()
            )),
            other => other,
        });
        conn.progress_handler(0, None::<fn() -> bool>);
        result
    }

    /// Runs `f` on a pooled read connection without the query time limit: for the
    /// server's own point lookups (one index probe per id), which must not fail because
    /// an operator set a tight limit for users' searches.
    fn with_reader_unlimited<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let lease = Lease {
            index: self,
            conn: Some(self.checkout()?),
        };
        f(lease.conn.as_ref().expect("set above"))
    }

    /// An idle read connection, a new one while fewer than [`READERS_MAX`] are open, or
    /// the first one returned within [`READER_WAIT`].
    fn checkout(&self) -> Result<Connection, QueryError> {
        let until = Instant::now() + READER_WAIT;
        let mut pool = self.readers.lock().unwrap();
        loop {
            if let Some(c) = pool.idle.pop() {
                return Ok(c);
            }
            if pool.open < READERS_MAX {
                pool.open += 1;
                drop(pool);
                return open_db(&self.path).map_err(|e| {
                    self.readers.lock().unwrap().open -= 1;
                    self.reader_free.notify_one();
                    QueryError::Storage(format!("{e:#}"))
                });
            }
            let now = Instant::now();
            if now >= until {
                return Err(QueryError::Busy(format!(
                    "all {READERS_MAX} index read connections stayed busy for {} s",
                    READER_WAIT.as_secs()
                )));
            }
            pool = self.reader_free.wait_timeout(pool, until - now).unwrap().0;
        }
    }
}

/// Count of events in one rollup bucket with one combination of dimensions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RollupRow {
    /// Start of the bucket, in milliseconds since the Unix epoch (by event `time`).
    pub bucket: i64,
    /// `action`.
    pub action: String,
    /// Its category.
    pub category: String,
    /// `outcome`.
    pub outcome: String,
    /// `context.project`, or empty.
    pub project: String,
    /// `resource.type`, or empty.
    pub resource_type: String,
    /// Number of events.
    pub count: u64,
}

/// SQL for the id of the string that `expr` (a parameter or literal) names: NULL when no
/// event has it, and NULL equals nothing, so the condition it is in fails.
pub(crate) fn id_of(expr: &str) -> String {
    format!("(SELECT id FROM strings WHERE value = {expr})")
}

/// SQL for the string whose id is in `column` (NULL for NULL).
pub(crate) fn value_of(column: &str) -> String {
    format!("(SELECT value FROM strings WHERE id = {column})")
}

/// ` AND {column} IN (?first, …)` for a project scope (nothing for `None`), and its
/// parameters, numbered from `first`. An empty scope matches nothing (`IN ()` is false).
pub(crate) fn scope_sql(
    projects: Option<&[String]>,
    column: &str,
    first: usize,
) -> (String, Vec<rusqlite::types::Value>) {
    let Some(projects) = projects else {
        return (String::new(), Vec::new());
    };
    let marks: Vec<String> = (0..projects.len())
        .map(|i| format!("?{}", first + i))
        .collect();
    let values = projects
        .iter()
        .map(|p| rusqlite::types::Value::Text(p.clone()))
        .collect();
    // `events` holds string ids (docs/index.md): the scope is the ids of the projects'
    // names. A name no event has has no id, and matches nothing.
    (
        format!(
            " AND {column} IN (SELECT id FROM strings WHERE value IN ({}))",
            marks.join(", ")
        ),
        values,
    )
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |r| r.get(0),
    )
}

fn read_next_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let next: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE name = 'next_seq'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(next.unwrap_or(0) as u64)
}

/// Key of a rollup row: (bucket width, bucket start, action, category, outcome, project,
/// resource type).
type RollupKey<'a> = (i64, i64, &'a str, &'a str, &'a str, &'a str, &'a str);

/// The schema on a bare connection, for unit tests of the SQL builders.
#[cfg(test)]
pub(crate) fn create_schema_for_tests(conn: &Connection) {
    create_schema(conn).expect("the schema applies");
}

fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(schema::SCHEMA)?;
    conn.pragma_update(None, "user_version", schema::SCHEMA_VERSION)
}

fn write_rows(w: &mut Writer, rows: &[IndexedEvent], next_seq: u64) -> rusqlite::Result<()> {
    let Writer { conn, ids } = w;
    let tx = conn.transaction()?;
    insert_rows(&tx, ids, rows)?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('next_seq', ?1)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        [next_seq as i64],
    )?;
    tx.commit()
}

/// The id of `value` in `strings`, added if new.
fn string_id(
    tx: &Transaction<'_>,
    ids: &mut HashMap<String, i64>,
    value: &str,
) -> rusqlite::Result<i64> {
    if let Some(&id) = ids.get(value) {
        return Ok(id);
    }
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM strings WHERE value = ?1")?
        .query_row([value], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO strings (value) VALUES (?1)")?
                .execute([value])?;
            tx.last_insert_rowid()
        }
    };
    if ids.len() >= STRING_CACHE_MAX {
        ids.clear();
    }
    ids.insert(value.to_string(), id);
    Ok(id)
}

fn opt_id(
    tx: &Transaction<'_>,
    ids: &mut HashMap<String, i64>,
    value: Option<&str>,
) -> rusqlite::Result<Option<i64>> {
    value.map(|v| string_id(tx, ids, v)).transpose()
}

fn insert_rows(
    tx: &Transaction<'_>,
    ids: &mut HashMap<String, i64>,
    rows: &[IndexedEvent],
) -> rusqlite::Result<()> {
    let mut ev = tx.prepare_cached(
        "INSERT INTO events (seq, time, recorded_at, action, category, actor, outcome,
             resource_type, resource_id, resource_version, project, environment, id_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut tag = tx.prepare_cached("INSERT OR IGNORE INTO tags (tag, seq) VALUES (?1, ?2)")?;
    let mut rel = tx.prepare_cached(
        "INSERT INTO related (seq, type, id, version, relation) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut fts = tx.prepare_cached(
        "INSERT INTO fts (rowid, reason, parameters, name) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut rollup: HashMap<RollupKey<'_>, i64> = HashMap::new();
    let mut rollup_actor: HashMap<(i64, &str, &str), i64> = HashMap::new();
    for r in rows {
        let seq = r.seq as i64;
        // Success, the outcome of most events, is NULL: it costs no byte, and the partial
        // index `events_outcome_time` holds only the others.
        let outcome = match r.outcome.as_str() {
            OUTCOME_SUCCESS => None,
            o => Some(string_id(tx, ids, o)?),
        };
        ev.execute(params![
            seq,
            r.time,
            r.recorded_at,
            string_id(tx, ids, &r.action)?,
            string_id(tx, ids, r.category)?,
            string_id(tx, ids, &r.actor)?,
            outcome,
            opt_id(tx, ids, r.resource_type.as_deref())?,
            opt_id(tx, ids, r.resource_id.as_deref())?,
            opt_id(tx, ids, r.resource_version.as_deref())?,
            opt_id(tx, ids, r.project.as_deref())?,
            opt_id(tx, ids, r.environment.as_deref())?,
            r.id_hash,
        ])?;
        for t in &r.tags {
            tag.execute(params![string_id(tx, ids, t)?, seq])?;
        }
        for l in &r.related {
            rel.execute(params![
                seq,
                string_id(tx, ids, &l.r#type)?,
                string_id(tx, ids, &l.id)?,
                opt_id(tx, ids, l.version.as_deref())?,
                opt_id(tx, ids, l.relation.as_deref())?,
            ])?;
        }
        if r.reason.is_some() || r.parameters.is_some() || r.name.is_some() {
            fts.execute(params![seq, r.reason, r.parameters, r.name])?;
        }
        for width in [HOUR_MS, DAY_MS] {
            let key = (
                width,
                r.time.div_euclid(width) * width,
                r.action.as_str(),
                r.category,
                r.outcome.as_str(),
                r.project.as_deref().unwrap_or(""),
                r.resource_type.as_deref().unwrap_or(""),
            );
            *rollup.entry(key).or_default() += 1;
        }
        let day = r.time.div_euclid(DAY_MS) * DAY_MS;
        *rollup_actor
            .entry((day, r.actor.as_str(), r.outcome.as_str()))
            .or_default() += 1;
    }
    let mut up = tx.prepare_cached(
        "INSERT INTO rollup (width, bucket, action, category, outcome, project, resource_type, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((width, bucket, action, category, outcome, project, rtype), n) in rollup {
        up.execute(params![
            width, bucket, action, category, outcome, project, rtype, n
        ])?;
    }
    let mut up = tx.prepare_cached(
        "INSERT INTO rollup_actor (bucket, actor, outcome, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for ((bucket, actor, outcome), n) in rollup_actor {
        up.execute(params![bucket, actor, outcome, n])?;
    }
    Ok(())
}

#[cfg(test)]
mod limits_tests {
    use super::*;

    const RUNAWAY: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                           SELECT count(*) FROM c";

    /// Issue 19.5: queries had no time limit. A statement that would run forever is
    /// interrupted at the limit, the error says so, and the connection serves the next
    /// query.
    #[test]
    fn a_runaway_query_is_stopped_at_the_time_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::open(&tmp.path().join("index.sqlite")).unwrap();
        index.set_query_time_max(Duration::from_millis(100));
        let started = Instant::now();
        let r = index.with_reader(|c| Ok(c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))?));
        let took = started.elapsed();
        match r {
            Err(QueryError::TimedOut(m)) => assert!(m.contains("100 ms"), "{m}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(took < Duration::from_secs(5), "stopped after {took:?}");
        let one: i64 = index
            .with_reader(|c| Ok(c.query_row("SELECT 1", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(one, 1);
    }

    /// Issue 19.5: read connections were opened without bound. With every connection busy,
    /// more queries wait for one instead of opening more.
    #[test]
    fn read_connections_are_capped() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::open(&tmp.path().join("index.sqlite")).unwrap();
        index.set_query_time_max(Duration::from_millis(300));
        std::thread::scope(|s| {
            for _ in 0..READERS_MAX * 2 {
                s.spawn(|| {
                    let r = index.with_reader(|c| {
                        let open = index.readers.lock().unwrap().open;
                        assert!(open <= READERS_MAX, "{open} read connections open");
                        Ok(c.query_row(RUNAWAY, [], |r| r.get::<_, i64>(0))?)
                    });
                    assert!(matches!(r, Err(QueryError::TimedOut(_))), "{r:?}");
                });
            }
        });
        let pool = index.readers.lock().unwrap();
        assert_eq!(pool.open, READERS_MAX);
        assert_eq!(pool.idle.len(), READERS_MAX);
    }
}
