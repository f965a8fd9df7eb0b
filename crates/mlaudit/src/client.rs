//! Client commands: `send`, `log`, `proof`, `info`, `verify`, `query`, `history`,
//! `erase`, `subject export`, `reindex` (offline).
//! They read `MLAUDIT_URL` and `MLAUDIT_TOKEN` from the environment.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use ledger::verify::{verify_log, LogSource, SourceSlot};

pub mod retention;
pub use retention::{hold, retention, HoldArgs, RetentionArgs};

mod analysis;
pub use analysis::{deployment_state, lineage, stats, DeploymentStateArgs, LineageArgs, StatsArgs};

pub mod tokens;

/// Where the server is.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "MLAUDIT_URL", default_value = "http://127.0.0.1:7405")]
    pub url: String,
    /// API token (sent as a Bearer token).
    #[arg(long, env = "MLAUDIT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM certificate of a CA to trust for an https:// URL (besides the public web PKI).
    #[arg(long, env = "MLAUDIT_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

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

/// `mlaudit log`.
#[derive(Args)]
pub struct LogArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The action, `<namespace>.<verb>`, e.g. model.train.
    action: String,
    /// Who did it.
    #[arg(long, env = "MLAUDIT_ACTOR")]
    actor: String,
    /// Kind of actor (user, service, …).
    #[arg(long)]
    actor_type: Option<String>,
    /// What it was done to: TYPE:ID or TYPE:ID@VERSION.
    #[arg(long)]
    resource: Option<String>,
    /// A parameter, key=value (value parsed as JSON when it is JSON). Repeatable.
    #[arg(long = "param")]
    params: Vec<String>,
    /// A metric, key=number. Repeatable.
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// A related resource, TYPE:ID:RELATION or TYPE:ID@VERSION:RELATION. Repeatable.
    #[arg(long = "related")]
    related: Vec<String>,
    /// context.project.
    #[arg(long, env = "MLAUDIT_PROJECT")]
    project: Option<String>,
    /// context.environment.
    #[arg(long)]
    environment: Option<String>,
    /// success, failure or denied.
    #[arg(long)]
    outcome: Option<String>,
    /// Why, or the error message of a failure.
    #[arg(long)]
    reason: Option<String>,
    /// Idempotency key: retrying with the same id appends nothing.
    #[arg(long)]
    id: Option<String>,
    /// When it happened (RFC 3339); default now.
    #[arg(long)]
    time: Option<String>,
    /// Print the server's JSON answer instead of one line.
    #[arg(long)]
    json: bool,
}

/// `mlaudit proof`.
#[derive(Args)]
pub struct ProofArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The entry's seq.
    seq: u64,
    /// Verifier key to check the checkpoint with (default: the one the server reports).
    #[arg(long, env = "MLAUDIT_VKEY")]
    vkey: Option<String>,
}

/// `mlaudit verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Verify the data directory of a (stopped or running) server, offline.
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    data_dir: Option<PathBuf>,
    /// Verify a C2SP tlog-tiles log over HTTP; the URL is the prefix holding
    /// `checkpoint` and `tile/` (for mlaudit: http://HOST:PORT/log/).
    #[arg(long)]
    url: Option<String>,
    /// Verifier key (`name+hexid+base64`); with --data-dir, default: <data-dir>/keys/log.vkey.
    #[arg(long, env = "MLAUDIT_VKEY", required_unless_present = "data_dir")]
    vkey: Option<String>,
    /// A checkpoint saved earlier: also prove the log still contains that history.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// API token for --url (sent as a Bearer token).
    #[arg(long, env = "MLAUDIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM certificate of a CA to trust for an https:// --url.
    #[arg(long, env = "MLAUDIT_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The HTTP client of every command; `ca_cert` (PEM) is trusted besides the web PKI roots.
pub(crate) fn http(ca_cert: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", path.display());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().context("building the HTTP client")
}

impl ServerArgs {
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.url.trim_end_matches('/'), path)
    }
    fn get(&self, c: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        self.auth(c.get(self.endpoint(path)))
    }
    pub(crate) fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }
}

/// One request with an optional JSON body; the server's JSON answer, or its error.
pub(crate) fn call_json(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    runtime()?.block_on(async {
        let c = http(server.ca_cert.as_deref())?;
        let mut rb = server.auth(c.request(method, server.endpoint(path)));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("contacting {}", server.url))?;
        anyhow::Ok(check(resp).await?.json().await?)
    })
}

/// Turns a non-2xx answer into an error carrying the server's message.
pub(crate) async fn check(resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(anyhow!(
        "server answered {status}: {}",
        describe_error(&body)
    ))
}

/// The server's JSON error as readable lines, items named "item N".
fn describe_error(body: &str) -> String {
    describe_error_items(body, |index, message| format!("item {index}: {message}"))
}

