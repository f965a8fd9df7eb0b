//! The event model: wire format version 1 (DESIGN.md section 3) and the stored ledger entry
//! (DESIGN.md section 4).
//!
//! The ingest path runs in this order, each step in its own file:
//!
//! 1. [`split_body`] (`body.rs`) frames a request body (JSON object, JSON array or NDJSON)
//!    into raw JSON values, enforcing the body-level limits.
//! 2. [`Event::parse`] (`validate.rs`) checks one value against the wire format and
//!    normalizes it (default `outcome`, `time` in UTC). Errors are collected per field so a
//!    producer can fix a whole batch from one response.
//! 3. Privacy transforms (elsewhere) rewrite the event through [`Event::transform`].
//! 4. [`entry_template`] (`entry.rs`) serializes the event once, in RFC 8785 canonical form,
//!    into the bytes around the not-yet-known `recorded_at` and `seq`; the ledger writer
//!    fills both in (what [`entry_bytes`] does), stamping times in seq order.
//!
//! Deliberately absent: this crate knows nothing about HTTP, storage or privacy keys, and
//! it never hand-escapes or hand-formats a JSON string or number; `canonical.rs` only
//! orders object members and delegates every leaf to `serde_json_canonicalizer` (numbers)
//! or to the serde_json escaper that it uses itself (strings).
//!
//! Cost: each event is parsed once into a `serde_json::Value`, validated in place (no
//! copy; field paths are built only for errors) and serialized once, canonically, with no
//! intermediate buffers. On generated events (the `sample` crate's mix, about 450
//! bytes each) one core does roughly: NDJSON framing and parsing 2.8 µs, `Event::parse`
//! 0.6 µs, `entry_template` 1.4 µs per event; parsing JSON into a `Value` is now the largest
//! part. Measure with
//! `cargo test --release -p event --test event_throughput -- --ignored --nocapture`.
#![warn(missing_docs)]

mod body;
mod canonical;
mod entry;
pub mod fuzz;
mod schema;
mod validate;

pub use body::{split_body, split_body_items, BodyError, BodyFormat, BodyItem};
pub use entry::{
    entry_bytes, entry_template, entry_template_sealed, parse_entry, parse_entry_raw, EntryError,
    EntryTemplate, RawEntry, StoredEntry, ENTRY_FORMAT_VERSION, ENTRY_FORMAT_VERSION_MIN,
    RECORDED_AT_BYTES_MAX, SEQ_DIGITS_MAX,
};
pub use schema::event_schema;
pub use validate::{format_time, parse_events, Event, FieldError, TOP_LEVEL_FIELDS};

/// Largest stored entry, in bytes of canonical JSON. The C2SP tlog-tiles entry bundle
/// prefixes each entry with a big-endian `u16` length, so nothing longer can be served.
/// An event whose entry would exceed it is refused at ingest (HTTP 413), never truncated.
pub const ENTRY_BYTES_MAX: usize = 65535;

/// Deepest nesting of objects and arrays in one event, counting the event object itself as
/// level 1. It keeps every recursive walk over a stored event (canonicalization, indexing,
/// privacy transforms) shallow, far below what could exhaust a thread's stack.
pub const DEPTH_MAX: usize = 32;

/// Default number of events in one request. A server may configure another value and passes
/// it to [`split_body`]; a batch is atomic, so this also bounds the work one request can pin.
pub const BATCH_EVENTS_MAX: usize = 1000;

/// Largest request body after decompression. The HTTP layer must cap gzip output at this
/// size while inflating (a small compressed body can expand without bound); [`split_body`]
/// checks it again.
pub const BODY_BYTES_MAX: usize = 16 << 20;

/// Longest client-chosen `id` (idempotency key), in Unicode scalar values.
pub const ID_CHARS_MAX: usize = 128;

/// Longest `action`, in bytes (actions are ASCII). Actions are indexed and matched with
/// globs, so they stay short.
pub const ACTION_BYTES_MAX: usize = 128;

/// Most field errors reported for one event. A hostile event can hold thousands of bad
/// numbers; the first few are enough to fix it, and the error response stays small.
pub const FIELD_ERRORS_MAX: usize = 20;

/// serde_json refuses input nested deeper than this (its default recursion limit), which is
/// what keeps parsing hostile bodies from overflowing the stack.
const SERDE_JSON_RECURSION_LIMIT: usize = 128;

