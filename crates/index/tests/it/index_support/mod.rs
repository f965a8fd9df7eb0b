//! Shared helpers of the index tests: a real ledger in a temporary directory, generated
//! events, and reference answers computed from the parsed events, independently of SQLite.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use event::{category_of, entry_template, format_time, Event};
use index::{Filter, Index, Order, Page};
use ledger::fs::{Fs, StdFs};
use ledger::{Config, Ledger, NewEntry};
use serde_json::Value;
use tlog::Signer;

pub const ORIGIN: &str = "test.example/index";

/// `n` events from the project's seeded generator (`sample`, as `mlaudit demo events`).
pub fn generated(n: usize, seed: u64) -> Vec<Value> {
    let opts = sample::Options {
        seed,
        ..Default::default()
    };
    sample::events(n as u64, &opts).collect()
}

/// A ledger and an index in one temporary directory.
pub struct Log {
    pub dir: tempfile::TempDir,
    pub skey: String,
    pub ledger: Option<Ledger>,
    /// Every stored event by seq, as the test appended it (the reference data).
    pub stored: Vec<Value>,
    /// `recorded_at` of each, in milliseconds.
    pub recorded: Vec<i64>,
    stamp: Arc<SetStamp>,
}

/// The `recorded_at` of the next appends, set by [`Log::append`] (the server's stamper
/// reads the clock instead; these tests want to know the value).
#[derive(Debug, Default)]
struct SetStamp(Mutex<Vec<u8>>);

impl ledger::Stamp for SetStamp {
    fn next(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

fn config(stamp: &Arc<SetStamp>) -> Config {
    let mut c = Config::new(ORIGIN);
    c.checkpoint_interval = Duration::from_secs(3600);
    c.stamp = Some(stamp.clone());
    c
}

impl Log {
    pub fn new() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let (_, skey, _) = Signer::generate(ORIGIN).unwrap();
        let mut log = Log {
            dir,
            skey,
            ledger: None,
            stored: Vec::new(),
            recorded: Vec::new(),
            stamp: Arc::default(),
        };
        log.reopen();
        log
    }

    pub fn ledger_dir(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.path().join("index.sqlite")
    }

    /// Closes the ledger (if open) and opens it again.
    pub fn reopen(&mut self) {
        if let Some(l) = self.ledger.take() {
            l.close();
        }
        let fs: Arc<dyn Fs> = Arc::new(StdFs);
        let l = Ledger::open(
            fs,
            &self.ledger_dir(),
            config(&self.stamp),
            Signer::from_skey(&self.skey).unwrap(),
        )
        .unwrap();
        assert_eq!(l.store().size(), self.stored.len() as u64);
        self.ledger = Some(l);
    }

    pub fn store(&self) -> &ledger::Store {
        self.ledger.as_ref().unwrap().store()
    }

    /// Appends events in batches of `batch`, remembering them as stored.
    pub fn append(&mut self, events: &[Value], batch: usize) {
        let now = Utc::now();
        let recorded_at = format_time(now);
        *self.stamp.0.lock().unwrap() = recorded_at.clone().into_bytes();
        for chunk in events.chunks(batch) {
            let mut entries = Vec::new();
            let mut values = Vec::new();
            for v in chunk {
                let ev = Event::parse(v.clone(), now, false).expect("generated events are valid");
                let t = entry_template(&ev, "tester").unwrap();
                entries.push(NewEntry::Template {
                    head: t.head,
                    mid: t.mid,
                    tail: t.tail,
                });
                values.push(ev.into_value());
            }
            let c = self.ledger.as_ref().unwrap().append(entries).unwrap();
            assert_eq!(c.first_seq, self.stored.len() as u64);
            self.stored.extend(values);
            self.recorded.resize(self.stored.len(), ms(&recorded_at));
        }
    }
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str()
}

pub fn ms(t: &str) -> i64 {
    DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis()
}

/// Whether `pattern` (with `*` for any run of characters) matches `text`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// The reference answer: does event `e` (recorded at `recorded_at` ms) match `f`?
/// (Ignores `q`, limit, order and cursor.)
pub fn matches(f: &Filter, e: &Value, recorded_at: i64) -> bool {
    let time = ms(s(e, &["time"]).unwrap());
    let action = s(e, &["action"]).unwrap();
    let eq = |want: &Option<String>, path: &[&str]| match want {
        None => true,
        Some(w) => s(e, path) == Some(w.as_str()),
    };
    f.from.is_none_or(|v| time >= v)
        && f.to.is_none_or(|v| time < v)
        && f.recorded_from.is_none_or(|v| recorded_at >= v)
        && f.recorded_to.is_none_or(|v| recorded_at < v)
        && f.action.as_deref().is_none_or(|p| glob(p, action))
        && f.category
            .as_deref()
            .is_none_or(|c| category_of(action).as_str() == c)
        && eq(&f.actor, &["actor", "id"])
        && eq(&f.resource_type, &["resource", "type"])
        && eq(&f.resource_id, &["resource", "id"])
        && eq(&f.resource_version, &["resource", "version"])
        && eq(&f.outcome, &["outcome"])
        && eq(&f.project, &["context", "project"])
        && eq(&f.environment, &["context", "environment"])
        && f.tag.as_deref().is_none_or(|t| {
            e.pointer("/resource/tags")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(t)))
        })
        && f.related.as_ref().is_none_or(|(t, id)| {
            e.get("related").and_then(Value::as_array).is_some_and(|a| {
                a.iter().any(|r| {
                    s(r, &["type"]) == Some(t.as_str()) && s(r, &["id"]) == Some(id.as_str())
                })
            })
        })
}

/// The reference seqs for `f`, in `f.order`.
pub fn reference(log: &Log, f: &Filter) -> Vec<u64> {
    let mut out: Vec<u64> = (0..log.stored.len() as u64)
        .filter(|&seq| {
            let i = seq as usize;
            matches(f, &log.stored[i], log.recorded[i])
        })
        .collect();
    if f.order == Order::Desc {
        out.reverse();
    }
    out
}

/// Follows cursors to the end, checking every page against the ledger.
pub fn query_all(index: &Index, log: &Log, f: &Filter) -> Vec<u64> {
    let mut f = f.clone();
    let mut seqs = Vec::new();
    loop {
        let page: Page = index.query(log.store(), &f).unwrap();
        let limit = f.limit.unwrap_or(index::LIMIT_DEFAULT);
        assert!(page.hits.len() <= limit);
        for h in &page.hits {
            assert_eq!(
                h.event_value(),
                log.stored[h.seq as usize],
                "event of seq {}",
                h.seq
            );
            let raw = log.store().entry(h.seq).unwrap();
            assert_eq!(h.leaf_hash, tlog::leaf_hash(&raw));
            assert_eq!(ms(&h.recorded_at), log.recorded[h.seq as usize]);
            seqs.push(h.seq);
        }
        if !page.more {
            return seqs;
        }
        f.cursor = page.next_cursor;
    }
}
