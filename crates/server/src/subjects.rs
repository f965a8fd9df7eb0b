//! Data subjects: `GET /v1/subjects/{id}/events` (access, GDPR Art. 15) and
//! `POST /v1/subjects/{id}/erase` (erasure by crypto-shredding, Art. 17); plus the
//! clearance check and the `audit.query` record that every cleartext view shares.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use super::error::{ApiError, RETRY_AFTER_STORAGE_S};
use super::ingest::record_system;
use super::AppState;
use auth::Principal;
use axum::Extension;
use event::parse_entry;
use privacy::contains_string;

/// Most events in one page of a subject export; `next` continues.
pub const SUBJECT_EVENTS_PAGE_MAX: usize = 1000;

fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// 403 unless the caller's role has clearance for cleartext
/// ([`privacy::may_see_cleartext`]).
pub(super) fn require_cleartext(st: &AppState, caller: &Principal) -> Result<(), ApiError> {
    if st.privacy.may_see_cleartext(Some(caller.role.as_str())) {
        return Ok(());
    }
    Err(ApiError {
        deny_reason: Some("cleartext"),
        ..ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
            "role {} may not see cleartext; roles with clearance: {:?} (privacy.cleartext_roles)",
            caller.role.as_str(),
            st.privacy.config().cleartext_roles
        ),
        )
    })
}

/// Records that `caller` saw cleartext, as an `audit.query` event, and returns once it is
/// durable: no cleartext leaves the server unrecorded. `parameters` say what was shown
/// (endpoint, seqs, subject pseudonym), never the cleartext itself.
pub(super) async fn record_cleartext_view(
    st: &Arc<AppState>,
    caller: &Principal,
    parameters: Value,
) -> Result<(), ApiError> {
    let event = json!({
        "action": "audit.query",
        "actor": {"id": caller.name, "roles": [caller.role.as_str()]},
        "parameters": parameters,
    });
    record_system(st, &[event])
        .await
        .map(|_| ())
        .map_err(ApiError::from)
}

/// Query parameters of `GET /v1/subjects/{id}/events`.
const SUBJECT_PARAMS: &[&str] = &["from_seq", "limit"];

/// `GET /v1/subjects/{id}/events?from_seq=&limit=`: every event in which the subject (a
/// cleartext identifier or its pseudonym) appears in a pseudonymized field, oldest first,
/// with the subject's own sealed values restored while its key exists (other people's
/// stay pseudonyms). Recorded as `audit.query`.
///
/// It scans the ledger from `from_seq` (entry bytes are searched for the pseudonym before
/// anything is parsed), so its cost grows with the log; subject requests are rare.
pub(super) async fn subject_events(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require_cleartext(&st, &caller)?;
    if let Some(bad) = q.keys().find(|k| !SUBJECT_PARAMS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "unknown_parameter",
            format!("unknown query parameter {bad:?}; accepted: {SUBJECT_PARAMS:?}"),
        ));
    }
    let num = |name: &str| -> Result<Option<u64>, ApiError> {
        q.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(
                        "bad_parameter",
                        format!("{name}={v:?} is not a non-negative integer"),
                    )
                })
            })
            .transpose()
    };
    let from_seq = num("from_seq")?.unwrap_or(0);
    let limit = num("limit")?
        .map(|n| n.clamp(1, SUBJECT_EVENTS_PAGE_MAX as u64) as usize)
        .unwrap_or(SUBJECT_EVENTS_PAGE_MAX);
    let subject = st.privacy.subject_id(&id);
    let st2 = st.clone();
    let s2 = subject.clone();
    let (events, next, key_present) =
        tokio::task::spawn_blocking(move || scan_subject(&st2, &s2, from_seq, limit))
            .await
            .map_err(|e| ApiError::internal(format!("subject scan failed: {e}")))??;
    record_cleartext_view(
        &st,
        &caller,
        json!({
            "endpoint": "GET /v1/subjects/{id}/events",
            "subject": subject,
            "seqs": events.iter().map(|e| e["seq"].clone()).collect::<Vec<_>>(),
        }),
    )
    .await?;
    Ok(Json(json!({
        "subject": subject,
        "key": if key_present { "present" } else { "erased" },
        "events": events,
        "next": next,
    })))
}

/// Why a scan stopped early.
enum ScanStop {
    Full(u64),
    Failed(ApiError),
}

