//! The auth layer: every request passes here before any handler.
//!
//! 1. Find the request's row in [`auth::ROUTES`] (an unlisted endpoint needs admin).
//! 2. A source over its failed-authentication budget is answered 429 + Retry-After.
//! 3. Authenticate the bearer token (API token or OIDC JWT) → 401 if it fails.
//! 4. Check the role and whether a project-limited token may call the endpoint → 403.
//! 5. Put the [`Principal`] into the request's extensions and run the handler.
//! 6. A 403 from the handler (project scope) is a denial too; a successful read of the
//!    log is queued as an `audit.query` record.
//!
//! Denials are queued as `auth.denied` records without waiting, at most
//! `denied_events_max` per source and window; the number left out is recorded in the
//! source's next recorded denial.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::error::{ApiError, DenyReason, RETRY_AFTER_META_AUDIT_S};
use super::AppState;
use crate::config::AuthConfig;
use auth::tokens::Refusal;
use auth::{is_log_route, route_for, Access, Principal};

/// Sources tracked at once by the limits; past it, sources whose window is over are
/// forgotten, and if that is not enough, all of them (the limits restart).
pub const SOURCES_MAX: usize = 10_000;
/// Longest query value copied into an `audit.query` record.
pub const FILTER_VALUE_CHARS_MAX: usize = 256;
/// The routes whose reads are recorded per principal and window, not one by one (entry
/// bundles and the kept entries of pruned ones: a `verify --url` reads every bundle).
const BULK_ROUTES: &[&str] = &["/log/tile/entries/{*rest}", "/log/kept/{*rest}"];

/// Longest path copied into an `auth.denied` record.
pub const PATH_CHARS_MAX: usize = 512;

/// The number of results of a read, set by handlers as a response extension so that its
/// `audit.query` record can say it.
#[derive(Debug, Clone, Copy)]
pub struct ResultCount(pub u64);

#[derive(Debug, Default)]
struct Source {
    window_start: Option<Instant>,
    failures: u32,
    recorded: u32,
    suppressed: u64,
}

