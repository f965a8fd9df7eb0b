//! Output shared by the commands: events as an aligned table or CSV, and aligned rows.

use serde_json::Value;

/// seq, time, action, outcome, actor, resource: one aligned row per result.
pub(crate) fn print_table(hits: &[Value]) {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut rows = vec![[
        "SEQ".to_string(),
        "TIME".into(),
        "ACTION".into(),
        "OUTCOME".into(),
        "ACTOR".into(),
        "RESOURCE".into(),
    ]];
    for h in hits {
        let e = &h["event"];
        let r = &e["resource"];
        let resource = if r.is_object() {
            let mut t = format!("{}:{}", s(&r["type"]), s(&r["id"]));
            if let Some(v) = r["version"].as_str() {
                t.push('@');
                t.push_str(v);
            }
            t
        } else {
            String::new()
        };
        rows.push([
            h["seq"].to_string(),
            s(&e["time"]),
            s(&e["action"]),
            e["outcome"].as_str().unwrap_or("success").to_string(),
            s(&e["actor"]["id"]),
            resource,
        ]);
    }
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// One CSV row per result, for spreadsheets and audit evidence.
pub(crate) fn print_csv(hits: &[Value]) -> anyhow::Result<()> {
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record([
        "seq",
        "recorded_at",
        "time",
        "action",
        "outcome",
        "actor",
        "resource_type",
        "resource_id",
        "resource_version",
        "project",
        "environment",
        "leaf_hash",
    ])?;
    for h in hits {
        let e = &h["event"];
        w.write_record([
            h["seq"].to_string(),
            s(&h["recorded_at"]),
            s(&e["time"]),
            s(&e["action"]),
            e["outcome"].as_str().unwrap_or("success").to_string(),
            s(&e["actor"]["id"]),
            s(&e["resource"]["type"]),
            s(&e["resource"]["id"]),
            s(&e["resource"]["version"]),
            s(&e["context"]["project"]),
            s(&e["context"]["environment"]),
            s(&h["leaf_hash"]),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Rows of cells as aligned columns (two spaces apart), the first row a header.
pub(crate) fn print_aligned(rows: &[Vec<String>]) {
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

pub(crate) fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}
