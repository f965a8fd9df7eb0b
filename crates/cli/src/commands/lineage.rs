//! `mlaudit lineage TYPE:ID` (or `TYPE ID`): the lineage graph around a resource (`GET /v1/lineage`).

use clap::Args;
use serde_json::Value;

use crate::http::{get_json, ServerArgs};
use crate::output::{in_parens, print_aligned, s, time_text, FormatArgs, Stdout};
use crate::resource::ResourceRef;

/// `mlaudit lineage`.
#[derive(Args)]
pub struct LineageArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The resource to start from: TYPE:ID (dataset:customers, model:churn), or TYPE and
    /// ID as two arguments.
    #[arg(value_name = "TYPE:ID")]
    resource: String,
    /// Its id, when the first argument is only the type.
    #[arg(value_name = "ID")]
    id: Option<String>,
    /// Hops to follow from it (the server's default is 2, its most 5).
    #[arg(long)]
    depth: Option<u64>,
    /// Follow only links to nodes of these types (comma-separated: model,deployment).
    #[arg(long, value_delimiter = ',')]
    types: Vec<String>,
    /// Follow only links with these relations (comma-separated: training_data,serves).
    #[arg(long, value_delimiter = ',')]
    relations: Vec<String>,
    /// `--json`: the server's answer; `--csv`: one row per node (kind `node`) and per
    /// edge (kind `edge`), times exact.
    #[command(flatten)]
    format: FormatArgs,
}

pub(crate) fn node_name(v: &Value) -> String {
    format!("{}:{}", s(&v["type"]), s(&v["id"]))
}

/// `mlaudit lineage TYPE ID`: the nodes, then the edges with the seqs of their events.
pub fn lineage(a: LineageArgs) -> anyhow::Result<i32> {
    let start = ResourceRef::positional(&a.resource, a.id.as_deref())?;
    let mut params = vec![("type", start.r#type.clone()), ("id", start.id.clone())];
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
    if a.format.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let nodes = v["nodes"].as_array().cloned().unwrap_or_default();
    let edges = v["edges"].as_array().cloned().unwrap_or_default();
    if a.format.csv {
        print_lineage_csv(&nodes, &edges)?;
        warn_if_cut(&v);
        return Ok(0);
    }
    outln!(
        "lineage of {}:{}, depth {}: {} nodes, {} edges",
        start.r#type,
        start.id,
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
            time_text(&n["first_seen"]),
            time_text(&n["last_seen"]),
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
        rows.push(vec![
            node_name(&e["from"]),
            e["relation"].as_str().unwrap_or("-").to_string(),
            node_name(&e["to"]),
            count.to_string(),
            edge_seqs(e),
        ]);
    }
    print_aligned(&rows);
    warn_if_cut(&v);
    Ok(0)
}

/// An edge's event seqs, comma-separated, `…` at the end when the server sent only some.
fn edge_seqs(e: &Value) -> String {
    let count = e["events"]["count"].as_u64().unwrap_or(0);
    let listed: Vec<String> = e["events"]["seqs"]
        .as_array()
        .map(|a| a.iter().map(Value::to_string).collect())
        .unwrap_or_default();
    let mut seqs = listed.join(",");
    if count as usize > listed.len() {
        seqs.push_str(if listed.is_empty() { "…" } else { ",…" });
    }
    seqs
}

/// Nodes and edges as one CSV: `kind` says which; a node's name is in `from`.
fn print_lineage_csv(nodes: &[Value], edges: &[Value]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(Stdout);
    w.write_record([
        "kind",
        "from",
        "relation",
        "to",
        "depth",
        "events",
        "first_seen",
        "last_seen",
        "versions",
        "seqs",
    ])?;
    for n in nodes {
        let versions: Vec<String> = n["versions"]
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        w.write_record([
            "node".to_string(),
            node_name(n),
            String::new(),
            String::new(),
            n["depth"].to_string(),
            n["events"].to_string(),
            s(&n["first_seen"]),
            s(&n["last_seen"]),
            versions.join(";"),
            String::new(),
        ])?;
    }
    for e in edges {
        w.write_record([
            "edge".to_string(),
            node_name(&e["from"]),
            s(&e["relation"]),
            node_name(&e["to"]),
            String::new(),
            e["events"]["count"].as_u64().unwrap_or(0).to_string(),
            String::new(),
            String::new(),
            String::new(),
            edge_seqs(e).replace(',', ";"),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// On stderr: what the server's node or edge cap left out, and how to narrow the walk.
fn warn_if_cut(v: &Value) {
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
            "mlaudit: the graph was cut at the server's node or edge cap: left out {} nodes{} and {} edges{}; deployments and models were kept first. Narrow it with --types or --relations, start from a node nearer to what you look for, or lower --depth",
            o["nodes"],
            in_parens(&counts(&o["node_types"])),
            o["edges"],
            in_parens(&counts(&o["relations"])),
        );
    }
}
