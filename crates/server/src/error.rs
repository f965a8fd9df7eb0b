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

/// How long a client is told to wait after a storage failure (the write was undone, or
/// the writer stopped, or the key or idempotency store failed): long enough for an
/// operator's fix or a restart not to be hammered, short enough for a freed disk.
pub const RETRY_AFTER_STORAGE_S: u64 = 5;

/// How long a reader is told to wait when its read cannot be recorded (the ledger cannot
/// append): an operator has to act first.
pub const RETRY_AFTER_META_AUDIT_S: u64 = 30;

/// How long a client is told to wait when the server is busy or shutting down.
pub const RETRY_AFTER_BUSY_S: u64 = 1;

/// Why `POST /v1/events` (or a system record) was refused; nothing of the batch is stored.
/// `impl From<IngestError> for ApiError` is the one table from which every ingest answer's
/// status, code and `Retry-After` come (docs/api.md section 2).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// `Content-Type` missing or not accepted.
    #[error("{0}")]
    MediaType(String),
    /// `Content-Encoding` not accepted.
    #[error("{0}")]
    Encoding(String),
    /// The gzip body does not decompress.
    #[error("the gzip body does not decompress: {0}")]
    BadEncoding(std::io::Error),
    /// Too many ingest requests in progress (all, or this principal's), or the ledger
    /// queue is full.
    #[error("{0}")]
    Busy(String),
    /// The body did not arrive in time; the connection is closed.
    #[error("{0}")]
    BodyTimeout(String),
    /// Reading the body failed (the connection broke).
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
    /// The body (as sent or decompressed) is over `BODY_BYTES_MAX`.
    #[error("{0}")]
    BodyTooLarge(String),
    /// Body framing: empty, not UTF-8, too many events, malformed JSON, not an object,
    /// too deep.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Events break the wire format.
    #[error("the batch was rejected: no event of it was stored")]
    Invalid(Vec<FieldError>),
    /// Events outside the token's projects.
    #[error("the batch was rejected: this token may only write events of its projects; no event of it was stored")]
    ProjectForbidden(Vec<FieldError>),
    /// Two events of the batch have the same id.
    #[error("an event id appears twice in the batch")]
    DuplicateIdInBatch(Vec<FieldError>),
    /// An id of the batch is being stored by another request.
    #[error(
        "an event with the same id is being stored by another request; retry to get its receipt"
    )]
    IdInFlight(FieldError),
    /// Stored entries over `ENTRY_BYTES_MAX`.
    #[error(
        "an event is over the stored entry limit of {} bytes; the batch was rejected",
        event::ENTRY_BYTES_MAX
    )]
    EventTooLarge(Vec<FieldError>),
    /// More entries than one commit group may hold.
    #[error("{0}")]
    TooManyEvents(String),
    /// The server is stopping.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A write failed and was undone, or the ledger writer stopped after one (no appends
    /// until restart).
    #[error("{0}")]
    Ledger(ledger::AppendError),
    /// The idempotency or key store failed before anything was appended.
    #[error("{what} failed: {why}")]
    Store {
        /// Which store: `idempotency lookup`, `privacy transforms`.
        what: &'static str,
        /// Its error.
        why: String,
    },
    /// The idempotency store holds a receipt the ledger does not: refused, not answered.
    #[error("the idempotency store disagrees with the ledger; nothing was stored")]
    ReceiptMismatch(FieldError),
    /// Something on our side (a task panicked, a record did not serialize).
    #[error("{0}")]
    Internal(String),
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> ApiError {
        use IngestError as E;
        let mut message = e.to_string();
        if let E::Ledger(ledger::AppendError::Failed(s) | ledger::AppendError::Poisoned(s)) = &e {
            if s.is_disk_full() {
                message
                    .push_str(" (the disk is full: nothing was stored; retry once space is freed)");
            }
        }
        let with = |status, code, details: Vec<FieldError>| ApiError {
            details,
            ..ApiError::new(status, code, message.clone())
        };
        let unavailable = |code, retry| ApiError::unavailable(code, message.clone(), retry);
        match e {
            E::MediaType(_) => with(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                vec![],
            ),
            E::Encoding(_) => with(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                vec![],
            ),
            E::BadEncoding(_) => with(StatusCode::BAD_REQUEST, "bad_encoding", vec![]),
            E::Busy(_) => unavailable("busy", RETRY_AFTER_BUSY_S),
            E::BodyTimeout(_) => ApiError {
                close_connection: true,
                ..with(StatusCode::REQUEST_TIMEOUT, "body_timeout", vec![])
            },
            E::BodyRead(_) => with(StatusCode::BAD_REQUEST, "bad_body", vec![]),
            E::BodyTooLarge(_) => with(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", vec![]),
            E::Body(b) => ApiError::from(b),
            E::Invalid(d) => with(StatusCode::BAD_REQUEST, "invalid_event", d),
            E::ProjectForbidden(d) => with(StatusCode::FORBIDDEN, "project_forbidden", d),
            E::DuplicateIdInBatch(d) => with(StatusCode::BAD_REQUEST, "duplicate_id_in_batch", d),
            E::IdInFlight(d) => with(StatusCode::CONFLICT, "id_in_flight", vec![d]),
            E::EventTooLarge(d) => with(StatusCode::PAYLOAD_TOO_LARGE, "event_too_large", d),
            E::TooManyEvents(_) => with(StatusCode::PAYLOAD_TOO_LARGE, "too_many_events", vec![]),
            E::ShuttingDown => unavailable("shutting_down", RETRY_AFTER_BUSY_S),
            E::Ledger(_) | E::Store { .. } => unavailable("storage_failure", RETRY_AFTER_STORAGE_S),
            E::ReceiptMismatch(d) => with(StatusCode::INTERNAL_SERVER_ERROR, "internal", vec![d]),
            E::Internal(_) => with(StatusCode::INTERNAL_SERVER_ERROR, "internal", vec![]),
        }
    }
}

