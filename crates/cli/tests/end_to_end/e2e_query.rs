//! End to end: `GET /v1/events`, `mlaudit query` and `mlaudit reindex` against a real
//! server, each answer compared with a reference computed here from the events sent.

use crate::common;

/// This file tests the index against a reference computed from the events as sent, so
/// its server stores them as sent; privacy transforms are tested in e2e_privacy.rs.
const PLAIN: &[&str] = &["--pseudonymize", "false"];

use std::collections::{HashMap, HashSet};

use common::{cli, gen_events, Http, TestServer};
use serde_json::Value;

/// Every result of a query (following `next`), as event ids; checks no id repeats.
fn ids(srv: &TestServer, http: &Http, query: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in common::all_hits(srv, http, query) {
        assert!(e["seq"].is_u64() && e["leaf_hash"].is_string());
        assert!(e["recorded_at"].is_string());
        out.push(e["event"]["id"].as_str().unwrap().to_string());
    }
    let distinct: HashSet<&String> = out.iter().collect();
    assert_eq!(distinct.len(), out.len(), "{query}: an event came twice");
    out
}

fn reference(events: &[Value], keep: impl Fn(&Value) -> bool, desc: bool) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .filter(|e| keep(e))
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    if desc {
        out.reverse();
    }
    out
}

