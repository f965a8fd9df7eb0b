//! `/v1/holds` and `/v1/retention/run`: legal holds and retention runs over
//! HTTP, and the scheduled run. Admin-only once roles exist (DESIGN section 6).
//! The logic is in `crate::retention`; each change is recorded with
//! [`record_system`] as an `audit.hold` or `audit.retention` event, which holds
//! seq ranges and counts, never entry contents.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::ingest::record_system;
use super::read::Params;
use super::AppState;
use ::retention::{self, HoldScope, HoldStore, RetentionConfig, RunReport};
use auth::Principal;
use event::format_time;

/// Retention state of a server.
pub struct Retention {
    /// The `[retention]` config section.
    pub config: RetentionConfig,
    /// Legal holds, the pending chunk and the keys of pruned ids (`retention.sqlite`).
    pub holds: Arc<HoldStore>,
    /// One run at a time (API or schedule).
    pub running: tokio::sync::Mutex<()>,
}

fn now_text() -> String {
    format_time(chrono::Utc::now())
}

fn bad_hold(e: anyhow::Error) -> ApiError {
    ApiError::bad_request("bad_hold", format!("{e:#}"))
}

fn storage(e: anyhow::Error) -> ApiError {
    ApiError::internal(format!("{e:#}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("retention task failed: {e}")))?
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateHold {
    reason: String,
    scope: HoldScope,
}

/// `POST /v1/holds` `{"reason": "…", "scope": {…}}`: 201 with the hold.
pub(super) async fn create_hold(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut req: CreateHold = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("bad_hold", format!("hold request: {e}")))?;
    // Entries hold pseudonyms: a subject (or a user resource) given in cleartext is
    // matched, stored and recorded as its pseudonym, never in cleartext.
    if let Some(subject) = &mut req.scope.subject {
        *subject = st.privacy.query_value("actor.id", subject, &|_| None);
    }
    if let Some(r) = &mut req.scope.resource {
        let rtype = r.r#type.clone();
        r.id = st.privacy.query_value("resource.id", &r.id, &|k| {
            (k == "type").then(|| rtype.clone())
        });
    }
    let st2 = st.clone();
    let hold = blocking(move || {
        st2.retention
            .holds
            .create(&req.reason, &req.scope, &caller.name, &now_text())
            .map_err(bad_hold)
    })
    .await?;
    let event = hold_event("create", &hold);
    if let Err(e) = record_system(&st, &[event]).await {
        // Unrecorded, the hold must not exist.
        let (st2, id) = (st.clone(), hold.id);
        blocking(move || st2.retention.holds.forget(id).map_err(storage)).await?;
        return Err(e.into());
    }
    Ok((StatusCode::CREATED, Json(json!({ "hold": hold }))))
}

/// `GET /v1/holds[?all=true]`: active holds (all with `all=true`).
pub(super) async fn list_holds(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let q = Params::new(q, &["all"])?;
    let all = flag(&q, "all")?;
    let holds = blocking(move || st.retention.holds.list(all).map_err(storage)).await?;
    Ok(Json(json!({ "holds": holds })))
}

/// `DELETE /v1/holds/{id}`: releases an active hold (404 if none).
pub(super) async fn release_hold(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request("bad_hold", format!("{id:?} is not a hold id")))?;
    let st2 = st.clone();
    let hold = blocking(move || {
        st2.retention
            .holds
            .release(id, &caller.name, &now_text())
            .map_err(storage)
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no active legal hold {id}")))?;
    record_system(&st, &[hold_event("release", &hold)]).await?;
    Ok(Json(json!({ "hold": hold })))
}

fn hold_event(op: &str, hold: &retention::Hold) -> Value {
    json!({
        "action": "audit.hold",
        "actor": {"id": if op == "create" { &hold.created_by } else { hold.released_by.as_ref().unwrap_or(&hold.created_by) }},
        "resource": {"type": "legal_hold", "id": hold.id.to_string()},
        "parameters": {"op": op, "hold_id": hold.id, "scope": hold.scope},
        "reason": hold.reason,
    })
}

fn flag(q: &Params, name: &str) -> Result<bool, ApiError> {
    match q.get(name) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(ApiError::bad_request(
            "bad_parameter",
            format!("{name}={v:?} must be true or false"),
        )),
    }
}

/// `POST /v1/retention/run[?dry_run=true]`: runs retention now.
pub(super) async fn run_now(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let q = Params::new(q, &["dry_run"])?;
    let dry_run = flag(&q, "dry_run")?;
    let _running = st.retention.running.try_lock().map_err(|_| {
        ApiError::new(
            StatusCode::CONFLICT,
            "retention_running",
            "a retention run is in progress; try again when it ends",
        )
    })?;
    let (report, record) = run_retention(&st, dry_run).await?;
    Ok(Json(json!({ "report": report, "record": record })))
}

/// Runs retention and, unless it is a dry run, records it: an `audit.retention` event with
/// `phase: requested` before anything is pruned (a run that cannot be recorded does not
/// start), then one with `phase: done` and the report (its seq is returned), or with
/// `phase: failed` and the error if the run stopped part-way. The caller holds `running`.
pub async fn run_retention(
    st: &Arc<AppState>,
    dry_run: bool,
) -> Result<(RunReport, Option<u64>), ApiError> {
    let now = chrono::Utc::now();
    let as_of = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let record = |parameters: Value| {
        json!({
            "action": "audit.retention",
            "actor": {"id": super::SYSTEM_PRINCIPAL, "type": "service"},
            "resource": {"type": "log", "id": st.origin},
            "parameters": parameters,
        })
    };
    let requested_seq = if dry_run {
        None
    } else {
        let r = record_system(st, &[record(json!({"phase": "requested", "as_of": as_of}))]).await?;
        r.first().map(|r| r.seq)
    };
    let st2 = st.clone();
    let report = blocking(move || {
        retention::run(
            &st2.ledger,
            &st2.index,
            &st2.retention.holds,
            &st2.retention.config,
            now,
            dry_run,
            &mut |_, _| {},
        )
        .map_err(storage)
    })
    .await;
    if dry_run {
        return Ok((report?, None));
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            let failed = record(json!({
                "phase": "failed",
                "as_of": as_of,
                "requested_seq": requested_seq,
                "error": e.message,
            }));
            if let Err(re) = record_system(st, &[failed]).await {
                tracing::error!(error = %re, "recording a failed retention run failed");
            }
            return Err(e);
        }
    };
    let event = record(json!({
        "phase": "done",
        "requested_seq": requested_seq,
        "pruned": report.pruned,
        "expired": report.expired,
        "held": report.held,
        "resumed": report.resumed,
        "by_policy": report.by_policy,
        "by_hold": report.by_hold.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
        "ranges": report.ranges,
        "ranges_truncated": report.ranges_truncated,
        "as_of": report.now,
    }));
    let receipts = record_system(st, &[event]).await?;
    Ok((report, receipts.first().map(|r| r.seq)))
}

/// Runs retention every `interval` until the server stops (a failed run is
/// logged and tried again at the next tick).
pub fn schedule(st: Arc<AppState>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let _running = st.retention.running.lock().await;
            match run_retention(&st, false).await {
                Ok((r, _)) => {
                    tracing::info!(pruned = r.pruned, held = r.held, "scheduled retention run")
                }
                Err(e) => tracing::error!(error = %e.message, "scheduled retention run failed"),
            }
        }
    });
}
