//! Read endpoints: the C2SP tlog-tiles API under `/log/`, stored entries,
//! proofs, info, schema, health and metrics.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use tlog::{TileKind, TileRef};

use super::error::ApiError;
use super::guard::ResultCount;
use super::subjects::{record_cleartext_view, require_cleartext};
use super::AppState;
use auth::Principal;
use event::{event_schema, parse_entry};
use index::{Filter, HistoryQuery, Hit, Order, Page, QueryError};
use privacy::Privacy;

pub(super) fn b64(h: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(h)
}

/// Runs a blocking read (file I/O, hashing) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?
}

pub(super) async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    if let Some(why) = st.verification.failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the log on disk does not verify against its signed checkpoint: {why}\n\
                 it was altered or damaged after it was written; keep the data directory as \
                 it is for investigation, and restore the ledger from a backup\n"
            ),
        )
            .into_response();
    }
    if st.ledger.poisoned().is_none()
        && st
            .appends_failing
            .load(std::sync::atomic::Ordering::Relaxed)
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the latest ledger append failed (is the disk full?): ingest and recorded reads \
             are refused until an append succeeds again. Free disk space; the server resumes \
             by itself, no restart is needed.\n",
        )
            .into_response();
    }
    match st.ledger.poisoned() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "ledger writer stopped: {why}\n\
                 ingest and recorded reads are refused. Every acknowledged entry is durable; \
                 fix the cause (free disk space), then restart mlaudit: recovery checks the \
                 ledger and signs a checkpoint over every acknowledged entry.\n"
            ),
        )
            .into_response(),
    }
}

pub(super) async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let m = &st.metrics;
    let store = st.ledger.store();
    m.tree_size.set(store.size() as i64);
    m.queue_depth.set(st.ledger.queue_depth() as i64);
    m.index_lag_entries.set(st.indexer.lag() as i64);
    m.records_lost.set(st.recorder.lost() as i64);
    if let Some(cp) = store.checkpoint() {
        let age = cp.published_at.elapsed().unwrap_or_default().as_secs_f64();
        m.checkpoint_age_seconds.set(age);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
        .into_response()
}

pub(super) async fn info(State(st): State<Arc<AppState>>) -> Json<Value> {
    let store = st.ledger.store();
    let cp = store.checkpoint();
    Json(json!({
        "origin": st.origin,
        "vkey": st.vkey,
        "size": store.size(),
        "checkpoint_size": cp.map(|c| c.checkpoint.size),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

pub(super) async fn schema() -> Json<Value> {
    Json(event_schema())
}

pub(super) async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint; see docs/api.md")
}

pub(super) async fn checkpoint(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let cp = st
        .ledger
        .store()
        .checkpoint()
        .ok_or_else(|| ApiError::not_found("no checkpoint has been published yet"))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        cp.note.clone(),
    )
        .into_response())
}

/// `/log/tile/<L>/<N>[.p/<W>]` and `/log/tile/entries/<N>[.p/<W>]`.
pub(super) async fn tile(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let t = TileRef::parse(&path)
        .map_err(|e| ApiError::not_found(format!("/log/{path} is not a tile path: {e}")))?;
    let store = st.ledger.store().clone();
    let entries = matches!(t.kind, TileKind::Entries).then_some(t.width);
    let bytes = blocking(move || {
        Ok(match t.kind {
            TileKind::Hash(level) => store.tile(level, t.index, t.width)?,
            TileKind::Entries => store.bundle(t.index, t.width)?,
        })
    })
    .await?;
    // Tiles never change once written: full and partial ones alike.
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        Body::from(bytes),
    )
        .into_response();
    if let Some(width) = entries {
        resp.extensions_mut().insert(ResultCount(width));
    }
    Ok(resp)
}

/// `/log/kept/<N>[.p/<W>]`: the entries bundle `<N>` still stores, with their positions
/// (`ledger::verify::encode_kept_entries`). Unlike the C2SP bundle, which answers 410 as a
/// whole once retention pruned one of its entries, this answers the kept ones, so that
/// `verify --url` re-hashes them and counts as pruned exactly what was pruned. Not
/// immutable: a later retention run can prune more of the bundle.
pub(super) async fn kept(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let t = TileRef::parse(&format!("tile/entries/{path}"))
        .map_err(|e| ApiError::not_found(format!("/log/kept/{path} is not a bundle path: {e}")))?;
    let store = st.ledger.store().clone();
    let (bytes, kept) = blocking(move || {
        let slots = store.slots(t.index, t.width)?;
        let kept = slots
            .iter()
            .filter(|s| matches!(s, ledger::store::Slot::Entry(_)))
            .count() as u64;
        Ok((ledger::verify::encode_kept_entries(&slots), kept))
    })
    .await?;
    let mut resp = (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from(bytes),
    )
        .into_response();
    resp.extensions_mut().insert(ResultCount(kept));
    Ok(resp)
}

