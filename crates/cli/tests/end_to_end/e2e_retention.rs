//! End to end: retention policies, legal holds, `mlaudit retention run
//! [--dry-run]`, `mlaudit hold …`, and what a pruned log still proves, against
//! a real server.

use crate::common;

use std::collections::BTreeSet;

use chrono::{Duration as Days, Utc};
use common::{unb64_hash, TestServer};
use serde_json::{json, Value};

const DAY: i64 = 1;

/// Kinds of test events: (action, tags, project, resource, age in days).
/// Policies (see `CONFIG`): `access` keeps data_access 400 days, `pii` keeps
/// tag pii 30 days; the longest matching wins; nothing else expires.
fn kind(
    i: usize,
) -> (
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    (&'static str, &'static str),
    i64,
) {
    match i % 7 {
        0 => ("dataset.read", &[], None, ("dataset", "sales"), 500 * DAY), // access: expired
        1 => (
            "dataset.read",
            &["pii"],
            None,
            ("dataset", "sales"),
            100 * DAY,
        ), // 400 wins: kept
        2 => (
            "model.train",
            &["pii"],
            Some("churn"),
            ("model", "churn"),
            100 * DAY,
        ), // pii: expired
        3 => (
            "model.train",
            &[],
            Some("churn"),
            ("model", "churn"),
            1000 * DAY,
        ), // no policy: kept
        4 => (
            "dataset.read",
            &[],
            None,
            ("dataset", "customers"),
            500 * DAY,
        ), // held
        5 => (
            "deployment.deploy",
            &["pii"],
            Some("fraud"),
            ("deployment", "d1"),
            60 * DAY,
        ), // pii: expired
        _ => ("dataset.read", &[], None, ("dataset", "sales"), 10 * DAY),  // young: kept
    }
}

fn expired(i: usize) -> bool {
    matches!(i % 7, 0 | 2 | 5)
}
fn held(i: usize) -> bool {
    i % 7 == 4
}
fn policy(i: usize) -> &'static str {
    if i.is_multiple_of(7) {
        "access"
    } else {
        "pii"
    }
}

const CONFIG: &str = r#"
[retention]
[[retention.policy]]
name = "access"
category = "data_access"
keep_days = 400

[[retention.policy]]
name = "pii"
tag = "pii"
keep_days = 30
"#;

const N: usize = 700;

