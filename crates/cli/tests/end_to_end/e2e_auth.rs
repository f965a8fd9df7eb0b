//! End to end: access control. Every endpoint × every role × in and out of project scope,
//! token expiry and revocation, denials and reads recorded in the ledger, throttling, the
//! `mlaudit token` commands, and no secret in the server's output or data directory.

use crate::common;

use std::time::{Duration, Instant};

use common::{Http, TestServer};
use serde_json::{json, Value};

/// Two events of project p1 and one of p2 (seqs 0, 1, 2 once the admin sent them).
fn seed(srv: &TestServer) {
    let http = srv.http();
    let events = json!([
        {"action": "dataset.read", "actor": {"id": "u1"}, "resource": {"type": "dataset", "id": "d1"}, "context": {"project": "p1"}},
        {"action": "dataset.read", "actor": {"id": "u2"}, "resource": {"type": "dataset", "id": "d1"}, "context": {"project": "p1"}},
        {"action": "model.train", "actor": {"id": "u3"}, "resource": {"type": "model", "id": "m2"}, "context": {"project": "p2"}},
    ]);
    let r = srv.post_json(&http, &events);
    assert_eq!(r.status, 201, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http.get(&srv.at("/v1/events?action=dataset.read"));
        if r.json()["events"].as_array().unwrap().len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "index did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.wait_checkpoint(&http, 3);
}

fn event_json(project: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "action": "model.deploy", "actor": {"id": "ci"},
        "context": {"project": project},
    }))
    .unwrap()
}

/// One request: method, path, body (JSON) or none.
struct Case {
    method: &'static str,
    path: &'static str,
    body: Option<Vec<u8>>,
}

fn send(http: &Http, srv: &TestServer, c: &Case) -> common::Resp {
    let headers: &[(&str, &str)] = if c.body.is_some() {
        &[("content-type", "application/json")]
    } else {
        &[]
    };
    http.request(
        c.method,
        &srv.at(c.path),
        headers,
        c.body.clone().unwrap_or_default(),
    )
}

/// A production-like server with `toml` as its configuration file.
fn start_with_config(toml: &str) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mlaudit.toml");
    std::fs::write(&cfg, toml).unwrap();
    let srv = TestServer::start_audited(&["--config", cfg.to_str().unwrap()]);
    (dir, srv)
}

