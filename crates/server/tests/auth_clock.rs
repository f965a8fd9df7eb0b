//! Token expiry and the failed-authentication throttle through the real router and auth
//! layer, on a manual clock (`auth::Clock`): time moves by `advance`, never by sleeping.
//! The end-to-end versions over HTTP are in `crates/cli/tests/end_to_end/e2e_auth.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use server::config::{FileConfig, ServeConfig};
use server::Server;
use tower_service::Service;

struct Harness {
    server: Server,
    router: axum::Router,
    clock: auth::Clock,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn start(edit: impl FnOnce(&mut FileConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut flags = FileConfig {
            data_dir: Some(data_dir.clone()),
            ..FileConfig::default()
        };
        edit(&mut flags);
        let cfg = ServeConfig::resolve(flags, None, None).unwrap();
        let clock = auth::Clock::manual();
        let server = Server::open_with_clock(&cfg, clock.clone()).unwrap();
        let admin = std::fs::read_to_string(server.admin_token_file.as_ref().unwrap())
            .unwrap()
            .trim()
            .to_string();
        Harness {
            router: server::router(server.state.clone()),
            server,
            clock,
            admin,
            _dir: dir,
        }
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(path);
        if !token.is_empty() {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let mut req = req.body(Body::from(body.to_string())).unwrap();
        let peer: SocketAddr = "203.0.113.7:4000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let resp = self.router.call(req).await.unwrap();
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let text = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        (
            status,
            retry_after.map_or(text.clone(), |r| format!("retry-after {r}; {text}")),
        )
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.close();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expires_when_the_clock_passes_its_lifetime() {
    let mut h = Harness::start(|_| {});
    let admin = h.admin.clone();
    let (status, text) = h
        .call(
            "POST",
            "/v1/tokens",
            &admin,
            r#"{"role":"auditor","expires_in":"1s"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let created: serde_json::Value = serde_json::from_str(&text).unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    assert_eq!(
        h.call("GET", "/v1/info", &token, "").await.0,
        StatusCode::OK
    );
    h.clock.advance(Duration::from_millis(999));
    assert_eq!(
        h.call("GET", "/v1/info", &token, "").await.0,
        StatusCode::OK
    );
    h.clock.advance(Duration::from_millis(1));
    let (status, text) = h.call("GET", "/v1/info", &token, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(text.contains("expired"), "{text}");
    // The admin token has no expiry.
    h.clock.advance(Duration::from_secs(400 * 86_400));
    assert_eq!(
        h.call("GET", "/v1/info", &admin, "").await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_throttled_for_the_window_and_then_answered_again() {
    let mut h = Harness::start(|f| {
        f.auth_failures_max = Some(5);
        f.auth_denied_events_max = Some(3);
        f.auth_window_ms = Some(1500);
    });
    for i in 0..5 {
        let (status, text) = h.call("GET", "/v1/info", "", "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {i}: {text}");
    }
    let (status, text) = h.call("GET", "/v1/info", "", "").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(
        text.starts_with("retry-after 2;") && text.contains("too_many_failures"),
        "{text}"
    );
    // While throttled, a valid token from that source is served.
    let admin = h.admin.clone();
    assert_eq!(
        h.call("GET", "/v1/info", &admin, "").await.0,
        StatusCode::OK
    );
    h.clock.advance(Duration::from_millis(1499));
    let (status, text) = h.call("GET", "/v1/info", "", "").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.starts_with("retry-after 1;"), "{text}");
    // After the window, failures are answered 401 again.
    h.clock.advance(Duration::from_millis(1));
    assert_eq!(
        h.call("GET", "/v1/info", "", "").await.0,
        StatusCode::UNAUTHORIZED
    );
}
