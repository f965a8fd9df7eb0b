//! Retention and legal hold (DESIGN section 7; `docs/privacy.md`, "Retention
//! and legal hold").
//!
//! Policies from the `[retention]` config section say how long entries are
//! kept, by category, action glob, resource tag and project; the longest
//! matching policy wins, and entries no policy matches follow
//! `default_keep_days` (absent: kept forever). Legal holds, created and
//! released through the API, override every policy. A run decides from the
//! index which entries expired (by event `time`), drops them from the index and
//! prunes their payloads in the ledger, whose leaf hashes stay.
//!
//! Crash safety of a run: for each chunk, the idempotency keys of its entries are
//! first written to `pruned_ids` and the seqs to the `pending` table of
//! `retention.sqlite` (synchronous=FULL), then dropped from
//! the index, then pruned in the ledger, then cleared from `pending`. A run
//! first finishes any chunk a crash left in `pending`, so an entry that left
//! the index is always pruned eventually.
//!
//! Deliberately absent: no HTTP and no scheduling (the server calls [`run`] on its own
//! schedule and records the outcome); how a payload is pruned is the ledger's business.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use event::{id_key, parse_entry, IdKey};
use index::{extract, Index, RetentionRow};

/// Longest keep period a policy may set (100 years).
pub const KEEP_DAYS_MAX: u32 = 36_500;
/// Policies in one configuration.
pub const POLICIES_MAX: usize = 256;
/// Rows read from the index per page while planning.
const PLAN_PAGE_ROWS: usize = 10_000;
/// Seq ranges listed in a run report and in the `audit.retention` event.
pub const REPORT_RANGES_MAX: usize = 500;
/// Active legal holds at once.
pub const HOLDS_MAX: usize = 10_000;
/// Longest hold reason, in bytes.
pub const HOLD_REASON_BYTES_MAX: usize = 1_000;
/// Actions never pruned: the record of what retention and holds did.
pub const NEVER_PRUNED: [&str; 2] = ["audit.retention", "audit.hold"];

const DAY_MS: i64 = 86_400_000;

/// One policy, as written in the config file (`[[retention.policy]]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Name, reported in run results (unique).
    pub name: String,
    /// Category the entry's action must have (`data_access`, `deployment`, …).
    pub category: Option<String>,
    /// Glob over actions (`*` matches any run of characters), e.g. `dataset.*`.
    pub action: Option<String>,
    /// A tag the entry's resource must carry.
    pub tag: Option<String>,
    /// The entry's `context.project`.
    pub project: Option<String>,
    /// Days an entry is kept after its event `time`.
    pub keep_days: u32,
}

/// The `[retention]` config section.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days kept for entries no policy matches; absent: kept forever.
    pub default_keep_days: Option<u32>,
    /// Seconds between scheduled runs; absent or 0: no schedule (run by hand).
    pub run_interval_s: Option<u64>,
    /// The policies.
    #[serde(default, rename = "policy")]
    pub policies: Vec<Policy>,
}

impl RetentionConfig {
    /// Checks limits, names and globs.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.policies.len() > POLICIES_MAX {
            bail!("retention: at most {POLICIES_MAX} policies");
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.policies {
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                bail!(
                    "retention: every policy needs a unique, non-empty name ({:?})",
                    p.name
                );
            }
            if p.keep_days > KEEP_DAYS_MAX {
                bail!(
                    "retention policy {:?}: keep_days must be at most {KEEP_DAYS_MAX}",
                    p.name
                );
            }
            if let Some(a) = &p.action {
                if a.is_empty()
                    || !a.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || b"_.*".contains(&c)
                    })
                {
                    bail!(
                        "retention policy {:?}: action {a:?} must be an action or a glob like dataset.* (a-z, 0-9, _, . and *)",
                        p.name
                    );
                }
            }
        }
        if self.default_keep_days.is_some_and(|d| d > KEEP_DAYS_MAX) {
            bail!("retention: default_keep_days must be at most {KEEP_DAYS_MAX}");
        }
        Ok(())
    }

    /// The keep period of an entry: the longest of the policies that match it
    /// (with the name of that policy), else the default (`"default"`), else
    /// `None`: kept forever.
    pub fn keep_days(&self, row: &RetentionRow) -> Option<(u32, &str)> {
        self.policies
            .iter()
            .filter(|p| p.matches(row))
            .max_by_key(|p| p.keep_days)
            .map(|p| (p.keep_days, p.name.as_str()))
            .or_else(|| self.default_keep_days.map(|d| (d, "default")))
    }

    /// The shortest keep period any entry can have (None: nothing ever expires).
    fn keep_days_min(&self) -> Option<u32> {
        self.policies
            .iter()
            .map(|p| p.keep_days)
            .chain(self.default_keep_days)
            .min()
    }
}

