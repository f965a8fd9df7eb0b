//! Stored entries: the seq template, RFC 8785 known answers, and reading entries back.

use chrono::{DateTime, Utc};
use event::{
    entry_bytes, entry_template, entry_template_sealed, parse_entry, parse_entry_raw, EntryError,
    Event, ENTRY_BYTES_MAX, RECORDED_AT_BYTES_MAX, SEQ_DIGITS_MAX,
};
use serde_json::{json, Value};

const RECORDED_AT: &str = "2026-03-01T12:00:01.500Z";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn event(patch: Value) -> Event {
    let mut value = json!({"action": "model.update", "actor": {"id": "alice"}});
    value
        .as_object_mut()
        .unwrap()
        .extend(patch.as_object().unwrap().clone());
    Event::parse(value, now(), false).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// The entry for `event` at `seq`, built through the template.
fn entry(event: &Event, principal: &str, seq: u64) -> Vec<u8> {
    entry_bytes(&entry_template(event, principal).unwrap(), RECORDED_AT, seq)
}

/// The same entry built the slow, obvious way: one canonicalization of the whole object.
fn reference_entry(event: &Event, principal: &str, seq: u64) -> Vec<u8> {
    let whole = json!({
        "v": 2,
        "seq": seq,
        "recorded_at": RECORDED_AT,
        "source": {"principal": principal},
        "event": event.as_value(),
    });
    serde_json_canonicalizer::to_vec(&whole).unwrap()
}

/// The entry text expected around a known canonical `parameters` object.
fn expected_entry_with_parameters(parameters_jcs: &str, seq: u64) -> String {
    format!(
        r#"{{"event":{{"action":"model.update","actor":{{"id":"alice"}},"outcome":"success","parameters":{parameters_jcs},"time":"2026-03-01T12:00:00.000Z"}},"recorded_at":"{RECORDED_AT}","seq":{seq},"source":{{"principal":"tok-1"}},"v":2}}"#
    )
}

// --- the template equals a whole-object canonicalization ----------------------------------

#[test]
fn template_matches_whole_object_canonicalization_for_several_seqs() {
    let e = event(json!({"parameters": {"b": 1, "a": [true, null, 2.5]}}));
    for seq in [0, 1, 9, 10, 99, 100, 12_345, 4_294_967_296, 1 << 53] {
        assert_eq!(
            entry(&e, "tok-1", seq),
            reference_entry(&e, "tok-1", seq),
            "seq {seq}"
        );
    }
}

#[test]
fn template_matches_whole_object_canonicalization_for_unicode_content() {
    let e = event(json!({
        "actor": {"id": "zoë@example.com", "user_agent": "bot/1 \u{2028} \u{7}"},
        "resource": {"type": "dataset", "id": "données-客户-😀", "name": "שלום \"quoted\" \\ back"},
        "reason": "tab\there, newline\nthere, del \u{7f}, nul \u{0}",
        "parameters": {"\u{20ac}": 1, "\r": 2, "\u{fb33}": 3, "1": 4, "\u{1f600}": 5, "\u{80}": 6, "ö": 7}
    }));
    for (principal, seq) in [("tok-1", 0), ("ключ-😀\"\\", 77), ("", 1 << 40)] {
        assert_eq!(
            entry(&e, principal, seq),
            reference_entry(&e, principal, seq),
            "{principal} {seq}"
        );
    }
}

/// A deterministic xorshift generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Text mixing the characters whose handling differs between naive and RFC 8785
    /// serializers: escapes, controls, U+007F, U+2028, BMP private use above the
    /// surrogates, and supplementary-plane characters.
    fn text(&mut self) -> String {
        const PIECES: [&str; 16] = [
            "a",
            "Z",
            "0",
            "_",
            "\"",
            "\\",
            "/",
            "\u{0}",
            "\u{1f}",
            "\u{7f}",
            "é",
            "\u{2028}",
            "\u{e000}",
            "\u{fb33}",
            "\u{1f600}",
            "\u{10ffff}",
        ];
        (0..self.below(4))
            .map(|_| PIECES[self.below(PIECES.len())])
            .collect()
    }

    fn number(&mut self) -> Value {
        match self.below(3) {
            0 => json!(self.next() as i64 >> 11), // within +-2^53: exact as a double
            1 => json!(self.below(1000)),
            _ => loop {
                let f = f64::from_bits(self.next());
                if f.is_finite() {
                    break json!(f);
                }
            },
        }
    }

    fn value(&mut self, depth: usize) -> Value {
        match self.below(if depth > 4 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => self.number(),
            3 => Value::String(self.text()),
            4 => (0..self.below(4)).map(|_| self.value(depth + 1)).collect(),
            _ => Value::Object(
                (0..self.below(6))
                    .map(|_| (self.text(), self.value(depth + 1)))
                    .collect(),
            ),
        }
    }
}

