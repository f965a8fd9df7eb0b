//! `mlaudit send FILE…`: NDJSON in batches with bounded concurrency, retried on
//! back-pressure and connection errors.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::ProgressBar;
use serde_json::Value;

use crate::http::{describe_error, describe_error_items, http, ServerArgs};

/// `mlaudit send`.
#[derive(Args)]
pub struct SendArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// NDJSON files, one event per line; - reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Events per request.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Bytes per request at most (a batch is cut early to stay under it; the server refuses
    /// bodies over 16 MiB). One event larger than this is sent alone.
    #[arg(long, default_value_t = BATCH_BYTES_DEFAULT)]
    batch_bytes: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Attempts per batch on 503, 429, 409 and connection errors (with backoff).
    #[arg(long, default_value_t = 10)]
    retries: u32,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Default of `--batch-bytes`: half the server's body limit, so that a batch of long lines
/// is never refused whole.
pub const BATCH_BYTES_DEFAULT: usize = 8 << 20;

/// One batch read from the input: its lines and where it starts.
pub(crate) struct Batch {
    source: String,
    first_line: usize,
    /// File line of each event in the batch (blank lines are skipped).
    lines: Vec<usize>,
    body: String,
    count: usize,
}

impl Batch {
    fn new(source: &str) -> Batch {
        Batch {
            source: source.to_string(),
            first_line: 1,
            lines: Vec::new(),
            body: String::new(),
            count: 0,
        }
    }
}