impl Policy {
    /// Whether every matcher the policy sets matches the entry.
    pub fn matches(&self, row: &RetentionRow) -> bool {
        self.category.as_ref().is_none_or(|c| *c == row.category)
            && self.action.as_ref().is_none_or(|a| glob(a, &row.action))
            && self.tag.as_ref().is_none_or(|t| row.tags.contains(t))
            && self
                .project
                .as_ref()
                .is_none_or(|p| row.project.as_ref() == Some(p))
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// What a legal hold covers. Every field given must match (AND); at least
/// one must be given.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HoldScope {
    /// `resource.type` and `resource.id` of the entry.
    pub resource: Option<HoldResource>,
    /// `actor.id` of the entry: given in cleartext or as a pseudonym, stored as the pseudonym.
    pub subject: Option<String>,
    /// `context.project` of the entry.
    pub project: Option<String>,
    /// Event `time` at or after this (RFC 3339).
    pub time_from: Option<String>,
    /// Event `time` before this (RFC 3339).
    pub time_to: Option<String>,
}

/// A resource a hold covers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HoldResource {
    /// `resource.type`.
    pub r#type: String,
    /// `resource.id`.
    pub id: String,
}

/// A legal hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hold {
    /// Its id.
    pub id: u64,
    /// Why (free text, required).
    pub reason: String,
    /// What it covers.
    pub scope: HoldScope,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// When it was released, if it was.
    pub released_at: Option<String>,
    /// Who released it.
    pub released_by: Option<String>,
}

fn parse_ms(t: &str) -> anyhow::Result<i64> {
    Ok(chrono::DateTime::parse_from_rfc3339(t)
        .with_context(|| format!("{t:?} is not an RFC 3339 time"))?
        .timestamp_millis())
}

impl HoldScope {
    /// Checks the scope is not empty and its times parse.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.resource.is_none()
            && self.subject.is_none()
            && self.project.is_none()
            && self.time_from.is_none()
            && self.time_to.is_none()
        {
            bail!("a hold needs a scope: resource, subject, project or a time range");
        }
        if let Some(r) = &self.resource {
            if r.r#type.is_empty() || r.id.is_empty() {
                bail!("a hold's resource needs a type and an id");
            }
        }
        let from = self.time_from.as_deref().map(parse_ms).transpose()?;
        let to = self.time_to.as_deref().map(parse_ms).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f >= t {
                bail!("a hold's time_from must be before its time_to");
            }
        }
        Ok(())
    }

    /// Whether the hold covers the entry.
    pub fn covers(&self, row: &RetentionRow) -> bool {
        let ms = |t: &Option<String>| t.as_deref().and_then(|t| parse_ms(t).ok());
        self.resource.as_ref().is_none_or(|r| {
            row.resource_type.as_deref() == Some(r.r#type.as_str())
                && row.resource_id.as_deref() == Some(r.id.as_str())
        }) && self.subject.as_ref().is_none_or(|s| *s == row.actor)
            && self
                .project
                .as_ref()
                .is_none_or(|p| row.project.as_ref() == Some(p))
            && ms(&self.time_from).is_none_or(|f| row.time >= f)
            && ms(&self.time_to).is_none_or(|t| row.time < t)
    }
}

