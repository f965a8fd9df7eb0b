//! Every filter of `Index::query`, alone and combined, against a reference answer computed
//! in the test from the appended events; rollups against counts computed the same way.

use crate::index_support;

use std::collections::BTreeMap;

use event::category_of;
use index::{Cursor, Filter, Index, Order, QueryError, RollupRow, DAY_MS, HOUR_MS, LIMIT_MAX};
use index_support::{generated, ms, query_all, reference, Log};
use serde_json::Value;

fn setup() -> (Log, Index) {
    let events = generated(2000, 7);
    let mut log = Log::new();
    // Batches that straddle bundle boundaries.
    log.append(&events, 300);
    let index = Index::open(&log.index_path()).unwrap();
    assert_eq!(index.catch_up(log.store()).unwrap(), 2000);
    (log, index)
}

fn str_at(v: &Value, ptr: &str) -> String {
    v.pointer(ptr).and_then(Value::as_str).unwrap().to_string()
}

/// Filters over values taken from the data, so each one matches something.
fn filters(log: &Log) -> Vec<(&'static str, Filter)> {
    let e = &log.stored;
    let with = |ptr: &str| e.iter().find(|v| v.pointer(ptr).is_some()).unwrap();
    let mid = ms(&str_at(&e[1000], "/time"));
    let actor = str_at(&e[17], "/actor/id");
    let ds = with("/resource/version");
    let rel = with("/related/0/id");
    let related = (str_at(rel, "/related/0/type"), str_at(rel, "/related/0/id"));
    let denied = e
        .iter()
        .find(|v| v["outcome"] == "denied")
        .expect("generator makes denied events");
    let f = Filter::default;
    vec![
        ("all", f()),
        (
            "from",
            Filter {
                from: Some(mid),
                ..f()
            },
        ),
        (
            "to",
            Filter {
                to: Some(mid),
                ..f()
            },
        ),
        (
            "from+to",
            Filter {
                from: Some(mid - 3 * DAY_MS),
                to: Some(mid + DAY_MS),
                ..f()
            },
        ),
        (
            "action exact",
            Filter {
                action: Some("dataset.read".into()),
                ..f()
            },
        ),
        (
            "action glob",
            Filter {
                action: Some("dataset.*".into()),
                ..f()
            },
        ),
        (
            "action inner glob",
            Filter {
                action: Some("*.r*".into()),
                ..f()
            },
        ),
        (
            "action star",
            Filter {
                action: Some("*".into()),
                ..f()
            },
        ),
        (
            "category",
            Filter {
                category: Some("deployment".into()),
                ..f()
            },
        ),
        (
            "actor",
            Filter {
                actor: Some(actor.clone()),
                ..f()
            },
        ),
        (
            "resource_type",
            Filter {
                resource_type: Some("dataset".into()),
                ..f()
            },
        ),
        (
            "resource",
            Filter {
                resource_type: Some(str_at(ds, "/resource/type")),
                resource_id: Some(str_at(ds, "/resource/id")),
                ..f()
            },
        ),
        (
            "resource_version",
            Filter {
                resource_version: Some(str_at(ds, "/resource/version")),
                ..f()
            },
        ),
        (
            "outcome",
            Filter {
                outcome: Some("denied".into()),
                ..f()
            },
        ),
        (
            "project",
            Filter {
                project: Some(str_at(&e[3], "/context/project")),
                ..f()
            },
        ),
        (
            "environment",
            Filter {
                environment: Some("prod".into()),
                ..f()
            },
        ),
        (
            "tag",
            Filter {
                tag: Some("pii".into()),
                ..f()
            },
        ),
        (
            "related",
            Filter {
                related: Some(related.clone()),
                ..f()
            },
        ),
        (
            "no match",
            Filter {
                actor: Some("nobody@example.com".into()),
                ..f()
            },
        ),
        (
            "actor+window (Q1)",
            Filter {
                actor: Some(actor),
                from: Some(mid - 7 * DAY_MS),
                to: Some(mid),
                limit: Some(100),
                ..f()
            },
        ),
        (
            "denied+last day (Q4)",
            Filter {
                outcome: Some("denied".into()),
                from: Some(ms(&str_at(denied, "/time")) - DAY_MS),
                ..f()
            },
        ),
        (
            "glob+tag+environment",
            Filter {
                action: Some("dataset.*".into()),
                tag: Some("pii".into()),
                environment: Some("prod".into()),
                ..f()
            },
        ),
        (
            "category+outcome+project",
            Filter {
                category: Some("user_action".into()),
                outcome: Some("success".into()),
                project: Some(str_at(&e[3], "/context/project")),
                ..f()
            },
        ),
        (
            "related+action glob",
            Filter {
                related: Some(related),
                action: Some("dataset.*".into()),
                ..f()
            },
        ),
        (
            "recorded window",
            Filter {
                recorded_from: Some(0),
                recorded_to: Some(i64::MAX),
                ..f()
            },
        ),
        (
            "recorded empty",
            Filter {
                recorded_to: Some(0),
                ..f()
            },
        ),
    ]
}

