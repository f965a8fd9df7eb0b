//! `mlaudit deployment-state ID`: the model a deployment served at a time, and its
//! evaluations (`GET /v1/deployments/{id}/state`).

use clap::Args;

use crate::http::{get_json, ServerArgs};
use crate::output::{print_table, s};

/// `mlaudit deployment-state`.
#[derive(Args)]
pub struct DeploymentStateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The deployment's id (its resource.id).
    id: String,
    /// The time to ask about (RFC 3339, a date, now, or a time before now: 7d, now-24h); default now.
    #[arg(long, value_parser = crate::args::time)]
    at: Option<String>,
    /// Print the server's JSON answer.
    #[arg(long)]
    json: bool,
}

/// `mlaudit deployment-state ID`: the model served, by whom, and its evaluations.
pub fn deployment_state(a: DeploymentStateArgs) -> anyhow::Result<i32> {
    let mut params = Vec::new();
    if let Some(at) = &a.at {
        params.push(("at", at.clone()));
    }
    let v = get_json(&a.server, &["v1", "deployments", &a.id, "state"], &params)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let m = &v["model"];
    let mut model = s(&m["id"]);
    if let Some(version) = m["version"].as_str() {
        model.push('@');
        model.push_str(version);
    }
    let lines = [
        ("deployment", s(&v["deployment"])),
        ("at", s(&v["at"])),
        ("model", model),
        ("by", s(&v["actor"])),
        (
            "since",
            format!("{} ({}, seq {})", s(&v["time"]), s(&v["action"]), v["seq"]),
        ),
        ("evaluations", v["evaluations"]["count"].to_string()),
    ];
    for (name, value) in lines {
        outln!("{name:<12}{value}");
    }
    let evaluations = v["evaluations"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !evaluations.is_empty() {
        outln!();
        print_table(&evaluations);
    }
    Ok(0)
}