/// The server's JSON error as readable lines; `item(index, message)` formats
/// one entry of `details` (the message already carries its field).
fn describe_error_items(body: &str, item: impl Fn(usize, &str) -> String) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_string();
    };
    let e = &v["error"];
    let mut out = format!(
        "{} ({})",
        e["message"].as_str().unwrap_or(body),
        e["code"].as_str().unwrap_or("?")
    );
    for d in e["details"].as_array().into_iter().flatten() {
        let index = d["index"].as_u64().unwrap_or(0) as usize;
        let field = d["field"].as_str().filter(|f| !f.is_empty());
        let message = format!(
            "{}{}",
            field.map(|f| format!("{f}: ")).unwrap_or_default(),
            d["message"].as_str().unwrap_or("")
        );
        out.push_str("\n  ");
        out.push_str(&item(index, &message));
    }
    out
}

/// One batch read from the input: its lines and where it starts.
struct Batch {
    source: String,
    first_line: usize,
    /// File line of each event in the batch (blank lines are skipped).
    lines: Vec<usize>,
    body: String,
    count: usize,
}

/// `mlaudit send FILE…`: streams NDJSON in batches with bounded concurrency,
/// retrying on back-pressure and connection errors (safe for events with ids).
pub fn send(a: SendArgs) -> anyhow::Result<i32> {
    if a.batch == 0 || a.concurrency == 0 {
        bail!("--batch and --concurrency must be at least 1");
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
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events {per_sec} {msg}",
        )
        .unwrap(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let result = rt.block_on(send_all(&a, bar.clone()));
    bar.finish_and_clear();
    let (sent, dups) = result?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "sent {sent} events ({dups} duplicates) in {secs:.2} s ({:.0} events/s)",
        sent as f64 / secs.max(1e-9)
    );
    Ok(0)
}

