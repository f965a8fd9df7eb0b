//! What the index keeps of one stored entry: its filter columns, nothing more.

use std::borrow::Cow;
use std::fmt;

use chrono::DateTime;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use event::{category_of, StoredEntry, ENTRY_FORMAT_VERSION, ENTRY_FORMAT_VERSION_MIN};

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
    /// [`id_hash`] of the event's own `id`, if it has one (lookups by id).
    pub id_hash: Option<i64>,
}

/// The first 8 bytes of SHA-256 of an event `id`, as the integer the index keeps for
/// lookups by id: 8 bytes a row instead of the id itself (ids are unique, so interning them
/// in `strings` would cost a row each). A match is checked against the stored event, so a
/// collision cannot return a wrong event.
pub fn id_hash(id: &str) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(id.as_bytes());
    i64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
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
        id_hash: e.get("id").and_then(Value::as_str).map(id_hash),
        action,
    }
}

/// A JSON value read only for its string: `Some` for a string, `None` for anything else
/// (what `Value::as_str` gives), without building the value.
#[derive(Default)]
struct Str<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'a>, E> {
                Ok(Str(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'a>, E> {
                Ok(Str(Some(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Str<'a>, E> {
                Ok(Str(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Str<'a>, E> {
                Ok(Str(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Str<'a>, E> {
                Ok(Str(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Str<'a>, E> {
                Ok(Str(None))
            }
            fn visit_unit<E>(self) -> Result<Str<'a>, E> {
                Ok(Str(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Str<'a>, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Str(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Str<'a>, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Str(None))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Str<'_> {
    fn owned(self) -> Option<String> {
        self.0.map(Cow::into_owned)
    }
}

/// A present field as a `Value`, `null` included (`Option<Value>` would read `null` as
/// absent).
#[derive(Default)]
struct Present(Option<Value>);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| Present(Some(v)))
    }
}

/// A JSON object read as `T`: unlike a derived struct, a JSON array is refused (serde
/// would fill the fields by position).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(a)).map(Obj)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The `sealed` member of an entry, checked as `parse_entry` checks it (a non-empty
/// object of strings) without keeping it: the index never holds sealed values.
struct SealedShape;

impl<'de> Deserialize<'de> for SealedShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SealedShape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-empty object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<SealedShape, A::Error> {
                let mut n = 0;
                while a.next_key::<IgnoredAny>()?.is_some() {
                    if a.next_value::<Str<'_>>()?.0.is_none() {
                        return Err(de::Error::custom("a sealed value is not a string"));
                    }
                    n += 1;
                }
                if n == 0 {
                    return Err(de::Error::custom("sealed is empty"));
                }
                Ok(SealedShape)
            }
        }
        d.deserialize_map(V)
    }
}

// The shapes mlaudit writes (an entry of a validated event: objects where `validate.rs`
// wants objects). Anything else (another type, a duplicate key, an unknown entry field,
// another format version, a malformed `sealed` member or one in a version 1 entry) fails
// here and takes the general path, `parse_entry` then `extract`, so the two always agree.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastEntry<'a> {
    v: u64,
    seq: u64,
    #[serde(borrow)]
    recorded_at: Cow<'a, str>,
    #[serde(default)]
    sealed: Option<SealedShape>,
    #[allow(dead_code)]
    source: Obj<FastSource<'a>>,
    #[serde(borrow)]
    event: Obj<FastEvent<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FastSource<'a> {
    #[allow(dead_code)]
    #[serde(borrow)]
    principal: Cow<'a, str>,
}

#[derive(Deserialize)]
struct FastEvent<'a> {
    #[serde(default, borrow)]
    id: Str<'a>,
    #[serde(default, borrow)]
    time: Str<'a>,
    #[serde(default, borrow)]
    action: Str<'a>,
    #[serde(default, borrow)]
    outcome: Str<'a>,
    #[serde(default, borrow)]
    reason: Str<'a>,
    #[serde(default)]
    parameters: Present,
    #[serde(default, borrow)]
    actor: Option<Obj<FastActor<'a>>>,
    #[serde(default, borrow)]
    resource: Option<Obj<FastResource<'a>>>,
    #[serde(default, borrow)]
    context: Option<Obj<FastContext<'a>>>,
    #[serde(default, borrow)]
    related: Option<Vec<Obj<FastRelated<'a>>>>,
}

#[derive(Deserialize)]
struct FastActor<'a> {
    #[serde(default, borrow)]
    id: Str<'a>,
}

