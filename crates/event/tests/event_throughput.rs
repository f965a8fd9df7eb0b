//! Throughput of the event path on generated events. A benchmark, not a test: it asserts
//! nothing about speed and is run on purpose, in release mode:
//!
//! ```text
//! cargo test --release -p event --test event_throughput -- --ignored --nocapture
//! ```
//!
//! Events go through in NDJSON requests of 1,000, as the server would see them. Time is the
//! thread's CPU time, and each phase reports the best of several rounds, so that other load
//! on a shared machine skews the figures as little as possible.

use std::time::Duration;

use chrono::Utc;
use event::{
    entry_bytes, entry_template, format_time, split_body, BodyFormat, Event, BATCH_EVENTS_MAX,
};

const EVENTS: usize = 20_000;
const ROUNDS: usize = 15;

#[path = "support/cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu_time;

#[test]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
fn parse_and_template_throughput() {
    let text = sample::ndjson(EVENTS as u64, &sample::Options::default());
    let lines: Vec<&str> = text.lines().collect();
    let requests: Vec<String> = lines
        .chunks(BATCH_EVENTS_MAX)
        .map(|chunk| chunk.join("\n"))
        .collect();
    let now = Utc::now();
    let recorded_at = format_time(now);

    let mut best = [Duration::MAX; 4];
    let mut entry_bytes_total = 0;
    for _ in 0..ROUNDS {
        let mut round = [Duration::ZERO; 4];
        entry_bytes_total = 0;
        for body in &requests {
            let t0 = thread_cpu_time();
            let values = split_body(body.as_bytes(), BodyFormat::Ndjson, BATCH_EVENTS_MAX).unwrap();
            let t1 = thread_cpu_time();
            let events: Vec<Event> = values
                .into_iter()
                .map(|v| Event::parse(v, now, false).unwrap())
                .collect();
            let t2 = thread_cpu_time();
            let templates: Vec<_> = events
                .iter()
                .map(|e| entry_template(e, "tok-bench").unwrap())
                .collect();
            let t3 = thread_cpu_time();
            for (seq, t) in templates.iter().enumerate() {
                entry_bytes_total += entry_bytes(t, &recorded_at, seq as u64).len();
            }
            let t4 = thread_cpu_time();
            for (slot, d) in round.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
                *slot += d;
            }
        }
        for (slot, d) in best.iter_mut().zip(round) {
            *slot = (*slot).min(d);
        }
    }
    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / EVENTS as f64;
    println!(
        "{EVENTS} generated events in requests of {BATCH_EVENTS_MAX}, {} bytes NDJSON, \
         {} bytes of entries, best of {ROUNDS} rounds per phase, thread CPU time:",
        text.len(),
        entry_bytes_total
    );
    for (name, d) in [
        ("split_body (NDJSON parse)", best[0]),
        ("Event::parse", best[1]),
        ("entry_template", best[2]),
        ("entry_bytes", best[3]),
        ("Event::parse + entry_template", best[1] + best[2]),
        ("split + parse + template", best[0] + best[1] + best[2]),
    ] {
        println!(
            "  {name:<30} {:>9.0} events/s  {:>6.2} µs/event",
            rate(d),
            per(d)
        );
    }
}
