//! End to end: `GET /v1/resources/{type}/{id}` and `mlaudit history` against a real
//! server, the summary and timeline compared with a reference computed here from the
//! events sent.

mod common;

/// This file tests the index against a reference computed from the events as sent, so
/// its server stores them as sent; privacy transforms are tested in e2e_privacy.rs.
const PLAIN: &[&str] = &["--pseudonymize", "false"];

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::{gen_events, Http, TestServer};
use serde_json::{json, Value};

fn resource_of(e: &Value) -> Option<(String, String)> {
    let r = e.get("resource")?;
    Some((r["type"].as_str()?.into(), r["id"].as_str()?.into()))
}

fn time_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

/// The summary the server should give, from the events of one resource in log order.
fn reference_summary(events: &[&Value]) -> Value {
    let times: Vec<i64> = events
        .iter()
        .map(|e| time_ms(e["time"].as_str().unwrap()))
        .collect();
    let mut versions: Vec<String> = Vec::new();
    let mut actions: BTreeMap<String, u64> = BTreeMap::new();
    let mut actors: BTreeSet<String> = BTreeSet::new();
    for e in events {
        if let Some(v) = e["resource"]["version"].as_str() {
            if !versions.iter().any(|x| x == v) {
                versions.push(v.to_string());
            }
        }
        *actions
            .entry(e["action"].as_str().unwrap().to_string())
            .or_default() += 1;
        actors.insert(e["actor"]["id"].as_str().unwrap().to_string());
    }
    let ids: Vec<&String> = actors.iter().take(100).collect();
    json!({
        "first_seen": times.iter().min().unwrap(),
        "last_seen": times.iter().max().unwrap(),
        "events": events.len(),
        "versions": versions,
        "counts_by_action": actions,
        "actors": {"count": actors.len(), "ids": ids},
    })
}

/// The server's summary with its times as milliseconds (the reference's form).
fn comparable(mut s: Value) -> Value {
    for k in ["first_seen", "last_seen"] {
        s[k] = json!(time_ms(s[k].as_str().unwrap()));
    }
    s
}

/// Every timeline event id of `type/id` (following `next`), and the last summary.
fn timeline(srv: &TestServer, http: &Http, path: &str, query: &str) -> (Vec<String>, Value) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = srv.at(&format!("{path}?{query}"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = http.get(&url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let v = r.json();
        for e in v["timeline"]["events"].as_array().unwrap() {
            assert!(e["seq"].is_u64() && e["leaf_hash"].is_string());
            out.push(e["event"]["id"].as_str().unwrap().to_string());
        }
        match v["timeline"]["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (out, v["summary"].clone()),
        }
    }
}

/// Compares the summary and the whole timeline of `rtype:rid` (both orders, small pages)
/// with a reference from `events`; returns the reference event ids and summary.
fn check_resource(
    srv: &TestServer,
    http: &Http,
    events: &[Value],
    rtype: &str,
    rid: &str,
) -> (Vec<String>, Value) {
    let (rtype, rid) = (rtype.to_string(), rid.to_string());
    let mine: Vec<&Value> = events
        .iter()
        .filter(|e| resource_of(e).as_ref() == Some(&(rtype.clone(), rid.clone())))
        .collect();
    assert!(mine.len() > 1, "{rtype}:{rid} has {} events", mine.len());
    let want_ids: Vec<String> = mine
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let want_summary = reference_summary(&mine);

    let path = format!("/v1/resources/{rtype}/{rid}");
    let first = http.get(&srv.at(&path));
    assert_eq!(first.status, 200, "{}", first.text());
    let v = first.json();
    assert_eq!(v["type"], rtype.as_str());
    assert_eq!(v["id"], rid.as_str());
    assert_eq!(comparable(v["summary"].clone()), want_summary);

    // The whole timeline, oldest first by default, in small pages; and newest first.
    let (got, summary) = timeline(srv, http, &path, "limit=3");
    assert_eq!(got, want_ids, "timeline, oldest first");
    assert_eq!(comparable(summary), want_summary);
    let (got, _) = timeline(srv, http, &path, "order=desc&limit=2");
    let mut rev = want_ids.clone();
    rev.reverse();
    assert_eq!(got, rev, "timeline, newest first");
    // The same as GET /v1/events on the resource.
    let r = http.get(&srv.at(&format!(
        "/v1/events?resource_type={rtype}&resource_id={rid}&order=asc&limit=1000"
    )));
    assert_eq!(r.status, 200);
    let page = http.get(&srv.at(&format!("{path}?limit=1000"))).json();
    assert_eq!(page["timeline"], r.json());

    (want_ids, want_summary)
}

#[test]
fn summary_and_timeline_match_a_reference() {
    let srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    let events = srv.send_in_order(&http, &gen_events(2000, 43));
    srv.wait_indexed(&http, 2000);

    // The resource with the most events (ties: the smallest type and id).
    let mut n: HashMap<(String, String), usize> = HashMap::new();
    for e in &events {
        if let Some(r) = resource_of(e) {
            *n.entry(r).or_default() += 1;
        }
    }
    let mut ranked: Vec<_> = n.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (rtype, rid) = ranked[0].0.clone();
    // Also the resource with the most distinct versions, so that their order is checked.
    let mut versions: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    for e in &events {
        if let (Some(r), Some(v)) = (resource_of(e), e["resource"]["version"].as_str()) {
            versions.entry(r).or_default().insert(v.to_string());
        }
    }
    let mut by_versions: Vec<_> = versions.into_iter().collect();
    by_versions.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    let (vtype, vid) = by_versions[0].0.clone();
    assert!(by_versions[0].1.len() > 1, "no resource has two versions");
    check_resource(&srv, &http, &events, &vtype, &vid);
    let (want_ids, want_summary) = check_resource(&srv, &http, &events, &rtype, &rid);
    let path = format!("/v1/resources/{rtype}/{rid}");

    // Unknown resources are 404, unknown parameters and bad values 400, with JSON errors.
    let r = http.get(&srv.at("/v1/resources/dataset/no-such-dataset"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_found");
    for q in ["actor=x", "order=sideways", "limit=ten", "cursor=zz"] {
        let r = http.get(&srv.at(&format!("{path}?{q}")));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.json()["error"]["message"].is_string());
    }

    // `mlaudit history`: the summary lines, then one table row per event.
    let _url = srv.url();
    let out = srv.cli(
        &["history", &rtype, &rid, "--all", "--limit", "5"],
        &[],
        None,
    );
    out.assert_ok("mlaudit history");
    let events_line = format!("events      {}", want_ids.len());
    assert!(out.stdout.contains(&events_line), "{}", out.stdout);
    let actors_line = format!(
        "actors      {}",
        want_summary["actors"]["count"].as_u64().unwrap()
    );
    assert!(out.stdout.contains(&actors_line), "{}", out.stdout);
    for (action, count) in want_summary["counts_by_action"].as_object().unwrap() {
        assert!(
            out.stdout.contains(&format!("{action} {count}")),
            "{action} {count} missing:\n{}",
            out.stdout
        );
    }
    let rows = out
        .stdout
        .lines()
        .filter(|l| l.contains(&format!("{rtype}:{rid}")))
        .count();
    // The `resource` summary line, then one table row per event.
    assert_eq!(rows, 1 + want_ids.len(), "{}", out.stdout);
    let out = srv.cli(&["history", &rtype, &rid, "--all", "--json"], &[], None);
    out.assert_ok("mlaudit history --json");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<&str> = v["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, want_ids);
    let out = srv.cli(&["history", "dataset", "no-such-dataset"], &[], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("404"), "{}", out.stderr);
}
