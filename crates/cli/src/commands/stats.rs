//! `mlaudit stats`: counts by a field and by hour or day (`GET /v1/stats`).

use clap::Args;
use serde_json::Value;

use crate::commands::query::FilterArgs;
use crate::http::{get_json, ServerArgs};
use crate::output::{print_aligned, s};

/// `mlaudit stats`.
#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Count by: action, category, outcome, actor, project or resource_type.
    #[arg(long)]
    by: String,
    /// Bucket width: hour or day.
    #[arg(long, default_value = "day")]
    interval: String,
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
    let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
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
    for b in &buckets {
        let k = b["key"]
            .as_str()
            .map_or("(none)".to_string(), str::to_string);
        rows.push(vec![s(&b["start"]), k, b["count"].to_string()]);
    }
    print_aligned(&rows);
    Ok(0)
}
