//! `mlaudit deployment-state ID`: the model a deployment served at a time, and its
//! evaluations (`GET /v1/deployments/{id}/state`).

use clap::Args;

use crate::http::{get_json, ServerArgs};
use crate::output::{print_table, s, time_text, FormatArgs, Stdout};

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
    /// `--json`: the server's answer; `--csv`: the state as one row, times exact (the
    /// evaluations are in `--json`, or `mlaudit query --action 'evaluation.*'`).
    #[command(flatten)]
    format: FormatArgs,
}

/// `mlaudit deployment-state ID`: the model served, by whom, and its evaluations.
pub fn deployment_state(a: DeploymentStateArgs) -> anyhow::Result<i32> {
    let mut params = Vec::new();
    if let Some(at) = &a.at {
        params.push(("at", at.clone()));
    }
    let v = get_json(&a.server, &["v1", "deployments", &a.id, "state"], &params)?;
    if a.format.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let m = &v["model"];
    if a.format.csv {
        let mut w = csv::Writer::from_writer(Stdout);
        w.write_record([
            "deployment",
            "at",
            "model_id",
            "model_version",
            "actor",
            "time",
            "action",
            "seq",
            "evaluations",
        ])?;
        w.write_record([
            s(&v["deployment"]),
            s(&v["at"]),
            s(&m["id"]),
            s(&m["version"]),
            s(&v["actor"]),
            s(&v["time"]),
            s(&v["action"]),
            v["seq"].to_string(),
            v["evaluations"]["count"].to_string(),
        ])?;
        w.flush()?;
        return Ok(0);
    }
    let mut model = s(&m["id"]);
    if let Some(version) = m["version"].as_str() {
        model.push('@');
        model.push_str(version);
    }
    let lines = [
        ("deployment", s(&v["deployment"])),
        ("at", time_text(&v["at"])),
        ("model", model),
        ("by", s(&v["actor"])),
        (
            "since",
            format!(
                "{} ({}, seq {})",
                time_text(&v["time"]),
                s(&v["action"]),
                v["seq"]
            ),
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
