//! `/v1/tokens` (admin): create, list and revoke API tokens. Creation and revocation are
//! recorded as `audit.token` events, durable before the answer.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{ApiError, RETRY_AFTER_STORAGE_S};
use super::{record_system, AppState};
use auth::tokens::{parse_lifetime_ms, NewToken};
use auth::{Principal, Role};

/// How often last-use times are written to the token store.
pub const LAST_USED_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Body of `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Role name.
    pub role: String,
    /// Unique name (default `<role>-<id>`).
    pub name: Option<String>,
    /// Projects the token is limited to.
    pub projects: Option<Vec<String>>,
    /// Lifetime, e.g. `90d`.
    pub expires_in: Option<String>,
}

pub(super) async fn list(State(st): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"tokens": st.tokens.list()}))
}

pub(super) async fn create(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    body: Result<Json<CreateRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad_request("bad_body", e.body_text()))?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad_request(
            "bad_role",
            format!(
                "unknown role {:?}; expected one of producer, auditor, privacy_officer, admin",
                req.role
            ),
        )
    })?;
    let expires_at_ms = req
        .expires_in
        .as_deref()
        .map(parse_lifetime_ms)
        .transpose()
        .map_err(|e| ApiError::bad_request("bad_expiry", format!("{e:#}")))?
        .map(|ms| st.clock.now_ms() + ms);
    let new = NewToken {
        name: req.name,
        role,
        projects: req.projects,
        expires_at_ms,
    };
    let store = st.tokens.clone();
    let (token, info) = tokio::task::spawn_blocking(move || store.create(new))
        .await
        .map_err(|e| ApiError::internal(format!("token task failed: {e}")))?
        .map_err(|e| {
            // A request the store refuses is the caller's to fix; a store that cannot write
            // (a full disk) is ours, and temporary.
            let storage = e
                .chain()
                .any(|c| c.is::<rusqlite::Error>() || c.is::<std::io::Error>());
            if storage {
                ApiError::unavailable("storage_failure", format!("{e:#}"), RETRY_AFTER_STORAGE_S)
            } else {
                ApiError::bad_request("bad_token_request", format!("{e:#}"))
            }
        })?;
    record_system(&st, &[info.audit_record("create", &p.name)]).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "info": info})),
    ))
}

pub(super) async fn revoke(
    State(st): State<Arc<AppState>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = st.tokens.clone();
    let id2 = id.clone();
    let info = tokio::task::spawn_blocking(move || store.revoke(&id2))
        .await
        .map_err(|e| ApiError::internal(format!("token task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("revoking: {e:#}")))?
        .ok_or_else(|| ApiError::not_found(format!("no token with id or name {id:?}")))?;
    record_system(&st, &[info.audit_record("revoke", &p.name)]).await?;
    Ok(Json(json!({"revoked": info})))
}

/// Writes last-use times every [`LAST_USED_FLUSH_INTERVAL`], and appends the `audit.token`
/// records of changes made offline (`mlaudit token … --data-dir`) while the server was
/// stopped.
pub(super) fn start_last_used_flusher(st: &Arc<AppState>) {
    let weak = Arc::downgrade(st);
    tokio::spawn(async move {
        if let Some(st) = weak.upgrade() {
            let store = st.tokens.clone();
            match tokio::task::spawn_blocking(move || store.pending_records()).await {
                Ok(Ok(records)) if !records.is_empty() => {
                    let events: Vec<Value> = records.iter().map(|(_, v)| v.clone()).collect();
                    match record_system(&st, &events).await {
                        Ok(_) => {
                            let store = st.tokens.clone();
                            let ids: Vec<i64> = records.iter().map(|(id, _)| *id).collect();
                            let _ = tokio::task::spawn_blocking(move || store.clear_pending(&ids))
                                .await;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "recording offline token changes failed")
                        }
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %format!("{e:#}"), "reading offline token changes failed")
                }
                Err(e) => tracing::error!(error = %e, "token task failed"),
            }
        }
        let mut tick = tokio::time::interval(LAST_USED_FLUSH_INTERVAL);
        loop {
            tick.tick().await;
            let Some(st) = weak.upgrade() else { return };
            let store = st.tokens.clone();
            drop(st);
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || store.flush_last_used()).await {
                tracing::warn!(error = %format!("{e:#}"), "writing token last-use times failed");
            }
        }
    });
}
