//! Feeding the index: catch-up continues where it stopped (also across reopening the
//! ledger and the index), a rebuild equals the incremental index, and cursors neither skip
//! nor repeat while events are appended between pages.

use crate::index_support;

use index::{Filter, Index, Order, DAY_MS, HOUR_MS};
use index_support::{generated, query_all, reference, Log};

fn all_asc() -> Filter {
    Filter {
        order: Order::Asc,
        limit: Some(1000),
        ..Filter::default()
    }
}

#[test]
fn catch_up_after_reopening_continues_where_it_stopped() {
    let events = generated(2000, 7);
    let mut log = Log::new();
    log.append(&events[..700], 100);
    {
        let index = Index::open(&log.index_path()).unwrap();
        assert_eq!(index.catch_up(log.store()).unwrap(), 700);
        assert_eq!(index.next_seq().unwrap(), 700);
        // Nothing new: nothing to do.
        assert_eq!(index.catch_up(log.store()).unwrap(), 0);
    }
    // More events while the index is closed, then both are reopened.
    log.append(&events[700..1500], 250);
    log.reopen();
    let index = Index::open(&log.index_path()).unwrap();
    assert_eq!(index.next_seq().unwrap(), 700);
    let mut steps = Vec::new();
    assert_eq!(
        index
            .catch_up_with(log.store(), |done, of| steps.push((done, of)))
            .unwrap(),
        800
    );
    // One transaction per bundle: the first ends at the bundle boundary after 700.
    assert_eq!(steps.first(), Some(&(768, 1500)));
    assert_eq!(steps.last(), Some(&(1500, 1500)));
    log.append(&events[1500..], 500);
    assert_eq!(index.catch_up(log.store()).unwrap(), 500);
    let got = query_all(&index, &log, &all_asc());
    assert_eq!(got, (0..2000).collect::<Vec<u64>>());
    let f = Filter {
        action: Some("model.*".into()),
        ..all_asc()
    };
    assert_eq!(query_all(&index, &log, &f), reference(&log, &f));
}

#[test]
fn rebuild_equals_the_incremental_index() {
    let events = generated(2000, 7);
    let mut log = Log::new();
    let live = Index::open(&log.dir.path().join("live.sqlite")).unwrap();
    for chunk in events.chunks(333) {
        log.append(chunk, 111);
        live.catch_up(log.store()).unwrap();
    }
    let rebuilt = Index::open(&log.dir.path().join("rebuilt.sqlite")).unwrap();
    // Index a part, then rebuild from scratch.
    rebuilt.catch_up(log.store()).unwrap();
    let mut last = 0;
    assert_eq!(
        rebuilt.rebuild(log.store(), |done, _| last = done).unwrap(),
        2000
    );
    assert_eq!(last, 2000);
    assert_eq!(rebuilt.next_seq().unwrap(), live.next_seq().unwrap());
    for width in [HOUR_MS, DAY_MS] {
        assert_eq!(
            rebuilt.rollup_rows(width).unwrap(),
            live.rollup_rows(width).unwrap()
        );
    }
    let filters = [
        all_asc(),
        Filter {
            tag: Some("pii".into()),
            ..all_asc()
        },
        Filter {
            action: Some("deployment.*".into()),
            order: Order::Desc,
            ..all_asc()
        },
        Filter {
            q: Some("quota".into()),
            ..all_asc()
        },
        Filter {
            outcome: Some("failure".into()),
            ..all_asc()
        },
    ];
    for f in &filters {
        assert_eq!(
            query_all(&rebuilt, &log, f),
            query_all(&live, &log, f),
            "{f:?}"
        );
    }
}

#[test]
fn cursors_neither_skip_nor_repeat_while_events_arrive() {
    let events = generated(2000, 7);
    for order in [Order::Asc, Order::Desc] {
        let mut log = Log::new();
        log.append(&events[..1000], 200);
        let index = Index::open(&log.index_path()).unwrap();
        index.catch_up(log.store()).unwrap();
        let base = Filter {
            action: Some("dataset.*".into()),
            order,
            limit: Some(37),
            ..Filter::default()
        };
        // What the listing promises: for desc, everything matching at the first page;
        // for asc, everything matching at the end (new events come after the cursor).
        let at_start = reference(&log, &base);
        let mut f = base.clone();
        let mut seen = Vec::new();
        let mut fed = 1000;
        loop {
            let page = index.query(log.store(), &f).unwrap();
            seen.extend(page.hits.iter().map(|h| h.seq));
            f.cursor = page.next_cursor.clone();
            // Between pages, more events are ingested and indexed.
            if fed < events.len() {
                log.append(&events[fed..fed + 50], 25);
                index.catch_up(log.store()).unwrap();
                fed += 50;
            } else if !page.more {
                break;
            }
        }
        let mut dedup = seen.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), seen.len(), "{order:?}: a seq was repeated");
        match order {
            Order::Desc => assert_eq!(seen, at_start),
            Order::Asc => assert_eq!(seen, reference(&log, &base)),
        }
    }
}

/// Regression (issue 11.3): `SELECT … FROM tags WHERE seq = ?` was a full scan (no index
/// on `tags(seq)`), so retention planning over 200,000 entries took 17 CPU-minutes. The
/// lookups by seq must use an index, also in an index file made before it existed.
#[test]
fn tag_lookups_by_seq_use_an_index() {
    let events = generated(300, 7);
    let mut log = Log::new();
    log.append(&events, 300);
    let path = log.index_path();
    drop(Index::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    // An older file: without the index (it is made again at the next open).
    conn.execute_batch("DROP INDEX tags_seq").unwrap();
    drop(conn);
    drop(Index::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "SELECT tag FROM tags WHERE seq = 5",
        "DELETE FROM tags WHERE seq = 5",
    ] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter()
                .any(|p| p.contains("USING") && p.contains("INDEX")),
            "{sql}: {plan:?}"
        );
    }
}
