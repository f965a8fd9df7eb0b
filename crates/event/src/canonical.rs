//! RFC 8785 canonical JSON of a `serde_json::Value`, written without intermediate buffers.
//!
//! `serde_json_canonicalizer::to_writer` is the reference. It stays in charge of numbers
//! (the ECMAScript formatting of RFC 8785 section 3.2.2.3), and strings are escaped by the
//! serde_json code it calls itself (section 3.2.2.2); nothing here escapes or formats a
//! leaf by hand. What this file adds is only the structure and the member order (section
//! 3.2.3), because the reference buffers every object member in its own heap vector,
//! re-parses every key to sort it and boxes a writer for every write: about 25 µs for a
//! typical event, more than the whole ingest budget, against about 2 µs here. Tests compare
//! the two on the RFC examples, on every character up to U+00A0, and on thousands of
//! generated values with hostile keys.

use serde_json::{Map, Value};

/// Appends the canonical form of `value` to `out`.
///
/// Recursion is bounded by the caller: events are at most [`super::DEPTH_MAX`] deep.
pub(crate) fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            if keys_in_canonical_order(map) {
                write_members(map.iter(), out);
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
                write_members(members.into_iter(), out);
            }
            out.push(b'}');
        }
    }
}

fn write_members<'a>(members: impl Iterator<Item = (&'a String, &'a Value)>, out: &mut Vec<u8>) {
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(value, out);
    }
}

/// Whether iterating `map` already yields keys in RFC 8785 order (section 3.2.3: by UTF-16
/// code units). For strings without supplementary-plane characters, UTF-16 code units are
/// the code points, whose order is the order of their UTF-8 bytes; so a map whose keys come
/// out in strictly increasing byte order, none with a 4-byte UTF-8 sequence (lead byte
/// 0xF0 and above), needs no sorting. serde_json's default map is a `BTreeMap`, so this
/// holds for nearly every event; it is checked rather than assumed so that enabling
/// serde_json's `preserve_order` feature somewhere cannot silently change stored bytes.
fn keys_in_canonical_order(map: &Map<String, Value>) -> bool {
    let mut previous: Option<&[u8]> = None;
    for key in map.keys() {
        let key = key.as_bytes();
        if key.iter().any(|&b| b >= 0xF0) || previous.is_some_and(|p| p >= key) {
            return false;
        }
        previous = Some(key);
    }
    true
}

/// Writes a number through the reference canonicalizer: the ECMAScript number formatting of
/// RFC 8785 section 3.2.2.3 is exactly what must not be reimplemented.
pub(crate) fn write_number(n: &serde_json::Number, out: &mut Vec<u8>) {
    serde_json_canonicalizer::to_writer(n, out).unwrap_or_else(|e| {
        // serde_json numbers are finite and a Vec cannot fail to grow.
        unreachable!("canonicalizing a JSON number failed: {e}")
    });
}

/// Writes a string with serde_json's escaper, which is the one the reference canonicalizer
/// itself calls: it escapes `"`, `\` and U+0000..U+001F (short forms for \b \t \n \f \r,
/// else `\u00xx` in lowercase hex) and nothing else, which is RFC 8785 section 3.2.2.2.
/// Going through the canonicalizer instead costs a heap allocation per write call, about
/// half of this module's time.
pub(crate) fn write_string(s: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, s)
        .unwrap_or_else(|e| unreachable!("writing a JSON string to a Vec failed: {e}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(value: &Value) -> String {
        let mut out = Vec::new();
        write_value(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn supplementary_keys_sort_by_utf16_not_code_point() {
        // U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FB33 although its code point
        // is larger.
        let value = json!({"\u{fb33}": 1, "\u{1f600}": 2, "a": 3});
        assert_eq!(
            canonical(&value),
            "{\"a\":3,\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
        assert_eq!(
            canonical(&value).into_bytes(),
            serde_json_canonicalizer::to_vec(&value).unwrap()
        );
    }

    #[test]
    fn byte_order_check_spots_supplementary_characters() {
        let map = |v: Value| v.as_object().unwrap().clone();
        assert!(keys_in_canonical_order(&map(
            json!({"a": 1, "é": 2, "\u{fb33}": 3})
        )));
        assert!(!keys_in_canonical_order(&map(
            json!({"a": 1, "\u{1f600}": 2})
        )));
    }
}
