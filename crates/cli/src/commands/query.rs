//! `mlaudit query`: search the log through `GET /v1/events`.

use anyhow::Context;
use clap::Args;
use indicatif::ProgressBar;
use serde_json::Value;

use crate::http::{for_each_page, runtime, ServerArgs};
use crate::output::{print_csv, print_table};
use crate::resource::{Link, ResourceRef};

/// The event filters of `GET /v1/events`, shared by `mlaudit query` and `mlaudit stats`.
#[derive(Args)]
pub struct FilterArgs {
    /// Action, or a glob like dataset.*.
    #[arg(long)]
    action: Option<String>,
    /// Category (data_access, …).
    #[arg(long)]
    category: Option<String>,
    /// actor.id.
    #[arg(long)]
    actor: Option<String>,
    /// The event's own id (the `id` its producer gave it).
    #[arg(long)]
    id: Option<String>,
    /// The resource, TYPE:ID[@VERSION] (sets resource.type, resource.id and, if given,
    /// resource.version).
    #[arg(long, value_parser = crate::args::resource,
          conflicts_with_all = ["resource_type", "resource_id", "resource_version"])]
    resource: Option<ResourceRef>,
    /// resource.type.
    #[arg(long)]
    resource_type: Option<String>,
    /// resource.id.
    #[arg(long)]
    resource_id: Option<String>,
    /// resource.version.
    #[arg(long)]
    resource_version: Option<String>,
    /// success, failure or denied.
    #[arg(long)]
    outcome: Option<String>,
    /// context.project.
    #[arg(long)]
    project: Option<String>,
    /// context.environment.
    #[arg(long)]
    environment: Option<String>,
    /// One of resource.tags.
    #[arg(long)]
    tag: Option<String>,
    /// A related resource, TYPE:ID[@VERSION][:RELATION] (version and relation narrow it
    /// when given), e.g. dataset:customers:training_data.
    #[arg(long, value_parser = crate::args::link_filter)]
    related: Option<Link>,
    /// Event time at or after (RFC 3339, a date, now, or a time before now: 7d, now-24h).
    #[arg(long, value_parser = crate::args::time)]
    from: Option<String>,
    /// Event time before (RFC 3339, a date, now, or a time before now: 7d, now-24h).
    #[arg(long, value_parser = crate::args::time)]
    to: Option<String>,
    /// Recorded at or after (RFC 3339, a date, now, or a time before now: 7d, now-24h).
    #[arg(long, value_parser = crate::args::time)]
    recorded_from: Option<String>,
    /// Recorded before (RFC 3339, a date, now, or a time before now: 7d, now-24h).
    #[arg(long, value_parser = crate::args::time)]
    recorded_to: Option<String>,
    /// Full-text query (SQLite FTS5) over reason, parameters and resource name.
    #[arg(long)]
    q: Option<String>,
}

impl FilterArgs {
    /// The filters that are set, as query parameters.
    pub(crate) fn params(&self) -> Vec<(&'static str, String)> {
        let r = self.resource.as_ref();
        let rtype = r.map(|r| r.r#type.clone()).or(self.resource_type.clone());
        let rid = r.map(|r| r.id.clone()).or(self.resource_id.clone());
        let rversion = r
            .and_then(|r| r.version.clone())
            .or(self.resource_version.clone());
        let l = self.related.as_ref();
        let related = l.map(|l| format!("{}:{}", l.resource.r#type, l.resource.id));
        let related_version = l.and_then(|l| l.resource.version.clone());
        let related_relation = l.and_then(|l| l.relation.clone());
        [
            ("action", &self.action),
            ("category", &self.category),
            ("actor", &self.actor),
            ("id", &self.id),
            ("resource_type", &rtype),
            ("resource_id", &rid),
            ("resource_version", &rversion),
            ("outcome", &self.outcome),
            ("project", &self.project),
            ("environment", &self.environment),
            ("tag", &self.tag),
            ("related", &related),
            ("related_version", &related_version),
            ("related_relation", &related_relation),
            ("from", &self.from),
            ("to", &self.to),
            ("recorded_from", &self.recorded_from),
            ("recorded_to", &self.recorded_to),
            ("q", &self.q),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (name, v.clone())))
        .collect()
    }
}

/// `mlaudit query`.
#[derive(Args)]
pub struct QueryArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// Results per page, 1 to 1000 (more is an error: use --all to follow every page).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=index::LIMIT_MAX as u64))]
    limit: Option<u64>,
    /// asc (oldest first) or desc (newest first, the default).
    #[arg(long)]
    order: Option<String>,
    /// Start after this cursor (the `next` of an earlier page).
    #[arg(long)]
    cursor: Option<String>,
    /// Follow cursors until every matching event is printed.
    #[arg(long)]
    all: bool,
    /// Show sealed identifiers in cleartext (needs clearance; recorded as audit.query).
    #[arg(long)]
    cleartext: bool,
    /// Print a JSON array of results.
    #[arg(long, conflicts_with_all = ["ndjson", "csv"])]
    json: bool,
    /// Print one JSON result per line.
    #[arg(long, conflicts_with = "csv")]
    ndjson: bool,
    /// Print CSV with a header row (seq, recorded_at, time, action, outcome, actor,
    /// resource_type, resource_id, resource_version, project, environment, leaf_hash).
    #[arg(long)]
    csv: bool,
}

impl QueryArgs {
    fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = self.filter.params();
        if let Some(o) = &self.order {
            p.push(("order", o.clone()));
        }
        if let Some(l) = self.limit {
            p.push(("limit", l.to_string()));
        }
        if self.cleartext {
            p.push(("cleartext", "true".into()));
        }
        p
    }
}

/// `mlaudit query`: `GET /v1/events` with the filters as flags.
pub fn query(a: QueryArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    // Following cursors can take a while: show how far it got (stderr, only on a terminal).
    let bar = if a.all {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(crate::output::progress_style("events", false));
    let hits: Vec<Value> = rt.block_on(async {
        let base = a.params();
        let mut hits = Vec::new();
        let url = reqwest::Url::parse(&a.server.endpoint("/v1/events"))
            .with_context(|| format!("server URL {:?}", a.server.url))?;
        let next = for_each_page(
            &a.server,
            url,
            &base,
            a.cursor.clone(),
            a.all,
            "/next",
            |mut page| {
                if let Some(Value::Array(events)) = page.get_mut("events").map(Value::take) {
                    bar.inc(events.len() as u64);
                    hits.extend(events);
                }
            },
        )
        .await?;
        if let Some(next) = next {
            eprintln!("mlaudit: more results: --cursor {next} (or --all)");
        }
        anyhow::Ok(hits)
    })?;
    bar.finish_and_clear();
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&hits)?);
    } else if a.csv {
        print_csv(&hits)?;
    } else if a.ndjson {
        for h in &hits {
            outln!("{h}");
        }
    } else {
        print_table(&hits);
    }
    Ok(0)
}
