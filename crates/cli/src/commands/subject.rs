//! `mlaudit subject export SUBJECT`: a data subject's events, with their own values in
//! cleartext (GDPR Art. 15).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};

use crate::http::{check, http, path_segment, runtime, ServerArgs};

/// `mlaudit subject …`.
#[derive(clap::Subcommand)]
pub enum SubjectCommand {
    /// Export every event in which a data subject appears (GDPR Art. 15), as JSON.
    Export(SubjectExportArgs),
}

/// `mlaudit subject export SUBJECT --out FILE`.
#[derive(Args)]
pub struct SubjectExportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The data subject: a cleartext identifier or its pseudonym.
    subject: String,
    /// Where to write the JSON export (`-` for stdout).
    #[arg(long)]
    out: PathBuf,
}

/// Runs a `mlaudit subject` command.
pub fn subject(c: SubjectCommand) -> anyhow::Result<i32> {
    match c {
        SubjectCommand::Export(a) => subject_export(a),
    }
}

/// Follows `next` through `GET /v1/subjects/{id}/events` and writes
/// `{"subject","key","events":[…]}`.
pub(crate) fn subject_export(a: SubjectExportArgs) -> anyhow::Result<i32> {
    let rt = runtime()?;
    let (subject, key, events) = rt.block_on(async {
        let c = http(a.server.ca_cert.as_deref())?;
        let path = format!("/v1/subjects/{}/events", path_segment(&a.subject));
        let mut events = Vec::new();
        let mut from: Option<u64> = None;
        loop {
            let mut rb = a.server.get(&c, &path);
            if let Some(f) = from {
                rb = rb.query(&[("from_seq", f)]);
            }
            let resp = rb
                .send()
                .await
                .with_context(|| format!("contacting {}", a.server.url))?;
            let mut page: Value = check(resp).await?.json().await?;
            if let Some(Value::Array(e)) = page.get_mut("events").map(Value::take) {
                events.extend(e);
            }
            match page["next"].as_u64() {
                Some(n) => from = Some(n),
                None => return anyhow::Ok((page["subject"].take(), page["key"].take(), events)),
            }
        }
    })?;
    let n = events.len();
    let doc = json!({"subject": subject, "key": key, "events": events});
    let text = serde_json::to_string_pretty(&doc)? + "\n";
    if a.out.as_os_str() == "-" {
        crate::output::out(format_args!("{text}"));
    } else {
        // Cleartext personal data: readable by the owner only, whatever the umask.
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&a.out)
            .with_context(|| format!("writing {}", a.out.display()))?;
        // An existing file keeps its mode on open: narrow it too.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .and_then(|()| f.write_all(text.as_bytes()))
            .with_context(|| format!("writing {}", a.out.display()))?;
        eprintln!(
            "mlaudit: wrote {n} events of {} to {}",
            doc["subject"].as_str().unwrap_or(""),
            a.out.display()
        );
    }
    Ok(0)
}
