//! Bodies of the fuzz targets over this crate's parsers, as plain functions: `fuzz/` runs
//! them under libFuzzer (`cargo +nightly fuzz run body`), and `tests/event_fuzz.rs` runs
//! them on stable over a seeded corpus and a few thousand mutated inputs. Each takes
//! arbitrary bytes and panics only on a bug: a property of the parser that does not hold.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    entry_bytes, entry_template, parse_entry, parse_events, split_body, split_body_items,
    BodyError, BodyFormat, BATCH_EVENTS_MAX, BODY_BYTES_MAX, DEPTH_MAX,
};

/// The request-body parser, then validation and the stored entry, on `data`: its first
/// byte chooses the format (bit 0: JSON or NDJSON) and the batch limit (the other bits,
/// 0 = [`BATCH_EVENTS_MAX`]); the rest is the body.
///
/// Properties: no panic; an accepted body gives 1 to `batch_max` objects no deeper than
/// [`DEPTH_MAX`], each NDJSON item on its own line, strictly after the one before, whose
/// text parses to the same value; [`split_body`] agrees; a refusal names a UTF-8 offset
/// that is the real one and a size over the real limit; an event that validates makes an
/// entry that [`parse_entry`] reads back with the same event and seq.
pub fn body(data: &[u8]) {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let format = if control & 1 == 0 {
        BodyFormat::Json
    } else {
        BodyFormat::Ndjson
    };
    let batch_max = match usize::from(control >> 1) {
        0 => BATCH_EVENTS_MAX,
        n => n,
    };
    let items = match split_body_items(body, format, batch_max) {
        Ok(items) => items,
        Err(e) => {
            check_refusal(&e, body);
            assert_eq!(split_body(body, format, batch_max), Err(e));
            return;
        }
    };
    assert!(!items.is_empty() && items.len() <= batch_max, "batch size");
    let text = std::str::from_utf8(body).expect("accepted bodies are UTF-8");
    let lines: Vec<&str> = text.split('\n').collect();
    let mut last_line = 0;
    for item in &items {
        assert!(item.value.is_object(), "an accepted item is an object");
        assert!(
            depth(&item.value) <= DEPTH_MAX,
            "an accepted item is too deep"
        );
        match (format, item.line) {
            (BodyFormat::Json, None) => {}
            (BodyFormat::Ndjson, Some(line)) => {
                assert!(line > last_line && line <= lines.len(), "line {line}");
                last_line = line;
                let own = lines[line - 1]
                    .strip_suffix('\r')
                    .unwrap_or(lines[line - 1]);
                let reparsed: Value = serde_json::from_str(own).expect("the line is JSON");
                assert_eq!(reparsed, item.value, "line {line} parses to its item");
            }
            (f, l) => panic!("{f:?} item with line {l:?}"),
        }
    }
    let values: Vec<Value> = items.iter().map(|i| i.value.clone()).collect();
    assert_eq!(split_body(body, format, batch_max), Ok(values));

    let now: DateTime<Utc> = "2026-01-02T03:04:05Z".parse().expect("a fixed time");
    let Ok(events) = parse_events(items, now, false) else {
        return;
    };
    for (seq, event) in events.iter().enumerate() {
        let Ok(template) = entry_template(event, "fuzz") else {
            continue;
        };
        let bytes = entry_bytes(&template, "2026-01-02T03:04:05.000Z", seq as u64);
        let stored = parse_entry(&bytes).expect("an entry we made reads back");
        assert_eq!(stored.seq, seq as u64);
        // Canonically equal: the entry writes 1.0 as 1, which parses back as an integer.
        assert_eq!(
            serde_json_canonicalizer::to_vec(&stored.event).expect("JSON"),
            serde_json_canonicalizer::to_vec(event.as_value()).expect("JSON"),
            "the entry keeps the event"
        );
    }
}

fn check_refusal(e: &BodyError, body: &[u8]) {
    assert!(!e.code().is_empty() && !e.to_string().is_empty());
    match e {
        BodyError::TooLarge { bytes, max } => {
            assert!(*bytes == body.len() && *bytes > *max && *max == BODY_BYTES_MAX)
        }
        BodyError::InvalidUtf8 { offset } => {
            let real = std::str::from_utf8(body).expect_err("refused as not UTF-8");
            assert_eq!(*offset, real.valid_up_to());
        }
        BodyError::Syntax { line, column, .. } => assert!(*line >= 1 && *column >= 1),
        _ => {}
    }
}

/// Nesting depth of a value (an object or array counts one level, a scalar none).
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Object(m) => {
                deepest = deepest.max(d);
                stack.extend(m.values().map(|c| (c, d + 1)));
            }
            Value::Array(a) => {
                deepest = deepest.max(d);
                stack.extend(a.iter().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}
