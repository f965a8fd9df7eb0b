//! Framing a request body into event values: the body-level checks that come before any
//! field is looked at.

use serde_json::Value;

use super::{BODY_BYTES_MAX, DEPTH_MAX};

/// How a request body is framed, chosen from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: one event object, or an array of event objects.
    Json,
    /// `application/x-ndjson`: one event object per line; blank lines are skipped and a line
    /// may end in CRLF.
    Ndjson,
}

/// Why a request body could not be split into events. Nothing of such a body is stored.
///
/// Every variant maps to HTTP 400 except [`BodyError::TooLarge`] and
/// [`BodyError::TooManyEvents`], which map to 413.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body holds no event: it is empty, only whitespace, only blank lines, or `[]`.
    #[error("request body contains no events")]
    Empty,
    /// The body is larger than allowed (after decompression).
    #[error("request body is {bytes} bytes, more than the limit of {max}")]
    TooLarge {
        /// Size of the body.
        bytes: usize,
        /// The limit, [`BODY_BYTES_MAX`].
        max: usize,
    },
    /// The body is not UTF-8 (RFC 8259 section 8.1 requires it).
    #[error("request body is not valid UTF-8 at byte offset {offset}")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of a valid UTF-8 sequence.
        offset: usize,
    },
    /// The body (or, for NDJSON, one line of it) is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the body; for NDJSON this is the line of the bad event.
        line: usize,
        /// 1-based column within that line.
        column: usize,
        /// serde_json's description, without its position suffix.
        message: String,
    },
    /// An item is valid JSON but not an object.
    #[error("{} is {found}, not a JSON object", item_name(*index, *line))]
    NotAnObject {
        /// 0-based index of the item in the batch.
        index: usize,
        /// 1-based line, for NDJSON bodies.
        line: Option<usize>,
        /// The JSON type that was found instead (`"array"`, `"string"`, …).
        found: &'static str,
    },
    /// An item nests objects and arrays deeper than [`DEPTH_MAX`].
    #[error("{} is nested {depth} levels deep, more than the limit of {DEPTH_MAX}", item_name(*index, *line))]
    TooDeep {
        /// 0-based index of the item in the batch.
        index: usize,
        /// 1-based line, for NDJSON bodies.
        line: Option<usize>,
        /// Depth of the item; the item object itself is level 1.
        depth: usize,
    },
    /// The batch holds more events than the server accepts in one request.
    #[error("request holds {count} events, more than the limit of {max}; split it into several requests")]
    TooManyEvents {
        /// Number of events in the body.
        count: usize,
        /// The configured limit (default [`super::BATCH_EVENTS_MAX`]).
        max: usize,
    },
}

impl BodyError {
    /// A stable machine-readable code for the `error.code` field of the API response.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::Empty => "empty_body",
            BodyError::TooLarge { .. } => "body_too_large",
            BodyError::InvalidUtf8 { .. } => "invalid_utf8",
            BodyError::Syntax { .. } => "malformed_json",
            BodyError::NotAnObject { .. } => "not_an_object",
            BodyError::TooDeep { .. } => "too_deep",
            BodyError::TooManyEvents { .. } => "too_many_events",
        }
    }
}

fn item_name(index: usize, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("item {index} (line {line})"),
        None => format!("item {index}"),
    }
}

/// One raw event value of a batch, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyItem {
    /// The JSON object, not yet validated.
    pub value: Value,
    /// The 1-based line it was on, for NDJSON bodies; error messages name it because a
    /// producer finds a bad event in a file by its line, not by its index.
    pub line: Option<usize>,
}

/// Splits a request body into event values, in order.
///
/// Checks, in this order: size ([`BODY_BYTES_MAX`]), UTF-8, emptiness, the event count
/// (`batch_max`; for NDJSON before any line is parsed), JSON syntax, that every item is an
/// object, and nesting depth ([`DEPTH_MAX`]). Parsing cannot exhaust the stack: serde_json
/// stops at 128 levels, and anything deeper than [`DEPTH_MAX`] is reported as
/// [`BodyError::TooDeep`] with its depth, found by an iterative walk or, past serde_json's
/// limit, by a byte scan.
///
/// Cost: one pass to validate UTF-8, one parse into [`Value`] and one walk of each value;
/// values are moved out of the parsed array, never cloned.
pub fn split_body(
    body: &[u8],
    format: BodyFormat,
    batch_max: usize,
) -> Result<Vec<Value>, BodyError> {
    let items = split_body_items(body, format, batch_max)?;
    Ok(items.into_iter().map(|item| item.value).collect())
}

