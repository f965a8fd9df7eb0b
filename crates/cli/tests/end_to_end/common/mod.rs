//! Shared helpers of the end-to-end tests: they drive the real `mlaudit`
//! binary (server and CLI) over loopback HTTP.
//!
//! Every test binary includes this module with `mod common;` and uses only a
//! part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value;

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mlaudit"))
}

/// The repository's `testdata/` (vectors from other implementations; see its README).
pub fn testdata_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Base64 (standard) of bytes.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes a base64 32-byte hash.
pub fn unb64_hash(s: &str) -> tlog::Hash {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("{s:?} is not base64: {e}"))
        .try_into()
        .unwrap_or_else(|_| panic!("{s:?} is not a 32-byte hash"))
}

/// A command without any MLAUDIT_* variable of the environment the tests run in.
fn clean_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MLAUDIT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// How long a server may take to start listening (debug build, recovery).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `mlaudit serve` on a free loopback port, with its own data
/// directory. Killed (SIGKILL) on drop.
pub struct TestServer {
    child: Option<Child>,
    /// The data directory (inside `_tmp` unless given).
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Where it listens (changes on restart: port 0 each time).
    pub addr: SocketAddr,
    /// Verifier key it announced.
    pub vkey: String,
    /// Log origin it announced.
    pub origin: String,
    /// The admin token the server created on first start (`<data-dir>/admin.token`).
    pub admin_token: String,
    /// `http` or `https`, as announced.
    pub scheme: String,
    /// Everything it wrote to stderr, for failure messages.
    log: Arc<Mutex<Vec<String>>>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    /// RLIMIT_FSIZE of the server process (with SIGXFSZ ignored, so writes past it fail
    /// with EFBIG like writes to a full disk fail with ENOSPC).
    file_size_limit: Option<u64>,
}

impl TestServer {
    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server on a fresh temporary data directory with extra `serve` flags, and
    /// with meta-audit off: the ledger and query tests count entries exactly, and
    /// `audit.query` records of their own reads would make those counts depend on timing.
    /// Access-control tests use [`TestServer::start_audited`].
    pub fn start_with(extra: &[&str]) -> TestServer {
        let mut all = vec!["--no-meta-audit"];
        all.extend_from_slice(extra);
        Self::start_audited(&all)
    }

    /// Starts a server configured like production (every read recorded), with extra flags.
    pub fn start_audited(extra: &[&str]) -> TestServer {
        Self::start_audited_env(extra, &[])
    }

    /// [`TestServer::start_audited`] with environment variables for the server (e.g.
    /// `MLAUDIT_LOG=debug`).
    pub fn start_audited_env(extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        Self::spawned(extra, env, None)
    }

    /// [`TestServer::start_audited`] in a process whose files cannot grow past `bytes`: a
    /// full disk, for the ledger's segment files, without privileges or a small filesystem.
    pub fn start_audited_with_file_size_limit(bytes: u64) -> TestServer {
        Self::spawned(&[], &[], Some(bytes))
    }

