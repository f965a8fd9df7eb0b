//! `Index::resource_summary`: what the index knows about one resource, in SQL over the
//! `events` table (every statement is an equality on `events_resource`).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};

use super::{Index, QueryError};

/// Most actor ids listed in a [`Summary`]; [`Summary::actor_count`] still counts them all.
pub const SUMMARY_ACTORS_MAX: usize = 100;

/// A summary of one resource's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Earliest event `time` (RFC 3339, UTC, milliseconds).
    pub first_seen: String,
    /// Latest event `time` (RFC 3339, UTC, milliseconds).
    pub last_seen: String,
    /// Number of events about the resource.
    pub events: u64,
    /// Distinct `resource.version` values, in the order the log first recorded them.
    pub versions: Vec<String>,
    /// Number of events by action.
    pub counts_by_action: BTreeMap<String, u64>,
    /// Number of distinct `actor.id`s.
    pub actor_count: u64,
    /// The distinct `actor.id`s, sorted, at most [`SUMMARY_ACTORS_MAX`].
    pub actors: Vec<String>,
}

/// Milliseconds since the Unix epoch as RFC 3339 (UTC, milliseconds).
fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl Index {
    /// The summary of resource `(rtype, id)`, or `None` when no event names it as its
    /// `resource`. All statements read one snapshot of the index. With `projects`, only
    /// events whose `context.project` is one of them count (a token limited to projects).
    pub fn resource_summary(
        &self,
        rtype: &str,
        id: &str,
        projects: Option<&[String]>,
    ) -> Result<Option<Summary>, QueryError> {
        let scope: Option<String> =
            projects.map(|p| serde_json::to_string(p).expect("strings serialize"));
        let scope = scope.as_deref();
        self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            let (events, first, last): (i64, Option<i64>, Option<i64>) = tx
                .prepare_cached(
                    "SELECT COUNT(*), MIN(time), MAX(time) FROM events
                     WHERE resource_type = ?1 AND resource_id = ?2 AND (?3 IS NULL OR project IN (SELECT value FROM json_each(?3)))",
                )?
                .query_row(rusqlite::params![rtype, id, scope], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            let versions = {
                let mut stmt = tx.prepare_cached(
                    "SELECT resource_version, MIN(seq) AS first FROM events
                     WHERE resource_type = ?1 AND resource_id = ?2 AND (?3 IS NULL OR project IN (SELECT value FROM json_each(?3))) AND resource_version IS NOT NULL
                     GROUP BY resource_version ORDER BY first",
                )?;
                let rows = stmt.query_map(rusqlite::params![rtype, id, scope], |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let counts_by_action = {
                let mut stmt = tx.prepare_cached(
                    "SELECT action, COUNT(*) FROM events
                     WHERE resource_type = ?1 AND resource_id = ?2 AND (?3 IS NULL OR project IN (SELECT value FROM json_each(?3))) GROUP BY action",
                )?;
                let rows = stmt.query_map(rusqlite::params![rtype, id, scope], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?;
                rows.collect::<Result<BTreeMap<_, _>, _>>()?
            };
            let actor_count: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(DISTINCT actor) FROM events
                     WHERE resource_type = ?1 AND resource_id = ?2 AND (?3 IS NULL OR project IN (SELECT value FROM json_each(?3)))",
                )?
                .query_row(rusqlite::params![rtype, id, scope], |r| r.get(0))?;
            let actors = {
                let mut stmt = tx.prepare_cached(
                    "SELECT DISTINCT actor FROM events
                     WHERE resource_type = ?1 AND resource_id = ?2 AND (?3 IS NULL OR project IN (SELECT value FROM json_each(?3))) ORDER BY actor LIMIT ?4",
                )?;
                let rows = stmt.query_map(
                    rusqlite::params![rtype, id, scope, SUMMARY_ACTORS_MAX as i64],
                    |r| r.get::<_, String>(0),
                )?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            tx.finish()?;
            Ok(Some(Summary {
                first_seen: rfc3339(first),
                last_seen: rfc3339(last),
                events: events as u64,
                versions,
                counts_by_action,
                actor_count: actor_count as u64,
                actors,
            }))
        })
    }
}
