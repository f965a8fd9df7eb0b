//! End to end: `GET /v1/lineage`, `GET /v1/deployments/{id}/state`, `mlaudit lineage` and
//! `mlaudit deployment-state` against a real server: a hand-built scenario (a dataset, two
//! models trained on it, a deployment that deploys, updates and rolls back, evaluations)
//! with its answers written out here, and lineage on generated events against a reference
//! computed here from their `related` fields.

use crate::common;

/// Actors are compared with a reference computed from the events as sent, so this server
/// stores them as sent; privacy transforms are tested in e2e_privacy.rs.
const PLAIN: &[&str] = &["--pseudonymize", "false"];

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use common::{gen_events, Http, TestServer};
use serde_json::{json, Value};

/// The hand-built scenario, in send (= seq) order. Seq 11 is recorded last but happened
/// before seq 6, so "latest by event time" and "latest by seq" differ.
fn scenario() -> Vec<Value> {
    let ev = |id: &str, time: &str, action: &str, actor: &str, resource: Value| {
        json!({"id": id, "time": time, "action": action, "actor": {"id": actor},
               "resource": resource, "context": {"project": "churn"}})
    };
    let model = |id: &str, v: &str| json!({"type": "model", "id": id, "version": v});
    let dep = json!({"type": "deployment", "id": "churn-prod"});
    let serves =
        |m: &str, v: &str| json!([{"type": "model", "id": m, "version": v, "relation": "serves"}]);
    let mut e = vec![
        // 0
        ev(
            "s0",
            "2026-02-01T10:00:00Z",
            "dataset.create",
            "alice",
            json!({"type": "dataset", "id": "customers", "version": "v1"}),
        ),
        // 1, 2: two models trained on it.
        ev(
            "s1",
            "2026-02-01T10:05:00Z",
            "model.train",
            "bob",
            model("churn-a", "1"),
        ),
        ev(
            "s2",
            "2026-02-01T10:10:00Z",
            "model.train",
            "bob",
            model("churn-b", "1"),
        ),
        // 3, 4: an evaluation of each; 5: of churn-a version 2, on another dataset.
        ev(
            "s3",
            "2026-02-01T11:00:00Z",
            "evaluation.record",
            "eve",
            model("churn-a", "1"),
        ),
        ev(
            "s4",
            "2026-02-01T11:05:00Z",
            "evaluation.record",
            "eve",
            model("churn-b", "1"),
        ),
        ev(
            "s5",
            "2026-02-01T11:10:00Z",
            "evaluation.record",
            "eve",
            model("churn-a", "2"),
        ),
        // 6: the first deploy.
        ev(
            "s6",
            "2026-02-02T09:00:00.000Z",
            "deployment.deploy",
            "carol",
            dep.clone(),
        ),
        // 7: update to churn-b; 8: promote at the same time (the later seq wins).
        ev(
            "s7",
            "2026-02-03T09:00:00Z",
            "deployment.update",
            "dave",
            dep.clone(),
        ),
        ev(
            "s8",
            "2026-02-03T09:00:00Z",
            "deployment.promote",
            "frank",
            dep.clone(),
        ),
        // 9: a failed update to churn-a v2 (changes nothing); 10: an update without a model.
        ev(
            "s9",
            "2026-02-03T12:00:00Z",
            "deployment.update",
            "mallory",
            dep.clone(),
        ),
        ev(
            "s10",
            "2026-02-03T15:00:00Z",
            "deployment.update",
            "grace",
            dep.clone(),
        ),
        // 11: recorded late, happened on Feb 2 at noon.
        ev(
            "s11",
            "2026-02-02T12:00:00Z",
            "deployment.update",
            "late",
            dep.clone(),
        ),
        // 12: the rollback to churn-a version 1.
        ev(
            "s12",
            "2026-02-04T09:00:00Z",
            "deployment.rollback",
            "erin",
            dep.clone(),
        ),
        // 13: an unrelated deployment test (not a state change).
        ev(
            "s13",
            "2026-02-04T10:00:00Z",
            "deployment.test",
            "erin",
            dep,
        ),
    ];
    let train = json!([{"type": "dataset", "id": "customers", "version": "v1", "relation": "training_data"}]);
    e[1]["related"] = train.clone();
    e[2]["related"] = train;
    e[3]["related"] =
        json!([{"type": "dataset", "id": "customers", "relation": "evaluation_data"}]);
    e[3]["metrics"] = json!({"accuracy": 0.91});
    e[4]["related"] =
        json!([{"type": "dataset", "id": "customers", "relation": "evaluation_data"}]);
    e[5]["related"] = json!([{"type": "dataset", "id": "holdout", "relation": "evaluation_data"}]);
    e[6]["related"] = serves("churn-a", "1");
    e[7]["related"] = serves("churn-b", "1");
    e[8]["related"] = serves("churn-b", "1");
    e[9]["related"] = serves("churn-a", "2");
    e[9]["outcome"] = json!("failure");
    e[10]["parameters"] = json!({"replicas": 4});
    e[11]["related"] = serves("churn-a", "1");
    e[12]["related"] = serves("churn-a", "1");
    e[13]["related"] = serves("churn-a", "1");
    e
}