#[test]
fn a_fresh_server_refuses_every_unauthenticated_request() {
    // Above the failure budget of 32 requests below, so that none is throttled.
    let (_cfg, srv) = start_with_config("auth_failures_max = 100\n");
    let anon = srv.http_as("");
    let bad = srv.http_as("mla_not-a-token-but-long-enough-to-hash");
    for (method, path) in [
        ("GET", "/metrics"),
        ("GET", "/v1/events"),
        ("POST", "/v1/events"),
        ("GET", "/v1/events/0"),
        ("GET", "/v1/resources/dataset/d1"),
        ("GET", "/v1/proof/inclusion?seq=0"),
        ("GET", "/v1/proof/consistency?from=1"),
        ("GET", "/v1/info"),
        ("GET", "/v1/schema/event"),
        ("GET", "/v1/tokens"),
        ("POST", "/v1/tokens"),
        ("DELETE", "/v1/tokens/x"),
        ("GET", "/log/checkpoint"),
        ("GET", "/log/tile/0/000"),
        ("GET", "/log/tile/entries/000.p/1"),
        ("GET", "/no/such/endpoint"),
    ] {
        for http in [&anon, &bad] {
            let r = http.request(method, &srv.at(path), &[], Vec::new());
            assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
            assert_eq!(r.json()["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
    // A malformed header and a non-bearer scheme are refused alike.
    let r = anon.request(
        "GET",
        &srv.at("/v1/info"),
        &[("authorization", "Basic YWRtaW46YWRtaW4=")],
        Vec::new(),
    );
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("malformed"));
    // Only /healthz is open.
    assert_eq!(anon.get(&srv.at("/healthz")).status, 200);
}

/// The expected status of each request for each role, unscoped and limited to p1.
#[test]
fn every_endpoint_by_role_and_project_scope() {
    let srv = TestServer::start_audited(&[]);
    seed(&srv);
    let roles = ["producer", "auditor", "privacy_officer", "admin"];
    // (case, expected status per role for an unlimited token, then for a token limited to p1)
    let ok_read = [403, 200, 200, 200];
    let table: Vec<(Case, [u16; 4], [u16; 4])> = vec![
        (
            Case {
                method: "POST",
                path: "/v1/events",
                body: Some(event_json("p1")),
            },
            [201, 403, 403, 201],
            [201, 403, 403, 201],
        ),
        (
            Case {
                method: "POST",
                path: "/v1/events",
                body: Some(event_json("p2")),
            },
            [201, 403, 403, 201],
            [403, 403, 403, 403],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/events",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "HEAD",
                path: "/v1/events",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/v1/events?project=p2",
                body: None,
            },
            ok_read,
            [403, 403, 403, 403],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/events/0",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/v1/events/2",
                body: None,
            },
            ok_read,
            [403, 403, 403, 403],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/resources/dataset/d1",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/v1/resources/model/m2",
                body: None,
            },
            ok_read,
            [403, 404, 404, 404],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/proof/inclusion?seq=0&size=3",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/v1/proof/consistency?from=1&to=3",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/log/checkpoint",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/log/tile/0/000.p/3",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/log/tile/entries/000.p/3",
                body: None,
            },
            ok_read,
            [403, 403, 403, 403],
        ),
        (
            Case {
                method: "GET",
                path: "/metrics",
                body: None,
            },
            ok_read,
            [403, 403, 403, 403],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/info",
                body: None,
            },
            [200; 4],
            [200; 4],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/schema/event",
                body: None,
            },
            [200; 4],
            [200; 4],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/tokens",
                body: None,
            },
            [403, 403, 403, 200],
            [403; 4],
        ),
        (
            Case {
                method: "POST",
                path: "/v1/tokens",
                body: Some(br#"{"role":"auditor"}"#.to_vec()),
            },
            [403, 403, 403, 201],
            [403; 4],
        ),
        (
            Case {
                method: "DELETE",
                path: "/v1/tokens/no-such-token",
                body: None,
            },
            [403, 403, 403, 404],
            [403; 4],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/lineage?type=dataset&id=d1",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/v1/lineage?type=model&id=m2",
                body: None,
            },
            ok_read,
            [403, 404, 404, 404],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/stats?by=action",
                body: None,
            },
            ok_read,
            ok_read,
        ),
        (
            Case {
                method: "GET",
                path: "/v1/deployments/dep1/state",
                body: None,
            },
            [403, 404, 404, 404],
            [403, 404, 404, 404],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/events?cleartext=true",
                body: None,
            },
            [403, 403, 200, 403],
            [403, 403, 200, 403],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/subjects/u1/events",
                body: None,
            },
            [403, 403, 200, 403],
            [403; 4],
        ),
        (
            Case {
                method: "POST",
                path: "/v1/subjects/nobody/erase",
                body: None,
            },
            [403, 403, 200, 403],
            [403; 4],
        ),
        (
            Case {
                method: "GET",
                path: "/v1/holds",
                body: None,
            },
            [403, 403, 403, 200],
            [403; 4],
        ),
        (
            Case {
                method: "POST",
                path: "/v1/holds",
                body: Some(br#"{"reason":"r","scope":{"project":"p9"}}"#.to_vec()),
            },
            [403, 403, 403, 201],
            [403; 4],
        ),
        (
            Case {
                method: "DELETE",
                path: "/v1/holds/999",
                body: None,
            },
            [403, 403, 403, 404],
            [403; 4],
        ),
        (
            Case {
                method: "POST",
                path: "/v1/retention/run?dry_run=true",
                body: None,
            },
            [403, 403, 403, 200],
            [403; 4],
        ),
        (
            Case {
                method: "GET",
                path: "/healthz",
                body: None,
            },
            [200; 4],
            [200; 4],
        ),
    ];
    let mut failures = Vec::new();
    for (scoped, projects) in [(false, &[][..]), (true, &["p1"][..])] {
        for (ri, role) in roles.iter().enumerate() {
            let http = srv.http_as(&srv.token(role, projects));
            for (case, want_all, want_scoped) in &table {
                let want = if scoped {
                    want_scoped[ri]
                } else {
                    want_all[ri]
                };
                let r = send(&http, &srv, case);
                if r.status != want {
                    failures.push(format!(
                        "{role}{} {} {}: want {want}, got {} {}",
                        if scoped { " (p1)" } else { "" },
                        case.method,
                        case.path,
                        r.status,
                        r.text()
                    ));
                }
                if (r.status == 401 || r.status == 403) && case.method != "HEAD" {
                    assert!(
                        r.json()["error"]["code"].is_string(),
                        "JSON error: {}",
                        r.text()
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn scoped_tokens_see_and_write_only_their_projects() {
    let srv = TestServer::start_audited(&[]);
    seed(&srv);
    let p1 = srv.http_as(&srv.token("auditor", &["p1"]));
    let r = p1.get(&srv.at("/v1/events?order=asc"));
    assert_eq!(r.status, 200);
    let projects: Vec<String> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["event"]["context"]["project"]
                .as_str()
                .unwrap_or("-")
                .to_string()
        })
        .collect();
    assert_eq!(projects, ["p1", "p1"], "only p1 (no audit records either)");
    let r = p1.get(&srv.at("/v1/resources/dataset/d1"));
    assert_eq!(r.json()["summary"]["events"], 2);

    // A producer limited to p1: a batch with one p2 event is refused whole.
    let prod = srv.http_as(&srv.token("producer", &["p1"]));
    let size = srv.size(&srv.http());
    let batch = json!([
        {"action": "a.b", "actor": {"id": "x"}, "context": {"project": "p1"}},
        {"action": "a.b", "actor": {"id": "x"}, "context": {"project": "p2"}},
        {"action": "a.b", "actor": {"id": "x"}},
    ]);
    let r = srv.post_json(&prod, &batch);
    assert_eq!(r.status, 403, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"]["code"], "project_forbidden");
    let indexes: Vec<u64> = e["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2]);
    // Nothing of the refused batch was stored (the denial record may have been).
    let r = srv.http().get(&srv.at("/v1/events?action=a.b"));
    assert_eq!(r.json()["events"].as_array().unwrap().len(), 0);
    assert!(srv.size(&srv.http()) >= size);

    // The refused batch left an auth.denied record naming the scope.
    let denied = wait_events(&srv, "action=auth.denied", 1);
    assert!(
        denied
            .iter()
            .any(|e| e["event"]["parameters"]["reason"] == "project_scope"
                && e["event"]["parameters"]["path"] == "/v1/events"),
        "{denied:?}"
    );

    // The producer's name becomes source.principal.
    let r = srv.post_json(
        &prod,
        &json!({"action": "a.b", "actor": {"id": "x"}, "context": {"project": "p1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let seq = r.json()["receipts"][0]["seq"].as_u64().unwrap();
    let e = srv.http().get(&srv.at(&format!("/v1/events/{seq}"))).json();
    assert!(
        e["source"]["principal"]
            .as_str()
            .unwrap()
            .starts_with("producer-"),
        "{e}"
    );
}

/// Waits (up to 10 s) until a query as admin finds at least `n` events, and returns them.
fn wait_events(srv: &TestServer, query: &str, n: usize) -> Vec<Value> {
    let http = srv.http();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = http.get(&srv.at(&format!("/v1/events?{query}&limit=1000")));
        assert_eq!(r.status, 200, "{}", r.text());
        let events = r.json()["events"].as_array().unwrap().clone();
        if events.len() >= n {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} events for {query}: {events:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn denials_reads_and_token_changes_are_ledger_events() {
    let srv = TestServer::start_audited(&[]);
    seed(&srv);
    let auditor_token = srv.token("auditor", &[]);
    let auditor = srv.http_as(&auditor_token);
    let r = auditor.get(&srv.at("/v1/events?action=dataset.read&actor=u1"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["events"].as_array().unwrap().len(), 1);
    // As stored (and as the auditor sees it): the pseudonym of u1.
    let u1 = r.json()["events"][0]["event"]["actor"]["id"].clone();
    assert!(u1.as_str().unwrap().starts_with("hmac:"), "{u1}");
    // A denial by role, and one without a token.
    assert_eq!(auditor.get(&srv.at("/v1/tokens")).status, 403);
    assert_eq!(srv.http_as("").get(&srv.at("/v1/events")).status, 401);

    // The auditor's query: principal, endpoint, filters, number of results.
    let auditor_name = srv.http().get(&srv.at("/v1/tokens")).json()["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "auditor")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let q = wait_events(&srv, &format!("action=audit.query&actor={auditor_name}"), 1);
    let p = &q[0]["event"]["parameters"];
    assert_eq!(p["endpoint"], "/v1/events");
    assert_eq!(p["filters"]["action"], "dataset.read");
    // Identifiers in the record are pseudonyms too, as in the events they searched.
    assert_eq!(p["filters"]["actor"], u1);
    assert_eq!(p["results"], 1);

    // The denied principals are pseudonymized like every actor; a privacy officer sees
    // who they were.
    wait_events(&srv, "action=auth.denied", 2);
    let officer = srv.http_as(&srv.token("privacy_officer", &[]));
    let r = officer.get(&srv.at("/v1/events?action=auth.denied&cleartext=true&limit=1000"));
    assert_eq!(r.status, 200, "{}", r.text());
    let denied = r.json()["events"].as_array().unwrap().clone();
    let reasons: Vec<(&str, &str, u64)> = denied
        .iter()
        .map(|e| {
            let p = &e["event"]["parameters"];
            (
                e["event"]["actor"]["id"].as_str().unwrap(),
                p["reason"].as_str().unwrap(),
                p["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&(auditor_name.as_str(), "role", 403)),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("unauthenticated", "missing_token", 401)),
        "{reasons:?}"
    );
    for e in &denied {
        assert_eq!(e["event"]["outcome"], "denied");
        assert_eq!(e["event"]["actor"]["ip"], "127.0.0.1");
    }

    // Token creation was recorded too; revocation is recorded and immediate.
    let tokens = wait_events(&srv, "action=audit.token", 1);
    assert_eq!(tokens[0]["event"]["parameters"]["op"], "create");
    let r = srv.http().request(
        "DELETE",
        &srv.at(&format!("/v1/tokens/{auditor_name}")),
        &[],
        Vec::new(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = auditor.get(&srv.at("/v1/events"));
    assert_eq!(r.status, 401, "revocation is immediate");
    assert!(r.text().contains("revoked"), "{}", r.text());
    // The auditor's and the privacy officer's creations, then the revocation.
    let tokens = wait_events(&srv, "action=audit.token", 3);
    assert!(tokens
        .iter()
        .any(|t| t["event"]["parameters"]["op"] == "revoke"));
    // These records are ordinary entries: system records carry mlaudit's principal.
    let seq = tokens[0]["seq"].as_u64().unwrap();
    let e = srv.http().get(&srv.at(&format!("/v1/events/{seq}"))).json();
    assert_eq!(e["source"]["principal"], "mlaudit");
}

#[test]
fn throttling_uses_the_client_address_a_trusted_proxy_forwards() {
    let (_cfg, srv) = start_with_config(
        "auth_failures_max = 3\nauth_window_ms = 60000\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    let status = |xff: &str, token: &str| {
        let http = srv.http_as(token);
        http.request(
            "GET",
            &srv.at("/v1/info"),
            &[("x-forwarded-for", xff)],
            Vec::new(),
        )
        .status
    };
    for _ in 0..3 {
        assert_eq!(status("198.51.100.1, 203.0.113.7", "mla_bad"), 401);
    }
    assert_eq!(status("203.0.113.7", "mla_bad"), 429);
    // Another client behind the same proxy is not throttled, nor is a valid token.
    assert_eq!(status("203.0.113.8", "mla_bad"), 401);
    let producer = srv.token("producer", &[]);
    assert_eq!(status("203.0.113.7", &producer), 200);
    // The denials name the forwarded client (in cleartext for a privacy officer).
    wait_events(&srv, "action=auth.denied", 5);
    let officer = srv.http_as(&srv.token("privacy_officer", &[]));
    let r = officer.get(&srv.at("/v1/events?action=auth.denied&cleartext=true&limit=100"));
    let ips: Vec<Value> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["actor"]["ip"].clone())
        .collect();
    assert!(ips.contains(&json!("203.0.113.8")), "{ips:?}");
    assert!(!ips.contains(&json!("127.0.0.1")), "{ips:?}");
}

#[test]
fn expired_tokens_are_refused() {
    let srv = TestServer::start_audited(&[]);
    let r = srv.http().post(
        &srv.at("/v1/tokens"),
        &[("content-type", "application/json")],
        br#"{"role":"auditor","expires_in":"1s"}"#.to_vec(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let http = srv.http_as(&token);
    assert_eq!(http.get(&srv.at("/v1/info")).status, 200);
    // The refusal once the lifetime is over is tested on a manual clock, without sleeping:
    // crates/server/tests/auth_clock.rs.
    let bad = srv.http().post(
        &srv.at("/v1/tokens"),
        &[("content-type", "application/json")],
        br#"{"role":"auditor","expires_in":"soon"}"#.to_vec(),
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn failed_authentication_bursts_are_throttled_and_denials_rate_limited() {
    let (_cfg, srv) = start_with_config(
        // A window no run outlasts: what happens when it ends is tested on a manual clock,
        // without sleeping (crates/server/tests/auth_clock.rs, server::guard's tests).
        "auth_failures_max = 5\nauth_denied_events_max = 3\nauth_window_ms = 600000\n",
    );
    let anon = srv.http_as("");
    for i in 0..5 {
        assert_eq!(anon.get(&srv.at("/v1/info")).status, 401, "attempt {i}");
    }
    let r = anon.get(&srv.at("/v1/info"));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.headers.get("retry-after").is_some());
    assert_eq!(r.json()["error"]["code"], "too_many_failures");
    // While throttled, failures wait, but a valid token from that source is served
    // (issue 18.8: others' failures must not lock out an honest producer).
    assert_eq!(anon.get(&srv.at("/v1/info")).status, 429);
    assert_eq!(srv.http().get(&srv.at("/v1/info")).status, 200);
    // 3 denials recorded in the window; the 4 left out are counted (the next window's
    // first record carries the number: server::guard's tests).
    let denied = wait_events(&srv, "action=auth.denied&order=asc", 3);
    assert_eq!(denied.len(), 3, "5 401s + 2 429s, 3 recorded");
    let suppressed: Vec<u64> = denied
        .iter()
        .map(|e| e["event"]["parameters"]["suppressed"].as_u64().unwrap())
        .collect();
    assert_eq!(suppressed, [0, 0, 0]);
    // Every denial is counted in /metrics, also the suppressed ones.
    let metrics = srv.http().get(&srv.at("/metrics")).text();
    assert!(
        metrics.contains("mlaudit_auth_denied_total{reason=\"missing_token\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlaudit_auth_denied_total{reason=\"throttled\"} 2"),
        "{metrics}"
    );
}

#[test]
fn token_cli_online_and_offline_and_no_secret_leaks() {
    // Debug logs: the most the server ever writes to stderr.
    let mut srv = TestServer::start_audited_env(&[], &[("MLAUDIT_LOG", "debug")]);
    let out = srv.cli(
        &[
            "token",
            "create",
            "--role",
            "producer",
            "--project",
            "p1",
            "--name",
            "ci",
            "--expires",
            "90d",
        ],
        &[],
        None,
    );
    out.assert_ok("token create");
    let producer = out.stdout.trim().to_string();
    assert!(
        producer.starts_with("mla_") && !producer.contains(' '),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("name=ci") && out.stderr.contains("role=producer"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(&producer),
        "the token is on stdout only"
    );
    let r = srv.post_json(
        &srv.http_as(&producer),
        &json!({"action": "a.b", "actor": {"id": "x"}, "context": {"project": "p1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());

    // Issue 11.12: `token list` printed key=value lines; it is an aligned table with a
    // header, or --csv / --json like `query`.
    let out = srv.cli(&["token", "list"], &[], None);
    out.assert_ok("token list");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{}", out.stdout);
    let col = |name: &str| lines[0].find(name).unwrap();
    let ci = lines
        .iter()
        .find(|l| l.contains(" ci "))
        .expect("a row for ci");
    assert_eq!(
        &ci[col("PROJECTS")..col("PROJECTS") + 2],
        "p1",
        "{}",
        out.stdout
    );
    assert_eq!(
        &ci[col("ROLE")..col("ROLE") + 8],
        "producer",
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(" admin "), "{}", out.stdout);
    let csv = srv.cli(&["token", "list", "--csv"], &[], None);
    csv.assert_ok("token list --csv");
    assert!(
        csv.stdout.starts_with("ID,NAME,ROLE,PROJECTS,"),
        "{}",
        csv.stdout
    );
    assert!(csv.stdout.contains(",ci,producer,p1,"), "{}", csv.stdout);
    let json = srv.cli(&["token", "list", "--json"], &[], None);
    json.assert_ok("token list --json");
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "ci" && t["projects"][0] == "p1"));
    // Not as a producer.
    let out = srv.cli(&["token", "list"], &[("MLAUDIT_TOKEN", &producer)], None);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("403"), "{}", out.stderr);

    let out = srv.cli(&["token", "revoke", "ci"], &[], None);
    out.assert_ok("token revoke");
    let r = srv.post_json(
        &srv.http_as(&producer),
        &json!({"action": "a.b", "actor": {"id": "x"}, "context": {"project": "p1"}}),
    );
    assert_eq!(r.status, 401);

    // Offline: refused while the server runs, works once it is stopped.
    let dir = srv.data_dir.to_str().unwrap().to_string();
    let out = common::cli(
        &["token", "create", "--role", "auditor", "--data-dir", &dir],
        &[],
        None,
    );
    assert_ne!(out.code, 0, "the server holds the lock");
    let admin = srv.admin_token.clone();
    srv.stop();
    let out = common::cli(
        &[
            "token",
            "create",
            "--role",
            "auditor",
            "--name",
            "offline",
            "--data-dir",
            &dir,
        ],
        &[],
        None,
    );
    out.assert_ok("offline token create");
    let offline = out.stdout.trim().to_string();
    srv.restart();
    assert_eq!(srv.admin_token, admin, "the admin token is created once");
    let r = srv
        .http_as(&offline)
        .get(&srv.at("/v1/events?action=audit.token"));
    assert_eq!(r.status, 200, "{}", r.text());
    // Offline revocation, effective at the next start.
    srv.stop();
    let out = common::cli(
        &["token", "revoke", "offline", "--data-dir", &dir],
        &[],
        None,
    );
    out.assert_ok("offline token revoke");
    assert!(out.stderr.contains("revoked: id="), "{}", out.stderr);
    srv.restart();
    assert_eq!(
        srv.http_as(&offline).get(&srv.at("/v1/info")).status,
        401,
        "revoked offline"
    );
    let t = wait_events(&srv, "action=audit.token&actor=offline-cli", 2);
    assert!(t.iter().any(|e| e["event"]["parameters"]["op"] == "revoke"));
    // The offline creation is recorded when the server starts.
    let t = wait_events(&srv, "action=audit.token&actor=offline-cli", 1);
    assert_eq!(t[0]["event"]["resource"]["name"], "offline");

    // No secret anywhere but admin.token: not in stderr, not in any other file.
    srv.stop();
    let secrets = [admin.as_str(), producer.as_str(), offline.as_str()];
    let log = srv.stderr_text();
    for s in secrets {
        assert!(!log.contains(s), "a token is in the server's stderr");
        // The random part alone must not appear either.
        assert!(
            !log.contains(&s[4..]),
            "a token's secret is in the server's stderr"
        );
    }
    let mut files = Vec::new();
    collect_files(&srv.data_dir, &mut files);
    assert!(files.len() > 5, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for s in secrets {
            let found = bytes.windows(s.len() - 4).any(|w| w == &s.as_bytes()[4..]);
            if f.file_name().unwrap() == "admin.token" && s == admin {
                assert!(found, "admin.token holds the admin token");
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600);
            } else {
                assert!(!found, "a token's secret is in {}", f.display());
            }
        }
    }
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            collect_files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

#[test]
fn every_kind_of_read_is_recorded_also_at_shutdown() {
    let mut srv = TestServer::start_audited(&[]);
    seed(&srv);
    let auditor = srv.http_as(&srv.token("auditor", &[]));
    for path in [
        "/v1/events/1",
        "/v1/resources/dataset/d1",
        "/v1/proof/inclusion?seq=0&size=3",
        "/v1/proof/consistency?from=1&to=3",
        "/log/tile/entries/000.p/3",
        // Not reads of log content: not recorded.
        "/log/checkpoint",
        "/log/tile/0/000.p/3",
        "/v1/info",
    ] {
        let r = auditor.get(&srv.at(path));
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // A graceful stop appends the queued records before the final checkpoint.
    srv.stop();
    srv.restart();
    let tokens = srv.http().get(&srv.at("/v1/tokens")).json();
    let name = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "auditor")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let recorded = wait_events(
        &srv,
        &format!("action=audit.query&actor={name}&order=asc"),
        5,
    );
    let got: Vec<(String, u64)> = recorded
        .iter()
        .map(|e| {
            let p = &e["event"]["parameters"];
            (
                p["endpoint"].as_str().unwrap().to_string(),
                p["results"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("/v1/events/{seq}", 1),
        ("/v1/resources/{type}/{id}", 2),
        ("/v1/proof/inclusion", 1),
        ("/v1/proof/consistency", 1),
        ("/log/tile/entries/{*rest}", 3),
    ]
    .iter()
    .map(|(e, n)| (e.to_string(), *n))
    .collect();
    assert_eq!(got, want);
    assert_eq!(recorded[2]["event"]["parameters"]["filters"]["seq"], "0");
}

/// One request written byte for byte on a new connection (no client library normalizes
/// the path), answered with its status.
fn raw_status(srv: &TestServer, method: &str, path: &str, token: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let addr = srv.url().trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !token.is_empty() {
        req.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let head = String::from_utf8_lossy(&out);
    head.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no status in {head:?}"))
}

/// The path of every row of the route table with its placeholders filled in, and a body.
fn concrete_routes() -> Vec<(&'static str, String, Vec<u8>)> {
    auth::ROUTES
        .iter()
        .map(|r| {
            let path = r
                .path
                .replace("{seq}", "0")
                .replace("{type}", "dataset")
                .replace("/subjects/{id}", "/subjects/nobody%40example.com")
                .replace("{id}", "d1")
                .replace("/entries/{*rest}", "/entries/000.p/3")
                .replace("{*rest}", "tile/0/000.p/3");
            let body = match (r.method, r.path) {
                ("POST", "/v1/events") => event_json("p1"),
                ("POST", "/v1/retention/run") => b"{\"dry_run\": true}".to_vec(),
                ("POST", _) => b"{}".to_vec(),
                _ => Vec::new(),
            };
            (r.method, path, body)
        })
        .collect()
}

/// `path` with the first character of segment `i` percent-encoded (`upper` hex or not),
/// or with every character of every segment encoded if `i` is `None`.
fn encode_variant(path: &str, i: Option<usize>, upper: bool) -> String {
    let enc = |c: char| {
        let mut b = [0; 4];
        c.encode_utf8(&mut b)
            .bytes()
            .map(|b| {
                if upper {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect::<String>()
    };
    path.split('/')
        .enumerate()
        .map(|(j, seg)| {
            if seg.is_empty() || seg.contains('%') {
                return seg.to_string();
            }
            match i {
                None => seg.chars().map(enc).collect(),
                Some(i) if i == j => {
                    let mut c = seg.chars();
                    let first = c.next().unwrap();
                    format!("{}{}", enc(first), c.as_str())
                }
                Some(_) => seg.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn percent_encoded_paths_get_the_plain_paths_decision() {
    let srv = TestServer::start_audited(&[]);
    seed(&srv);
    let creds: Vec<(String, String)> = [
        ("producer", &[][..]),
        ("auditor", &[][..]),
        ("auditor", &["p1"][..]),
        ("privacy_officer", &[][..]),
        ("admin", &["p1"][..]),
    ]
    .iter()
    .map(|(role, projects)| (format!("{role}{projects:?}"), srv.token(role, projects)))
    .chain([("none".to_string(), String::new())])
    .collect();
    let ok = |s: u16| (200..300).contains(&s);
    let mut failures = Vec::new();
    for (method, path, body) in concrete_routes() {
        let (p, q) = path
            .split_once('?')
            .map_or((path.as_str(), ""), |(p, q)| (p, q));
        let q = if q.is_empty() {
            String::new()
        } else {
            format!("?{q}")
        };
        let n = p.split('/').count();
        let mut variants: Vec<String> = (1..n)
            .flat_map(|i| {
                [
                    encode_variant(p, Some(i), true),
                    encode_variant(p, Some(i), false),
                ]
            })
            .collect();
        variants.push(encode_variant(p, None, true));
        for (who, token) in &creds {
            let plain = raw_status(&srv, method, &path, token, &body);
            for v in &variants {
                let got = raw_status(&srv, method, &format!("{v}{q}"), token, &body);
                // Without a token, the failures add up to 429 (throttled): a refusal too.
                let refused = |s: u16| s == 401 || s == 403 || s == 429;
                let decided = |s: u16| s == 401 || s == 403;
                // An encoded literal segment routes to no handler (404) where the auth
                // layer let the request through: it serves nothing, so it is allowed too.
                let wrong = (ok(got) && !ok(plain))
                    || (refused(plain) && !refused(got) && got != 400 && got != 404)
                    || (refused(got) && !refused(plain))
                    || (decided(got) && decided(plain) && got != plain);
                if wrong {
                    failures.push(format!("{who} {method} {v}: {got}, plain {path}: {plain}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The reported bypasses, with a token limited to p1: refused, never a bundle.
    let scoped = srv.token("auditor", &["p1"]);
    for p in [
        "/log/tile/%65ntries/000.p/3",
        "/log/tile/entrie%73/000.p/3",
        "/log/tile%2Fentries/000.p/3",
        "/log/tile/entries%2F000.p%2F3",
        "/log/tile/0/../entries/000.p/3",
        "/log/tile/0/%2e%2e/entries/000.p/3",
        "/log/tile//entries/000.p/3",
    ] {
        let got = raw_status(&srv, "GET", p, &scoped, b"");
        assert!(got == 403 || got == 400, "{p}: {got}");
    }

    // An encoded read of a bundle by an unlimited auditor is served and recorded (bulk
    // reads are one record per principal and window, written at the latest on shutdown).
    let r = srv.http().post(
        &srv.at("/v1/tokens"),
        &[("content-type", "application/json")],
        serde_json::to_vec(&json!({"role": "auditor", "name": "enc-reader"})).unwrap(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let auditor = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        raw_status(&srv, "GET", "/log/tile/%65ntries/000.p/3", &auditor, b""),
        200
    );
    let mut srv = srv;
    srv.stop();
    srv.restart();
    let q = wait_events(&srv, "action=audit.query&actor=enc-reader", 1);
    let p = &q[0]["event"]["parameters"];
    assert_eq!(p["endpoint"], "/log/tile/entries/{*rest}", "{p}");
    assert_eq!(p["bulk"]["reads"], 1, "{p}");
}

#[test]
fn denied_paths_hold_no_cleartext_identifiers() {
    let srv = TestServer::start_audited(&[]);
    let producer = srv.token("producer", &[]);
    for p in [
        "/v1/subjects/alice%40example.com/events",
        "/v1/subjects/bob@example.com/events",
        "/v1/resources/user/carol%40example.com",
    ] {
        assert_eq!(raw_status(&srv, "GET", p, &producer, b""), 403, "{p}");
    }
    let officer = srv.http_as(&srv.token("privacy_officer", &[]));
    let deadline = Instant::now() + Duration::from_secs(10);
    let denied = loop {
        let r = officer.get(&srv.at("/v1/events?action=auth.denied&limit=1000"));
        let d = r.json()["events"].as_array().unwrap().clone();
        if d.len() >= 3 {
            break d;
        }
        assert!(Instant::now() < deadline, "denials not recorded: {d:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = serde_json::to_string(&denied).unwrap();
    for name in ["alice", "bob", "carol", "example.com", "%40"] {
        assert!(!text.contains(name), "{name} in {text}");
    }
    // Each names the person by the pseudonym their events carry.
    for e in &denied {
        let path = e["event"]["parameters"]["path"].as_str().unwrap();
        assert!(path.contains("/hmac:"), "{path}");
    }
}

/// Regression (issue 18.7): an admin could create a token named `mlaudit` (the server's own
/// principal) or `offline-cli`, and a producer could write `auth.denied` records.
#[test]
fn principals_cannot_pass_for_mlaudit_itself() {
    let srv = TestServer::start_audited(&[]);
    let admin = srv.http();
    for name in ["mlaudit", "MLAudit", "offline-cli", "unauthenticated"] {
        let r = admin.post(
            &srv.at("/v1/tokens"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&json!({"role": "producer", "name": name})).unwrap(),
        );
        assert_eq!(r.status, 400, "{name}: {}", r.text());
        assert!(r.text().contains("reserved"), "{}", r.text());
    }
    let producer = srv.http_as(&srv.token("producer", &[]));
    for action in ["auth.denied", "audit.query"] {
        let r = srv.post_json(&producer, &json!({"action": action, "actor": {"id": "x"}}));
        assert_eq!(r.status, 400, "{action}: {}", r.text());
        assert!(r.text().contains("reserved"), "{}", r.text());
    }
    // Other auth.* actions of the platform are the producer's to record.
    let r = srv.post_json(
        &producer,
        &json!({"action": "auth.login", "actor": {"id": "x"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// Regression (issues 19.4, 19.6): `/v1/subjects` used a hard-coded role instead of
/// `privacy.cleartext_roles`, and every 403 from a handler was recorded as `project_scope`.
#[test]
fn cleartext_clearance_is_one_decision_and_refusals_record_their_reason() {
    let (_cfg, srv) = start_with_config("[privacy]\ncleartext_roles = [\"admin\"]\n");
    let r = srv.post_json(
        &srv.http(),
        &json!({"action": "model.train", "actor": {"id": "alice@example.com"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    srv.wait_indexed(&srv.http(), 1);
    // The configured role sees cleartext through every cleartext endpoint...
    let admin = srv.http();
    let r = admin.get(&srv.at("/v1/subjects/alice@example.com/events"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["events"][0]["event"]["actor"]["id"],
        "alice@example.com"
    );
    let r = admin.get(&srv.at("/v1/events?cleartext=true"));
    assert_eq!(r.status, 200, "{}", r.text());
    // ...and a role without it, the privacy officer included here, through none.
    let officer = srv.http_as(&srv.token("privacy_officer", &[]));
    for path in [
        "/v1/subjects/alice@example.com/events",
        "/v1/events?cleartext=true",
    ] {
        assert_eq!(officer.get(&srv.at(path)).status, 403, "{path}");
    }
    let scoped = srv.http_as(&srv.token("auditor", &["p1"]));
    assert_eq!(scoped.get(&srv.at("/v1/events?project=p2")).status, 403);
    let denied = wait_events(&srv, "action=auth.denied", 3);
    let reasons: Vec<(String, String)> = denied
        .iter()
        .map(|e| {
            let p = &e["event"]["parameters"];
            (
                p["path"].as_str().unwrap().to_string(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        reasons
            .iter()
            .any(|(p, r)| p.starts_with("/v1/subjects/") && r == "cleartext"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(p, r)| p == "/v1/events" && r == "cleartext"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(p, r)| p == "/v1/events" && r == "project_scope"),
        "{reasons:?}"
    );
}

/// Regression (issue 11.6): `verify --url` with a token that may not read entry bundles
/// printed `verify FAILED … HTTP 403` and exited 2, the code of a log that does not verify.
#[test]
fn verify_with_a_token_that_may_not_read_is_an_error_not_a_verdict() {
    let srv = TestServer::start_audited(&[]);
    seed(&srv);
    let vkey = srv.http().get(&srv.at("/v1/info")).json()["vkey"]
        .as_str()
        .unwrap()
        .to_string();
    let log_url = srv.log_url();
    for token in [srv.token("auditor", &["p1"]), srv.token("producer", &[])] {
        let out = srv.cli(
            &["verify", "--quiet", "--url", &log_url, "--vkey", &vkey],
            &[("MLAUDIT_TOKEN", &token)],
            None,
        );
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("may not read"), "{}", out.stderr);
        assert!(!out.stderr.contains("FAILED"), "{}", out.stderr);
    }
    let out = srv.cli(
        &["verify", "--quiet", "--url", &log_url, "--vkey", &vkey],
        &[],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// Regression (issue 18.5): once the ledger writer stopped on a full disk, reads (whole
/// bundles included) still answered 200 while their `audit.query` records were dropped.
/// Files that cannot grow (RLIMIT_FSIZE, EFBIG) stand in for the full disk.
#[test]
fn reads_that_cannot_be_recorded_are_refused_after_a_full_disk() {
    let srv = TestServer::start_audited_with_file_size_limit(3 << 20);
    let http = srv.http();
    // Incompressible padding, so the segment file grows as fast as the events arrive.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut pad = || {
        (0..2_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("{:016x}", x)
            })
            .collect::<String>()
    };
    let mut refused = None;
    for batch in 0..40 {
        let body: String = (0..20)
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"id": format!("fill-{batch}-{i}"), "action": "dataset.read",
                           "actor": {"id": "svc", "type": "service"},
                           "parameters": {"blob": pad()}})
                )
            })
            .collect();
        let r = srv.post_ndjson(&http, &body);
        if r.status != 201 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("the file size limit was never reached");
    assert_eq!(r.status, 503, "{}", r.text());
    // Then fill what is left with the smallest events, until not even one fits: the
    // disk is full for any record a read would need too.
    let mut full = false;
    for i in 0..10_000 {
        let tiny = json!({"action": "a.b", "actor": {"id": "s"}, "id": format!("t{i}")});
        if srv.post_ndjson(&http, &format!("{tiny}\n")).status == 503 {
            full = true;
            break;
        }
    }
    assert!(full, "the file never filled up");
    let h = http.get(&srv.at("/healthz"));
    assert_eq!(h.status, 503, "{}", h.text());
    assert!(h.text().contains("Free disk space"), "{}", h.text());
    for path in ["/v1/events", "/v1/events/0", "/log/tile/entries/000"] {
        let r = http.get(&srv.at(path));
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        assert_eq!(
            r.json()["error"]["code"],
            "meta_audit_unavailable",
            "{path}"
        );
    }
    // What the meta-audit does not record stays open: hashes and checkpoints.
    assert_eq!(http.get(&srv.at("/log/checkpoint")).status, 200);
}

/// Regression (issue 11.7): one `verify --url` of a large log appended one `audit.query`
/// entry per bundle. Bulk reads are one record per principal and window; searches keep
/// their own records.
#[test]
fn bulk_reads_of_the_log_are_one_record_per_window() {
    let mut srv = TestServer::start_audited(&[]);
    seed(&srv);
    let r = srv.http().post(
        &srv.at("/v1/tokens"),
        &[("content-type", "application/json")],
        serde_json::to_vec(&json!({"role": "auditor", "name": "bulk-reader"})).unwrap(),
    );
    let auditor = srv.http_as(r.json()["token"].as_str().unwrap());
    for _ in 0..5 {
        assert_eq!(
            auditor.get(&srv.at("/log/tile/entries/000.p/3")).status,
            200
        );
    }
    assert_eq!(
        auditor
            .get(&srv.at("/v1/events?action=dataset.read"))
            .status,
        200
    );
    let vkey = srv.http().get(&srv.at("/v1/info")).json()["vkey"]
        .as_str()
        .unwrap()
        .to_string();
    let log_url = srv.log_url();
    let token = r.json()["token"].as_str().unwrap().to_string();
    let out = srv.cli(
        &["verify", "--quiet", "--url", &log_url, "--vkey", &vkey],
        &[("MLAUDIT_TOKEN", &token)],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    srv.stop();
    srv.restart();
    let recorded = wait_events(&srv, "action=audit.query&actor=bulk-reader&order=asc", 2);
    let bulk: Vec<&Value> = recorded
        .iter()
        .filter(|e| e["event"]["parameters"]["endpoint"] == "/log/tile/entries/{*rest}")
        .collect();
    assert_eq!(bulk.len(), 1, "{recorded:?}");
    let p = &bulk[0]["event"]["parameters"];
    assert_eq!(p["bulk"]["reads"], 6, "5 reads and the verifier's one: {p}");
    assert!(
        p["bulk"]["from"].is_string() && p["bulk"]["to"].is_string(),
        "{p}"
    );
    assert!(recorded
        .iter()
        .any(|e| e["event"]["parameters"]["endpoint"] == "/v1/events"));
}

/// Regression (issue 18.13): creating a token on a full disk answered 400, as if the
/// request were wrong; it is the server's storage, and temporary: 503.
#[test]
fn a_token_store_that_cannot_write_answers_503() {
    let srv = TestServer::start_audited_with_file_size_limit(256 << 10);
    let admin = srv.http();
    let mut last = None;
    for i in 0..400 {
        let r = admin.post(
            &srv.at("/v1/tokens"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&json!({"role": "producer", "name": format!("p{i}")})).unwrap(),
        );
        if r.status != 201 {
            last = Some(r);
            break;
        }
    }
    let r = last.expect("the token store never filled up");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "storage_failure");
}
