//! What the index keeps of one stored entry: its filter columns, nothing more.

use chrono::DateTime;
use serde_json::Value;

use crate::event::{category_of, StoredEntry};

/// One `related` link of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Related {
    /// Type of the linked resource (`dataset`, `model`, …).
    pub r#type: String,
    /// Its id.
    pub id: String,
    /// Its version, if given.
    pub version: Option<String>,
    /// How it relates (`training_data`, …), if given.
    pub relation: Option<String>,
}

/// The indexed columns of one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedEvent {
    /// Position in the log.
    pub seq: u64,
    /// Event `time`, in milliseconds since the Unix epoch (`recorded_at` if unparsable).
    pub time: i64,
    /// `recorded_at`, in milliseconds since the Unix epoch.
    pub recorded_at: i64,
    /// `action`.
    pub action: String,
    /// The category of `action`.
    pub category: &'static str,
    /// `actor.id`.
    pub actor: String,
    /// `resource.type`.
    pub resource_type: Option<String>,
    /// `resource.id`.
    pub resource_id: Option<String>,
    /// `resource.version`.
    pub resource_version: Option<String>,
    /// `outcome`.
    pub outcome: String,
    /// `context.project`, when a string.
    pub project: Option<String>,
    /// `context.environment`, when a string.
    pub environment: Option<String>,
    /// `resource.tags` (strings only).
    pub tags: Vec<String>,
    /// `related` links (those with string `type` and `id`).
    pub related: Vec<Related>,
    /// `reason`, for full-text search.
    pub reason: Option<String>,
    /// `parameters` as JSON text, for full-text search.
    pub parameters: Option<String>,
    /// `resource.name`, for full-text search.
    pub name: Option<String>,
}

/// Parses an RFC 3339 time into milliseconds since the Unix epoch.
pub fn time_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn string(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().map(str::to_string)
}

/// The indexed columns of a stored entry.
pub fn extract(entry: &StoredEntry) -> IndexedEvent {
    let e = &entry.event;
    let recorded_at = time_ms(&entry.recorded_at).unwrap_or(0);
    let time = e
        .get("time")
        .and_then(Value::as_str)
        .and_then(time_ms)
        .unwrap_or(recorded_at);
    let action = string(e, &["action"]).unwrap_or_default();
    let category = category_of(&action).as_str();
    let tags = e
        .get("resource")
        .and_then(|r| r.get("tags"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let related = e
        .get("related")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    Some(Related {
                        r#type: string(r, &["type"])?,
                        id: string(r, &["id"])?,
                        version: string(r, &["version"]),
                        relation: string(r, &["relation"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    IndexedEvent {
        seq: entry.seq,
        time,
        recorded_at,
        category,
        actor: string(e, &["actor", "id"]).unwrap_or_default(),
        resource_type: string(e, &["resource", "type"]),
        resource_id: string(e, &["resource", "id"]),
        resource_version: string(e, &["resource", "version"]),
        outcome: string(e, &["outcome"]).unwrap_or_else(|| "success".into()),
        project: string(e, &["context", "project"]),
        environment: string(e, &["context", "environment"]),
        tags,
        related,
        reason: string(e, &["reason"]),
        parameters: e.get("parameters").map(Value::to_string),
        name: string(e, &["resource", "name"]),
        action,
    }
}