/// `mlaudit send FILE…`: streams NDJSON in batches with bounded concurrency,
/// retrying on back-pressure and connection errors (safe for events with ids).
pub fn send(a: SendArgs) -> anyhow::Result<i32> {
    if a.batch == 0 || a.concurrency == 0 || a.batch_bytes == 0 {
        bail!("--batch, --batch-bytes and --concurrency must be at least 1");
    }
    let total: Option<u64> = if a.files.iter().any(|f| f.as_os_str() == "-") {
        None
    } else {
        let mut n = 0;
        for f in &a.files {
            let file =
                std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
            n += std::io::BufReader::new(file)
                .lines()
                .map_while(Result::ok)
                .filter(|l| !l.trim().is_empty())
                .count() as u64;
        }
        if n == 0 {
            bail!(
                "{}: no events to send (the input is empty or blank)",
                names(&a.files)
            );
        }
        Some(n)
    };
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        }
    };
    bar.set_style(crate::output::progress_style("events", total.is_some()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let result = rt.block_on(send_all(&a, bar.clone()));
    bar.finish_and_clear();
    let (sent, dups) = result?;
    if sent == 0 {
        bail!(
            "{}: no events to send (the input is empty or blank)",
            names(&a.files)
        );
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "sent {sent} events ({dups} duplicates) in {secs:.2} s ({:.0} events/s)",
        sent as f64 / secs.max(1e-9)
    );
    Ok(0)
}

/// The inputs, as the user named them.
fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| {
            if f.as_os_str() == "-" {
                "<stdin>".to_string()
            } else {
                f.display().to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn send_all(a: &SendArgs, bar: ProgressBar) -> anyhow::Result<(u64, u64)> {
    let client = http(a.server.ca_cert.as_deref())?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(a.concurrency * 2);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..a.concurrency {
        let rx = rx.clone();
        let client = client.clone();
        let server = a.server.clone();
        let bar = bar.clone();
        let retries = a.retries;
        workers.spawn(async move {
            let mut sent = 0u64;
            let mut dups = 0u64;
            loop {
                let batch = { rx.lock().await.recv().await };
                let Some(batch) = batch else { break };
                // On failure, still report what this worker stored before it.
                let d = match post_batch(&client, &server, &batch, retries).await {
                    Ok(d) => d,
                    Err(e) => return (sent, dups, Err(e)),
                };
                sent += batch.count as u64;
                dups += d;
                bar.inc(batch.count as u64);
            }
            (sent, dups, anyhow::Ok(()))
        });
    }
    // Read input on a blocking thread and feed the workers.
    let files = a.files.clone();
    let batch_size = a.batch;
    let batch_bytes = a.batch_bytes;
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        for f in files {
            let (name, input): (String, Box<dyn BufRead>) = if f.as_os_str() == "-" {
                ("<stdin>".into(), Box::new(std::io::stdin().lock()))
            } else {
                let file =
                    std::fs::File::open(&f).with_context(|| format!("opening {}", f.display()))?;
                (
                    f.display().to_string(),
                    Box::new(std::io::BufReader::new(file)),
                )
            };
            let mut batch = Batch::new(&name);
            for (i, line) in input.lines().enumerate() {
                let line = line.with_context(|| format!("reading {name}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                if batch.count > 0 && batch.body.len() + line.len() + 1 > batch_bytes {
                    let full = std::mem::replace(&mut batch, Batch::new(&name));
                    if tx.blocking_send(full).is_err() {
                        return Ok(());
                    }
                }
                if batch.count == 0 {
                    batch.first_line = i + 1;
                }
                batch.lines.push(i + 1);
                batch.body.push_str(&line);
                batch.body.push('\n');
                batch.count += 1;
                if batch.count == batch_size {
                    let full = std::mem::replace(&mut batch, Batch::new(&name));
                    if tx.blocking_send(full).is_err() {
                        return Ok(()); // a worker failed; its error is reported
                    }
                }
            }
            if batch.count > 0 && tx.blocking_send(batch).is_err() {
                return Ok(());
            }
        }
        Ok(())
    });
    let mut sent = 0;
    let mut dups = 0;
    let mut first_err = None;
    while let Some(r) = workers.join_next().await {
        let (s, d, r) = r?;
        sent += s;
        dups += d;
        match r {
            Ok(()) => {}
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
                // Stop the others: close the queue.
                rx.lock().await.close();
            }
        }
    }
    reader.await??;
    if let Some(e) = first_err {
        return Err(e.context(format!("{sent} events were stored before the failure")));
    }
    Ok((sent, dups))
}

/// Posts one batch, retrying what is worth retrying; returns the number of duplicates.
pub(crate) async fn post_batch(
    client: &reqwest::Client,
    server: &ServerArgs,
    batch: &Batch,
    retries: u32,
) -> anyhow::Result<u64> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let rb = server
            .auth(client.post(server.endpoint("/v1/events")))
            .header("content-type", "application/x-ndjson")
            .body(batch.body.clone());
        let retry_reason = match rb.send().await {
            Ok(resp) if resp.status().is_success() => {
                let v: Value = resp.json().await.context("reading the server's answer")?;
                return Ok(v["duplicates"].as_u64().unwrap_or(0));
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let body = resp.text().await.unwrap_or_default();
                if matches!(status, 503 | 429 | 409) {
                    if let Some(s) = retry_after {
                        delay = delay.max(Duration::from_secs(s));
                    }
                    format!("server answered {status}: {}", describe_error(&body))
                } else {
                    let hint = if status == reqwest::StatusCode::PAYLOAD_TOO_LARGE {
                        "\n(send smaller requests: lower --batch-bytes or --batch)"
                    } else {
                        ""
                    };
                    bail!(
                        "{}: batch of {} events starting at line {} was rejected ({status}); nothing of it was stored:\n{}{hint}",
                        batch.source,
                        batch.count,
                        batch.first_line,
                        describe_batch_error(&body, batch)
                    );
                }
            }
            Err(e) => format!("{e}"),
        };
        if attempt >= retries {
            bail!(
                "{}: batch starting at line {} failed after {attempt} attempts: {retry_reason}",
                batch.source,
                batch.first_line
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// The server's error with each item named by its file and line.
pub(crate) fn describe_batch_error(body: &str, batch: &Batch) -> String {
    describe_error_items(body, |index, message| {
        let line = batch.lines.get(index).copied().unwrap_or(batch.first_line);
        // The server numbers NDJSON lines within the request; ours are the file's.
        let message = strip_request_line(message);
        format!("{}:{line}: {message}", batch.source)
    })
}

/// Drops the server's "line N: " (counted within the request) from a message
/// that may start with a field path.
pub(crate) fn strip_request_line(message: &str) -> String {
    let (field, rest) = match message.split_once(": line ") {
        Some((field, rest)) => (format!("{field}: "), rest),
        None => match message.strip_prefix("line ") {
            Some(rest) => (String::new(), rest),
            None => return message.to_string(),
        },
    };
    match rest.split_once(": ") {
        Some((n, m)) if n.bytes().all(|c| c.is_ascii_digit()) => format!("{field}{m}"),
        _ => message.to_string(),
    }
}