fn send(srv: &TestServer, http: &Http, events: &[Value]) {
    let ndjson: String = events.iter().map(|e| format!("{e}\n")).collect();
    srv.send_in_order(http, &ndjson);
    srv.wait_indexed(http, events.len() as u64);
}

/// Nodes as `type:id -> depth`.
fn node_depths(v: &Value) -> BTreeMap<String, u64> {
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                format!(
                    "{}:{}",
                    n["type"].as_str().unwrap(),
                    n["id"].as_str().unwrap()
                ),
                n["depth"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Edges as `from -relation-> to` with their seqs.
fn edge_seqs(v: &Value) -> BTreeMap<String, Vec<u64>> {
    v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = format!(
                "{}:{} -{}-> {}:{}",
                e["from"]["type"].as_str().unwrap(),
                e["from"]["id"].as_str().unwrap(),
                e["relation"].as_str().unwrap_or(""),
                e["to"]["type"].as_str().unwrap(),
                e["to"]["id"].as_str().unwrap()
            );
            let seqs: Vec<u64> = e["events"]["seqs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap())
                .collect();
            let count = e["events"]["count"].as_u64().unwrap() as usize;
            let listed = count.min(index::EDGE_SEQS_MAX);
            assert_eq!(seqs.len(), listed, "{name}: {count} events");
            (name, seqs)
        })
        .collect()
}

fn get_ok(srv: &TestServer, http: &Http, path: &str) -> Value {
    let r = http.get(&srv.at(path));
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

fn map<const N: usize, V: Clone>(items: [(&str, V); N]) -> BTreeMap<String, V> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn hand_built_lineage_and_point_in_time() {
    let srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    send(&srv, &http, &scenario());

    // From the dataset, one hop: the models trained or evaluated on it.
    let v = get_ok(&srv, &http, "/v1/lineage?type=dataset&id=customers&depth=1");
    assert_eq!(v["truncated"], false);
    assert_eq!(
        node_depths(&v),
        map([
            ("dataset:customers", 0),
            ("model:churn-a", 1),
            ("model:churn-b", 1)
        ])
    );
    let depth1_edges = map([
        (
            "model:churn-a -evaluation_data-> dataset:customers",
            vec![3],
        ),
        ("model:churn-a -training_data-> dataset:customers", vec![1]),
        (
            "model:churn-b -evaluation_data-> dataset:customers",
            vec![4],
        ),
        ("model:churn-b -training_data-> dataset:customers", vec![2]),
    ]);
    assert_eq!(edge_seqs(&v), depth1_edges);
    let root = &v["nodes"][0];
    assert_eq!(root["type"], "dataset");
    assert_eq!(root["events"], 5, "{root}");
    assert_eq!(root["versions"], json!(["v1"]));
    assert_eq!(root["first_seen"], "2026-02-01T10:00:00.000Z");
    assert_eq!(root["last_seen"], "2026-02-01T11:05:00.000Z");

    // Two hops (the default): and the deployment serving them, and churn-a's other dataset.
    let v = get_ok(&srv, &http, "/v1/lineage?type=dataset&id=customers");
    assert_eq!(v["depth"], 2);
    assert_eq!(
        node_depths(&v),
        map([
            ("dataset:customers", 0),
            ("model:churn-a", 1),
            ("model:churn-b", 1),
            ("dataset:holdout", 2),
            ("deployment:churn-prod", 2),
        ])
    );
    let mut depth2_edges = depth1_edges.clone();
    depth2_edges.extend(map([
        ("model:churn-a -evaluation_data-> dataset:holdout", vec![5]),
        (
            "deployment:churn-prod -serves-> model:churn-a",
            vec![6, 9, 11, 12, 13],
        ),
        ("deployment:churn-prod -serves-> model:churn-b", vec![7, 8]),
    ]));
    assert_eq!(edge_seqs(&v), depth2_edges);
    let a = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "churn-a")
        .unwrap();
    assert_eq!(
        a["versions"],
        json!(["1", "2"]),
        "in order of first appearance"
    );
    let e = v["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"]["id"] == "churn-a" && e["from"]["type"] == "deployment")
        .unwrap();
    assert_eq!(e["first_seen"], "2026-02-02T09:00:00.000Z");
    assert_eq!(e["last_seen"], "2026-02-04T10:00:00.000Z");

    // And back: from the deployment, the same graph with other depths.
    let v = get_ok(
        &srv,
        &http,
        "/v1/lineage?type=deployment&id=churn-prod&depth=2",
    );
    assert_eq!(
        node_depths(&v),
        map([
            ("deployment:churn-prod", 0),
            ("model:churn-a", 1),
            ("model:churn-b", 1),
            ("dataset:customers", 2),
            ("dataset:holdout", 2),
        ])
    );
    assert_eq!(edge_seqs(&v), depth2_edges);
    let v = get_ok(
        &srv,
        &http,
        "/v1/lineage?type=deployment&id=churn-prod&depth=0",
    );
    assert_eq!(node_depths(&v), map([("deployment:churn-prod", 0)]));
    assert!(v["edges"].as_array().unwrap().is_empty());
    // A node known only from `related` links is a root too.
    let v = get_ok(&srv, &http, "/v1/lineage?type=dataset&id=holdout&depth=1");
    assert_eq!(
        node_depths(&v),
        map([("dataset:holdout", 0), ("model:churn-a", 1)])
    );

    // Point in time. Before the first deploy: 404.
    let r = http.get(&srv.at("/v1/deployments/churn-prod/state?at=2026-02-02T08:59:59.999Z"));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_found");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("churn-prod"));
    let state = |at: &str| -> Value {
        let q = if at.is_empty() {
            String::new()
        } else {
            format!("?at={at}")
        };
        get_ok(&srv, &http, &format!("/v1/deployments/churn-prod/state{q}"))
    };
    // (at, model id, version, actor, seq)
    let cases = [
        ("2026-02-02T09:00:00Z", "churn-a", "1", "carol", 6),
        ("2026-02-02T11:59:59Z", "churn-a", "1", "carol", 6),
        ("2026-02-02T18:00:00%2B00:00", "churn-a", "1", "late", 11),
        ("2026-02-03T09:00:00Z", "churn-b", "1", "frank", 8),
        ("2026-02-03T13:00:00Z", "churn-b", "1", "frank", 8),
        ("2026-02-03T16:00:00Z", "churn-b", "1", "frank", 8),
        ("2026-02-04T09:00:00Z", "churn-a", "1", "erin", 12),
        ("", "churn-a", "1", "erin", 12),
    ];
    for (at, model, version, actor, seq) in cases {
        let v = state(at);
        assert_eq!(v["model"]["id"], model, "at {at}: {v}");
        assert_eq!(v["model"]["version"], version, "at {at}");
        assert_eq!(v["model"]["relation"], "serves", "at {at}");
        assert_eq!(v["actor"], actor, "at {at}");
        assert_eq!(v["seq"], seq, "at {at}");
        assert_eq!(v["event"]["seq"], seq, "at {at}");
        assert_eq!(v["event"]["event"]["id"], format!("s{seq}"), "at {at}");
        assert!(v["event"]["leaf_hash"].is_string());
        let evaluations: Vec<&str> = v["evaluations"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"]["id"].as_str().unwrap())
            .collect();
        let want = if model == "churn-a" {
            vec!["s3"]
        } else {
            vec!["s4"]
        };
        assert_eq!(
            evaluations, want,
            "at {at}: only that model version's evaluations"
        );
        assert_eq!(v["evaluations"]["count"], want.len());
    }
    let v = state("2026-02-04T09:00:00Z");
    assert_eq!(v["action"], "deployment.rollback");
    assert_eq!(v["time"], "2026-02-04T09:00:00.000Z");
    assert_eq!(
        v["evaluations"]["events"][0]["event"]["metrics"]["accuracy"],
        0.91
    );

    // Bad parameters are 400 with the JSON error; unknown things 404.
    for (path, status) in [
        ("/v1/lineage?type=dataset", 400),
        ("/v1/lineage?type=dataset&id=customers&depth=6", 400),
        ("/v1/lineage?type=dataset&id=customers&depth=-1", 400),
        ("/v1/lineage?type=dataset&id=customers&deep=1", 400),
        ("/v1/lineage?type=dataset&id=nothing", 404),
        ("/v1/deployments/churn-prod/state?at=yesterday", 400),
        (
            "/v1/deployments/churn-prod/state?when=2026-02-04T09:00:00Z",
            400,
        ),
        ("/v1/deployments/nothing/state", 404),
    ] {
        let r = http.get(&srv.at(path));
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert!(r.json()["error"]["message"].is_string(), "{path}");
    }

    // The CLI.
    let out = srv.cli(
        &["lineage", "dataset", "customers", "--depth", "1"],
        &[],
        None,
    );
    out.assert_ok("mlaudit lineage");
    assert!(out.stdout.contains("3 nodes, 4 edges"), "{}", out.stdout);
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("model:churn-a") && l.contains("training_data"))
        .unwrap_or_else(|| panic!("no edge row:\n{}", out.stdout));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "model:churn-a",
            "training_data",
            "dataset:customers",
            "1",
            "1"
        ]
    );
    let out = srv.cli(&["lineage", "dataset", "customers", "--json"], &[], None);
    out.assert_ok("mlaudit lineage --json");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(edge_seqs(&v), depth2_edges);
    let out = srv.cli(
        &["lineage", "dataset", "customers", "--depth", "9"],
        &[],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("400") && out.stderr.contains("depth"),
        "{}",
        out.stderr
    );

    let out = srv.cli(
        &[
            "deployment-state",
            "churn-prod",
            "--at",
            "2026-02-03T10:00:00Z",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit deployment-state");
    assert!(
        out.stdout.contains("model       churn-b@1"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("by          frank"), "{}", out.stdout);
    assert!(
        out.stdout.contains("deployment.promote, seq 8"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("evaluations 1"), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("4 ") && l.contains("evaluation.record")),
        "{}",
        out.stdout
    );
    let out = srv.cli(&["deployment-state", "churn-prod", "--json"], &[], None);
    out.assert_ok("mlaudit deployment-state --json");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["seq"], 12);
    let out = srv.cli(
        &[
            "deployment-state",
            "churn-prod",
            "--at",
            "2026-01-01T00:00:00Z",
        ],
        &[],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("404") && out.stderr.contains("churn-prod"),
        "{}",
        out.stderr
    );
    let out = srv.cli(
        &["deployment-state", "churn-prod", "--at", "soon"],
        &[],
        None,
    );
    // The CLI checks times itself since issue 11.10 (relative times are resolved on the
    // client): a bad one is a usage error (exit 2) naming the forms it takes; the server's
    // own 400 for `at=yesterday` is checked above.
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("soon") && out.stderr.contains("RFC 3339"),
        "{}",
        out.stderr
    );
}

