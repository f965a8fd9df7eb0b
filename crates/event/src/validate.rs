//! Validation and normalization of one event (DESIGN.md section 3).

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Number, Value};

use super::body::{json_type, BodyItem};
use super::{category_of, Category, ACTION_BYTES_MAX, DEPTH_MAX, FIELD_ERRORS_MAX, ID_CHARS_MAX};

/// The fields an event may have at its top level. Anything else is refused, so that a typo
/// (`"actr"`) or data in an unexpected place (where no privacy transform looks for it) is
/// caught at ingest instead of being stored forever.
pub const TOP_LEVEL_FIELDS: [&str; 11] = [
    "action",
    "actor",
    "context",
    "id",
    "metrics",
    "outcome",
    "parameters",
    "reason",
    "related",
    "resource",
    "time",
];

const ACTOR_STRING_FIELDS: [&str; 5] = ["id", "type", "ip", "user_agent", "session"];
const RESOURCE_STRING_FIELDS: [&str; 4] = ["type", "id", "version", "name"];
const RELATED_STRING_FIELDS: [&str; 4] = ["type", "id", "version", "relation"];
const CONTEXT_STRING_FIELDS: [&str; 5] =
    ["project", "environment", "request_id", "job_id", "source"];
const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];
const OUTCOME_DEFAULT: &str = "success";

/// One problem with one field of one event.
///
/// Serialized as an item of `error.details` in API responses:
/// `{"index":3,"field":"actor.id","message":"is required"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// 0-based index of the event in its batch. [`Event::parse`] does not know it and
    /// leaves 0; [`parse_events`] fills it in.
    pub index: usize,
    /// Path of the field: `"actor.id"`, `"metrics.accuracy"`, `"related[2].id"`; a key
    /// that is not a plain word is written in brackets, `metrics["fairness.dp_diff"]`.
    /// Empty when the problem is the event as a whole.
    pub field: String,
    /// What is wrong, in words meant for the producer's developer. For NDJSON batches it
    /// starts with the line number.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "item {}: {}", self.index, self.message)
        } else {
            write!(f, "item {}: {}: {}", self.index, self.field, self.message)
        }
    }
}

/// A validated, normalized event: a JSON object that satisfies the wire format, with
/// `outcome` and `time` always present and `time` in UTC.
///
/// The only ways to get one are [`Event::parse`] and [`parse_events`], so holders may rely on
/// `action` and `time` being valid strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Always a `Value::Object`; kept as a `Value` so it can be lent out and canonicalized
    /// without conversion.
    value: Value,
}

