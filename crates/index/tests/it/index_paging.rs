//! Paging deep through `tag` and `related` filters with small pages: every page continues
//! from the cursor inside the tag's (or the target's) own rows, and the pages together are
//! exactly the reference answer, in both orders and combined with other filters.

use crate::index_support;

use index::{Filter, Index, Order, DAY_MS};
use index_support::{generated, ms, query_all, reference, Log};
use serde_json::Value;

fn setup() -> (Log, Index) {
    let events = generated(3000, 11);
    let mut log = Log::new();
    log.append(&events, 500);
    let index = Index::open(&log.index_path()).unwrap();
    assert_eq!(index.catch_up(log.store()).unwrap(), 3000);
    (log, index)
}

/// The value `f` finds in the most events.
fn most_common(log: &Log, f: impl Fn(&Value) -> Vec<String>) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for e in &log.stored {
        for k in f(e) {
            *counts.entry(k).or_default() += 1;
        }
    }
    counts.into_iter().max_by_key(|(_, n)| *n).unwrap().0
}

#[test]
fn small_pages_through_tag_and_related_filters_equal_the_reference() {
    let (log, index) = setup();
    let tag = most_common(&log, |e| {
        e.pointer("/resource/tags")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    });
    let target = most_common(&log, |e| {
        e.get("related")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|r| {
                        format!(
                            "{}:{}",
                            r["type"].as_str().unwrap(),
                            r["id"].as_str().unwrap()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    });
    let related = Filter::parse_related(&target).unwrap();
    // Deep: tens of pages of 7.
    let deep = Filter {
        tag: Some(tag.clone()),
        ..Filter::default()
    };
    assert!(reference(&log, &deep).len() > 20 * 7);
    let mid = ms(log.stored[1500]["time"].as_str().unwrap());
    let actor = log.stored[0]["actor"]["id"].as_str().unwrap().to_string();
    let base = [
        Filter {
            tag: Some(tag.clone()),
            ..Filter::default()
        },
        Filter {
            tag: Some(tag.clone()),
            from: Some(mid - 5 * DAY_MS),
            to: Some(mid + 5 * DAY_MS),
            ..Filter::default()
        },
        Filter {
            tag: Some(tag.clone()),
            actor: Some(actor),
            ..Filter::default()
        },
        Filter {
            tag: Some(tag),
            related: Some(related.clone()),
            ..Filter::default()
        },
        Filter {
            related: Some(related.clone()),
            ..Filter::default()
        },
        Filter {
            related: Some(related),
            action: Some("model.*".into()),
            ..Filter::default()
        },
        Filter {
            tag: Some("no-such-tag".into()),
            ..Filter::default()
        },
    ];
    for f in base {
        for order in [Order::Asc, Order::Desc] {
            let f = Filter {
                order,
                limit: Some(7),
                ..f.clone()
            };
            let want = reference(&log, &f);
            assert_eq!(query_all(&index, &log, &f), want, "{f:?}");
        }
    }
}