#[test]
fn template_matches_whole_object_canonicalization_for_generated_values() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..2000 {
        let parameters: serde_json::Map<String, Value> = (0..rng.below(8))
            .map(|_| (rng.text(), rng.value(2)))
            .collect();
        let principal = rng.text();
        let e = event(json!({"parameters": parameters, "reason": rng.text()}));
        let seq = rng.next() >> 11;
        assert_eq!(
            String::from_utf8(entry(&e, &principal, seq)).unwrap(),
            String::from_utf8(reference_entry(&e, &principal, seq)).unwrap(),
            "case {case}"
        );
    }
}

#[test]
fn entry_has_the_documented_layout() {
    let e = event(json!({}));
    let text = String::from_utf8(entry(&e, "tok-1", 42)).unwrap();
    assert_eq!(
        text,
        r#"{"event":{"action":"model.update","actor":{"id":"alice"},"outcome":"success","time":"2026-03-01T12:00:00.000Z"},"recorded_at":"2026-03-01T12:00:01.500Z","seq":42,"source":{"principal":"tok-1"},"v":2}"#
    );
}

// --- RFC 8785 known answers, through the entry functions ------------------------------------

#[test]
fn rfc8785_section_3_2_2_example() {
    // Input and output of RFC 8785 section 3.2.2 (numbers, escapes, literals).
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let output = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
    let e = event(json!({"parameters": serde_json::from_str::<Value>(input).unwrap()}));
    assert_eq!(
        String::from_utf8(entry(&e, "tok-1", 7)).unwrap(),
        expected_entry_with_parameters(output, 7)
    );
}

#[test]
fn rfc8785_section_3_2_2_example_utf8_bytes() {
    // The hex dump of the canonical output given in RFC 8785 section 3.2.4.
    let hex = "7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 \
               75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a \
               5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 \
               65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 \
               5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30 \
               30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d";
    let expected: Vec<u8> = hex
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let input = r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],
      "string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}"#;
    let e = event(json!({"parameters": serde_json::from_str::<Value>(input).unwrap()}));
    let bytes = entry(&e, "tok-1", 0);
    let start = bytes
        .windows(b"\"parameters\":".len())
        .position(|w| w == b"\"parameters\":")
        .unwrap()
        + b"\"parameters\":".len();
    assert_eq!(&bytes[start..start + expected.len()], &expected[..]);
}

#[test]
fn rfc8785_section_3_2_3_sorting_example() {
    // RFC 8785 section 3.2.3: keys sort by UTF-16 code units, not by UTF-8 bytes or
    // code points (the emoji, a surrogate pair, sorts before U+FB33).
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let output = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                  \"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
                  \"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    let e = event(json!({"parameters": serde_json::from_str::<Value>(input).unwrap()}));
    assert_eq!(
        String::from_utf8(entry(&e, "tok-1", 3)).unwrap(),
        expected_entry_with_parameters(output, 3)
    );
}

