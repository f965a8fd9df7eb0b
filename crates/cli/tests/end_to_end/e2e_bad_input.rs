//! End to end: every kind of bad input to `POST /v1/events` gets a clear
//! JSON error, stores nothing, and leaves the server healthy.

use crate::common;

use std::io::Write;

use common::TestServer;
use serde_json::{json, Value};

const NDJSON: &str = "application/x-ndjson";
const JSON: &str = "application/json";

/// One bad request and what the server must answer.
struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    /// Content-Encoding header, if any.
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// Text the error (message or a detail) must contain.
    mentions: &'static [&'static str],
}

fn ok_event(id: &str) -> Value {
    json!({"id": id, "action": "model.train", "actor": {"id": "alice"}})
}

fn line(v: &Value) -> String {
    let mut s = serde_json::to_string(v).unwrap();
    s.push('\n');
    s
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

fn json_case(
    name: &'static str,
    body: Value,
    status: u16,
    code: &'static str,
    mentions: &'static [&'static str],
) -> Case {
    Case {
        name,
        content_type: Some(JSON),
        encoding: None,
        body: serde_json::to_vec(&body).unwrap(),
        status,
        code,
        mentions,
    }
}

fn cases() -> Vec<Case> {
    let body_limit = event::BODY_BYTES_MAX;
    vec![
        Case {
            name: "malformed JSON",
            content_type: Some(JSON),
            encoding: None,
            body: br#"{"action": "model.train", "actor": {"id": "a"}"#.to_vec(),
            status: 400,
            code: "malformed_json",
            mentions: &["line 1"],
        },
        json_case(
            "wrong type of action",
            json!({"action": 5, "actor": {"id": "a"}}),
            400,
            "invalid_event",
            &["action"],
        ),
        json_case(
            "wrong type of actor",
            json!({"action": "model.train", "actor": "alice"}),
            400,
            "invalid_event",
            &["actor"],
        ),
        json_case(
            "not an object",
            json!([ok_event("na-1"), 42]),
            400,
            "not_an_object",
            &["item 1"],
        ),
        json_case(
            "missing action",
            json!({"actor": {"id": "a"}}),
            400,
            "invalid_event",
            &["action"],
        ),
        json_case(
            "missing actor.id",
            json!({"action": "model.train", "actor": {"type": "user"}}),
            400,
            "invalid_event",
            &["actor.id"],
        ),
        json_case(
            "missing actor",
            json!({"action": "model.train"}),
            400,
            "invalid_event",
            &["actor"],
        ),
        json_case(
            "bad action syntax (one segment)",
            json!({"action": "train", "actor": {"id": "a"}}),
            400,
            "invalid_event",
            &["action"],
        ),
        json_case(
            "bad action syntax (upper case)",
            json!({"action": "Model.Train", "actor": {"id": "a"}}),
            400,
            "invalid_event",
            &["action"],
        ),
        json_case(
            "unknown outcome",
            json!({"action": "model.train", "actor": {"id": "a"}, "outcome": "maybe"}),
            400,
            "invalid_event",
            &["outcome"],
        ),
        json_case(
            "bad time",
            json!({"action": "model.train", "actor": {"id": "a"}, "time": "yesterday"}),
            400,
            "invalid_event",
            &["time"],
        ),
        json_case(
            "non-numeric metric",
            json!({"action": "model.train", "actor": {"id": "a"}, "metrics": {"accuracy": "high"}}),
            400,
            "invalid_event",
            &["metrics.accuracy"],
        ),
        json_case(
            "event over the entry limit",
            json!({"action": "model.train", "actor": {"id": "a"},
                   "reason": "x".repeat(event::ENTRY_BYTES_MAX)}),
            413,
            "event_too_large",
            &["65535"],
        ),
        Case {
            name: "body over the 16 MiB limit",
            content_type: Some(JSON),
            encoding: None,
            body: {
                // A valid JSON array, so only the size is wrong.
                let one = serde_json::to_vec(&ok_event("big")).unwrap();
                let mut b = b"[".to_vec();
                while b.len() <= body_limit {
                    b.extend_from_slice(&one);
                    b.push(b',');
                    b.extend_from_slice(&[b' '; 4096]);
                }
                b.extend_from_slice(&one);
                b.push(b']');
                b
            },
            status: 413,
            code: "body_too_large",
            mentions: &["16777216"],
        },
        json_case(
            "nesting too deep",
            json!({"action": "model.train", "actor": {"id": "a"}, "parameters": nested(40)}),
            400,
            "too_deep",
            &["32"],
        ),
        Case {
            name: "invalid UTF-8",
            content_type: Some(JSON),
            encoding: None,
            body: b"{\"action\":\"model.train\",\"actor\":{\"id\":\"al\xffce\"}}".to_vec(),
            status: 400,
            code: "invalid_utf8",
            mentions: &["UTF-8"],
        },
        Case {
            name: "wrong content type",
            content_type: Some("text/plain"),
            encoding: None,
            body: line(&ok_event("ct-1")).into_bytes(),
            status: 415,
            code: "unsupported_media_type",
            mentions: &["text/plain"],
        },
        Case {
            name: "missing content type",
            content_type: None,
            encoding: None,
            body: line(&ok_event("ct-2")).into_bytes(),
            status: 415,
            code: "unsupported_media_type",
            mentions: &["missing"],
        },
        Case {
            name: "unknown content encoding",
            content_type: Some(NDJSON),
            encoding: Some("br"),
            body: line(&ok_event("enc-1")).into_bytes(),
            status: 415,
            code: "unsupported_encoding",
            mentions: &["br"],
        },
        Case {
            name: "empty body",
            content_type: Some(JSON),
            encoding: None,
            body: Vec::new(),
            status: 400,
            code: "empty_body",
            mentions: &["no events"],
        },
        Case {
            name: "empty NDJSON (blank lines only)",
            content_type: Some(NDJSON),
            encoding: None,
            body: b"\n\n  \n".to_vec(),
            status: 400,
            code: "empty_body",
            mentions: &["no events"],
        },
        json_case("empty array", json!([]), 400, "empty_body", &["no events"]),
        Case {
            name: "NDJSON with one malformed line",
            content_type: Some(NDJSON),
            encoding: None,
            body: format!(
                "{}{}{{\"action\": oops}}\n{}",
                line(&ok_event("nd-1")),
                line(&ok_event("nd-2")),
                line(&ok_event("nd-4"))
            )
            .into_bytes(),
            status: 400,
            code: "malformed_json",
            mentions: &["line 3"],
        },
        Case {
            name: "NDJSON with one invalid event",
            content_type: Some(NDJSON),
            encoding: None,
            body: format!(
                "{}{}\n{}",
                line(&ok_event("nv-1")),
                line(&json!({"id": "nv-2", "action": "model.train"})),
                line(&ok_event("nv-4"))
            )
            .into_bytes(),
            status: 400,
            code: "invalid_event",
            mentions: &["line 2", "actor"],
        },
        Case {
            name: "too many events (1001)",
            content_type: Some(NDJSON),
            encoding: None,
            body: (0..1001)
                .map(|i| line(&ok_event(&format!("many-{i}"))))
                .collect::<String>()
                .into_bytes(),
            status: 413,
            code: "too_many_events",
            mentions: &["1001", "1000"],
        },
        json_case(
            "duplicate id within one batch",
            json!([ok_event("dup-1"), ok_event("dup-2"), ok_event("dup-1")]),
            400,
            "duplicate_id_in_batch",
            &["item 0"],
        ),
        json_case(
            "audit.* action refused",
            json!({"action": "audit.erase", "actor": {"id": "mallory"}}),
            400,
            "invalid_event",
            &["reserved"],
        ),
        Case {
            name: "gzip bomb over the limit",
            content_type: Some(NDJSON),
            encoding: Some("gzip"),
            body: {
                // Inflates past the limit (whitespace: still a valid body otherwise).
                let mut plain = line(&ok_event("bomb-1")).into_bytes();
                plain.resize(body_limit + 1024, b' ');
                let bomb = gzip(&plain);
                assert!(bomb.len() < 64 * 1024, "the bomb is small on the wire");
                bomb
            },
            status: 413,
            code: "body_too_large",
            mentions: &["decompressed"],
        },
        Case {
            name: "corrupt gzip",
            content_type: Some(NDJSON),
            encoding: Some("gzip"),
            body: b"\x1f\x8b\x08\x00garbage".to_vec(),
            status: 400,
            code: "bad_encoding",
            mentions: &["gzip"],
        },
    ]
}

