//! `mlaudit verify`: a whole log, offline on a data directory or over HTTP from any C2SP
//! tlog-tiles log.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use indicatif::ProgressBar;
use ledger::verify::{
    parse_kept_entries, verify_log, LogSource, SourceSlot, KEPT_ENTRIES_BYTES_MAX,
};

use crate::http::{http, runtime};

/// `mlaudit verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Verify the data directory of a (stopped or running) server, offline.
    #[arg(long, conflicts_with = "url", required_unless_present = "url")]
    data_dir: Option<PathBuf>,
    /// Verify a C2SP tlog-tiles log over HTTP; the URL is the prefix holding
    /// `checkpoint` and `tile/` (for mlaudit: http://HOST:PORT/log/).
    #[arg(long)]
    url: Option<String>,
    /// Verifier key (`name+hexid+base64`); with --data-dir, default: <data-dir>/keys/log.vkey.
    #[arg(long, env = "MLAUDIT_VKEY", required_unless_present = "data_dir")]
    vkey: Option<String>,
    /// A checkpoint saved earlier: also prove the log still contains that history.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// API token for --url (sent as a Bearer token).
    #[arg(long, env = "MLAUDIT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM certificate of a CA to trust for an https:// --url.
    #[arg(long, env = "MLAUDIT_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Reads a C2SP tlog-tiles log over HTTP.
pub(crate) struct HttpSource {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Set when the log could not be read at all (refused, unreachable): not a verdict on
    /// the log, so `verify` exits 1, not 2.
    unreadable: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// Largest response `verify --url` reads: a full entry bundle of maximal entries (256 ×
/// (2 + 65,535) bytes) and some slack. A server sending more is refused, not buffered.
pub const RESPONSE_BYTES_MAX: usize = 256 * (2 + 65_535) + 4096;

// The kept entries of a bundle (a position byte more per entry) fit the same bound.
const _: () = assert!(KEPT_ENTRIES_BYTES_MAX <= RESPONSE_BYTES_MAX);

impl HttpSource {
    fn fetch(&self, path: &str) -> Result<Vec<u8>, String> {
        self.fetch_or_gone(path)?
            .ok_or_else(|| format!("{}/{path}: HTTP 410 Gone", self.base.trim_end_matches('/')))
    }

    /// Like `fetch`, but `None` for 410 Gone (an entry bundle pruned by retention).
    fn fetch_or_gone(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.fetch_unless(path, reqwest::StatusCode::GONE)
    }

    /// Like `fetch`, but `None` for 404 Not Found (an endpoint the log does not have).
    fn fetch_or_missing(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.fetch_unless(path, reqwest::StatusCode::NOT_FOUND)
    }