/// `<data-dir>/retention.sqlite`: legal holds and the idempotency keys of pruned
/// entries (primary data, not derived: keep it in backups), and the `pending` chunk of an
/// interrupted run.
///
/// A pruned entry leaves the index, but a producer may still retry its event: the table
/// `pruned_ids` keeps each pruned entry's [`event::IdKey`] (a hash of principal and id,
/// no content) with its seq, so the retry gets the original receipt instead of being
/// stored again.
pub struct HoldStore {
    conn: Mutex<Connection>,
    /// Whether `pruned_ids` has rows: while it has none (no run pruned anything), the
    /// idempotency check of new ids costs no lookup here.
    any_pruned_ids: AtomicBool,
}

impl HoldStore {
    /// Opens (or creates) the store.
    pub fn open(path: &Path) -> anyhow::Result<HoldStore> {
        let conn = datadir::open_db(path)?;
        // Holds and pending chunks must survive a power cut once answered.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS holds (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                reason TEXT NOT NULL,
                scope TEXT NOT NULL,
                created_at TEXT NOT NULL,
                created_by TEXT NOT NULL,
                released_at TEXT,
                released_by TEXT
             );
             CREATE TABLE IF NOT EXISTS pending (first INTEGER NOT NULL, end INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS pruned_ids (
                key BLOB PRIMARY KEY,
                seq INTEGER NOT NULL
             ) WITHOUT ROWID;",
        )?;
        let any: bool =
            conn.query_row("SELECT EXISTS (SELECT 1 FROM pruned_ids)", [], |r| r.get(0))?;
        Ok(HoldStore {
            conn: Mutex::new(conn),
            any_pruned_ids: AtomicBool::new(any),
        })
    }

    /// For each key, the seq of the pruned entry that held it, if any.
    pub fn pruned_seqs(&self, keys: &[IdKey]) -> anyhow::Result<Vec<Option<u64>>> {
        if !self.any_pruned_ids.load(Ordering::Acquire) {
            return Ok(vec![None; keys.len()]);
        }
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached("SELECT seq FROM pruned_ids WHERE key = ?1")?;
        keys.iter()
            .map(|k| {
                let seq = stmt
                    .query_row([&k[..]], |r| r.get::<_, i64>(0))
                    .optional()?;
                Ok(seq.map(|s| s as u64))
            })
            .collect()
    }

    /// Remembers the keys of entries about to be pruned (the first seq of a key stays).
    fn remember_pruned_ids(&self, ids: &[(IdKey, u64)]) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        {
            let mut stmt =
                tx.prepare_cached("INSERT OR IGNORE INTO pruned_ids (key, seq) VALUES (?1, ?2)")?;
            for (k, seq) in ids {
                stmt.execute(params![&k[..], *seq as i64])?;
            }
        }
        tx.commit()?;
        self.any_pruned_ids.store(true, Ordering::Release);
        Ok(())
    }

    /// Creates a hold.
    pub fn create(
        &self,
        reason: &str,
        scope: &HoldScope,
        by: &str,
        now: &str,
    ) -> anyhow::Result<Hold> {
        if reason.trim().is_empty() || reason.len() > HOLD_REASON_BYTES_MAX {
            bail!("a hold needs a reason of 1 to {HOLD_REASON_BYTES_MAX} bytes");
        }
        scope.check()?;
        let conn = self.conn.lock().unwrap();
        let active: i64 = conn.query_row(
            "SELECT count(*) FROM holds WHERE released_at IS NULL",
            [],
            |r| r.get(0),
        )?;
        if active as usize >= HOLDS_MAX {
            bail!("too many active holds ({HOLDS_MAX}); release some first");
        }
        conn.execute(
            "INSERT INTO holds (reason, scope, created_at, created_by) VALUES (?1, ?2, ?3, ?4)",
            params![reason, serde_json::to_string(scope)?, now, by],
        )?;
        let id = conn.last_insert_rowid() as u64;
        drop(conn);
        Ok(self.get(id)?.expect("just inserted"))
    }

    /// One hold.
    pub fn get(&self, id: u64) -> anyhow::Result<Option<Hold>> {
        let conn = self.conn.lock().unwrap();
        let row = conn
            .query_row(
                "SELECT id, reason, scope, created_at, created_by, released_at, released_by FROM holds WHERE id = ?1",
                [id as i64],
                hold_of_row,
            )
            .optional()?;
        row.map(finish_hold).transpose()
    }

    /// Holds in id order; active ones only unless `all`.
    pub fn list(&self, all: bool) -> anyhow::Result<Vec<Hold>> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare_cached(
            "SELECT id, reason, scope, created_at, created_by, released_at, released_by FROM holds
             WHERE ?1 OR released_at IS NULL ORDER BY id",
        )?;
        let rows = stmt
            .query_map([all], hold_of_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(finish_hold).collect()
    }

    /// Releases an active hold; `None` if there is no such active hold.
    pub fn release(&self, id: u64, by: &str, now: &str) -> anyhow::Result<Option<Hold>> {
        let n = self.conn.lock().unwrap().execute(
            "UPDATE holds SET released_at = ?2, released_by = ?3 WHERE id = ?1 AND released_at IS NULL",
            params![id as i64, now, by],
        )?;
        if n == 0 {
            return Ok(None);
        }
        self.get(id)
    }

    /// Deletes a hold outright (undoing a create whose record failed).
    pub fn forget(&self, id: u64) -> anyhow::Result<()> {
        self.conn
            .lock()
            .unwrap()
            .execute("DELETE FROM holds WHERE id = ?1", [id as i64])?;
        Ok(())
    }

    /// Cuts the `pending` chunk to the seqs a ledger of `size` entries holds; returns how
    /// many seqs were dropped. A chunk recorded against a newer ledger than the one restored
    /// from a backup names entries the ledger no longer has, and resuming it would fail
    /// every run (issue 18.2); the seqs below `size` are still pruned when it resumes.
    pub fn reconcile(&self, size: u64) -> anyhow::Result<u64> {
        let forgotten = self
            .conn
            .lock()
            .unwrap()
            .execute("DELETE FROM pruned_ids WHERE seq >= ?1", [size as i64])?;
        if forgotten > 0 {
            tracing::warn!(
                ids_forgotten = forgotten,
                ledger_size = size,
                "pruned event ids name entries past the ledger's size (was ledger/ restored \
                 from a backup?): forgot them"
            );
        }
        let past = self.pending()?.into_iter().filter(|&s| s >= size).count() as u64;
        if past == 0 {
            return Ok(0);
        }
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM pending WHERE first >= ?1", [size as i64])?;
        tx.execute("UPDATE pending SET end = ?1 WHERE end > ?1", [size as i64])?;
        tx.commit()?;
        tracing::warn!(
            seqs_dropped = past,
            ledger_size = size,
            "the pending retention chunk names entries past the ledger's size (was ledger/ \
             restored from a backup?): dropped them from the chunk"
        );
        Ok(past)
    }

    /// Puts a chunk's seq ranges in `pending` (replacing any).
    fn set_pending(&self, ranges: &[(u64, u64)]) -> anyhow::Result<()> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM pending", [])?;
        for (a, b) in ranges {
            tx.execute(
                "INSERT INTO pending (first, end) VALUES (?1, ?2)",
                params![*a as i64, *b as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn pending(&self) -> anyhow::Result<Vec<u64>> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare("SELECT first, end FROM pending ORDER BY first")?;
        let ranges = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ranges.into_iter().flat_map(|(a, b)| a..b).collect())
    }
}

type HoldRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn hold_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HoldRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn finish_hold(row: HoldRow) -> anyhow::Result<Hold> {
    let (id, reason, scope, created_at, created_by, released_at, released_by) = row;
    Ok(Hold {
        id: id as u64,
        reason,
        scope: serde_json::from_str(&scope).context("a stored hold scope")?,
        created_at,
        created_by,
        released_at,
        released_by,
    })
}

/// What a run found (dry run) or did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The time the run measured ages from (RFC 3339).
    pub now: String,
    /// Entries that expired and are not held: pruned (or to prune, in a dry run).
    pub expired: u64,
    /// Entries whose payload this run removed from the ledger.
    pub pruned: u64,
    /// Expired entries kept because a legal hold covers them.
    pub held: u64,
    /// Expired entries per deciding policy (`default` for the default).
    pub by_policy: BTreeMap<String, u64>,
    /// Expired entries kept per hold id.
    pub by_hold: BTreeMap<u64, u64>,
    /// Seq ranges `[first, last]` of the expired entries (at most `REPORT_RANGES_MAX`).
    pub ranges: Vec<[u64; 2]>,
    /// Whether `ranges` was cut at `REPORT_RANGES_MAX`.
    pub ranges_truncated: bool,
    /// Entries left over by an interrupted run and finished by this one.
    pub resumed: u64,
}