fn error_text(v: &Value) -> String {
    let mut s = v["error"]["message"].as_str().unwrap_or("").to_string();
    for d in v["error"]["details"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            " | item {} {}: {}",
            d["index"],
            d["field"].as_str().unwrap_or(""),
            d["message"].as_str().unwrap_or("")
        ));
    }
    s
}

#[test]
fn bad_input_gets_a_json_error_stores_nothing_and_server_stays_healthy() {
    let srv = TestServer::start();
    let http = srv.http();
    // Something in the log already, so "nothing appended" is not just "still empty".
    let r = srv.post_json(&http, &ok_event("before"));
    assert_eq!(r.status, 201, "{}", r.text());
    let size = srv.size(&http);

    let mut failures = Vec::new();
    for c in cases() {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(ct) = c.content_type {
            headers.push(("content-type", ct));
        }
        if let Some(enc) = c.encoding {
            headers.push(("content-encoding", enc));
        }
        let r = match http.try_post(&srv.at("/v1/events"), &headers, c.body) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: transport error {e}", c.name));
                continue;
            }
        };
        let mut problems = Vec::new();
        if r.status != c.status {
            problems.push(format!("status {} (want {})", r.status, c.status));
        }
        match serde_json::from_slice::<Value>(&r.body) {
            Ok(v) => {
                if v["error"]["code"] != c.code {
                    problems.push(format!("code {} (want {})", v["error"]["code"], c.code));
                }
                let text = error_text(&v);
                for m in c.mentions {
                    if !text.contains(m) {
                        problems.push(format!("error does not mention {m:?}: {text}"));
                    }
                }
            }
            Err(e) => problems.push(format!("body is not JSON ({e}): {}", r.text())),
        }
        let now = srv.size(&http);
        if now != size {
            problems.push(format!("log size changed from {size} to {now}"));
        }
        let h = http.get(&srv.at("/healthz"));
        if h.status != 200 {
            problems.push(format!("healthz answered {}", h.status));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", c.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Rejected batches reserved no ids: the ids of events in them are new.
    let r = srv.post_json(&http, &json!([ok_event("dup-1"), ok_event("nd-1")]));
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["duplicates"], 0, "{v}");
    assert_eq!(srv.size(&http), size + 2);

    // Every rejection was counted by reason.
    let metrics = http.get(&srv.at("/metrics")).text();
    for reason in [
        "malformed_json",
        "invalid_event",
        "body_too_large",
        "too_many_events",
    ] {
        assert!(
            metrics.contains(&format!(
                "mlaudit_events_rejected_total{{reason=\"{reason}\"}}"
            )),
            "no rejection counter for {reason}:\n{metrics}"
        );
    }
}

