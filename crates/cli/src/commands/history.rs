//! `mlaudit history TYPE ID`: a resource's summary, then its timeline.

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::Value;

use crate::http::{for_each_page, runtime, ServerArgs};
use crate::output::print_table;

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
        outln!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(0);
    }
    print_summary(&answer);
    outln!();
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
pub(crate) fn print_summary(v: &Value) {
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
        outln!("{:<12}{}", name, value.trim_end_matches(": "));
    }
}