fn time_ms(e: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

fn most_common_actor(events: &[Value]) -> String {
    let mut n: HashMap<&str, usize> = HashMap::new();
    for e in events {
        *n.entry(e["actor"]["id"].as_str().unwrap()).or_default() += 1;
    }
    let mut v: Vec<_> = n.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v[0].0.to_string()
}

/// The answers the tests compare, by name.
fn answers(srv: &TestServer, http: &Http, actor: &str) -> Vec<(String, Vec<String>)> {
    [
        format!("actor={actor}"),
        "action=dataset.*&order=asc&limit=37".to_string(),
        "outcome=denied&order=asc".to_string(),
        "limit=1000&order=asc".to_string(),
    ]
    .into_iter()
    .map(|q| {
        let got = ids(srv, http, &q);
        (q, got)
    })
    .collect()
}

#[test]
fn filters_and_pagination_match_a_reference() {
    let srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    let events = srv.send_in_order(&http, &gen_events(2000, 41));
    srv.wait_indexed(&http, 2000);

    let actor = most_common_actor(&events);
    let got = ids(&srv, &http, &format!("actor={actor}"));
    let want = reference(&events, |e| e["actor"]["id"] == actor.as_str(), true);
    assert!(want.len() > 1);
    assert_eq!(got, want, "actor={actor}, newest first");

    // A glob with a combination, paged in small pages: every match exactly once.
    let got = ids(
        &srv,
        &http,
        "action=dataset.*&outcome=success&order=asc&limit=7",
    );
    let want = reference(
        &events,
        |e| {
            e["action"].as_str().unwrap().starts_with("dataset.")
                && e.get("outcome")
                    .and_then(Value::as_str)
                    .unwrap_or("success")
                    == "success"
        },
        false,
    );
    assert!(want.len() > 7);
    assert_eq!(got, want, "dataset.* and success, paged");

    // A project in a time window on event time.
    let project = events[0]["context"]["project"]
        .as_str()
        .unwrap()
        .to_string();
    let (from, to) = ("2026-01-05T00:00:00Z", "2026-03-01T00:00:00Z");
    let (f, t) = (
        chrono::DateTime::parse_from_rfc3339(from)
            .unwrap()
            .timestamp_millis(),
        chrono::DateTime::parse_from_rfc3339(to)
            .unwrap()
            .timestamp_millis(),
    );
    let got = ids(
        &srv,
        &http,
        &format!("project={project}&from={from}&to={to}&limit=50"),
    );
    let want = reference(
        &events,
        |e| e["context"]["project"] == project.as_str() && (f..t).contains(&time_ms(e)),
        true,
    );
    assert_eq!(got, want, "project={project} in [{from}, {to})");

    // Unknown parameters and bad values: 400 with a JSON error naming them.
    for (q, code, needle) in [
        ("colour=red", "unknown_parameter", "colour"),
        ("order=sideways", "bad_parameter", "order"),
        ("from=yesterday", "bad_parameter", "from"),
        ("limit=-1", "bad_parameter", "limit"),
        ("outcome=maybe", "bad_parameter", "maybe"),
        ("related=dataset", "bad_parameter", "related"),
        ("cursor=nonsense", "bad_parameter", "cursor"),
        ("q=%22unbalanced", "bad_parameter", "full-text"),
    ] {
        let r = http.get(&srv.at(&format!("/v1/events?{q}")));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{q}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{q}: {v}"
        );
    }

    // The CLI: JSON array, following cursors.
    let _url = srv.url();
    let out = srv.cli(
        &[
            "query",
            "--action",
            "dataset.*",
            "--order",
            "asc",
            "--limit",
            "100",
            "--all",
            "--json",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit query --json");
    let v: Value = serde_json::from_str(&out.stdout).expect("--json prints JSON");
    let got: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"]["id"].as_str().unwrap().to_string())
        .collect();
    let want = reference(
        &events,
        |e| e["action"].as_str().unwrap().starts_with("dataset."),
        false,
    );
    assert_eq!(got, want, "mlaudit query --action dataset.* --json --all");

    // NDJSON and the table.
    let out = srv.cli(&["query", "--actor", &actor, "--ndjson"], &[], None);
    out.assert_ok("mlaudit query --ndjson");
    let want = reference(&events, |e| e["actor"]["id"] == actor.as_str(), true);
    let got: Vec<String> = out
        .stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(got, want);
    // CSV: a header, then one record per result in the same order, fields quoted as needed.
    let out = srv.cli(&["query", "--actor", &actor, "--csv", "--all"], &[], None);
    out.assert_ok("mlaudit query --csv");
    let mut rd = csv::Reader::from_reader(out.stdout.as_bytes());
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header[0], "seq");
    assert_eq!(header[5], "actor");
    // Issue 11.12: the CSV lacked what an auditor reads: reason, tags, related, parameters.
    assert_eq!(
        &header[12..],
        ["reason", "tags", "related", "parameters"],
        "{header:?}"
    );
    let records: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), want.len(), "{}", out.stdout);
    for r in &records {
        assert_eq!(&r[5], actor.as_str());
    }
    let by_id: HashMap<&str, &Value> = events
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    let mut seen_related = 0;
    for (r, id) in records.iter().zip(&want) {
        let e = by_id[id.as_str()];
        assert_eq!(&r[12], e["reason"].as_str().unwrap_or(""), "{id}");
        if let Some(p) = e.get("parameters") {
            let got: Value = serde_json::from_str(&r[15]).unwrap();
            assert_eq!(&got, p, "{id}");
        }
        if let Some(links) = e["related"].as_array() {
            seen_related += 1;
            assert_eq!(r[14].split(';').count(), links.len(), "{id}: {}", &r[14]);
            assert!(r[14].contains(links[0]["id"].as_str().unwrap()), "{id}");
        }
    }
    assert!(seen_related > 0, "the sample has related links");
    let out = srv.cli(&["query", "--actor", &actor], &[], None);
    out.assert_ok("mlaudit query (table)");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("SEQ"), "{}", out.stdout);
    assert_eq!(lines.len(), want.len() + 1, "{}", out.stdout);
    assert!(lines[1].contains(&actor));
    let out = srv.cli(&["query", "--colour", "red"], &[], None);
    assert_ne!(out.code, 0);
}

#[test]
fn index_catches_up_after_sigkill_and_reindex_gives_the_same_answers() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let events = srv.send_in_order(&http, &gen_events(3000, 42));
    // Killed right after the acknowledgements: the index may be behind the ledger.
    srv.kill9();
    srv.restart();
    srv.wait_indexed(&http, 3000);
    let actor = most_common_actor(&events);
    let live = answers(&srv, &http, &actor);
    let all = &live[3].1;
    assert_eq!(
        *all,
        reference(&events, |_| true, false),
        "every event queryable"
    );
    assert_eq!(
        live[0].1,
        reference(&events, |e| e["actor"]["id"] == actor.as_str(), true)
    );

    srv.stop();
    // reindex refuses a running server's data directory; this one is stopped.
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let out = cli(&["reindex", "--data-dir", &dir, "--quiet"], &[], None);
    out.assert_ok("mlaudit reindex");
    assert!(
        out.stderr.contains("indexed 3000 entries"),
        "{}",
        out.stderr
    );
    srv.restart();
    assert_eq!(srv.index_lag(&http), 0);
    assert_eq!(
        answers(&srv, &http, &actor),
        live,
        "reindex equals the live index"
    );
    let out = cli(&["reindex", "--data-dir", &dir, "--quiet"], &[], None);
    assert_ne!(
        out.code, 0,
        "reindex must refuse a running server's data dir"
    );
    assert!(out.stderr.contains("LOCK"), "{}", out.stderr);
}

