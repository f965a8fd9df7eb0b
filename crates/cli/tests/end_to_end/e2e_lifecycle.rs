//! End to end: ingest, read back, prove, verify, stop, restart — with the
//! real `mlaudit` binary on a loopback port.

use crate::common;

use common::{b64, cli, entry_event_id, unb64_hash, TestServer};
use serde_json::{json, Value};

fn event(id: &str, action: &str) -> Value {
    json!({
        "id": id,
        "action": action,
        "actor": {"id": "alice@example.com", "type": "user"},
        "resource": {"type": "model", "id": "churn", "version": "7"},
        "metrics": {"accuracy": 0.93},
        "context": {"project": "churn", "environment": "prod"}
    })
}

#[test]
fn ingest_read_prove_verify_online_and_offline() {
    let mut srv = TestServer::start();
    let http = srv.http();
    assert!(srv.data_dir.join("keys/log.key").exists());

    // One event, then a batch of four: a proof for the middle one has a path.
    let r = srv.post_json(&http, &event("lifecycle-0", "model.train"));
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 1);
    let first = &v["receipts"][0];
    assert_eq!(first["seq"], 0);
    assert!(first.get("duplicate").is_none(), "{v}");
    let batch: Vec<Value> = (1..5)
        .map(|i| event(&format!("lifecycle-{i}"), "model.update"))
        .collect();
    let r = srv.post_json(&http, &Value::Array(batch));
    assert_eq!(r.status, 201, "{}", r.text());
    let receipts = r.json()["receipts"].as_array().unwrap().clone();
    let seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4],
        "a batch gets consecutive seqs in order"
    );
    let size = 5;

    // Every entry is readable, as JSON and as its exact bytes, and the leaf
    // hash of those bytes is the receipt's.
    let all: Vec<&Value> = std::iter::once(first).chain(receipts.iter()).collect();
    for (i, receipt) in all.iter().enumerate() {
        let seq = receipt["seq"].as_u64().unwrap();
        let r = http.get(&srv.at(&format!("/v1/events/{seq}")));
        assert_eq!(r.status, 200, "{}", r.text());
        let e = r.json();
        assert_eq!(e["seq"], seq);
        assert_eq!(e["leaf_hash"], receipt["leaf_hash"]);
        assert_eq!(e["event"]["id"], format!("lifecycle-{i}"));
        assert_eq!(e["event"]["outcome"], "success", "default outcome");
        assert!(e["event"]["time"].is_string(), "default time: {e}");
        assert!(e["recorded_at"].is_string());
        assert_eq!(e["source"]["principal"], "admin");

        let raw = srv.raw_entry(&http, seq);
        assert_eq!(
            b64(&tlog::leaf_hash(&raw)),
            receipt["leaf_hash"].as_str().unwrap(),
            "leaf hash of the raw entry {seq}"
        );
        let stored: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(stored["v"], 2);
        assert_eq!(stored["seq"], seq);
        assert_eq!(stored["event"], e["event"]);
    }
    let r = http.get(&srv.at("/v1/events/5"));
    assert_eq!(r.status, 404, "an entry past the end: {}", r.text());
    assert_eq!(r.json()["error"]["code"], "not_found");

    // Inclusion proofs: the CLI checks them against a pinned key; by hand too.
    let (_, cp) = srv.wait_checkpoint(&http, size);
    assert_eq!(cp.size, size);
    assert_eq!(cp.origin, srv.origin);
    let url = srv.url();
    let out = srv.cli(
        &["proof", "2", "--url", &url, "--vkey", &srv.vkey],
        &[],
        None,
    );
    out.assert_ok("mlaudit proof 2");
    assert!(
        out.stdout.contains("verified: entry 2") && out.stdout.contains(&format!("of size {size}")),
        "{}",
        out.stdout
    );
    let p = http
        .get(&srv.at(&format!("/v1/proof/inclusion?seq=3&size={size}")))
        .json();
    let proof: Vec<tlog::Hash> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unb64_hash(h.as_str().unwrap()))
        .collect();
    let leaf = unb64_hash(receipts[2]["leaf_hash"].as_str().unwrap());
    tlog::verify_inclusion(3, size, &leaf, &proof, &cp.root).expect("inclusion proof of seq 3");

    // A proof checked against another log's key is refused.
    let (_, _, other_vkey) = tlog::Signer::generate(&srv.origin).unwrap();
    let out = srv.cli(
        &["proof", "2", "--url", &url, "--vkey", &other_vkey],
        &[],
        None,
    );
    assert_ne!(out.code, 0, "a proof against a foreign key must fail");
    assert!(
        out.stderr.contains("signature"),
        "names the signature: {}",
        out.stderr
    );

    // `mlaudit info` (with MLAUDIT_URL) shows what the server announced.
    let out = srv.cli(&["info"], &[], None);
    out.assert_ok("mlaudit info");
    assert!(out.stdout.contains(&srv.vkey), "{}", out.stdout);
    assert!(out.stdout.contains(&srv.origin), "{}", out.stdout);

    // The whole log verifies over HTTP …
    let log_url = srv.log_url();
    let out = srv.cli(
        &["verify", "--url", &log_url, "--vkey", &srv.vkey, "--quiet"],
        &[],
        None,
    );
    out.assert_ok("mlaudit verify --url");
    assert!(
        out.stdout.starts_with(&format!("ok: size {size} ")),
        "{}",
        out.stdout
    );

    // … and offline after a graceful stop.
    srv.stop();
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let out = cli(&["verify", "--data-dir", &dir, "--quiet"], &[], None);
    out.assert_ok("mlaudit verify --data-dir");
    assert!(
        out.stdout.starts_with(&format!("ok: size {size} ")),
        "{}",
        out.stdout
    );
}

