//! Read endpoints that answer audit questions from the query index: lineage
//! (`/v1/lineage`), what a deployment served at a time (`/v1/deployments/{id}/state`) and
//! counts by field and time bucket (`/v1/stats`). Thin: parse and check the parameters,
//! call the `Index` function in `spawn_blocking`, render JSON.
//!
//! Every index call takes the caller's project scope; it is `None` (no restriction) until
//! authentication provides project-scoped tokens.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::error::ApiError;
use super::guard::ResultCount;
use super::read::{blocking, query_error, query_filter, HitOut, Params, QUERY_PARAMS};
use super::AppState;
use auth::Principal;
use index::{
    parse_interval, rfc3339, Hit, LineageFilter, NodeRef, StatsBy, StatsSource, HOUR_MS,
    LINEAGE_DEPTH_DEFAULT, LINEAGE_DEPTH_MAX,
};

/// A result as in `GET /v1/events`: `{"seq","recorded_at","leaf_hash","event"}`.
fn hit_json(h: Hit) -> Value {
    let out = HitOut::stored(h.seq, h.recorded_at, &h.leaf_hash, h.event);
    serde_json::to_value(out).expect("a result serializes")
}

fn node_json(n: &NodeRef) -> Value {
    json!({"type": n.r#type, "id": n.id})
}

fn required<'a>(q: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    q.get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("bad_parameter", format!("{name} is required")))
}

/// Parameters of `GET /v1/lineage`.
const LINEAGE_PARAMS: &[&str] = &["type", "id", "depth", "types", "relations"];

/// Most names in the `types` or `relations` list of `GET /v1/lineage`.
const LINEAGE_FILTER_NAMES_MAX: usize = 32;

/// A comma-separated list of names (`types=model,deployment`), checked: no empty name, at
/// most [`LINEAGE_FILTER_NAMES_MAX`].
fn name_list(q: &Params, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    let names: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
    if names.iter().any(String::is_empty) || names.len() > LINEAGE_FILTER_NAMES_MAX {
        return Err(ApiError::bad_request(
            "bad_parameter",
            format!(
                "{name}={v:?} must be a comma-separated list of 1 to \
                 {LINEAGE_FILTER_NAMES_MAX} names, e.g. {name}={}",
                if name == "types" {
                    "model,deployment"
                } else {
                    "training_data,serves"
                }
            ),
        ));
    }
    Ok(Some(names))
}

/// `GET /v1/lineage?type=&id=&depth=&types=&relations=`: the graph of `related` links
/// around a resource, optionally only through some node types and relations.
pub(super) async fn lineage(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let q = Params::new(q, LINEAGE_PARAMS)?;
    let rtype = required(&q, "type")?.to_string();
    // A user given in cleartext is looked up by its pseudonym, as stored.
    let id = st
        .privacy
        .query_value("resource.id", required(&q, "id")?, &|k| {
            (k == "type").then(|| rtype.clone())
        });
    let depth = match q.u64("depth")? {
        None => LINEAGE_DEPTH_DEFAULT,
        Some(d) if d <= u64::from(LINEAGE_DEPTH_MAX) => d as u32,
        Some(d) => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                format!("depth={d} is more than the most, {LINEAGE_DEPTH_MAX}"),
            ))
        }
    };
    let filter = LineageFilter {
        types: name_list(&q, "types")?,
        relations: name_list(&q, "relations")?,
    };
    let index = st.index.clone();
    let (t, i) = (rtype.clone(), id.clone());
    let scope = caller.projects.clone();
    let f = filter.clone();
    let graph = blocking(move || {
        index
            .lineage(&t, &i, depth, scope.as_deref(), &f)
            .map_err(query_error)
    })
    .await?;
    let Some(g) = graph else {
        return Err(ApiError::not_found(format!(
            "no event names {rtype}:{id} (or the index has not reached it yet)"
        )));
    };
    let nodes: Vec<Value> = g
        .nodes
        .iter()
        .map(|n| {
            json!({
                "type": n.node.r#type,
                "id": n.node.id,
                "depth": n.depth,
                "events": n.events,
                "first_seen": n.first_seen,
                "last_seen": n.last_seen,
                "versions": n.versions,
            })
        })
        .collect();
    let edges: Vec<Value> = g
        .edges
        .iter()
        .map(|e| {
            json!({
                "from": node_json(&e.from),
                "to": node_json(&e.to),
                "relation": e.relation,
                "events": {"count": e.events, "seqs": e.seqs},
                "first_seen": e.first_seen,
                "last_seen": e.last_seen,
            })
        })
        .collect();
    let count = Extension(ResultCount(nodes.len() as u64));
    Ok((
        count,
        Json(json!({
            "root": {"type": rtype, "id": id},
            "depth": depth,
            "nodes": nodes,
            "edges": edges,
            "types": filter.types,
            "relations": filter.relations,
            "truncated": g.truncated,
            "omitted": {
                "nodes": g.omitted.nodes,
                "edges": g.omitted.edges,
                "node_types": g.omitted.node_types,
                "relations": g.omitted.relations,
            },
        })),
    ))
}

