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

/// Issue 19.8: `rust-version` said 1.80 while the code needed 1.87 and its dependencies
/// 1.88. The declared minimum must cover every package of the resolved graph (cargo checks
/// only our own code against it, and clippy's `incompatible_msrv` lint, denied in CI, checks
/// the standard library APIs we call). CI has one toolchain, so this is how the MSRV is
/// tested: no dependency may need a newer compiler than the one we declare.
#[test]
fn the_declared_rust_version_covers_every_dependency() {
    // "1.88" is 1.88.0.
    let version = |s: &str| -> Vec<u32> {
        let mut v: Vec<u32> = s.split('.').map(|x| x.parse().unwrap()).collect();
        v.resize(3, 0);
        v
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            "x86_64-unknown-linux-gnu",
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
    let used: BTreeSet<&str> = v["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    let members: BTreeSet<&str> = v["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let mut ours = None;
    let mut needed = Vec::new();
    for p in v["packages"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        let Some(rv) = p["rust_version"].as_str() else {
            continue;
        };
        if members.contains(id) {
            let rv = version(rv);
            assert!(
                ours.is_none() || ours.as_ref() == Some(&rv),
                "every crate inherits the workspace's rust-version"
            );
            ours = Some(rv);
        } else if used.contains(id) {
            needed.push((version(rv), p["name"].as_str().unwrap().to_string()));
        }
    }
    let ours = ours.expect("the workspace declares rust-version");
    let too_new: Vec<_> = needed.iter().filter(|(rv, _)| *rv > ours).collect();
    assert!(
        too_new.is_empty(),
        "dependencies need a newer Rust than the declared rust-version {ours:?}: {too_new:?}"
    );
}

/// Issue 11.14: the systemd unit and the Dockerfile in `deploy/` set only settings that
/// exist (a misspelt `MLAUDIT_*` variable is silently ignored by the server), run
/// `mlaudit serve`, and the image builds with a toolchain no older than the declared MSRV.
#[test]
fn deploy_files_name_real_settings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let help = Command::new(env!("CARGO_BIN_EXE_mlaudit"))
        .args(["serve", "--help"])
        .output()
        .expect("running mlaudit serve --help");
    let help = String::from_utf8(help.stdout).unwrap();
    let known: BTreeSet<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("MLAUDIT_"))
        .map(str::to_string)
        .collect();
    assert!(known.contains("MLAUDIT_DATA_DIR"), "{help}");
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let msrv: Vec<u32> = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("rust-version in Cargo.toml")
        .split('.')
        .map(|x| x.parse().unwrap())
        .collect();
    for name in ["mlaudit.service", "Dockerfile"] {
        let text = std::fs::read_to_string(root.join("deploy").join(name))
            .unwrap_or_else(|e| panic!("deploy/{name}: {e}"));
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            for w in line
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("MLAUDIT_"))
            {
                assert!(
                    known.contains(w),
                    "deploy/{name} sets {w}, which `serve` does not read"
                );
            }
        }
        assert!(
            text.contains("mlaudit serve") || text.contains("CMD [\"serve\"]"),
            "deploy/{name} runs the server"
        );
    }
    let docker = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    let image: Vec<u32> = docker
        .lines()
        .find_map(|l| l.strip_prefix("FROM rust:"))
        .and_then(|l| l.split('-').next())
        .expect("a FROM rust:X.Y build stage")
        .split('.')
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        image >= msrv,
        "the build image {image:?} is older than rust-version {msrv:?}"
    );
    assert!(
        docker.contains("USER "),
        "the image runs as a non-root user"
    );
    assert!(docker.contains("VOLUME"), "the data directory is a volume");
}

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The help text of `mlaudit ARGS… --help`.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mlaudit"))
        .args(args)
        .arg("--help")
        .output()
        .expect("running mlaudit --help");
    String::from_utf8(out.stdout).unwrap()
}

/// Issue 19.8 (docs that are not true) and 11.14 (docs and README match the code): the
/// lists a reader relies on are checked against the code they describe, so they cannot go
/// stale silently: every route of the access table is in docs/api.md's endpoint table,
/// every command is in docs/api.md and the README, and every `serve` flag and variable is
/// in the README's configuration table.
#[test]
fn docs_list_every_endpoint_command_and_setting() {
    let api = doc("docs/api.md");
    let endpoints = api
        .split("## 1. Endpoints")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/api.md has an endpoint table");
    for route in auth::ROUTES {
        let prefix = route.path.split('{').next().unwrap();
        let want = format!("{} {prefix}", route.method);
        assert!(
            endpoints.contains(&want),
            "docs/api.md section 1 does not list {} {}",
            route.method,
            route.path
        );
    }
    let readme = doc("README.md");
    let top = help(&[]);
    let commands: Vec<&str> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 15, "{top}");
    for c in &commands {
        let name = format!("mlaudit {c}");
        assert!(
            api.contains(&format!("`{name}")),
            "docs/api.md does not document `{name}`"
        );
        assert!(readme.contains(&name), "the README never mentions `{name}`");
    }
    let config = readme
        .split("## Configuration")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README has a configuration section");
    let serve = help(&["serve"]);
    for word in serve.split(|c: char| c.is_whitespace() || ",[]()".contains(c)) {
        let word = word.trim_end_matches(['=', '.', ':']);
        let flag = word.starts_with("--") && word != "--help";
        if flag || word.starts_with("MLAUDIT_") {
            assert!(
                config.contains(&format!("`{word}`")) || config.contains(&format!("`{word},")),
                "the README's configuration table lacks `{word}`"
            );
        }
    }
}
