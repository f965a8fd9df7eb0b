//! The stored ledger entry (DESIGN.md section 4): the RFC 8785 canonical JSON of
//! `{"v":2,"seq":N,"recorded_at":"…","source":{"principal":"…"},"event":{…},"sealed":{…}}`.
//!
//! Version 2 added the optional `sealed` member: for each data subject of the event, the
//! original values of its pseudonymized fields, encrypted under that subject's key
//! (`privacy/`, `docs/privacy.md`). Version 1 entries (no `sealed`) are still read.
//!
//! The entry is a Merkle leaf, so its bytes are forever: anyone re-canonicalizing the parsed
//! entry with an RFC 8785 implementation must get the same bytes and the same leaf hash.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::canonical::{write_number, write_string, write_value};
use super::{Event, ENTRY_BYTES_MAX};

/// Format version of a stored entry, the `v` field, written into every new entry. Readers
/// accept [`ENTRY_FORMAT_VERSION_MIN`] to this and refuse other versions rather than guess
/// at their meaning. Version 2 added the optional `sealed` member.
pub const ENTRY_FORMAT_VERSION: u64 = 2;

/// Oldest entry format version this build reads (version 1: no `sealed` member).
pub const ENTRY_FORMAT_VERSION_MIN: u64 = 1;

/// Most decimal digits of a `seq` (`u64::MAX` has 20). [`entry_template`] reserves this much
/// room, so a template that passes the size check fits [`ENTRY_BYTES_MAX`] with any seq.
pub const SEQ_DIGITS_MAX: usize = 20;

// u64::MAX is 18446744073709551615: at least 10^19, so exactly 20 digits.
const _: () = assert!(u64::MAX / 10u64.pow(19) >= 1);

/// The largest `seq` an entry can hold. RFC 8785 formats numbers as IEEE 754 doubles, exact
/// for integers up to 2^53; past it, the decimal we write would not be canonical. A log
/// reaches it after 9 * 10^15 entries, so this is a bound on our own arithmetic, not a limit
/// users meet.
const SEQ_MAX: u64 = 1 << 53;

/// Most bytes of a `recorded_at` value: [`super::format_time`] at nanosecond precision,
/// `2026-03-01T12:00:00.123456789Z`. [`entry_template`] reserves this much room.
pub const RECORDED_AT_BYTES_MAX: usize = 30;

/// A stored entry with two holes: `head ‖ recorded_at ‖ mid ‖ decimal(seq) ‖ tail`.
///
/// Only the ledger writer knows `seq` and the commit group's `recorded_at` (the writer
/// stamps times in seq order: ARCHITECTURE.md, Invariants); everything costly
/// (canonicalizing the event) happens before, outside the writer, and [`entry_bytes`]
/// only concatenates. The `recorded_at` filled in is a time from [`super::format_time`]:
/// ASCII without characters JSON escapes, so writing it between the quotes is canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryTemplate {
    /// Canonical bytes up to and including the opening `"` of the `recorded_at` value.
    pub head: Vec<u8>,
    /// From the closing `"` of `recorded_at` up to and including `"seq":`.
    pub mid: Vec<u8>,
    /// Canonical bytes from the `,` after the seq to the closing `}`.
    pub tail: Vec<u8>,
}

/// A stored entry read back from the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// Format version, between [`ENTRY_FORMAT_VERSION_MIN`] and [`ENTRY_FORMAT_VERSION`].
    pub v: u64,
    /// Position in the log, from 0.
    pub seq: u64,
    /// When mlaudit sequenced the event, formatted by [`super::format_time`].
    pub recorded_at: String,
    /// Who sent the event: the authenticated token or identity that called ingest.
    pub principal: String,
    /// The event as stored, after privacy transforms.
    pub event: Value,
    /// Sealed originals of pseudonymized fields: subject pseudonym → ciphertext (version 2;
    /// absent when the event had no pseudonymized field). Opaque here; `privacy/` opens it.
    pub sealed: Option<Map<String, Value>>,
}

/// Why an entry could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The entry is longer than a tlog entry bundle can carry. At ingest this is the
    /// producer's problem (HTTP 413); on read it means the stored data is corrupt.
    #[error("stored entry would be {bytes} bytes, more than the limit of {max}; make the event smaller (parameters, reason, tags)")]
    TooLarge {
        /// Size of the entry, counting the longest possible seq when building one.
        bytes: usize,
        /// The limit, [`ENTRY_BYTES_MAX`].
        max: usize,
    },
    /// Stored bytes that are not an entry of the expected shape.
    #[error("malformed stored entry: {message}")]
    Malformed {
        /// What is wrong.
        message: String,
    },
    /// An entry written by a format version this build does not know.
    #[error(
        "stored entry has format version {v}; this build reads versions {ENTRY_FORMAT_VERSION_MIN} to {ENTRY_FORMAT_VERSION}"
    )]
    UnsupportedVersion {
        /// The version found.
        v: u64,
    },
}

