//! `mlaudit hold create|list|release`: legal holds through the API.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::http::{call_json, ServerArgs};
use crate::output::{print_list, s, FormatArgs};
use crate::resource::ResourceRef;

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
    /// Entries about this resource, as TYPE:ID (e.g. model:churn), the resource syntax of
    /// every command.
    #[arg(long)]
    resource: Option<String>,
    /// Entries whose actor.id is this (as stored).
    #[arg(long)]
    subject: Option<String>,
    /// Entries of this project (context.project).
    #[arg(long)]
    project: Option<String>,
    /// Entries whose event time is at or after this (RFC 3339, a date, now, or a time before now: 7d, now-24h).
    #[arg(long, value_parser = crate::args::time)]
    from: Option<String>,
    /// Entries whose event time is before this (RFC 3339, a date, now, or a time before now: 7d, now-24h).
    #[arg(long, value_parser = crate::args::time)]
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
    #[command(flatten)]
    format: FormatArgs,
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
            "resource {}:{}",
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

/// `mlaudit hold create|list|release`.
pub fn hold(a: HoldArgs) -> anyhow::Result<i32> {
    match a.command {
        HoldCommand::Create(c) => {
            let resource = match &c.resource {
                Some(r) => {
                    let r = ResourceRef::parse(r).context("--resource")?;
                    anyhow::ensure!(
                        r.version.is_none(),
                        "--resource: a hold covers every version of a resource; give TYPE:ID"
                    );
                    json!({"type": r.r#type, "id": r.id})
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
            let holds = v["holds"].as_array().cloned().unwrap_or_default();
            if holds.is_empty() && !l.format.json && !l.format.csv {
                eprintln!("no legal holds");
                return Ok(0);
            }
            let mut rows = vec![["ID", "SCOPE", "STATE", "CREATED", "BY", "REASON"]
                .map(String::from)
                .to_vec()];
            for h in &holds {
                let state = match h["released_at"].as_str() {
                    Some(t) => format!("released {t}"),
                    None => "active".to_string(),
                };
                rows.push(vec![
                    h["id"].to_string(),
                    scope_text(&h["scope"]),
                    state,
                    s(&h["created_at"]),
                    s(&h["created_by"]),
                    s(&h["reason"]),
                ]);
            }
            print_list(l.format, &rows, &v["holds"])?;
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
