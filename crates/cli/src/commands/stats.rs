//! `mlaudit stats`: counts by a field and by hour, day, week or month (`GET /v1/stats`).

use clap::Args;
use serde_json::Value;

use crate::commands::query::FilterArgs;
use crate::http::{get_json, ServerArgs};
use crate::output::{print_aligned, s, time_text};

/// `mlaudit stats`.
#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Count by: action, category, outcome, actor, project or resource_type.
    #[arg(long)]
    by: String,
    /// Buckets: hour, day, week (from Monday) or month, in UTC.
    #[arg(long, default_value = "day")]
    interval: String,
    /// Keep the N keys with the most events (over all buckets); the rest are summed as
    /// "(other)".
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    top: Option<u64>,
    #[command(flatten)]
    filter: FilterArgs,
    /// Print the server's JSON answer.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV with a header row (start, key, count).
    #[arg(long)]
    csv: bool,
}

impl StatsArgs {
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![("by", self.by.clone()), ("interval", self.interval.clone())];
        p.extend(self.filter.params());
        p
    }
}

/// `mlaudit stats --by X`: counts per bucket and key, as a table, JSON or CSV.
pub fn stats(a: StatsArgs) -> anyhow::Result<i32> {
    let v = get_json(&a.server, &["v1", "stats"], &a.params())?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let mut buckets = v["buckets"].as_array().cloned().unwrap_or_default();
    if let Some(n) = a.top {
        buckets = top_keys(buckets, n as usize);
    }
    let key = |b: &Value| b["key"].as_str().unwrap_or("").to_string();
    if a.csv {
        let mut w = csv::Writer::from_writer(crate::output::Stdout);
        w.write_record(["start", "key", "count"])?;
        for b in &buckets {
            w.write_record([s(&b["start"]), key(b), b["count"].to_string()])?;
        }
        w.flush()?;
        return Ok(0);
    }
    let mut rows = vec![vec![
        "START".to_string(),
        a.by.to_uppercase(),
        "COUNT".into(),
    ]];
    let mut total = 0u64;
    for b in &buckets {
        let k = b["key"]
            .as_str()
            .map_or("(none)".to_string(), str::to_string);
        total += b["count"].as_u64().unwrap_or(0);
        rows.push(vec![time_text(&b["start"]), k, b["count"].to_string()]);
    }
    rows.push(vec!["TOTAL".into(), String::new(), total.to_string()]);
    print_aligned(&rows);
    Ok(0)
}

/// The buckets of the `n` keys with the largest totals; every other key's count is added
/// to an `(other)` bucket of the same start. Order: by start, then key as the server sent.
fn top_keys(buckets: Vec<Value>, n: usize) -> Vec<Value> {
    let mut totals: std::collections::HashMap<Option<String>, u64> = Default::default();
    for b in &buckets {
        *totals
            .entry(b["key"].as_str().map(str::to_string))
            .or_default() += b["count"].as_u64().unwrap_or(0);
    }
    let mut ranked: Vec<_> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let kept: std::collections::HashSet<Option<String>> =
        ranked.into_iter().take(n).map(|(k, _)| k).collect();
    let mut out: Vec<Value> = Vec::new();
    let mut other: std::collections::BTreeMap<String, u64> = Default::default();
    for b in buckets {
        if kept.contains(&b["key"].as_str().map(str::to_string)) {
            out.push(b);
        } else {
            *other.entry(s(&b["start"])).or_default() += b["count"].as_u64().unwrap_or(0);
        }
    }
    for (start, count) in other {
        out.push(serde_json::json!({"start": start, "key": "(other)", "count": count}));
    }
    out.sort_by(|a, b| s(&a["start"]).cmp(&s(&b["start"])));
    out
}
