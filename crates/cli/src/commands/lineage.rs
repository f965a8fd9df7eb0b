//! `mlaudit lineage TYPE ID`: the lineage graph around a resource (`GET /v1/lineage`).

use clap::Args;
use serde_json::Value;

use crate::http::{get_json, ServerArgs};
use crate::output::{print_aligned, s};

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
    /// Follow only links to nodes of these types (comma-separated: model,deployment).
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Follow only links with these relations (comma-separated: training_data,serves).
    #[arg(long, value_delimiter = ',')]
    relations: Vec<String>,
    /// Print the server's JSON answer.
    #[arg(long)]
    json: bool,
}

pub(crate) fn node_name(v: &Value) -> String {
    format!("{}:{}", s(&v["type"]), s(&v["id"]))
}

/// `mlaudit lineage TYPE ID`: the nodes, then the edges with the seqs of their events.
pub fn lineage(a: LineageArgs) -> anyhow::Result<i32> {
    let mut params = vec![("type", a.rtype.clone()), ("id", a.id.clone())];
    if let Some(d) = a.depth {
        params.push(("depth", d.to_string()));
    }
    if !a.types.is_empty() {
        params.push(("types", a.types.join(",")));
    }
    if !a.relations.is_empty() {
        params.push(("relations", a.relations.join(",")));
    }
    let v = get_json(&a.server, &["v1", "lineage"], &params)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    let edges = v["edges"].as_array().cloned().unwrap_or_default();
    outln!(
        "lineage of {}:{}, depth {}: {} nodes, {} edges",
        a.rtype,
        a.id,
        v["depth"],
        nodes.len(),
        edges.len()
    );
    outln!();
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
    outln!();
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
        let o = &v["omitted"];
        let counts = |m: &Value| -> String {
            m.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| {
                            let k = if k.is_empty() { "(no relation)" } else { k };
                            format!("{k} {n}")
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        eprintln!(
            "mlaudit: the graph was cut at the server's node or edge cap: left out {} nodes ({}) and {} edges ({}); deployments and models were kept first. Narrow it with --types or --relations, start from a node nearer to what you look for, or lower --depth",
            o["nodes"],
            counts(&o["node_types"]),
            o["edges"],
            counts(&o["relations"]),
        );
    }
    Ok(0)
}
