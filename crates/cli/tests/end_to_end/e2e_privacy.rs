//! Privacy end to end (issue 6, docs/privacy.md): no cleartext identifier reaches the data
//! directory, queries by cleartext find pseudonymized events, the cleartext view and the
//! subject export restore sealed values and are recorded, erasure destroys the key and
//! leaves every proof valid, secrets are redacted at any depth, and a wrong master key
//! refuses the start.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use common::{b64, Http, TestServer};
use serde_json::{json, Value};

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// The decompressed payloads of every frame of a ledger segment (docs/storage.md section
/// 2: a 16-byte header, then frames of a 36-byte header and a payload; codec 1 is zstd).
fn segment_payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&bytes[..6], b"MLASEG", "a segment header");
    let mut out = Vec::new();
    let mut at = 16;
    while at + 36 <= bytes.len() {
        let h = &bytes[at..at + 36];
        assert_eq!(&h[..4], b"MLAF", "a frame at offset {at}");
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap()) as usize;
        let (raw_len, stored_len) = (u32_at(20), u32_at(24));
        let payload = &bytes[at + 36..at + 36 + stored_len];
        out.push(match h[4] {
            0 => payload.to_vec(),
            1 => zstd::bulk::decompress(payload, raw_len).expect("a zstd frame"),
            c => panic!("unknown codec {c}"),
        });
        at += 36 + stored_len;
    }
    assert_eq!(at, bytes.len(), "frames end at the end of the segment");
    out
}

/// Every byte string a data directory holds: each file's raw bytes, plus the decompressed
/// frames of ledger segments.
fn data_dir_blobs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let name = f.display().to_string();
        if name.ends_with(".seg") {
            for (i, p) in segment_payloads(&bytes).into_iter().enumerate() {
                out.push((format!("{name} frame {i}"), p));
            }
        }
        out.push((name, bytes));
    }
    out
}

/// The needles found in `blobs`, with where (a 4-byte prefix table keeps it linear).
fn find_all(blobs: &[(String, Vec<u8>)], needles: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut by_prefix: HashMap<&[u8], Vec<&str>> = HashMap::new();
    for n in needles {
        assert!(n.len() >= 4, "needle {n:?} too short");
        by_prefix.entry(&n.as_bytes()[..4]).or_default().push(n);
    }
    let mut found = Vec::new();
    for (name, bytes) in blobs {
        for i in 0..bytes.len().saturating_sub(3) {
            if let Some(cands) = by_prefix.get(&bytes[i..i + 4]) {
                for n in cands {
                    if bytes[i..].starts_with(n.as_bytes()) {
                        found.push((name.clone(), n.to_string()));
                    }
                }
            }
        }
    }
    found
}

fn is_pseudonym(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with("hmac:1:") && s.len() == "hmac:1:".len() + 22)
}

fn query(srv: &TestServer, http: &Http, q: &str) -> Vec<Value> {
    let r = http.get(&srv.at(&format!("/v1/events?{q}")));
    assert_eq!(r.status, 200, "{q}: {}", r.text());
    r.json()["events"].as_array().unwrap().clone()
}

/// The `audit.*` records of the log, oldest first.
fn audit_records(srv: &TestServer, http: &Http, action: &str) -> Vec<Value> {
    let size = srv.size(http);
    srv.wait_indexed(http, size);
    query(srv, http, &format!("action={action}&order=asc&limit=1000"))
}

/// A privacy officer of `srv`: a client and the token (for CLI runs). Cleartext views,
/// subject exports and erasure are reserved to this role (docs/security.md); ingest and
/// pseudonymized reads go through the admin client `srv.http()`.
fn privacy_officer(srv: &TestServer) -> (Http, String) {
    let token = srv.token("privacy_officer", &[]);
    (srv.http_as(&token), token)
}