    /// A server on a fresh temporary data directory, started.
    fn spawned(extra: &[&str], env: &[(&str, &str)], file_size_limit: Option<u64>) -> TestServer {
        let tmp = tempfile::tempdir().expect("creating a temp dir");
        // A directory that does not exist yet: the server creates it.
        let data_dir = tmp.path().join("data");
        let mut s = TestServer {
            child: None,
            data_dir,
            _tmp: Some(tmp),
            addr: "127.0.0.1:0".parse().unwrap(),
            vkey: String::new(),
            origin: String::new(),
            admin_token: String::new(),
            scheme: "http".into(),
            log: Arc::new(Mutex::new(Vec::new())),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            file_size_limit,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let mut cmd = clean_command(&bin());
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", "127.0.0.1:0", "--checkpoint-interval-ms", "100"])
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = self.file_size_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let r = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("starting mlaudit serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let log = self.log.clone();
        log.lock().unwrap().push("---- start ----".into());
        std::thread::spawn(move || {
            // Keeps draining stderr for the whole life of the process.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(v) = line.strip_prefix("mlaudit: verifier key ") {
                        self.vkey = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("mlaudit: log origin ") {
                        self.origin = v.trim().to_string();
                    } else if let Some(i) = line.find("listening on http") {
                        let rest = &line[i + "listening on ".len()..];
                        let (scheme, addr) = rest.split_once("://").expect("scheme://addr");
                        self.scheme = scheme.to_string();
                        self.addr = addr.trim().parse().unwrap_or_else(|e| {
                            panic!("cannot parse the address in {line:?}: {e}")
                        });
                        assert!(self.addr.ip().is_loopback(), "not loopback: {line}");
                        assert!(!self.vkey.is_empty(), "no verifier key announced");
                        let path = self.data_dir.join("admin.token");
                        self.admin_token = std::fs::read_to_string(&path)
                            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
                            .trim()
                            .to_string();
                        return;
                    }
                }
                Err(_) => {
                    let status = self.child.as_mut().unwrap().try_wait().ok().flatten();
                    panic!(
                        "the server did not announce its address (exit status {status:?}); its stderr:\n{}",
                        self.stderr_text()
                    );
                }
            }
        }
    }

    /// A blocking HTTP client for this server. Tests build their clients here, so that
    /// credentials the server requires are added in one place.
    /// The client sends the admin token.
    pub fn http(&self) -> Http {
        Http::new().with_token(&self.admin_token)
    }

    /// A client that sends `token` (or, with `""`, no token at all).
    pub fn http_as(&self, token: &str) -> Http {
        if token.is_empty() {
            Http::new()
        } else {
            Http::new().with_token(token)
        }
    }

    /// Creates a token with `role`, limited to `projects` unless empty, through the API as
    /// admin; returns the token.
    pub fn token(&self, role: &str, projects: &[&str]) -> String {
        let mut body = serde_json::json!({"role": role});
        if !projects.is_empty() {
            body["projects"] = serde_json::json!(projects);
        }
        let r = self.http().post(
            &self.at("/v1/tokens"),
            &[("content-type", "application/json")],
            serde_json::to_vec(&body).unwrap(),
        );
        assert_eq!(r.status, 201, "creating a {role} token: {}", r.text());
        let t = r.json()["token"].as_str().unwrap().to_string();
        assert!(t.starts_with("mla_"), "{t}");
        t
    }

    /// Runs `mlaudit ARGS…` against this server: `MLAUDIT_URL` and `MLAUDIT_TOKEN` (the admin
    /// token) plus `env`, which may override them.
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> CliOut {
        let url = self.url();
        let mut all: Vec<(&str, &str)> = vec![
            ("MLAUDIT_URL", url.as_str()),
            ("MLAUDIT_TOKEN", self.admin_token.as_str()),
        ];
        all.extend_from_slice(env);
        cli(args, &all, stdin)
    }

    /// What the server wrote to stderr so far, across restarts.
    pub fn stderr_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `http://127.0.0.1:PORT` (or https with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// `http://127.0.0.1:PORT/log/` (the tlog-tiles prefix).
    pub fn log_url(&self) -> String {
        format!("{}/log/", self.url())
    }

    /// An endpoint URL.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url())
    }

    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("server not running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaping the server");
    }