/// Like [`split_body`], but keeps each item's NDJSON line number so that
/// [`super::parse_events`] can name it in field errors.
pub fn split_body_items(
    body: &[u8],
    format: BodyFormat,
    batch_max: usize,
) -> Result<Vec<BodyItem>, BodyError> {
    if body.len() > BODY_BYTES_MAX {
        return Err(BodyError::TooLarge {
            bytes: body.len(),
            max: BODY_BYTES_MAX,
        });
    }
    let text = std::str::from_utf8(body).map_err(|e| BodyError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    if is_blank(text) {
        return Err(BodyError::Empty);
    }
    match format {
        BodyFormat::Json => split_json(text, batch_max),
        BodyFormat::Ndjson => split_ndjson(text, batch_max),
    }
}

fn split_json(text: &str, batch_max: usize) -> Result<Vec<BodyItem>, BodyError> {
    let items_in_array = text.trim_start().starts_with('[');
    let parsed = parse_strict(text).map_err(|e| parse_error(&e, text, items_in_array, 0, None))?;
    check_numbers(text, None)?;
    let values = match parsed {
        Value::Array(values) => values,
        single => vec![single],
    };
    if values.is_empty() {
        return Err(BodyError::Empty);
    }
    if values.len() > batch_max {
        return Err(BodyError::TooManyEvents {
            count: values.len(),
            max: batch_max,
        });
    }
    let mut items = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        check_item(&value, index, None)?;
        items.push(BodyItem { value, line: None });
    }
    Ok(items)
}

fn split_ndjson(text: &str, batch_max: usize) -> Result<Vec<BodyItem>, BodyError> {
    // Frame first, so an oversized batch is refused before any parsing work is spent on it.
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .enumerate()
        .map(|(i, line)| (i + 1, line.strip_suffix('\r').unwrap_or(line)))
        .filter(|(_, line)| !is_blank(line))
        .collect();
    if lines.is_empty() {
        return Err(BodyError::Empty);
    }
    if lines.len() > batch_max {
        return Err(BodyError::TooManyEvents {
            count: lines.len(),
            max: batch_max,
        });
    }
    let mut items = Vec::with_capacity(lines.len());
    for (index, (line_number, line)) in lines.into_iter().enumerate() {
        let value = parse_strict(line)
            .map_err(|e| parse_error(&e, line, false, index, Some(line_number)))?;
        check_numbers(line, Some(line_number))?;
        check_item(&value, index, Some(line_number))?;
        items.push(BodyItem {
            value,
            line: Some(line_number),
        });
    }
    Ok(items)
}

/// Parses one JSON text like `serde_json::from_str`, but refuses an object with two members
/// of the same name (RFC 8259 leaves their meaning open; serde_json keeps the last, so what
/// a producer's other tools read and what the log stores could differ).
fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A [`Value`] seed that refuses duplicate member names.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(Strict)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member name {key:?} in an object"
                )));
            }
            let v = map.next_value_seed(Strict)?;
            members.insert(key, v);
        }
        Ok(Value::Object(members))
    }
}

/// Refuses numbers that parsing would change silently: a non-zero number too small for an
/// f64 (`1e-400` would be stored as 0) and integers outside the 64-bit range (stored as a
/// rounded float). `text` is valid JSON (already parsed).
fn check_numbers(text: &str, line: Option<usize>) -> Result<(), BodyError> {
    let b = text.as_bytes();
    let (mut i, mut in_string, mut escaped) = (0, false, false);
    while i < b.len() {
        let c = b[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                i += 1;
            }
            let token = &text[start..i];
            let mantissa = token.split(['e', 'E']).next().unwrap_or(token);
            let nonzero = mantissa.bytes().any(|d| matches!(d, b'1'..=b'9'));
            let problem = if token.contains(['.', 'e', 'E']) {
                let f: f64 = token.parse().unwrap_or(0.0);
                (f == 0.0 && nonzero).then_some("is too small to store: it would become 0")
            } else {
                (token.parse::<i64>().is_err() && token.parse::<u64>().is_err())
                    .then_some("is outside the 64-bit integer range: it would be rounded")
            };
            if let Some(problem) = problem {
                let before = &text[..start];
                let line_in_text = before.matches('\n').count() + 1;
                let column = start - before.rfind('\n').map_or(0, |n| n + 1) + 1;
                return Err(BodyError::Syntax {
                    line: line.unwrap_or(line_in_text),
                    column,
                    message: format!("the number {token} {problem}"),
                });
            }
            continue;
        }
        i += 1;
    }
    Ok(())
}

