//! `Index::deployment_state`: which model version a deployment served at a time T, and the
//! evaluations recorded for that version.

use rusqlite::types::Value as Sql;

use super::query::read_hits;
use super::{id_of, scope_sql, value_of, Hit, Index, QueryError};

/// The actions that set what a deployment serves. The latest successful one at or before
/// T, by event `time` (ties: the later seq), that names a model is the answer.
pub const DEPLOYMENT_ACTIONS: &[&str] = &[
    "deployment.deploy",
    "deployment.update",
    "deployment.rollback",
    "deployment.promote",
];

/// Most evaluation events returned ([`DeploymentState::evaluations_total`] counts them all).
pub const EVALUATIONS_MAX: usize = 100;

/// The model a deployment event says the deployment serves from then on: its `related`
/// link of type `model` (the one with relation `serves` if there are several).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedModel {
    /// Model id.
    pub id: String,
    /// Model version, if the event gives one.
    pub version: Option<String>,
    /// The link's relation, if given.
    pub relation: Option<String>,
}

/// What a deployment served at a time.
#[derive(Debug, Clone)]
pub struct DeploymentState {
    /// The model (and version) served.
    pub model: ServedModel,
    /// The event that set it, read back from the ledger.
    pub event: Hit,
    /// Its `action`.
    pub action: String,
    /// Its `actor.id`: who deployed.
    pub actor: String,
    /// Its `time`, in milliseconds since the Unix epoch.
    pub time: i64,
    /// `evaluation.*` events about that model version (as their `resource`, or in
    /// `related`), oldest first (by seq), at most [`EVALUATIONS_MAX`].
    pub evaluations: Vec<Hit>,
    /// Number of such events.
    pub evaluations_total: u64,
}

impl Index {
    /// What deployment `id` served at `at` (milliseconds since the Unix epoch), over the
    /// events of a project scope (`None`: every event): the latest successful
    /// [`DEPLOYMENT_ACTIONS`] event about resource `deployment:id` with event `time` ≤ `at`
    /// (ties by seq) that has a `related` model; a rollback's link names the version it went
    /// back to. Events that name no model (a replica change, say) do not change the answer.
    /// `None` when there is no such event. Events are read back from `store`.
    pub fn deployment_state(
        &self,
        store: &ledger::Store,
        id: &str,
        at: i64,
        projects: Option<&[String]>,
    ) -> Result<Option<DeploymentState>, QueryError> {
        let actions: Vec<String> = DEPLOYMENT_ACTIONS
            .iter()
            .map(|a| format!("'{a}'"))
            .collect();
        let found = self.with_reader(|conn| {
            let tx = conn.unchecked_transaction()?;
            let (scope, scope_params) = scope_sql(projects, "e.project", 3);
            let mut params = vec![Sql::Text(id.into()), Sql::Integer(at)];
            params.extend(scope_params);
            // The deployment's own rows (`events_resource`), then their links (`related_seq`).
            // Without statistics SQLite would rather walk `events_time` back from `at` or
            // `related_target` (every model link): the CROSS JOIN fixes the join order and
            // the unary `+`s keep those indexes (and `events_action`) out. String columns
            // hold ids (docs/index.md); success is a NULL outcome.
            let sql = format!(
                "SELECT e.seq, e.time, {}, {}, {}, {}, {}
                 FROM events e CROSS JOIN related r ON r.seq = e.seq AND +r.type = {}
                 WHERE e.resource_type = {} AND e.resource_id = {}
                   AND +e.action IN (SELECT id FROM strings WHERE value IN ({}))
                   AND +e.outcome IS NULL AND +e.time <= ?2{scope}
                 ORDER BY e.time DESC, e.seq DESC, COALESCE(r.relation = {}, 0) DESC, r.rowid
                 LIMIT 1",
                value_of("e.action"),
                value_of("e.actor"),
                value_of("r.id"),
                value_of("r.version"),
                value_of("r.relation"),
                id_of("'model'"),
                id_of("'deployment'"),
                id_of("?1"),
                actions.join(", "),
                id_of("'serves'"),
            );
            let row = tx
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        ServedModel {
                            id: r.get(4)?,
                            version: r.get(5)?,
                            relation: r.get(6)?,
                        },
                    ))
                })?
                .next()
                .transpose()?;
            let Some((seq, time, action, actor, model)) = row else {
                return Ok(None);
            };
            // Evaluations of the model version: as their resource, or in `related`. Without
            // a version, every version of the model.
            let (scope, scope_params) = scope_sql(projects, "e.project", 3);
            let mut params = vec![
                Sql::Text(model.id.clone()),
                model.version.clone().map_or(Sql::Null, Sql::Text),
            ];
            params.extend(scope_params);
            let (model_t, model_id, version) = (id_of("'model'"), id_of("?1"), id_of("?2"));
            let sql = format!(
                "SELECT e.seq FROM events e
                 WHERE e.seq IN (
                     SELECT seq FROM events WHERE resource_type = {model_t} AND resource_id = {model_id}
                       AND (?2 IS NULL OR resource_version = {version})
                     UNION
                     SELECT seq FROM related WHERE type = {model_t} AND id = {model_id}
                       AND (?2 IS NULL OR version = {version}))
                   AND e.action IN (SELECT id FROM strings
                                    WHERE value >= 'evaluation.' AND value < 'evaluation/'){scope}
                 ORDER BY e.seq"
            );
            let seqs: Vec<u64> = tx
                .prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    r.get::<_, i64>(0)
                })?
                .map(|r| r.map(|s| s as u64))
                .collect::<Result<_, _>>()?;
            tx.finish()?;
            Ok(Some((seq, time, action, actor, model, seqs)))
        })?;
        let Some((seq, time, action, actor, model, evaluation_seqs)) = found else {
            return Ok(None);
        };
        let event = read_hits(store, &[seq])?
            .pop()
            .ok_or_else(|| QueryError::Storage(format!("entry {seq} is missing")))?;
        let shown = &evaluation_seqs[..evaluation_seqs.len().min(EVALUATIONS_MAX)];
        let evaluations = read_hits(store, shown)?;
        Ok(Some(DeploymentState {
            model,
            event,
            action,
            actor,
            time,
            evaluations,
            evaluations_total: evaluation_seqs.len() as u64,
        }))
    }
}
