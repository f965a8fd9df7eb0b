//! Access control: who may call which endpoint (`docs/security.md`).
//!
//! - [`Role`] and [`Principal`]: who a request is, put into the request's extensions by the
//!   server's auth layer for handlers to read.
//! - [`ROUTES`]: the one table mapping every endpoint to the roles allowed; the auth layer
//!   enforces it before any handler runs, and `docs/security.md` repeats it.
//! - [`tokens`]: API tokens (`mla_…`), stored only as keyed hashes.
//! - [`oidc`]: OIDC / JWT bearer tokens verified against a JWKS.
//! - [`Clock`]: where the server reads the time for expiry and the failure windows (a
//!   test moves it by hand).
//!
//! Deliberately absent: nothing here knows about HTTP requests or bodies, the ledger or the
//! index. The server's guard applies these decisions; the CLI uses the token store offline.
#![warn(missing_docs)]

mod clock;
pub mod oidc;
pub mod tokens;

pub use clock::Clock;

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What a principal may do; see [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Ingest only.
    Producer,
    /// Reads: queries, timelines, lineage, stats, proofs, log tiles, exports.
    Auditor,
    /// Auditor plus the privacy endpoints (cleartext, subject export, erasure).
    PrivacyOfficer,
    /// Auditor plus tokens, configuration, retention, alert rules; no cleartext.
    Admin,
}

impl Role {
    /// Every role, in the order of the docs.
    pub const ALL: [Role; 4] = [
        Role::Producer,
        Role::Auditor,
        Role::PrivacyOfficer,
        Role::Admin,
    ];

    /// The name used in the API, the CLI and the token store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Auditor => "auditor",
            Role::PrivacyOfficer => "privacy_officer",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a request: set by the auth layer in the request's extensions
/// (`Extension<Principal>` in a handler) once the token is valid and the role allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The identity recorded as `source.principal` of what it ingests and in `audit.*`
    /// records: an API token's name, or `oidc:<sub>` for a JWT.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The projects (`context.project`) it is limited to; `None` means all projects.
    pub projects: Option<Vec<String>>,
}

impl Principal {
    /// Whether events of `project` (`context.project`, if any) are within this principal's
    /// scope. An event without a project is outside every limited scope.
    pub fn may_see_project(&self, project: Option<&str>) -> bool {
        match (&self.projects, project) {
            (None, _) => true,
            (Some(allowed), Some(p)) => allowed.iter().any(|a| a == p),
            (Some(_), None) => false,
        }
    }

