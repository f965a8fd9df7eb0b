//! `mlaudit history TYPE:ID` (or `TYPE ID`): a resource's summary, then its timeline: every event that
//! names it, as its subject (`resource`) or in `related`, each row saying which.

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::Value;

use crate::http::{for_each_page, runtime, ServerArgs};
use crate::output::{event_cells, print_aligned, s, time_text, FormatArgs, Stdout, EVENT_HEADER};
use crate::resource::ResourceRef;

/// `mlaudit history`.
#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The resource: TYPE:ID (dataset:customers), or TYPE and ID as two arguments.
    #[arg(value_name = "TYPE:ID")]
    resource: String,
    /// Its id, when the first argument is only the type.
    #[arg(value_name = "ID")]
    id: Option<String>,
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
    /// `--json`: the answer (with `--all`, the whole timeline in one object); `--csv`:
    /// the timeline, one row per event, times exact.
    #[command(flatten)]
    format: FormatArgs,
}

/// `mlaudit history TYPE ID`: `GET /v1/resources/{type}/{id}`, the summary then the
/// timeline.
pub fn history(a: HistoryArgs) -> anyhow::Result<i32> {
    let resource = ResourceRef::positional(&a.resource, a.id.as_deref())?;
    let rt = runtime()?;
    let mut url = reqwest::Url::parse(&a.server.endpoint("/v1/resources"))
        .with_context(|| format!("server URL {:?}", a.server.url))?;
    url.path_segments_mut()
        .map_err(|_| anyhow!("server URL {:?} cannot take a path", a.server.url))?
        .push(&resource.r#type)
        .push(&resource.id);
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
    let events = answer["timeline"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if a.format.json {
        outln!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(0);
    }
    if a.format.csv {
        print_history_csv(&events)?;
    } else {
        print_summary(&answer);
        outln!();
        print_history_table(&events);
    }
    if let Some(next) = answer["timeline"]["next"].as_str() {
        eprintln!("mlaudit: more events: --all (next cursor {next})");
    }
    Ok(0)
}

/// How a timeline row names the resource: `subject`, or `related:RELATION` for each of its
/// `related` links to it (`related` alone for a link without a relation), comma-separated.
fn appears_as(row: &Value) -> String {
    let mut parts = Vec::new();
    if row["role"] == "subject" {
        parts.push("subject".to_string());
    }
    for r in row["relations"].as_array().into_iter().flatten() {
        parts.push(match r.as_str() {
            Some(rel) => format!("related:{rel}"),
            None => "related".into(),
        });
    }
    if parts.is_empty() {
        parts.push(s(&row["role"]));
    }
    parts.join(",")
}

/// The timeline as the table of `mlaudit query`, with an `AS` column: how each event
/// names the resource.
fn print_history_table(rows: &[Value]) {
    let mut header: Vec<String> = EVENT_HEADER.map(String::from).to_vec();
    header.insert(5, "AS".into());
    let mut table = vec![header];
    for h in rows {
        let mut cells = event_cells(h);
        cells.insert(5, appears_as(h));
        table.push(cells);
    }
    print_aligned(&table);
}

/// The timeline as CSV: the exact times, the resource in its three fields.
fn print_history_csv(rows: &[Value]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Stdout);
    w.write_record([
        "seq",
        "recorded_at",
        "time",
        "action",
        "outcome",
        "actor",
        "as",
        "resource_type",
        "resource_id",
        "resource_version",
    ])?;
    for h in rows {
        let e = &h["event"];
        w.write_record([
            h["seq"].to_string(),
            s(&h["recorded_at"]),
            s(&e["time"]),
            s(&e["action"]),
            e["outcome"].as_str().unwrap_or("success").to_string(),
            s(&e["actor"]["id"]),
            appears_as(h),
            s(&e["resource"]["type"]),
            s(&e["resource"]["id"]),
            s(&e["resource"]["version"]),
        ])?;
    }
    w.flush()?;
    Ok(())
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
    let related: Vec<String> = s["as_related"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, n)| {
                    let k = if k.is_empty() { "(no relation)" } else { k };
                    format!("{k} {n}")
                })
                .collect()
        })
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
        ("as subject", s["as_subject"].to_string()),
        (
            "as related",
            if related.is_empty() {
                "none".into()
            } else {
                related.join(", ")
            },
        ),
        ("first seen", time_text(&s["first_seen"])),
        ("last seen", time_text(&s["last_seen"])),
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
