//! Query latency driver for `bench/query.sh`: runs the five queries of issue 4 against a
//! running `mlaudit serve` over HTTP, one request at a time, and prints p50/p99 latency.
//! A program that prints figures, run on purpose (STYLE.md item 20), never a timed test.
//!
//! ```text
//! cargo run --release -p server --example query_bench -- --url http://127.0.0.1:PORT \
//!     --params DIR [--reps 500] [--q3-reps 50]
//! ```
//!
//! The parameters come from files that `bench/query.sh` draws from the generated events (the
//! same files are loaded into PostgreSQL, so both sides answer the same questions):
//! - `q1.tsv`: `actor  from  to` (RFC 3339; a 7-day window ending at one of the actor's events)
//! - `q2.tsv`: `dataset_id`
//! - `q4.tsv`: `from  to` (the last 24 h of the data)
//! - `q5.tsv`: `dataset_id` (one that some model was trained on)
//!
//! Repetition `i` of a query uses line `i mod lines`. Latency is from the first request to
//! the last answer of a query, cursors followed: Q2 and Q4 read every page, Q5 is two
//! requests (model events that name the dataset in `related`, and the dataset's own
//! `dataset.use` events, which name the model). The last line is machine-readable
//! (`RESULT key=value …`) for the script.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

/// Requests of each query run before measuring (connections, page cache, statement cache).
const WARMUP_REPS: usize = 20;
/// Page size used when a query reads all pages.
const PAGE_LIMIT: usize = 1000;
/// Most pages one query may read before the run fails (a cursor loop would never end).
const PAGES_MAX: usize = 10_000;

#[derive(Parser)]
#[command(about = "Query latency driver for mlaudit serve (issue 4, Q1-Q5)")]
struct Args {
    /// Server URL.
    #[arg(long, default_value = "http://127.0.0.1:7405")]
    url: String,
    /// Directory with q1.tsv, q2.tsv, q4.tsv and q5.tsv.
    #[arg(long)]
    params: PathBuf,
    /// Measured repetitions of Q1, Q2, Q4 and Q5.
    #[arg(long, default_value_t = 500)]
    reps: usize,
    /// Measured repetitions of Q3.
    #[arg(long, default_value_t = 50)]
    q3_reps: usize,
}

fn read_tsv(dir: &Path, name: &str) -> Result<Vec<Vec<String>>> {
    let path = dir.join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    if rows.is_empty() {
        bail!("{} has no parameters", path.display());
    }
    Ok(rows)
}

/// Percent-encodes a query parameter value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A page of `GET /v1/events`, as far as the benchmark reads it.
#[derive(serde::Deserialize)]
struct EventsPage {
    events: Vec<serde::de::IgnoredAny>,
    next: Option<String>,
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// GET `path_and_query`: the status and the body read to its end.
    async fn get(&self, path_and_query: &str) -> Result<(reqwest::StatusCode, Vec<u8>)> {
        let resp = self
            .http
            .get(format!("{}{}", self.base, path_and_query))
            .send()
            .await?;
        let status = resp.status();
        Ok((status, resp.bytes().await?.to_vec()))
    }

    /// Every event of `GET /v1/events?query`, following cursors; returns the count.
    async fn all_events(&self, query: &str, limit: usize, all_pages: bool) -> Result<usize> {
        let mut n = 0;
        let mut cursor: Option<String> = None;
        for _ in 0..PAGES_MAX {
            let mut q = format!("/v1/events?{query}&limit={limit}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={}", enc(c)));
            }
            let (status, body) = self.get(&q).await?;
            if !status.is_success() {
                bail!("GET {q}: {status} {}", String::from_utf8_lossy(&body));
            }
            // The whole answer is parsed (so it must be valid JSON of the documented
            // shape), but the events are not built into values the benchmark never reads.
            let page: EventsPage = serde_json::from_slice(&body)?;
            n += page.events.len();
            match page.next {
                Some(c) if all_pages => cursor = Some(c),
                _ => return Ok(n),
            }
        }
        bail!("GET /v1/events?{query}: more than {PAGES_MAX} pages")
    }
}

/// p50, p99 and max of latencies, in milliseconds.
fn percentiles(mut d: Vec<Duration>) -> (f64, f64, f64) {
    d.sort();
    let at = |q: f64| {
        let i = ((d.len() - 1) as f64 * q).round() as usize;
        d[i].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.99), at(1.0))
}