/// Parameters of `GET /v1/deployments/{id}/state`.
const STATE_PARAMS: &[&str] = &["at"];

/// `GET /v1/deployments/{id}/state?at=T`: the model version the deployment served at T
/// (default: now), who deployed it, and the evaluations of that version.
pub(super) async fn deployment_state(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let q = Params::new(q, STATE_PARAMS)?;
    let at = match q.time_ms("at")? {
        Some(t) => t,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let index = st.index.clone();
    let store = st.ledger.store().clone();
    let d = id.clone();
    let scope = caller.projects.clone();
    let state = blocking(move || {
        index
            .deployment_state(&store, &d, at, scope.as_deref())
            .map_err(query_error)
    })
    .await?;
    let Some(s) = state else {
        return Err(ApiError::not_found(format!(
            "deployment {id} has no successful deploy, update, rollback or promote event \
             naming a model at or before {}",
            rfc3339(at)
        )));
    };
    let count = Extension(ResultCount(1 + s.evaluations.len() as u64));
    Ok((
        count,
        Json(json!({
            "deployment": id,
            "at": rfc3339(at),
            "model": {
                "id": s.model.id,
                "version": s.model.version,
                "relation": s.model.relation,
            },
            "actor": s.actor,
            "action": s.action,
            "seq": s.event.seq,
            "time": rfc3339(s.time),
            "event": hit_json(s.event),
            "evaluations": {
                "count": s.evaluations_total,
                "events": s.evaluations.into_iter().map(hit_json).collect::<Vec<_>>(),
            },
        })),
    ))
}

/// Parameters of `GET /v1/stats`: `by`, `interval` and the filters of `GET /v1/events`
/// (not its paging).
fn stats_params() -> Vec<&'static str> {
    let mut p = vec!["by", "interval"];
    p.extend(
        QUERY_PARAMS
            .iter()
            .filter(|n| !["limit", "cursor", "order"].contains(n)),
    );
    p
}

/// `GET /v1/stats?by=&interval=&…filters`: counts by field and time bucket.
pub(super) async fn stats(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let q = Params::new(q, &stats_params())?;
    let by = StatsBy::parse(required(&q, "by")?).map_err(query_error)?;
    let (width, calendar) =
        parse_interval(q.get("interval").unwrap_or("day")).map_err(query_error)?;
    let filter = query_filter(&q, &st.privacy, &caller)?;
    let index = st.index.clone();
    let stats = blocking(move || index.stats(&filter, by, width).map_err(query_error)).await?;
    let stats = match calendar {
        Some(c) => stats.regroup(c),
        None => stats,
    };
    let interval = match (calendar, width) {
        (Some(c), _) => c.as_str(),
        (None, HOUR_MS) => "hour",
        (None, _) => "day",
    };
    let buckets: Vec<Value> = stats
        .buckets
        .into_iter()
        .map(|b| json!({"start": rfc3339(b.start), "key": b.key, "count": b.count}))
        .collect();
    let count = Extension(ResultCount(buckets.len() as u64));
    Ok((
        count,
        Json(json!({
            "by": by.as_str(),
            "interval": interval,
            "source": match stats.source {
                StatsSource::Rollup => "rollup",
                StatsSource::Events => "events",
            },
            "buckets": buckets,
        })),
    ))
}