#[derive(Deserialize)]
struct FastResource<'a> {
    #[serde(default, borrow, rename = "type")]
    r#type: Str<'a>,
    #[serde(default, borrow)]
    id: Str<'a>,
    #[serde(default, borrow)]
    version: Str<'a>,
    #[serde(default, borrow)]
    name: Str<'a>,
    #[serde(default, borrow)]
    tags: Option<Vec<Str<'a>>>,
}

#[derive(Deserialize)]
struct FastContext<'a> {
    #[serde(default, borrow)]
    project: Str<'a>,
    #[serde(default, borrow)]
    environment: Str<'a>,
}

#[derive(Deserialize)]
struct FastRelated<'a> {
    #[serde(default, borrow, rename = "type")]
    r#type: Str<'a>,
    #[serde(default, borrow)]
    id: Str<'a>,
    #[serde(default, borrow)]
    version: Str<'a>,
    #[serde(default, borrow)]
    relation: Str<'a>,
}

/// The indexed columns of the stored entry `bytes` at position `seq`, reading only the
/// fields the index keeps (no `Value` of the whole event). Falls back on
/// [`event::parse_entry`] and [`extract`] for any other shape, which also gives the
/// error for a malformed entry.
pub fn extract_entry(bytes: &[u8]) -> Result<IndexedEvent, event::EntryError> {
    match try_fast(bytes) {
        Some(e) => Ok(e),
        None => event::parse_entry(bytes).map(|entry| extract(&entry)),
    }
}

/// The fast path of [`extract_entry`], for the shapes mlaudit writes.
fn try_fast(bytes: &[u8]) -> Option<IndexedEvent> {
    if bytes.len() > event::ENTRY_BYTES_MAX {
        return None;
    }
    let e = serde_json::from_slice::<FastEntry<'_>>(bytes).ok()?;
    let sealed_ok = e.sealed.is_none() || e.v >= 2;
    ((ENTRY_FORMAT_VERSION_MIN..=ENTRY_FORMAT_VERSION).contains(&e.v) && sealed_ok).then(|| fast(e))
}