impl Event {
    /// Validates `value` as one event and normalizes it: `outcome` defaults to `"success"`,
    /// `time` defaults to `now` and is rewritten in UTC by [`format_time`]. Actions in the
    /// `audit` namespace are refused unless `allow_reserved`, which only mlaudit itself
    /// sets, so that no producer can forge a meta-audit record.
    ///
    /// All problems of the event are returned (up to [`FIELD_ERRORS_MAX`]), each with
    /// `index` 0; batch callers use [`parse_events`], which sets it.
    ///
    /// `time` accepts what chrono's RFC 3339 parser accepts, including a lowercase `t`/`z`
    /// and a space between date and time (RFC 3339 section 5.6 allows both).
    ///
    /// Cost: the value is taken by ownership and changed in place, in one pass over its
    /// members; on success the only allocations are the normalized `time` and the default
    /// `outcome`.
    pub fn parse(
        value: Value,
        now: DateTime<Utc>,
        allow_reserved: bool,
    ) -> Result<Event, Vec<FieldError>> {
        let mut map = match value {
            Value::Object(map) => map,
            other => {
                return Err(vec![FieldError {
                    index: 0,
                    field: String::new(),
                    message: format!("an event must be a JSON object, got {}", json_type(&other)),
                }])
            }
        };
        // One pass over the members, dispatching on the key: cheaper than a lookup per
        // known field, and it finds unknown fields on the way.
        let mut c = Checker::default();
        let (mut has_action, mut has_actor, mut has_outcome) = (false, false, false);
        let mut time = None; // Some(normalized) once a valid time is seen
        let mut has_time = false;
        for (key, v) in &map {
            match key.as_str() {
                "action" => {
                    has_action = true;
                    if let Some(action) = c.string(v, || "action".into(), true) {
                        check_action(&mut c, action, allow_reserved);
                    }
                }
                "actor" => {
                    has_actor = true;
                    match v {
                        Value::Object(actor) => check_actor(&mut c, actor),
                        other => c.wrong_type("actor".into(), "an object", other),
                    }
                }
                "outcome" => {
                    has_outcome = true;
                    if let Some(outcome) = c.string(v, || "outcome".into(), false) {
                        if !OUTCOMES.contains(&outcome) {
                            c.error(
                                "outcome".into(),
                                format!(
                                    "must be one of {}, got {}",
                                    OUTCOMES.join(", "),
                                    echo(outcome)
                                ),
                            );
                        }
                    }
                }
                "time" => {
                    has_time = true;
                    time = c
                        .string(v, || "time".into(), false)
                        .and_then(|t| check_time(&mut c, t));
                }
                "id" => {
                    if let Some(id) = c.string(v, || "id".into(), true) {
                        // Bytes bound characters from above, so most ids skip the count.
                        if id.len() > ID_CHARS_MAX && id.chars().count() > ID_CHARS_MAX {
                            c.error(
                                "id".into(),
                                format!("is longer than {ID_CHARS_MAX} characters"),
                            );
                        }
                    }
                }
                "resource" => match v {
                    Value::Object(resource) => check_resource(&mut c, resource),
                    other => c.wrong_type("resource".into(), "an object", other),
                },
                "related" => match v {
                    Value::Array(links) => check_related(&mut c, links),
                    other => c.wrong_type("related".into(), "an array of objects", other),
                },
                "metrics" => match v {
                    Value::Object(metrics) => check_metrics(&mut c, metrics),
                    other => c.wrong_type("metrics".into(), "an object of numbers", other),
                },
                "parameters" => match v {
                    Value::Object(_) => c.free_json(v, 2, &Path::Field("parameters")),
                    other => c.wrong_type("parameters".into(), "an object", other),
                },
                "context" => match v {
                    Value::Object(context) => {
                        check_context(&mut c, context);
                        c.free_json(v, 2, &Path::Field("context"));
                    }
                    other => c.wrong_type("context".into(), "an object", other),
                },
                "reason" => {
                    c.string(v, || "reason".into(), false);
                }
                _ => c.error(
                    child_path("", key),
                    format!(
                        "unknown field; the allowed fields are {}",
                        TOP_LEVEL_FIELDS.join(", ")
                    ),
                ),
            }
        }
        if !has_action {
            c.error("action".into(), "is required".into());
        }
        if !has_actor {
            c.error("actor.id".into(), "is required".into());
        }
        if !c.errors.is_empty() {
            return Err(c.errors);
        }

        // Normalize only once the event is known to be valid; rewrite in place, since
        // inserting would allocate the key again.
        match (time, map.get_mut("time")) {
            (Some(normalized), Some(Value::String(given))) => {
                if *given != normalized {
                    *given = normalized;
                }
            }
            (None, None) if !has_time => {
                map.insert("time".into(), Value::String(format_time(now)));
            }
            _ => unreachable!("bad logic: a time error was not recorded"),
        }
        if !has_outcome {
            map.insert("outcome".into(), OUTCOME_DEFAULT.into());
        }
        Ok(Event {
            value: Value::Object(map),
        })
    }

    /// The action, e.g. `"model.update"`.
    pub fn action(&self) -> &str {
        self.str_field("action")
            .unwrap_or_else(|| unreachable!("Event without a string action"))
    }

    /// The producer's idempotency key, if it sent one.
    pub fn id(&self) -> Option<&str> {
        self.str_field("id")
    }

