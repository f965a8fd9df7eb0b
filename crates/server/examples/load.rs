//! Load generator for `bench/ingest.sh`: many concurrent clients, each posting one event per
//! request to a running `mlaudit serve`, like producers that record events one at a time.
//! A program that prints figures, run on purpose (STYLE.md item 20), never a timed test.
//!
//! ```text
//! cargo run --release -p server --example load -- --url http://127.0.0.1:PORT \
//!     --file events.ndjson [--clients 32] [--events N | --duration SECS] [--id-prefix P]
//! ```
//!
//! Events come from an NDJSON file (`mlaudit demo events N`, its first 100,000 lines),
//! taken in order by whichever client is free. With `--events N` exactly N events are
//! acknowledged (N may exceed the lines: later rounds give every id a `-rROUND` suffix, so
//! each event stays unique); with
//! `--duration` the clients stop starting requests after that many seconds. `--id-prefix`
//! makes the ids differ from an earlier run against the same server.
//!
//! A 503 (the server sheds load) is counted and the same event is retried after the
//! server's `Retry-After`, as a well-behaved producer would; an event counts once it has a
//! 200/201 answer, i.e. once it is durable. Latency is per acknowledged event, from the
//! first attempt to the answer, retries included. The last line is machine-readable
//! (`RESULT key=value …`) for the script.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::Value;

/// Longest wait after a 503, whatever `Retry-After` says, so a short run stays short.
const RETRY_WAIT_MAX: Duration = Duration::from_secs(2);
/// Wait after a connection error before retrying the same event.
const CONNECT_RETRY_WAIT: Duration = Duration::from_millis(50);
/// Attempts per event before the run fails (503s and connection errors).
const ATTEMPTS_MAX: u32 = 1000;

#[derive(Parser)]
#[command(about = "One-event-per-request load generator for mlaudit serve")]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:7405")]
    url: String,
    /// NDJSON file of events with ids.
    #[arg(long)]
    file: std::path::PathBuf,
    /// Concurrent clients (each has one request in flight).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Events to get acknowledged (default: every line read once).
    #[arg(long, conflicts_with = "duration")]
    events: Option<u64>,
    /// Run for this many seconds instead of a fixed number of events.
    #[arg(long)]
    duration: Option<f64>,
    /// Prepended to every id.
    #[arg(long, default_value = "")]
    id_prefix: String,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// What one client did.
#[derive(Default)]
struct ClientReport {
    /// Latency of each acknowledged event, in microseconds.
    latencies_us: Vec<u32>,
    /// 503 answers received.
    busy: u64,
    /// Connection errors (retried).
    connect_errors: u64,
    /// Events the server already had (`"duplicates"` in the answer).
    duplicates: u64,
}

/// Lines of the file used at most: later events reuse them with new ids, and memory stays small.
const LINES_MAX: usize = 100_000;

/// One event line of the file, kept as sent.
struct Line {
    text: String,
    /// Byte range of the id's characters inside `text` (between its quotes), when the line
    /// starts with a plain `{"id":"…"`, so that it can be rewritten without parsing the line.
    id_span: Option<(usize, usize)>,
}

/// The events of the file, split once so clients only rewrite ids.
struct Events {
    lines: Vec<Line>,
}