/// Decides which indexed entries expired at `now_ms` and are not held, and calls
/// `expired(seq)` for each, in seq order, while it reads the index page by page
/// (`PLAN_PAGE_ROWS` rows at a time): no list of every expired entry is ever held, so a run
/// over millions of entries takes memory for one page and one segment's chunk
/// (issue 19.5). `report` gets the counts and the first `REPORT_RANGES_MAX` ranges.
pub fn plan(
    index: &Index,
    cfg: &RetentionConfig,
    holds: &[Hold],
    now_ms: i64,
    report: &mut RunReport,
    expired: &mut dyn FnMut(u64) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let Some(min_days) = cfg.keep_days_min() else {
        return Ok(());
    };
    let mut after = None;
    loop {
        let rows =
            index.retention_rows(after, now_ms - i64::from(min_days) * DAY_MS, PLAN_PAGE_ROWS)?;
        let Some(last) = rows.last() else { break };
        after = Some(last.seq);
        for row in &rows {
            if NEVER_PRUNED.contains(&row.action.as_str()) {
                continue;
            }
            let Some((days, policy)) = cfg.keep_days(row) else {
                continue;
            };
            if row.time >= now_ms - i64::from(days) * DAY_MS {
                continue;
            }
            let covering: Vec<&Hold> = holds.iter().filter(|h| h.scope.covers(row)).collect();
            if !covering.is_empty() {
                report.held += 1;
                for h in covering {
                    *report.by_hold.entry(h.id).or_default() += 1;
                }
                continue;
            }
            *report.by_policy.entry(policy.to_string()).or_default() += 1;
            report.expired += 1;
            let s = row.seq;
            let full = report.ranges.len() == REPORT_RANGES_MAX;
            match report.ranges.last_mut() {
                Some(r) if r[1] + 1 == s => r[1] = s,
                _ if full => report.ranges_truncated = true,
                _ => report.ranges.push([s, s]),
            }
            expired(s)?;
        }
    }
    Ok(())
}

