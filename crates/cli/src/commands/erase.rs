//! `mlaudit erase SUBJECT`: destroy a data subject's key (GDPR Art. 17).

use clap::Args;

use crate::http::{call_json, path_segment, ServerArgs};

/// `mlaudit erase SUBJECT`.
#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The data subject: a cleartext identifier (e.g. an e-mail address) or its pseudonym.
    subject: String,
}

/// `mlaudit erase SUBJECT`: `POST /v1/subjects/{id}/erase`; prints the server's answer
/// (the subject's pseudonym, whether a key was destroyed, the audit.erase receipt).
pub fn erase(a: EraseArgs) -> anyhow::Result<i32> {
    let path = format!("/v1/subjects/{}/erase", path_segment(&a.subject));
    let v = call_json(&a.server, reqwest::Method::POST, &path, None)?;
    outln!("subject        {}", v["subject"].as_str().unwrap_or(""));
    outln!("key destroyed  {}", v["key_destroyed"]);
    outln!("recorded       audit.erase at seq {}", v["receipt"]["seq"]);
    Ok(0)
}