/// Issues 11.11 and 11.12: `history`, `lineage` and `deployment-state` take the resource
/// syntax of every command (`TYPE:ID`, or `TYPE ID`), print `--csv` like `query`, print
/// every time in a table at one precision (the scenario mixes `…00Z` and `…00.000Z`), and
/// no line ends in an empty `()`.
#[test]
fn history_lineage_and_deployment_state_take_type_id_and_print_csv() {
    let srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    send(&srv, &http, &scenario());

    // One syntax: TYPE:ID and TYPE ID give the same answer; a version or both forms at
    // once are refused with the syntax.
    for cmd in ["lineage", "history"] {
        let a = srv.cli(&[cmd, "dataset:customers"], &[], None);
        a.assert_ok(cmd);
        let b = srv.cli(&[cmd, "dataset", "customers"], &[], None);
        b.assert_ok(cmd);
        assert_eq!(a.stdout, b.stdout, "{cmd}");
        // Both cover every version, so an `@` is part of the id (`user:carol@example.com`).
        let out = srv.cli(&[cmd, "dataset:customers@v1"], &[], None);
        assert_eq!(out.code, 1, "{cmd}: {}", out.stderr);
        assert!(
            out.stderr.contains("404") && out.stderr.contains("dataset:customers@v1"),
            "{cmd}: {}",
            out.stderr
        );
        let out = srv.cli(&[cmd, "dataset:customers", "customers"], &[], None);
        assert_eq!(out.code, 1, "{cmd}: {}", out.stderr);
        assert!(
            out.stderr.contains("TYPE:ID or as TYPE ID"),
            "{cmd}: {}",
            out.stderr
        );
    }

    // Tables: one time precision (UTC, milliseconds) in every time column.
    let out = srv.cli(&["history", "deployment:churn-prod", "--all"], &[], None);
    out.assert_ok("history");
    let times: Vec<&str> = out
        .stdout
        .split_whitespace()
        .filter(|w| w.starts_with("2026-"))
        .collect();
    assert!(times.len() >= 8, "{}", out.stdout);
    for t in &times {
        assert_eq!(
            t.len(),
            "2026-02-02T09:00:00.000Z".len(),
            "{t} in\n{}",
            out.stdout
        );
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
    }
    assert!(!out.stdout.contains("()"), "{}", out.stdout);

    // history --csv: the timeline, the times as stored (the server keeps event times at
    // millisecond precision).
    let out = srv.cli(
        &["history", "deployment:churn-prod", "--all", "--csv"],
        &[],
        None,
    );
    out.assert_ok("history --csv");
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("seq,recorded_at,time,action,outcome,actor,as,resource_type,resource_id,resource_version")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8, "{}", out.stdout);
    assert_eq!(rows[0][0], "6");
    assert_eq!(rows[0][2], "2026-02-02T09:00:00.000Z");
    assert_eq!(rows[1][2], "2026-02-03T09:00:00.000Z");
    assert_eq!(
        &rows[0][3..],
        [
            "deployment.deploy",
            "success",
            "carol",
            "subject",
            "deployment",
            "churn-prod",
            ""
        ]
    );

    // lineage --csv: one table of nodes and edges.
    let out = srv.cli(
        &["lineage", "dataset:customers", "--depth", "1", "--csv"],
        &[],
        None,
    );
    out.assert_ok("lineage --csv");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "kind,from,relation,to,depth,events,first_seen,last_seen,versions,seqs"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("node,")).count(),
        3,
        "{}",
        out.stdout
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("edge,")).count(),
        4,
        "{}",
        out.stdout
    );
    assert!(
        lines.contains(&"edge,model:churn-a,training_data,dataset:customers,,1,,,,1"),
        "{}",
        out.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("node,dataset:customers,,,0,")),
        "{}",
        out.stdout
    );

    // deployment-state --csv: the state as one row.
    let out = srv.cli(
        &[
            "deployment-state",
            "churn-prod",
            "--at",
            "2026-02-04T10:00:00Z",
            "--csv",
        ],
        &[],
        None,
    );
    out.assert_ok("deployment-state --csv");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "deployment,at,model_id,model_version,actor,time,action,seq,evaluations",
            "churn-prod,2026-02-04T10:00:00.000Z,churn-a,1,erin,2026-02-04T09:00:00.000Z,deployment.rollback,12,1",
        ],
        "{}",
        out.stdout
    );

    // Nothing to prune: no empty "()" after the counts.
    let out = srv.cli(&["retention", "run", "--dry-run"], &[], None);
    out.assert_ok("retention run --dry-run");
    assert!(out.stdout.contains("would be pruned"), "{}", out.stdout);
    assert!(!out.stdout.contains("()"), "{}", out.stdout);
}

