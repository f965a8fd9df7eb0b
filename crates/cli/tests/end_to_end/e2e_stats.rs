//! End to end: `GET /v1/stats` and `mlaudit stats` against a real server, every `by` and
//! both intervals, with and without filters (rollup answers, cut edge buckets and the
//! `events` fallback), compared with counts computed here from the events sent; and the
//! same answers after `mlaudit reindex` rebuilt the rollups.

use crate::common;

/// Actors are compared with a reference computed from the events as sent, so this server
/// stores them as sent; privacy transforms are tested in e2e_privacy.rs.
const PLAIN: &[&str] = &["--pseudonymize", "false"];

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat};
use common::{gen_events, Http, TestServer};
use serde_json::Value;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The category of an action's namespace (DESIGN.md section 3).
fn category(action: &str) -> &'static str {
    match action.split('.').next().unwrap() {
        "dataset" => "data_access",
        "model" => "model_development",
        "deployment" => "deployment",
        "evaluation" => "evaluation",
        "user" | "permission" | "role" | "job" | "auth" => "user_action",
        "audit" => "system",
        _ => "custom",
    }
}

fn key_of(e: &Value, by: &str) -> Option<String> {
    let s = |v: &Value| v.as_str().map(str::to_string);
    match by {
        "action" => s(&e["action"]),
        "category" => Some(category(e["action"].as_str().unwrap()).to_string()),
        "outcome" => Some(s(&e["outcome"]).unwrap_or_else(|| "success".into())),
        "actor" => s(&e["actor"]["id"]),
        "project" => s(&e["context"]["project"]),
        "resource_type" => s(&e["resource"]["type"]),
        _ => unreachable!("{by}"),
    }
}

type Buckets = Vec<(String, Option<String>, u64)>;

/// The counts the server should give.
fn reference(
    events: &[Value],
    by: &str,
    width: i64,
    keep: &dyn Fn(&Value) -> bool,
    from: Option<i64>,
    to: Option<i64>,
) -> Buckets {
    let mut counts: BTreeMap<(i64, Option<String>), u64> = BTreeMap::new();
    for e in events {
        let t = ms(e["time"].as_str().unwrap());
        if from.is_some_and(|f| t < f) || to.is_some_and(|x| t >= x) || !keep(e) {
            continue;
        }
        *counts
            .entry((t.div_euclid(width) * width, key_of(e, by)))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((b, k), n)| (rfc3339(b), k, n))
        .collect()
}