    /// SIGTERM, then wait for a graceful exit; panics unless it exits 0.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server not running");
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "sending SIGTERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for the server") {
                assert!(
                    status.success(),
                    "graceful stop exited with {status}; stderr:\n{}",
                    self.stderr_text()
                );
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not stop within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                    self.stderr_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data directory (new port).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Starts the server again on the same data directory with other extra `serve` flags.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.spawn();
    }

    /// The tree size the server reports in /v1/info.
    pub fn size(&self, http: &Http) -> u64 {
        let r = http.get(&self.at("/v1/info"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["size"].as_u64().expect("size in /v1/info")
    }

    /// The verifier of this log.
    pub fn verifier(&self) -> tlog::Verifier {
        tlog::Verifier::parse(&self.vkey).expect("the announced vkey parses")
    }

    /// The current checkpoint note and its verified contents.
    pub fn checkpoint(&self, http: &Http) -> (String, tlog::Checkpoint) {
        let r = http.get(&self.at("/log/checkpoint"));
        assert_eq!(r.status, 200, "{}", r.text());
        let note = r.text();
        let cp = tlog::open_checkpoint(&note, &self.verifier())
            .unwrap_or_else(|e| panic!("checkpoint does not verify: {e}\n{note}"));
        (note, cp)
    }

    /// Waits (up to 10 s) for a checkpoint of at least `size`.
    pub fn wait_checkpoint(&self, http: &Http, size: u64) -> (String, tlog::Checkpoint) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = http.get(&self.at("/log/checkpoint"));
            if r.status == 200 {
                let note = r.text();
                let cp = tlog::open_checkpoint(&note, &self.verifier())
                    .unwrap_or_else(|e| panic!("checkpoint does not verify: {e}\n{note}"));
                if cp.size >= size {
                    return (note, cp);
                }
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint of size {size} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Asserts that /healthz answers 200.
    /// Sends `ndjson` in batches of 500, one POST at a time (so the log order is the
    /// send order); returns the events in seq order.
    pub fn send_in_order(&self, http: &Http, ndjson: &str) -> Vec<Value> {
        let lines: Vec<&str> = ndjson.lines().filter(|l| !l.trim().is_empty()).collect();
        for chunk in lines.chunks(500) {
            let r = self.post_ndjson(http, &(chunk.join("\n") + "\n"));
            assert!(r.status == 200 || r.status == 201, "ingest: {}", r.text());
        }
        lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The index lag the server reports in /metrics (`mlaudit_index_lag_entries`).
    pub fn index_lag(&self, http: &Http) -> u64 {
        let text = http.get(&self.at("/metrics")).text();
        text.lines()
            .find_map(|l| l.strip_prefix("mlaudit_index_lag_entries "))
            .unwrap_or_else(|| panic!("no mlaudit_index_lag_entries in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// Waits until the log holds `size` entries and the index holds all of them.
    pub fn wait_indexed(&self, http: &Http, size: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.size(http) < size || self.index_lag(http) > 0 {
            assert!(Instant::now() < deadline, "the index did not catch up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn assert_healthy(&self, http: &Http) {
        let r = http.get(&self.at("/healthz"));
        assert_eq!(r.status, 200, "healthz: {}", r.text());
    }

    /// POSTs NDJSON to /v1/events.
    pub fn post_ndjson(&self, http: &Http, body: &str) -> Resp {
        http.post(
            &self.at("/v1/events"),
            &[("content-type", "application/x-ndjson")],
            body.as_bytes().to_vec(),
        )
    }

    /// POSTs a JSON value (object or array) to /v1/events.
    pub fn post_json(&self, http: &Http, v: &Value) -> Resp {
        http.post(
            &self.at("/v1/events"),
            &[("content-type", "application/json")],
            serde_json::to_vec(v).unwrap(),
        )
    }

    /// The stored entry's exact bytes.
    pub fn raw_entry(&self, http: &Http, seq: u64) -> Vec<u8> {
        let r = http.get(&self.at(&format!("/v1/events/{seq}?format=raw")));
        assert_eq!(r.status, 200, "entry {seq}: {}", r.text());
        r.body
    }

    /// Every stored entry, read through the tlog-tiles entry bundles.
    pub fn all_entries(&self, http: &Http, size: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(size as usize);
        let mut b = 0;
        while b * tlog::TILE_WIDTH < size {
            let width = (size - b * tlog::TILE_WIDTH).min(tlog::TILE_WIDTH);
            let t = tlog::TileRef::new(tlog::TileKind::Entries, b, width).unwrap();
            let r = http.get(&self.at(&format!("/log/{}", t.path())));
            assert_eq!(r.status, 200, "bundle {}: {}", t.path(), r.text());
            let entries = tlog::parse_bundle(&r.body).expect("bundle parses");
            assert_eq!(entries.len() as u64, width, "bundle {b} width");
            out.extend(entries.into_iter().map(<[u8]>::to_vec));
            b += 1;
        }
        out
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP answer, fully read.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("answer ({}) is not JSON: {e}: {}", self.status, self.text())
        })
    }
}

/// A blocking HTTP client over reqwest (its own small tokio runtime).
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    token: Option<String>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A client with a 30 s timeout.
    pub fn new() -> Http {
        Self::trusting(None)
    }

    /// A client that also trusts the CA certificate `ca_pem` (for a TLS test server).
    pub fn trusting(ca_pem: Option<&[u8]>) -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).expect("a PEM cert"));
        }
        let client = b.build().expect("reqwest client");
        Http {
            rt,
            client,
            token: None,
        }
    }

    /// This client, sending `token` as a Bearer token on every request.
    pub fn with_token(mut self, token: &str) -> Http {
        self.token = Some(token.to_string());
        self
    }

    /// Any method, with headers and a body; panics on a transport error.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        self.rt
            .block_on(async {
                let mut rb = self.authed(self.client.request(m, url)).body(body);
                for (k, v) in headers {
                    rb = rb.header(*k, *v);
                }
                read(rb.send().await?).await
            })
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// GET; panics on a transport error.
    pub fn get(&self, url: &str) -> Resp {
        self.try_get(url)
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// GET.
    pub fn try_get(&self, url: &str) -> Result<Resp, reqwest::Error> {
        self.rt.block_on(async {
            let resp = self.authed(self.client.get(url)).send().await?;
            read(resp).await
        })
    }

    /// POST with the given headers (no Content-Type unless given); panics on a transport error.
    pub fn post(&self, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
        self.try_post(url, headers, body)
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
    }

    /// POST.
    pub fn try_post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Resp, reqwest::Error> {
        self.rt.block_on(async {
            let mut rb = self.authed(self.client.post(url)).body(body);
            for (k, v) in headers {
                rb = rb.header(*k, *v);
            }
            let resp = rb.send().await?;
            read(resp).await
        })
    }
}

async fn read(resp: reqwest::Response) -> Result<Resp, reqwest::Error> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?.to_vec();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct CliOut {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOut {
    /// Panics (showing both streams) unless the exit code is 0.
    pub fn assert_ok(&self, what: &str) -> &Self {
        assert_eq!(
            self.code, 0,
            "{what} failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `mlaudit ARGS…` with no MLAUDIT_* variables but `env`, optional
/// stdin, and a 120 s timeout.
pub fn cli(args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> CliOut {
    let mut cmd = clean_command(&bin());
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starting mlaudit");
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mlaudit {args:?} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOut {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&t_out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&t_err.join().unwrap()).into_owned(),
    }
}

/// `n` NDJSON events from the project's seeded generator (what `mlaudit demo events N
/// --seed S` prints; ids `{S:x}-000000000000`…).
pub fn gen_events(n: usize, seed: u64) -> String {
    let opts = sample::Options {
        seed,
        ..Default::default()
    };
    sample::ndjson(n as u64, &opts)
}

/// Every hit of `GET /v1/events?{query}`, following `next` cursors.
pub fn all_hits(srv: &TestServer, http: &Http, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = srv.at(&format!("/v1/events?{query}"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = http.get(&url);
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let v = r.json();
        out.extend(v["events"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// The `id` of every line of an NDJSON text.
pub fn ids_of(ndjson: &str) -> Vec<String> {
    ndjson
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("generated line is JSON");
            v["id"]
                .as_str()
                .expect("generated events have ids")
                .to_string()
        })
        .collect()
}

/// The event id stored in an entry (`event.id`).
pub fn entry_event_id(entry: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(entry).expect("a stored entry is JSON");
    v["event"]["id"].as_str().map(str::to_string)
}

/// A minimal static HTTP/1.1 file server on a free loopback port, serving
/// the files under `root` (GET only; one request per connection).
pub struct StaticServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StaticServer {
    /// Serves `root`.
    pub fn start(root: &Path) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = serve_one(conn, &root);
                }
            }
        });
        StaticServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut conn: TcpStream, root: &Path) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers.
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("/");
    let rel = path.split('?').next().unwrap_or("").trim_start_matches('/');
    let file = if method != "GET" || rel.split('/').any(|c| c == ".." || c.is_empty()) {
        None
    } else {
        std::fs::read(root.join(rel)).ok()
    };
    let (status, body) = match file {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b"not found\n".to_vec()),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(&body)?;
    conn.flush()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