// The entry length must fit the u16 length prefix of an entry bundle.
const _: () = assert!(ENTRY_BYTES_MAX == u16::MAX as usize);
// Depths up to DEPTH_MAX + 1 must parse, so that "too deep" is reported by our own check
// with the exact depth rather than as a serde_json syntax error.
const _: () = assert!(DEPTH_MAX < SERDE_JSON_RECURSION_LIMIT);
// A request must be able to carry at least one event of the largest size.
const _: () = assert!(BODY_BYTES_MAX >= ENTRY_BYTES_MAX);
// A full default batch of tiny events must fit in a body (`{}` plus a separator each).
const _: () = assert!(BATCH_EVENTS_MAX * 3 <= BODY_BYTES_MAX);
// An id and an action (4 bytes per char at worst, plus escaping) leave room for the rest.
const _: () = assert!(ID_CHARS_MAX * 4 * 2 + ACTION_BYTES_MAX < ENTRY_BYTES_MAX / 4);

/// The category of an action, derived from its namespace (DESIGN.md section 3).
///
/// Categories are not stored in the event: they are a pure function of `action`, so changing
/// the table never disagrees with what is in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// `dataset.*`
    DataAccess,
    /// `model.*`
    ModelDevelopment,
    /// `deployment.*`
    Deployment,
    /// `evaluation.*`
    Evaluation,
    /// `user.*`, `permission.*`, `role.*`, `job.*`, `auth.*`
    UserAction,
    /// `audit.*`, written only by mlaudit itself.
    System,
    /// Any other namespace.
    Custom,
}

impl Category {
    /// Every category, in the order of the DESIGN.md table.
    pub const ALL: [Category; 7] = [
        Category::DataAccess,
        Category::ModelDevelopment,
        Category::Deployment,
        Category::Evaluation,
        Category::UserAction,
        Category::System,
        Category::Custom,
    ];

    /// The name used in the API, the index and reports (`"data_access"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::DataAccess => "data_access",
            Category::ModelDevelopment => "model_development",
            Category::Deployment => "deployment",
            Category::Evaluation => "evaluation",
            Category::UserAction => "user_action",
            Category::System => "system",
            Category::Custom => "custom",
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The idempotency key of an event: a hash of (source principal, event `id`), 16 bytes
/// whatever the id's length. A retried event with the same key gets its original receipt
/// (`docs/api.md`, section 3.4); the key names no content, so it may outlive the entry.
pub type IdKey = [u8; 16];

/// Computes the [`IdKey`] of the event `id` sent by `principal`.
pub fn id_key(principal: &str, id: &str) -> IdKey {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(principal.as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    h.finalize()[..16]
        .try_into()
        .expect("a SHA-256 digest has 32 bytes")
}

/// The category of `action`, from its namespace (the text before the first dot).
///
/// Works on any string, validated or not, so queries can classify patterns too.
pub fn category_of(action: &str) -> Category {
    let namespace = action.split('.').next().unwrap_or("");
    match namespace {
        "dataset" => Category::DataAccess,
        "model" => Category::ModelDevelopment,
        "deployment" => Category::Deployment,
        "evaluation" => Category::Evaluation,
        "user" | "permission" | "role" | "job" | "auth" => Category::UserAction,
        "audit" => Category::System,
        _ => Category::Custom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_of_follows_the_design_table() {
        assert_eq!(category_of("dataset.read"), Category::DataAccess);
        assert_eq!(category_of("model.train"), Category::ModelDevelopment);
        assert_eq!(category_of("deployment.predict"), Category::Deployment);
        assert_eq!(category_of("evaluation.record"), Category::Evaluation);
        for ns in ["user", "permission", "role", "job", "auth"] {
            assert_eq!(category_of(&format!("{ns}.x")), Category::UserAction);
        }
        assert_eq!(category_of("audit.query"), Category::System);
        assert_eq!(category_of("feature_store.read"), Category::Custom);
        // Only the namespace counts, not a prefix of it.
        assert_eq!(category_of("datasets.read"), Category::Custom);
    }

    #[test]
    fn category_names_are_snake_case_and_match_serde() {
        for c in Category::ALL {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::from(c.as_str())
            );
        }
    }
}
