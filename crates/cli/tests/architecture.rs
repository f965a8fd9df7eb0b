//! The crate graph is the one ARCHITECTURE.md draws: every workspace dependency listed in
//! its table of crates, and every dependency pointing to a lower row of its picture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn architecture_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ARCHITECTURE.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Workspace crate -> (normal workspace dependencies, dev workspace dependencies).
fn metadata() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: BTreeSet<String> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut graph = BTreeMap::new();
    for p in v["packages"].as_array().unwrap() {
        let (mut normal, mut dev) = (BTreeSet::new(), BTreeSet::new());
        for d in p["dependencies"].as_array().unwrap() {
            let name = d["name"].as_str().unwrap().to_string();
            if !members.contains(&name) {
                continue;
            }
            match d["kind"].as_str() {
                Some("dev") => dev.insert(name),
                _ => normal.insert(name),
            };
        }
        graph.insert(p["name"].as_str().unwrap().to_string(), (normal, dev));
    }
    graph
}

/// The rows of the picture under "## The crates": crate -> row number.
fn rows(md: &str) -> BTreeMap<String, u32> {
    let mut rows = BTreeMap::new();
    for line in md.lines() {
        let Some(rest) = line.strip_prefix("row ") else {
            continue;
        };
        let (n, names) = rest.split_once(' ').unwrap();
        let n: u32 = n.parse().unwrap();
        let names = names.split(" (").next().unwrap();
        for name in names.split_whitespace() {
            rows.insert(name.to_string(), n);
        }
    }
    rows
}

/// The table under "## The crates": crate -> its workspace dependencies.
fn table(md: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut t = BTreeMap::new();
    for line in md.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let name = cells[1].split('`').nth(1).unwrap().to_string();
        let deps = cells[2]
            .split(", ")
            .filter(|d| *d != "—")
            .map(str::to_string)
            .collect();
        t.insert(name, deps);
    }
    t
}

#[test]
fn crate_graph_matches_architecture_md() {
    let md = architecture_md();
    let graph = metadata();
    let rows = rows(&md);
    let table = table(&md);
    let crates: BTreeSet<&String> = graph.keys().collect();
    assert_eq!(
        crates,
        rows.keys().collect(),
        "the crates of the workspace and of ARCHITECTURE.md's picture differ"
    );
    assert_eq!(
        crates,
        table.keys().collect(),
        "the crates of the workspace and of ARCHITECTURE.md's table differ"
    );
    for (name, (normal, dev)) in &graph {
        assert_eq!(
            normal, &table[name],
            "ARCHITECTURE.md lists other dependencies for {name}"
        );
        for d in normal {
            assert!(
                rows[d] < rows[name],
                "{name} (row {}) depends on {d} (row {}), which is not below it",
                rows[name],
                rows[d]
            );
        }
        for d in dev {
            assert!(
                rows[d] <= rows[name],
                "{name} (row {}) has a dev-dependency on {d} (row {}), above it",
                rows[name],
                rows[d]
            );
        }
    }
}

/// Regression (issue 11.2): a fresh clone has no sibling folder of design material, so
/// nothing in the repository may read one (tests, benchmarks, docs, the quickstart).
#[test]
fn nothing_in_the_repository_reaches_outside_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let needle = concat!("..", "/shared");
    let mut found = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if !matches!(name.as_str(), "target" | ".git" | ".cache" | "node_modules") {
                    dirs.push(path);
                }
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                if text.contains(needle) {
                    found.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
    }
    assert!(found.is_empty(), "files that read {needle}: {found:?}");
}
