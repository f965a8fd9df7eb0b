//! End to end: `GET /v1/resources/{type}/{id}` and `mlaudit history` against a real
//! server, the summary and timeline (every event naming the resource, as its subject or in
//! `related`) compared with a reference computed here from the events sent.

use crate::common;

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

/// The relations under which `e` names `(t, id)` in `related` (`None` for a link without one).
fn related_as(e: &Value, t: &str, id: &str) -> Vec<Option<String>> {
    e["related"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == t && r["id"] == id)
        .map(|r| r["relation"].as_str().map(str::to_string))
        .collect()
}

/// Whether `e` names `(t, id)`, as its resource or in `related`.
fn names(e: &Value, t: &str, id: &str) -> bool {
    resource_of(e) == Some((t.into(), id.into())) || !related_as(e, t, id).is_empty()
}

fn time_ms(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .timestamp_millis()
}

/// The summary the server should give, from the events naming `(t, id)` in log order.
fn reference_summary(events: &[&Value], t: &str, id: &str) -> Value {
    let times: Vec<i64> = events
        .iter()
        .map(|e| time_ms(e["time"].as_str().unwrap()))
        .collect();
    let mut versions: Vec<String> = Vec::new();
    let mut actions: BTreeMap<String, u64> = BTreeMap::new();
    let mut actors: BTreeSet<String> = BTreeSet::new();
    let mut as_subject = 0;
    let mut as_related: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        let mut named: Vec<String> = Vec::new();
        if resource_of(e) == Some((t.into(), id.into())) {
            as_subject += 1;
            named.extend(e["resource"]["version"].as_str().map(str::to_string));
        }
        let mut relations = BTreeSet::new();
        for r in e["related"].as_array().into_iter().flatten() {
            if r["type"] == t && r["id"] == id {
                relations.insert(r["relation"].as_str().unwrap_or("").to_string());
                named.extend(r["version"].as_str().map(str::to_string));
            }
        }
        for r in relations {
            *as_related.entry(r).or_default() += 1;
        }
        // Versions first named by the same event come in string order.
        named.sort();
        for v in named {
            if !versions.contains(&v) {
                versions.push(v);
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
        "as_subject": as_subject,
        "as_related": as_related,
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

/// A timeline row as compared: the event id, its `role` and its `relations`.
type Row = (String, String, Vec<Option<String>>);

/// Every timeline row of `type/id` (following `next`), and the last summary.
fn timeline(srv: &TestServer, http: &Http, path: &str, query: &str) -> (Vec<Row>, Value) {
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
            let relations = e["relations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().map(str::to_string))
                .collect();
            out.push((
                e["event"]["id"].as_str().unwrap().to_string(),
                e["role"].as_str().unwrap().to_string(),
                relations,
            ));
        }
        match v["timeline"]["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (out, v["summary"].clone()),
        }
    }
}

/// Compares the summary and the whole timeline of `rtype:rid` (both orders, small pages)
/// with a reference from `events`; returns the reference rows and summary.
fn check_resource(
    srv: &TestServer,
    http: &Http,
    events: &[Value],
    rtype: &str,
    rid: &str,
) -> (Vec<Row>, Value) {
    let mine: Vec<&Value> = events.iter().filter(|e| names(e, rtype, rid)).collect();
    assert!(mine.len() > 1, "{rtype}:{rid} has {} events", mine.len());
    let want_rows: Vec<Row> = mine
        .iter()
        .map(|e| {
            let subject = resource_of(e) == Some((rtype.into(), rid.into()));
            let role = if subject { "subject" } else { "related" };
            (
                e["id"].as_str().unwrap().to_string(),
                role.to_string(),
                related_as(e, rtype, rid),
            )
        })
        .collect();
    let want_summary = reference_summary(&mine, rtype, rid);

    let path = format!("/v1/resources/{rtype}/{rid}");
    let first = http.get(&srv.at(&path));
    assert_eq!(first.status, 200, "{}", first.text());
    let v = first.json();
    assert_eq!(v["type"], rtype);
    assert_eq!(v["id"], rid);
    assert_eq!(comparable(v["summary"].clone()), want_summary);

    // The whole timeline, oldest first by default, in small pages; and newest first.
    let (got, summary) = timeline(srv, http, &path, "limit=3");
    assert_eq!(got, want_rows, "timeline, oldest first");
    assert_eq!(comparable(summary), want_summary);
    let (got, _) = timeline(srv, http, &path, "order=desc&limit=2");
    let mut rev = want_rows.clone();
    rev.reverse();
    assert_eq!(got, rev, "timeline, newest first");
    // Its subject rows are exactly GET /v1/events on the resource.
    let r = http.get(&srv.at(&format!(
        "/v1/events?resource_type={rtype}&resource_id={rid}&order=asc&limit=1000"
    )));
    assert_eq!(r.status, 200);
    let page = http.get(&srv.at(&format!("{path}?limit=1000"))).json();
    let subject_seqs: Vec<Value> = page["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "subject")
        .map(|e| e["seq"].clone())
        .collect();
    let listed: Vec<Value> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].clone())
        .collect();
    assert_eq!(subject_seqs, listed);

    (want_rows, want_summary)
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
    let (want_rows, want_summary) = check_resource(&srv, &http, &events, &rtype, &rid);
    let want_ids: Vec<String> = want_rows.iter().map(|r| r.0.clone()).collect();
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
    // One table row per event (the lines that start with a seq), each saying how it
    // names the resource.
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(rows.len(), want_ids.len(), "{}", out.stdout);
    let subject_rows = rows.iter().filter(|l| l.contains("  subject")).count();
    assert_eq!(
        subject_rows as u64,
        want_summary["as_subject"].as_u64().unwrap(),
        "{}",
        out.stdout
    );
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

/// Regression (issue 11.4): `mlaudit history dataset D` answered 404 for a dataset named
/// only in `related` (the training runs and evaluations that used it, exactly what an
/// auditor asks for), while `lineage` listed those events. The history now lists every
/// event naming the resource, each row marked `subject` or `related` with its relation.
#[test]
fn history_lists_events_that_name_the_resource_only_in_related() {
    let srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    let events = srv.send_in_order(&http, &gen_events(2000, 43));
    srv.wait_indexed(&http, 2000);

    // The dataset named in `related` by the most events and never their subject.
    let mut subjects: BTreeSet<(String, String)> = BTreeSet::new();
    let mut linked: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &events {
        subjects.extend(resource_of(e));
        for r in e["related"].as_array().into_iter().flatten() {
            let key = (
                r["type"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            );
            *linked.entry(key).or_default() += 1;
        }
    }
    let ((rtype, rid), n) = linked
        .into_iter()
        .filter(|(k, _)| k.0 == "dataset" && !subjects.contains(k))
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .expect("a dataset named only in related");
    assert!(n >= 1);
    let mine: Vec<&Value> = events.iter().filter(|e| names(e, &rtype, &rid)).collect();
    assert_eq!(mine.len(), n);

    // HTTP: 200, every row `related` with the producer's relation, summary says so.
    let path = format!("/v1/resources/{rtype}/{rid}");
    let r = http.get(&srv.at(&path));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["summary"]["events"], n);
    assert_eq!(v["summary"]["as_subject"], 0);
    assert_eq!(
        comparable(v["summary"].clone()),
        reference_summary(&mine, &rtype, &rid)
    );
    let rows = v["timeline"]["events"].as_array().unwrap();
    assert_eq!(rows.len(), n);
    for (row, e) in rows.iter().zip(&mine) {
        assert_eq!(row["event"]["id"], e["id"]);
        assert_eq!(row["role"], "related", "{row}");
        let want: Vec<Value> = related_as(e, &rtype, &rid)
            .into_iter()
            .map(|r| json!(r))
            .collect();
        assert_eq!(row["relations"], json!(want));
    }
    // The events lineage lists on the root's edges are exactly these.
    let lineage = http
        .get(&srv.at(&format!("/v1/lineage?type={rtype}&id={rid}&depth=1")))
        .json();
    let mut lineage_seqs: Vec<u64> = lineage["edges"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["events"]["seqs"].as_array().unwrap().clone())
        .map(|s| s.as_u64().unwrap())
        .collect();
    lineage_seqs.sort_unstable();
    lineage_seqs.dedup();
    let history_seqs: Vec<u64> = rows.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(lineage_seqs, history_seqs);

    // The CLI: one table row per event with its relation in the AS column, and --json.
    let out = srv.cli(&["history", &rtype, &rid, "--all"], &[], None);
    out.assert_ok("mlaudit history of a dataset named only in related");
    assert!(out.stdout.contains("as subject  0"), "{}", out.stdout);
    let table: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(table.len(), n, "{}", out.stdout);
    for (line, e) in table.iter().zip(&mine) {
        let relation = e["related"][0]["relation"].as_str().unwrap();
        assert!(
            line.contains(&format!("related:{relation}")),
            "{line}\n{}",
            out.stdout
        );
    }
    let out = srv.cli(&["history", &rtype, &rid, "--all", "--json"], &[], None);
    out.assert_ok("mlaudit history --json");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let roles: Vec<&str> = v["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["related"; n]);
}