async fn send_all(a: &SendArgs, bar: ProgressBar) -> anyhow::Result<(u64, u64)> {
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
            let mut batch = Batch {
                source: name.clone(),
                first_line: 1,
                lines: Vec::new(),
                body: String::new(),
                count: 0,
            };
            for (i, line) in input.lines().enumerate() {
                let line = line.with_context(|| format!("reading {name}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                if batch.count == 0 {
                    batch.first_line = i + 1;
                }
                batch.lines.push(i + 1);
                batch.body.push_str(&line);
                batch.body.push('\n');
                batch.count += 1;
                if batch.count == batch_size {
                    let full = std::mem::replace(
                        &mut batch,
                        Batch {
                            source: name.clone(),
                            first_line: 0,
                            lines: Vec::new(),
                            body: String::new(),
                            count: 0,
                        },
                    );
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
async fn post_batch(
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
                    bail!(
                        "{}: batch of {} events starting at line {} was rejected ({status}); nothing of it was stored:\n{}",
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
fn describe_batch_error(body: &str, batch: &Batch) -> String {
    describe_error_items(body, |index, message| {
        let line = batch.lines.get(index).copied().unwrap_or(batch.first_line);
        // The server numbers NDJSON lines within the request; ours are the file's.
        let message = strip_request_line(message);
        format!("{}:{line}: {message}", batch.source)
    })
}

/// Drops the server's "line N: " (counted within the request) from a message
/// that may start with a field path.
fn strip_request_line(message: &str) -> String {
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

fn split_kv(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("{what} {s:?} is not key=value"))?;
    if k.is_empty() {
        bail!("{what} {s:?} has an empty key");
    }
    Ok((k.to_string(), v.to_string()))
}

/// TYPE:ID[@VERSION] into a JSON object.
fn parse_ref(s: &str) -> anyhow::Result<Map<String, Value>> {
    let (ty, rest) = s
        .split_once(':')
        .ok_or_else(|| anyhow!("{s:?} is not TYPE:ID or TYPE:ID@VERSION"))?;
    let mut m = Map::new();
    m.insert("type".into(), json!(ty));
    match rest.rsplit_once('@') {
        Some((id, version)) if !version.is_empty() => {
            m.insert("id".into(), json!(id));
            m.insert("version".into(), json!(version));
        }
        _ => {
            m.insert("id".into(), json!(rest));
        }
    }
    Ok(m)
}

/// Builds the event of `mlaudit log`.
fn build_event(a: &LogArgs) -> anyhow::Result<Value> {
    let mut ev = Map::new();
    ev.insert("action".into(), json!(a.action));
    let mut actor = Map::new();
    actor.insert("id".into(), json!(a.actor));
    if let Some(t) = &a.actor_type {
        actor.insert("type".into(), json!(t));
    }
    ev.insert("actor".into(), Value::Object(actor));
    if let Some(r) = &a.resource {
        ev.insert("resource".into(), Value::Object(parse_ref(r)?));
    }
    if !a.params.is_empty() {
        let mut p = Map::new();
        for kv in &a.params {
            let (k, v) = split_kv(kv, "--param")?;
            let value = serde_json::from_str(&v).unwrap_or(Value::String(v));
            p.insert(k, value);
        }
        ev.insert("parameters".into(), Value::Object(p));
    }
    if !a.metrics.is_empty() {
        let mut m = Map::new();
        for kv in &a.metrics {
            let (k, v) = split_kv(kv, "--metric")?;
            let n: f64 = v
                .parse()
                .map_err(|_| anyhow!("--metric {kv:?}: {v:?} is not a number"))?;
            m.insert(k, json!(n));
        }
        ev.insert("metrics".into(), Value::Object(m));
    }
    if !a.related.is_empty() {
        let mut rel = Vec::new();
        for r in &a.related {
            let (reference, relation) = r
                .rsplit_once(':')
                .filter(|(x, _)| x.contains(':'))
                .ok_or_else(|| anyhow!("--related {r:?} is not TYPE:ID:RELATION"))?;
            let mut m = parse_ref(reference)?;
            m.insert("relation".into(), json!(relation));
            rel.push(Value::Object(m));
        }
        ev.insert("related".into(), Value::Array(rel));
    }
    let mut ctx = Map::new();
    if let Some(p) = &a.project {
        ctx.insert("project".into(), json!(p));
    }
    if let Some(e) = &a.environment {
        ctx.insert("environment".into(), json!(e));
    }
    if !ctx.is_empty() {
        ev.insert("context".into(), Value::Object(ctx));
    }
    for (k, v) in [
        ("outcome", &a.outcome),
        ("reason", &a.reason),
        ("id", &a.id),
        ("time", &a.time),
    ] {
        if let Some(v) = v {
            ev.insert(k.into(), json!(v));
        }
    }
    Ok(Value::Object(ev))
}

/// `mlaudit log ACTION …`.
pub fn log(a: LogArgs) -> anyhow::Result<i32> {
    let event = build_event(&a)?;
    let rt = runtime()?;
    let v: Value = rt.block_on(async {
        let c = http(a.server.ca_cert.as_deref())?;
        let resp = a
            .server
            .auth(c.post(a.server.endpoint("/v1/events")))
            .json(&event)
            .send()
            .await
            .with_context(|| format!("sending to {}", a.server.url))?;
        anyhow::Ok(check(resp).await?.json().await?)
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let r = &v["receipts"][0];
        let dup = if r["duplicate"].as_bool() == Some(true) {
            " (duplicate: already recorded)"
        } else {
            ""
        };
        println!(
            "seq {} leaf_hash {}{dup}",
            r["seq"],
            r["leaf_hash"].as_str().unwrap_or("")
        );
    }
    Ok(0)
}

/// `mlaudit info`.
pub fn info(a: ServerArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let v: Value = rt.block_on(async {
        let c = http(a.ca_cert.as_deref())?;
        let resp = a
            .get(&c, "/v1/info")
            .send()
            .await
            .with_context(|| format!("contacting {}", a.url))?;
        anyhow::Ok(check(resp).await?.json().await?)
    })?;
    println!("origin           {}", v["origin"].as_str().unwrap_or(""));
    println!("verifier key     {}", v["vkey"].as_str().unwrap_or(""));
    println!("entries          {}", v["size"]);
    println!("checkpoint size  {}", v["checkpoint_size"]);
    println!("version          {}", v["version"].as_str().unwrap_or(""));
    Ok(0)
}

fn decode_hash(s: &str) -> anyhow::Result<tlog::Hash> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(s)
        .with_context(|| format!("{s:?} is not base64"))?;
    b.try_into()
        .map_err(|_| anyhow!("{s:?} is not a 32-byte hash"))
}

/// `mlaudit proof SEQ`: checks the checkpoint's signature, the entry's leaf
/// hash and its inclusion proof, all on the client.
pub fn proof(a: ProofArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    rt.block_on(async {
        let c = http(a.server.ca_cert.as_deref())?;
        let s = &a.server;
        let vkey = match &a.vkey {
            Some(v) => v.clone(),
            None => {
                let info: Value = check(s.get(&c, "/v1/info").send().await?)
                    .await?
                    .json()
                    .await?;
                eprintln!(
                    "note: trusting the verifier key the server reports; pass --vkey to pin it"
                );
                info["vkey"].as_str().unwrap_or("").to_string()
            }
        };
        let verifier = tlog::Verifier::parse(&vkey).context("parsing the verifier key")?;
        // The newest entries may not be covered yet: wait up to ~3 s for a checkpoint.
        let mut cp = None;
        for _ in 0..30 {
            let note = check(s.get(&c, "/log/checkpoint").send().await?)
                .await?
                .text()
                .await?;
            let parsed = tlog::open_checkpoint(&note, &verifier)
                .context("the checkpoint's signature does not verify")?;
            if parsed.size > a.seq {
                cp = Some(parsed);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cp = cp.ok_or_else(|| anyhow!("seq {} is not covered by a checkpoint (yet)", a.seq))?;
        let entry = check(
            s.get(&c, &format!("/v1/events/{}?format=raw", a.seq))
                .send()
                .await?,
        )
        .await?
        .bytes()
        .await?;
        let leaf = tlog::leaf_hash(&entry);
        let p: Value = check(
            s.get(
                &c,
                &format!("/v1/proof/inclusion?seq={}&size={}", a.seq, cp.size),
            )
            .send()
            .await?,
        )
        .await?
        .json()
        .await?;
        let proof: Vec<tlog::Hash> = p["proof"]
            .as_array()
            .ok_or_else(|| anyhow!("the proof answer has no proof"))?
            .iter()
            .map(|h| decode_hash(h.as_str().unwrap_or("")))
            .collect::<anyhow::Result<_>>()?;
        tlog::verify_inclusion(a.seq, cp.size, &leaf, &proof, &cp.root)
            .map_err(|e| anyhow!("the inclusion proof does NOT verify: {e}"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        println!(
            "verified: entry {} (leaf {}) is in the log {} of size {} with root {}",
            a.seq,
            b64.encode(leaf),
            cp.origin,
            cp.size,
            b64.encode(cp.root)
        );
        anyhow::Ok(0)
    })
}

/// Reads a C2SP tlog-tiles log over HTTP.
struct HttpSource {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl HttpSource {
    fn fetch(&self, path: &str) -> Result<Vec<u8>, String> {
        self.fetch_or_gone(path)?
            .ok_or_else(|| format!("{}/{path}: HTTP 410 Gone", self.base.trim_end_matches('/')))
    }

    /// Like `fetch`, but `None` for 410 Gone (an entry bundle pruned by retention).
    fn fetch_or_gone(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}/{path}", self.base.trim_end_matches('/'));
        self.rt.block_on(async {
            let mut rb = self.client.get(&url);
            if let Some(t) = &self.token {
                rb = rb.bearer_auth(t);
            }
            let resp = rb.send().await.map_err(|e| format!("{url}: {e}"))?;
            if resp.status() == reqwest::StatusCode::GONE {
                return Ok(None);
            }
            if !resp.status().is_success() {
                return Err(format!("{url}: HTTP {}", resp.status()));
            }
            resp.bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| format!("{url}: {e}"))
        })
    }
}

impl LogSource for HttpSource {
    fn checkpoint(&self) -> Result<String, String> {
        String::from_utf8(self.fetch("checkpoint")?).map_err(|_| "checkpoint is not UTF-8".into())
    }
    fn bundle(&self, index: u64, width: u64) -> Result<Vec<u8>, String> {
        let t =
            tlog::TileRef::new(tlog::TileKind::Entries, index, width).map_err(|e| e.to_string())?;
        self.fetch(&t.path())
    }
    fn tile(&self, level: u8, index: u64, width: u64) -> Result<Vec<u8>, String> {
        let t = tlog::TileRef::new(tlog::TileKind::Hash(level), index, width)
            .map_err(|e| e.to_string())?;
        self.fetch(&t.path())
    }
    /// A bundle answered 410 Gone holds pruned entries: over HTTP only the
    /// whole bundle is known to be gone, so all of it counts as pruned and its
    /// leaf hashes come from the hash tile.
    fn slots(&self, index: u64, width: u64) -> Result<Vec<SourceSlot>, String> {
        let t =
            tlog::TileRef::new(tlog::TileKind::Entries, index, width).map_err(|e| e.to_string())?;
        match self.fetch_or_gone(&t.path())? {
            None => Ok(vec![SourceSlot::Pruned(None); width as usize]),
            Some(bytes) => Ok(tlog::parse_bundle(&bytes)
                .map_err(|e| format!("entry bundle {index} is malformed: {e}"))?
                .into_iter()
                .map(|e| SourceSlot::Entry(e.to_vec()))
                .collect()),
        }
    }
}

/// Pruned seq ranges `mlaudit verify` prints.
const PRUNED_RANGES_SHOWN: usize = 50;

/// `mlaudit verify`.
pub fn verify(a: VerifyArgs) -> anyhow::Result<i32> {
    let saved = match &a.checkpoint {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let (source, vkey, extra): (Box<dyn LogSource>, String, Option<u64>) =
        match (&a.data_dir, &a.url) {
            (Some(dir), _) => {
                let vkey = match &a.vkey {
                    Some(v) => v.clone(),
                    None => {
                        let p = dir.join("keys").join("log.vkey");
                        std::fs::read_to_string(&p)
                            .with_context(|| format!("reading {} (or pass --vkey)", p.display()))?
                            .trim()
                            .to_string()
                    }
                };
                let store =
                    ledger::Store::open_read_only(Arc::new(ledger::fs::StdFs), &dir.join("ledger"))
                        .with_context(|| format!("opening the ledger in {}", dir.display()))?;
                let size = store.size();
                (Box::new(store), vkey, Some(size))
            }
            (None, Some(url)) => {
                let src = HttpSource {
                    rt: runtime()?,
                    client: http(a.ca_cert.as_deref())?,
                    base: url.clone(),
                    token: a.token.clone(),
                };
                (
                    Box::new(src),
                    a.vkey.clone().expect("required by clap"),
                    None,
                )
            }
            (None, None) => bail!("give --data-dir or --url"),
        };
    let verifier = tlog::Verifier::parse(&vkey).context("parsing the verifier key")?;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} entries {per_sec}",
        )
        .unwrap(),
    );
    let result = verify_log(
        source.as_ref(),
        &verifier,
        saved.as_deref(),
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    match result {
        Ok(r) => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut line = format!(
                "ok: size {} root {} verified in {:.2} s ({:.0} entries/s)",
                r.size,
                b64.encode(r.root),
                r.elapsed.as_secs_f64(),
                r.entries_per_sec()
            );
            if saved.is_some() {
                line.push_str(", consistent with the saved checkpoint");
            }
            if let Some(stored) = extra.filter(|s| *s > r.size) {
                line.push_str(&format!(
                    "; {} newer entries are not covered by a checkpoint yet (the server covers them when it next starts)",
                    stored - r.size
                ));
            }
            println!("{line}");
            if !r.pruned.is_empty() {
                // Pruned by retention: payloads gone, leaf hashes verified from the tiles.
                let shown: Vec<String> = r
                    .pruned
                    .iter()
                    .take(PRUNED_RANGES_SHOWN)
                    .map(|(a, b)| format!("{a}-{}", b - 1))
                    .collect();
                let more = if r.pruned.len() > PRUNED_RANGES_SHOWN {
                    format!(", … ({} ranges in all)", r.pruned.len())
                } else {
                    String::new()
                };
                println!(
                    "pruned: {} entries by retention (leaf hashes kept and verified), seqs {}{more}",
                    r.pruned_entries(),
                    shown.join(", ")
                );
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("mlaudit: verify FAILED: {e}");
            Ok(2)
        }
    }
}

/// The event filters of `GET /v1/events`, shared by `mlaudit query` and `mlaudit stats`.
#[derive(Args)]
pub struct FilterArgs {
    /// Action, or a glob like dataset.*.
    #[arg(long)]
    action: Option<String>,
    /// Category (data_access, …).
    #[arg(long)]
    category: Option<String>,
    /// actor.id.
    #[arg(long)]
    actor: Option<String>,
    /// resource.type.
    #[arg(long)]
    resource_type: Option<String>,
    /// resource.id.
    #[arg(long)]
    resource_id: Option<String>,
    /// resource.version.
    #[arg(long)]
    resource_version: Option<String>,
    /// success, failure or denied.
    #[arg(long)]
    outcome: Option<String>,
    /// context.project.
    #[arg(long)]
    project: Option<String>,
    /// context.environment.
    #[arg(long)]
    environment: Option<String>,
    /// One of resource.tags.
    #[arg(long)]
    tag: Option<String>,
    /// A related resource, TYPE:ID.
    #[arg(long)]
    related: Option<String>,
    /// Event time at or after (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Event time before (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Recorded at or after (RFC 3339).
    #[arg(long)]
    recorded_from: Option<String>,
    /// Recorded before (RFC 3339).
    #[arg(long)]
    recorded_to: Option<String>,
    /// Full-text query (SQLite FTS5) over reason, parameters and resource name.
    #[arg(long)]
    q: Option<String>,
}

impl FilterArgs {
    /// The filters that are set, as query parameters.
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        [
            ("action", &self.action),
            ("category", &self.category),
            ("actor", &self.actor),
            ("resource_type", &self.resource_type),
            ("resource_id", &self.resource_id),
            ("resource_version", &self.resource_version),
            ("outcome", &self.outcome),
            ("project", &self.project),
            ("environment", &self.environment),
            ("tag", &self.tag),
            ("related", &self.related),
            ("from", &self.from),
            ("to", &self.to),
            ("recorded_from", &self.recorded_from),
            ("recorded_to", &self.recorded_to),
            ("q", &self.q),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (name, v.clone())))
        .collect()
    }
}

/// `mlaudit query`.
#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// Results per page (the server caps it).
    #[arg(long)]
    limit: Option<u64>,
    /// asc (oldest first) or desc (newest first, the default).
    #[arg(long)]
    order: Option<String>,
    /// Start after this cursor (the `next` of an earlier page).
    #[arg(long)]
    cursor: Option<String>,
    /// Follow cursors until every matching event is printed.
    #[arg(long)]
    all: bool,
    /// Show sealed identifiers in cleartext (needs clearance; recorded as audit.query).
    #[arg(long)]
    cleartext: bool,
    /// Print a JSON array of results.
    #[arg(long, conflicts_with_all = ["ndjson", "csv"])]
    json: bool,
    /// Print one JSON result per line.
    #[arg(long, conflicts_with = "csv")]
    ndjson: bool,
    /// Print CSV with a header row (seq, recorded_at, time, action, outcome, actor,
    /// resource_type, resource_id, resource_version, project, environment, leaf_hash).
    #[arg(long)]
    csv: bool,
}

impl QueryArgs {
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = self.filter.params();
        if let Some(o) = &self.order {
            p.push(("order", o.clone()));
        }
        if let Some(l) = self.limit {
            p.push(("limit", l.to_string()));
        }
        if self.cleartext {
            p.push(("cleartext", "true".into()));
        }
        p
    }
}

/// GETs `url` with `params` (and `cursor`), hands each page to `on_page`, and while
/// `all` follows the cursor found at the JSON pointer `next_at`. Returns the cursor of
/// the page after the last one fetched, if there is more.
async fn for_each_page(
    server: &ServerArgs,
    url: reqwest::Url,
    params: &[(&'static str, String)],
    mut cursor: Option<String>,
    all: bool,
    next_at: &str,
    mut on_page: impl FnMut(Value),
) -> anyhow::Result<Option<String>> {
    let c = http(server.ca_cert.as_deref())?;
    loop {
        let mut query = params.to_vec();
        if let Some(cur) = &cursor {
            query.push(("cursor", cur.clone()));
        }
        let resp = server
            .auth(c.get(url.clone()))
            .query(&query)
            .send()
            .await
            .with_context(|| format!("contacting {}", server.url))?;
        let page: Value = check(resp).await?.json().await?;
        let next = page
            .pointer(next_at)
            .and_then(Value::as_str)
            .map(str::to_string);
        on_page(page);
        match next {
            Some(next) if all => cursor = Some(next),
            other => return Ok(other),
        }
    }
}

/// `mlaudit query`: `GET /v1/events` with the filters as flags.
pub fn query(a: QueryArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    // Following cursors can take a while: show how far it got (stderr, only on a terminal).
    let bar = if a.all {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template("{spinner} {pos} events {per_sec}").unwrap());
    let hits: Vec<Value> = rt.block_on(async {
        let base = a.params();
        let mut hits = Vec::new();
        let url = reqwest::Url::parse(&a.server.endpoint("/v1/events"))
            .with_context(|| format!("server URL {:?}", a.server.url))?;
        let next = for_each_page(
            &a.server,
            url,
            &base,
            a.cursor.clone(),
            a.all,
            "/next",
            |mut page| {
                if let Some(Value::Array(events)) = page.get_mut("events").map(Value::take) {
                    bar.inc(events.len() as u64);
                    hits.extend(events);
                }
            },
        )
        .await?;
        if let Some(next) = next {
            eprintln!("mlaudit: more results: --cursor {next} (or --all)");
        }
        anyhow::Ok(hits)
    })?;
    bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&hits)?);
    } else if a.csv {
        print_csv(&hits)?;
    } else if a.ndjson {
        for h in &hits {
            println!("{h}");
        }
    } else {
        print_table(&hits);
    }
    Ok(0)
}

/// `mlaudit history`.
#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// resource.type (dataset, model, …).
    #[arg(value_name = "TYPE")]
    rtype: String,
    /// resource.id.
    id: String,
    /// Timeline events per page (the server caps it).
    #[arg(long)]
    limit: Option<u64>,
    /// asc (oldest first, the default) or desc (newest first).
    #[arg(long)]
    order: Option<String>,
    /// Follow cursors until the whole timeline is printed.
    #[arg(long)]
    all: bool,
    /// Show the timeline's sealed identifiers in cleartext (needs clearance; recorded as
    /// audit.query).
    #[arg(long)]
    cleartext: bool,
    /// Print the answer as JSON (with `--all`, the whole timeline in one object).
    #[arg(long)]
    json: bool,
}

/// `mlaudit history TYPE ID`: `GET /v1/resources/{type}/{id}`, the summary then the
/// timeline.
pub fn history(a: HistoryArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let mut url = reqwest::Url::parse(&a.server.endpoint("/v1/resources"))
        .with_context(|| format!("server URL {:?}", a.server.url))?;
    url.path_segments_mut()
        .map_err(|_| anyhow!("server URL {:?} cannot take a path", a.server.url))?
        .push(&a.rtype)
        .push(&a.id);
    let mut base = Vec::new();
    if let Some(o) = &a.order {
        base.push(("order", o.clone()));
    }
    if a.cleartext {
        base.push(("cleartext", "true".into()));
    }
    if let Some(l) = a.limit {
        base.push(("limit", l.to_string()));
    }
    let answer: Value = rt.block_on(async {
        let mut first: Option<Value> = None;
        let next = for_each_page(
            &a.server,
            url,
            &base,
            None,
            a.all,
            "/timeline/next",
            |mut page| match &mut first {
                None => first = Some(page),
                Some(f) => {
                    let more = page["timeline"]["events"].take();
                    if let (Some(all), Value::Array(more)) =
                        (f["timeline"]["events"].as_array_mut(), more)
                    {
                        all.extend(more);
                    }
                }
            },
        )
        .await?;
        let f = first.as_mut().expect("one page at least");
        f["timeline"]["next"] = next.map_or(Value::Null, Value::String);
        anyhow::Ok(first.expect("one page at least"))
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(0);
    }
    print_summary(&answer);
    println!();
    let events = answer["timeline"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    print_table(&events);
    if let Some(next) = answer["timeline"]["next"].as_str() {
        eprintln!("mlaudit: more events: --all (next cursor {next})");
    }
    Ok(0)
}

/// The summary of `GET /v1/resources/{type}/{id}` as aligned `name  value` lines.
fn print_summary(v: &Value) {
    let s = &v["summary"];
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = str_list(&s["versions"]);
    let actor_ids = str_list(&s["actors"]["ids"]);
    let actor_count = s["actors"]["count"].as_u64().unwrap_or(0);
    let mut actors = format!("{actor_count}");
    if !actor_ids.is_empty() {
        actors.push_str(&format!(": {}", actor_ids.join(", ")));
        if (actor_ids.len() as u64) < actor_count {
            actors.push_str(", …");
        }
    }
    let actions: Vec<String> = s["counts_by_action"]
        .as_object()
        .map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect())
        .unwrap_or_default();
    let lines = [
        (
            "resource",
            format!(
                "{}:{}",
                v["type"].as_str().unwrap_or(""),
                v["id"].as_str().unwrap_or("")
            ),
        ),
        ("events", s["events"].to_string()),
        ("first seen", s["first_seen"].as_str().unwrap_or("").into()),
        ("last seen", s["last_seen"].as_str().unwrap_or("").into()),
        (
            "versions",
            format!("{}: {}", versions.len(), versions.join(", ")),
        ),
        ("actors", actors),
        ("actions", actions.join(", ")),
    ];
    for (name, value) in lines {
        println!("{:<12}{}", name, value.trim_end_matches(": "));
    }
}

/// One CSV row per result, for spreadsheets and audit evidence.
fn print_csv(hits: &[Value]) -> anyhow::Result<()> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record([
        "seq",
        "recorded_at",
        "time",
        "action",
        "outcome",
        "actor",
        "resource_type",
        "resource_id",
        "resource_version",
        "project",
        "environment",
        "leaf_hash",
    ])?;
    for h in hits {
        let e = &h["event"];
        w.write_record([
            h["seq"].to_string(),
            s(&h["recorded_at"]),
            s(&e["time"]),
            s(&e["action"]),
            e["outcome"].as_str().unwrap_or("success").to_string(),
            s(&e["actor"]["id"]),
            s(&e["resource"]["type"]),
            s(&e["resource"]["id"]),
            s(&e["resource"]["version"]),
            s(&e["context"]["project"]),
            s(&e["context"]["environment"]),
            s(&h["leaf_hash"]),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// seq, time, action, outcome, actor, resource: one aligned row per result.
fn print_table(hits: &[Value]) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut rows = vec![[
        "SEQ".to_string(),
        "TIME".into(),
        "ACTION".into(),
        "OUTCOME".into(),
        "ACTOR".into(),
        "RESOURCE".into(),
    ]];
    for h in hits {
        let e = &h["event"];
        let r = &e["resource"];
        let resource = if r.is_object() {
            let mut t = format!("{}:{}", s(&r["type"]), s(&r["id"]));
            if let Some(v) = r["version"].as_str() {
                t.push('@');
                t.push_str(v);
            }
            t
        } else {
            String::new()
        };
        rows.push([
            h["seq"].to_string(),
            s(&e["time"]),
            s(&e["action"]),
            e["outcome"].as_str().unwrap_or("success").to_string(),
            s(&e["actor"]["id"]),
            resource,
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// `mlaudit reindex`.
#[derive(Args)]
pub struct ReindexArgs {
    /// Data directory of a stopped server.
    #[arg(long, env = "MLAUDIT_DATA_DIR")]
    data_dir: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `mlaudit reindex --data-dir DIR`: rebuilds `<data-dir>/index.sqlite` from the ledger,
/// offline (it takes the server's lock).
pub fn reindex(a: ReindexArgs) -> anyhow::Result<i32> {
    let dir = &a.data_dir;
    let _lock = crate::server::lock_data_dir(dir)?;
    let store = ledger::Store::open_read_only(Arc::new(ledger::fs::StdFs), &dir.join("ledger"))
        .with_context(|| format!("opening the ledger in {}", dir.display()))?;
    let index = crate::index::Index::open(&dir.join("index.sqlite"))?;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(store.size())
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} entries ({per_sec}, eta {eta})")
            .expect("valid template"),
    );
    let started = Instant::now();
    let n = index.rebuild(&store, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "mlaudit: indexed {n} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// `mlaudit erase SUBJECT`.
#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The data subject: a cleartext identifier (e.g. an e-mail address) or its pseudonym.
    subject: String,
}

/// `mlaudit erase SUBJECT`: `POST /v1/subjects/{id}/erase`; prints the server's answer
/// (the subject's pseudonym, whether a key was destroyed, the audit.erase receipt).
pub fn erase(a: EraseArgs) -> anyhow::Result<i32> {
    let path = format!("/v1/subjects/{}/erase", path_segment(&a.subject));
    let v = call_json(&a.server, reqwest::Method::POST, &path, None)?;
    println!("subject        {}", v["subject"].as_str().unwrap_or(""));
    println!("key destroyed  {}", v["key_destroyed"]);
    println!("recorded       audit.erase at seq {}", v["receipt"]["seq"]);
    Ok(0)
}

/// `mlaudit subject …`.
#[derive(clap::Subcommand)]
pub enum SubjectCommand {
    /// Export every event in which a data subject appears (GDPR Art. 15), as JSON.
    Export(SubjectExportArgs),
}

/// `mlaudit subject export SUBJECT --out FILE`.
#[derive(Args)]
pub struct SubjectExportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The data subject: a cleartext identifier or its pseudonym.
    subject: String,
    /// Where to write the JSON export (`-` for stdout).
    #[arg(long)]
    out: PathBuf,
}

/// Runs a `mlaudit subject` command.
pub fn subject(c: SubjectCommand) -> anyhow::Result<i32> {
    match c {
        SubjectCommand::Export(a) => subject_export(a),
    }
}

/// Follows `next` through `GET /v1/subjects/{id}/events` and writes
/// `{"subject","key","events":[…]}`.
fn subject_export(a: SubjectExportArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let (subject, key, events) = rt.block_on(async {
        let c = http(a.server.ca_cert.as_deref())?;
        let path = format!("/v1/subjects/{}/events", path_segment(&a.subject));
        let mut events = Vec::new();
        let mut from: Option<u64> = None;
        loop {
            let mut rb = a.server.get(&c, &path);
            if let Some(f) = from {
                rb = rb.query(&[("from_seq", f)]);
            }
            let resp = rb
                .send()
                .await
                .with_context(|| format!("contacting {}", a.server.url))?;
            let mut page: Value = check(resp).await?.json().await?;
            if let Some(Value::Array(e)) = page.get_mut("events").map(Value::take) {
                events.extend(e);
            }
            match page["next"].as_u64() {
                Some(n) => from = Some(n),
                None => return anyhow::Ok((page["subject"].take(), page["key"].take(), events)),
            }
        }
    })?;
    let n = events.len();
    let doc = json!({"subject": subject, "key": key, "events": events});
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    if a.out.as_os_str() == "-" {
        print!("{text}");
    } else {
        std::fs::write(&a.out, text).with_context(|| format!("writing {}", a.out.display()))?;
        eprintln!(
            "mlaudit: wrote {n} events of {} to {}",
            doc["subject"].as_str().unwrap_or(""),
            a.out.display()
        );
    }
    Ok(0)
}

/// Percent-encodes one URL path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `mlaudit rotate-master-key`.
#[derive(Args)]
pub struct RotateMasterKeyArgs {
    /// Data directory of a stopped server.
    #[arg(long, env = "MLAUDIT_DATA_DIR")]
    data_dir: PathBuf,
    /// Where the current master key is, if not in MLAUDIT_MASTER_KEY or
    /// <data-dir>/keys/master.key.
    #[arg(long, env = "MLAUDIT_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// File with the new master key (base64 of 32 bytes, e.g. head -c 32 /dev/urandom | base64).
    #[arg(long)]
    new_key_file: PathBuf,
}

/// `mlaudit rotate-master-key`: offline (takes the data directory's LOCK), re-wraps every
/// key of `keys.sqlite` under the new master key (`privacy::rotate_master_key`).
pub fn rotate_master_key(a: RotateMasterKeyArgs) -> anyhow::Result<i32> {
    let _lock = crate::server::lock_data_dir(&a.data_dir)?;
    let cfg = crate::privacy::PrivacyConfig::resolve(
        crate::privacy::PrivacyFile {
            master_key_file: a.master_key_file.clone(),
            ..Default::default()
        },
        std::env::var("MLAUDIT_MASTER_KEY").ok(),
    )?;
    let new = zeroize::Zeroizing::new(
        std::fs::read_to_string(&a.new_key_file)
            .with_context(|| format!("reading {}", a.new_key_file.display()))?,
    );
    let n = crate::privacy::rotate_master_key(&a.data_dir, &cfg, &new)?;
    eprintln!("mlaudit: re-wrapped {n} keys under the new master key");
    if cfg.master_key_env.is_some() || cfg.master_key_file.is_some() {
        eprintln!(
            "mlaudit: the server now needs the new key: update MLAUDIT_MASTER_KEY or the master key file"
        );
    } else {
        eprintln!(
            "mlaudit: {} now holds the new key",
            a.data_dir
                .join(crate::privacy::MASTER_KEY_FILE_DEFAULT)
                .display()
        );
    }
    Ok(0)
}