#[test]
fn gzip_body_is_accepted() {
    let srv = TestServer::start();
    let http = srv.http();
    let plain: String = (0..3)
        .map(|i| line(&ok_event(&format!("gz-{i}"))))
        .collect();
    let r = http.post(
        &srv.at("/v1/events"),
        &[("content-type", NDJSON), ("content-encoding", "gzip")],
        gzip(plain.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 3);
    assert_eq!(srv.size(&http), 3);
    let e = http.get(&srv.at("/v1/events/2")).json();
    assert_eq!(e["event"]["id"], "gz-2");

    // A JSON array, gzip-compressed, with a charset parameter in the type.
    let arr = json!([ok_event("gz-a"), ok_event("gz-b")]);
    let r = http.post(
        &srv.at("/v1/events"),
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("content-encoding", "gzip"),
        ],
        gzip(&serde_json::to_vec(&arr).unwrap()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(srv.size(&http), 5);
    srv.assert_healthy(&http);
}

#[test]
fn bad_query_parameters_and_paths_are_json_errors() {
    let srv = TestServer::start();
    let http = srv.http();
    let r = srv.post_json(&http, &ok_event("q-1"));
    assert_eq!(r.status, 201);
    srv.wait_checkpoint(&http, 1);
    for (path, status, code) in [
        ("/v1/events/abc", 400, "bad_seq"),
        ("/v1/events/0?format=xml", 400, "bad_format"),
        ("/v1/events/0?foo=1", 400, "unknown_parameter"),
        ("/v1/events/99", 404, "not_found"),
        ("/v1/proof/inclusion", 400, "bad_parameter"),
        ("/v1/proof/inclusion?seq=x", 400, "bad_parameter"),
        ("/v1/proof/inclusion?seq=5&size=1", 400, "bad_proof_request"),
        (
            "/v1/proof/consistency?from=0&to=1",
            400,
            "bad_proof_request",
        ),
        (
            "/v1/proof/consistency?from=2&to=1",
            400,
            "bad_proof_request",
        ),
        ("/log/tile/x/y", 404, "not_found"),
    ] {
        let r = http.get(&srv.at(path));
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], code, "{path}");
    }
    srv.assert_healthy(&http);
}