fn events() -> String {
    let now = Utc::now();
    let mut out = String::new();
    for i in 0..N {
        let (action, tags, project, (rtype, rid), age) = kind(i);
        let time = now - Days::days(age) - Days::minutes(i as i64);
        let mut e = json!({
            "id": format!("ev-{i}"),
            "time": time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "action": action,
            "actor": {"id": format!("ghost{i}x@example.com")},
            "resource": {"type": rtype, "id": rid, "tags": tags},
            "reason": format!("zebra{i}q"),
        });
        if let Some(p) = project {
            e["context"] = json!({"project": p});
        }
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

fn proof(v: &Value) -> Vec<tlog::Hash> {
    v["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unb64_hash(h.as_str().unwrap()))
        .collect()
}

/// Every seq the index returns for `GET /v1/events` (all pages).
fn indexed_seqs(srv: &TestServer, http: &common::Http) -> BTreeSet<u64> {
    let mut seqs = BTreeSet::new();
    let mut url = srv.at("/v1/events?limit=1000&order=asc");
    loop {
        let page = http.get(&url).json();
        for e in page["events"].as_array().unwrap() {
            seqs.insert(e["seq"].as_u64().unwrap());
        }
        match page["next"].as_str() {
            Some(c) => url = srv.at(&format!("/v1/events?limit=1000&order=asc&cursor={c}")),
            None => return seqs,
        }
    }
}

/// Every row of the index's tables (but the full-text one), as text.
fn index_tables(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    // String columns of events, tags and related hold ids of `strings` (docs/index.md,
    // schema version 2), which a rebuild numbers afresh: compare the strings.
    for sql in [
        "SELECT seq, time, s(action), s(actor), s(resource_type), s(resource_id), s(project) FROM events ORDER BY seq",
        "SELECT s(tag) AS t, seq FROM tags ORDER BY t, seq",
        "SELECT seq, s(type) AS t, s(id) AS i, s(version), s(relation) FROM related ORDER BY seq, t, i",
        "SELECT width, bucket, action, category, outcome, project, resource_type, count FROM rollup
         ORDER BY width, bucket, action, outcome, project, resource_type",
        "SELECT bucket, actor, outcome, count FROM rollup_actor ORDER BY bucket, actor, outcome",
        // No identifier of a pruned entry is left behind in `strings`.
        "SELECT 'string', value FROM strings ORDER BY value",
    ] {
        let sql = sql.replace("s(", "(SELECT value FROM strings WHERE id = ");
        let mut stmt = conn.prepare(&sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut cols = Vec::new();
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    cols.push(format!("{v:?}"));
                }
                Ok(cols.join("|"))
            })
            .unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    assert!(out.len() > 100);
    out
}

#[test]
fn retention_prunes_expired_entries_keeps_holds_and_proofs() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("mlaudit.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let mut srv = TestServer::start_with(&["--config", cfg.to_str().unwrap()]);
    let http = srv.http();
    srv.send_in_order(&http, &events());
    srv.wait_indexed(&http, N as u64);

    // Holds: one on a resource, one created and released (it protects nothing).
    srv.cli(
        &[
            "hold",
            "create",
            "--reason",
            "litigation 42",
            "--resource",
            "dataset:customers",
        ],
        &[],
        None,
    )
    .assert_ok("hold create");
    let out = srv.cli(
        &[
            "hold",
            "create",
            "--reason",
            "audit",
            "--project",
            "fraud",
            "--json",
        ],
        &[],
        None,
    );
    out.assert_ok("hold create");
    let second: Value = serde_json::from_str(&out.stdout).unwrap();
    let id = second["id"].as_u64().unwrap().to_string();
    srv.cli(&["hold", "release", &id], &[], None)
        .assert_ok("hold release");
    let out = srv.cli(&["hold", "list", "--json"], &[], None);
    out.assert_ok("hold list");
    let active: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(active.as_array().unwrap().len(), 1, "{active}");
    assert_eq!(active[0]["reason"], "litigation 42");
    let all: Value = serde_json::from_str(
        &srv.cli(&["hold", "list", "--all", "--json"], &[], None)
            .stdout,
    )
    .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    // Issue 11.12: the list is an aligned table (or CSV) like every other list.
    let out = srv.cli(&["hold", "list", "--all"], &[], None);
    out.assert_ok("hold list");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("SCOPE"),
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        out.stdout.contains("resource dataset:customers"),
        "{}",
        out.stdout
    );
    let out = srv.cli(&["hold", "list", "--csv"], &[], None);
    out.assert_ok("hold list --csv");
    assert!(
        out.stdout.starts_with("ID,SCOPE,STATE,CREATED,BY,REASON\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("litigation 42"), "{}", out.stdout);
    // Issue 11.11: one resource syntax; the old TYPE/ID is refused with the right form.
    let out = srv.cli(
        &[
            "hold",
            "create",
            "--reason",
            "x",
            "--resource",
            "dataset/customers",
        ],
        &[],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("TYPE:ID"), "{}", out.stderr);
    // Bad holds are refused: no scope, no reason.
    let r = http.post(
        &srv.at("/v1/holds"),
        &[("content-type", "application/json")],
        br#"{"reason":"x","scope":{}}"#.to_vec(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "bad_hold");

    // Reference, computed here.
    let want: BTreeSet<u64> = (0..N).filter(|&i| expired(i)).map(|i| i as u64).collect();
    let want_held = (0..N).filter(|&i| held(i)).count() as u64;
    let want_access = (0..N)
        .filter(|&i| expired(i) && policy(i) == "access")
        .count() as u64;
    let want_pii = want.len() as u64 - want_access;

    // Both hold changes are in the log (4 records: create, create, release).
    let size_before = srv.size(&http);
    assert_eq!(size_before, N as u64 + 3);
    let (old_note, old_cp) = srv.wait_checkpoint(&http, size_before);

    // Dry run: the right counts, and nothing changes.
    let out = srv.cli(&["retention", "run", "--dry-run", "--json"], &[], None);
    out.assert_ok("retention run --dry-run");
    let dry: Value = serde_json::from_str(&out.stdout).unwrap();
    let rep = &dry["report"];
    assert_eq!(rep["dry_run"], true);
    assert_eq!(rep["expired"], want.len() as u64, "{rep}");
    assert_eq!(rep["pruned"], 0);
    assert_eq!(rep["held"], want_held);
    assert_eq!(rep["by_policy"]["access"], want_access);
    assert_eq!(rep["by_policy"]["pii"], want_pii);
    assert_eq!(rep["by_hold"]["1"], want_held);
    assert!(dry["record"].is_null());
    assert_eq!(srv.size(&http), size_before, "a dry run writes nothing");
    let first = *want.first().unwrap();
    assert_eq!(
        http.get(&srv.at(&format!("/v1/events/{first}"))).status,
        200
    );
    let human = srv.cli(&["retention", "run", "--dry-run"], &[], None);
    human.assert_ok("retention run --dry-run");
    assert!(
        human
            .stdout
            .contains(&format!("{} entries would be pruned", want.len())),
        "{}",
        human.stdout
    );

    // The run prunes exactly the reference.
    let r = http.post(&srv.at("/v1/retention/run"), &[], Vec::new());
    assert_eq!(r.status, 200, "{}", r.text());
    let run = r.json();
    assert_eq!(run["report"]["pruned"], want.len() as u64, "{run}");
    assert_eq!(run["report"]["held"], want_held);
    let record = run["record"].as_u64().unwrap();
    // Issue 19.4: the run was recorded only after the fact. "requested" is durable before
    // anything is pruned, "done" (the record answered) after.
    assert_eq!(record, size_before + 1, "requested, then done");
    let requested = http
        .get(&srv.at(&format!("/v1/events/{size_before}")))
        .json();
    assert_eq!(requested["event"]["action"], "audit.retention");
    assert_eq!(requested["event"]["parameters"]["phase"], "requested");
    for seq in 0..N as u64 {
        let r = http.get(&srv.at(&format!("/v1/events/{seq}")));
        if want.contains(&seq) {
            assert_eq!(r.status, 410, "seq {seq}: {}", r.text());
            assert_eq!(r.json()["error"]["code"], "pruned");
        } else {
            assert_eq!(r.status, 200, "seq {seq}: {}", r.text());
        }
    }
    // Entry bundle 0 holds pruned entries: gone. Hash tiles are all still there.
    assert_eq!(http.get(&srv.at("/log/tile/entries/000")).status, 410);
    assert_eq!(http.get(&srv.at("/log/tile/0/000")).status, 200);

    // The record: counts and ranges, never contents.
    let rec = http.get(&srv.at(&format!("/v1/events/{record}"))).json();
    let ev = &rec["event"];
    assert_eq!(ev["action"], "audit.retention", "{rec}");
    assert_eq!(ev["parameters"]["phase"], "done", "{rec}");
    assert_eq!(ev["parameters"]["requested_seq"], size_before, "{rec}");
    assert_eq!(ev["parameters"]["pruned"], want.len() as u64);
    assert_eq!(ev["parameters"]["held"], want_held);
    assert!(!rec.to_string().contains("ghost"), "{rec}");

    // Proofs of kept entries against the old and a new checkpoint; consistency.
    let (_, new_cp) = srv.wait_checkpoint(&http, record + 1);
    let kept: Vec<u64> = (0..N as u64)
        .filter(|s| !want.contains(s))
        .step_by(23)
        .collect();
    for cp in [&old_cp, &new_cp] {
        for &seq in &kept {
            let p = http
                .get(&srv.at(&format!("/v1/proof/inclusion?seq={seq}&size={}", cp.size)))
                .json();
            let leaf = unb64_hash(
                http.get(&srv.at(&format!("/v1/events/{seq}"))).json()["leaf_hash"]
                    .as_str()
                    .unwrap(),
            );
            tlog::verify_inclusion(seq, cp.size, &leaf, &proof(&p), &cp.root)
                .unwrap_or_else(|e| panic!("inclusion of {seq} in {}: {e}", cp.size));
        }
    }
    let p = http
        .get(&srv.at(&format!(
            "/v1/proof/consistency?from={}&to={}",
            old_cp.size, new_cp.size
        )))
        .json();
    tlog::verify_consistency(
        old_cp.size,
        new_cp.size,
        &old_cp.root,
        &new_cp.root,
        &proof(&p),
    )
    .unwrap();

    // The index no longer returns pruned events; it returns everything else.
    let want_indexed: BTreeSet<u64> = (0..=record).filter(|s| !want.contains(s)).collect();
    assert_eq!(indexed_seqs(&srv, &http), want_indexed);
    let q = http
        .get(&srv.at(&format!("/v1/events?q=zebra{first}q")))
        .json();
    assert_eq!(q["events"].as_array().unwrap().len(), 0, "{q}");

    // verify, offline and over HTTP: passes, names the pruned ranges.
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let saved = cfg_dir.path().join("old.checkpoint");
    std::fs::write(&saved, &old_note).unwrap();
    let out = srv.cli(
        &[
            "verify",
            "--data-dir",
            &dir,
            "--quiet",
            "--checkpoint",
            saved.to_str().unwrap(),
        ],
        &[],
        None,
    );
    out.assert_ok("verify --data-dir");
    assert!(
        out.stdout
            .contains(&format!("pruned: {} entries", want.len())),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("consistent with the saved checkpoint"),
        "{}",
        out.stdout
    );
    let out = srv.cli(
        &[
            "verify",
            "--url",
            &srv.log_url(),
            "--vkey",
            &srv.vkey,
            "--quiet",
        ],
        &[],
        None,
    );
    out.assert_ok("verify --url");
    assert!(out.stdout.contains("pruned:"), "{}", out.stdout);

    // A second run finds nothing new; the held entries are still held.
    let again = http
        .post(&srv.at("/v1/retention/run"), &[], Vec::new())
        .json();
    assert_eq!(again["report"]["pruned"], 0, "{again}");
    assert_eq!(again["report"]["held"], want_held);

    // Offline reindex copes with pruned entries and gives the same answers.
    srv.stop();
    let idx = srv.data_dir.join("index.sqlite");
    {
        // Nothing of the pruned entries is left in the index files.
        let conn = rusqlite::Connection::open(&idx).unwrap();
        let fts: i64 = conn
            .query_row(
                "SELECT count(*) FROM fts WHERE fts MATCH ?1",
                [format!("zebra{first}q")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(fts, 0);
        let (events, rolled): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM events), (SELECT sum(count) FROM rollup WHERE width = 3600000)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(events, rolled, "rollups count the kept events only");
    }
    for name in ["index.sqlite", "index.sqlite-wal"] {
        let Ok(bytes) = std::fs::read(srv.data_dir.join(name)) else {
            continue;
        };
        let needle = format!("ghost{first}x@example.com");
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{name} still holds a pruned actor"
        );
    }
    let live = index_tables(&idx);
    let out = srv.cli(&["reindex", "--data-dir", &dir, "--quiet"], &[], None);
    out.assert_ok("reindex");
    assert_eq!(
        index_tables(&idx),
        live,
        "the index after retention equals one rebuilt from the pruned ledger"
    );
    srv.restart();
    assert_eq!(srv.index_lag(&http), 0);
    let mut after = want_indexed.clone();
    after.insert(record + 1); // the second run's records: requested, done
    after.insert(record + 2);
    assert_eq!(
        indexed_seqs(&srv, &http),
        after,
        "reindex skips pruned entries"
    );
    assert_eq!(
        http.get(&srv.at(&format!("/v1/events/{first}"))).status,
        410
    );
    srv.assert_healthy(&http);
    // Retries of pruned event ids still get their original receipts.
    let r = srv.post_ndjson(&http, events().lines().next().unwrap());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["receipts"][0]["seq"], 0);
    let out = srv.cli(&["verify", "--data-dir", &dir, "--quiet"], &[], None);
    out.assert_ok("verify after restart");
}

#[test]
fn a_bad_retention_config_is_refused_at_start() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("mlaudit.toml");
    std::fs::write(&cfg, "[retention]\nkeep_forever = true\n").unwrap();
    let out = common::cli(
        &[
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            cfg_dir.path().join("d").to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("keep_forever"), "{}", out.stderr);
}

#[test]
fn the_scheduled_run_prunes_and_records_itself() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("mlaudit.toml");
    let text = CONFIG.replacen("[retention]\n", "[retention]\nrun_interval_s = 1\n", 1);
    std::fs::write(&cfg, text).unwrap();
    let mut srv = TestServer::start_with(&["--config", cfg.to_str().unwrap()]);
    let http = srv.http();
    srv.send_in_order(&http, &events());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // No hold here: the entries the other test holds expire too.
    let want = (0..N).filter(|&i| expired(i) || held(i)).count() as u64;
    let mut pruned = 0;
    while std::time::Instant::now() < deadline && pruned < want {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let q = http
            .get(&srv.at("/v1/events?action=audit.retention&limit=100"))
            .json();
        pruned = q["events"]
            .as_array()
            .unwrap()
            .iter()
            // "requested" records carry no counts.
            .filter_map(|e| e["event"]["parameters"]["pruned"].as_u64())
            .sum();
    }
    assert_eq!(
        pruned, want,
        "the schedule pruned every expired entry, and said so"
    );
    assert_eq!(http.get(&srv.at("/v1/events/0")).status, 410);
    srv.assert_healthy(&http);

    // kill -9 (perhaps in the middle of a scheduled run), then start again:
    // recovery accepts the pruned segment, and everything verifies.
    srv.kill9();
    srv.restart();
    assert_eq!(http.get(&srv.at("/v1/events/0")).status, 410);
    assert_eq!(http.get(&srv.at("/v1/events/1")).status, 200);
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let out = srv.cli(&["verify", "--data-dir", &dir, "--quiet"], &[], None);
    out.assert_ok("verify after kill -9");
    assert!(
        out.stdout.contains(&format!("pruned: {want} entries")),
        "{}",
        out.stdout
    );
}

/// Regression (issue 11.6, second half): after retention pruned some entries, `verify
/// --url` reported every entry of each bundle answering 410 as pruned (768 for 378 over
/// HTTP), while `verify --data-dir` counted the entries actually pruned. The kept entries
/// of such bundles are now read from `/log/kept/…` and re-hashed, so both count the same,
/// and the endpoint is access-checked and meta-audited like entry bundles.
#[test]
fn verify_url_and_data_dir_report_the_same_pruned_count() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("mlaudit.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let mut srv = TestServer::start_audited(&["--config", cfg.to_str().unwrap()]);
    let http = srv.http();
    srv.send_in_order(&http, &events());
    srv.wait_indexed(&http, N as u64);
    let size = srv.size(&http);
    srv.wait_checkpoint(&http, size);
    let run = http
        .post(&srv.at("/v1/retention/run"), &[], Vec::new())
        .json();
    // No hold here: the entries the other test holds expire too.
    let gone = |i: usize| expired(i) || held(i);
    let want = (0..N).filter(|&i| gone(i)).count();
    assert_eq!(run["report"]["pruned"], want, "{run}");
    assert!(
        want % 256 != 0 && want < N,
        "the test needs partly pruned bundles"
    );

    // Bundle 0 answers 410 as a whole; its kept entries are the ones not expired.
    assert_eq!(http.get(&srv.at("/log/tile/entries/000")).status, 410);
    let kept = http.get(&srv.at("/log/kept/000"));
    assert_eq!(kept.status, 200, "{}", kept.text());
    let slots = ledger::verify::parse_kept_entries(&kept.body, 256).unwrap();
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            ledger::verify::SourceSlot::Entry(e) => {
                assert!(!gone(i), "seq {i} was pruned but is served");
                let v: Value = serde_json::from_slice(e).unwrap();
                assert_eq!(v["seq"], i, "{v}");
            }
            ledger::verify::SourceSlot::Pruned(_) => assert!(gone(i), "seq {i} is missing"),
        }
    }
    // Access like entry bundles: readers without a project limit only.
    for token in [srv.token("auditor", &["churn"]), srv.token("producer", &[])] {
        let r = srv.http_as(&token).get(&srv.at("/log/kept/000"));
        assert_eq!(r.status, 403, "{}", r.text());
    }
    let auditor = srv.token("auditor", &[]);
    assert_eq!(
        srv.http_as(&auditor).get(&srv.at("/log/kept/000")).status,
        200
    );

    let dir = srv.data_dir.to_str().unwrap().to_string();
    let offline = srv.cli(&["verify", "--data-dir", &dir, "--quiet"], &[], None);
    offline.assert_ok("verify --data-dir");
    let log_url = srv.log_url();
    let online = srv.cli(
        &["verify", "--url", &log_url, "--vkey", &srv.vkey, "--quiet"],
        &[("MLAUDIT_TOKEN", &auditor)],
        None,
    );
    online.assert_ok("verify --url");
    let pruned_line = format!("pruned: {want} entries");
    for (what, out) in [("--data-dir", &offline), ("--url", &online)] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("pruned:"))
            .unwrap_or_else(|| panic!("{what}: {}", out.stdout));
        assert!(line.starts_with(&pruned_line), "{what}: {line}");
    }
    let ranges = |out: &common::CliOut| {
        out.stdout
            .lines()
            .find(|l| l.starts_with("pruned:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(ranges(&offline), ranges(&online));

    // The verifier's reads of kept entries are one bulk audit.query record of their own.
    srv.stop();
    srv.restart();
    let http = srv.http();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let bulk = loop {
        let r = http.get(&srv.at("/v1/events?action=audit.query&limit=1000"));
        let found: Vec<Value> = r.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"]["parameters"]["endpoint"] == "/log/kept/{*rest}")
            .cloned()
            .collect();
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!bulk.is_empty(), "no audit.query record of /log/kept/…");
    let reads: u64 = bulk
        .iter()
        .map(|e| e["event"]["parameters"]["bulk"]["reads"].as_u64().unwrap())
        .sum();
    // Two direct reads by the auditor, then one per partly pruned bundle by the verifier.
    assert!(reads >= 3, "{bulk:?}");
}