    /// When it happened, normalized to UTC by [`format_time`].
    pub fn time(&self) -> &str {
        self.str_field("time")
            .unwrap_or_else(|| unreachable!("Event without a string time"))
    }

    /// The category of the action ([`category_of`]).
    pub fn category(&self) -> Category {
        category_of(self.action())
    }

    /// The normalized event object.
    pub fn as_value(&self) -> &Value {
        &self.value
    }

    /// The normalized event object, by value.
    pub fn into_value(self) -> Value {
        self.value
    }

    /// Lets a privacy transform (DESIGN.md section 5) rewrite the event before it is
    /// stored: replace identifiers by pseudonyms, redact secrets, add `sealed`. Those are
    /// the only changes it should make; `action`, `time` and `id` must survive, which is
    /// asserted afterwards because breaking them is a bug in mlaudit, not bad input.
    ///
    /// # Panics
    ///
    /// If `f` leaves `action` or `time` missing or not a string, or `id` not a string.
    pub fn transform<R>(&mut self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        let Value::Object(map) = &mut self.value else {
            unreachable!("Event holds a non-object");
        };
        let result = f(map);
        assert!(
            self.str_field("action").is_some()
                && self.str_field("time").is_some()
                && !matches!(self.value.get("id"), Some(id) if !id.is_string()),
            "a transform broke the action, time or id of an event"
        );
        result
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.value.get(key).and_then(Value::as_str)
    }
}

/// Validates a batch: every event is parsed, and either all are valid or all their errors
/// are returned, with `index` set and, for NDJSON, the line named at the start of each
/// message. Batches are atomic (DESIGN.md section 9), so one bad event fails the batch.
pub fn parse_events(
    items: Vec<BodyItem>,
    now: DateTime<Utc>,
    allow_reserved: bool,
) -> Result<Vec<Event>, Vec<FieldError>> {
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match Event::parse(item.value, now, allow_reserved) {
            Ok(event) => events.push(event),
            Err(event_errors) => errors.extend(event_errors.into_iter().map(|mut e| {
                e.index = index;
                if let Some(line) = item.line {
                    e.message = format!("line {line}: {}", e.message);
                }
                e
            })),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

/// Formats an instant the way mlaudit stores times (`time`, `recorded_at`): RFC 3339 in
/// UTC with `Z`, always with milliseconds, and with micro- or nanoseconds when they are not
/// zero, e.g. `2026-03-01T12:00:00.123Z` or `2026-03-01T12:00:00.123456Z`.
///
/// At least three fractional digits (rather than chrono's `AutoSi`, which drops a zero
/// fraction) keep the common millisecond case fixed-width, so such strings sort in time
/// order; times with sub-millisecond digits must be compared as instants.
pub fn format_time(t: DateTime<Utc>) -> String {
    let whole_millis = t.timestamp_subsec_nanos() == t.timestamp_subsec_millis() * 1_000_000;
    let seconds_format = if whole_millis {
        SecondsFormat::Millis
    } else {
        SecondsFormat::AutoSi
    };
    t.to_rfc3339_opts(seconds_format, true)
}

/// Collects the errors of one event, up to [`FIELD_ERRORS_MAX`].
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn error(&mut self, field: String, message: String) {
        match self.errors.len().cmp(&FIELD_ERRORS_MAX) {
            std::cmp::Ordering::Less => self.errors.push(FieldError {
                index: 0,
                field,
                message,
            }),
            std::cmp::Ordering::Equal => self.errors.push(FieldError {
                index: 0,
                field: String::new(),
                message: format!("more than {FIELD_ERRORS_MAX} errors; the rest are not listed"),
            }),
            std::cmp::Ordering::Greater => {}
        }
    }

    fn wrong_type(&mut self, field: String, expected: &str, found: &Value) {
        self.error(
            field,
            format!("must be {expected}, got {}", json_type(found)),
        );
    }

    /// Checks that `v` is a string (and, if `non_empty`, not `""`) and returns it. Field
    /// paths, here and below, are built only when there is an error to report.
    fn string<'v>(
        &mut self,
        v: &'v Value,
        field: impl FnOnce() -> String,
        non_empty: bool,
    ) -> Option<&'v str> {
        match v {
            Value::String(s) if non_empty && s.is_empty() => {
                self.error(field(), "must not be empty".into());
                None
            }
            Value::String(s) => Some(s),
            other => {
                self.wrong_type(field(), "a string", other);
                None
            }
        }
    }

    fn string_array(&mut self, v: &Value, field: impl Fn() -> String) {
        let Value::Array(items) = v else {
            return self.wrong_type(field(), "an array of strings", v);
        };
        for (i, item) in items.iter().enumerate() {
            if !item.is_string() {
                self.wrong_type(format!("{}[{i}]", field()), "a string", item);
            }
        }
    }

    fn number(&mut self, v: &Value, field: impl FnOnce() -> String) {
        match v {
            Value::Number(n) if !exact_as_f64(n) => self.error(
                field(),
                format!(
                    "{n} cannot be stored exactly: canonical JSON (RFC 8785) holds numbers as \
                     IEEE 754 doubles, exact for integers only up to 2^53; send it as a string"
                ),
            ),
            Value::Number(_) => {}
            other => self.wrong_type(field(), "a number", other),
        }
    }

    /// Checks free-form JSON (`parameters`, `context`): nesting depth, where the container
    /// `v` is at level `depth`, and numbers that canonical JSON cannot hold exactly. The
    /// recursion is bounded: it does not descend below [`DEPTH_MAX`].
    fn free_json(&mut self, v: &Value, depth: usize, path: &Path<'_>) {
        match v {
            Value::Number(_) => self.number(v, || path.render()),
            Value::Array(_) | Value::Object(_) if depth > DEPTH_MAX => self.error(
                path.render(),
                format!("nesting is deeper than {DEPTH_MAX} levels (the event object is level 1)"),
            ),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.free_json(item, depth + 1, &Path::Index(path, i));
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    self.free_json(item, depth + 1, &Path::Key(path, key));
                }
            }
            _ => {}
        }
    }
}