#[test]
fn each_filter_and_combination_matches_the_reference() {
    let (log, index) = setup();
    let mut nonempty = 0;
    for (name, base) in filters(&log) {
        for order in [Order::Asc, Order::Desc] {
            for limit in [None, Some(7), Some(LIMIT_MAX)] {
                let f = Filter {
                    order,
                    limit,
                    ..base.clone()
                };
                let want = reference(&log, &f);
                let got = query_all(&index, &log, &f);
                assert_eq!(got, want, "filter {name}, {order:?}, limit {limit:?}");
                if !want.is_empty() && order == Order::Asc && limit.is_none() {
                    nonempty += 1;
                }
            }
        }
    }
    // All but the two deliberately empty filters found something.
    assert_eq!(nonempty, filters(&log).len() - 2);
}

#[test]
fn limits_over_the_cap_are_refused_and_pages_are_full() {
    let (log, index) = setup();
    // Issue 11.10: a limit over the cap is an error, no longer silently capped.
    let over = index.query(
        log.store(),
        &Filter {
            limit: Some(LIMIT_MAX + 1),
            ..Filter::default()
        },
    );
    assert!(
        matches!(&over, Err(QueryError::Invalid(m)) if m.contains("1000")),
        "{:?}",
        over.map(|p| p.hits.len())
    );
    let page = index
        .query(
            log.store(),
            &Filter {
                limit: Some(LIMIT_MAX),
                ..Filter::default()
            },
        )
        .unwrap();
    assert_eq!(page.hits.len(), LIMIT_MAX);
    assert!(page.more);
    let page = index.query(log.store(), &Filter::default()).unwrap();
    assert_eq!(page.hits.len(), index::LIMIT_DEFAULT);
    // Default order is newest first.
    assert_eq!(page.hits[0].seq, 1999);
    let c = Cursor::decode(page.next_cursor.as_deref().unwrap()).unwrap();
    assert_eq!(
        c,
        Cursor {
            seq: 1900,
            order: Order::Desc
        }
    );
}

#[test]
fn bad_values_are_refused_with_a_message() {
    let (log, index) = setup();
    let bad = |f: Filter| match index.query(log.store(), &f) {
        Err(QueryError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let f = Filter::default;
    assert!(bad(Filter {
        action: Some("Dataset.*".into()),
        ..f()
    })
    .contains("action"));
    assert!(bad(Filter {
        action: Some("dataset.[a]".into()),
        ..f()
    })
    .contains("action"));
    assert!(bad(Filter {
        category: Some("data".into()),
        ..f()
    })
    .contains("data_access"));
    assert!(bad(Filter {
        outcome: Some("ok".into()),
        ..f()
    })
    .contains("denied"));
    assert!(bad(Filter {
        limit: Some(0),
        ..f()
    })
    .contains("limit"));
    assert!(bad(Filter {
        cursor: Some("nonsense".into()),
        ..f()
    })
    .contains("cursor"));
    let asc = Cursor {
        seq: 5,
        order: Order::Asc,
    }
    .encode();
    assert!(bad(Filter {
        cursor: Some(asc),
        order: Order::Desc,
        ..f()
    })
    .contains("order"));
    assert!(Filter::parse_related("dataset").is_err());
    assert_eq!(
        Filter::parse_related("dataset:a:b").unwrap(),
        ("dataset".to_string(), "a:b".to_string())
    );
}

#[test]
fn free_text_finds_words_in_reason_parameters_and_name() {
    let (log, index) = setup();
    let words = |v: Option<&Value>| -> Vec<String> {
        let text = match v {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        text.to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    for word in ["quota", "train", "select"] {
        let want: Vec<u64> = (0..log.stored.len() as u64)
            .filter(|&i| {
                let e = &log.stored[i as usize];
                [
                    e.get("reason"),
                    e.get("parameters"),
                    e.pointer("/resource/name"),
                ]
                .into_iter()
                .any(|v| words(v).iter().any(|w| w == word))
            })
            .collect();
        assert!(!want.is_empty(), "{word} occurs in the data");
        let f = Filter {
            q: Some(word.into()),
            order: Order::Asc,
            ..Filter::default()
        };
        assert_eq!(query_all(&index, &log, &f), want, "q={word}");
    }
}

#[test]
fn rollups_count_every_event_once_per_bucket() {
    let (log, index) = setup();
    for width in [HOUR_MS, DAY_MS] {
        let mut want: BTreeMap<(i64, String, String, String, String), u64> = BTreeMap::new();
        for e in &log.stored {
            let t = ms(&str_at(e, "/time"));
            let opt = |p: &str| {
                e.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            *want
                .entry((
                    t.div_euclid(width) * width,
                    str_at(e, "/action"),
                    str_at(e, "/outcome"),
                    opt("/context/project"),
                    opt("/resource/type"),
                ))
                .or_default() += 1;
        }
        let got: Vec<RollupRow> = index.rollup_rows(width).unwrap();
        let want: Vec<RollupRow> = want
            .into_iter()
            .map(
                |((bucket, action, outcome, project, resource_type), count)| RollupRow {
                    bucket,
                    category: category_of(&action).as_str().into(),
                    action,
                    outcome,
                    project,
                    resource_type,
                    count,
                },
            )
            .collect();
        assert_eq!(got, want, "width {width}");
    }
}
