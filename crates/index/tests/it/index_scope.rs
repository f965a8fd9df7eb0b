//! The project scope (`Filter::projects_allowed` and the `projects` parameter of the
//! index functions) against references computed here from the appended events: a scoped
//! caller sees exactly the events of its projects, in searches, summaries, statistics,
//! lineage and deployment states.

use crate::index_support;

use std::collections::{BTreeMap, BTreeSet};

use index::{Filter, Index, Order, StatsBy, StatsSource, DAY_MS, DEPLOYMENT_ACTIONS, HOUR_MS};
use index_support::{generated, ms, query_all, Log};
use serde_json::Value;

fn setup() -> (Log, Index) {
    let events = generated(2000, 11);
    let mut log = Log::new();
    log.append(&events, 500);
    let index = Index::open(&log.index_path()).unwrap();
    index.catch_up(log.store()).unwrap();
    (log, index)
}

fn project(e: &Value) -> Option<&str> {
    e["context"]["project"].as_str()
}

fn scope() -> Vec<String> {
    vec!["fraud".to_string(), "churn".to_string()]
}

fn in_scope(e: &Value, scope: &[String]) -> bool {
    project(e).is_some_and(|p| scope.iter().any(|s| s == p))
}

#[test]
fn searches_and_summaries_see_only_the_scope() {
    let (log, index) = setup();
    let scope = scope();
    let f = Filter {
        projects_allowed: Some(scope.clone()),
        action: Some("dataset.*".into()),
        order: Order::Asc,
        limit: Some(50),
        ..Filter::default()
    };
    let want: Vec<u64> = (0..log.stored.len() as u64)
        .filter(|&s| {
            let e = &log.stored[s as usize];
            in_scope(e, &scope) && e["action"].as_str().unwrap().starts_with("dataset.")
        })
        .collect();
    assert!(want.len() > 50);
    assert_eq!(query_all(&index, &log, &f), want);
    let nothing = Filter {
        projects_allowed: Some(Vec::new()),
        ..Filter::default()
    };
    assert!(query_all(&index, &log, &nothing).is_empty());

    // The model with the most events, summarized over the scope only.
    let mut n: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &log.stored {
        if e["resource"]["type"] == "model" {
            *n.entry(e["resource"]["id"].as_str().unwrap()).or_default() += 1;
        }
    }
    let (&model, _) = n
        .iter()
        .max_by_key(|(id, c)| (**c, std::cmp::Reverse(**id)))
        .unwrap();
    // The summary covers the events naming it as resource or in `related` (issue 11.4).
    let names = |e: &Value| {
        (e["resource"]["type"] == "model" && e["resource"]["id"] == model)
            || e["related"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["type"] == "model" && r["id"] == model)
    };
    let mine: Vec<&Value> = log.stored.iter().filter(|e| names(e)).collect();
    let all = index.resource_summary("model", model).unwrap().unwrap();
    assert_eq!(all.events, mine.len() as u64);
    let scoped_want = mine.iter().filter(|e| in_scope(e, &scope)).count() as u64;
    match index
        .resource_summary_in("model", model, Some(&scope))
        .unwrap()
    {
        Some(s) => {
            assert_eq!(s.events, scoped_want);
            assert_eq!(s.counts_by_action.values().sum::<u64>(), scoped_want);
        }
        None => assert_eq!(scoped_want, 0),
    }
    let other = [format!("no-such-project-{model}")];
    assert_eq!(
        index
            .resource_summary_in("model", model, Some(&other))
            .unwrap(),
        None
    );
}

#[test]
fn stats_count_only_the_scope() {
    let (log, index) = setup();
    let scope = scope();
    for (by, width, source) in [
        (StatsBy::Action, DAY_MS, StatsSource::Rollup),
        (StatsBy::Project, HOUR_MS, StatsSource::Rollup),
        // The actor rollup has no project column: a scoped caller's counts come from events.
        (StatsBy::Actor, DAY_MS, StatsSource::Events),
    ] {
        let f = Filter {
            projects_allowed: Some(scope.clone()),
            ..Filter::default()
        };
        let got = index.stats(&f, by, width).unwrap();
        assert_eq!(got.source, source, "{by:?}");
        let mut want: BTreeMap<(i64, Option<String>), u64> = BTreeMap::new();
        for e in log.stored.iter().filter(|e| in_scope(e, &scope)) {
            let key = match by {
                StatsBy::Action => e["action"].as_str(),
                StatsBy::Project => project(e),
                _ => e["actor"]["id"].as_str(),
            };
            let t = ms(e["time"].as_str().unwrap());
            *want
                .entry((t.div_euclid(width) * width, key.map(str::to_string)))
                .or_default() += 1;
        }
        let got: BTreeMap<(i64, Option<String>), u64> = got
            .buckets
            .into_iter()
            .map(|b| ((b.start, b.key), b.count))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want, "{by:?}");
    }
}

#[test]
fn lineage_and_deployment_state_see_only_the_scope() {
    let (log, index) = setup();
    let scope = scope();
    // A deployment with state-changing events both in and out of the scope.
    let changes = |e: &Value| {
        e["resource"]["type"] == "deployment"
            && DEPLOYMENT_ACTIONS.contains(&e["action"].as_str().unwrap())
            && e["outcome"].as_str().unwrap_or("success") == "success"
            && e["related"][0]["type"] == "model"
    };
    let mut deps: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for e in log.stored.iter().filter(|e| changes(e)) {
        let c = deps
            .entry(e["resource"]["id"].as_str().unwrap())
            .or_default();
        if in_scope(e, &scope) {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let (&dep, _) = deps
        .iter()
        .find(|(_, (i, o))| *i > 0 && *o > 0)
        .expect("a deployment changed in and out of the scope");
    let end = ms("2027-01-01T00:00:00Z");
    for scope in [None, Some(scope.as_slice())] {
        let want = log
            .stored
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                changes(e) && e["resource"]["id"] == dep && scope.is_none_or(|s| in_scope(e, s))
            })
            .max_by_key(|(seq, e)| (ms(e["time"].as_str().unwrap()), *seq))
            .unwrap();
        let got = index
            .deployment_state(log.store(), dep, end, scope)
            .unwrap()
            .unwrap();
        assert_eq!(got.event.seq, want.0 as u64, "scope {scope:?}");
        assert_eq!(got.model.id, want.1["related"][0]["id"].as_str().unwrap());
        assert_eq!(
            got.model.version.as_deref(),
            want.1["related"][0]["version"].as_str()
        );
        for ev in &got.evaluations {
            assert!(scope.is_none_or(|s| in_scope(&ev.event_value(), s)));
        }
    }
    assert!(index
        .deployment_state(log.store(), dep, end, Some(&[]))
        .unwrap()
        .is_none());

    // Lineage: every edge's events are in the scope, and the root of an edge-less scope
    // is not found.
    let g = index
        .lineage("deployment", dep, 3, Some(&scope), &Default::default())
        .unwrap()
        .unwrap();
    assert!(!g.edges.is_empty());
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    for e in &g.edges {
        for &s in &e.seqs {
            assert!(in_scope(&log.stored[s as usize], &scope), "seq {s}");
            seen.insert(s);
        }
    }
    let unscoped = index
        .lineage("deployment", dep, 3, None, &Default::default())
        .unwrap()
        .unwrap();
    let all: BTreeSet<u64> = unscoped.edges.iter().flat_map(|e| e.seqs.clone()).collect();
    assert!(seen.is_subset(&all) && seen.len() < all.len());
    assert!(index
        .lineage("deployment", dep, 3, Some(&[]), &Default::default())
        .unwrap()
        .is_none());
}