/// A field path inside free JSON, kept on the stack during the walk and rendered only when
/// there is an error to report, so valid events cost no path strings.
enum Path<'a> {
    Field(&'static str),
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Field(field) => out.push_str(field),
            Path::Key(parent, key) => {
                parent.render_into(out);
                push_key(out, key);
            }
            Path::Index(parent, i) => {
                parent.render_into(out);
                write!(out, "[{i}]").expect("writing to a String cannot fail");
            }
        }
    }
}

/// Actions outside `audit.*` that only mlaudit writes: a producer's `auth.denied` would
/// pass for the server's record of a refused request.
pub const RESERVED_ACTIONS: [&str; 1] = ["auth.denied"];

/// Checks `<namespace>.<verb>`: two or more dot-separated segments of `[a-z][a-z0-9_]*`.
fn check_action(c: &mut Checker, action: &str, allow_reserved: bool) {
    let problem = if action.len() > ACTION_BYTES_MAX {
        Some(format!("is longer than {ACTION_BYTES_MAX} bytes"))
    } else if !action.contains('.') {
        Some("has no namespace".to_owned())
    } else {
        action.split('.').find_map(|segment| {
            let mut bytes = segment.bytes();
            match bytes.next() {
                None => Some("has an empty segment".to_owned()),
                Some(b'a'..=b'z') => (!bytes
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_')))
                .then(|| format!("segment {} may hold only a-z, 0-9 and _", echo(segment))),
                Some(_) => Some(format!(
                    "segment {} does not start with a lowercase letter",
                    echo(segment)
                )),
            }
        })
    };
    if let Some(problem) = problem {
        c.error(
            "action".into(),
            format!(
                "{} {problem}; an action is <namespace>.<verb>, two or more dot-separated \
                 segments of [a-z][a-z0-9_]*, e.g. \"model.update\"",
                echo(action)
            ),
        );
    } else if !allow_reserved && category_of(action) == Category::System {
        c.error(
            "action".into(),
            "the audit.* namespace is reserved for records mlaudit writes itself".into(),
        );
    } else if !allow_reserved && RESERVED_ACTIONS.contains(&action) {
        c.error(
            "action".into(),
            format!("{action} is reserved for records mlaudit writes itself"),
        );
    }
}

/// Parses an RFC 3339 time and returns it normalized by [`format_time`].
fn check_time(c: &mut Checker, time: &str) -> Option<String> {
    match DateTime::parse_from_rfc3339(time) {
        Ok(t) => Some(format_time(t.with_timezone(&Utc))),
        Err(e) => {
            c.error(
                "time".into(),
                format!(
                    "{} is not an RFC 3339 date-time ({e}); expected e.g. \"2026-03-01T12:00:00.123Z\"",
                    echo(time)
                ),
            );
            None
        }
    }
}

fn check_actor(c: &mut Checker, actor: &Map<String, Value>) {
    for (key, v) in actor {
        let field = || child_path("actor", key);
        match key.as_str() {
            "id" => {
                c.string(v, field, true);
            }
            "roles" => c.string_array(v, field),
            k if ACTOR_STRING_FIELDS.contains(&k) => {
                c.string(v, field, false);
            }
            _ => c.error(field(), unknown_field(&ACTOR_STRING_FIELDS, Some("roles"))),
        }
    }
    if !actor.contains_key("id") {
        c.error("actor.id".into(), "is required".into());
    }
}

fn check_resource(c: &mut Checker, resource: &Map<String, Value>) {
    for (key, v) in resource {
        let field = || child_path("resource", key);
        match key.as_str() {
            "type" | "id" => {
                c.string(v, field, true);
            }
            "tags" => c.string_array(v, field),
            k if RESOURCE_STRING_FIELDS.contains(&k) => {
                c.string(v, field, false);
            }
            _ => c.error(
                field(),
                unknown_field(&RESOURCE_STRING_FIELDS, Some("tags")),
            ),
        }
    }
}

fn check_related(c: &mut Checker, links: &[Value]) {
    for (i, link) in links.iter().enumerate() {
        let base = || format!("related[{i}]");
        let Value::Object(link) = link else {
            c.wrong_type(base(), "an object", link);
            continue;
        };
        for (key, v) in link {
            let field = || child_path(&base(), key);
            match key.as_str() {
                "type" | "id" => {
                    c.string(v, field, true);
                }
                k if RELATED_STRING_FIELDS.contains(&k) => {
                    c.string(v, field, false);
                }
                _ => c.error(field(), unknown_field(&RELATED_STRING_FIELDS, None)),
            }
        }
        for required in ["type", "id"] {
            if !link.contains_key(required) {
                c.error(child_path(&base(), required), "is required".into());
            }
        }
    }
}

fn check_metrics(c: &mut Checker, metrics: &Map<String, Value>) {
    for (key, v) in metrics {
        c.number(v, || child_path("metrics", key));
    }
}

/// Checks the types of the well-known context keys; the rest of `context` is free JSON,
/// checked by [`Checker::free_json`].
fn check_context(c: &mut Checker, context: &Map<String, Value>) {
    for key in CONTEXT_STRING_FIELDS {
        if let Some(v) = context.get(key) {
            c.string(v, || child_path("context", key), false);
        }
    }
    if let Some(v) = context.get("sequence") {
        if !v.is_number() {
            c.wrong_type("context.sequence".into(), "a number", v);
        }
    }
}

/// Whether canonical JSON, which formats every number as an IEEE 754 double (RFC 8785
/// section 3.2.2.3), reproduces `n` exactly. Integers beyond 2^53 may not be: accepting
/// them would silently store a different number than the producer sent.
fn exact_as_f64(n: &Number) -> bool {
    // 2^64 and 2^63: `as` saturates, so the range must be checked before the round trip.
    const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if let Some(u) = n.as_u64() {
        let f = u as f64;
        f < TWO_POW_64 && f as u64 == u
    } else if let Some(i) = n.as_i64() {
        let f = i as f64;
        f < TWO_POW_63 && f as i64 == i
    } else {
        // A float was already rounded to a double by the parser; what is stored is what
        // the parser read.
        n.as_f64().is_some_and(f64::is_finite)
    }
}

fn unknown_field(strings: &[&str], array: Option<&str>) -> String {
    let mut allowed: Vec<&str> = strings.iter().copied().chain(array).collect();
    allowed.sort_unstable();
    format!(
        "unknown field; the allowed fields are {}",
        allowed.join(", ")
    )
}

/// `parent.key`, or `parent["key"]` when the key is not a plain word (so that a metric
/// named `fairness.dp_diff` is not mistaken for a nested field).
fn child_path(parent: &str, key: &str) -> String {
    let mut path = String::with_capacity(parent.len() + key.len() + 1);
    path.push_str(parent);
    push_key(&mut path, key);
    path
}

fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::from(key).to_string());
        path.push(']');
    }
}

