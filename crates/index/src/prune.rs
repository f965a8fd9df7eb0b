//! What retention needs from the index: the rows it decides on, and dropping
//! the rows of entries it prunes (events, tags, related links, full-text terms
//! and rollup counts), so the index equals a rebuild from the pruned ledger.

use rusqlite::{params, OptionalExtension};

use super::{id_of, value_of, Index, IndexedEvent, DAY_MS, HOUR_MS, OUTCOME_SUCCESS};

/// The columns a retention policy or a legal hold looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRow {
    /// Position in the log.
    pub seq: u64,
    /// Event `time`, in milliseconds since the Unix epoch.
    pub time: i64,
    /// `action`.
    pub action: String,
    /// Its category.
    pub category: String,
    /// `actor.id` as stored.
    pub actor: String,
    /// `resource.type`.
    pub resource_type: Option<String>,
    /// `resource.id`.
    pub resource_id: Option<String>,
    /// `context.project`.
    pub project: Option<String>,
    /// `resource.tags`.
    pub tags: Vec<String>,
}

impl Index {
    /// Up to `limit` rows with `seq > after` (all when `after` is `None`) and
    /// `time < time_before`, in seq order.
    pub fn retention_rows(
        &self,
        after: Option<u64>,
        time_before: i64,
        limit: usize,
    ) -> anyhow::Result<Vec<RetentionRow>> {
        let w = self.writer.lock().unwrap();
        let conn = &w.conn;
        // String columns hold ids (docs/index.md).
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT seq, time, {}, {}, {}, {}, {}, {}
             FROM events WHERE seq > ?1 AND time < ?2 ORDER BY seq LIMIT ?3",
            value_of("action"),
            value_of("category"),
            value_of("actor"),
            value_of("resource_type"),
            value_of("resource_id"),
            value_of("project"),
        ))?;
        let after = after.map_or(-1, |a| a as i64);
        let mut rows = stmt
            .query_map(params![after, time_before, limit as i64], |r| {
                Ok(RetentionRow {
                    seq: r.get::<_, i64>(0)? as u64,
                    time: r.get(1)?,
                    action: r.get(2)?,
                    category: r.get(3)?,
                    actor: r.get(4)?,
                    resource_type: r.get(5)?,
                    resource_id: r.get(6)?,
                    project: r.get(7)?,
                    tags: Vec::new(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut tags = conn.prepare_cached(&format!(
            "SELECT {} FROM tags WHERE seq = ?1",
            value_of("tag")
        ))?;
        for row in &mut rows {
            row.tags = tags
                .query_map([row.seq as i64], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
        }
        Ok(rows)
    }

    /// Whether entry `seq` is in the index.
    pub fn contains(&self, seq: u64) -> anyhow::Result<bool> {
        let w = self.writer.lock().unwrap();
        Ok(w.conn
            .query_row("SELECT 1 FROM events WHERE seq = ?1", [seq as i64], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// Removes the given entries from the index in one transaction. `rows` are
    /// extracted from the entries themselves (before they are pruned): the
    /// contentless full-text table can only forget terms it is given again.
    /// `gone` are seqs whose entry is already pruned: their rows are dropped
    /// without full-text terms (none can exist, see `retention.rs`). Returns
    /// the number of index rows removed.
    pub fn drop_entries(&self, rows: &[IndexedEvent], gone: &[u64]) -> anyhow::Result<u64> {
        let mut w = self.writer.lock().unwrap();
        // Freed pages are zeroed, so dropped rows do not linger in the file.
        w.conn.pragma_update(None, "secure_delete", "ON")?;
        let tx = w.conn.transaction()?;
        let mut removed = 0;
        {
            let mut ev = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
            let mut tag = tx.prepare_cached(&format!(
                "DELETE FROM tags WHERE tag = {} AND seq = ?2",
                id_of("?1")
            ))?;
            let mut tags_of = tx.prepare_cached("DELETE FROM tags WHERE seq = ?1")?;
            let mut rel = tx.prepare_cached("DELETE FROM related WHERE seq = ?1")?;
            let mut fts = tx.prepare_cached(
                "INSERT INTO fts (fts, rowid, reason, parameters, name) VALUES ('delete', ?1, ?2, ?3, ?4)",
            )?;
            let mut roll = tx.prepare_cached(
                "UPDATE rollup SET count = count - 1 WHERE width = ?1 AND bucket = ?2 AND action = ?3
                 AND outcome = ?4 AND project = ?5 AND resource_type = ?6",
            )?;
            let mut roll_actor = tx.prepare_cached(
                "UPDATE rollup_actor SET count = count - 1 WHERE bucket = ?1 AND actor = ?2
                 AND outcome = ?3",
            )?;
            for r in rows {
                let seq = r.seq as i64;
                // Only a row that is there is removed, so a repeat never
                // deletes full-text terms or counts twice.
                if ev.execute([seq])? == 0 {
                    continue;
                }
                removed += 1;
                for t in &r.tags {
                    tag.execute(params![t, seq])?;
                }
                rel.execute([seq])?;
                if r.reason.is_some() || r.parameters.is_some() || r.name.is_some() {
                    fts.execute(params![seq, r.reason, r.parameters, r.name])?;
                }
                for width in [HOUR_MS, DAY_MS] {
                    roll.execute(params![
                        width,
                        r.time.div_euclid(width) * width,
                        r.action,
                        r.outcome,
                        r.project.as_deref().unwrap_or(""),
                        r.resource_type.as_deref().unwrap_or("")
                    ])?;
                }
                roll_actor.execute(params![
                    r.time.div_euclid(DAY_MS) * DAY_MS,
                    r.actor,
                    r.outcome
                ])?;
            }
            let mut cols = tx.prepare_cached(
                &format!(
                    "SELECT time, {}, COALESCE({}, '{OUTCOME_SUCCESS}'), {}, {}, {} FROM events WHERE seq = ?1",
                    value_of("action"),
                    value_of("outcome"),
                    value_of("project"),
                    value_of("resource_type"),
                    value_of("actor"),
                ),
            )?;
            for &seq in gone {
                type Cols = (i64, String, String, Option<String>, Option<String>, String);
                let c: Option<Cols> = cols
                    .query_row([seq as i64], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .optional()?;
                let Some((time, action, outcome, project, rtype, actor)) = c else {
                    continue;
                };
                ev.execute([seq as i64])?;
                removed += 1;
                for width in [HOUR_MS, DAY_MS] {
                    roll.execute(params![
                        width,
                        time.div_euclid(width) * width,
                        action,
                        outcome,
                        project.as_deref().unwrap_or(""),
                        rtype.as_deref().unwrap_or("")
                    ])?;
                }
                roll_actor.execute(params![time.div_euclid(DAY_MS) * DAY_MS, actor, outcome])?;
                tags_of.execute([seq as i64])?;
                rel.execute([seq as i64])?;
            }
        }
        tx.execute("DELETE FROM rollup WHERE count <= 0", [])?;
        tx.execute("DELETE FROM rollup_actor WHERE count <= 0", [])?;
        tx.commit()?;
        Ok(removed)
    }
}

/// Every string id some row refers to (the string columns of `events`, `tags` and
/// `related`; keep in step with `SCHEMA`). No NULLs: `NOT IN` a set holding NULL is never
/// true.
const REFERENCED_STRINGS: &str = "
    SELECT action FROM events UNION SELECT category FROM events UNION SELECT actor FROM events
    UNION SELECT outcome FROM events WHERE outcome IS NOT NULL
    UNION SELECT resource_type FROM events WHERE resource_type IS NOT NULL
    UNION SELECT resource_id FROM events WHERE resource_id IS NOT NULL
    UNION SELECT resource_version FROM events WHERE resource_version IS NOT NULL
    UNION SELECT project FROM events WHERE project IS NOT NULL
    UNION SELECT environment FROM events WHERE environment IS NOT NULL
    UNION SELECT tag FROM tags UNION SELECT type FROM related UNION SELECT id FROM related
    UNION SELECT version FROM related WHERE version IS NOT NULL
    UNION SELECT relation FROM related WHERE relation IS NOT NULL";

impl Index {
    /// After a retention run: deletes the `strings` rows no row refers to any more (the
    /// identifiers of pruned entries: pseudonymized actors, resource ids, tags), merges
    /// the full-text index so the terms of dropped entries are gone from its segments
    /// (FTS5 keeps deleted terms until a merge), and checkpoints the WAL into the main
    /// file and truncates it, so no old page image stays in `index.sqlite-wal`. Best
    /// effort for the WAL: a reader holding an old snapshot can keep it from being
    /// truncated until the next run. Returns the number of strings deleted.
    pub fn purge_dropped(&self) -> anyhow::Result<u64> {
        let mut w = self.writer.lock().unwrap();
        w.conn.pragma_update(None, "secure_delete", "ON")?;
        // One scan of the string columns (about a second per million events here): a
        // reference count per string would cost every insert instead.
        let deleted = w.conn.execute(
            &format!("DELETE FROM strings WHERE id NOT IN ({REFERENCED_STRINGS})"),
            [],
        )?;
        if deleted > 0 {
            // The writer's cache may hold ids that are gone; new rows must not reuse them.
            w.ids.clear();
        }
        let conn = &w.conn;
        conn.execute("INSERT INTO fts (fts) VALUES ('optimize')", [])?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(deleted as u64)
    }
}
