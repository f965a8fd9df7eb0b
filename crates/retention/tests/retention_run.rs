//! Retention on a real ledger and index, without a server: a run that a crash
//! interrupted after dropping index rows and before pruning is finished by the
//! next run (and not by a dry run); policies and globs decide as documented.

// The index tests' helpers (a real ledger and index in a temporary directory).
#[path = "../../index/tests/it/index_support/mod.rs"]
mod index_support;

use chrono::{Duration as Days, Utc};
use event::parse_entry;
use index::{extract, Index, RetentionRow};
use index_support::Log;
use retention::{self, glob, HoldScope, HoldStore, Policy, RetentionConfig};
use serde_json::json;

fn events(n: usize) -> Vec<serde_json::Value> {
    let now = Utc::now();
    (0..n)
        .map(|i| {
            let age = if i % 2 == 0 { 100 } else { 5 };
            json!({
                "time": (now - Days::days(age)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "action": "dataset.read",
                "actor": {"id": format!("user{i}")},
                "resource": {"type": "dataset", "id": if i % 10 == 0 { "held" } else { "free" }},
                "reason": format!("word{i}"),
                "id": format!("ev-{i}"),
            })
        })
        .collect()
}

fn config() -> RetentionConfig {
    RetentionConfig {
        default_keep_days: None,
        run_interval_s: None,
        policies: vec![Policy {
            name: "reads".into(),
            category: Some("data_access".into()),
            action: Some("dataset.*".into()),
            tag: None,
            project: None,
            keep_days: 30,
        }],
    }
}

#[test]
fn an_interrupted_run_is_finished_by_the_next_run() {
    let mut log = Log::new();
    log.append(&events(600), 200);
    let index = Index::open(&log.index_path()).unwrap();
    index.catch_up(log.store()).unwrap();
    let holds = HoldStore::open(&log.dir.path().join("retention.sqlite")).unwrap();
    let cfg = config();
    let held = holds
        .create(
            "case 1",
            &HoldScope {
                resource: Some(retention::HoldResource {
                    r#type: "dataset".into(),
                    id: "held".into(),
                }),
                ..HoldScope::default()
            },
            "tester",
            "2026-01-01T00:00:00.000Z",
        )
        .unwrap();

    // What the run will prune: even seqs (100 days old), except every tenth (held).
    let want: Vec<u64> = (0..600u64).filter(|s| s % 2 == 0 && s % 10 != 0).collect();
    let mut report = retention::RunReport::default();
    let mut planned = Vec::new();
    retention::plan(
        &index,
        &cfg,
        std::slice::from_ref(&held),
        Utc::now().timestamp_millis(),
        &mut report,
        &mut |seq| {
            planned.push(seq);
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(planned, want);
    assert_eq!(report.held, 60);
    assert_eq!(report.expired, want.len() as u64);
    // Issue 19.5: the plan held every expired entry in one list. It streams them now, and
    // an error from the consumer stops it at once.
    let mut seen = 0;
    let stopped = retention::plan(
        &index,
        &cfg,
        &[held],
        Utc::now().timestamp_millis(),
        &mut retention::RunReport::default(),
        &mut |_| {
            seen += 1;
            anyhow::ensure!(seen < 5, "stop");
            Ok(())
        },
    );
    assert!(stopped.is_err());
    assert_eq!(seen, 5, "no seq after the consumer failed");

    // A crash in the middle of a chunk: pending recorded, index rows dropped,
    // ledger not pruned yet.
    let chunk: Vec<u64> = want.iter().copied().filter(|&s| s < 300).collect();
    {
        let conn = rusqlite::Connection::open(log.dir.path().join("retention.sqlite")).unwrap();
        for &s in &chunk {
            conn.execute(
                "INSERT INTO pending (first, end) VALUES (?1, ?2)",
                [s as i64, s as i64 + 1],
            )
            .unwrap();
        }
    }
    let rows: Vec<_> = chunk
        .iter()
        .map(|&s| extract(&parse_entry(&log.store().entry(s).unwrap()).unwrap()))
        .collect();
    assert_eq!(index.drop_entries(&rows, &[]).unwrap(), chunk.len() as u64);
    drop(index);
    log.reopen();
    let index = Index::open(&log.index_path()).unwrap();
    for &s in &chunk {
        assert!(!index.contains(s).unwrap());
        assert!(log.store().entry(s).is_ok(), "not pruned yet");
    }

    // A dry run neither finishes it nor sees those entries.
    let ledger = log.ledger.as_ref().unwrap();
    let dry = retention::run(
        ledger,
        &index,
        &holds,
        &cfg,
        Utc::now(),
        true,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(dry.resumed, 0);
    assert_eq!(dry.expired, (want.len() - chunk.len()) as u64);
    assert!(log.store().entry(chunk[0]).is_ok());

    // The next run finishes the pending chunk, then prunes the rest.
    let mut progress = Vec::new();
    let run = retention::run(
        ledger,
        &index,
        &holds,
        &cfg,
        Utc::now(),
        false,
        &mut |d, t| progress.push((d, t)),
    )
    .unwrap();
    assert_eq!(run.resumed, chunk.len() as u64);
    assert_eq!(run.pruned, (want.len() - chunk.len()) as u64);
    assert_eq!(progress.last(), Some(&(run.expired, run.expired)));
    for s in 0..600u64 {
        let gone = want.contains(&s);
        match log.store().entry(s) {
            Err(ledger::store::ReadError::Pruned { .. }) => assert!(gone, "seq {s} pruned"),
            Ok(_) => assert!(!gone, "seq {s} kept"),
            Err(e) => panic!("seq {s}: {e}"),
        }
        assert_eq!(index.contains(s).unwrap(), !gone, "seq {s} in the index");
    }
    // Every pruned entry's id is remembered with its seq, those of the resumed chunk too
    // (a retry gets its receipt); kept entries are found in the index, not here.
    let keys: Vec<_> = (0..600u64)
        .map(|s| event::id_key("tester", &format!("ev-{s}")))
        .collect();
    let pruned = holds.pruned_seqs(&keys).unwrap();
    for (s, seq) in (0..600u64).zip(&pruned) {
        assert_eq!(*seq, want.contains(&s).then_some(s), "id of seq {s}");
    }
    let reopened = HoldStore::open(&log.dir.path().join("retention.sqlite")).unwrap();
    assert_eq!(reopened.pruned_seqs(&keys).unwrap(), pruned);
    assert_eq!(
        reopened
            .pruned_seqs(&[event::id_key("someone else", "ev-2")])
            .unwrap(),
        [None],
        "the key names the principal"
    );
    // Nothing pending any more: another run does nothing.
    let again = retention::run(
        ledger,
        &index,
        &holds,
        &cfg,
        Utc::now(),
        false,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!((again.resumed, again.pruned, again.expired), (0, 0, 0));
}

#[test]
fn the_longest_matching_policy_wins_and_globs_match_as_documented() {
    let row = |action: &str, category: &str, tags: &[&str], project: Option<&str>| RetentionRow {
        seq: 0,
        time: 0,
        action: action.into(),
        category: category.into(),
        actor: "a".into(),
        resource_type: None,
        resource_id: None,
        project: project.map(Into::into),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    let p =
        |name: &str, action: Option<&str>, tag: Option<&str>, project: Option<&str>, days| Policy {
            name: name.into(),
            category: None,
            action: action.map(Into::into),
            tag: tag.map(Into::into),
            project: project.map(Into::into),
            keep_days: days,
        };
    let mut cfg = RetentionConfig {
        default_keep_days: None,
        run_interval_s: None,
        policies: vec![
            p("short", None, Some("pii"), None, 30),
            p("long", Some("dataset.*"), None, None, 400),
            p("both", Some("model.*"), Some("pii"), Some("churn"), 7),
        ],
    };
    cfg.check().unwrap();
    assert_eq!(
        cfg.keep_days(&row("dataset.read", "data_access", &["pii"], None)),
        Some((400, "long"))
    );
    assert_eq!(
        cfg.keep_days(&row("model.train", "model_development", &["pii"], None)),
        Some((30, "short"))
    );
    assert_eq!(
        cfg.keep_days(&row(
            "model.train",
            "model_development",
            &["pii"],
            Some("churn")
        )),
        Some((30, "short"))
    );
    assert_eq!(
        cfg.keep_days(&row("job.start", "user_action", &[], None)),
        None
    );
    cfg.default_keep_days = Some(90);
    assert_eq!(
        cfg.keep_days(&row("job.start", "user_action", &[], None)),
        Some((90, "default"))
    );

    assert!(glob("dataset.*", "dataset.read"));
    assert!(glob("*.read", "dataset.read"));
    assert!(glob("d*t*.r*d", "dataset.read"));
    assert!(!glob("dataset.*", "datasets.read"));
    assert!(!glob("model.*", "dataset.read"));
    assert!(glob("dataset.read", "dataset.read"));

    cfg.policies.push(p("short", None, None, None, 1));
    assert!(cfg.check().is_err(), "duplicate names are refused");
}
