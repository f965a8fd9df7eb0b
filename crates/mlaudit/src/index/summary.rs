//! `Index::resource_summary`: what the index knows about one resource, in SQL over the
//! `events` table (every statement is an equality on `events_resource`), with the strings
//! read from `strings`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};

use super::query::lookup;
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
    /// `resource`. All statements read one snapshot of the index.
    pub fn resource_summary(&self, rtype: &str, id: &str) -> Result<Option<Summary>, QueryError> {
        self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            let (Some(rtype), Some(id)) = (lookup(&tx, rtype)?, lookup(&tx, id)?) else {
                return Ok(None);
            };
            let (events, first, last): (i64, Option<i64>, Option<i64>) = tx
                .prepare_cached(
                    "SELECT COUNT(*), MIN(time), MAX(time) FROM events
                     WHERE resource_type = ?1 AND resource_id = ?2",
                )?
                .query_row([rtype, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            let versions = {
                let mut stmt = tx.prepare_cached(
                    "SELECT s.value, MIN(e.seq) AS first FROM events e JOIN strings s ON s.id = e.resource_version
                     WHERE e.resource_type = ?1 AND e.resource_id = ?2
                     GROUP BY e.resource_version ORDER BY first",
                )?;
                let rows = stmt.query_map([rtype, id], |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let counts_by_action = {
                let mut stmt = tx.prepare_cached(
                    "SELECT s.value, COUNT(*) FROM events e JOIN strings s ON s.id = e.action
                     WHERE e.resource_type = ?1 AND e.resource_id = ?2 GROUP BY e.action",
                )?;
                let rows = stmt.query_map([rtype, id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?;
                rows.collect::<Result<BTreeMap<_, _>, _>>()?
            };
            let actor_count: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(DISTINCT actor) FROM events
                     WHERE resource_type = ?1 AND resource_id = ?2",
                )?
                .query_row([rtype, id], |r| r.get(0))?;
            let actors = {
                let mut stmt = tx.prepare_cached(
                    "SELECT DISTINCT s.value FROM events e JOIN strings s ON s.id = e.actor
                     WHERE e.resource_type = ?1 AND e.resource_id = ?2 ORDER BY s.value LIMIT ?3",
                )?;
                let rows = stmt.query_map(
                    rusqlite::params![rtype, id, SUMMARY_ACTORS_MAX as i64],
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
