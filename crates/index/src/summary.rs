//! `Index::resource_summary`: what the index knows about one resource, in SQL over the
//! events that name it as their `resource` or in `related` (the events of its history,
//! `Index::history`): every statement is an equality on `events_resource` and one on
//! `related_target`, with the strings read from `strings`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};

use rusqlite::types::Value as Sql;

use super::query::lookup;
use super::{scope_sql, Index, QueryError};

/// Most actor ids listed in a [`Summary`]; [`Summary::actor_count`] still counts them all.
pub const SUMMARY_ACTORS_MAX: usize = 100;

/// A summary of the events that name one resource, as their `resource` (subject) or in
/// `related`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Earliest event `time` (RFC 3339, UTC, milliseconds).
    pub first_seen: String,
    /// Latest event `time` (RFC 3339, UTC, milliseconds).
    pub last_seen: String,
    /// Number of events naming the resource (each once, however it names it).
    pub events: u64,
    /// Number of those whose `resource` it is.
    pub as_subject: u64,
    /// Number of those naming it in `related`, by the link's `relation` (`""` for a link
    /// without one); an event naming it under two relations counts under both.
    pub as_related: BTreeMap<String, u64>,
    /// Distinct versions named (`resource.version`, `related[].version`), in the order the
    /// log first recorded them.
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
    /// The summary of resource `(rtype, id)`, or `None` when no event names it (as its
    /// `resource` or in `related`). All statements read one snapshot of the index.
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
            // The seqs of the resource's history: two index ranges, merged.
            let named = "(SELECT seq FROM events WHERE resource_type = ?1 AND resource_id = ?2
                          UNION SELECT seq FROM related WHERE type = ?1 AND id = ?2)";
            let (events, first, last, as_subject): (i64, Option<i64>, Option<i64>, i64) = tx
                .prepare_cached(&format!(
                    "SELECT COUNT(*), MIN(e.time), MAX(e.time),
                            COALESCE(SUM(e.resource_type = ?1 AND e.resource_id = ?2), 0)
                     FROM events e WHERE e.seq IN {named}{scope}"
                ))?
                .query_row(params(), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?;
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            let as_related = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT COALESCE(s.value, ''), COUNT(DISTINCT r.seq)
                     FROM related r JOIN events e ON e.seq = r.seq
                     LEFT JOIN strings s ON s.id = r.relation
                     WHERE r.type = ?1 AND r.id = ?2{scope} GROUP BY r.relation"
                ))?;
                let rows = stmt.query_map(params(), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?;
                rows.collect::<Result<BTreeMap<_, _>, _>>()?
            };
            let versions = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT s.value FROM (
                         SELECT e.resource_version AS v, e.seq AS seq FROM events e
                         WHERE e.resource_type = ?1 AND e.resource_id = ?2
                           AND e.resource_version IS NOT NULL{scope}
                         UNION ALL
                         SELECT r.version AS v, r.seq AS seq FROM related r JOIN events e ON e.seq = r.seq
                         WHERE r.type = ?1 AND r.id = ?2 AND r.version IS NOT NULL{scope}
                     ) JOIN strings s ON s.id = v
                     GROUP BY v ORDER BY MIN(seq), s.value"
                ))?;
                let rows = stmt.query_map(params(), |r| r.get::<_, String>(0))?;
                rows.collect::<Result<Vec<_>, _>>()?
            };
            let counts_by_action = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT s.value, COUNT(*) FROM events e JOIN strings s ON s.id = e.action
                     WHERE e.seq IN {named}{scope} GROUP BY e.action"
                ))?;
                let rows = stmt.query_map(params(), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })?;
                rows.collect::<Result<BTreeMap<_, _>, _>>()?
            };
            let actor_count: i64 = tx
                .prepare_cached(&format!(
                    "SELECT COUNT(DISTINCT actor) FROM events e WHERE e.seq IN {named}{scope}"
                ))?
                .query_row(params(), |r| r.get(0))?;
            let actors = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT DISTINCT s.value FROM events e JOIN strings s ON s.id = e.actor
                     WHERE e.seq IN {named}{scope}
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
                as_subject: as_subject as u64,
                as_related,
                versions,
                counts_by_action,
                actor_count: actor_count as u64,
                actors,
            }))
        })
    }
}