/// Per-source counters of failed authentications and recorded denials.
#[derive(Debug)]
pub struct Limits {
    cfg: AuthConfig,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

/// What to do with a denial.
enum Record {
    Yes { suppressed: u64 },
    No,
}

impl Limits {
    /// Limits with `cfg`'s budgets.
    pub fn new(cfg: AuthConfig) -> Limits {
        Limits {
            cfg,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// Whether access control opens `/log/…` to everyone.
    pub fn public_log(&self) -> bool {
        self.cfg.public_log
    }

    /// Whether reads are recorded as `audit.query` events.
    pub fn meta_audit(&self) -> bool {
        self.cfg.meta_audit
    }

    fn with_source<R>(&self, ip: IpAddr, now: Instant, f: impl FnOnce(&mut Source) -> R) -> R {
        let window = self.cfg.window;
        let mut sources = self.sources.lock().unwrap();
        if sources.len() >= SOURCES_MAX && !sources.contains_key(&ip) {
            sources.retain(|_, s| s.window_start.is_some_and(|t| now - t < window));
            if sources.len() >= SOURCES_MAX {
                sources.clear();
            }
        }
        let s = sources.entry(ip).or_default();
        let current = matches!(s.window_start, Some(t) if now - t < window);
        if !current {
            s.window_start = Some(now);
            s.failures = 0;
            s.recorded = 0;
        }
        f(s)
    }

    /// Seconds until the source may try again, if it is over its failure budget.
    fn throttled(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let window = self.cfg.window;
        let max = self.cfg.failures_max;
        self.with_source(ip, now, |s| {
            (s.failures >= max).then(|| {
                let left = window.saturating_sub(now - s.window_start.unwrap_or(now));
                left.as_secs_f64().ceil().max(1.0) as u64
            })
        })
    }

    fn failed(&self, ip: IpAddr, now: Instant) {
        self.with_source(ip, now, |s| s.failures = s.failures.saturating_add(1));
    }

    fn should_record(&self, ip: IpAddr, now: Instant) -> Record {
        let max = self.cfg.denied_events_max;
        self.with_source(ip, now, |s| {
            if s.recorded < max {
                s.recorded += 1;
                Record::Yes {
                    suppressed: std::mem::take(&mut s.suppressed),
                }
            } else {
                s.suppressed += 1;
                Record::No
            }
        })
    }
}

/// The middleware; installed with `axum::middleware::from_fn_with_state`.
pub(super) async fn guard(
    State(st): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    // A query string that does not decode to UTF-8 would be refused by the handler's query
    // extractor in plain text; refuse it here, as JSON, like every other error.
    if let Some(q) = req.uri().query() {
        if percent_encoding::percent_decode_str(q)
            .decode_utf8()
            .is_err()
        {
            return ApiError::bad_request(
                "malformed_query",
                "the query string does not decode to UTF-8",
            )
            .into_response();
        }
    }
    let route = match route_for(&method, &path) {
        Ok(route) => route,
        Err(bad) => {
            let ip = client_ip(&st, &req);
            deny(&st, None, &method, &path, ip, bad.as_str(), 400);
            return ApiError::bad_request(
                bad.as_str(),
                "the path is malformed or ambiguous (an encoded '/', a '.' or '..' or empty \
                 segment where a log path is expected, or a bad %-escape); send it as the \
                 API documents it",
            )
            .into_response();
        }
    };
    if route.access == Access::Public || (st.limits.public_log() && is_log_route(route)) {
        return next.run(req).await;
    }
    let ip = client_ip(&st, &req);
    let now = st.clock.instant();
    let principal = match authenticate(&st, req.headers()).await {
        Ok(p) => p,
        Err(reason) => {
            // Failures are throttled, successes never: a valid token is served whatever
            // others sent from the same address.
            if let Some(retry_after_s) = st.limits.throttled(ip, now) {
                deny(&st, None, &method, &path, ip, "throttled", 429);
                return ApiError {
                    retry_after_s: Some(retry_after_s),
                    ..ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "too_many_failures",
                        "too many failed authentications from this address; retry later",
                    )
                }
                .into_response();
            }
            st.limits.failed(ip, now);
            deny(&st, None, &method, &path, ip, reason, 401);
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!(
                    "a valid bearer token is required ({}); see docs/security.md",
                    reason.replace('_', " ")
                ),
            )
            .into_response();
        }
    };
    let Access::Roles(roles) = route.access else {
        unreachable!("bad math in guard: public routes returned above")
    };
    // A 403: recorded as an `auth.denied` event, answered with the JSON error format.
    let forbidden = |reason: &str, message: String| {
        deny(&st, Some(&principal), &method, &path, ip, reason, 403);
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).into_response()
    };
    if !roles.contains(&principal.role) {
        let role = principal.role;
        return forbidden(
            "role",
            format!("role {role} may not call {method} {}", route.path),
        );
    }
    if principal.projects.is_some() && !route.scoped_ok {
        return forbidden(
            "project_scope",
            format!(
                "a token limited to projects may not call {method} {}",
                route.path
            ),
        );
    }
    let filters = (route.meta_audit && st.limits.meta_audit()).then(|| {
        Query::<HashMap<String, String>>::try_from_uri(req.uri())
            .map(|q| q.0)
            .unwrap_or_default()
    });
    // Fail closed: a read the meta-audit promises to record is refused while the log
    // cannot append (the writer stopped, e.g. on a full disk), instead of being served
    // unrecorded.
    let mut filters = filters;
    if let Some(f) = &filters {
        let unavailable = |why: String| {
            ApiError::unavailable(
                "meta_audit_unavailable",
                format!(
                    "reads are refused while the log cannot record them ({why}); \
                     see /healthz for what the operator must do"
                ),
                RETRY_AFTER_META_AUDIT_S,
            )
            .into_response()
        };
        if let Some(why) = st.ledger.poisoned() {
            return unavailable(why.to_string());
        }
        // The latest append failed (a full disk fails batches without stopping the
        // writer): record this read first, durably, and serve it only if that worked.
        if st
            .appends_failing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let (p, f) = pseudonymize_read(&st.privacy, route.path, &path, f.clone());
            let record = audit_query(&principal, route.path, &p, &f, None);
            if let Err(e) = super::record_system(&st, &[record]).await {
                return unavailable(e.to_string());
            }
            filters = None; // recorded already
        }
    }
    req.extensions_mut().insert(principal.clone());
    let resp = next.run(req).await;
    if resp.status() == StatusCode::FORBIDDEN {
        // Recorded under the handler's own reason (its error code).
        let reason = match resp.extensions().get::<DenyReason>().map(|c| c.0) {
            Some("project_forbidden") => "project_scope",
            Some(reason) => reason,
            None => "forbidden",
        };
        deny(&st, Some(&principal), &method, &path, ip, reason, 403);
    }
    if let Some(filters) = filters {
        if resp.status().is_success() {
            let results = resp.extensions().get::<ResultCount>().map(|c| c.0);
            let (path, filters) = pseudonymize_read(&st.privacy, route.path, &path, filters);
            let record = audit_query(&principal, route.path, &path, &filters, results);
            if BULK_ROUTES.contains(&route.path) {
                st.recorder
                    .record_bulk(
                        &principal.name,
                        route.path,
                        record,
                        &path,
                        results.unwrap_or(0),
                    )
                    .await;
            } else {
                st.recorder.record(record).await;
            }
        }
    }
    resp
}