impl Events {
    fn load(path: &std::path::Path) -> Result<Events> {
        use std::io::BufRead;
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut lines = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            if lines.len() == LINES_MAX {
                break;
            }
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            let line = line.as_str();
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not JSON", path.display(), i + 1))?;
            let Some(id) = v.get("id").and_then(Value::as_str) else {
                bail!("{}:{}: the event has no string id", path.display(), i + 1);
            };
            let quoted = format!("\"id\":{}", serde_json::to_string(id)?);
            // Spliced as text only when the event starts with a plain id (no escapes), as
            // `mlaudit demo events` writes it; a nested "id" (actor, resource) is never touched.
            let plain = quoted.len() == "\"id\":\"\"".len() + id.len();
            let id_span = (plain && line[1..].starts_with(&quoted)).then(|| {
                let start = 1 + "\"id\":\"".len();
                (start, start + id.len())
            });
            lines.push(Line {
                text: line.to_string(),
                id_span,
            });
        }
        if lines.is_empty() {
            bail!("{} has no events", path.display());
        }
        Ok(Events { lines })
    }

    /// The body of the `n`th event of the run: line `n mod len`, id made unique per round.
    fn body(&self, n: u64, prefix: &str) -> Vec<u8> {
        let len = self.lines.len() as u64;
        let round = n / len;
        let line = &self.lines[(n % len) as usize];
        if round == 0 && prefix.is_empty() {
            return line.text.as_bytes().to_vec();
        }
        let suffix = if round == 0 {
            String::new()
        } else {
            format!("-r{round}")
        };
        match line.id_span {
            Some((start, end)) => {
                let t = &line.text;
                format!(
                    "{}{prefix}{}{suffix}{}",
                    &t[..start],
                    &t[start..end],
                    &t[end..]
                )
                .into_bytes()
            }
            None => {
                let mut ev: serde_json::Map<String, Value> =
                    serde_json::from_str(&line.text).expect("checked when loading");
                let id = format!("{prefix}{}{suffix}", ev["id"].as_str().unwrap_or_default());
                ev.insert("id".into(), Value::String(id));
                serde_json::to_vec(&ev).expect("a JSON map serializes")
            }
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let events = Arc::new(Events::load(&args.file)?);
    let target = match (args.events, args.duration) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => events.lines.len() as u64,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let url = format!("{}/v1/events", args.url.trim_end_matches('/'));
    let (reports, elapsed) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(args.clients)
            .timeout(Duration::from_secs(60))
            .default_headers(common::bearer_from_env()?)
            .build()?;
        let next = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = args.duration.map(|s| started + Duration::from_secs_f64(s));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.clients {
            let client = client.clone();
            let url = url.clone();
            let next = next.clone();
            let events = events.clone();
            let prefix = args.id_prefix.clone();
            tasks.spawn(async move {
                run_client(&client, &url, &next, target, deadline, &events, &prefix).await
            });
        }
        let mut reports = Vec::new();
        while let Some(r) = tasks.join_next().await {
            reports.push(r??);
        }
        anyhow::Ok((reports, started.elapsed()))
    })?;
    print_report(&args, &reports, elapsed);
    Ok(())
}

async fn run_client(
    client: &reqwest::Client,
    url: &str,
    next: &AtomicU64,
    target: u64,
    deadline: Option<Instant>,
    events: &Events,
    prefix: &str,
) -> Result<ClientReport> {
    let mut report = ClientReport::default();
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(report);
        }
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= target {
            return Ok(report);
        }
        let body = events.body(n, prefix);
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > ATTEMPTS_MAX {
                bail!("event {n}: no acknowledgement after {ATTEMPTS_MAX} attempts");
            }
            let sent = client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) if e.is_connect() || e.is_request() => {
                    report.connect_errors += 1;
                    tokio::time::sleep(CONNECT_RETRY_WAIT).await;
                    continue;
                }
                Err(e) => return Err(e).context("posting an event"),
            };
            let status = resp.status().as_u16();
            if status == 503 {
                report.busy += 1;
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(CONNECT_RETRY_WAIT)
                    .min(RETRY_WAIT_MAX);
                // Drain the body so the connection can be reused.
                let _ = resp.bytes().await;
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = resp.text().await.context("reading the answer")?;
            if status != 200 && status != 201 {
                bail!("event {n}: the server answered {status}: {text}");
            }
            let v: Value = serde_json::from_str(&text).context("the answer is not JSON")?;
            report.duplicates += v["duplicates"].as_u64().unwrap_or(0);
            let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
            report.latencies_us.push(us);
            break;
        }
    }
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

fn print_report(args: &Args, reports: &[ClientReport], elapsed: Duration) {
    let mut lat: Vec<u32> = reports
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let acked = lat.len() as u64;
    let busy: u64 = reports.iter().map(|r| r.busy).sum();
    let connect_errors: u64 = reports.iter().map(|r| r.connect_errors).sum();
    let duplicates: u64 = reports.iter().map(|r| r.duplicates).sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = acked as f64 / secs;
    let (p50, p99, max) = (
        percentile_ms(&lat, 0.50),
        percentile_ms(&lat, 0.99),
        percentile_ms(&lat, 1.0),
    );
    println!(
        "{} clients, one event per request: {acked} events acknowledged in {secs:.2} s \
         ({rate:.0} events/s); latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; \
         {busy} answers 503, {connect_errors} connection errors, {duplicates} duplicates",
        args.clients
    );
    println!(
        "RESULT events={acked} secs={secs:.3} rate={rate:.0} p50_ms={p50:.2} p99_ms={p99:.2} \
         max_ms={max:.2} busy={busy} connect_errors={connect_errors} duplicates={duplicates}"
    );
}
