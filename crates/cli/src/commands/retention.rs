//! `mlaudit retention run`: prune the payloads of expired entries through the API.

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::http::{call_json, ServerArgs};
use crate::output::in_parens;

/// `mlaudit retention`.
#[derive(Args)]
pub struct RetentionArgs {
    #[command(subcommand)]
    command: RetentionCommand,
}

#[derive(Subcommand)]
pub(crate) enum RetentionCommand {
    /// Prune the entries whose retention expired (not held), now.
    Run(RunArgs),
}

#[derive(Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Only report what would be pruned; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the server's report as JSON.
    #[arg(long)]
    json: bool,
}

/// `mlaudit retention run [--dry-run]`.
pub fn retention(a: RetentionArgs) -> anyhow::Result<i32> {
    let RetentionCommand::Run(r) = a.command;
    let path = if r.dry_run {
        "/v1/retention/run?dry_run=true"
    } else {
        "/v1/retention/run"
    };
    // The server does the work in one request; show that it is alive.
    let bar = if r.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}").unwrap());
    bar.set_message(if r.dry_run {
        "planning a retention run"
    } else {
        "running retention"
    });
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let v = call_json(&r.server, reqwest::Method::POST, path, None);
    bar.finish_and_clear();
    let v = v?;
    if r.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let rep = &v["report"];
    let by_policy = rep["by_policy"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let by_hold = rep["by_hold"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| format!("hold {k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    if r.dry_run {
        outln!(
            "dry run: {} entries would be pruned{}",
            rep["expired"],
            in_parens(&by_policy)
        );
    } else {
        outln!("pruned {} entries{}", rep["pruned"], in_parens(&by_policy));
    }
    outln!(
        "held: {} expired entries kept by legal holds{}",
        rep["held"],
        in_parens(&by_hold)
    );
    let ranges: Vec<String> = rep["ranges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{}-{}", r[0], r[1]))
        .collect();
    if !ranges.is_empty() {
        let more = if rep["ranges_truncated"] == true {
            ", …"
        } else {
            ""
        };
        outln!("seq ranges: {}{more}", ranges.join(", "));
    }
    if let Some(seq) = v["record"].as_u64() {
        outln!("recorded as audit.retention event seq {seq}");
    }
    Ok(0)
}