/// The client's address: the peer, or, if the peer is a trusted proxy, the last address
/// of its `X-Forwarded-For` (the one that proxy appended).
fn client_ip(st: &AppState, req: &Request) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !st.limits.cfg.trusted_proxies.contains(&peer) {
        return peer;
    }
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or(peer)
}

/// The principal of a request's bearer token, or why there is none.
async fn authenticate(st: &AppState, headers: &HeaderMap) -> Result<Principal, &'static str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err("missing_token");
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or("malformed_token")?;
    if token.starts_with(auth::tokens::TOKEN_PREFIX) {
        return st
            .tokens
            .authenticate(token, st.clock.now_ms())
            .map_err(Refusal::as_str);
    }
    match &st.oidc {
        Some(oidc) => oidc.authenticate(token).await.map_err(|e| e.as_str()),
        None => Err(Refusal::Malformed.as_str()),
    }
}

/// Queues an `auth.denied` record, unless the source is over its budget.
fn deny(
    st: &AppState,
    principal: Option<&Principal>,
    method: &str,
    path: &str,
    ip: IpAddr,
    reason: &str,
    status: u16,
) {
    st.metrics
        .auth_denied
        .get_or_create(&super::metrics::Reason {
            reason: reason.to_string(),
        })
        .inc();
    let Record::Yes { suppressed } = st.limits.should_record(ip, st.clock.instant()) else {
        return;
    };
    let mut path = pseudonymize_path(&st.privacy, path);
    if path.len() > PATH_CHARS_MAX {
        let mut cut = PATH_CHARS_MAX;
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        path.truncate(cut);
    }
    let actor = match principal {
        Some(p) => json!({"id": p.name, "type": "principal", "ip": ip.to_string()}),
        None => json!({"id": "unauthenticated", "type": "anonymous", "ip": ip.to_string()}),
    };
    let mut params = json!({
        "method": method,
        "path": path,
        "status": status,
        "reason": reason,
        "suppressed": suppressed,
    });
    if let Some(p) = principal {
        params["role"] = json!(p.role.as_str());
    }
    st.recorder.try_record(json!({
        "action": "auth.denied",
        "actor": actor,
        "outcome": "denied",
        "reason": reason,
        "parameters": params,
    }));
}

/// The identifiers a read names (filters, a subject or user in the path), as the pseudonyms
/// the log stores, so that an `audit.query` record never holds what pseudonymization keeps
/// out of the log. Other values pass unchanged (e-mail addresses inside them are redacted
/// by the value patterns when the record is ingested).
fn pseudonymize_read(
    privacy: &privacy::Privacy,
    endpoint: &str,
    path: &str,
    mut filters: HashMap<String, String>,
) -> (String, HashMap<String, String>) {
    let rtype = filters.get("resource_type").cloned();
    if let Some(v) = filters.get_mut("actor") {
        *v = privacy.query_value("actor.id", v, &|_| None);
    }
    if let Some(v) = filters.get_mut("resource_id") {
        *v = privacy.query_value("resource.id", v, &|k| {
            (k == "type").then(|| rtype.clone()).flatten()
        });
    }
    if let Some(v) = filters.get_mut("related") {
        if let Some((t, id)) = v.split_once(':') {
            let t = t.to_string();
            let id = privacy.query_value("related[].id", id, &|k| (k == "type").then(|| t.clone()));
            *v = format!("{t}:{id}");
        }
    }
    if endpoint == "/v1/lineage" {
        let t = filters.get("type").cloned();
        if let Some(v) = filters.get_mut("id") {
            *v = privacy.query_value("resource.id", v, &|k| {
                (k == "type").then(|| t.clone()).flatten()
            });
        }
    }
    (pseudonymize_path(privacy, path), filters)
}