impl EntryError {
    /// A stable machine-readable code for API responses and `mlaudit verify` output.
    pub fn code(&self) -> &'static str {
        match self {
            EntryError::TooLarge { .. } => "entry_too_large",
            EntryError::Malformed { .. } => "malformed_entry",
            EntryError::UnsupportedVersion { .. } => "unsupported_entry_version",
        }
    }
}

/// Builds the template of the stored entry for `event` on behalf of `principal`; the
/// writer fills in `recorded_at` and `seq` ([`entry_bytes`]).
///
/// RFC 8785 orders keys by their UTF-16 code units, which for these ASCII keys is
/// `event < recorded_at < seq < source < v`, so the entry reads
/// `{"event":…,"recorded_at":"…","seq":N,"source":{"principal":"…"},"v":1}`. The key
/// names are fixed ASCII and written literally; every number and string, and so every
/// producer string, is written by `serde_json_canonicalizer` (see `canonical.rs`).
///
/// Cost: one pass over the event writing straight into `head`, with no intermediate
/// buffers; about 1.4 µs for a typical 450-byte event.
pub fn entry_template(event: &Event, principal: &str) -> Result<EntryTemplate, EntryError> {
    entry_template_sealed(event, None, principal)
}

/// [`entry_template`] with a `sealed` member (omitted when `None` or empty). RFC 8785
/// orders it between `recorded_at` and `seq` (`"sealed" < "seq"`), so it goes into `mid`.
pub fn entry_template_sealed(
    event: &Event,
    sealed: Option<&Map<String, Value>>,
    principal: &str,
) -> Result<EntryTemplate, EntryError> {
    let mut head = Vec::with_capacity(1024);
    head.extend_from_slice(br#"{"event":"#);
    write_value(event.as_value(), &mut head);
    head.extend_from_slice(br#","recorded_at":""#);

    let mut mid = Vec::with_capacity(16);
    mid.push(b'"');
    if let Some(sealed) = sealed.filter(|s| !s.is_empty()) {
        mid.extend_from_slice(br#","sealed":"#);
        write_value(&Value::Object(sealed.clone()), &mut mid);
    }
    mid.extend_from_slice(br#","seq":"#);

    let mut tail = Vec::with_capacity(principal.len() + 32);
    tail.extend_from_slice(br#","source":{"principal":"#);
    write_string(principal, &mut tail);
    tail.extend_from_slice(br#"},"v":"#);
    write_number(&ENTRY_FORMAT_VERSION.into(), &mut tail);
    tail.push(b'}');

    let bytes = head.len() + RECORDED_AT_BYTES_MAX + mid.len() + SEQ_DIGITS_MAX + tail.len();
    if bytes > ENTRY_BYTES_MAX {
        return Err(EntryError::TooLarge {
            bytes,
            max: ENTRY_BYTES_MAX,
        });
    }
    Ok(EntryTemplate { head, mid, tail })
}

/// Fills `recorded_at` (a time from [`super::format_time`]) and `seq` into a template,
/// giving the stored entry bytes, as the ledger writer does.
///
/// # Panics
///
/// If `seq` exceeds 2^53, which canonical JSON cannot write exactly (the sequencer never
/// gets there, see `SEQ_MAX`), or if `recorded_at` is longer than
/// [`RECORDED_AT_BYTES_MAX`] or holds a character JSON would escape: both are bugs.
pub fn entry_bytes(t: &EntryTemplate, recorded_at: &str, seq: u64) -> Vec<u8> {
    assert!(
        seq <= SEQ_MAX,
        "bad math in the sequencer: seq {seq} exceeds 2^53"
    );
    assert!(
        recorded_at.len() <= RECORDED_AT_BYTES_MAX
            && recorded_at
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
        "recorded_at {recorded_at:?} is not a time from format_time"
    );
    let mut entry = Vec::with_capacity(
        t.head.len() + recorded_at.len() + t.mid.len() + SEQ_DIGITS_MAX + t.tail.len(),
    );
    entry.extend_from_slice(&t.head);
    entry.extend_from_slice(recorded_at.as_bytes());
    entry.extend_from_slice(&t.mid);
    // An integer up to 2^53 in plain decimal is exactly how RFC 8785 writes it.
    entry.extend_from_slice(seq.to_string().as_bytes());
    entry.extend_from_slice(&t.tail);
    debug_assert!(entry.len() <= ENTRY_BYTES_MAX);
    entry
}

/// Parses a stored entry (for reads and verification): checks the size, that `v` is a
/// version this build reads (before anything else, since another version may have another
/// shape), and that exactly the five fields are present with the right types, plus, from
/// version 2, an optional `sealed` object of strings.
///
/// It does not check that the bytes are canonical; the Merkle tree already binds them, and
/// `mlaudit verify` re-canonicalizes when it wants that check.
pub fn parse_entry(bytes: &[u8]) -> Result<StoredEntry, EntryError> {
    if bytes.len() > ENTRY_BYTES_MAX {
        return Err(EntryError::TooLarge {
            bytes: bytes.len(),
            max: ENTRY_BYTES_MAX,
        });
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(malformed("not a JSON object".into()));
    };
    let v = map
        .get("v")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("v is missing or not an unsigned integer".into()))?;
    if !(ENTRY_FORMAT_VERSION_MIN..=ENTRY_FORMAT_VERSION).contains(&v) {
        return Err(EntryError::UnsupportedVersion { v });
    }
    const FIELDS: [&str; 6] = ["event", "recorded_at", "sealed", "seq", "source", "v"];
    if let Some(unknown) = map
        .keys()
        .find(|k| !FIELDS.contains(&k.as_str()) || (v == 1 && *k == "sealed"))
    {
        return Err(malformed(format!("unexpected field {unknown:?}")));
    }
    let sealed = match map.remove("sealed") {
        None => None,
        Some(Value::Object(s)) if !s.is_empty() && s.values().all(Value::is_string) => Some(s),
        Some(_) => {
            return Err(malformed(
                "sealed must be a non-empty object of strings".into(),
            ))
        }
    };
    let seq = map
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or_else(|| malformed("seq is missing or not an unsigned integer".into()))?;
    let recorded_at = take_string(&mut map, "recorded_at")?;
    let principal = match map.remove("source") {
        Some(Value::Object(mut source)) if source.len() == 1 => {
            take_string(&mut source, "principal")?
        }
        _ => return Err(malformed("source must be {\"principal\": string}".into())),
    };
    let event = match map.remove("event") {
        Some(event @ Value::Object(_)) => event,
        _ => return Err(malformed("event is missing or not an object".into())),
    };
    Ok(StoredEntry {
        v,
        seq,
        recorded_at,
        principal,
        event,
        sealed,
    })
}

/// A stored entry whose event stays raw JSON, for reads that pass events through to
/// their answer unchanged (no `Value` tree built and serialized again).
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// When mlaudit recorded it.
    pub recorded_at: String,
    /// The event object, as stored.
    pub event: Box<RawValue>,
    /// The `sealed` object, as stored, if any.
    pub sealed: Option<Box<RawValue>>,
}

/// [`parse_entry`] for reads that pass the event through: reads only `v`, `recorded_at`,
/// `event` and `sealed`, borrowing the event's bytes. Anything that does not fit that
/// shape goes through [`parse_entry`], which names what is wrong. It checks less than
/// [`parse_entry`] (not `seq`, `source`, unknown members or the values inside `sealed`):
/// the Merkle tree binds the bytes, and `mlaudit verify` is where their shape is checked.
pub fn parse_entry_raw(bytes: &[u8]) -> Result<RawEntry, EntryError> {
    #[derive(Deserialize)]
    struct View<'a> {
        v: u64,
        #[serde(borrow)]
        recorded_at: Cow<'a, str>,
        #[serde(borrow)]
        event: &'a RawValue,
        #[serde(borrow, default)]
        sealed: Option<&'a RawValue>,
    }
    if bytes.len() <= ENTRY_BYTES_MAX {
        if let Ok(e) = serde_json::from_slice::<View<'_>>(bytes) {
            let sealed_ok = e
                .sealed
                .is_none_or(|s| e.v >= 2 && s.get().starts_with('{'));
            if (ENTRY_FORMAT_VERSION_MIN..=ENTRY_FORMAT_VERSION).contains(&e.v)
                && e.event.get().starts_with('{')
                && sealed_ok
            {
                return Ok(RawEntry {
                    recorded_at: e.recorded_at.into_owned(),
                    event: e.event.to_owned(),
                    sealed: e.sealed.map(RawValue::to_owned),
                });
            }
        }
    }
    let e = parse_entry(bytes)?;
    let raw = |v: &Value| serde_json::value::to_raw_value(v).expect("a JSON value serializes");
    Ok(RawEntry {
        recorded_at: e.recorded_at,
        event: raw(&e.event),
        sealed: e.sealed.map(|s| raw(&Value::Object(s))),
    })
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<String, EntryError> {
    match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(malformed(format!("{key} is missing or not a string"))),
    }
}

fn malformed(message: String) -> EntryError {
    EntryError::Malformed { message }
}
