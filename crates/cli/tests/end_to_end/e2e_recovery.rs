//! Recovery of a data directory an operator has put back together: `ledger/` restored
//! from a backup beside newer derived stores (issue 18.2), and a deleted checkpoint
//! (issue 18.11). Real server, real files, loopback HTTP.

use crate::common;

use std::collections::HashSet;

use common::{cli, copy_dir, gen_events, ids_of, unb64_hash, Http, TestServer};
use serde_json::Value;

/// Every event id a query returns, following `next` cursors.
fn search_ids(srv: &TestServer, http: &Http, query: &str) -> Vec<String> {
    common::all_hits(srv, http, query)
        .iter()
        .map(|e| e["event"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// Checks each receipt's inclusion proof against the server's current checkpoint.
fn assert_receipts_verify(srv: &TestServer, http: &Http, receipts: &[Value]) {
    let last = receipts.iter().map(|r| r["seq"].as_u64().unwrap()).max();
    let (_, cp) = srv.wait_checkpoint(http, last.map_or(0, |s| s + 1));
    for r in receipts {
        let seq = r["seq"].as_u64().unwrap();
        assert!(
            seq < cp.size,
            "receipt for seq {seq} past the log size {}",
            cp.size
        );
        let p = http
            .get(&srv.at(&format!("/v1/proof/inclusion?seq={seq}&size={}", cp.size)))
            .json();
        let proof: Vec<tlog::Hash> = p["proof"]
            .as_array()
            .unwrap_or_else(|| panic!("no proof for seq {seq}: {p}"))
            .iter()
            .map(|h| unb64_hash(h.as_str().unwrap()))
            .collect();
        let leaf = unb64_hash(r["leaf_hash"].as_str().unwrap());
        tlog::verify_inclusion(seq, cp.size, &leaf, &proof, &cp.root)
            .unwrap_or_else(|e| panic!("the receipt of seq {seq} does not verify: {e}"));
    }
}

#[test]
fn a_restored_ledger_backup_with_newer_derived_stores_loses_no_events() {
    // Regression (issue 18.2): with ledger/ restored from a backup and the newer derived
    // stores kept (then dedup.sqlite and index.sqlite; idempotency reads the index since
    // issue 12.2), the server started without a word, answered the lost events "duplicate"
    // with receipts for seqs that do not exist (so they were never stored again), and
    // search answered 500.
    let mut srv = TestServer::start();
    let http = srv.http();
    let old = gen_events(40, 181);
    srv.send_in_order(&http, &old);
    let backup_size = srv.size(&http);
    srv.stop();
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&srv.data_dir.join("ledger"), &backup.path().join("ledger"));

    srv.restart();
    let http = srv.http();
    let lost = gen_events(25, 182);
    let r = srv.post_ndjson(&http, &lost);
    assert_eq!(r.status, 201, "{}", r.text());
    let newer_size = srv.size(&http);
    assert!(newer_size > backup_size);
    srv.wait_indexed(&http, newer_size);
    srv.stop(); // the final index catch-up: index.sqlite now covers the lost events

    // The operator restores ledger/ and keeps the rest of the data directory.
    let ledger_dir = srv.data_dir.join("ledger");
    std::fs::remove_dir_all(&ledger_dir).unwrap();
    copy_dir(&backup.path().join("ledger"), &ledger_dir);
    srv.restart();
    let http = srv.http();
    assert_eq!(srv.size(&http), backup_size);
    // Search works at once, and finds exactly what the ledger holds.
    let found: HashSet<String> = search_ids(&srv, &http, "limit=100").into_iter().collect();
    let old_ids: HashSet<String> = ids_of(&old).into_iter().collect();
    assert_eq!(
        found, old_ids,
        "the index holds the restored ledger, no more"
    );

    // The lost events, sent again, are stored as new, with receipts that verify.
    let r = srv.post_ndjson(&http, &lost);
    assert_eq!(
        r.status,
        201,
        "the lost events are stored again: {}",
        r.text()
    );
    let v = r.json();
    let receipts = v["receipts"].as_array().unwrap().clone();
    assert_eq!(receipts.len(), ids_of(&lost).len());
    for (i, rc) in receipts.iter().enumerate() {
        assert!(
            rc.get("duplicate").is_none(),
            "receipt {i} is a duplicate: {v}"
        );
        assert_eq!(rc["seq"].as_u64().unwrap(), backup_size + i as u64);
    }
    assert_receipts_verify(&srv, &http, &receipts);
    srv.wait_indexed(&http, backup_size + receipts.len() as u64);
    let found: HashSet<String> = search_ids(&srv, &http, "limit=100").into_iter().collect();
    for id in ids_of(&lost) {
        assert!(found.contains(&id), "{id} is found again");
    }

    // The repair said what it did.
    let log = srv.stderr_text();
    assert!(
        log.contains("index is ahead of the ledger"),
        "the index rebuild is logged:\n{log}"
    );

    // Sent once more, they are duplicates with those same receipts; the old ones too.
    let r = srv.post_ndjson(&http, &lost);
    assert_eq!(r.status, 200, "{}", r.text());
    let again = r.json()["receipts"].as_array().unwrap().clone();
    for (a, b) in again.iter().zip(&receipts) {
        assert_eq!(a["duplicate"], true);
        assert_eq!((&a["seq"], &a["leaf_hash"]), (&b["seq"], &b["leaf_hash"]));
    }
    let r = srv.post_ndjson(&http, &old);
    assert_eq!(r.status, 200, "{}", r.text());
    let dup = r.json()["receipts"].as_array().unwrap().clone();
    assert!(dup.iter().all(|d| d["duplicate"] == true));
    assert_receipts_verify(&srv, &http, &dup);

    // And the same holds after another restart (the repair was durable).
    let size = srv.size(&http);
    srv.stop();
    srv.restart();
    let http = srv.http();
    assert_eq!(srv.size(&http), size);
    let r = srv.post_ndjson(&http, &lost);
    assert_eq!(r.status, 200, "{}", r.text());
    let out = cli(
        &["verify", "--data-dir", srv.data_dir.to_str().unwrap()],
        &[],
        None,
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn a_deleted_checkpoint_is_refused_unless_the_recovery_flag_is_given() {
    // Regression (issue 18.11): a deleted ledger/checkpoint was silently re-signed over
    // whatever the segments held.
    let mut srv = TestServer::start();
    let http = srv.http();
    srv.send_in_order(&http, &gen_events(12, 1811));
    let size = srv.size(&http);
    srv.stop();
    let checkpoint = srv.data_dir.join("ledger").join("checkpoint");
    std::fs::remove_file(&checkpoint).unwrap();
    let dir = srv.data_dir.to_str().unwrap().to_string();

    let out = cli(
        &["serve", "--data-dir", &dir, "--listen", "127.0.0.1:0"],
        &[],
        None,
    );
    assert_ne!(out.code, 0, "must refuse: {}", out.stderr);
    let msg = &out.stderr;
    assert!(
        msg.contains(&format!("{} is missing", checkpoint.display())),
        "{msg}"
    );
    assert!(msg.contains(&format!("holds {size} entries")), "{msg}");
    assert!(msg.contains("--recover-missing-checkpoint"), "{msg}");
    assert!(msg.contains("nothing was changed"), "{msg}");
    assert!(!checkpoint.exists(), "a refused start signs nothing");

    // With the flag: it starts, says so at warn level, and records audit.recovery.
    srv.restart_with(&["--no-meta-audit", "--recover-missing-checkpoint"]);
    let http = srv.http();
    let log = srv.stderr_text();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("recover-missing-checkpoint"), "{log}");
    assert!(log.contains("the checkpoint is missing"), "{log}");
    assert_eq!(srv.size(&http), size + 1, "the audit.recovery record");
    let r = http.get(&srv.at(&format!("/v1/events/{size}")));
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json();
    assert_eq!(e["event"]["action"], "audit.recovery", "{e}");
    assert_eq!(e["event"]["parameters"]["entries_signed_over"], size, "{e}");
    srv.wait_checkpoint(&http, size + 1);
    srv.stop();
    assert!(checkpoint.exists());

    // The next start, without the flag, is a normal one.
    srv.restart_with(&["--no-meta-audit"]);
    let http = srv.http();
    assert_eq!(srv.size(&http), size + 1);
    srv.assert_healthy(&http);
}

#[test]
fn a_receipt_is_never_answered_for_an_entry_the_ledger_does_not_hold() {
    // The answer-time guard of issue 18.2: even a derived store that the start-up check
    // cannot catch (its high-water mark is not ahead; rows were changed) never makes the
    // server answer a receipt the ledger does not hold. Since issue 12.2 idempotency reads
    // the index: here event 3's id hash is moved to the row of seq 7 (so event 3's lookup
    // names seq 7, and event 7's finds nothing), and event 5's row points at a seq past
    // the log. A candidate seq is confirmed against the entry it names, so no retry gets a
    // receipt for another entry: the duplicates are missed and stored again (a damaged
    // index costs a second copy, never a wrong answer).
    let mut srv = TestServer::start();
    let http = srv.http();
    let events = gen_events(10, 18201);
    srv.send_in_order(&http, &events);
    let size = srv.size(&http);
    srv.wait_indexed(&http, size);
    srv.stop();
    {
        let db = rusqlite::Connection::open(srv.data_dir.join("index.sqlite")).unwrap();
        let changed = db
            .execute(
                "UPDATE events SET id_hash = (SELECT id_hash FROM events WHERE seq = 3) \
                 WHERE seq = 7",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
        let changed = db
            .execute("UPDATE events SET id_hash = NULL WHERE seq = 3", [])
            .unwrap();
        assert_eq!(changed, 1);
        let changed = db
            .execute("UPDATE events SET seq = 999999 WHERE seq = 5", [])
            .unwrap();
        assert_eq!(changed, 1);
    }
    srv.restart();
    let http = srv.http();
    let lines: Vec<&str> = events.lines().filter(|l| !l.trim().is_empty()).collect();
    let ids = ids_of(&events);
    for (next, bad) in (size..).zip([3, 5, 7]) {
        let r = srv.post_ndjson(&http, &format!("{}\n", lines[bad]));
        assert_eq!(r.status, 201, "event {bad} is stored again: {}", r.text());
        let receipts = r.json()["receipts"].as_array().unwrap().clone();
        assert_eq!(receipts[0]["seq"], next, "{}", r.text());
        assert!(receipts[0].get("duplicate").is_none(), "{}", r.text());
        assert_receipts_verify(&srv, &http, &receipts);
        let entry = srv.raw_entry(&http, next);
        assert_eq!(
            common::entry_event_id(&entry).as_deref(),
            Some(ids[bad].as_str()),
            "the receipt names the entry that holds event {bad}"
        );
    }
    // An intact row still answers a true duplicate with the receipt of its entry.
    for good in [0, 9] {
        let r = srv.post_ndjson(&http, &format!("{}\n", lines[good]));
        assert_eq!(r.status, 200, "event {good} is a duplicate: {}", r.text());
        let receipts = r.json()["receipts"].as_array().unwrap().clone();
        assert_eq!(receipts[0]["duplicate"], true);
        assert_eq!(receipts[0]["seq"], good, "{}", r.text());
        assert_receipts_verify(&srv, &http, &receipts);
    }
    assert_eq!(srv.size(&http), size + 3);
}
