//! Request body framing: `split_body` / `split_body_items`.

use event::{
    split_body, split_body_items, BodyError, BodyFormat, BATCH_EVENTS_MAX, BODY_BYTES_MAX,
    DEPTH_MAX,
};
use serde_json::{json, Value};

const MIN: &str = r#"{"action":"model.update","actor":{"id":"alice"}}"#;

fn split(body: &str, format: BodyFormat) -> Result<Vec<Value>, BodyError> {
    split_body(body.as_bytes(), format, BATCH_EVENTS_MAX)
}

/// An event whose `parameters` value nests `levels` containers, so the event is
/// `levels + 1` deep.
fn nested_event(levels: usize) -> String {
    format!(
        r#"{{"action":"model.update","actor":{{"id":"a"}},"parameters":{}{}}}"#,
        r#"{"a":"#.repeat(levels - 1) + "{}",
        "}".repeat(levels - 1)
    )
}

#[test]
fn single_object_is_one_event() {
    let values = split(MIN, BodyFormat::Json).unwrap();
    assert_eq!(values, vec![serde_json::from_str::<Value>(MIN).unwrap()]);
}

#[test]
fn array_gives_events_in_order() {
    let body = r#" [ {"n":1}, {"n":2}, {"n":3} ] "#;
    let values = split(body, BodyFormat::Json).unwrap();
    assert_eq!(values, vec![json!({"n":1}), json!({"n":2}), json!({"n":3})]);
}

#[test]
fn ndjson_skips_blank_lines_and_accepts_crlf() {
    let body = "\r\n{\"n\":1}\r\n\r\n  \t\n{\"n\":2}\n\n{\"n\":3}";
    let items = split_body_items(body.as_bytes(), BodyFormat::Ndjson, 10).unwrap();
    let got: Vec<(Value, Option<usize>)> = items.into_iter().map(|i| (i.value, i.line)).collect();
    assert_eq!(
        got,
        vec![
            (json!({"n":1}), Some(2)),
            (json!({"n":2}), Some(5)),
            (json!({"n":3}), Some(7)),
        ]
    );
}

#[test]
fn json_items_have_no_line() {
    let items = split_body_items(b"[{},{}]", BodyFormat::Json, 10).unwrap();
    assert!(items.iter().all(|i| i.line.is_none()));
}

#[test]
fn empty_body_is_refused() {
    for (body, format) in [
        ("", BodyFormat::Json),
        (" \n\t", BodyFormat::Json),
        ("[]", BodyFormat::Json),
        ("", BodyFormat::Ndjson),
        ("\n\r\n  \n", BodyFormat::Ndjson),
    ] {
        let err = split(body, format).unwrap_err();
        assert_eq!(err, BodyError::Empty, "{body:?}");
        assert_eq!(err.code(), "empty_body");
    }
}