/// Regression (issue 18.6): only the first gzip member was decoded (and the answer was
/// still 201); junk after a gzip body was ignored.
#[test]
fn every_gzip_member_is_decoded_and_trailing_junk_refused() {
    let srv = TestServer::start();
    let http = srv.http();
    let first: String = (0..2)
        .map(|i| line(&ok_event(&format!("m1-{i}"))))
        .collect();
    let second: String = (0..3)
        .map(|i| line(&ok_event(&format!("m2-{i}"))))
        .collect();
    let mut body = gzip(first.as_bytes());
    body.extend(gzip(second.as_bytes()));
    let post = |body: Vec<u8>| {
        http.post(
            &srv.at("/v1/events"),
            &[("content-type", NDJSON), ("content-encoding", "gzip")],
            body,
        )
    };
    let r = post(body);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["accepted"], 5, "both members: {}", r.text());
    assert_eq!(srv.size(&http), 5);

    let mut junk = gzip(line(&ok_event("junk-0")).as_bytes());
    junk.extend_from_slice(b"trailing garbage");
    let r = post(junk);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "bad_encoding");
    assert_eq!(srv.size(&http), 5, "nothing stored");
}

/// Regression (issue 18.13): invalid UTF-8 in a path or query was answered in plain text.
#[test]
fn invalid_utf8_in_paths_and_queries_is_a_json_error() {
    let srv = TestServer::start();
    let http = srv.http();
    for path in [
        "/v1/events?actor=%FF%FE",
        "/v1/resources/dataset/%C3%28",
        "/v1/events/%FF",
    ] {
        let r = http.get(&srv.at(path));
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let code = r.json()["error"]["code"].clone();
        assert!(code.is_string(), "{path}: {}", r.text());
    }
}

/// Regression (issue 18.13): duplicate member names and numbers that parse to something
/// else were stored (the last name won; `1e-400` became 0).
#[test]
fn ambiguous_json_is_refused_and_nothing_stored() {
    let srv = TestServer::start();
    let http = srv.http();
    for body in [
        r#"{"action":"model.train","action":"model.delete","actor":{"id":"a"}}"#,
        r#"{"action":"model.train","actor":{"id":"a"},"metrics":{"loss":1e-400}}"#,
    ] {
        let r = http.post(
            &srv.at("/v1/events"),
            &[("content-type", "application/json")],
            body.as_bytes().to_vec(),
        );
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "malformed_json");
    }
    assert_eq!(srv.size(&http), 0);
}