#[test]
fn restart_keeps_entries_checkpoint_and_idempotency() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let first: Vec<Value> = (0..40)
        .map(|i| event(&format!("restart-{i}"), "dataset.read"))
        .collect();
    let r = srv.post_json(&http, &Value::Array(first));
    assert_eq!(r.status, 201, "{}", r.text());
    let receipts = r.json()["receipts"].as_array().unwrap().clone();
    let (note_a, cp_a) = srv.wait_checkpoint(&http, 40);
    let entries_before = srv.all_entries(&http, 40);
    let vkey = srv.vkey.clone();

    srv.stop();
    // Issue 11.12: the server prints its final checkpoint on shutdown (the stderr reader
    // may take a moment to drain the pipe after the exit).
    let root = note_a.lines().nth(2).unwrap();
    let want = format!("mlaudit: stopped; final checkpoint size 40 root {root}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !srv.stderr_text().contains(&want) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(srv.stderr_text().contains(&want), "{}", srv.stderr_text());
    srv.restart();
    assert_eq!(srv.vkey, vkey, "the key survives a restart");
    assert!(
        srv.stderr_text().contains("mlaudit: entries      40"),
        "{}",
        srv.stderr_text()
    );

    // Same size, same bytes, and the checkpoint is the one signed at stop
    // (or a later one of the same tree).
    assert_eq!(srv.size(&http), 40);
    assert_eq!(srv.all_entries(&http, 40), entries_before);
    let (_, cp_restart) = srv.checkpoint(&http);
    assert_eq!(cp_restart.size, 40);
    assert_eq!(cp_restart.root, cp_a.root, "same tree, same root");
    for (i, r) in receipts.iter().enumerate() {
        let seq = r["seq"].as_u64().unwrap();
        let e = http.get(&srv.at(&format!("/v1/events/{seq}"))).json();
        assert_eq!(e["leaf_hash"], r["leaf_hash"], "seq {seq}");
        assert_eq!(e["event"]["id"], format!("restart-{i}"));
    }

    // Retrying an event after the restart returns its original receipt.
    let retry = srv.post_json(&http, &event("restart-7", "dataset.read"));
    assert_eq!(retry.status, 200, "all duplicates: {}", retry.text());
    let v = retry.json();
    assert_eq!(v["duplicates"], 1);
    assert_eq!(v["receipts"][0]["duplicate"], true);
    assert_eq!(v["receipts"][0]["seq"], receipts[7]["seq"]);
    assert_eq!(v["receipts"][0]["leaf_hash"], receipts[7]["leaf_hash"]);
    assert_eq!(srv.size(&http), 40, "a duplicate appends nothing");

    // A mixed batch: the retried id is answered as a duplicate, the new one appended.
    let mixed = json!([
        event("restart-0", "dataset.read"),
        event("restart-new", "dataset.read")
    ]);
    let r = srv.post_json(&http, &mixed);
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["receipts"][0]["duplicate"], true);
    assert_eq!(v["receipts"][0]["seq"], 0);
    assert_eq!(v["receipts"][1]["seq"], 40);
    assert!(v["receipts"][1].get("duplicate").is_none());

    // More events; the new checkpoint is consistent with the one before the restart.
    let more: Vec<Value> = (0..300)
        .map(|i| event(&format!("restart-more-{i}"), "model.update"))
        .collect();
    let r = srv.post_json(&http, &Value::Array(more));
    assert_eq!(r.status, 201, "{}", r.text());
    let (note_b, cp_b) = srv.wait_checkpoint(&http, 341);
    assert_eq!(cp_b.size, 341);
    let p = http
        .get(&srv.at(&format!(
            "/v1/proof/consistency?from={}&to={}",
            cp_a.size, cp_b.size
        )))
        .json();
    assert_eq!(p["from"], cp_a.size);
    assert_eq!(p["to"], cp_b.size);
    let proof: Vec<tlog::Hash> = p["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unb64_hash(h.as_str().unwrap()))
        .collect();
    tlog::verify_consistency(cp_a.size, cp_b.size, &cp_a.root, &cp_b.root, &proof)
        .expect("the checkpoint after the restart is consistent with the one before");
    assert_ne!(note_a, note_b);

    // The saved pre-restart checkpoint also passes `mlaudit verify --checkpoint`.
    let saved = srv.data_dir.parent().unwrap().join("checkpoint.a");
    std::fs::write(&saved, &note_a).unwrap();
    let out = srv.cli(
        &[
            "verify",
            "--url",
            &srv.log_url(),
            "--vkey",
            &srv.vkey,
            "--checkpoint",
            saved.to_str().unwrap(),
            "--quiet",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit verify --checkpoint");
    assert!(
        out.stdout.contains("consistent with the saved checkpoint"),
        "{}",
        out.stdout
    );

    // A second restart after SIGKILL keeps everything too.
    srv.kill9();
    srv.restart();
    assert_eq!(srv.size(&http), 341);
    let e = srv.raw_entry(&http, 340);
    assert_eq!(
        entry_event_id(&e).as_deref(),
        Some("restart-more-299"),
        "last entry survives SIGKILL"
    );
    let (_, cp_c) = srv.wait_checkpoint(&http, 341);
    assert_eq!(cp_c.root, cp_b.root);
    srv.stop();
}

#[test]
fn metrics_info_and_schema_endpoints() {
    let srv = TestServer::start();
    let http = srv.http();
    let r = srv.post_json(
        &http,
        &json!([event("m-1", "model.train"), event("m-2", "model.train")]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // One rejected request, to populate the rejection counter.
    let r = srv.post_json(&http, &json!({"actor": {"id": "x"}}));
    assert_eq!(r.status, 400);

    let m = http.get(&srv.at("/metrics"));
    assert_eq!(m.status, 200);
    let text = m.text();
    for name in [
        "mlaudit_events_accepted_total",
        "mlaudit_tree_size",
        "mlaudit_commit_seconds",
        "mlaudit_queue_depth",
        "mlaudit_events_rejected_total",
        "mlaudit_batch_events",
        "mlaudit_checkpoint_age_seconds",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix}:\n{text}"))
            .to_string()
    };
    assert_eq!(
        line("mlaudit_events_accepted_total "),
        "mlaudit_events_accepted_total 2"
    );
    assert_eq!(line("mlaudit_tree_size "), "mlaudit_tree_size 2");
    assert!(
        line("mlaudit_commit_seconds_count ").ends_with(" 1"),
        "{text}"
    );

    let info = http.get(&srv.at("/v1/info"));
    assert_eq!(info.status, 200);
    let info = info.json();
    assert_eq!(info["origin"], srv.origin.as_str());
    assert_eq!(info["vkey"], srv.vkey.as_str());
    assert_eq!(info["size"], 2);
    assert!(info["version"].is_string(), "{info}");

    let schema = http.get(&srv.at("/v1/schema/event"));
    assert_eq!(schema.status, 200);
    assert!(
        schema
            .headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json")),
        "{:?}",
        schema.headers
    );
    let schema = schema.json();
    let props = schema["properties"]
        .as_object()
        .expect("the schema has properties");
    for field in ["action", "actor", "id", "time", "outcome", "metrics"] {
        assert!(props.contains_key(field), "schema lacks {field}: {schema}");
    }

    let r = http.get(&srv.at("/v1/nope"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "not_found");
    srv.assert_healthy(&http);
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let srv = TestServer::start();
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let out = cli(
        &["serve", "--data-dir", &dir, "--listen", "127.0.0.1:0"],
        &[],
        None,
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("in use by another mlaudit serve"),
        "{}",
        out.stderr
    );
    srv.assert_healthy(&srv.http());
}

/// Polls `/metrics` until `mlaudit_verify_ok` is `want` (up to 20 s).
fn wait_verify_ok(srv: &TestServer, want: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let m = srv.http().get(&srv.at("/metrics")).text();
        if m.lines().any(|l| l == format!("mlaudit_verify_ok {want}")) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mlaudit_verify_ok never became {want}: {m}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Regression (issue 18.12): a flipped tile hash under the checkpoint was served until
/// someone ran `verify`. The background pass at start finds it, and `/healthz` says so.
#[test]
fn a_flipped_tile_hash_is_found_by_the_verification_at_start() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let body: String = (0..300)
        .map(|i| format!("{}\n", event(&format!("v-{i}"), "dataset.read")))
        .collect();
    let r = srv.post_ndjson(&http, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    srv.wait_checkpoint(&http, 300);
    wait_verify_ok(&srv, "1");
    assert_eq!(http.get(&srv.at("/healthz")).status, 200);
    srv.stop();
    // One bit of the first leaf hash of level 0 (inside a full tile, under the checkpoint).
    let tiles = srv.data_dir.join("ledger/tiles/0.hashes");
    let mut bytes = std::fs::read(&tiles).unwrap();
    bytes[5] ^= 0x01;
    std::fs::write(&tiles, bytes).unwrap();
    srv.restart();
    wait_verify_ok(&srv, "0");
    let h = srv.http().get(&srv.at("/healthz"));
    assert_eq!(h.status, 503, "{}", h.text());
    assert!(h.text().contains("does not verify"), "{}", h.text());
}

/// Regression (issue 11.13): a start that failed on a busy port left a new data directory
/// (key, empty log, admin token) behind.
#[test]
fn a_failed_start_leaves_no_data_directory_behind() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let out = cli(
        &[
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            &addr,
        ],
        &[],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&addr), "{}", out.stderr);
    assert!(!dir.exists(), "a failed start created {}", dir.display());
}

/// Issue 12.4: `recorded_at` never decreases in seq, so "recorded between T1 and T2" is one
/// seq range. Before, each request stamped the time it was prepared, and requests prepared
/// concurrently were sequenced in another order. Eight clients send at once, the server
/// is killed with SIGKILL and started again (the next stamp resumes after the last stored
/// one), and they send again; every
/// stored entry, read through the entry bundles, is in order. The clock stepping back is
/// the unit test `stamp::tests::a_clock_that_steps_back_repeats_the_last_time`.
#[test]
fn recorded_at_never_decreases_in_seq_under_concurrent_ingest_and_restarts() {
    let mut srv = TestServer::start();
    let send_round = |srv: &TestServer, round: usize| {
        std::thread::scope(|s| {
            for client in 0..8 {
                s.spawn(move || {
                    let http = srv.http();
                    for k in 0..25 {
                        let body: String = (0..1 + k % 4)
                            .map(|i| {
                                format!(
                                    "{}\n",
                                    event(&format!("r{round}-c{client}-{k}-{i}"), "model.train")
                                )
                            })
                            .collect();
                        let r = srv.post_ndjson(&http, &body);
                        assert_eq!(r.status, 201, "{}", r.text());
                    }
                });
            }
        });
    };
    send_round(&srv, 0);
    srv.kill9();
    srv.restart();
    send_round(&srv, 1);
    let http = srv.http();
    let size = srv.size(&http);
    // Each client sends 25 requests of 1 to 4 events: 61 events, 976 in all (and the
    // server's own records beside them).
    assert!(size >= 2 * 8 * 61, "{size}");
    let times: Vec<chrono::DateTime<chrono::Utc>> = srv
        .all_entries(&http, size)
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_slice(e).unwrap();
            chrono::DateTime::parse_from_rfc3339(v["recorded_at"].as_str().unwrap())
                .unwrap()
                .into()
        })
        .collect();
    for (seq, w) in times.windows(2).enumerate() {
        assert!(
            w[0] <= w[1],
            "recorded_at goes back from seq {seq} to {}: {w:?}",
            seq + 1
        );
    }
}

/// Issue 12.2: idempotency reads the index, so a data directory of an earlier version
/// loses its `dedup.sqlite` on start (it was derived), and its events are still found as
/// duplicates, with their original receipts, through the index.
#[test]
fn the_dedup_database_of_earlier_versions_is_removed_and_ids_are_found_in_the_index() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let body: String = (0..20)
        .map(|i| format!("{}\n", event(&format!("old-{i}"), "dataset.read")))
        .collect();
    let first = srv.post_ndjson(&http, &body);
    assert_eq!(first.status, 201, "{}", first.text());
    srv.stop();
    for name in ["dedup.sqlite", "dedup.sqlite-wal"] {
        std::fs::write(srv.data_dir.join(name), b"an earlier version's file").unwrap();
    }
    srv.restart();
    let http = srv.http();
    for name in ["dedup.sqlite", "dedup.sqlite-wal"] {
        assert!(!srv.data_dir.join(name).exists(), "{name} is still there");
    }
    assert!(
        srv.stderr_text()
            .contains("removed the idempotency database of an earlier version"),
        "{}",
        srv.stderr_text()
    );
    let again = srv.post_ndjson(&http, &body);
    assert_eq!(again.status, 200, "{}", again.text());
    let (a, b) = (first.json(), again.json());
    for (x, y) in a["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["receipts"].as_array().unwrap())
    {
        assert_eq!(y["duplicate"], true);
        assert_eq!((&x["seq"], &x["leaf_hash"]), (&y["seq"], &y["leaf_hash"]));
    }
}