/// `GET /v1/events/{seq}`: the stored entry, as JSON or (`?format=raw`) its exact bytes.
pub(super) async fn get_event(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Path(seq): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let q = Params::new(q, &["format", "cleartext"])?;
    let cleartext = q.cleartext(&st, &caller)?;
    let seq: u64 = seq.parse().map_err(|_| {
        ApiError::bad_request("bad_seq", format!("{seq:?} is not a seq (a number)"))
    })?;
    let raw = match q.get("format") {
        None | Some("json") => false,
        Some("raw") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_format",
                format!("format {other:?} is not one of json, raw"),
            ))
        }
    };
    let store = st.ledger.store().clone();
    let bytes = blocking(move || Ok(store.entry(seq)?)).await?;
    let leaf = tlog::leaf_hash(&bytes);
    let mut e = parse_entry(&bytes).map_err(|e| ApiError::internal(format!("entry {seq}: {e}")))?;
    if !caller.may_see_project(e.event["context"]["project"].as_str()) {
        return Err(out_of_scope());
    }
    if raw {
        return Ok((
            [(header::CONTENT_TYPE, "application/json")],
            Extension(ResultCount(1)),
            Body::from(bytes),
        )
            .into_response());
    }
    if cleartext {
        st.privacy
            .unseal(&mut e.event, e.sealed.as_ref(), None)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        record_cleartext_view(
            &st,
            &caller,
            json!({"endpoint": "GET /v1/events/{seq}", "seqs": [seq]}),
        )
        .await?;
    }
    Ok((
        Extension(ResultCount(1)),
        Json(json!({
            "seq": e.seq,
            "recorded_at": e.recorded_at,
            "leaf_hash": b64(&leaf),
            "source": {"principal": e.principal},
            "event": e.event,
        })),
    )
        .into_response())
}

/// 403 for a read outside the token's projects (recorded as `auth.denied` by the guard).
fn out_of_scope() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "project_forbidden",
        "this token is limited to other projects",
    )
}

/// `GET /v1/proof/inclusion?seq=&size=` (size defaults to the latest checkpoint's).
pub(super) async fn inclusion(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let q = Params::new(q, &["seq", "size"])?;
    let q_seq = q
        .u64("seq")?
        .ok_or_else(|| ApiError::bad_request("bad_parameter", "seq is required"))?;
    let store = st.ledger.store().clone();
    let size = match q.u64("size")? {
        Some(s) => s,
        None => store
            .checkpoint()
            .map(|c| c.checkpoint.size)
            .ok_or_else(|| ApiError::not_found("no checkpoint yet"))?,
    };
    if q_seq >= size {
        return Err(ApiError::bad_request(
            "bad_proof_request",
            format!("seq {q_seq} is not in a tree of size {size}"),
        ));
    }
    let seq = q_seq;
    let (leaf, proof) = blocking(move || {
        let leaf = store.leaf_hash(seq)?;
        let proof = store.inclusion_proof(seq, size)?;
        Ok((leaf, proof))
    })
    .await?;
    Ok((
        Extension(ResultCount(1)),
        Json(json!({
            "seq": seq,
            "size": size,
            "leaf_hash": b64(&leaf),
            "proof": proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
        })),
    ))
}

/// `GET /v1/proof/consistency?from=&to=` (to defaults to the latest checkpoint's size).
pub(super) async fn consistency(
    State(st): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let q = Params::new(q, &["from", "to"])?;
    let from = q
        .u64("from")?
        .ok_or_else(|| ApiError::bad_request("bad_parameter", "from is required"))?;
    let store = st.ledger.store().clone();
    let to = match q.u64("to")? {
        Some(s) => s,
        None => store
            .checkpoint()
            .map(|c| c.checkpoint.size)
            .ok_or_else(|| ApiError::not_found("no checkpoint yet"))?,
    };
    if from == 0 || from > to {
        return Err(ApiError::bad_request(
            "bad_proof_request",
            format!("need 0 < from <= to, got from={from} to={to}"),
        ));
    }
    let proof = blocking(move || Ok(store.consistency_proof(from, to)?)).await?;
    Ok((
        Extension(ResultCount(1)),
        Json(json!({
            "from": from,
            "to": to,
            "proof": proof.iter().map(|h| b64(h)).collect::<Vec<_>>(),
        })),
    ))
}

