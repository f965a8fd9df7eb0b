//! End to end crash test: concurrent producers, SIGKILL in the middle,
//! restart. Nothing acknowledged is lost or duplicated, the log stays
//! consistent with what it published before the crash, and it verifies.

use crate::common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{b64, cli, entry_event_id, unb64_hash, Http, TestServer};
use serde_json::{json, Value};

const CLIENTS: usize = 4;
const BATCH: usize = 20;
/// How long the clients send in total; the kill comes about half-way.
const LOAD: Duration = Duration::from_millis(2000);
const KILL_AFTER: Duration = Duration::from_millis(1000);

/// One request a client made.
struct Sent {
    ids: Vec<String>,
    body: String,
    /// Receipts `(seq, leaf_hash)` if the server acknowledged the batch.
    acked: Option<Vec<(u64, String)>>,
    /// Status of a non-2xx answer, or the transport error.
    failure: Option<String>,
}

fn batch_body(client: usize, k: usize) -> (Vec<String>, String) {
    let mut ids = Vec::with_capacity(BATCH);
    let mut body = String::new();
    for j in 0..BATCH {
        let id = format!("crash-{client}-{k:05}-{j:02}");
        let ev = json!({
            "id": id,
            "action": "dataset.read",
            "actor": {"id": format!("job-{client}@example.com"), "type": "service"},
            "resource": {"type": "dataset", "id": format!("ds-{}", (k * BATCH + j) % 313)},
            "parameters": {"rows": k * BATCH + j},
            "context": {"project": "crash-test", "sequence": k * BATCH + j},
        });
        body.push_str(&serde_json::to_string(&ev).unwrap());
        body.push('\n');
        ids.push(id);
    }
    (ids, body)
}