    /// The project scope as a slice, the form index functions take (`None`: all projects).
    pub fn project_scope(&self) -> Option<&[String]> {
        self.projects.as_deref()
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (`/healthz`).
    Public,
    /// Any valid token whose role is in the list.
    Roles(&'static [Role]),
}

/// One row of [`ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method (`GET`, `POST`, …).
    pub method: &'static str,
    /// Path pattern: `{name}` matches one segment, `{*name}` the rest of the path.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Whether a token limited to projects may call it at all. Endpoints that return
    /// whole-log data which cannot be filtered by project (entry bundles, token admin)
    /// are refused to limited tokens.
    pub scoped_ok: bool,
    /// Whether a call is a read of the log recorded as an `audit.query` event.
    pub meta_audit: bool,
}

const ANY: &[Role] = &Role::ALL;
const PRODUCER: &[Role] = &[Role::Producer, Role::Admin];
const READER: &[Role] = &[Role::Auditor, Role::PrivacyOfficer, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];

const fn r(
    method: &'static str,
    path: &'static str,
    access: Access,
    scoped_ok: bool,
    meta_audit: bool,
) -> Route {
    Route {
        method,
        path,
        access,
        scoped_ok,
        meta_audit,
    }
}

/// Every endpoint and who may call it: the single source of truth, enforced by the
/// server's auth layer. A request that matches no row needs [`UNLISTED`] (admin), so an
/// endpoint added without a row here is closed, not open.
///
/// `admin` may ingest: it can create a producer token at will, so refusing it would
/// protect nothing. Cleartext personal data (`/v1/subjects/…`) is for the roles of
/// `privacy.cleartext_roles`, which the handlers check (one decision, made by `privacy`).
pub const ROUTES: &[Route] = &[
    r("GET", "/healthz", Access::Public, true, false),
    // Operational counters, no log content; Prometheus scrapes with an auditor token.
    r("GET", "/metrics", Access::Roles(READER), false, false),
    r("POST", "/v1/events", Access::Roles(PRODUCER), true, false),
    r("GET", "/v1/events", Access::Roles(READER), true, true),
    r("GET", "/v1/events/{seq}", Access::Roles(READER), true, true),
    r(
        "GET",
        "/v1/resources/{type}/{id}",
        Access::Roles(READER),
        true,
        true,
    ),
    r("GET", "/v1/lineage", Access::Roles(READER), true, true),
    r(
        "GET",
        "/v1/deployments/{id}/state",
        Access::Roles(READER),
        true,
        true,
    ),
    r("GET", "/v1/stats", Access::Roles(READER), true, true),
    r(
        "GET",
        "/v1/proof/inclusion",
        Access::Roles(READER),
        true,
        true,
    ),
    r(
        "GET",
        "/v1/proof/consistency",
        Access::Roles(READER),
        true,
        true,
    ),
    // Cleartext: readers pass here, and the handler lets through only the roles of
    // `privacy.cleartext_roles` (default privacy_officer), the one clearance decision.
    r(
        "GET",
        "/v1/subjects/{id}/events",
        Access::Roles(READER),
        false,
        true,
    ),
    r(
        "POST",
        "/v1/subjects/{id}/erase",
        Access::Roles(READER),
        false,
        false,
    ),
    r("GET", "/v1/tokens", Access::Roles(ADMIN), false, false),
    r("POST", "/v1/tokens", Access::Roles(ADMIN), false, false),
    r(
        "DELETE",
        "/v1/tokens/{id}",
        Access::Roles(ADMIN),
        false,
        false,
    ),
    r("GET", "/v1/holds", Access::Roles(ADMIN), false, false),
    r("POST", "/v1/holds", Access::Roles(ADMIN), false, false),
    r(
        "DELETE",
        "/v1/holds/{id}",
        Access::Roles(ADMIN),
        false,
        false,
    ),
    r(
        "POST",
        "/v1/retention/run",
        Access::Roles(ADMIN),
        false,
        false,
    ),
    r("GET", "/v1/info", Access::Roles(ANY), true, false),
    r("GET", "/v1/schema/event", Access::Roles(ANY), true, false),
    // Hashes and signed checkpoints only: no event content.
    r("GET", "/log/checkpoint", Access::Roles(READER), true, false),
    // Entry bundles hold every event of every project: unlimited tokens only.
    r(
        "GET",
        "/log/tile/entries/{*rest}",
        Access::Roles(READER),
        false,
        true,
    ),
    // The entries a pruned bundle still stores (mlaudit's own, for `verify --url`): the
    // same content as entry bundles, so the same access.
    r(
        "GET",
        "/log/kept/{*rest}",
        Access::Roles(READER),
        false,
        true,
    ),
    r("GET", "/log/{*rest}", Access::Roles(READER), true, false),
];

/// What a request that matches no row of [`ROUTES`] needs.
pub const UNLISTED: Route = r("*", "*", Access::Roles(ADMIN), false, false);

/// Whether a `/log/…` route is opened to everyone by `public_log = true`.
pub fn is_log_route(route: &Route) -> bool {
    route.path.starts_with("/log/")
}

/// Why a request path is refused before any route is chosen: a path whose meaning
/// could differ between the auth layer and the handler that serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// A `%` not followed by two hex digits, or escapes that decode to invalid UTF-8.
    Malformed,
    /// An encoded `/` (`%2F`) in the part of a path a `{*rest}` pattern takes: the handler
    /// would split it where the route table did not.
    EncodedSlash,
    /// A `.` or `..` segment (also encoded) or an empty one inside a `{*rest}` part.
    DotSegment,
}

impl BadPath {
    /// The reason, as recorded in `auth.denied` and answered as the error code.
    pub fn as_str(self) -> &'static str {
        match self {
            BadPath::Malformed => "malformed_path",
            BadPath::EncodedSlash => "encoded_slash_in_path",
            BadPath::DotSegment => "dot_segment_in_path",
        }
    }
}

