//! The one error table of the HTTP API: every failure becomes a status code
//! and a JSON body `{"error":{"code","message","details"}}` (DESIGN section 9).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use event::{BodyError, FieldError};

/// Why a handler refused a request (403), as a response extension: the auth layer records
/// the `auth.denied` event under this reason.
#[derive(Debug, Clone, Copy)]
pub struct DenyReason(pub &'static str);

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Per-item problems, for batch validation errors.
    pub details: Vec<FieldError>,
    /// Seconds a client should wait before retrying (503/429).
    pub retry_after_s: Option<u64>,
    /// For a 403: the reason recorded in `auth.denied` (default: the code).
    pub deny_reason: Option<&'static str>,
    /// Answer with `Connection: close`: the request's body was not read to its end, so the
    /// connection cannot carry another request.
    pub close_connection: bool,
}

impl ApiError {
    /// An error without details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after_s: None,
            deny_reason: None,
            close_connection: false,
        }
    }
    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 500: something on our side; the message is safe to show.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    /// 503 with Retry-After.
    pub fn unavailable(
        code: &'static str,
        message: impl Into<String>,
        retry_after_s: u64,
    ) -> ApiError {
        ApiError {
            retry_after_s: Some(retry_after_s),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }
}

impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> ApiError {
        let status = match e {
            BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TooManyEvents { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<ledger::store::ReadError> for ApiError {
    fn from(e: ledger::store::ReadError) -> ApiError {
        match e {
            ledger::store::ReadError::NotFound(m) => ApiError::not_found(m),
            // Retention removed the payload on purpose: gone, not missing.
            ledger::store::ReadError::Pruned { message, .. } => {
                ApiError::new(StatusCode::GONE, "pruned", message)
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// `message` with every absolute file path cut to its last component (`…/segment-0001`):
/// server errors name the file that failed without showing the server's layout.
fn without_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find('/') {
        let (before, from) = rest.split_at(i);
        let at_start = before
            .chars()
            .last()
            .is_none_or(|c| c.is_whitespace() || "\"'`(=[".contains(c));
        let end = from
            .find(|c: char| c.is_whitespace() || "\"'`),;]".contains(c))
            .unwrap_or(from.len());
        let (path, after) = from.split_at(end);
        out.push_str(before);
        let path = path.trim_end_matches([':', '.']);
        let tail = &from[path.len()..end];
        if at_start && path.len() > 1 && path[1..].contains('/') {
            out.push('…');
            out.push_str(&path[path.rfind('/').unwrap_or(0)..]);
        } else {
            out.push_str(path);
        }
        out.push_str(tail);
        rest = after;
    }
    out.push_str(rest);
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "server error answered");
            without_paths(&self.message)
        } else {
            self.message
        };
        let body = json!({"error": {
            "code": self.code,
            "message": message,
            "details": self.details,
        }});
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::FORBIDDEN {
            let reason = self.deny_reason.unwrap_or(self.code);
            resp.extensions_mut().insert(DenyReason(reason));
        }
        if self.close_connection {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(s) = self.retry_after_s {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::without_paths;

    #[test]
    fn server_errors_name_files_but_not_the_layout() {
        assert_eq!(
            without_paths("writing /srv/mlaudit/data/ledger/segments/0001.seg: No space left"),
            "writing …/0001.seg: No space left"
        );
        assert_eq!(
            without_paths("opening \"/var/lib/x/index.sqlite\" failed"),
            "opening \"…/index.sqlite\" failed"
        );
        assert_eq!(without_paths("a/b and 1/2 stay"), "a/b and 1/2 stay");
        assert_eq!(
            without_paths("GET /v1/events failed"),
            "GET …/events failed"
        );
        assert_eq!(without_paths("no slash"), "no slash");
    }
}
