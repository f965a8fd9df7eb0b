//! `mlaudit proof SEQ`: an entry's inclusion proof, checked on the client.

use std::time::Duration;

use anyhow::{anyhow, Context};
use base64::Engine;
use clap::Args;
use serde_json::Value;

use crate::http::{check, http, runtime, ServerArgs};

/// `mlaudit proof`.
#[derive(Args)]
pub struct ProofArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The entry's seq.
    seq: u64,
    /// Verifier key to check the checkpoint with (default: the one the server reports).
    #[arg(long, env = "MLAUDIT_VKEY")]
    vkey: Option<String>,
}

pub(crate) fn decode_hash(s: &str) -> anyhow::Result<tlog::Hash> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(s)
        .with_context(|| format!("{s:?} is not base64"))?;
    b.try_into()
        .map_err(|_| anyhow!("{s:?} is not a 32-byte hash"))
}

/// `mlaudit proof SEQ`: checks the checkpoint's signature, the entry's leaf
/// hash and its inclusion proof, all on the client.
pub fn proof(a: ProofArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    rt.block_on(async {
        let c = http(a.server.ca_cert.as_deref())?;
        let s = &a.server;
        let vkey = match &a.vkey {
            Some(v) => v.clone(),
            None => {
                let info: Value = check(s.get(&c, "/v1/info").send().await?)
                    .await?
                    .json()
                    .await?;
                eprintln!(
                    "note: trusting the verifier key the server reports; pass --vkey to pin it"
                );
                info["vkey"].as_str().unwrap_or("").to_string()
            }
        };
        let verifier = tlog::Verifier::parse(&vkey).context("parsing the verifier key")?;
        // The newest entries may not be covered yet: wait up to ~3 s for a checkpoint.
        let mut cp = None;
        for _ in 0..30 {
            let note = check(s.get(&c, "/log/checkpoint").send().await?)
                .await?
                .text()
                .await?;
            let parsed = tlog::open_checkpoint(&note, &verifier)
                .context("the checkpoint's signature does not verify")?;
            if parsed.size > a.seq {
                cp = Some(parsed);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let cp = cp.ok_or_else(|| anyhow!("seq {} is not covered by a checkpoint (yet)", a.seq))?;
        let entry = check(
            s.get(&c, &format!("/v1/events/{}?format=raw", a.seq))
                .send()
                .await?,
        )
        .await?
        .bytes()
        .await?;
        let leaf = tlog::leaf_hash(&entry);
        let p: Value = check(
            s.get(
                &c,
                &format!("/v1/proof/inclusion?seq={}&size={}", a.seq, cp.size),
            )
            .send()
            .await?,
        )
        .await?
        .json()
        .await?;
        let proof: Vec<tlog::Hash> = p["proof"]
            .as_array()
            .ok_or_else(|| anyhow!("the proof answer has no proof"))?
            .iter()
            .map(|h| decode_hash(h.as_str().unwrap_or("")))
            .collect::<anyhow::Result<_>>()?;
        tlog::verify_inclusion(a.seq, cp.size, &leaf, &proof, &cp.root)
            .map_err(|e| anyhow!("the inclusion proof does NOT verify: {e}"))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        outln!(
            "verified: entry {} (leaf {}) is in the log {} of size {} with root {}",
            a.seq,
            b64.encode(leaf),
            cp.origin,
            cp.size,
            b64.encode(cp.root)
        );
        anyhow::Ok(0)
    })
}
