//! Throughput of the privacy transforms on generated events. A benchmark, not a test: it
//! asserts nothing about speed and is run on purpose, in release mode:
//!
//! ```text
//! cargo test --release -p privacy --test privacy_throughput -- --ignored --nocapture
//! ```
//!
//! Time is the thread's CPU time, best of several rounds.

use std::time::Duration;

use chrono::Utc;
use event::{split_body, BodyFormat, Event, BATCH_EVENTS_MAX};
use privacy::{Privacy, PrivacyConfig};

const EVENTS: usize = 20_000;
const ROUNDS: usize = 15;

#[path = "../../event/tests/support/cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu_time;

/// Cost of the privacy transforms (`Privacy::apply`: redaction, pseudonyms, sealing) on the
/// same events, subject keys already made (the steady state: known people), default rules.
#[test]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
fn privacy_transform_throughput() {
    let text = sample::ndjson(EVENTS as u64, &sample::Options::default());
    let now = Utc::now();
    let events: Vec<Event> = split_body(text.as_bytes(), BodyFormat::Ndjson, EVENTS)
        .unwrap()
        .into_iter()
        .map(|v| Event::parse(v, now, false).unwrap())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("keys")).unwrap();
    let privacy = Privacy::open(tmp.path(), &PrivacyConfig::default()).unwrap();
    // First pass: makes every subject's key (durable SQLite writes), timed on its own.
    let t0 = std::time::Instant::now();
    for chunk in events.chunks(BATCH_EVENTS_MAX) {
        privacy.apply(&mut chunk.to_vec()).unwrap();
    }
    let first = t0.elapsed();
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let mut batches: Vec<Vec<Event>> = events
            .chunks(BATCH_EVENTS_MAX)
            .map(<[Event]>::to_vec)
            .collect();
        let t = thread_cpu_time();
        for b in &mut batches {
            privacy.apply(b).unwrap();
        }
        best = best.min(thread_cpu_time() - t);
    }
    println!(
        "Privacy::apply on {EVENTS} generated events: {:.2} µs/event (best of {ROUNDS}, thread CPU, keys known); \
         first pass making the keys: {:.2} s wall",
        best.as_secs_f64() * 1e6 / EVENTS as f64,
        first.as_secs_f64()
    );
}
