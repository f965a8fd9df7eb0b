//! Access control: who may call which endpoint (`docs/security.md`).
//!
//! - [`Role`] and [`Principal`]: who a request is, put into the request's extensions by the
//!   server's auth layer for handlers to read.
//! - [`ROUTES`]: the one table mapping every endpoint to the roles allowed; the auth layer
//!   enforces it before any handler runs, and `docs/security.md` repeats it.
//! - [`tokens`]: API tokens (`mla_…`), stored only as keyed hashes.
//! - [`oidc`]: OIDC / JWT bearer tokens verified against a JWKS.
//!
//! Deliberately absent: nothing here knows about HTTP requests or bodies, the ledger or the
//! index. The server's guard applies these decisions; the CLI uses the token store offline.

pub mod oidc;
pub mod tokens;

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
const PRIVACY: &[Role] = &[Role::PrivacyOfficer];
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
/// protect nothing. Cleartext personal data (`/v1/subjects/…`) stays reserved to
/// `privacy_officer`.
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
    r(
        "GET",
        "/v1/subjects/{id}/events",
        Access::Roles(PRIVACY),
        false,
        true,
    ),
    r(
        "POST",
        "/v1/subjects/{id}/erase",
        Access::Roles(PRIVACY),
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
    r("GET", "/log/{*rest}", Access::Roles(READER), true, false),
];

/// What a request that matches no row of [`ROUTES`] needs.
pub const UNLISTED: Route = r("*", "*", Access::Roles(ADMIN), false, false);

/// Whether a `/log/…` route is opened to everyone by `public_log = true`.
pub fn is_log_route(route: &Route) -> bool {
    route.path.starts_with("/log/")
}

/// The first row of [`ROUTES`] matching `method` and `path`, or [`UNLISTED`]. `HEAD` is
/// governed by the `GET` row (axum answers `HEAD` on every `GET` route).
pub fn route_for(method: &str, path: &str) -> &'static Route {
    let method = if method == "HEAD" { "GET" } else { method };
    ROUTES
        .iter()
        .find(|r| r.method == method && path_matches(r.path, path))
        .unwrap_or(&UNLISTED)
}

/// Whether `path` matches `pattern` (segments; `{x}` one non-empty segment, `{*x}` the rest).
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w.starts_with("{*") => return !g.is_empty() || w.is_empty(),
            (Some(w), Some(g)) if w.starts_with('{') => {
                if g.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(g)) => {
                if w != g {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_by_method_and_segments() {
        assert_eq!(route_for("GET", "/healthz").access, Access::Public);
        assert_eq!(
            route_for("POST", "/v1/events").access,
            Access::Roles(PRODUCER)
        );
        assert_eq!(route_for("GET", "/v1/events").access, Access::Roles(READER));
        assert_eq!(route_for("GET", "/v1/events/12").path, "/v1/events/{seq}");
        assert_eq!(route_for("GET", "/v1/events/").path, "*");
        assert_eq!(route_for("GET", "/v1/events/1/2").path, "*");
        assert_eq!(
            route_for("GET", "/log/tile/entries/000").path,
            "/log/tile/entries/{*rest}"
        );
        assert_eq!(route_for("GET", "/log/tile/0/000").path, "/log/{*rest}");
        assert_eq!(route_for("DELETE", "/v1/events").path, "*");
        assert_eq!(route_for("GET", "/nope").access, Access::Roles(ADMIN));
        assert_eq!(route_for("GET", "/healthz/x").path, "*");
        assert_eq!(
            route_for("HEAD", "/v1/events").access,
            Access::Roles(READER)
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