#[test]
fn lineage_is_capped_and_says_so() {
    let srv = TestServer::start();
    let http = srv.http();
    let models: Vec<Value> = (0..600)
        .map(|i| json!({"type": "model", "id": format!("m{i:03}"), "relation": "training_input"}))
        .collect();
    let e = json!({"id": "wide", "action": "dataset.use", "actor": {"id": "svc"},
                   "resource": {"type": "dataset", "id": "wide"}, "related": models});
    send(&srv, &http, &[e]);
    let v = get_ok(&srv, &http, "/v1/lineage?type=dataset&id=wide&depth=1");
    assert_eq!(v["truncated"], true);
    let nodes = v["nodes"].as_array().unwrap();
    let edges = v["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), index::LINEAGE_NODES_MAX);
    assert_eq!(edges.len(), nodes.len() - 1, "one edge per model listed");
    let listed: HashSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    for e in edges {
        assert!(listed.contains(e["to"]["id"].as_str().unwrap()), "{e}");
    }
    let out = srv.cli(&["lineage", "dataset", "wide", "--depth", "1"], &[], None);
    out.assert_ok("mlaudit lineage");
    assert!(out.stderr.contains("cap"), "{}", out.stderr);
}

type Node = (String, String);

/// The graph the server should give from `root`, computed from the events' `resource` and
/// `related` fields: (node -> depth, edge -> seqs).
#[allow(clippy::type_complexity)]
fn reference_lineage(
    events: &[Value],
    root: &Node,
    depth: u64,
) -> (BTreeMap<String, u64>, BTreeMap<String, Vec<u64>>) {
    // Every link: (seq, from, to, relation).
    let mut links: Vec<(u64, Node, Node, String)> = Vec::new();
    for (seq, e) in events.iter().enumerate() {
        let (Some(t), Some(i)) = (e["resource"]["type"].as_str(), e["resource"]["id"].as_str())
        else {
            continue;
        };
        for r in e["related"].as_array().into_iter().flatten() {
            links.push((
                seq as u64,
                (t.into(), i.into()),
                (
                    r["type"].as_str().unwrap().into(),
                    r["id"].as_str().unwrap().into(),
                ),
                r["relation"].as_str().unwrap_or("").into(),
            ));
        }
    }
    let mut depth_of: HashMap<Node, u64> = HashMap::from([(root.clone(), 0)]);
    let mut queue = VecDeque::from([root.clone()]);
    while let Some(n) = queue.pop_front() {
        let d = depth_of[&n];
        if d == depth {
            continue;
        }
        for (_, from, to, _) in &links {
            for (a, b) in [(from, to), (to, from)] {
                if *a == n && !depth_of.contains_key(b) {
                    depth_of.insert(b.clone(), d + 1);
                    queue.push_back(b.clone());
                }
            }
        }
    }
    let mut edges: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (seq, from, to, rel) in &links {
        let near = |n: &Node| depth_of.get(n).is_some_and(|&d| d < depth);
        if depth_of.contains_key(from) && depth_of.contains_key(to) && (near(from) || near(to)) {
            let name = format!("{}:{} -{rel}-> {}:{}", from.0, from.1, to.0, to.1);
            edges.entry(name).or_default().insert(*seq);
        }
    }
    let nodes = depth_of
        .into_iter()
        .map(|((t, i), d)| (format!("{t}:{i}"), d))
        .collect();
    let edges = edges
        .into_iter()
        .map(|(k, s)| (k, s.into_iter().take(index::EDGE_SEQS_MAX).collect()))
        .collect();
    (nodes, edges)
}

#[test]
fn lineage_of_generated_events_matches_a_reference() {
    let srv = TestServer::start();
    let http = srv.http();
    let events = srv.send_in_order(&http, &gen_events(3000, 44));
    srv.wait_indexed(&http, events.len() as u64);

    // Roots: the most linked dataset, model and deployment.
    let mut linked: HashMap<Node, usize> = HashMap::new();
    for e in &events {
        for r in e["related"].as_array().into_iter().flatten() {
            let n = (
                r["type"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            );
            *linked.entry(n).or_default() += 1;
        }
        if e["related"].is_array() {
            let r = &e["resource"];
            let n = (
                r["type"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            );
            *linked.entry(n).or_default() += 1;
        }
    }
    let mut checked = 0;
    for rtype in ["dataset", "model", "deployment"] {
        let mut of_type: Vec<(&Node, &usize)> =
            linked.iter().filter(|(n, _)| n.0 == rtype).collect();
        of_type.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let root = of_type[0].0.clone();
        for depth in [1, 2, 3] {
            let (want_nodes, want_edges) = reference_lineage(&events, &root, depth);
            let v = get_ok(
                &srv,
                &http,
                &format!("/v1/lineage?type={}&id={}&depth={depth}", root.0, root.1),
            );
            assert_eq!(v["truncated"], false, "{root:?} depth {depth}");
            assert_eq!(node_depths(&v), want_nodes, "{root:?} depth {depth}: nodes");
            assert_eq!(edge_seqs(&v), want_edges, "{root:?} depth {depth}: edges");
            assert!(!want_edges.is_empty(), "{root:?} depth {depth}: no edge");
            checked += 1;
        }
    }
    assert_eq!(checked, 9);
}

/// Regression (issue 11.5): on realistic data `lineage dataset D --depth 2` filled the
/// 500-node cap with the other datasets D's models were trained on, in log order, and lost
/// the deployment serving the model. The cap now keeps deployments and models first, the
/// answer says what was left out (by type and relation), and `types` / `relations` narrow
/// the walk.
#[test]
fn lineage_keeps_models_and_deployments_when_the_cap_cuts_dataset_fan_out() {
    let srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    let train = |i: usize, ds: &str| {
        json!({"id": format!("train-{i}"), "action": "model.train", "actor": {"id": "svc"},
               "resource": {"type": "model", "id": "m", "version": "1"},
               "related": [{"type": "dataset", "id": ds, "relation": "training_data"}]})
    };
    let mut events = vec![train(0, "root")];
    events.extend((1..=600).map(|i| train(i, &format!("other-{i:03}"))));
    // Last in the log: the old walk reached it after the cap.
    events.push(json!({"id": "deploy", "action": "deployment.deploy", "actor": {"id": "ops"},
                       "resource": {"type": "deployment", "id": "x"},
                       "related": [{"type": "model", "id": "m", "version": "1", "relation": "serves"}]}));
    send(&srv, &http, &events);

    let v = get_ok(&srv, &http, "/v1/lineage?type=dataset&id=root&depth=2");
    assert_eq!(v["truncated"], true);
    let depths = node_depths(&v);
    assert_eq!(depths.len(), index::LINEAGE_NODES_MAX);
    assert_eq!(depths.get("model:m"), Some(&1), "{depths:?}");
    assert_eq!(depths.get("deployment:x"), Some(&2), "{depths:?}");
    assert!(edge_seqs(&v).contains_key("deployment:x -serves-> model:m"));
    // Root, model and deployment, then 497 of the 600 other datasets: 103 left out, each
    // with its one edge.
    let left_out = 600 - (index::LINEAGE_NODES_MAX - 3) as u64;
    assert_eq!(
        v["omitted"],
        json!({"nodes": left_out, "edges": left_out,
               "node_types": {"dataset": left_out}, "relations": {"training_data": left_out}}),
        "{}",
        v["omitted"]
    );
    let out = srv.cli(&["lineage", "dataset", "root", "--depth", "2"], &[], None);
    out.assert_ok("mlaudit lineage");
    assert!(out.stdout.contains("deployment:x"), "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "left out {left_out} nodes (dataset {left_out}) and {left_out} edges (training_data {left_out})"
        )),
        "{}",
        out.stderr
    );

    // Only models and deployments: the whole chain, nothing cut.
    let v = get_ok(
        &srv,
        &http,
        "/v1/lineage?type=dataset&id=root&depth=2&types=model,deployment",
    );
    assert_eq!(v["truncated"], false);
    assert_eq!(
        node_depths(&v),
        map([("dataset:root", 0), ("model:m", 1), ("deployment:x", 2)])
    );
    assert_eq!(v["omitted"]["nodes"], 0);
    assert_eq!(v["types"], json!(["model", "deployment"]));
    let out = srv.cli(
        &[
            "lineage",
            "dataset",
            "root",
            "--depth",
            "2",
            "--relations",
            "training_data,serves",
            "--types",
            "model",
            "--types",
            "deployment",
            "--json",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit lineage --types --relations");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(node_depths(&v).len(), 3, "{v}");
    assert_eq!(v["relations"], json!(["training_data", "serves"]));
    // A relation filter alone: `serves` from the dataset reaches nothing past the root.
    let v = get_ok(
        &srv,
        &http,
        "/v1/lineage?type=dataset&id=root&depth=2&relations=serves",
    );
    assert_eq!(node_depths(&v), map([("dataset:root", 0)]));
    for bad in ["types=", "relations=a,,b"] {
        let r = http.get(&srv.at(&format!("/v1/lineage?type=dataset&id=root&{bad}")));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
}

/// Regression (issue 11.5): the generator's predictions named a random model version, so
/// the `serves` links lineage lists for a deployment disagreed with what
/// `deployment-state` said it served at the same time. A prediction now names the
/// version the deployment serves, and both views agree.
#[test]
fn serves_links_of_predictions_agree_with_deployment_state() {
    let srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    let events = srv.send_in_order(&http, &gen_events(4000, 45));
    srv.wait_indexed(&http, events.len() as u64);
    let mut deployed: HashSet<String> = HashSet::new();
    let mut checked = 0;
    for e in &events {
        if e["resource"]["type"] != "deployment" {
            continue;
        }
        let d = e["resource"]["id"].as_str().unwrap().to_string();
        let action = e["action"].as_str().unwrap();
        if [
            "deployment.deploy",
            "deployment.update",
            "deployment.rollback",
        ]
        .contains(&action)
            && e["outcome"] == "success"
        {
            deployed.insert(d.clone());
            continue;
        }
        if action != "deployment.predict" || !deployed.contains(&d) {
            continue;
        }
        let at = e["time"].as_str().unwrap();
        let state = get_ok(&srv, &http, &format!("/v1/deployments/{d}/state?at={at}"));
        let link = &e["related"][0];
        assert_eq!(state["model"]["id"], link["id"], "{d} at {at}");
        assert_eq!(state["model"]["version"], link["version"], "{d} at {at}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} predictions after a deploy");
}