impl From<ledger::store::ReadError> for ScanStop {
    fn from(e: ledger::store::ReadError) -> Self {
        ScanStop::Failed(e.into())
    }
}

type Scan = (Vec<Value>, Option<u64>, bool);

fn scan_subject(st: &AppState, subject: &str, from: u64, limit: usize) -> Result<Scan, ApiError> {
    let key_present = st
        .privacy
        .has_subject_key(subject)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let needle = subject.as_bytes();
    let mut out = Vec::new();
    let result =
        st.ledger
            .store()
            .for_each_bundle(from, |first, entries| -> Result<(), ScanStop> {
                for (i, raw) in entries.iter().enumerate() {
                    let seq = first + i as u64;
                    if !raw.windows(needle.len()).any(|w| w == needle) {
                        continue;
                    }
                    let e = parse_entry(raw).map_err(|e| {
                        ScanStop::Failed(ApiError::internal(format!("entry {seq}: {e}")))
                    })?;
                    let sealed_for = e.sealed.as_ref().is_some_and(|s| s.contains_key(subject));
                    if !sealed_for && !contains_string(&e.event, subject) {
                        continue;
                    }
                    if out.len() == limit {
                        return Err(ScanStop::Full(seq));
                    }
                    let mut event = e.event;
                    st.privacy
                        .unseal(&mut event, e.sealed.as_ref(), Some(subject))
                        .map_err(|e| ScanStop::Failed(ApiError::internal(e.to_string())))?;
                    out.push(json!({
                        "seq": seq,
                        "recorded_at": e.recorded_at,
                        "leaf_hash": b64(&tlog::leaf_hash(raw)),
                        "event": event,
                    }));
                }
                Ok(())
            });
    match result {
        Ok(_) => Ok((out, None, key_present)),
        Err(ScanStop::Full(next)) => Ok((out, Some(next), key_present)),
        Err(ScanStop::Failed(e)) => Err(e),
    }
}

/// `POST /v1/subjects/{id}/erase`: records `audit.erase` with `phase: requested`, destroys
/// the subject's key, then records `audit.erase` with `phase: done` (both with the
/// pseudonym only). An irreversible act is never done unrecorded: if the request cannot be
/// recorded, nothing is erased; if the key is destroyed and the second record fails, the
/// first one stands in the log and the answer is an error saying so. Afterwards no
/// cleartext of the subject can be recovered from the data directory; entries,
/// checkpoints and proofs are untouched.
pub(super) async fn erase(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_cleartext(&st, &caller)?;
    let subject = st.privacy.subject_id(&id);
    let record = |phase: &str, parameters: Value| {
        let mut p = json!({ "phase": phase });
        if let (Value::Object(p), Value::Object(more)) = (&mut p, parameters) {
            p.extend(more);
        }
        json!({
            "action": "audit.erase",
            "actor": {"id": caller.name, "roles": [caller.role.as_str()]},
            "resource": {"type": "subject", "id": subject},
            "parameters": p,
        })
    };
    let requested = record_system(&st, &[record("requested", json!({}))]).await?;
    let requested_seq = requested
        .first()
        .ok_or_else(|| ApiError::internal("no receipt for the audit.erase request record"))?
        .seq;
    let privacy = st.privacy.clone();
    let s2 = subject.clone();
    let destroyed = tokio::task::spawn_blocking(move || privacy.erase(&s2))
        .await
        .map_err(|e| ApiError::internal(format!("erase task failed: {e}")))?
        .map_err(|e| {
            ApiError::unavailable("storage_failure", e.to_string(), RETRY_AFTER_STORAGE_S)
        })?;
    let done = record(
        "done",
        json!({"key_destroyed": destroyed, "requested_seq": requested_seq}),
    );
    let receipts = record_system(&st, &[done]).await.map_err(|e| {
        ApiError::internal(format!(
            "the key was {}, but recording that failed ({e}); the request is recorded at \
             seq {requested_seq}",
            if destroyed {
                "destroyed"
            } else {
                "already gone"
            }
        ))
    })?;
    let r = receipts
        .first()
        .ok_or_else(|| ApiError::internal("no receipt for the audit.erase record"))?;
    Ok(Json(json!({
        "subject": subject,
        "key_destroyed": destroyed,
        "requested_seq": requested_seq,
        "receipt": {"seq": r.seq, "leaf_hash": b64(&r.leaf_hash)},
    })))
}