    /// Like `fetch`, but `None` when the answer is `absent`.
    fn fetch_unless(
        &self,
        path: &str,
        absent: reqwest::StatusCode,
    ) -> Result<Option<Vec<u8>>, String> {
        let url = format!("{}/{path}", self.base.trim_end_matches('/'));
        self.rt.block_on(async {
            let mut rb = self.client.get(&url);
            if let Some(t) = &self.token {
                rb = rb.bearer_auth(t);
            }
            let unreadable = |why: String| {
                *self.unreadable.lock().unwrap() = Some(why.clone());
                why
            };
            let mut resp = rb
                .send()
                .await
                .map_err(|e| unreadable(format!("{url}: {e}")))?;
            let status = resp.status();
            if status == absent {
                return Ok(None);
            }
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err(unreadable(format!(
                    "{url}: HTTP {status}: the token may not read this (verifying a whole log \
                     needs a token of a reading role that is not limited to projects)"
                )));
            }
            if !status.is_success() {
                return Err(format!("{url}: HTTP {status}"));
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {e}"))? {
                if body.len() + chunk.len() > RESPONSE_BYTES_MAX {
                    return Err(format!(
                        "{url}: the response is over {RESPONSE_BYTES_MAX} bytes, more than any \
                         tile or bundle can be"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Some(body))
        })
    }
}

impl LogSource for HttpSource {
    fn checkpoint(&self) -> Result<String, String> {
        String::from_utf8(self.fetch("checkpoint")?).map_err(|_| "checkpoint is not UTF-8".into())
    }
    fn bundle(&self, index: u64, width: u64) -> Result<Vec<u8>, String> {
        let t =
            tlog::TileRef::new(tlog::TileKind::Entries, index, width).map_err(|e| e.to_string())?;
        self.fetch(&t.path())
    }
    fn tile(&self, level: u8, index: u64, width: u64) -> Result<Vec<u8>, String> {
        let t = tlog::TileRef::new(tlog::TileKind::Hash(level), index, width)
            .map_err(|e| e.to_string())?;
        self.fetch(&t.path())
    }
    /// A bundle answered 410 Gone holds pruned entries. An mlaudit server then answers
    /// `kept/<N>[.p/<W>]` with the entries it still stores and their positions, which are
    /// re-hashed like any entry; only the positions absent from it count as pruned (their
    /// leaf hashes come from the hash tile). A log without that endpoint (404: another
    /// C2SP server) says only that the whole bundle is gone, so all of it counts as pruned.
    fn slots(&self, index: u64, width: u64) -> Result<Vec<SourceSlot>, String> {
        let t =
            tlog::TileRef::new(tlog::TileKind::Entries, index, width).map_err(|e| e.to_string())?;
        if let Some(bytes) = self.fetch_or_gone(&t.path())? {
            return Ok(tlog::parse_bundle(&bytes)
                .map_err(|e| format!("entry bundle {index} is malformed: {e}"))?
                .into_iter()
                .map(|e| SourceSlot::Entry(e.to_vec()))
                .collect());
        }
        let kept = t
            .path()
            .strip_prefix("tile/entries/")
            .map(|rest| format!("kept/{rest}"))
            .expect("an entry bundle path starts with tile/entries/");
        match self.fetch_or_missing(&kept)? {
            None => Ok(vec![SourceSlot::Pruned(None); width as usize]),
            Some(bytes) => parse_kept_entries(&bytes, width)
                .map_err(|e| format!("the kept entries of bundle {index} are malformed: {e}")),
        }
    }
}

/// Pruned seq ranges `mlaudit verify` prints.
pub(crate) const PRUNED_RANGES_SHOWN: usize = 50;

/// `mlaudit verify`.
pub fn verify(a: VerifyArgs) -> anyhow::Result<i32> {
    let saved = match &a.checkpoint {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let unreadable = std::sync::Arc::new(std::sync::Mutex::new(None));
    let (source, vkey, extra): (Box<dyn LogSource>, String, Option<u64>) =
        match (&a.data_dir, &a.url) {
            (Some(dir), _) => {
                let vkey = match &a.vkey {
                    Some(v) => v.clone(),
                    None => {
                        let p = dir.join("keys").join("log.vkey");
                        std::fs::read_to_string(&p)
                            .with_context(|| format!("reading {} (or pass --vkey)", p.display()))?
                            .trim()
                            .to_string()
                    }
                };
                let store =
                    ledger::Store::open_read_only(Arc::new(ledger::fs::StdFs), &dir.join("ledger"))
                        .with_context(|| format!("opening the ledger in {}", dir.display()))?;
                let size = store.size();
                (Box::new(store), vkey, Some(size))
            }
            (None, Some(url)) => {
                let src = HttpSource {
                    rt: runtime()?,
                    client: http(a.ca_cert.as_deref())?,
                    base: url.clone(),
                    token: a.token.clone(),
                    unreadable: unreadable.clone(),
                };
                (
                    Box::new(src),
                    a.vkey.clone().expect("required by clap"),
                    None,
                )
            }
            (None, None) => bail!("give --data-dir or --url"),
        };
    let verifier = tlog::Verifier::parse(&vkey).context("parsing the verifier key")?;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(crate::output::progress_style("entries", true));
    let result = verify_log(
        source.as_ref(),
        &verifier,
        saved.as_deref(),
        &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    );
    bar.finish_and_clear();
    match result {
        Ok(r) => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let mut line = format!(
                "ok: size {} root {} verified in {:.2} s ({:.0} entries/s)",
                r.size,
                b64.encode(r.root),
                r.elapsed.as_secs_f64(),
                r.entries_per_sec()
            );
            if saved.is_some() {
                line.push_str(", consistent with the saved checkpoint");
            }
            if let Some(stored) = extra.filter(|s| *s > r.size) {
                line.push_str(&format!(
                    "; {} newer entries are not covered by a checkpoint yet (a running server signs a checkpoint over them within its checkpoint interval, a stopped one when it next starts)",
                    stored - r.size
                ));
            }
            outln!("{line}");
            if !r.pruned.is_empty() {
                // Pruned by retention: payloads gone, leaf hashes verified from the tiles.
                let shown: Vec<String> = r
                    .pruned
                    .iter()
                    .take(PRUNED_RANGES_SHOWN)
                    .map(|(a, b)| format!("{a}-{}", b - 1))
                    .collect();
                let more = if r.pruned.len() > PRUNED_RANGES_SHOWN {
                    format!(", … ({} ranges in all)", r.pruned.len())
                } else {
                    String::new()
                };
                outln!(
                    "pruned: {} entries by retention (leaf hashes kept and verified), seqs {}{more}",
                    r.pruned_entries(),
                    shown.join(", ")
                );
            }
            Ok(0)
        }
        Err(e) => {
            if let Some(why) = unreadable.lock().unwrap().take() {
                eprintln!(
                    "mlaudit: error: the log could not be read, so it was not verified: {why}"
                );
                return Ok(1);
            }
            eprintln!("mlaudit: verify FAILED: {e}");
            Ok(2)
        }
    }
}