#[test]
fn invalid_utf8_names_the_byte_offset() {
    let mut body = br#"{"action":"model.update","reason":""#.to_vec();
    let offset = body.len();
    body.extend_from_slice(&[0xC3, 0x28]); // a lead byte followed by a non-continuation byte
    body.extend_from_slice(br#""}"#);
    let err = split_body(&body, BodyFormat::Json, 10).unwrap_err();
    assert_eq!(err, BodyError::InvalidUtf8 { offset });
    assert_eq!(err.code(), "invalid_utf8");
    assert!(err.to_string().contains(&format!("byte offset {offset}")));
}

#[test]
fn malformed_json_reports_line_and_column() {
    let body = "{\n  \"action\": \"model.update\",\n  \"actor\": {\"id\": \"a\"},,\n}";
    let err = split(body, BodyFormat::Json).unwrap_err();
    let BodyError::Syntax {
        line,
        column,
        message,
    } = &err
    else {
        panic!("expected a syntax error, got {err:?}");
    };
    assert_eq!((*line, *column), (3, 24));
    assert!(
        !message.contains("at line"),
        "position is not repeated: {message}"
    );
    assert_eq!(err.code(), "malformed_json");
    assert!(err.to_string().contains("line 3, column 24"), "{err}");
}

#[test]
fn truncated_json_is_malformed() {
    let err = split(r#"[{"action":"model.update""#, BodyFormat::Json).unwrap_err();
    assert_eq!(err.code(), "malformed_json");
}

#[test]
fn ndjson_with_one_bad_line_names_the_line_number() {
    let body = format!("{MIN}\n\n{MIN}\n{{\"action\": oops}}\n{MIN}\n");
    let err = split(&body, BodyFormat::Ndjson).unwrap_err();
    let BodyError::Syntax { line, column, .. } = &err else {
        panic!("expected a syntax error, got {err:?}");
    };
    assert_eq!((*line, *column), (4, 12));
    assert!(err.to_string().contains("line 4"), "{err}");
}

#[test]
fn ndjson_line_with_two_values_is_malformed() {
    let body = format!("{MIN} {MIN}\n");
    let err = split(&body, BodyFormat::Ndjson).unwrap_err();
    assert!(matches!(err, BodyError::Syntax { line: 1, .. }), "{err:?}");
}

#[test]
fn ndjson_line_that_is_not_an_object_names_the_line() {
    let body = format!("{MIN}\n\n[{MIN}]\n");
    let err = split(&body, BodyFormat::Ndjson).unwrap_err();
    assert_eq!(
        err,
        BodyError::NotAnObject {
            index: 1,
            line: Some(3),
            found: "an array"
        }
    );
    assert_eq!(err.code(), "not_an_object");
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn array_item_that_is_not_an_object_is_refused() {
    let err = split(r#"[{}, "model.update", {}]"#, BodyFormat::Json).unwrap_err();
    assert_eq!(
        err,
        BodyError::NotAnObject {
            index: 1,
            line: None,
            found: "a string"
        }
    );
}

#[test]
fn top_level_scalar_is_refused() {
    let err = split("42", BodyFormat::Json).unwrap_err();
    assert!(
        matches!(err, BodyError::NotAnObject { index: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn too_many_events_in_an_array() {
    let body = format!("[{}]", vec!["{}"; BATCH_EVENTS_MAX + 1].join(","));
    let err = split(&body, BodyFormat::Json).unwrap_err();
    assert_eq!(
        err,
        BodyError::TooManyEvents {
            count: BATCH_EVENTS_MAX + 1,
            max: BATCH_EVENTS_MAX
        }
    );
    assert_eq!(err.code(), "too_many_events");
}

#[test]
fn too_many_events_in_ndjson_is_refused_before_parsing() {
    // The lines are not even JSON: the count is checked first.
    let body = "not json\n".repeat(11);
    let err = split_body(body.as_bytes(), BodyFormat::Ndjson, 10).unwrap_err();
    assert_eq!(err, BodyError::TooManyEvents { count: 11, max: 10 });
}

#[test]
fn batch_limit_is_configurable() {
    let body = format!("[{MIN},{MIN},{MIN}]");
    assert_eq!(
        split_body(body.as_bytes(), BodyFormat::Json, 3)
            .unwrap()
            .len(),
        3
    );
    assert!(split_body(body.as_bytes(), BodyFormat::Json, 2).is_err());
}

#[test]
fn nesting_33_levels_in_parameters_is_too_deep() {
    let body = format!("[{MIN},{}]", nested_event(33));
    let err = split(&body, BodyFormat::Json).unwrap_err();
    assert_eq!(
        err,
        BodyError::TooDeep {
            index: 1,
            line: None,
            depth: 34
        }
    );
    assert_eq!(err.code(), "too_deep");
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    // parameters at level 2, so DEPTH_MAX - 1 levels inside it make the event DEPTH_MAX deep.
    let body = nested_event(DEPTH_MAX - 1);
    split(&body, BodyFormat::Json).unwrap();
    let err = split(&nested_event(DEPTH_MAX), BodyFormat::Json).unwrap_err();
    assert!(matches!(err, BodyError::TooDeep { depth, .. } if depth == DEPTH_MAX + 1));
}

#[test]
fn hostile_nesting_in_an_array_does_not_overflow_the_stack() {
    // Far beyond serde_json's recursion limit of 128: it must stop, and we report the depth.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!(r#"[{MIN}, {{"parameters":{deep}}}]"#);
    let err = split(&body, BodyFormat::Json).unwrap_err();
    assert_eq!(
        err,
        BodyError::TooDeep {
            index: 1,
            line: None,
            depth: 100_001
        }
    );
}

#[test]
fn hostile_unclosed_nesting_in_ndjson_names_the_line() {
    let body = format!("{MIN}\n{}\n", "{\"a\":".repeat(50_000));
    let err = split(&body, BodyFormat::Ndjson).unwrap_err();
    assert_eq!(
        err,
        BodyError::TooDeep {
            index: 1,
            line: Some(2),
            depth: 50_000
        }
    );
}

#[test]
fn body_over_the_size_limit_is_refused() {
    let body = vec![b' '; BODY_BYTES_MAX + 1];
    let err = split_body(&body, BodyFormat::Json, BATCH_EVENTS_MAX).unwrap_err();
    assert_eq!(
        err,
        BodyError::TooLarge {
            bytes: BODY_BYTES_MAX + 1,
            max: BODY_BYTES_MAX
        }
    );
    assert_eq!(err.code(), "body_too_large");
}

/// Regression (issue 18.13): duplicate member names were accepted (the last one won).
#[test]
fn duplicate_member_names_are_refused() {
    for (body, format) in [
        (r#"{"action":"a.b","action":"c.d","actor":{"id":"x"}}"#, BodyFormat::Json),
        (r#"[{"action":"a.b","actor":{"id":"x","id":"y"}}]"#, BodyFormat::Json),
        (
            "{\"action\":\"a.b\",\"actor\":{\"id\":\"x\"}}\n{\"action\":\"a.b\",\"actor\":{\"id\":\"x\"},\"parameters\":{\"k\":1,\"k\":2}}",
            BodyFormat::Ndjson,
        ),
    ] {
        match split(body, format) {
            Err(e @ BodyError::Syntax { .. }) => {
                assert_eq!(e.code(), "malformed_json");
                assert!(e.to_string().contains("duplicate member name"), "{e}");
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    // The same name in different objects is fine.
    let ok = r#"{"action":"a.b","actor":{"id":"x"},"parameters":{"id":"y"}}"#;
    assert_eq!(split(ok, BodyFormat::Json).unwrap().len(), 1);
}

/// Regression (issue 18.13): `1e-400` was stored as 0; big integers as rounded floats.
#[test]
fn numbers_that_would_change_are_refused() {
    for n in [
        "1e-400",
        "-2.5E-999",
        "0.000e-400000001",
        "123456789012345678901234567890",
    ] {
        let body = format!(r#"{{"action":"a.b","actor":{{"id":"x"}},"metrics":{{"m":{n}}}}}"#);
        match split(&body, BodyFormat::Json) {
            Err(e @ BodyError::Syntax { .. }) => assert!(e.to_string().contains(n), "{e}"),
            Ok(v) if n.starts_with("0.000") => assert_eq!(v[0]["metrics"]["m"], 0.0),
            other => panic!("{n}: {other:?}"),
        }
    }
    for n in [
        "0e-400",
        "1e-300",
        "-9223372036854775808",
        "18446744073709551615",
        "0.5",
    ] {
        let body = format!(
            r#"{{"action":"a.b","actor":{{"id":"x"}},"metrics":{{"m":{n}}},"reason":"1e-400"}}"#
        );
        assert!(split(&body, BodyFormat::Json).is_ok(), "{n}");
    }
}

#[test]
fn a_syntax_error_just_after_a_line_feed_is_at_column_1() {
    // Regression (found by the `body` fuzz target): serde_json reports column 0 there,
    // and the error said "line 2, column 0" although columns are 1-based.
    match split("\"\n", BodyFormat::Json) {
        Err(BodyError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 1)),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}