fn fast(entry: FastEntry<'_>) -> IndexedEvent {
    let e = entry.event.0;
    let recorded_at = time_ms(&entry.recorded_at).unwrap_or(0);
    let time = e.time.0.as_deref().and_then(time_ms).unwrap_or(recorded_at);
    let action = e.action.owned().unwrap_or_default();
    let category = category_of(&action).as_str();
    let (resource_type, resource_id, resource_version, name, tags) = match e.resource {
        Some(Obj(r)) => (
            r.r#type.owned(),
            r.id.owned(),
            r.version.owned(),
            r.name.owned(),
            r.tags
                .map(|t| t.into_iter().filter_map(Str::owned).collect())
                .unwrap_or_default(),
        ),
        None => (None, None, None, None, Vec::new()),
    };
    let (project, environment) = match e.context {
        Some(Obj(c)) => (c.project.owned(), c.environment.owned()),
        None => (None, None),
    };
    let related = e
        .related
        .map(|a| {
            a.into_iter()
                .filter_map(|Obj(r)| {
                    Some(Related {
                        r#type: r.r#type.owned()?,
                        id: r.id.owned()?,
                        version: r.version.owned(),
                        relation: r.relation.owned(),
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
        actor: e.actor.and_then(|a| a.0.id.owned()).unwrap_or_default(),
        resource_type,
        resource_id,
        resource_version,
        outcome: e.outcome.owned().unwrap_or_else(|| "success".into()),
        project,
        environment,
        tags,
        related,
        reason: e.reason.owned(),
        parameters: e.parameters.0.as_ref().map(Value::to_string),
        name,
        id_hash: e.id.0.as_deref().map(id_hash),
        action,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event: &str) -> String {
        format!(
            r#"{{"event":{event},"recorded_at":"2026-01-01T00:00:01Z","seq":3,"source":{{"principal":"p"}},"v":1}}"#
        )
    }

    #[test]
    fn the_fast_path_agrees_with_parse_entry_and_extract() {
        for event in [
            r#"{"action":"dataset.read","actor":{"id":"u1","roles":["x"]},"time":"2026-01-01T00:00:00.123Z","resource":{"type":"dataset","id":"d","version":"v1","tags":["pii",3,"csv",null],"name":"n"},"context":{"project":"p","environment":"dev","x":{"y":[1]}},"related":[{"type":"model","id":"m","relation":"r"},{"type":"model"},{"type":"model","id":5}],"parameters":{"b":1.5,"a":"s\n"},"reason":"why","outcome":"denied"}"#,
            r#"{"action":"a.b","actor":{"id":"u"},"parameters":null,"reason":null,"context":{"project":7},"time":5,"related":null}"#,
            r#"{"action":"a.b","actor":["u"],"resource":{"tags":"x"}}"#,
            r#"{"action":"a.b","actor":{"id":"u"},"context":["p"],"related":[["model","m"]]}"#,
            r#"{"action":"a\u00e9.b","actor":{"id":"u\"q"},"resource":null,"parameters":[1,{"k":"v"}]}"#,
            r#"{"action":"a.b","action":"c.d","actor":{"id":"u"}}"#,
        ] {
            let v1 = entry(event);
            let v2 = v1.replace(r#""v":1"#, r#""v":2"#);
            let sealed = v2.replace(r#""seq":3"#, r#""sealed":{"s":"x"},"seq":3"#);
            for e in [v1, v2, sealed] {
                let general = extract(&event::parse_entry(e.as_bytes()).unwrap());
                assert_eq!(extract_entry(e.as_bytes()).unwrap(), general, "{e}");
            }
        }
        // What mlaudit writes (sealed members included) takes the fast path.
        let written = entry(r#"{"action":"a.b","actor":{"id":"hmac:1:x"}}"#)
            .replace(r#""v":1"#, r#""v":2"#)
            .replace(
                r#""seq":3"#,
                r#""sealed":{"hmac:1:x":"c","hmac:1:y":"d"},"seq":3"#,
            );
        assert!(try_fast(written.as_bytes()).is_some());
    }

    #[test]
    fn malformed_entries_are_refused_as_parse_entry_refuses_them() {
        for bad in [
            entry(r#"{"action":"a.b"}"#).replace(r#""v":1"#, r#""v":9"#),
            entry(r#"{"action":"a.b"}"#).replace(r#""seq":3,"#, r#""seq":3,"extra":1,"#),
            entry(r#"["a.b"]"#),
            "not json".to_string(),
            // `sealed`: not in version 1, never empty, only strings.
            entry(r#"{"action":"a.b"}"#).replace(r#""seq":3"#, r#""sealed":{"s":"x"},"seq":3"#),
            entry(r#"{"action":"a.b"}"#)
                .replace(r#""v":1"#, r#""v":2"#)
                .replace(r#""seq":3"#, r#""sealed":{},"seq":3"#),
            entry(r#"{"action":"a.b"}"#)
                .replace(r#""v":1"#, r#""v":2"#)
                .replace(r#""seq":3"#, r#""sealed":{"s":1},"seq":3"#),
            entry(r#"{"action":"a.b"}"#)
                .replace(r#""v":1"#, r#""v":2"#)
                .replace(r#""seq":3"#, r#""sealed":["s"],"seq":3"#),
        ] {
            assert!(event::parse_entry(bad.as_bytes()).is_err(), "{bad}");
            assert!(extract_entry(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