fn buckets(v: &Value) -> Buckets {
    v["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_string(),
                b["key"].as_str().map(str::to_string),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A named filter: its query string, the reference predicate, its time range and the
/// source the server should answer from for each `by` (day interval).
struct Case {
    name: &'static str,
    query: String,
    keep: Box<dyn Fn(&Value) -> bool>,
    from: Option<i64>,
    to: Option<i64>,
}

fn cases(events: &[Value]) -> Vec<Case> {
    let actor = events[5]["actor"]["id"].as_str().unwrap().to_string();
    let a2 = actor.clone();
    let project = events[0]["context"]["project"]
        .as_str()
        .unwrap()
        .to_string();
    let p2 = project.clone();
    let outcome = |e: &Value| e["outcome"].as_str().unwrap_or("success").to_string();
    vec![
        Case {
            name: "everything",
            query: String::new(),
            keep: Box::new(|_| true),
            from: None,
            to: None,
        },
        Case {
            name: "glob",
            query: "action=dataset.*".into(),
            keep: Box::new(|e| e["action"].as_str().unwrap().starts_with("dataset.")),
            from: None,
            to: None,
        },
        Case {
            name: "denied",
            query: "outcome=denied".into(),
            keep: Box::new(move |e| outcome(e) == "denied"),
            from: None,
            to: None,
        },
        Case {
            name: "project in aligned days",
            query: format!("project={project}&from=2026-01-05T00:00:00Z&to=2026-01-20T00:00:00Z"),
            keep: Box::new(move |e| e["context"]["project"] == p2.as_str()),
            from: Some(ms("2026-01-05T00:00:00Z")),
            to: Some(ms("2026-01-20T00:00:00Z")),
        },
        Case {
            name: "unaligned range",
            query: "category=data_access&from=2026-01-05T13:27:00Z&to=2026-01-12T08:15:30.5Z"
                .into(),
            keep: Box::new(|e| category(e["action"].as_str().unwrap()) == "data_access"),
            from: Some(ms("2026-01-05T13:27:00Z")),
            to: Some(ms("2026-01-12T08:15:30.5Z")),
        },
        Case {
            name: "within one hour",
            query: "from=2026-01-07T10:10:00Z&to=2026-01-07T10:50:00Z".into(),
            keep: Box::new(|_| true),
            from: Some(ms("2026-01-07T10:10:00Z")),
            to: Some(ms("2026-01-07T10:50:00Z")),
        },
        Case {
            name: "actor",
            query: format!("actor={actor}"),
            keep: Box::new(move |e| e["actor"]["id"] == a2.as_str()),
            from: None,
            to: None,
        },
        Case {
            name: "tag (fallback)",
            query: "tag=pii&from=2026-01-03T06:00:00Z".into(),
            keep: Box::new(|e| {
                e["resource"]["tags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == "pii"))
            }),
            from: Some(ms("2026-01-03T06:00:00Z")),
            to: None,
        },
        Case {
            name: "environment (fallback)",
            query: "environment=prod&resource_type=dataset".into(),
            keep: Box::new(|e| {
                e["context"]["environment"] == "prod" && e["resource"]["type"] == "dataset"
            }),
            from: None,
            to: None,
        },
    ]
}

/// Where the server should answer from: a rollup holds `by`, the interval and every filter
/// (`rollup`: action, category, outcome, project, resource_type, by hour and day;
/// `rollup_actor`: actor, outcome, by day).
fn expected_source(case: &str, by: &str, interval: &str) -> &'static str {
    let filtered: &[&str] = match case {
        "glob" => &["action"],
        "denied" => &["outcome"],
        "project in aligned days" => &["project"],
        "unaligned range" => &["category"],
        "actor" => &["actor"],
        "tag (fallback)" | "environment (fallback)" => return "events",
        _ => &[],
    };
    let main = ["action", "category", "outcome", "project", "resource_type"];
    let actor = ["actor", "outcome"];
    let fits = |cols: &[&str]| cols.contains(&by) && filtered.iter().all(|f| cols.contains(f));
    if fits(&main) || (interval == "day" && fits(&actor)) {
        "rollup"
    } else {
        "events"
    }
}

const BYS: [&str; 6] = [
    "action",
    "category",
    "outcome",
    "actor",
    "project",
    "resource_type",
];

/// Every answer, by (case, by, interval).
fn all_answers(srv: &TestServer, http: &Http, events: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for case in cases(events) {
        for by in BYS {
            for interval in ["hour", "day"] {
                let url = srv.at(&format!(
                    "/v1/stats?by={by}&interval={interval}&{}",
                    case.query
                ));
                let r = http.get(&url);
                assert_eq!(r.status, 200, "{url}: {}", r.text());
                out.insert(format!("{} by {by} per {interval}", case.name), r.json());
            }
        }
    }
    out
}

#[test]
fn stats_match_a_reference_and_survive_reindex() {
    let mut srv = TestServer::start_with(PLAIN);
    let http = srv.http();
    let events = srv.send_in_order(&http, &gen_events(3000, 45));
    srv.wait_indexed(&http, events.len() as u64);

    let answers = all_answers(&srv, &http, &events);
    let mut nonempty = 0;
    for case in cases(&events) {
        for by in BYS {
            for (interval, width) in [("hour", HOUR_MS), ("day", DAY_MS)] {
                let name = format!("{} by {by} per {interval}", case.name);
                let v = &answers[&name];
                let want = reference(&events, by, width, &case.keep, case.from, case.to);
                assert_eq!(buckets(v), want, "{name}");
                assert_eq!(v["by"], by);
                assert_eq!(v["interval"], interval);
                assert_eq!(
                    v["source"],
                    expected_source(case.name, by, interval),
                    "{name}"
                );
                if !want.is_empty() {
                    nonempty += 1;
                }
            }
        }
    }
    assert_eq!(nonempty, answers.len(), "every case counts something");
    // The default interval is a day.
    let r = http.get(&srv.at("/v1/stats?by=outcome"));
    assert_eq!(r.json(), answers["everything by outcome per day"]);

    // Bad parameters: 400 with the JSON error.
    for q in [
        "",
        "by=color",
        "by=action&interval=year",
        "by=action&limit=5",
        "by=action&cursor=x",
        "by=action&from=yesterday",
        "by=action&category=secret",
        "by=action&q=%22unbalanced",
    ] {
        let r = http.get(&srv.at(&format!("/v1/stats?{q}")));
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        assert!(r.json()["error"]["message"].is_string(), "{q}");
    }

    // The CLI: an aligned table, CSV and JSON give the same counts.
    let want = buckets(&answers["denied by outcome per day"]);
    let out = srv.cli(
        &["stats", "--by", "outcome", "--outcome", "denied"],
        &[],
        None,
    );
    out.assert_ok("mlaudit stats");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    // Issue 11.10: a total row closes the table.
    let total: Vec<&str> = lines.pop().unwrap().split_whitespace().collect();
    let want_total: u64 = want.iter().map(|b| b.2).sum();
    assert_eq!(total, ["TOTAL", &want_total.to_string()], "{}", out.stdout);
    let mut lines = lines.into_iter();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["START", "OUTCOME", "COUNT"]);
    let rows: Buckets = lines
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (
                c[0].to_string(),
                Some(c[1].to_string()),
                c[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, want);
    let out = srv.cli(
        &[
            "stats",
            "--by",
            "project",
            "--interval",
            "hour",
            "--action",
            "dataset.*",
            "--csv",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit stats --csv");
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("start,key,count"));
    let rows: Buckets = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].to_string(),
                Some(c[1].to_string()),
                c[2].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, buckets(&answers["glob by project per hour"]));
    let out = srv.cli(&["stats", "--by", "actor", "--json"], &[], None);
    out.assert_ok("mlaudit stats --json");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v, answers["everything by actor per day"]);
    // Issue 11.10: week and month buckets (UTC; weeks from Monday) hold the day counts.
    let days = http.get(&srv.at("/v1/stats?by=action&interval=day")).json();
    for interval in ["week", "month"] {
        let r = http.get(&srv.at(&format!("/v1/stats?by=action&interval={interval}")));
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["interval"], interval);
        let mut by_key: std::collections::BTreeMap<String, u64> = Default::default();
        for b in v["buckets"].as_array().unwrap() {
            let start = chrono::DateTime::parse_from_rfc3339(b["start"].as_str().unwrap()).unwrap();
            use chrono::{Datelike, Timelike};
            assert_eq!(start.hour(), 0);
            match interval {
                "week" => assert_eq!(start.weekday(), chrono::Weekday::Mon, "{b}"),
                _ => assert_eq!(start.day(), 1, "{b}"),
            }
            *by_key.entry(b["key"].to_string()).or_default() += b["count"].as_u64().unwrap();
        }
        let mut want: std::collections::BTreeMap<String, u64> = Default::default();
        for b in days["buckets"].as_array().unwrap() {
            *want.entry(b["key"].to_string()).or_default() += b["count"].as_u64().unwrap();
        }
        assert_eq!(by_key, want, "{interval}");
    }
    // --top N keeps the N biggest keys and sums the rest as (other); relative times work.
    let out = srv.cli(
        &[
            "stats",
            "--by",
            "action",
            "--interval",
            "month",
            "--top",
            "2",
            "--from",
            "3650d",
            "--csv",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit stats --top");
    let keys: std::collections::BTreeSet<&str> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert!(
        keys.len() <= 3 && keys.contains("(other)"),
        "{}",
        out.stdout
    );
    let out = srv.cli(&["stats", "--by", "colour"], &[], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("400") && out.stderr.contains("colour"),
        "{}",
        out.stderr
    );

    // Rebuilt from the ledger, the rollups give the same answers.
    srv.stop();
    let data_dir = srv.data_dir.to_string_lossy().into_owned();
    srv.cli(&["reindex", "--data-dir", &data_dir, "--quiet"], &[], None)
        .assert_ok("mlaudit reindex");
    srv.restart();
    let http = srv.http();
    assert_eq!(all_answers(&srv, &http, &events), answers);
}