/// Runs retention: finishes an interrupted chunk, plans, and (unless
/// `dry_run`) drops the expired entries from the index and prunes them in the
/// ledger, one segment at a time. `progress(done, total)` after each chunk.
///
/// Two passes over the index: the first counts (the report, and the total for progress),
/// the second prunes each segment's chunk as soon as the plan moves past it. Both use the
/// same `now`, so they agree, except for entries ingested in between with an old `time`:
/// those are pruned too, and counted in `pruned`.
pub fn run(
    ledger: &ledger::Ledger,
    index: &Index,
    holds: &HoldStore,
    cfg: &RetentionConfig,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> anyhow::Result<RunReport> {
    let mut report = RunReport {
        dry_run,
        now: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ..RunReport::default()
    };
    if !dry_run {
        let left = holds.pending()?;
        if !left.is_empty() {
            tracing::warn!(
                entries = left.len(),
                "finishing a retention chunk a crash interrupted"
            );
            report.resumed = left.len() as u64;
            prune_chunk(ledger, index, holds, &left)?;
        }
    }
    let active = holds.list(false)?;
    let now_ms = now.timestamp_millis();
    plan(index, cfg, &active, now_ms, &mut report, &mut |_| Ok(()))?;
    if dry_run {
        return Ok(report);
    }
    let total = report.expired;
    let (mut done, mut pruned) = (0u64, 0u64);
    let mut chunk: Vec<u64> = Vec::new();
    let mut flush = |chunk: &mut Vec<u64>| -> anyhow::Result<()> {
        if !chunk.is_empty() {
            pruned += prune_chunk(ledger, index, holds, chunk)?;
            done += chunk.len() as u64;
            progress(done, total.max(done));
            chunk.clear();
        }
        Ok(())
    };
    plan(
        index,
        cfg,
        &active,
        now_ms,
        &mut RunReport::default(),
        &mut |seq| {
            if chunk
                .last()
                .is_some_and(|&l| l / ledger::SEGMENT_ENTRIES != seq / ledger::SEGMENT_ENTRIES)
            {
                flush(&mut chunk)?;
            }
            chunk.push(seq);
            Ok(())
        },
    )?;
    flush(&mut chunk)?;
    report.pruned = pruned;
    if report.pruned > 0 || report.resumed > 0 {
        index.purge_dropped()?;
    }
    Ok(report)
}

/// Drops `seqs` (sorted, one segment) from the index and prunes them in the
/// ledger, with the `pending` record around it. Returns the entries pruned.
fn prune_chunk(
    ledger: &ledger::Ledger,
    index: &Index,
    holds: &HoldStore,
    seqs: &[u64],
) -> anyhow::Result<u64> {
    let store = ledger.store();
    // 1. Read what the index holds of each entry while the payload exists.
    let mut rows = Vec::new();
    let mut ids = Vec::new();
    let mut gone = Vec::new();
    let width = tlog::TILE_WIDTH;
    let size = store.size();
    for bundle in seqs.chunk_by(|a, b| a / width == b / width) {
        let b = bundle[0] / width;
        let slots = store
            .slots(b, (size - b * width).min(width))
            .with_context(|| format!("reading entry bundle {b}"))?;
        for &seq in bundle {
            match &slots[(seq % width) as usize] {
                ledger::store::Slot::Entry(bytes) => {
                    let entry =
                        parse_entry(bytes).with_context(|| format!("parsing entry {seq}"))?;
                    if let Some(id) = entry.event.get("id").and_then(|v| v.as_str()) {
                        ids.push((id_key(&entry.principal, id), seq));
                    }
                    rows.push(extract(&entry));
                }
                ledger::store::Slot::Pruned(_) => gone.push(seq),
            }
        }
    }
    // 2. Remember the ids (a retry of a pruned event keeps its receipt), record the
    // chunk, 3. drop it from the index, 4. prune, 5. clear. The ids go first: a crash
    // before the prune leaves them naming entries the index still finds.
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &s in seqs {
        match ranges.last_mut() {
            Some((_, end)) if *end == s => *end += 1,
            _ => ranges.push((s, s + 1)),
        }
    }
    holds.remember_pruned_ids(&ids)?;
    holds.set_pending(&ranges)?;
    index.drop_entries(&rows, &gone)?;
    let pruned = ledger.prune(seqs.to_vec()).context("pruning the ledger")?;
    holds.set_pending(&[])?;
    Ok(pruned.pruned)
}