fn client_loop(client: usize, http: Http, url: String, stop: Arc<AtomicBool>) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut k = 0;
    while !stop.load(Ordering::SeqCst) {
        let (ids, body) = batch_body(client, k);
        k += 1;
        let r = http.try_post(
            &url,
            &[("content-type", "application/x-ndjson")],
            body.clone().into_bytes(),
        );
        let (acked, failure) = match r {
            Ok(r) if r.status == 201 => {
                let v = r.json();
                let receipts = v["receipts"]
                    .as_array()
                    .expect("receipts")
                    .iter()
                    .map(|x| {
                        assert!(x.get("duplicate").is_none(), "new ids, no duplicates: {v}");
                        (
                            x["seq"].as_u64().unwrap(),
                            x["leaf_hash"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect::<Vec<_>>();
                assert_eq!(receipts.len(), BATCH);
                (Some(receipts), None)
            }
            Ok(r) => (None, Some(format!("HTTP {}: {}", r.status, r.text()))),
            Err(e) => (None, Some(format!("transport: {e}"))),
        };
        let failed = failure.is_some();
        out.push(Sent {
            ids,
            body,
            acked,
            failure,
        });
        if failed {
            // The server is down: do not spin.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    out
}

#[test]
fn sigkill_under_concurrent_load_keeps_every_acknowledged_event_exactly_once() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = srv.at("/v1/events");
            let http = srv.http();
            let stop = stop.clone();
            std::thread::spawn(move || client_loop(c, http, url, stop))
        })
        .collect();

    // Watch checkpoints like a monitor would, then pull the plug.
    let mut last_cp: Option<(String, tlog::Checkpoint)> = None;
    loop {
        if let Ok(r) = http.try_get(&srv.at("/log/checkpoint")) {
            if r.status == 200 {
                let note = r.text();
                let cp =
                    tlog::open_checkpoint(&note, &srv.verifier()).expect("checkpoint verifies");
                if let Some((_, prev)) = &last_cp {
                    assert!(cp.size >= prev.size, "checkpoints never shrink");
                }
                last_cp = Some((note, cp));
            }
        }
        let covered = last_cp.as_ref().is_some_and(|(_, c)| c.size > 0);
        if started.elapsed() >= KILL_AFTER && covered {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no non-empty checkpoint under load within 20 s"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
    srv.kill9();
    let killed_at = started.elapsed();
    std::thread::sleep(LOAD.saturating_sub(killed_at));
    stop.store(true, Ordering::SeqCst);
    let sent: Vec<Sent> = clients
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    let (cp_note, cp_before) = last_cp.unwrap();

    let acked: Vec<(&String, u64, &String)> = sent
        .iter()
        .filter_map(|s| s.acked.as_ref().map(|r| (s, r)))
        .flat_map(|(s, r)| {
            s.ids
                .iter()
                .zip(r)
                .map(|(id, (seq, leaf))| (id, *seq, leaf))
        })
        .collect();
    let failed = sent.iter().filter(|s| s.acked.is_none()).count();
    eprintln!(
        "crash test: {} requests, {} events acknowledged, {failed} requests failed, killed at {killed_at:?}, last checkpoint size {}",
        sent.len(),
        acked.len(),
        cp_before.size
    );
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    for s in &sent {
        if let Some(f) = &s.failure {
            assert!(
                f.starts_with("transport"),
                "only the crash may fail requests, got {f}"
            );
        }
    }
    // Receipts never share a seq.
    let mut seqs: Vec<u64> = acked.iter().map(|a| a.1).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), acked.len(), "two receipts with one seq");

    srv.restart();
    let size_recovered = srv.size(&http);
    let max_acked = *seqs.last().unwrap();
    assert!(
        size_recovered > max_acked,
        "recovered {size_recovered} entries, but seq {max_acked} was acknowledged"
    );
    assert!(size_recovered >= cp_before.size);

    // Every acknowledged event is at its seq, with its leaf hash, once.
    let entries = srv.all_entries(&http, size_recovered);
    let mut where_: HashMap<String, Vec<u64>> = HashMap::new();
    for (seq, e) in entries.iter().enumerate() {
        let id = entry_event_id(e).expect("every test event has an id");
        where_.entry(id).or_default().push(seq as u64);
    }
    for (id, seqs) in &where_ {
        assert_eq!(seqs.len(), 1, "{id} is stored more than once: {seqs:?}");
    }
    for (i, (id, seq, leaf)) in acked.iter().enumerate() {
        let e = &entries[*seq as usize];
        assert_eq!(entry_event_id(e).as_deref(), Some(id.as_str()), "seq {seq}");
        assert_eq!(&b64(&tlog::leaf_hash(e)), *leaf, "leaf hash of seq {seq}");
        // And through the entry endpoint (a sample: every 10th and the last).
        if i % 10 == 0 || i + 1 == acked.len() {
            let v = http.get(&srv.at(&format!("/v1/events/{seq}"))).json();
            assert_eq!(v["event"]["id"], id.as_str());
            assert_eq!(v["leaf_hash"], leaf.as_str());
        }
    }

    // The recovered log's checkpoint is consistent with the last one
    // published before the crash.
    let (_, cp_after) = srv.wait_checkpoint(&http, size_recovered);
    assert_eq!(cp_after.size, size_recovered);
    check_consistency(&srv, &http, &cp_before, &cp_after);

    // Resend everything, the failed requests too (merged into big requests).
    let mut answers: Vec<Value> = Vec::with_capacity(sent.len());
    for chunk in sent.chunks(1000 / BATCH) {
        let body: String = chunk.iter().map(|s| s.body.as_str()).collect();
        let r = srv.post_ndjson(&http, &body);
        assert!(r.status == 200 || r.status == 201, "resend: {}", r.text());
        answers.extend(r.json()["receipts"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(answers.len(), sent.len() * BATCH);
    let mut recovered_unacked = 0;
    for (s, answer) in sent.iter().zip(answers.chunks(BATCH)) {
        match &s.acked {
            Some(receipts) => {
                for ((seq, leaf), a) in receipts.iter().zip(answer) {
                    assert_eq!(a["duplicate"], true, "an acknowledged event resent: {a}");
                    assert_eq!(a["seq"], *seq);
                    assert_eq!(a["leaf_hash"], leaf.as_str());
                }
            }
            None => {
                // A failed batch was stored whole or not at all.
                let dups = answer.iter().filter(|a| a["duplicate"] == true).count();
                assert!(
                    dups == 0 || dups == BATCH,
                    "a batch was partly stored: {dups} of {BATCH} ({:?})",
                    s.ids.first()
                );
                if dups == BATCH {
                    recovered_unacked += 1;
                }
            }
        }
    }
    eprintln!("crash test: {recovered_unacked} unacknowledged batches had been stored");
    let final_size = srv.size(&http);
    assert_eq!(
        final_size,
        (sent.len() * BATCH) as u64,
        "after the resend every event is stored exactly once"
    );
    let entries = srv.all_entries(&http, final_size);
    let mut ids: Vec<String> = entries.iter().map(|e| entry_event_id(e).unwrap()).collect();
    ids.sort();
    let mut want: Vec<String> = sent.iter().flat_map(|s| s.ids.iter().cloned()).collect();
    want.sort();
    assert_eq!(ids, want);

    let (_, cp_final) = srv.wait_checkpoint(&http, final_size);
    check_consistency(&srv, &http, &cp_before, &cp_final);

    // The pre-crash checkpoint also passes the verifier's saved-checkpoint check.
    srv.stop();
    let saved = srv
        .data_dir
        .parent()
        .unwrap()
        .join("checkpoint.before-crash");
    std::fs::write(&saved, &cp_note).unwrap();
    let out = cli(
        &[
            "verify",
            "--data-dir",
            srv.data_dir.to_str().unwrap(),
            "--checkpoint",
            saved.to_str().unwrap(),
            "--quiet",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit verify --data-dir after the crash");
    assert!(
        out.stdout.starts_with(&format!("ok: size {final_size} "))
            && out.stdout.contains("consistent with the saved checkpoint"),
        "{}",
        out.stdout
    );
}

fn check_consistency(
    srv: &TestServer,
    http: &Http,
    old: &tlog::Checkpoint,
    new: &tlog::Checkpoint,
) {
    let r = http.get(&srv.at(&format!(
        "/v1/proof/consistency?from={}&to={}",
        old.size, new.size
    )));
    assert_eq!(r.status, 200, "{}", r.text());
    let proof: Vec<tlog::Hash> = r.json()["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| unb64_hash(h.as_str().unwrap()))
        .collect();
    tlog::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).unwrap_or_else(
        |e| {
            panic!(
            "checkpoint {} is not consistent with checkpoint {} published before the crash: {e}",
            new.size, old.size
        )
        },
    );
}

#[test]
fn sigterm_under_load_finishes_in_flight_batches_and_checkpoints_everything() {
    let mut srv = TestServer::start();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = srv.at("/v1/events");
            let http = srv.http();
            let stop = stop.clone();
            std::thread::spawn(move || client_loop(c, http, url, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    srv.stop(); // SIGTERM while requests are in flight; exits 0
    stop.store(true, Ordering::SeqCst);
    let sent: Vec<Sent> = clients
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    let acked: Vec<(String, u64)> = sent
        .iter()
        .filter_map(|s| s.acked.as_ref().map(|r| (s, r)))
        .flat_map(|(s, r)| s.ids.iter().cloned().zip(r.iter().map(|x| x.0)))
        .collect();
    assert!(!acked.is_empty());

    // The final checkpoint covers every stored entry: nothing is left for
    // the next start to cover.
    let out = cli(
        &[
            "verify",
            "--data-dir",
            srv.data_dir.to_str().unwrap(),
            "--quiet",
        ],
        &[],
        None,
    );
    out.assert_ok("mlaudit verify --data-dir after SIGTERM");
    assert!(
        !out.stdout.contains("not covered"),
        "the final checkpoint must cover everything: {}",
        out.stdout
    );
    let size: u64 = out
        .stdout
        .strip_prefix("ok: size ")
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(size >= acked.len() as u64);

    srv.restart();
    let http = srv.http();
    assert_eq!(srv.size(&http), size);
    let (_, cp) = srv.checkpoint(&http);
    assert_eq!(cp.size, size, "the checkpoint at start is the final one");
    let entries = srv.all_entries(&http, size);
    for (id, seq) in &acked {
        assert_eq!(
            entry_event_id(&entries[*seq as usize]).as_deref(),
            Some(id.as_str())
        );
    }
    srv.stop();
}
