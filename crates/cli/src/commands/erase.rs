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
    /// Erase without asking (required when standard input is not a terminal).
    #[arg(long)]
    yes: bool,
}

/// `mlaudit erase SUBJECT`: `POST /v1/subjects/{id}/erase`; prints the server's answer
/// (the subject's pseudonym, whether a key was destroyed, the audit.erase receipt).
pub fn erase(a: EraseArgs) -> anyhow::Result<i32> {
    if !a.yes {
        use std::io::{BufRead, IsTerminal, Write};
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "erasure cannot be undone: pass --yes to erase {:?} without a prompt",
            a.subject
        );
        eprint!(
            "Erase {:?}? Its key is destroyed: its sealed values can never be shown again. \
             Type yes to go on: ",
            a.subject
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            eprintln!("not erased");
            return Ok(1);
        }
    }
    let path = format!("/v1/subjects/{}/erase", path_segment(&a.subject));
    let v = call_json(&a.server, reqwest::Method::POST, &path, None)?;
    outln!("subject        {}", v["subject"].as_str().unwrap_or(""));
    outln!("key destroyed  {}", v["key_destroyed"]);
    outln!("recorded       audit.erase at seq {}", v["receipt"]["seq"]);
    outln!(
        "what remains   the subject's entries, with pseudonyms only: still verifiable, \
         no longer linkable to the person"
    );
    Ok(0)
}