impl From<ledger::AppendError> for IngestError {
    fn from(e: ledger::AppendError) -> IngestError {
        use ledger::AppendError as A;
        match e {
            A::QueueFull(_) => IngestError::Busy(e.to_string()),
            A::TooLarge { index, bytes } => IngestError::EventTooLarge(vec![FieldError {
                index,
                field: String::new(),
                message: format!("the stored entry would be {bytes} bytes"),
            }]),
            A::TooManyEntries(_) => IngestError::TooManyEvents(e.to_string()),
            A::Closed => IngestError::ShuttingDown,
            other => IngestError::Ledger(other),
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
    use super::{without_paths, ApiError, IngestError, StatusCode};
    use event::FieldError;

    /// Issue 19.7: `storage_failure` told clients to wait 1 s or 5 s depending on where the
    /// failure came from (the key store, the idempotency store, the ledger). Every ingest
    /// error now goes through one table: one status, code and `Retry-After` per kind, and
    /// each is the one docs/api.md section 2 lists.
    #[test]
    fn one_table_maps_every_ingest_error() {
        let field = || FieldError {
            index: 0,
            field: "id".into(),
            message: "m".into(),
        };
        let io = || std::io::Error::from(std::io::ErrorKind::StorageFull);
        let storage = || ledger::StorageError::new("fdatasync of a segment", io());
        let cases: Vec<(IngestError, u16, &str, Option<u64>)> = vec![
            (
                IngestError::MediaType("m".into()),
                415,
                "unsupported_media_type",
                None,
            ),
            (
                IngestError::Encoding("m".into()),
                415,
                "unsupported_encoding",
                None,
            ),
            (
                IngestError::BadEncoding(std::io::ErrorKind::InvalidData.into()),
                400,
                "bad_encoding",
                None,
            ),
            (IngestError::Busy("m".into()), 503, "busy", Some(1)),
            (
                IngestError::BodyTimeout("m".into()),
                408,
                "body_timeout",
                None,
            ),
            (IngestError::BodyRead("m".into()), 400, "bad_body", None),
            (
                IngestError::BodyTooLarge("m".into()),
                413,
                "body_too_large",
                None,
            ),
            (
                IngestError::Body(event::BodyError::Empty),
                400,
                "empty_body",
                None,
            ),
            (
                IngestError::Invalid(vec![field()]),
                400,
                "invalid_event",
                None,
            ),
            (
                IngestError::ProjectForbidden(vec![field()]),
                403,
                "project_forbidden",
                None,
            ),
            (
                IngestError::DuplicateIdInBatch(vec![field()]),
                400,
                "duplicate_id_in_batch",
                None,
            ),
            (IngestError::IdInFlight(field()), 409, "id_in_flight", None),
            (
                IngestError::EventTooLarge(vec![field()]),
                413,
                "event_too_large",
                None,
            ),
            (
                IngestError::TooManyEvents("m".into()),
                413,
                "too_many_events",
                None,
            ),
            (IngestError::ShuttingDown, 503, "shutting_down", Some(1)),
            (
                ledger::AppendError::QueueFull(9).into(),
                503,
                "busy",
                Some(1),
            ),
            (
                ledger::AppendError::Closed.into(),
                503,
                "shutting_down",
                Some(1),
            ),
            (
                ledger::AppendError::Failed(storage()).into(),
                503,
                "storage_failure",
                Some(5),
            ),
            (
                ledger::AppendError::Poisoned(storage()).into(),
                503,
                "storage_failure",
                Some(5),
            ),
            (
                IngestError::Store {
                    what: "privacy transforms",
                    why: "disk I/O error".into(),
                },
                503,
                "storage_failure",
                Some(5),
            ),
            (
                IngestError::Store {
                    what: "idempotency lookup",
                    why: "database is locked".into(),
                },
                503,
                "storage_failure",
                Some(5),
            ),
            (IngestError::ReceiptMismatch(field()), 500, "internal", None),
            (IngestError::Internal("m".into()), 500, "internal", None),
        ];
        let docs = include_str!("../../../docs/api.md");
        for (e, status, code, retry) in cases {
            let what = format!("{e:?}");
            let a = ApiError::from(e);
            if what.contains("StorageFull") {
                assert!(a.message.contains("the disk is full"), "{}", a.message);
            }
            assert_eq!(a.status, StatusCode::from_u16(status).unwrap(), "{what}");
            assert_eq!(a.code, code, "{what}");
            assert_eq!(a.retry_after_s, retry, "{what}");
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("| `{code}` |")))
                .unwrap_or_else(|| panic!("docs/api.md lists no `{code}`"));
            assert!(row.contains(&format!("| {status}")), "{code}: {row}");
            if let Some(s) = retry {
                assert!(row.contains(&format!("Retry-After: {s}`")), "{code}: {row}");
            }
        }
    }

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