/// `path` as recorded: each segment percent-decoded (so that the value patterns of the
/// redaction see e-mail addresses and the like), and the person that
/// `/v1/subjects/{id}/…` or `/v1/resources/{type}/{id}` names replaced by the pseudonym
/// the log stores for them.
fn pseudonymize_path(privacy: &privacy::Privacy, path: &str) -> String {
    let mut segments: Vec<String> = path.split('/').map(decode).collect();
    let person = match segments.as_slice() {
        [_, v1, subjects, id, ..] if v1 == "v1" && subjects == "subjects" => {
            Some((3, privacy.subject_id(id)))
        }
        [_, v1, resources, t, id] if v1 == "v1" && resources == "resources" => Some((
            4,
            privacy.query_value("resource.id", id, &|k| (k == "type").then(|| t.clone())),
        )),
        _ => None,
    };
    if let Some((i, pseudonym)) = person {
        segments[i] = pseudonym;
    }
    segments.join("/")
}

/// A percent-decoded path segment (as axum's `Path` extractor sees it).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The `audit.query` record of a successful read.
fn audit_query(
    p: &Principal,
    endpoint: &str,
    path: &str,
    filters: &HashMap<String, String>,
    results: Option<u64>,
) -> Value {
    let mut f = Map::new();
    let mut keys: Vec<&String> = filters.keys().collect();
    keys.sort();
    for k in keys.into_iter().take(32) {
        let mut v = filters[k].clone();
        if v.len() > FILTER_VALUE_CHARS_MAX {
            let mut cut = FILTER_VALUE_CHARS_MAX;
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            v.truncate(cut);
        }
        f.insert(k.chars().take(64).collect(), Value::String(v));
    }
    let mut params = json!({
        "endpoint": endpoint,
        "path": path.chars().take(PATH_CHARS_MAX).collect::<String>(),
        "filters": f,
        "results": results,
        "role": p.role.as_str(),
    });
    if let Some(projects) = &p.projects {
        params["projects"] = json!(projects);
    }
    json!({
        "action": "audit.query",
        "actor": {"id": p.name, "type": "principal"},
        "parameters": params,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits::new(AuthConfig {
            public_log: false,
            failures_max: 5,
            denied_events_max: 3,
            window: Duration::from_millis(1500),
            meta_audit: true,
            trusted_proxies: Vec::new(),
        })
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 8));

    #[test]
    fn a_source_over_its_failures_is_throttled_until_its_window_ends() {
        let (limits, clock) = (limits(), auth::Clock::manual());
        for _ in 0..5 {
            assert_eq!(limits.throttled(IP, clock.instant()), None);
            limits.failed(IP, clock.instant());
        }
        // Retry-After rounds the 1.5 s left up to whole seconds, and counts down.
        assert_eq!(limits.throttled(IP, clock.instant()), Some(2));
        assert_eq!(limits.throttled(OTHER, clock.instant()), None, "per source");
        clock.advance(Duration::from_millis(1000));
        assert_eq!(limits.throttled(IP, clock.instant()), Some(1));
        clock.advance(Duration::from_millis(499));
        assert_eq!(limits.throttled(IP, clock.instant()), Some(1));
        // The window is over: the source starts again with a full budget.
        clock.advance(Duration::from_millis(1));
        assert_eq!(limits.throttled(IP, clock.instant()), None);
        limits.failed(IP, clock.instant());
        assert_eq!(limits.throttled(IP, clock.instant()), None);
    }

    #[test]
    fn denials_over_the_budget_are_counted_into_the_next_window() {
        let (limits, clock) = (limits(), auth::Clock::manual());
        let mut recorded = Vec::new();
        let mut record = |limits: &Limits, at: Instant| match limits.should_record(IP, at) {
            Record::Yes { suppressed } => recorded.push(suppressed),
            Record::No => {}
        };
        // 7 denials in one window (5 failures and 2 throttled): 3 recorded, 4 left out.
        for _ in 0..7 {
            record(&limits, clock.instant());
        }
        clock.advance(Duration::from_millis(1600));
        record(&limits, clock.instant());
        assert_eq!(recorded, [0, 0, 0, 4]);
    }
}