/// Runs `one(i)` for the warm-up and then `reps` measured times; prints and returns p50/p99.
async fn measure<F, Fut>(name: &str, what: &str, reps: usize, mut one: F) -> Result<(f64, f64)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<usize>>,
{
    for i in 0..WARMUP_REPS.min(reps) {
        one(i).await?;
    }
    let mut lat = Vec::with_capacity(reps);
    let mut results = 0usize;
    for i in 0..reps {
        let t = Instant::now();
        results += one(i).await?;
        lat.push(t.elapsed());
    }
    let (p50, p99, max) = percentiles(lat);
    println!(
        "{name}: p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms over {reps} runs; {:.1} events per run; {what}",
        results as f64 / reps as f64
    );
    Ok((p50, p99))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.reps == 0 || args.q3_reps == 0 {
        bail!("--reps and --q3-reps must be at least 1");
    }
    let q1 = read_tsv(&args.params, "q1.tsv")?;
    let q2 = read_tsv(&args.params, "q2.tsv")?;
    let q4 = read_tsv(&args.params, "q4.tsv")?;
    let q5 = read_tsv(&args.params, "q5.tsv")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let c = Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .default_headers(common::bearer_from_env()?)
                .build()?,
            base: args.url.trim_end_matches('/').to_string(),
        };
        let mut result = Vec::new();
        let (p50, p99) = measure(
            "Q1",
            "GET /v1/events?actor=A&from=T-7d&to=T&limit=100 (newest 100)",
            args.reps,
            |i| {
                let r = &q1[i % q1.len()];
                let q = format!("actor={}&from={}&to={}", enc(&r[0]), enc(&r[1]), enc(&r[2]));
                let c = &c;
                async move { c.all_events(&q, 100, false).await }
            },
        )
        .await?;
        result.push(format!("q1_p50={p50:.3} q1_p99={p99:.3}"));
        let (p50, p99) = measure(
            "Q2",
            "GET /v1/events?resource_type=dataset&resource_id=D&limit=1000, every page",
            args.reps,
            |i| {
                let q = format!(
                    "resource_type=dataset&resource_id={}",
                    enc(&q2[i % q2.len()][0])
                );
                let c = &c;
                async move { c.all_events(&q, PAGE_LIMIT, true).await }
            },
        )
        .await?;
        result.push(format!("q2_p50={p50:.3} q2_p99={p99:.3}"));
        let stats = "/v1/stats?by=action&interval=day";
        let (status, _) = c.get(stats).await?;
        if status.is_success() {
            let (p50, p99) = measure(
                "Q3",
                "GET /v1/stats?by=action&interval=day",
                args.q3_reps,
                |_| {
                    let c = &c;
                    async move {
                        let (status, body) = c.get(stats).await?;
                        if !status.is_success() {
                            bail!("GET {stats}: {status} {}", String::from_utf8_lossy(&body));
                        }
                        serde_json::from_slice::<serde::de::IgnoredAny>(&body)?;
                        Ok(1)
                    }
                },
            )
            .await?;
            result.push(format!("q3_p50={p50:.3} q3_p99={p99:.3}"));
        } else {
            println!("Q3: /v1/stats not available on this build ({status})");
            result.push("q3_p50=na q3_p99=na".into());
        }
        let (p50, p99) = measure(
            "Q4",
            "GET /v1/events?outcome=denied&from=END-24h&to=END&limit=1000, every page",
            args.reps,
            |i| {
                let r = &q4[i % q4.len()];
                let q = format!("outcome=denied&from={}&to={}", enc(&r[0]), enc(&r[1]));
                let c = &c;
                async move { c.all_events(&q, PAGE_LIMIT, true).await }
            },
        )
        .await?;
        result.push(format!("q4_p50={p50:.3} q4_p99={p99:.3}"));
        let (p50, p99) = measure(
            "Q5",
            "GET /v1/events?related=dataset:D&action=model.* + ?resource_type=dataset&resource_id=D&action=dataset.use, every page",
            args.reps,
            |i| {
                let d = enc(&q5[i % q5.len()][0]);
                let a = format!("related=dataset:{d}&action=model.*");
                let b = format!("resource_type=dataset&resource_id={d}&action=dataset.use");
                let c = &c;
                async move {
                    Ok(c.all_events(&a, PAGE_LIMIT, true).await?
                        + c.all_events(&b, PAGE_LIMIT, true).await?)
                }
            },
        )
        .await?;
        result.push(format!("q5_p50={p50:.3} q5_p99={p99:.3}"));
        println!("RESULT {}", result.join(" "));
        anyhow::Ok(())
    })
}
