//! Who is calling, as handlers see it: a name for meta-audit records and a role for
//! [`crate::privacy::may_see_cleartext`].
//!
//! Authentication is not in this tree yet (docs/api.md section 0: every caller may do
//! everything). Until it is, every request is the principal `anonymous` with
//! [`ROLE_UNTIL_AUTH`]. The authentication middleware will put the authenticated principal
//! into the request's extensions; [`Caller`]'s extractor is the one place to read it from.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ingest::ANONYMOUS;

/// The role of every caller until authentication exists: the one with every right, which
/// is what an unauthenticated server grants anyway.
pub const ROLE_UNTIL_AUTH: &str = "privacy_officer";

/// The calling principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Principal name (recorded as the actor of `audit.*` records, pseudonymized there).
    pub name: String,
    /// Its role, if it has one.
    pub role: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Caller {
            name: ANONYMOUS.to_string(),
            role: Some(ROLE_UNTIL_AUTH.to_string()),
        })
    }
}