#[test]
fn rfc8785_appendix_b_numbers() {
    // RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
    let table: [(u64, &str); 24] = [
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    // One metric per row, named so that keys sort in table order.
    let metrics: serde_json::Map<String, Value> = table
        .iter()
        .enumerate()
        .map(|(i, (bits, _))| (format!("m{i:02}"), json!(f64::from_bits(*bits))))
        .collect();
    let expected_metrics = table
        .iter()
        .enumerate()
        .map(|(i, (_, text))| format!("\"m{i:02}\":{text}"))
        .collect::<Vec<_>>()
        .join(",");
    let e = event(json!({ "metrics": metrics }));
    let text = String::from_utf8(entry(&e, "tok-1", 0)).unwrap();
    assert!(
        text.contains(&format!(r#""metrics":{{{expected_metrics}}},"outcome""#)),
        "{text}"
    );
}

// --- size limit ------------------------------------------------------------------------------

#[test]
fn event_over_the_entry_limit_is_too_large() {
    let e = event(json!({"reason": "x".repeat(ENTRY_BYTES_MAX)}));
    let err = entry_template(&e, "tok-1").unwrap_err();
    assert!(
        matches!(err, EntryError::TooLarge { bytes, max } if bytes > max && max == ENTRY_BYTES_MAX),
        "{err:?}"
    );
    assert_eq!(err.code(), "entry_too_large");
}

#[test]
fn entry_limit_is_exact_and_reserves_room_for_any_seq_and_time() {
    let base = entry_template(&event(json!({"reason": ""})), "p").unwrap();
    let room = ENTRY_BYTES_MAX
        - SEQ_DIGITS_MAX
        - RECORDED_AT_BYTES_MAX
        - base.head.len()
        - base.mid.len()
        - base.tail.len();
    let fits = event(json!({"reason": "x".repeat(room)}));
    let t = entry_template(&fits, "p").unwrap();
    let longest_time = "9999-12-31T23:59:59.999999999Z";
    assert_eq!(longest_time.len(), RECORDED_AT_BYTES_MAX);
    assert_eq!(
        event::format_time(
            chrono::DateTime::parse_from_rfc3339(longest_time)
                .unwrap()
                .into()
        ),
        longest_time
    );
    assert!(entry_bytes(&t, longest_time, 1 << 53).len() <= ENTRY_BYTES_MAX);
    let over = event(json!({"reason": "x".repeat(room + 1)}));
    assert_eq!(
        entry_template(&over, "p").unwrap_err(),
        EntryError::TooLarge {
            bytes: ENTRY_BYTES_MAX + 1,
            max: ENTRY_BYTES_MAX
        }
    );
}

#[test]
fn escapes_count_toward_the_limit() {
    // Each control character becomes six bytes (\u0001) in the stored entry.
    let e = event(json!({"reason": "\u{1}".repeat(ENTRY_BYTES_MAX / 6 + 1)}));
    assert!(entry_template(&e, "p").is_err());
}

#[test]
#[should_panic(expected = "exceeds 2^53")]
fn seq_beyond_2_pow_53_is_a_bug() {
    let t = entry_template(&event(json!({})), "p").unwrap();
    entry_bytes(&t, RECORDED_AT, (1 << 53) + 1);
}

// --- reading entries back ------------------------------------------------------------------

#[test]
fn parse_entry_round_trips() {
    let e = event(json!({"reason": "ünïcode 😀", "metrics": {"auc": 0.91}}));
    let stored = parse_entry(&entry(&e, "tok-ü", 123)).unwrap();
    assert_eq!(stored.v, 2);
    assert_eq!(stored.sealed, None);
    assert_eq!(stored.seq, 123);
    assert_eq!(stored.recorded_at, RECORDED_AT);
    assert_eq!(stored.principal, "tok-ü");
    assert_eq!(&stored.event, e.as_value());
}

#[test]
fn parse_entry_refuses_other_format_versions() {
    for v in [0, 3] {
        let bytes = format!(
            r#"{{"event":{{}},"recorded_at":"x","seq":1,"source":{{"principal":"p"}},"v":{v}}}"#
        );
        let err = parse_entry(bytes.as_bytes()).unwrap_err();
        assert_eq!(err, EntryError::UnsupportedVersion { v });
        assert_eq!(err.code(), "unsupported_entry_version");
    }
}

#[test]
fn parse_entry_reads_version_1_entries() {
    let bytes =
        br#"{"event":{"action":"a.b"},"recorded_at":"x","seq":1,"source":{"principal":"p"},"v":1}"#;
    let stored = parse_entry(bytes).unwrap();
    assert_eq!((stored.v, stored.seq, stored.sealed), (1, 1, None));
    // `sealed` arrived with version 2.
    let bytes = br#"{"event":{},"recorded_at":"x","sealed":{"s":"c"},"seq":1,"source":{"principal":"p"},"v":1}"#;
    assert_eq!(parse_entry(bytes).unwrap_err().code(), "malformed_entry");
}

#[test]
fn sealed_member_sits_between_recorded_at_and_seq_and_round_trips() {
    let e = event(json!({}));
    let mut sealed = serde_json::Map::new();
    sealed.insert(
        "hmac:1:zzzzzzzzzzzzzzzzzzzzzz".into(),
        json!("b64-ciphertext"),
    );
    sealed.insert("hmac:1:AAAAAAAAAAAAAAAAAAAAAA".into(), json!("other"));
    let t = entry_template_sealed(&e, Some(&sealed), "tok-1").unwrap();
    let bytes = entry_bytes(&t, RECORDED_AT, 5);
    let whole = json!({
        "v": 2, "seq": 5, "recorded_at": RECORDED_AT, "source": {"principal": "tok-1"},
        "event": e.as_value(), "sealed": sealed,
    });
    assert_eq!(bytes, serde_json_canonicalizer::to_vec(&whole).unwrap());
    let stored = parse_entry(&bytes).unwrap();
    assert_eq!(stored.sealed, Some(sealed));
    // An empty map writes no member at all.
    let empty = entry_template_sealed(&e, Some(&serde_json::Map::new()), "tok-1");
    assert_eq!(
        entry_bytes(&empty.unwrap(), RECORDED_AT, 5),
        entry(&e, "tok-1", 5)
    );
    for bad in [
        br#"{"event":{},"recorded_at":"x","sealed":{},"seq":1,"source":{"principal":"p"},"v":2}"#.as_slice(),
        br#"{"event":{},"recorded_at":"x","sealed":{"s":1},"seq":1,"source":{"principal":"p"},"v":2}"#,
        br#"{"event":{},"recorded_at":"x","sealed":"s","seq":1,"source":{"principal":"p"},"v":2}"#,
    ] {
        assert_eq!(parse_entry(bad).unwrap_err().code(), "malformed_entry");
    }
}

#[test]
fn parse_entry_refuses_malformed_entries() {
    for bytes in [
        &b"not json"[..],
        br#"[1]"#,
        br#"{"event":{},"recorded_at":"x","source":{"principal":"p"},"v":1}"#,
        br#"{"event":{},"recorded_at":"x","seq":-1,"source":{"principal":"p"},"v":1}"#,
        br#"{"event":[],"recorded_at":"x","seq":1,"source":{"principal":"p"},"v":1}"#,
        br#"{"event":{},"recorded_at":5,"seq":1,"source":{"principal":"p"},"v":1}"#,
        br#"{"event":{},"recorded_at":"x","seq":1,"source":{"principal":"p","x":1},"v":1}"#,
        br#"{"event":{},"extra":0,"recorded_at":"x","seq":1,"source":{"principal":"p"},"v":1}"#,
        br#"{"event":{},"recorded_at":"x","seq":1,"source":{"principal":"p"}}"#,
    ] {
        let err = parse_entry(bytes).unwrap_err();
        assert_eq!(
            err.code(),
            "malformed_entry",
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn parse_entry_refuses_oversized_input() {
    let bytes = vec![b' '; ENTRY_BYTES_MAX + 1];
    assert!(matches!(
        parse_entry(&bytes),
        Err(EntryError::TooLarge { .. })
    ));
}

#[test]
fn parse_entry_raw_agrees_with_parse_entry() {
    let e = event(json!({"reason": "ünïcode \"quoted\" 😀", "metrics": {"auc": 0.91}}));
    let mut sealed = serde_json::Map::new();
    sealed.insert("hmac:1:AAAAAAAAAAAAAAAAAAAAAA".into(), json!("c1"));
    let with_sealed = entry_bytes(
        &entry_template_sealed(&e, Some(&sealed), "tok-1").unwrap(),
        RECORDED_AT,
        7,
    );
    let v1 =
        br#"{"event":{"action":"a.b"},"recorded_at":"x","seq":1,"source":{"principal":"p"},"v":1}"#;
    for bytes in [entry(&e, "tok-ü", 123), with_sealed, v1.to_vec()] {
        let full = parse_entry(&bytes).unwrap();
        let raw = parse_entry_raw(&bytes).unwrap();
        assert_eq!(raw.recorded_at, full.recorded_at);
        let event: Value = serde_json::from_str(raw.event.get()).unwrap();
        assert_eq!(event, full.event);
        let sealed = raw
            .sealed
            .map(|s| serde_json::from_str::<serde_json::Map<String, Value>>(s.get()).unwrap());
        assert_eq!(sealed, full.sealed);
    }
    // What parse_entry refuses, the raw reader refuses with the same error.
    for bad in [
        br#"{"event":{},"recorded_at":"x","seq":1,"source":{"principal":"p"},"v":3}"#.as_slice(),
        br#"{"event":[],"recorded_at":"x","seq":1,"source":{"principal":"p"},"v":2}"#,
        br#"{"event":{},"recorded_at":"x","sealed":{"s":"c"},"seq":1,"source":{"principal":"p"},"v":1}"#,
        br#"{"event":{},"recorded_at":"x","sealed":[],"seq":1,"source":{"principal":"p"},"v":2}"#,
        br#"not json"#,
    ] {
        assert_eq!(
            parse_entry_raw(bad).unwrap_err(),
            parse_entry(bad).unwrap_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}
