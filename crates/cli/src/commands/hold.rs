//! `mlaudit hold create|list|release`: legal holds through the API.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::http::{call_json, ServerArgs};

/// `mlaudit hold`.
#[derive(Args)]
pub struct HoldArgs {
    #[command(subcommand)]
    command: HoldCommand,
}

#[derive(Subcommand)]
pub(crate) enum HoldCommand {
    /// Create a legal hold: matching entries are never pruned while it is active.
    Create(CreateArgs),
    /// List legal holds (active ones unless --all).
    List(ListArgs),
    /// Release a legal hold.
    Release(ReleaseArgs),
}

#[derive(Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Why the hold exists (required; recorded in the audit.hold event).
    #[arg(long)]
    reason: String,
    /// Entries about this resource, as TYPE/ID (e.g. model/churn).
    #[arg(long)]
    resource: Option<String>,
    /// Entries whose actor.id is this (as stored).
    #[arg(long)]
    subject: Option<String>,
    /// Entries of this project (context.project).
    #[arg(long)]
    project: Option<String>,
    /// Entries whose event time is at or after this (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Entries whose event time is before this (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Print the hold as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Released holds too.
    #[arg(long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct ReleaseArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The hold's id.
    id: u64,
}

pub(crate) fn scope_text(s: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(r) = s.get("resource").filter(|r| !r.is_null()) {
        parts.push(format!(
            "resource {}/{}",
            r["type"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        ));
    }
    for (k, label) in [
        ("subject", "subject"),
        ("project", "project"),
        ("time_from", "from"),
        ("time_to", "to"),
    ] {
        if let Some(v) = s.get(k).and_then(Value::as_str) {
            parts.push(format!("{label} {v}"));
        }
    }
    parts.join(", ")
}

pub(crate) fn print_hold(h: &Value) {
    let state = match h["released_at"].as_str() {
        Some(t) => format!("released {t}"),
        None => "active".to_string(),
    };
    outln!(
        "{:>5}  {:<30}  {}  created {}  reason: {}",
        h["id"],
        scope_text(&h["scope"]),
        state,
        h["created_at"].as_str().unwrap_or(""),
        h["reason"].as_str().unwrap_or("")
    );
}

/// `mlaudit hold create|list|release`.
pub fn hold(a: HoldArgs) -> anyhow::Result<i32> {
    match a.command {
        HoldCommand::Create(c) => {
            let resource = match &c.resource {
                Some(r) => {
                    let (t, id) = r
                        .split_once('/')
                        .with_context(|| format!("--resource {r:?} must be TYPE/ID"))?;
                    json!({"type": t, "id": id})
                }
                None => Value::Null,
            };
            let body = json!({
                "reason": c.reason,
                "scope": {
                    "resource": resource,
                    "subject": c.subject,
                    "project": c.project,
                    "time_from": c.from,
                    "time_to": c.to,
                },
            });
            let v = call_json(&c.server, reqwest::Method::POST, "/v1/holds", Some(body))?;
            if c.json {
                outln!("{}", serde_json::to_string_pretty(&v["hold"])?);
            } else {
                outln!("created legal hold {}", v["hold"]["id"]);
            }
        }
        HoldCommand::List(l) => {
            let path = if l.all {
                "/v1/holds?all=true"
            } else {
                "/v1/holds"
            };
            let v = call_json(&l.server, reqwest::Method::GET, path, None)?;
            if l.json {
                outln!("{}", serde_json::to_string_pretty(&v["holds"])?);
            } else {
                let holds = v["holds"].as_array().cloned().unwrap_or_default();
                if holds.is_empty() {
                    outln!("no legal holds");
                }
                for h in &holds {
                    print_hold(h);
                }
            }
        }
        HoldCommand::Release(r) => {
            call_json(
                &r.server,
                reqwest::Method::DELETE,
                &format!("/v1/holds/{}", r.id),
                None,
            )?;
            outln!("released legal hold {}", r.id);
        }
    }
    Ok(0)
}