/// Parameters of `GET /v1/events` (DESIGN section 9).
pub(super) const QUERY_PARAMS: &[&str] = &[
    "action",
    "category",
    "actor",
    "resource_type",
    "resource_id",
    "resource_version",
    "outcome",
    "project",
    "environment",
    "tag",
    "id",
    "related",
    "related_version",
    "related_relation",
    "from",
    "to",
    "recorded_from",
    "recorded_to",
    "q",
    "limit",
    "cursor",
    "order",
    "cleartext",
];

/// Builds the index filter of `GET /v1/events` from checked parameters, limited to the
/// caller's projects. Filters on pseudonymized fields given in cleartext are turned into
/// pseudonyms here.
pub(super) fn query_filter(
    q: &Params,
    privacy: &Privacy,
    caller: &Principal,
) -> Result<Filter, ApiError> {
    if let Some(project) = q.get("project") {
        if !caller.may_see_project(Some(project)) {
            return Err(out_of_scope());
        }
    }
    let s = |name: &str| q.get(name).map(str::to_string);
    let rtype = s("resource_type");
    let (actor, actor_alt) = match s("actor") {
        Some(a) => {
            let (a, alt) = privacy.query_values("actor.id", &a, &|_| None);
            (Some(a), alt)
        }
        None => (None, None),
    };
    let resource_id = s("resource_id").map(|id| {
        privacy.query_value("resource.id", &id, &|k| {
            (k == "type").then(|| rtype.clone()).flatten()
        })
    });
    let order = match q.get("order") {
        None | Some("desc") => Order::Desc,
        Some("asc") => Order::Asc,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                format!("order={other:?} is not one of asc, desc"),
            ))
        }
    };
    let related = q
        .get("related")
        .map(Filter::parse_related)
        .transpose()
        .map_err(query_error)?
        .map(|(t, id)| {
            let id =
                privacy.query_value("related[].id", &id, &|k| (k == "type").then(|| t.clone()));
            (t, id)
        });
    if related.is_none()
        && (q.get("related_version").is_some() || q.get("related_relation").is_some())
    {
        return Err(ApiError::bad_request(
            "bad_parameter",
            "related_version and related_relation narrow a related=TYPE:ID filter; give it too",
        ));
    }
    Ok(Filter {
        from: q.time_ms("from")?,
        to: q.time_ms("to")?,
        recorded_from: q.time_ms("recorded_from")?,
        recorded_to: q.time_ms("recorded_to")?,
        action: s("action"),
        category: s("category"),
        actor,
        actor_alt,
        event_id: s("id"),
        resource_type: rtype,
        resource_id,
        resource_version: s("resource_version"),
        outcome: s("outcome"),
        project: s("project"),
        environment: s("environment"),
        tag: s("tag"),
        related,
        related_version: s("related_version"),
        related_relation: s("related_relation"),
        q: s("q"),
        limit: q.u64("limit")?.map(|n| n.min(usize::MAX as u64) as usize),
        order,
        cursor: s("cursor"),
        projects_allowed: caller.projects.clone(),
    })
}

pub(super) fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Invalid(m) => ApiError::bad_request("bad_parameter", m),
        QueryError::Storage(m) => ApiError::internal(m),
        QueryError::Busy(m) => ApiError::unavailable("busy", m, crate::error::RETRY_AFTER_BUSY_S),
        QueryError::TimedOut(m) => {
            ApiError::unavailable("query_timeout", m, crate::error::RETRY_AFTER_BUSY_S)
        }
    }
}

