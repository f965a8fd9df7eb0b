//! `POST /v1/events`: validate, deduplicate, append, answer with receipts
//! only once the ledger made the batch durable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::{Extension, Json};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::error::{ApiError, IngestError};
use super::metrics::Reason;
use super::{
    AppState, BODY_READ_MIN_BYTES_PER_S, INGEST_REQUESTS_MAX, INGEST_REQUESTS_PER_PRINCIPAL_MAX,
};
use crate::dedup::{self, Key, Lookup, Receipt};
use crate::slots::Busy;
use auth::Principal;
use event::{
    entry_template_sealed, parse_events, split_body_items, BodyFormat, FieldError, BODY_BYTES_MAX,
};
use ledger::{AppendError, NewEntry};

/// The result of one ingest call: a receipt per event, in order.
#[derive(Debug)]
pub struct IngestOutcome {
    /// Receipts and whether each was a duplicate.
    pub receipts: Vec<(Receipt, bool)>,
}

pub use auth::tokens::SYSTEM_PRINCIPAL;

/// Appends records that mlaudit writes itself (the reserved `audit.*` namespace is
/// allowed here and only here) and returns once they are durable, with their receipts.
/// Events with an `id` are idempotent under [`SYSTEM_PRINCIPAL`] like any producer's.
pub async fn record_system(
    st: &Arc<AppState>,
    events: &[Value],
) -> Result<Vec<Receipt>, IngestError> {
    let mut body = Vec::new();
    for e in events {
        serde_json::to_writer(&mut body, e)
            .map_err(|e| IngestError::Internal(format!("serializing a system record: {e}")))?;
        body.push(b'\n');
    }
    let outcome = ingest_as(
        st.clone(),
        Bytes::from(body),
        BodyFormat::Ndjson,
        SYSTEM_PRINCIPAL.to_string(),
        true,
        None,
    )
    .await?;
    Ok(outcome.receipts.into_iter().map(|(r, _)| r).collect())
}

pub(super) async fn post_events(
    State(st): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let result = post_events_inner(&st, &principal, &headers, body)
        .await
        .map_err(ApiError::from);
    match &result {
        Ok((_, _)) => {}
        Err(e) => {
            st.metrics
                .events_rejected
                .get_or_create(&Reason {
                    reason: e.code.to_string(),
                })
                .inc();
        }
    }
    result
}

async fn post_events_inner(
    st: &Arc<AppState>,
    principal: &Principal,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), IngestError> {
    let format = body_format(headers)?;
    // Shed load before buffering the body: memory stays bounded by INGEST_REQUESTS_MAX
    // bodies whatever the number of clients, and one principal holds at most its share.
    let _slot = st
        .ingest_slots
        .try_acquire(&principal.name)
        .map_err(|busy| match busy {
            Busy::All => IngestError::Busy(format!(
                "{INGEST_REQUESTS_MAX} ingest requests are in progress; retry later"
            )),
            Busy::Principal => IngestError::Busy(format!(
                "this principal already has {INGEST_REQUESTS_PER_PRINCIPAL_MAX} ingest \
                 requests in progress (the most one principal may hold); retry later"
            )),
        })?;
    let body = read_body(headers, body, st.timeouts.body_read).await?;
    let body = decode_body(headers, body)?;
    let outcome = ingest_as(
        st.clone(),
        body,
        format,
        principal.name.clone(),
        false,
        principal.projects.clone(),
    )
    .await?;
    let duplicates = outcome.receipts.iter().filter(|(_, d)| *d).count();
    let appended = outcome.receipts.len() - duplicates;
    st.metrics
        .events_accepted
        .inc_by(outcome.receipts.len() as u64);
    st.metrics.events_duplicate.inc_by(duplicates as u64);
    st.metrics
        .batch_events
        .observe(outcome.receipts.len() as f64);
    let receipts: Vec<Value> = outcome
        .receipts
        .iter()
        .map(|(r, dup)| {
            let mut v = json!({"seq": r.seq, "leaf_hash": b64(&r.leaf_hash)});
            if *dup {
                v["duplicate"] = Value::Bool(true);
            }
            v
        })
        .collect();
    // 201 when something was appended; 200 when every event was a retry.
    let status = if appended > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"accepted": receipts.len(), "duplicates": duplicates, "receipts": receipts})),
    ))
}

