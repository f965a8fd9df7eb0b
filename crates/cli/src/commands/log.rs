//! `mlaudit log ACTION …`: one event from flags, and its receipt.

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde_json::{json, Map, Value};

use crate::http::{check, http, runtime, ServerArgs};
use crate::resource::{Link, ResourceRef};

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
    /// When it happened (RFC 3339, a date, now, or a time before now: 7d, now-24h); default now.
    #[arg(long, value_parser = crate::args::time)]
    time: Option<String>,
    /// Print the server's JSON answer instead of one line.
    #[arg(long)]
    json: bool,
}

pub(crate) fn split_kv(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("{what} {s:?} is not key=value"))?;
    if k.is_empty() {
        bail!("{what} {s:?} has an empty key");
    }
    Ok((k.to_string(), v.to_string()))
}

/// Builds the event of `mlaudit log`.
pub(crate) fn build_event(a: &LogArgs) -> anyhow::Result<Value> {
    let mut ev = Map::new();
    ev.insert("action".into(), json!(a.action));
    let mut actor = Map::new();
    actor.insert("id".into(), json!(a.actor));
    if let Some(t) = &a.actor_type {
        actor.insert("type".into(), json!(t));
    }
    ev.insert("actor".into(), Value::Object(actor));
    if let Some(r) = &a.resource {
        ev.insert(
            "resource".into(),
            Value::Object(ResourceRef::parse(r).context("--resource")?.to_json()),
        );
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
            let link = Link::parse(r, true).context("--related")?;
            let mut m = link.resource.to_json();
            m.insert("relation".into(), json!(link.relation));
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
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let r = &v["receipts"][0];
        let dup = if r["duplicate"].as_bool() == Some(true) {
            " (duplicate: already recorded)"
        } else {
            ""
        };
        outln!(
            "seq {} leaf_hash {}{dup}",
            r["seq"],
            r["leaf_hash"].as_str().unwrap_or("")
        );
    }
    Ok(0)
}
