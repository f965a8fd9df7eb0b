//! The HTTP side of every client command: where the server is (`ServerArgs`, `MLAUDIT_URL`,
//! `MLAUDIT_TOKEN`), the client, one-call JSON requests, paging, and the server's errors as
//! readable lines.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde_json::Value;

/// Where the server is.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// Server URL.
    #[arg(long, env = "MLAUDIT_URL", default_value = "http://127.0.0.1:7405")]
    pub url: String,
    /// API token (sent as a Bearer token).
    #[arg(long, env = "MLAUDIT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM certificate of a CA to trust for an https:// URL (besides the public web PKI).
    #[arg(long, env = "MLAUDIT_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The HTTP client of every command; `ca_cert` (PEM) is trusted besides the web PKI roots.
pub(crate) fn http(ca_cert: Option<&std::path::Path>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(60));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", path.display());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().context("building the HTTP client")
}

impl ServerArgs {
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.url.trim_end_matches('/'), path)
    }
    pub(crate) fn get(&self, c: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        self.auth(c.get(self.endpoint(path)))
    }
    pub(crate) fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }
}

/// One request with an optional JSON body; the server's JSON answer, or its error.
pub(crate) fn call_json(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    runtime()?.block_on(async {
        let c = http(server.ca_cert.as_deref())?;
        let mut rb = server.auth(c.request(method, server.endpoint(path)));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb
            .send()
            .await
            .with_context(|| format!("contacting {}", server.url))?;
        anyhow::Ok(check(resp).await?.json().await?)
    })
}

/// Turns a non-2xx answer into an error carrying the server's message.
pub(crate) async fn check(resp: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    Err(anyhow!(
        "server answered {status}: {}",
        describe_error(&body)
    ))
}

/// Most `details` lines printed for one error (the server's `FIELD_ERRORS_MAX` per event
/// bounds what one event gives; a batch of 1,000 bad events would print thousands).
pub(crate) const DETAIL_LINES_MAX: usize = 20;

/// The server's JSON error as readable lines, items named "item N".
pub(crate) fn describe_error(body: &str) -> String {
    describe_error_items(body, |index, message| format!("item {index}: {message}"))
}

/// The server's JSON error as readable lines; `item(index, message)` formats
/// one entry of `details` (the message already carries its field).
pub(crate) fn describe_error_items(body: &str, item: impl Fn(usize, &str) -> String) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_string();
    };
    let e = &v["error"];
    let mut out = format!(
        "{} ({})",
        e["message"].as_str().unwrap_or(body),
        e["code"].as_str().unwrap_or("?")
    );
    let details = e["details"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (shown, d) in details.iter().enumerate() {
        if shown == DETAIL_LINES_MAX {
            out.push_str(&format!(
                "\n  … and {} more problems",
                details.len() - shown
            ));
            break;
        }
        let index = d["index"].as_u64().unwrap_or(0) as usize;
        let field = d["field"].as_str().filter(|f| !f.is_empty());
        let message = format!(
            "{}{}",
            field.map(|f| format!("{f}: ")).unwrap_or_default(),
            d["message"].as_str().unwrap_or("")
        );
        out.push_str("\n  ");
        out.push_str(&item(index, &message));
    }
    out
}

/// GETs `url` with `params` (and `cursor`), hands each page to `on_page`, and while
/// `all` follows the cursor found at the JSON pointer `next_at`. Returns the cursor of
/// the page after the last one fetched, if there is more.
pub(crate) async fn for_each_page(
    server: &ServerArgs,
    url: reqwest::Url,
    params: &[(&'static str, String)],
    mut cursor: Option<String>,
    all: bool,
    next_at: &str,
    mut on_page: impl FnMut(Value),
) -> anyhow::Result<Option<String>> {
    let c = http(server.ca_cert.as_deref())?;
    loop {
        let mut query = params.to_vec();
        if let Some(cur) = &cursor {
            query.push(("cursor", cur.clone()));
        }
        let resp = server
            .auth(c.get(url.clone()))
            .query(&query)
            .send()
            .await
            .with_context(|| format!("contacting {}", server.url))?;
        let page: Value = check(resp).await?.json().await?;
        let next = page
            .pointer(next_at)
            .and_then(Value::as_str)
            .map(str::to_string);
        on_page(page);
        match next {
            Some(next) if all => cursor = Some(next),
            other => return Ok(other),
        }
    }
}

/// Percent-encodes one URL path segment.
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GETs `path` (segments pushed onto the server URL) with `params`; the JSON answer.
pub(crate) fn get_json(
    server: &ServerArgs,
    segments: &[&str],
    params: &[(&'static str, String)],
) -> anyhow::Result<Value> {
    let mut url = reqwest::Url::parse(&server.endpoint(""))
        .with_context(|| format!("server URL {:?}", server.url))?;
    url.path_segments_mut()
        .map_err(|_| anyhow!("server URL {:?} cannot take a path", server.url))?
        .pop_if_empty()
        .extend(segments);
    let rt = runtime()?;
    rt.block_on(async {
        let c = http(server.ca_cert.as_deref())?;
        let resp = server
            .auth(c.get(url))
            .query(params)
            .send()
            .await
            .with_context(|| format!("contacting {}", server.url))?;
        Ok(check(resp).await?.json().await?)
    })
}