/// Reads a request body of at most `BODY_BYTES_MAX` bytes under a deadline that grows with
/// what arrived: the body must be complete within `timeout` plus one second per
/// [`BODY_READ_MIN_BYTES_PER_S`] bytes received so far (a 16 MiB body at the minimum rate
/// of 64 KiB/s has 30 s + 256 s). Past it, 408 `body_timeout` and the connection is closed;
/// the caller's ingest slot is released as the handler returns.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    timeout: Duration,
) -> Result<Bytes, IngestError> {
    let too_large = || {
        IngestError::BodyTooLarge(format!(
            "the request body is over the limit of {BODY_BYTES_MAX} bytes"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length over the limit is not refused before reading: answering at once
    // closes the connection while the client is still sending, and the client then sees a
    // broken connection instead of the 413. Reading stops at the limit.
    let start = tokio::time::Instant::now();
    let mut body = body;
    // Reserved up to 1 MiB: a declared length alone does not take memory.
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(1 << 20) as usize);
    loop {
        let allowance =
            timeout + Duration::from_secs_f64(buf.len() as f64 / BODY_READ_MIN_BYTES_PER_S as f64);
        let frame = match tokio::time::timeout_at(start + allowance, body.frame()).await {
            Err(_) => {
                let waited = start.elapsed().as_secs_f64();
                return Err(IngestError::BodyTimeout(format!(
                    "the request body did not arrive in time: {} bytes in {waited:.1} s; \
                     a body may take {} s plus 1 s per {BODY_READ_MIN_BYTES_PER_S} bytes",
                    buf.len(),
                    timeout.as_secs_f64()
                )));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(IngestError::BodyRead(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > BODY_BYTES_MAX {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// JSON (object or array) or NDJSON, from `Content-Type`; anything else is 415.
fn body_format(headers: &HeaderMap) -> Result<BodyFormat, IngestError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyFormat::Json),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(BodyFormat::Ndjson),
        "" => Err(IngestError::MediaType(
            "Content-Type is missing: send application/json (an object or an array) or application/x-ndjson".into(),
        )),
        other => Err(IngestError::MediaType(format!(
            "Content-Type {other:?} is not accepted: send application/json or application/x-ndjson"
        ))),
    }
}

/// Undoes `Content-Encoding: gzip`, refusing output past `BODY_BYTES_MAX`.
fn decode_body(headers: &HeaderMap, body: Bytes) -> Result<Bytes, IngestError> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match enc.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => {
            use std::io::Read;
            let mut out = Vec::new();
            // Every member, as `gzip -d` decodes them; bytes after the last one that are not a
            // member are an error, not ignored.
            let mut dec =
                flate2::read::MultiGzDecoder::new(&body[..]).take(BODY_BYTES_MAX as u64 + 1);
            dec.read_to_end(&mut out)
                .map_err(IngestError::BadEncoding)?;
            if out.len() > BODY_BYTES_MAX {
                return Err(IngestError::BodyTooLarge(format!(
                    "the decompressed body is over the limit of {BODY_BYTES_MAX} bytes"
                )));
            }
            Ok(out.into())
        }
        other => Err(IngestError::Encoding(format!(
            "Content-Encoding {other:?} is not accepted: use gzip or none"
        ))),
    }
}

/// Ids reserved for one request. Released when dropped unless disarmed, so
/// a request abandoned at any await (client gone, task cancelled) cannot
/// leave its ids blocked until restart.
struct Reservation {
    dedup: Arc<crate::dedup::Dedup>,
    keys: Vec<Option<Key>>,
    lookups: Vec<Lookup>,
    armed: bool,
}

impl Reservation {
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.armed {
            self.dedup.release(&self.keys, &self.lookups);
        }
    }
}

/// One event ready for the ledger.
struct Prepared {
    key: Option<Key>,
    entry: Option<NewEntry>,
}

/// Validates a body and appends it atomically; returns only when the batch
/// is durable. Retried events (same principal and id) get their original receipt.
pub async fn ingest(
    st: Arc<AppState>,
    body: Bytes,
    format: BodyFormat,
    principal: String,
) -> Result<IngestOutcome, IngestError> {
    ingest_as(st, body, format, principal, false, None).await
}

/// [`ingest`]; `allow_reserved` admits the `audit.*` namespace (mlaudit's own records).
async fn ingest_as(
    st: Arc<AppState>,
    body: Bytes,
    format: BodyFormat,
    principal: String,
    allow_reserved: bool,
    projects: Option<Vec<String>>,
) -> Result<IngestOutcome, IngestError> {
    // Preparing looks ids up in SQLite and may create subject keys (durable writes): it
    // runs on the blocking pool, never on an async worker, whatever the body's size, so
    // that no request (`/healthz` included) waits behind an fsync.
    let st2 = st.clone();
    let run = move || {
        prepare(
            &st2,
            &body,
            format,
            &principal,
            allow_reserved,
            projects.as_deref(),
        )
    };
    let (prepared, mut reservation) = tokio::task::spawn_blocking(run)
        .await
        .map_err(|e| IngestError::Internal(format!("ingest task failed: {e}")))??;
    let lookups = reservation.lookups.clone();
    let new: Vec<usize> = (0..prepared.len())
        .filter(|&i| matches!(lookups[i], Lookup::New))
        .collect();
    let mut receipts: Vec<Option<(Receipt, bool)>> = lookups
        .iter()
        .map(|l| match l {
            Lookup::Duplicate(r) => Some((*r, true)),
            Lookup::New => None,
        })
        .collect();
    if !new.is_empty() {
        let mut entries = Vec::with_capacity(new.len());
        let mut new_keys = Vec::with_capacity(new.len());
        let mut prepared = prepared;
        for &i in &new {
            entries.push(prepared[i].entry.take().expect("new events have entries"));
            new_keys.push(prepared[i].key);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let dedup = st.dedup.clone();
        let started = Instant::now();
        let submitted = st.ledger.submit(entries, move |result| {
            // Runs on the ledger's writer thread, in commit order, even if
            // the client has gone away meanwhile.
            if result.is_err() {
                dedup.release_reserved(&new_keys);
            }
            if let Ok(c) = &result {
                let done = new_keys
                    .iter()
                    .zip(&c.leaf_hashes)
                    .enumerate()
                    .filter_map(|(j, (k, leaf))| {
                        k.map(|k| {
                            (
                                k,
                                Receipt {
                                    seq: c.first_seq + j as u64,
                                    leaf_hash: *leaf,
                                },
                            )
                        })
                    })
                    .collect();
                dedup.complete(done);
            }
            let _ = tx.send(result);
        });
        let committed = match submitted {
            Ok(()) => {
                // The reply callback owns the reservations now.
                reservation.disarm();
                rx.await.unwrap_or(Err(AppendError::Closed))
            }
            Err(e) => Err(e), // `reservation` releases them when dropped
        };
        let failing = matches!(
            committed,
            Err(AppendError::Failed(_) | AppendError::Poisoned(_) | AppendError::Closed)
        );
        st.appends_failing
            .store(failing, std::sync::atomic::Ordering::Relaxed);
        let committed = committed?;
        st.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        for (j, &i) in new.iter().enumerate() {
            receipts[i] = Some((
                Receipt {
                    seq: committed.first_seq + j as u64,
                    leaf_hash: committed.leaf_hashes[j],
                },
                false,
            ));
        }
    }
    Ok(IngestOutcome {
        receipts: receipts
            .into_iter()
            .map(|r| r.expect("every event answered"))
            .collect(),
    })
}

/// Refuses the whole batch (403, nothing stored) unless every event's `context.project` is
/// one of `allowed` (a token limited to projects).
fn check_projects(events: &[event::Event], allowed: &[String]) -> Result<(), IngestError> {
    let details: Vec<FieldError> = events
        .iter()
        .enumerate()
        .filter_map(|(index, e)| {
            let project = e.as_value()["context"]["project"].as_str();
            match project {
                Some(p) if allowed.iter().any(|a| a == p) => None,
                Some(p) => Some(FieldError {
                    index,
                    field: "context.project".into(),
                    message: format!("project {p:?} is outside this token's projects"),
                }),
                None => Some(FieldError {
                    index,
                    field: "context.project".into(),
                    message: "is required for a token limited to projects".into(),
                }),
            }
        })
        .collect();
    if details.is_empty() {
        return Ok(());
    }
    Err(IngestError::ProjectForbidden(details))
}

/// Parses, validates, builds entry templates and reserves ids.
fn prepare(
    st: &AppState,
    body: &[u8],
    format: BodyFormat,
    principal: &str,
    allow_reserved: bool,
    projects: Option<&[String]>,
) -> Result<(Vec<Prepared>, Reservation), IngestError> {
    let items = split_body_items(body, format, st.batch_events_max)?;
    let now = chrono::Utc::now();
    let mut events = parse_events(items, now, allow_reserved).map_err(IngestError::Invalid)?;
    if let Some(allowed) = projects {
        check_projects(&events, allowed)?;
    }
    // Ids: repeated ones refused, and the rest reserved, before the privacy step creates
    // subject keys, so that a batch refused for its ids leaves no key behind.
    let keys: Vec<Option<Key>> = events
        .iter()
        .map(|e| e.id().map(|id| dedup::key(principal, id)))
        .collect();
    let mut seen = std::collections::HashMap::new();
    let mut repeated = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        if let Some(k) = key {
            if let Some(first) = seen.insert(*k, index) {
                repeated.push(FieldError {
                    index,
                    field: "id".into(),
                    message: format!("repeats the id of item {first} in the same batch"),
                });
            }
        }
    }
    if !repeated.is_empty() {
        return Err(IngestError::DuplicateIdInBatch(repeated));
    }
    let ids: Vec<Option<dedup::IdRef<'_>>> = events
        .iter()
        .zip(&keys)
        .map(|(e, k)| {
            Some(dedup::IdRef {
                key: (*k)?,
                id: e.id()?,
            })
        })
        .collect();
    let lookups = st.dedup.reserve(principal, &ids).map_err(|e| match e {
        dedup::ReserveError::Storage(index::QueryError::Busy(why)) => IngestError::Busy(why),
        dedup::ReserveError::Storage(why) => IngestError::Store {
            what: "idempotency lookup in the index",
            why: why.to_string(),
        },
        dedup::ReserveError::Pruned(why) => IngestError::Store {
            what: "idempotency lookup of pruned ids",
            why: format!("{why:#}"),
        },
        dedup::ReserveError::IndexBehind => IngestError::Busy(format!(
            "{} stored ids wait for the index to reach them (it lags behind the log); \
             retry when it has caught up (mlaudit_index_lag_entries)",
            dedup::RECENT_IDS_MAX
        )),
        dedup::ReserveError::InFlight(f) => IngestError::IdInFlight(FieldError {
            index: f.index,
            field: "id".into(),
            message: "an earlier request with this id is still being stored".into(),
        }),
    })?;
    // Released on every return below unless ingest disarms it.
    let reservation = Reservation {
        dedup: st.dedup.clone(),
        keys: keys.clone(),
        lookups,
        armed: true,
    };
    // A receipt is never answered for an entry the ledger does not hold (issue 18.2).
    // Receipts come from the commit itself or from an entry read back from the ledger
    // (`dedup.rs`), so this check of each duplicate's leaf hash against the tiles (one
    // small read per retried event) is a second line of defence.
    // Dropping `reservation` on the error releases the new ids.
    let store = st.ledger.store();
    for (index, l) in reservation.lookups.iter().enumerate() {
        if let Lookup::Duplicate(r) = l {
            if store.leaf_hash(r.seq).ok() != Some(r.leaf_hash) {
                tracing::error!(
                    seq = r.seq,
                    ledger_size = store.size(),
                    "the idempotency store has a receipt that the ledger does not hold; \
                     refusing to answer it"
                );
                return Err(IngestError::ReceiptMismatch(FieldError {
                    index,
                    field: "id".into(),
                    message: "the stored receipt of this id does not match the ledger".into(),
                }));
            }
        }
    }
    // Privacy transforms (redaction, pseudonyms, sealing) before anything is written.
    let sealed = st
        .privacy
        .apply(&mut events)
        .map_err(|e| IngestError::Store {
            what: "privacy transforms",
            why: e.to_string(),
        })?;
    let mut prepared = Vec::with_capacity(events.len());
    let mut too_large = Vec::new();
    for (index, event) in events.iter().enumerate() {
        match entry_template_sealed(event, sealed[index].as_ref(), principal) {
            Ok(t) => prepared.push(Prepared {
                key: keys[index],
                entry: Some(NewEntry::Template {
                    head: t.head,
                    mid: t.mid,
                    tail: t.tail,
                }),
            }),
            Err(e) => too_large.push(FieldError {
                index,
                field: String::new(),
                message: e.to_string(),
            }),
        }
    }
    if !too_large.is_empty() {
        return Err(IngestError::EventTooLarge(too_large));
    }
    Ok((prepared, reservation))
}
