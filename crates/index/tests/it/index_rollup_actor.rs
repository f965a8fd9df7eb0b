//! `rollup_actor` (the day counts by actor behind `by=actor` statistics): kept by the live
//! path, rebuilt by `rebuild`, and filled on open for an index made before it existed.

use crate::index_support;

use std::collections::BTreeMap;

use index::{Filter, Index, StatsBy, StatsSource, DAY_MS};
use index_support::{generated, ms, Log};

/// Day counts by actor computed from the stored events.
fn reference(log: &Log) -> BTreeMap<(i64, Option<String>), u64> {
    let mut want = BTreeMap::new();
    for e in &log.stored {
        let t = ms(e["time"].as_str().unwrap());
        let actor = e["actor"]["id"].as_str().unwrap().to_string();
        *want
            .entry((t.div_euclid(DAY_MS) * DAY_MS, Some(actor)))
            .or_default() += 1;
    }
    want
}

fn by_actor(index: &Index) -> BTreeMap<(i64, Option<String>), u64> {
    let s = index
        .stats(&Filter::default(), StatsBy::Actor, DAY_MS)
        .unwrap();
    assert_eq!(s.source, StatsSource::Rollup);
    s.buckets
        .into_iter()
        .map(|b| ((b.start, b.key), b.count))
        .collect()
}

#[test]
fn an_index_made_before_the_actor_rollup_is_filled_on_open() {
    let events = generated(1500, 13);
    let mut log = Log::new();
    log.append(&events[..1000], 250);
    {
        let index = Index::open(&log.index_path()).unwrap();
        index.catch_up(log.store()).unwrap();
        assert_eq!(by_actor(&index), reference(&log));
    }
    // What an index of the previous schema looks like: no `rollup_actor` table.
    {
        let conn = rusqlite::Connection::open(log.index_path()).unwrap();
        conn.execute_batch("DROP TABLE rollup_actor").unwrap();
    }
    log.append(&events[1000..], 250);
    let index = Index::open(&log.index_path()).unwrap();
    assert_eq!(index.catch_up(log.store()).unwrap(), 500);
    assert_eq!(by_actor(&index), reference(&log));
    // A rebuild gives the same counts.
    index.rebuild(log.store(), |_, _| {}).unwrap();
    assert_eq!(by_actor(&index), reference(&log));
}