/// The first row of [`ROUTES`] matching `method` and `path`, or [`UNLISTED`]. `HEAD` is
/// governed by the `GET` row (axum answers `HEAD` on every `GET` route).
///
/// Segments are compared percent-decoded, as every handler sees them (so
/// `/log/tile/%65ntries/000` is the entry-bundle row, as the tile handler reads it), and a
/// path that could be split differently by a handler than here is refused.
pub fn route_for(method: &str, path: &str) -> Result<&'static Route, BadPath> {
    let method = if method == "HEAD" { "GET" } else { method };
    let segments = path
        .split('/')
        .map(|raw| {
            if !escapes_well_formed(raw) {
                return Err(BadPath::Malformed);
            }
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| BadPath::Malformed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for route in ROUTES.iter().filter(|r| r.method == method) {
        if let Some(tail) = match_segments(route.path, &segments) {
            for s in tail.map_or(&[][..], |i| &segments[i..]) {
                if s.contains('/') {
                    return Err(BadPath::EncodedSlash);
                }
                if s.is_empty() || s == "." || s == ".." {
                    return Err(BadPath::DotSegment);
                }
            }
            return Ok(route);
        }
    }
    Ok(&UNLISTED)
}

/// Whether every `%` in `raw` starts an escape of two hex digits.
fn escapes_well_formed(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        c != b'%'
            || (b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Matches decoded `segments` against `pattern` (`{x}` one non-empty segment, `{*x}` the
/// rest): `None` if it does not match, `Some(Some(i))` if a `{*x}` took the segments from
/// `i` on, `Some(None)` otherwise.
fn match_segments(pattern: &str, segments: &[Cow<'_, str>]) -> Option<Option<usize>> {
    let mut got = segments.iter().enumerate();
    for w in pattern.split('/') {
        let (i, g) = got.next()?;
        if w.starts_with("{*") {
            return (!g.is_empty() || segments.len() > i + 1).then_some(Some(i));
        }
        if w.starts_with('{') {
            if g.is_empty() {
                return None;
            }
        } else if w != g.as_ref() {
            return None;
        }
    }
    got.next().is_none().then_some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_by_method_and_segments() {
        assert_eq!(route_for("GET", "/healthz").unwrap().access, Access::Public);
        assert_eq!(
            route_for("POST", "/v1/events").unwrap().access,
            Access::Roles(PRODUCER)
        );
        assert_eq!(
            route_for("GET", "/v1/events").unwrap().access,
            Access::Roles(READER)
        );
        assert_eq!(
            route_for("GET", "/v1/events/12").unwrap().path,
            "/v1/events/{seq}"
        );
        assert_eq!(route_for("GET", "/v1/events/").unwrap().path, "*");
        assert_eq!(route_for("GET", "/v1/events/1/2").unwrap().path, "*");
        assert_eq!(
            route_for("GET", "/log/tile/entries/000").unwrap().path,
            "/log/tile/entries/{*rest}"
        );
        assert_eq!(
            route_for("GET", "/log/tile/0/000").unwrap().path,
            "/log/{*rest}"
        );
        assert_eq!(route_for("DELETE", "/v1/events").unwrap().path, "*");
        assert_eq!(
            route_for("GET", "/nope").unwrap().access,
            Access::Roles(ADMIN)
        );
        assert_eq!(route_for("GET", "/healthz/x").unwrap().path, "*");
        assert_eq!(
            route_for("HEAD", "/v1/events").unwrap().access,
            Access::Roles(READER)
        );
    }

    #[test]
    fn encoded_paths_match_the_row_their_handler_serves() {
        let entries = "/log/tile/entries/{*rest}";
        for p in [
            "/log/tile/%65ntries/000",
            "/log/tile/entrie%73/000",
            "/log/tile/ENTRIES/000".to_lowercase().as_str(),
            "/log/%74ile/entries/000.p/5",
            "/log/tile/entries/%30%30%30",
        ] {
            assert_eq!(route_for("GET", p).unwrap().path, entries, "{p}");
        }
        assert_eq!(route_for("GET", "/v1/%65vents").unwrap().path, "/v1/events");
        for p in [
            "/log/tile%2Fentries/000",
            "/log/tile%2fentries/000",
            "/log/tile/entries%2F000.p%2F5",
            "/log/tile/0%2F000",
        ] {
            assert_eq!(
                route_for("GET", p).unwrap_err(),
                BadPath::EncodedSlash,
                "{p}"
            );
        }
        for p in [
            "/log/tile/0/../entries/000",
            "/log/tile/0/%2E%2E/entries/000",
            "/log/tile//entries/000",
            "/log/./tile/entries/000",
        ] {
            assert_eq!(route_for("GET", p).unwrap_err(), BadPath::DotSegment, "{p}");
        }
        for p in ["/log/tile/%6", "/v1/events/%zz", "/v1/subjects/%FF/events"] {
            assert_eq!(route_for("GET", p).unwrap_err(), BadPath::Malformed, "{p}");
        }
        // An encoded `/` inside one `{id}` segment is an id, as axum's `Path` decodes it.
        assert_eq!(
            route_for("GET", "/v1/resources/dataset/s3%3A%2F%2Fb%2Fx")
                .unwrap()
                .path,
            "/v1/resources/{type}/{id}"
        );
    }

    #[test]
    fn project_scope() {
        let p = Principal {
            name: "a".into(),
            role: Role::Auditor,
            projects: Some(vec!["p1".into()]),
        };
        assert!(p.may_see_project(Some("p1")));
        assert!(!p.may_see_project(Some("p2")));
        assert!(!p.may_see_project(None));
        let all = Principal {
            projects: None,
            ..p
        };
        assert!(all.may_see_project(None));
    }
}