/// Regression (issue 11.10): `--limit` above the cap was silently capped.
#[test]
fn a_limit_over_the_cap_is_an_error_not_a_silent_cap() {
    let srv = TestServer::start();
    let http = srv.http();
    let r = http.get(&srv.at("/v1/events?limit=1001"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("1000"), "{}", r.text());
    assert_eq!(http.get(&srv.at("/v1/events?limit=1000")).status, 200);
    let out = srv.cli(&["query", "--limit", "5000"], &[], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("1..=1000"), "{}", out.stderr);
}

/// Issue 19.5: queries had no time limit. With `--query-timeout-ms 1`, a query that scans
/// thousands of index rows is stopped: 503 `query_timeout` with `Retry-After` and a message
/// that says what to do, and the server goes on serving.
#[test]
fn a_query_past_the_time_limit_is_stopped() {
    let srv = TestServer::start_with(&["--query-timeout-ms", "1"]);
    let http = srv.http();
    let sent = srv.send_in_order(&http, &common::gen_events(10_000, 5));
    srv.wait_indexed(&http, sent.len() as u64);
    let r = http.get(&srv.at("/v1/stats?by=actor&interval=hour"));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "query_timeout", "{}", r.text());
    assert!(r.text().contains("query_timeout_ms"), "{}", r.text());
    assert!(r.headers.get("retry-after").is_some());
    srv.assert_healthy(&http);
}

/// Issue 11.11: one resource syntax (`TYPE:ID[@VERSION]`) and one link syntax
/// (`TYPE:ID[@VERSION][:RELATION]`, the relation optional where it filters) in every
/// command: `query --resource`, `query --related` narrowed by version and relation.
#[test]
fn one_resource_and_link_syntax_across_commands() {
    let srv = TestServer::start();
    let http = srv.http();
    let link = |v: &str, rel: &str| serde_json::json!({"type": "dataset", "id": "ds-9", "version": v, "relation": rel});
    let events = [
        ("e1", "model:m1@3", link("v1", "training_data")),
        ("e2", "model:m1@4", link("v2", "training_data")),
        ("e3", "evaluation:ev1@1", link("v2", "evaluation_data")),
    ];
    for (id, res, rel) in &events {
        let (t, rest) = res.split_once(':').unwrap();
        let (rid, v) = rest.split_once('@').unwrap();
        let ev = serde_json::json!({"id": id, "action": "model.train", "actor": {"id": "svc", "type": "service"},
            "resource": {"type": t, "id": rid, "version": v}, "related": [rel]});
        assert_eq!(srv.post_json(&http, &ev).status, 201);
    }
    srv.wait_indexed(&http, 3);
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["query", "--json", "--order", "asc"];
        all.extend_from_slice(args);
        let out = srv.cli(&all, &[], None);
        out.assert_ok("query");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| h["event"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&["--related", "dataset:ds-9"]), ["e1", "e2", "e3"]);
    assert_eq!(
        ids(&["--related", "dataset:ds-9:training_data"]),
        ["e1", "e2"]
    );
    assert_eq!(ids(&["--related", "dataset:ds-9@v2:training_data"]), ["e2"]);
    assert_eq!(ids(&["--related", "dataset:ds-9@v2"]), ["e2", "e3"]);
    assert_eq!(ids(&["--resource", "model:m1"]), ["e1", "e2"]);
    assert_eq!(ids(&["--resource", "model:m1@4"]), ["e2"]);
    let out = srv.cli(&["query", "--resource", "model/m1"], &[], None);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("TYPE:ID"), "{}", out.stderr);
    let r = http.get(&srv.at("/v1/events?related_relation=training_data"));
    assert_eq!(r.status, 400, "{}", r.text());
    // Issue 11.12: a lookup by the event's own id, and FTS syntax errors in user terms.
    assert_eq!(ids(&["--id", "e2"]), ["e2"]);
    assert!(ids(&["--id", "e4"]).is_empty());
    let out = srv.cli(&["query", "--q", "\"unbalanced"], &[], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("not a valid full-text query") && out.stderr.contains("double quotes"),
        "{}",
        out.stderr
    );
}