/// `GET /v1/events?…`: events matching a filter, from the query index, newest first by
/// default, with a cursor for the next page.
pub(super) async fn query_events(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(Extension<ResultCount>, Json<PageOut>), ApiError> {
    let q = Params::new(q, QUERY_PARAMS)?;
    let cleartext = q.cleartext(&st, &caller)?;
    let filter = query_filter(&q, &st.privacy, &caller)?;
    // What was searched, for the audit.query record: identifiers as the pseudonyms used.
    let searched: serde_json::Map<String, Value> =
        q.0.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "cursor" | "cleartext"))
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "actor" => filter.actor.clone().unwrap_or_default(),
                    "resource_id" => filter.resource_id.clone().unwrap_or_default(),
                    "related" => filter
                        .related
                        .as_ref()
                        .map(|(t, id)| format!("{t}:{id}"))
                        .unwrap_or_default(),
                    _ => v.clone(),
                };
                (k.clone(), Value::String(v))
            })
            .collect();
    let index = st.index.clone();
    let store = st.ledger.store().clone();
    let page = blocking(move || index.query(&store, &filter).map_err(query_error)).await?;
    let privacy = cleartext.then_some(&*st.privacy);
    let n = page.hits.len() as u64;
    let (body, seqs) = page_json(page, privacy)?;
    if cleartext {
        let params = json!({"endpoint": "GET /v1/events", "filter": searched, "seqs": seqs});
        record_cleartext_view(&st, &caller, params).await?;
    }
    Ok((Extension(ResultCount(n)), Json(body)))
}

/// A result as answered: `{"seq","recorded_at","leaf_hash","event"}`, the event passed
/// through as stored (or with its sealed values restored, for a cleartext view).
#[derive(serde::Serialize)]
pub(super) struct HitOut {
    seq: u64,
    recorded_at: String,
    leaf_hash: String,
    event: Box<RawValue>,
}

impl HitOut {
    /// `h` as answered; with `cleartext`, sealed values whose subject key exists are restored.
    pub(super) fn new(h: Hit, cleartext: Option<&Privacy>) -> Result<HitOut, ApiError> {
        let event = match cleartext {
            Some(p) if h.sealed.is_some() => {
                let mut event = h.event_value();
                p.unseal(&mut event, h.sealed_map().as_ref(), None)
                    .map_err(|e| ApiError::internal(format!("entry {}: {e}", h.seq)))?;
                serde_json::value::to_raw_value(&event).expect("a JSON value serializes")
            }
            _ => h.event,
        };
        Ok(HitOut::stored(h.seq, h.recorded_at, &h.leaf_hash, event))
    }

    /// A result whose event is shown as stored.
    pub(super) fn stored(
        seq: u64,
        recorded_at: String,
        leaf_hash: &tlog::Hash,
        event: Box<RawValue>,
    ) -> HitOut {
        HitOut {
            seq,
            recorded_at,
            leaf_hash: b64(leaf_hash),
            event,
        }
    }
}

/// A page of results as answered: `{"events": […], "next": cursor or null}`.
#[derive(serde::Serialize)]
pub(super) struct PageOut {
    events: Vec<HitOut>,
    next: Option<String>,
}

/// A page of results as answered, and its seqs. With `cleartext`, sealed values whose
/// subject key exists are restored.
fn page_json(page: Page, cleartext: Option<&Privacy>) -> Result<(PageOut, Vec<u64>), ApiError> {
    let seqs = page.hits.iter().map(|h| h.seq).collect();
    let events = page
        .hits
        .into_iter()
        .map(|h| HitOut::new(h, cleartext))
        .collect::<Result<_, _>>()?;
    let next = if page.more { page.next_cursor } else { None };
    Ok((PageOut { events, next }, seqs))
}

/// Parameters of `GET /v1/resources/{type}/{id}`: the timeline's paging.
const RESOURCE_PARAMS: &[&str] = &["limit", "cursor", "order", "cleartext"];

/// A timeline row of `GET /v1/resources/{type}/{id}`: a result as in `GET /v1/events`,
/// plus how the event names the resource: `role` `subject` (its `resource`) or `related`,
/// and the `relation` of each of its `related` links to it.
#[derive(serde::Serialize)]
struct HistoryHitOut {
    seq: u64,
    recorded_at: String,
    leaf_hash: String,
    role: &'static str,
    relations: Vec<Option<String>>,
    event: Box<RawValue>,
}

