//! `mlaudit lineage`, `mlaudit stats` and `mlaudit deployment-state`: the audit questions
//! of `GET /v1/lineage`, `GET /v1/stats` and `GET /v1/deployments/{id}/state`.

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::Value;

use super::{check, http, print_table, runtime, FilterArgs, ServerArgs};

/// `mlaudit lineage`.
#[derive(Args)]
pub struct LineageArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Type of the resource to start from (dataset, model, deployment, …).
    #[arg(value_name = "TYPE")]
    rtype: String,
    /// Its id.
    id: String,
    /// Hops to follow from it (the server's default is 2, its most 5).
    #[arg(long)]
    depth: Option<u64>,
    /// Print the server's JSON answer.
    #[arg(long)]
    json: bool,
}

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

/// `mlaudit deployment-state`.
#[derive(Args)]
pub struct DeploymentStateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The deployment's id (its resource.id).
    id: String,
    /// The time to ask about (RFC 3339); default now.
    #[arg(long)]
    at: Option<String>,
    /// Print the server's JSON answer.
    #[arg(long)]
    json: bool,
}

/// GETs `path` (segments pushed onto the server URL) with `params`; the JSON answer.
fn get_json(
    server: &ServerArgs,
    segments: &[&str],
    params: &[(&'static str, String)],
) -> anyhow::Result<Value> {
    let mut url = reqwest::Url::parse(&server.endpoint(""))
        .with_context(|| format!("server URL {:?}", server.url))?;
    url.path_segments_mut()
        .map_err(|_| anyhow!("server URL {:?} cannot take a path", server.url))?
        .pop_if_empty()
        .extend(segments);
    let rt = runtime()?;
    rt.block_on(async {
        let c = http(server.ca_cert.as_deref())?;
        let resp = server
            .auth(c.get(url))
            .query(params)
            .send()
            .await
            .with_context(|| format!("contacting {}", server.url))?;
        Ok(check(resp).await?.json().await?)
    })
}

/// Rows of cells as aligned columns (two spaces apart), the first row a header.
fn print_aligned(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

fn node_name(v: &Value) -> String {
    format!("{}:{}", s(&v["type"]), s(&v["id"]))
}

/// `mlaudit lineage TYPE ID`: the nodes, then the edges with the seqs of their events.
pub fn lineage(a: LineageArgs) -> anyhow::Result<i32> {
    let mut params = vec![("type", a.rtype.clone()), ("id", a.id.clone())];
    if let Some(d) = a.depth {
        params.push(("depth", d.to_string()));
    }
    let v = get_json(&a.server, &["v1", "lineage"], &params)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    let edges = v["edges"].as_array().cloned().unwrap_or_default();
    println!(
        "lineage of {}:{}, depth {}: {} nodes, {} edges",
        a.rtype,
        a.id,
        v["depth"],
        nodes.len(),
        edges.len()
    );
    println!();
    let mut rows = vec![vec![
        "NODE".to_string(),
        "DEPTH".into(),
        "EVENTS".into(),
        "FIRST SEEN".into(),
        "LAST SEEN".into(),
        "VERSIONS".into(),
    ]];
    for n in &nodes {
        let versions: Vec<String> = n["versions"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        rows.push(vec![
            node_name(n),
            n["depth"].to_string(),
            n["events"].to_string(),
            s(&n["first_seen"]),
            s(&n["last_seen"]),
            versions.join(","),
        ]);
    }
    print_aligned(&rows);
    println!();
    let mut rows = vec![vec![
        "FROM".to_string(),
        "RELATION".into(),
        "TO".into(),
        "EVENTS".into(),
        "SEQS".into(),
    ]];
    for e in &edges {
        let count = e["events"]["count"].as_u64().unwrap_or(0);
        let seqs: Vec<String> = e["events"]["seqs"]
            .as_array()
            .map(|a| a.iter().map(Value::to_string).collect())
            .unwrap_or_default();
        let mut seqs = seqs.join(",");
        if (count as usize) > seqs.split(',').count() {
            seqs.push_str(",…");
        }
        rows.push(vec![
            node_name(&e["from"]),
            e["relation"].as_str().unwrap_or("-").to_string(),
            node_name(&e["to"]),
            count.to_string(),
            seqs,
        ]);
    }
    print_aligned(&rows);
    if v["truncated"] == true {
        eprintln!("mlaudit: the graph was cut at the server's node or edge cap: start from a node nearer to what you look for, or lower --depth");
    }
    Ok(0)
}

/// `mlaudit stats --by X`: counts per bucket and key, as a table, JSON or CSV.
pub fn stats(a: StatsArgs) -> anyhow::Result<i32> {
    let v = get_json(&a.server, &["v1", "stats"], &a.params())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let buckets = v["buckets"].as_array().cloned().unwrap_or_default();
    let key = |b: &Value| b["key"].as_str().unwrap_or("").to_string();
    if a.csv {
        let mut w = csv::Writer::from_writer(std::io::stdout().lock());
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

/// `mlaudit deployment-state ID`: the model served, by whom, and its evaluations.
pub fn deployment_state(a: DeploymentStateArgs) -> anyhow::Result<i32> {
    let mut params = Vec::new();
    if let Some(at) = &a.at {
        params.push(("at", at.clone()));
    }
    let v = get_json(&a.server, &["v1", "deployments", &a.id, "state"], &params)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
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
        println!("{name:<12}{value}");
    }
    let evaluations = v["evaluations"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !evaluations.is_empty() {
        println!();
        print_table(&evaluations);
    }
    Ok(0)
}