#[test]
fn no_cleartext_identifier_of_the_generated_events_reaches_the_data_dir() {
    // Every read recorded (as in production): the records of reads that name people must
    // not carry them in cleartext either.
    let mut srv = TestServer::start_audited(&[]);
    let http = srv.http();
    let ndjson = common::gen_events(3000, 61);
    let mut sent = srv.send_in_order(&http, &ndjson);
    // People named without an e-mail address, which no value pattern would catch.
    let plain = json!({"id": "plain-1", "action": "user.create", "actor": {"id": "u-4711"},
                       "resource": {"type": "user", "id": "u-4712"}});
    assert_eq!(srv.post_json(&http, &plain).status, 201);
    sent.push(plain);
    srv.wait_indexed(&http, sent.len() as u64);
    for path in [
        "/v1/events?actor=u-4711",
        "/v1/events?resource_type=user&resource_id=u-4712",
        "/v1/events?related=user:u-4712",
        "/v1/resources/user/u-4712",
        "/v1/lineage?type=user&id=u-4712",
    ] {
        let r = http.get(&srv.at(path));
        assert!(r.status == 200 || r.status == 404, "{path}: {}", r.text());
    }
    // A cleartext query and a subject export add audit.* records, and the index and
    // dedup store hold everything, before the scan.
    let email = sent
        .iter()
        .find_map(|e| e["actor"]["id"].as_str().filter(|a| a.contains('@')))
        .unwrap()
        .to_string();
    let (officer, _) = privacy_officer(&srv);
    let r = officer.get(&srv.at(&format!("/v1/events?actor={email}&cleartext=true&limit=5")));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = officer.get(&srv.at("/v1/subjects/u-4711/events"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["events"][0]["event"]["actor"]["id"], "u-4711");
    srv.stop();

    let mut needles = BTreeSet::new();
    for e in &sent {
        for v in [
            &e["actor"]["id"],
            &e["actor"]["ip"],
            &e["parameters"]["with"],
        ] {
            if let Some(s) = v
                .as_str()
                .filter(|s| s.contains('@') || s.starts_with("10."))
            {
                needles.insert(s.to_string());
            }
        }
        if e["resource"]["type"] == "user" {
            needles.insert(e["resource"]["id"].as_str().unwrap().to_string());
        }
    }
    needles.insert("u-4711".to_string());
    assert!(needles.contains("u-4712"), "a user resource is a needle");
    assert!(
        needles.len() > 500,
        "the generator's people: {}",
        needles.len()
    );
    let blobs = data_dir_blobs(&srv.data_dir);
    assert!(
        blobs.iter().any(|(n, _)| n.contains("frame")),
        "segments decoded"
    );
    let leaks = find_all(&blobs, &needles);
    assert!(
        leaks.is_empty(),
        "cleartext identifiers on disk: {:?}",
        &leaks[..leaks.len().min(10)]
    );

    // The scan sees what is stored in clear: event ids are in the decompressed frames.
    let ids: BTreeSet<String> = sent
        .iter()
        .take(50)
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let seen: BTreeSet<String> = find_all(&blobs, &ids).into_iter().map(|(_, n)| n).collect();
    assert_eq!(seen, ids, "the scanner finds stored strings");
}

/// Issue 11.9: auditors saw only `hmac:…` for everyone, service accounts included. By
/// default a service stays in cleartext (search, stats and the stored entry), a person is
/// pseudonymized, and a search by a cleartext id finds either.
#[test]
fn services_are_named_in_cleartext_persons_pseudonymized_by_default() {
    let srv = TestServer::start();
    let http = srv.http();
    for (i, actor) in [
        json!({"id": "svc-feature-store", "type": "service", "ip": "10.3.3.3"}),
        json!({"id": "carol@example.com", "type": "user", "ip": "10.4.4.4"}),
        json!({"id": "dan"}),
    ]
    .into_iter()
    .enumerate()
    {
        let ev = json!({"id": format!("svc-{i}"), "action": "dataset.read", "actor": actor,
                        "resource": {"type": "dataset", "id": "ds-1"}});
        assert_eq!(srv.post_json(&http, &ev).status, 201);
    }
    srv.wait_indexed(&http, 3);
    let auditor = srv.http_as(&srv.token("auditor", &[]));
    let all = query(&srv, &auditor, "resource_id=ds-1&order=asc");
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["event"]["actor"]["id"], "svc-feature-store");
    assert_eq!(all[0]["event"]["actor"]["ip"], "10.3.3.3");
    assert!(all[0]["event"].get("sealed").is_none(), "{}", all[0]);
    assert!(is_pseudonym(&all[1]["event"]["actor"]["id"]), "{}", all[1]);
    assert!(is_pseudonym(&all[1]["event"]["actor"]["ip"]), "{}", all[1]);
    assert!(
        is_pseudonym(&all[2]["event"]["actor"]["id"]),
        "no type: a person"
    );
    for id in ["svc-feature-store", "carol@example.com", "dan"] {
        let found = query(&srv, &auditor, &format!("actor={id}"));
        assert_eq!(found.len(), 1, "actor={id}: {found:?}");
    }
    let r = auditor.get(&srv.at("/v1/stats?by=actor"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("svc-feature-store"), "{}", r.text());
    assert!(!r.text().contains("carol@example.com"), "{}", r.text());
}

#[test]
fn pseudonyms_by_default_cleartext_on_request_and_lookup_by_cleartext() {
    let srv = TestServer::start();
    let http = srv.http();
    let events = [
        json!({"id": "p1", "action": "model.train", "actor": {"id": "alice@example.com", "ip": "10.9.8.7"}}),
        json!({"id": "p2", "action": "dataset.share", "actor": {"id": "bob@example.com"},
               "resource": {"type": "dataset", "id": "customers"},
               "parameters": {"with": "alice@example.com", "access": "read"}}),
        json!({"id": "p3", "action": "user.create", "actor": {"id": "bob@example.com"},
               "resource": {"type": "user", "id": "carol@example.com"}}),
        json!({"id": "p4", "action": "model.train", "actor": {"id": "alice@example.com"}}),
        json!({"id": "p5", "action": "permission.grant", "actor": {"id": "svc-iam"},
               "resource": {"type": "dataset", "id": "customers"},
               "related": [{"type": "user", "id": "carol@example.com", "relation": "grantee"}]}),
    ];
    let r = srv.post_json(&http, &json!(events));
    assert_eq!(r.status, 201, "{}", r.text());
    srv.wait_indexed(&http, 5);
    let linked = query(&srv, &http, "related=user:carol@example.com");
    assert_eq!(linked.len(), 1, "a user link looked up by cleartext");
    assert!(is_pseudonym(&linked[0]["event"]["related"][0]["id"]));

    // Stored and queried: pseudonyms, deterministic per identifier.
    let alice = query(&srv, &http, "actor=alice@example.com&order=asc");
    assert_eq!(alice.len(), 2, "{alice:?}");
    let p_alice = alice[0]["event"]["actor"]["id"].clone();
    assert!(is_pseudonym(&p_alice), "{p_alice}");
    assert_eq!(alice[1]["event"]["actor"]["id"], p_alice);
    assert!(is_pseudonym(&alice[0]["event"]["actor"]["ip"]));
    let share = query(&srv, &http, "action=dataset.share");
    assert_eq!(share[0]["event"]["parameters"]["with"], p_alice);
    assert_eq!(
        share[0]["event"]["resource"]["id"], "customers",
        "not a person: kept"
    );
    // By pseudonym, too.
    let by_p = query(&srv, &http, &format!("actor={}", p_alice.as_str().unwrap()));
    assert_eq!(by_p.len(), 2);
    let raw = String::from_utf8(srv.raw_entry(&http, 0)).unwrap();
    assert!(
        !raw.contains("alice@") && !raw.contains("10.9.8.7"),
        "{raw}"
    );
    assert!(
        raw.contains(r#""sealed":{"#) && raw.contains(r#""v":2"#),
        "{raw}"
    );

    // A user resource looked up by cleartext.
    let r = http.get(&srv.at("/v1/resources/user/carol@example.com"));
    assert_eq!(r.status, 200, "{}", r.text());
    let res = r.json();
    assert!(is_pseudonym(&res["id"]), "{res}");
    // Two events name carol: one as its resource, one in `related` (a history lists both
    // since issue 11.4).
    assert_eq!(res["summary"]["events"], 2, "{res}");
    assert_eq!(res["summary"]["as_subject"], 1, "{res}");
    let tl = &res["timeline"]["events"][0]["event"];
    assert!(is_pseudonym(&tl["resource"]["id"]));
    let (officer, officer_token) = privacy_officer(&srv);
    let r = officer.get(&srv.at("/v1/resources/user/carol@example.com?cleartext=true"));
    assert_eq!(
        r.json()["timeline"]["events"][0]["event"]["resource"]["id"],
        "carol@example.com"
    );

    // The cleartext view restores every sealed value, and is recorded.
    let clear = query(
        &srv,
        &officer,
        "actor=alice@example.com&order=asc&cleartext=true",
    );
    assert_eq!(clear[0]["event"]["actor"]["id"], "alice@example.com");
    assert_eq!(clear[0]["event"]["actor"]["ip"], "10.9.8.7");
    let one = officer.get(&srv.at("/v1/events/1?cleartext=true")).json();
    assert_eq!(one["event"]["parameters"]["with"], "alice@example.com");
    assert_eq!(one["event"]["actor"]["id"], "bob@example.com");
    let plain = http.get(&srv.at("/v1/events/1")).json();
    assert!(is_pseudonym(&plain["event"]["actor"]["id"]), "{plain}");
    let bad = http.get(&srv.at("/v1/events/1?cleartext=yes"));
    assert_eq!(bad.status, 400);

    let audits = audit_records(&srv, &http, "audit.query");
    let endpoints: Vec<&str> = audits
        .iter()
        .map(|a| a["event"]["parameters"]["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(
        endpoints,
        [
            "GET /v1/resources/{type}/{id}",
            "GET /v1/events",
            "GET /v1/events/{seq}"
        ],
        "one record per cleartext view, none for pseudonymized reads"
    );
    assert_eq!(audits[1]["event"]["parameters"]["seqs"], json!([0, 3]));
    assert_eq!(
        audits[1]["event"]["parameters"]["filter"],
        json!({"actor": p_alice, "order": "asc"}),
        "what was searched, by pseudonym"
    );
    assert_eq!(audits[2]["event"]["parameters"]["seqs"], json!([1]));
    for a in &audits {
        assert!(
            !a.to_string().contains("@example.com"),
            "no cleartext in {a}"
        );
    }

    // The CLI: pseudonyms by default, cleartext on request.
    let out = srv.cli(
        &["query", "--actor", "alice@example.com", "--json"],
        &[],
        None,
    );
    out.assert_ok("query");
    assert!(!out.stdout.contains("alice@") && out.stdout.contains(p_alice.as_str().unwrap()));
    let out = srv.cli(
        &[
            "query",
            "--actor",
            "alice@example.com",
            "--json",
            "--cleartext",
        ],
        &[("MLAUDIT_TOKEN", &officer_token)],
        None,
    );
    out.assert_ok("query --cleartext");
    assert!(out.stdout.contains("alice@example.com"), "{}", out.stdout);
    let out = srv.cli(
        &["history", "user", "carol@example.com", "--cleartext"],
        &[("MLAUDIT_TOKEN", &officer_token)],
        None,
    );
    out.assert_ok("history --cleartext");
    assert!(
        out.stdout.contains("user:carol@example.com"),
        "{}",
        out.stdout
    );
}

#[test]
fn erasure_destroys_the_key_and_every_proof_still_verifies() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let mut events = Vec::new();
    for i in 0..30 {
        let who = if i % 3 == 0 {
            "alice@example.com"
        } else {
            "bob@example.com"
        };
        events.push(json!({"id": format!("e{i}"), "action": "dataset.read",
            "actor": {"id": who, "ip": format!("10.0.0.{}", i + 1)},
            "resource": {"type": "dataset", "id": format!("ds-{i}")}}));
    }
    let r = srv.post_json(&http, &json!(events));
    assert_eq!(r.status, 201, "{}", r.text());
    srv.wait_indexed(&http, 30);
    let (saved, _) = srv.wait_checkpoint(&http, 30);

    // Before: the export holds alice's cleartext (and only hers: bob's events are absent).
    let export = srv.data_dir.parent().unwrap().join("alice-before.json");
    let (officer, officer_token) = privacy_officer(&srv);
    let out = srv.cli(
        &[
            "subject",
            "export",
            "alice@example.com",
            "--out",
            export.to_str().unwrap(),
        ],
        &[("MLAUDIT_TOKEN", &officer_token)],
        None,
    );
    out.assert_ok("subject export");
    // Regression (issue 11.8): the export of cleartext personal data was 0644.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&export).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "export mode {mode:o}");
    let before: Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!(before["key"], "present");
    let evs = before["events"].as_array().unwrap();
    assert_eq!(evs.len(), 10, "{before}");
    assert!(evs
        .iter()
        .all(|e| e["event"]["actor"]["id"] == "alice@example.com"));
    assert_eq!(evs[0]["event"]["actor"]["ip"], "10.0.0.1");
    let subject = before["subject"].as_str().unwrap().to_string();

    // The wrapped key as stored, to look for it on disk after the erasure.
    let wrapped: Vec<u8> = rusqlite::Connection::open(srv.data_dir.join("keys.sqlite"))
        .unwrap()
        .query_row(
            "SELECT wrapped FROM subject_keys WHERE subject = ?1",
            [&subject],
            |r| r.get(0),
        )
        .unwrap();
    assert!(wrapped.len() >= 32 + 24);

    // Regression (issue 11.8): an irreversible act without confirmation. Without a
    // terminal and without --yes, nothing is erased.
    let out = srv.cli(
        &["erase", "alice@example.com"],
        &[("MLAUDIT_TOKEN", &officer_token)],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    let out = srv.cli(
        &["erase", "alice@example.com", "--yes"],
        &[("MLAUDIT_TOKEN", &officer_token)],
        None,
    );
    out.assert_ok("erase");
    assert!(out.stdout.contains("what remains"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&subject) && out.stdout.contains("key destroyed  true"),
        "{}",
        out.stdout
    );
    let again = officer.post(
        &srv.at(&format!("/v1/subjects/{subject}/erase")),
        &[],
        Vec::new(),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        again.json()["key_destroyed"],
        false,
        "erasing twice destroys nothing more"
    );

    // After: pseudonyms only for alice, in every view; bob is unaffected; counts hold.
    let clear = query(
        &srv,
        &officer,
        "actor=alice@example.com&cleartext=true&limit=100",
    );
    assert_eq!(clear.len(), 10, "counts by pseudonym still work");
    for e in &clear {
        assert_eq!(e["event"]["actor"]["id"], subject.as_str());
        assert!(is_pseudonym(&e["event"]["actor"]["ip"]), "{e}");
    }
    let bob = query(
        &srv,
        &officer,
        "actor=bob@example.com&cleartext=true&limit=100",
    );
    assert_eq!(bob.len(), 20);
    assert!(bob
        .iter()
        .all(|e| e["event"]["actor"]["id"] == "bob@example.com"));
    let export_after = srv.data_dir.parent().unwrap().join("alice-after.json");
    srv.cli(
        &[
            "subject",
            "export",
            "alice@example.com",
            "--out",
            export_after.to_str().unwrap(),
        ],
        &[("MLAUDIT_TOKEN", &officer_token)],
        None,
    )
    .assert_ok("subject export after erasure");
    let after_text = std::fs::read_to_string(&export_after).unwrap();
    let after: Value = serde_json::from_str(&after_text).unwrap();
    assert_eq!(after["key"], "erased");
    let own: Vec<&Value> = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["event"]["action"].as_str().unwrap().starts_with("audit."))
        .collect();
    assert_eq!(own.len(), 10, "found by pseudonym: {after}");
    let erase_records = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["action"] == "audit.erase")
        .count();
    assert_eq!(
        erase_records, 4,
        "the subject's export shows both erasures, each requested and done"
    );
    assert!(
        !after_text.contains("alice@") && !after_text.contains("10.0.0.1\""),
        "{after_text}"
    );

    // The erasure is on the record, by pseudonym. Issue 19.4: an irreversible act was
    // recorded only after the fact; now "requested" is durable before the key is touched,
    // and "done" after, pointing back at the request.
    let erasures = audit_records(&srv, &http, "audit.erase");
    assert_eq!(erasures.len(), 4);
    let phases: Vec<&str> = erasures
        .iter()
        .map(|e| e["event"]["parameters"]["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["requested", "done", "requested", "done"]);
    for e in &erasures {
        assert_eq!(e["event"]["resource"]["id"], subject.as_str());
    }
    assert_eq!(erasures[1]["event"]["parameters"]["key_destroyed"], true);
    assert_eq!(
        erasures[1]["event"]["parameters"]["requested_seq"],
        erasures[0]["seq"]
    );
    assert!(erasures[0]["seq"].as_u64() < erasures[1]["seq"].as_u64());
    assert_eq!(erasures[3]["event"]["parameters"]["key_destroyed"], false);

    // A proof of one of alice's entries still verifies against the checkpoint.
    let seq = clear[0]["seq"].as_u64().unwrap().to_string();
    srv.cli(&["proof", &seq, "--vkey", &srv.vkey], &[], None)
        .assert_ok("proof after erasure");
    srv.stop();

    // Nothing in the data directory holds the key any more.
    let blobs = data_dir_blobs(&srv.data_dir);
    for (name, bytes) in &blobs {
        assert!(
            !bytes
                .windows(wrapped.len())
                .any(|w| w == wrapped.as_slice()),
            "the wrapped key of the erased subject is still in {name}"
        );
    }
    let keys_db = std::fs::read(srv.data_dir.join("keys.sqlite")).unwrap();
    assert!(
        !keys_db
            .windows(subject.len())
            .any(|w| w == subject.as_bytes()),
        "the erased subject's row name is gone"
    );

    // The whole log, its checkpoint, and consistency with the one saved before, verify.
    let saved_path = srv.data_dir.parent().unwrap().join("saved.checkpoint");
    std::fs::write(&saved_path, saved).unwrap();
    let dir = srv.data_dir.to_str().unwrap().to_string();
    srv.cli(
        &[
            "verify",
            "--data-dir",
            &dir,
            "--checkpoint",
            saved_path.to_str().unwrap(),
            "--quiet",
        ],
        &[],
        None,
    )
    .assert_ok("verify after erasure");
}

#[test]
fn secrets_are_redacted_at_any_depth() {
    let srv = TestServer::start();
    let http = srv.http();
    let ev = json!({
        "id": "r1", "action": "job.start", "actor": {"id": "svc-etl", "type": "service"},
        "parameters": {"a": {"b": [{"c": {"Api_Key": "sk-live-123", "keep": 1}}]},
                       "db_password": {"nested": "hunter2"}, "tokens_max": 5},
        "context": {"project": "p", "headers": {"Authorization": "Bearer abc.def"}},
        "metrics": {"accuracy": 0.9},
        "reason": "requested by dave@example.org via ticket 42"
    });
    let r = srv.post_json(&http, &ev);
    assert_eq!(r.status, 201, "{}", r.text());
    let raw = String::from_utf8(srv.raw_entry(&http, 0)).unwrap();
    for secret in [
        "sk-live-123",
        "hunter2",
        "Bearer abc.def",
        "dave@example.org",
    ] {
        assert!(!raw.contains(secret), "{secret} stored: {raw}");
    }
    let (officer, _) = privacy_officer(&srv);
    let e = &officer.get(&srv.at("/v1/events/0?cleartext=true")).json()["event"];
    assert_eq!(e["parameters"]["a"]["b"][0]["c"]["Api_Key"], "[REDACTED]");
    assert_eq!(e["parameters"]["a"]["b"][0]["c"]["keep"], 1);
    assert_eq!(e["parameters"]["db_password"], "[REDACTED]");
    assert_eq!(
        e["parameters"]["tokens_max"], "[REDACTED]",
        "the default pattern matches token"
    );
    assert_eq!(e["context"]["headers"]["Authorization"], "[REDACTED]");
    assert_eq!(e["context"]["project"], "p");
    assert_eq!(e["metrics"]["accuracy"], 0.9);
    assert_eq!(
        e["reason"], "requested by [REDACTED] via ticket 42",
        "not restored: never sealed"
    );
}

#[test]
fn cleartext_needs_a_role_with_clearance_and_pseudonymization_can_be_off() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("mlaudit.toml");
    std::fs::write(
        &cfg,
        "[privacy]\ncleartext_roles = [\"dpo\"]\nredact_values = []\n",
    )
    .unwrap();
    let srv = TestServer::start_with(&["--config", cfg.to_str().unwrap()]);
    let http = srv.http();
    let r = srv.post_json(
        &http,
        &json!({"action": "model.train", "actor": {"id": "alice@example.com"},
                                         "reason": "for erin@example.net"}),
    );
    assert_eq!(r.status, 201);
    srv.wait_indexed(&http, 1);
    for path in [
        "/v1/events?cleartext=true",
        "/v1/events/0?cleartext=true",
        "/v1/subjects/alice@example.com/events",
    ] {
        let r = http.get(&srv.at(path));
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "forbidden");
    }
    let r = http.post(
        &srv.at("/v1/subjects/alice@example.com/erase"),
        &[],
        Vec::new(),
    );
    assert_eq!(r.status, 403);
    assert_eq!(srv.size(&http), 1, "a refused request records nothing");
    let e = http.get(&srv.at("/v1/events/0")).json();
    assert!(is_pseudonym(&e["event"]["actor"]["id"]));
    assert_eq!(
        e["event"]["reason"], "for erin@example.net",
        "value patterns off"
    );

    let off = TestServer::start_with(&["--pseudonymize", "false"]);
    let r = off.post_json(
        &off.http(),
        &json!({"action": "model.train", "actor": {"id": "alice@example.com"}}),
    );
    assert_eq!(r.status, 201);
    let raw = String::from_utf8(off.raw_entry(&off.http(), 0)).unwrap();
    assert!(
        raw.contains(r#""actor":{"id":"alice@example.com"}"#) && !raw.contains("sealed"),
        "{raw}"
    );
}

/// A privacy officer reads entry 0's actor, alice@example.com, in cleartext: the subject
/// key is there and opens under the master key in use.
fn assert_first_actor_in_cleartext(srv: &TestServer) {
    let (officer, _) = privacy_officer(srv);
    let e = officer.get(&srv.at("/v1/events/0?cleartext=true")).json();
    assert_eq!(e["event"]["actor"]["id"], "alice@example.com");
}

#[test]
fn a_wrong_master_key_refuses_the_start_with_a_clear_error() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let r = srv.post_json(
        &http,
        &json!({"action": "model.train", "actor": {"id": "alice@example.com"}}),
    );
    assert_eq!(r.status, 201);
    srv.stop();
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let key_mode = std::fs::metadata(srv.data_dir.join("keys/master.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_mode.permissions().mode() & 0o777, 0o600);
    let store_mode = std::fs::metadata(srv.data_dir.join("keys.sqlite")).unwrap();
    assert_eq!(store_mode.permissions().mode() & 0o777, 0o600);

    let wrong = srv.data_dir.parent().unwrap().join("wrong.key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&wrong)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{}\n", b64(&[42u8; 32])).as_bytes()).unwrap();
    let serve = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["serve", "--data-dir", &dir, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        srv.cli(&args, env, None)
    };
    let out = serve(&["--master-key-file", wrong.to_str().unwrap()], &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the master key does not match the key store"),
        "{}",
        out.stderr
    );
    let out = serve(&[], &[("MLAUDIT_MASTER_KEY", &b64(&[7u8; 32]))]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("the master key does not match"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(&b64(&[7u8; 32])),
        "the key is never printed"
    );

    // The right key (moved out of the data directory) still opens it.
    let moved = srv.data_dir.parent().unwrap().join("master.key");
    std::fs::rename(srv.data_dir.join("keys/master.key"), &moved).unwrap();
    let out = serve(&[], &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert!(
        !srv.data_dir.join("keys/master.key").exists(),
        "no new key is made"
    );
    srv.restart_with(&["--master-key-file", moved.to_str().unwrap()]);
    assert_first_actor_in_cleartext(&srv);

    // A lost key store is not silently replaced: that would change every pseudonym.
    srv.stop();
    let store = srv.data_dir.join("keys.sqlite");
    let kept = srv.data_dir.parent().unwrap().join("keys.sqlite.bak");
    std::fs::rename(&store, &kept).unwrap();
    let args = [
        "serve",
        "--data-dir",
        &dir,
        "--listen",
        "127.0.0.1:0",
        "--master-key-file",
        moved.to_str().unwrap(),
    ];
    let out = srv.cli(&args, &[], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("keys.sqlite is missing but the ledger"),
        "{}",
        out.stderr
    );
    assert!(!store.exists(), "no new key store is made");
    std::fs::rename(&kept, &store).unwrap();
    srv.restart_with(&["--master-key-file", moved.to_str().unwrap()]);
    assert_first_actor_in_cleartext(&srv);
}

#[test]
fn rotating_the_master_key_offline_keeps_every_sealed_value() {
    let mut srv = TestServer::start();
    let http = srv.http();
    let r = srv.post_json(
        &http,
        &json!({"action": "model.train", "actor": {"id": "alice@example.com"}}),
    );
    assert_eq!(r.status, 201);
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let new = srv.data_dir.parent().unwrap().join("new.key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&new)
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{}\n", b64(&[5u8; 32])).as_bytes()).unwrap();
    let rotate = [
        "rotate-master-key",
        "--data-dir",
        &dir,
        "--new-key-file",
        new.to_str().unwrap(),
    ];
    let out = srv.cli(&rotate, &[], None);
    assert_eq!(out.code, 1, "refused while the server runs: {}", out.stderr);
    assert!(out.stderr.contains("in use"), "{}", out.stderr);
    srv.stop();
    let old = std::fs::read_to_string(srv.data_dir.join("keys/master.key")).unwrap();
    srv.cli(&rotate, &[], None).assert_ok("rotate-master-key");
    let now = std::fs::read_to_string(srv.data_dir.join("keys/master.key")).unwrap();
    assert_eq!(now.trim(), b64(&[5u8; 32]));
    let out = srv.cli(
        &["serve", "--data-dir", &dir, "--listen", "127.0.0.1:0"],
        &[("MLAUDIT_MASTER_KEY", old.trim())],
        None,
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
    srv.restart();
    assert_first_actor_in_cleartext(&srv);
}

/// Regression (issue 18.13): a batch refused for its ids still created the subject keys of
/// its people in `keys.sqlite`.
#[test]
fn refused_batches_create_no_subject_keys() {
    let srv = TestServer::start();
    let http = srv.http();
    let subjects = || -> i64 {
        rusqlite::Connection::open(srv.data_dir.join("keys.sqlite"))
            .unwrap()
            .query_row("SELECT count(*) FROM subject_keys", [], |r| r.get(0))
            .unwrap()
    };
    let before = subjects();
    let r = srv.post_json(
        &http,
        &json!([
            {"id": "same", "action": "dataset.read", "actor": {"id": "newcomer1@example.com"}},
            {"id": "same", "action": "dataset.read", "actor": {"id": "newcomer2@example.com"}},
        ]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "duplicate_id_in_batch");
    assert_eq!(
        subjects(),
        before,
        "no key for the people of a refused batch"
    );
    // A stored event does create its subject's key.
    let r = srv.post_json(
        &http,
        &json!({"id": "once", "action": "dataset.read", "actor": {"id": "newcomer1@example.com"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(subjects(), before + 1);
}