/// `GET /v1/resources/{type}/{id}`: the resource's summary and its timeline (the events
/// that name it as their `resource` or in `related`, oldest first by default, paged like
/// `GET /v1/events`).
pub(super) async fn resource(
    State(st): State<Arc<AppState>>,
    Extension(caller): Extension<Principal>,
    Path((rtype, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(Extension<ResultCount>, Json<Value>), ApiError> {
    let q = Params::new(q, RESOURCE_PARAMS)?;
    let cleartext = q.cleartext(&st, &caller)?;
    // A user given in cleartext is looked up by its pseudonym, and answered as such.
    let id = st.privacy.query_value("resource.id", &id, &|k| {
        (k == "type").then(|| rtype.clone())
    });
    let order = match q.get("order") {
        None | Some("asc") => Order::Asc,
        Some("desc") => Order::Desc,
        Some(other) => {
            return Err(ApiError::bad_request(
                "bad_parameter",
                format!("order={other:?} is not one of asc, desc"),
            ))
        }
    };
    let hq = HistoryQuery {
        rtype: rtype.clone(),
        id: id.clone(),
        limit: q.u64("limit")?.map(|n| n.min(usize::MAX as u64) as usize),
        order,
        cursor: q.get("cursor").map(str::to_string),
        projects: caller.projects.clone(),
    };
    let scope = caller.projects.clone();
    let index = st.index.clone();
    let store = st.ledger.store().clone();
    let (t, i) = (rtype.clone(), id.clone());
    let (summary, page) = blocking(move || {
        let Some(summary) = index
            .resource_summary_in(&t, &i, scope.as_deref())
            .map_err(query_error)?
        else {
            return Ok((None, None));
        };
        let page = index.history(&store, &hq).map_err(query_error)?;
        Ok((Some(summary), Some(page)))
    })
    .await?;
    let (Some(s), Some(page)) = (summary, page) else {
        return Err(ApiError::not_found(format!(
            "no event names {rtype}:{id}, as its resource or in related (or the index has \
             not reached it yet)"
        )));
    };
    let n = page.hits.len() as u64;
    let privacy = cleartext.then_some(&*st.privacy);
    let mut seqs = Vec::with_capacity(page.hits.len());
    let mut events = Vec::with_capacity(page.hits.len());
    for h in page.hits {
        seqs.push(h.hit.seq);
        let out = HitOut::new(h.hit, privacy)?;
        events.push(HistoryHitOut {
            seq: out.seq,
            recorded_at: out.recorded_at,
            leaf_hash: out.leaf_hash,
            role: if h.appears.subject {
                "subject"
            } else {
                "related"
            },
            relations: h.appears.relations,
            event: out.event,
        });
    }
    let next = if page.more { page.next_cursor } else { None };
    if cleartext {
        let params = json!({"endpoint": "GET /v1/resources/{type}/{id}", "seqs": seqs});
        record_cleartext_view(&st, &caller, params).await?;
    }
    Ok((
        Extension(ResultCount(n)),
        Json(json!({
        "type": rtype,
        "id": id,
        "summary": {
            "first_seen": s.first_seen,
            "last_seen": s.last_seen,
            "events": s.events,
            "as_subject": s.as_subject,
            "as_related": s.as_related,
            "versions": s.versions,
            "counts_by_action": s.counts_by_action,
            "actors": {"count": s.actor_count, "ids": s.actors},
        },
        "timeline": {"events": events, "next": next},
        })),
    ))
}

/// Query parameters, checked: unknown names and malformed values are 400s
/// with a message that names them.
pub(super) struct Params(HashMap<String, String>);

impl Params {
    pub(super) fn new(map: HashMap<String, String>, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        unknown.sort_unstable();
        if !unknown.is_empty() {
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!("unknown query parameter(s) {unknown:?}; accepted: {allowed:?}"),
            ));
        }
        Ok(Params(map))
    }
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
    /// `cleartext=true|false` (default false); true needs clearance.
    fn cleartext(&self, st: &AppState, caller: &Principal) -> Result<bool, ApiError> {
        match self.get("cleartext") {
            None | Some("false") => Ok(false),
            Some("true") => require_cleartext(st, caller).map(|()| true),
            Some(other) => Err(ApiError::bad_request(
                "bad_parameter",
                format!("cleartext={other:?} is not true or false"),
            )),
        }
    }
    /// An RFC 3339 time, as milliseconds since the Unix epoch.
    pub(super) fn time_ms(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .map(|t| t.timestamp_millis())
                    .map_err(|e| {
                        ApiError::bad_request(
                            "bad_parameter",
                            format!("{name}={v:?} is not an RFC 3339 time ({e}), e.g. 2026-01-31T12:00:00Z"),
                        )
                    })
            })
            .transpose()
    }
    pub(super) fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::bad_request(
                        "bad_parameter",
                        format!("{name}={v:?} is not a non-negative integer"),
                    )
                })
            })
            .transpose()
    }
}