/// Quotes producer text for an error message, shortened so that a hostile value cannot
/// blow up the error response.
fn echo(text: &str) -> String {
    const ECHO_CHARS_MAX: usize = 48;
    match text.char_indices().nth(ECHO_CHARS_MAX) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_top_level_field_is_dispatched() {
        // TOP_LEVEL_FIELDS (used in messages and by the schema test) and the match in
        // Event::parse must list the same fields.
        for field in TOP_LEVEL_FIELDS {
            let mut event = serde_json::json!({"action": "a.b", "actor": {"id": "a"}});
            event[field] = Value::Bool(true); // the wrong type for every field
            let errors = Event::parse(event, Utc::now(), false).unwrap_err();
            assert_eq!(errors.len(), 1, "{field}: {errors:?}");
            assert!(
                errors[0].message.starts_with("must be"),
                "{field}: {errors:?}"
            );
        }
    }

    #[test]
    fn paths_bracket_keys_that_are_not_plain_words() {
        assert_eq!(child_path("metrics", "accuracy"), "metrics.accuracy");
        assert_eq!(
            child_path("metrics", "fairness.dp"),
            r#"metrics["fairness.dp"]"#
        );
        assert_eq!(child_path("", "x y"), r#"["x y"]"#);
        assert_eq!(child_path("", "actr"), "actr");
    }

    #[test]
    fn exact_as_f64_rejects_integers_a_double_would_round() {
        let n = |text: &str| serde_json::from_str::<Number>(text).unwrap();
        assert!(exact_as_f64(&n("9007199254740992")));
        assert!(!exact_as_f64(&n("9007199254740993")));
        assert!(!exact_as_f64(&n("18446744073709551615")));
        assert!(!exact_as_f64(&n("-9223372036854775807")));
        assert!(exact_as_f64(&n("-9223372036854775808")));
        assert!(exact_as_f64(&n("0.1")));
    }

    #[test]
    fn format_time_keeps_milliseconds_and_finer_digits() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            format_time(t("2026-03-01T12:00:00Z")),
            "2026-03-01T12:00:00.000Z"
        );
        assert_eq!(
            format_time(t("2026-03-01T12:00:00.5Z")),
            "2026-03-01T12:00:00.500Z"
        );
        assert_eq!(
            format_time(t("2026-03-01T12:00:00.1234Z")),
            "2026-03-01T12:00:00.123400Z"
        );
        assert_eq!(
            format_time(t("2026-03-01T12:00:00.123456789Z")),
            "2026-03-01T12:00:00.123456789Z"
        );
    }

    #[test]
    fn echo_shortens_long_text() {
        assert_eq!(echo("ab"), "\"ab\"");
        assert!(echo(&"é".repeat(1000)).chars().count() < 60);
    }
}