/// The whitespace JSON allows between tokens (RFC 8259 section 2).
fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn check_item(value: &Value, index: usize, line: Option<usize>) -> Result<(), BodyError> {
    if !value.is_object() {
        return Err(BodyError::NotAnObject {
            index,
            line,
            found: json_type(value),
        });
    }
    let depth = depth_of(value);
    if depth > DEPTH_MAX {
        return Err(BodyError::TooDeep { index, line, depth });
    }
    Ok(())
}

/// Depth of a value (a scalar is 0, `{}` is 1), computed with an explicit stack so that it
/// never recurses, whatever the input.
fn depth_of(value: &Value) -> usize {
    let mut work: Vec<(usize, &Value)> = Vec::with_capacity(16);
    let mut deepest = 0;
    work.push((0, value));
    while let Some((above, v)) = work.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(above + 1);
                work.extend(items.iter().map(|item| (above + 1, item)));
            }
            Value::Object(map) => {
                deepest = deepest.max(above + 1);
                work.extend(map.values().map(|item| (above + 1, item)));
            }
            _ => {}
        }
    }
    deepest
}

/// The JSON name of a value's type, for error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Turns a serde_json error on `text` into a [`BodyError`]. serde_json reports input
/// deeper than its recursion limit as a syntax error; that case is recognized and reported
/// as [`BodyError::TooDeep`] with the depth found by [`scan_too_deep`].
fn parse_error(
    error: &serde_json::Error,
    text: &str,
    items_in_array: bool,
    index: usize,
    line: Option<usize>,
) -> BodyError {
    let full = error.to_string();
    if full.starts_with("recursion limit exceeded") {
        if let Some((item, depth)) = scan_too_deep(text.as_bytes(), items_in_array) {
            return BodyError::TooDeep {
                index: index + item,
                line,
                depth,
            };
        }
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    BodyError::Syntax {
        // For NDJSON the text is one line, so serde_json's line is always 1.
        line: line.unwrap_or(error.line()),
        // serde_json says column 0 for an error just after a line feed (`"` then a line
        // feed: EOF in a string); columns here are 1-based. Found by the `body` fuzz target.
        column: error.column().max(1),
        message,
    }
}

/// Finds the first item nested deeper than [`DEPTH_MAX`] by scanning bytes, without
/// parsing or recursion, and returns its index and depth. Used only on the error path, for
/// input too deep for serde_json to parse at all. With `items_in_array`, the items are the
/// elements of a top-level array; otherwise the whole text is one item.
fn scan_too_deep(text: &[u8], items_in_array: bool) -> Option<(usize, usize)> {
    let outer = usize::from(items_in_array);
    let (mut depth, mut index, mut item_depth) = (0usize, 0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                item_depth = item_depth.max(depth.saturating_sub(outer));
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if items_in_array && depth == 1 => {
                if item_depth > DEPTH_MAX {
                    return Some((index, item_depth));
                }
                index += 1;
                item_depth = 0;
            }
            _ => {}
        }
    }
    (item_depth > DEPTH_MAX).then_some((index, item_depth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_containers_not_scalars() {
        for (text, depth) in [
            ("1", 0),
            ("{}", 1),
            (r#"{"a":[1,{"b":2}]}"#, 3),
            ("[[],[[[]]]]", 4),
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(depth_of(&v), depth, "{text}");
        }
    }

    #[test]
    fn scan_finds_the_deep_item_and_ignores_brackets_in_strings() {
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        let text = format!(r#"[{{"a":"[[[[\"{{"}}, {{"b":{deep}}}]"#);
        assert_eq!(scan_too_deep(text.as_bytes(), true), Some((1, 41)));
        assert_eq!(scan_too_deep(br#"{"a":"[[[["}"#, false), None);
    }
}
