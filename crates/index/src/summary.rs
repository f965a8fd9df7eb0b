//! `Index::resource_summary`: what the index knows about one resource, in SQL over the
//! `events` table (every statement is an equality on `events_resource`), with the strings
//! read from `strings`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};

use rusqlite::types::Value as Sql;

use super::query::lookup;
use super::{scope_sql, Index, QueryError};

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
pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl Index {
    /// The summary of resource `(rtype, id)`, or `None` when no event names it as its
    /// `resource`. All statements read one snapshot of the index.
    pub fn resource_summary(&self, rtype: &str, id: &str) -> Result<Option<Summary>, QueryError> {
        self.resource_summary_in(rtype, id, None)
    }

    /// [`Index::resource_summary`] over the events of a project scope only (see
    /// [`Filter::projects_allowed`](super::Filter::projects_allowed)); `None`: every event.
    pub fn resource_summary_in(
        &self,
        rtype: &str,
        id: &str,
        projects: Option<&[String]>,
    ) -> Result<Option<Summary>, QueryError> {
        let (scope, scope_params) = scope_sql(projects, "e.project", 3);
        self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            let (Some(rtype), Some(id)) = (lookup(&tx, rtype)?, lookup(&tx, id)?) else {
                return Ok(None);
            };
            let mut params: Vec<Sql> = vec![Sql::Integer(rtype), Sql::Integer(id)];
            params.extend(scope_params.iter().cloned());
            let params = || rusqlite::params_from_iter(params.iter());
            let (events, first, last): (i64, Option<i64>, Option<i64>) = tx
                .prepare_cached(&format!(
                    "SELECT COUNT(*), MIN(time), MAX(time) FROM events e
                     WHERE resource_type = ?1 AND resource_id = ?2{scope}"
                ))?
                .query_row(params(), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            let versions = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT s.value, MIN(e.seq) AS first FROM events e JOIN strings s ON s.id = e.resource_version
                     WHERE e.resource_type = ?1 AND e.resource_id = ?2{scope}
                     GROUP BY e.resource_version ORDER BY first"
                ))?;
                let rows = stmt.query_map(params(), |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let counts_by_action = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT s.value, COUNT(*) FROM events e JOIN strings s ON s.id = e.action
                     WHERE e.resource_type = ?1 AND e.resource_id = ?2{scope} GROUP BY e.action"
                ))?;
                let rows = stmt.query_map(params(), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?;
                rows.collect::<Result<BTreeMap<_, _>, _>>()?
            };
            let actor_count: i64 = tx
                .prepare_cached(&format!(
                    "SELECT COUNT(DISTINCT actor) FROM events e
                     WHERE resource_type = ?1 AND resource_id = ?2{scope}"
                ))?
                .query_row(params(), |r| r.get(0))?;
            let actors = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT DISTINCT s.value FROM events e JOIN strings s ON s.id = e.actor
                     WHERE e.resource_type = ?1 AND e.resource_id = ?2{scope}
                     ORDER BY s.value LIMIT {SUMMARY_ACTORS_MAX}"
                ))?;
                let rows = stmt.query_map(params(), |r| r.get::<_, String>(0))?;
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
