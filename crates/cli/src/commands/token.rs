//! `mlaudit token create|list|revoke`: through the API as admin (`/v1/tokens`), or offline
//! on a stopped server's data directory (`--data-dir`, which takes the server's lock).
//! Offline changes are appended to the ledger as `audit.token` events when the server
//! next starts.

use auth::tokens::OFFLINE_PRINCIPAL;
use std::path::PathBuf;

use auth::Role;
use serde_json::json;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::http::{call_json, ServerArgs};
use crate::output::{print_list, time_ms, FormatArgs};
use auth::tokens::{now_ms, parse_lifetime_ms, NewToken, TokenInfo, TokenStore};

/// `mlaudit token …`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token: prints the token alone on stdout (shown once), details on stderr.
    Create(CreateArgs),
    /// List tokens (never their secrets): a table, or --json / --csv.
    List(ListArgs),
    /// Revoke a token by id or name; effective for the next request.
    Revoke(RevokeArgs),
}

/// Where the tokens are: a server (as admin) or a stopped server's data directory.
#[derive(Args)]
pub struct Target {
    #[command(flatten)]
    server: ServerArgs,
    /// Work offline on this data directory (the server must be stopped).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// `mlaudit token list`.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    format: FormatArgs,
}

/// `mlaudit token create`.
#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    target: Target,
    /// producer, auditor, privacy_officer or admin.
    #[arg(long)]
    role: String,
    /// Limit the token to a project (`context.project`). Repeatable.
    #[arg(long = "project")]
    projects: Vec<String>,
    /// Unique name, recorded as `source.principal` of what it ingests [default: ROLE-ID].
    #[arg(long)]
    name: Option<String>,
    /// Lifetime, e.g. 90d, 12h, 30m.
    #[arg(long)]
    expires: Option<String>,
}

/// `mlaudit token revoke`.
#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    target: Target,
    /// The token's id (from `token list`) or name.
    id: String,
}

/// Runs a `token` subcommand.
pub fn run(c: TokenCommand) -> anyhow::Result<i32> {
    match c {
        TokenCommand::Create(a) => create(a),
        TokenCommand::List(t) => list(t),
        TokenCommand::Revoke(a) => revoke(a),
    }
}

fn offline_store(
    dir: &std::path::Path,
) -> anyhow::Result<(std::fs::File, std::sync::Arc<TokenStore>)> {
    if !dir.join("keys").exists() {
        bail!(
            "{} is not an mlaudit data directory (no keys/)",
            dir.display()
        );
    }
    let lock = datadir::lock_data_dir(dir)
        .context("offline token commands need the server to be stopped")?;
    Ok((lock, TokenStore::open(dir)?))
}

fn create(a: CreateArgs) -> anyhow::Result<i32> {
    let role = Role::parse(&a.role).with_context(|| {
        format!(
            "unknown role {:?}; expected producer, auditor, privacy_officer or admin",
            a.role
        )
    })?;
    let projects = (!a.projects.is_empty()).then_some(a.projects);
    let (token, info): (String, TokenInfo) = match &a.target.data_dir {
        Some(dir) => {
            let (_lock, store) = offline_store(dir)?;
            let expires_at_ms = a
                .expires
                .as_deref()
                .map(parse_lifetime_ms)
                .transpose()?
                .map(|ms| now_ms() + ms);
            let (token, info) = store.create(NewToken {
                name: a.name,
                role,
                projects,
                expires_at_ms,
            })?;
            store.add_pending(&info.audit_record("create", OFFLINE_PRINCIPAL))?;
            (token, info)
        }
        None => {
            let body = json!({
                "role": role.as_str(),
                "name": a.name,
                "projects": projects,
                "expires_in": a.expires,
            });
            let v = call_json(
                &a.target.server,
                reqwest::Method::POST,
                "/v1/tokens",
                Some(body),
            )?;
            let token = v["token"]
                .as_str()
                .context("the server's answer has no token")?
                .to_string();
            let info: TokenInfo = serde_json::from_value(v["info"].clone())
                .context("the server's answer has no token details")?;
            (token, info)
        }
    };
    eprintln!("{}", describe(&info));
    eprintln!("mlaudit: the token is shown once; store it as a secret");
    outln!("{token}");
    Ok(0)
}

fn list(a: ListArgs) -> anyhow::Result<i32> {
    let t = a.target;
    let infos: Vec<TokenInfo> = match &t.data_dir {
        Some(dir) => offline_store(dir)?.1.list(),
        None => {
            let v = call_json(&t.server, reqwest::Method::GET, "/v1/tokens", None)?;
            serde_json::from_value(v["tokens"].clone()).context("the server's token list")?
        }
    };
    let mut rows = vec![[
        "ID",
        "NAME",
        "ROLE",
        "PROJECTS",
        "CREATED",
        "EXPIRES",
        "LAST_USED",
        "REVOKED",
    ]
    .map(String::from)
    .to_vec()];
    for i in &infos {
        rows.push(vec![
            i.id.clone(),
            i.name.clone(),
            i.role.to_string(),
            projects(i),
            time_ms(Some(i.created_at_ms)),
            time_ms(i.expires_at_ms),
            time_ms(i.last_used_at_ms),
            time_ms(i.revoked_at_ms),
        ]);
    }
    print_list(a.format, &rows, &serde_json::to_value(&infos)?)?;
    Ok(0)
}

fn revoke(a: RevokeArgs) -> anyhow::Result<i32> {
    let info: TokenInfo = match &a.target.data_dir {
        Some(dir) => {
            let (_lock, store) = offline_store(dir)?;
            let info = store
                .revoke(&a.id)?
                .with_context(|| format!("no token with id or name {:?}", a.id))?;
            store.add_pending(&info.audit_record("revoke", OFFLINE_PRINCIPAL))?;
            info
        }
        None => {
            let path = format!("/v1/tokens/{}", urlencode(&a.id));
            let v = call_json(&a.target.server, reqwest::Method::DELETE, &path, None)?;
            serde_json::from_value(v["revoked"].clone()).context("the server's answer")?
        }
    };
    eprintln!("revoked: {}", describe(&info));
    Ok(0)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The projects a token is limited to, or `*` for all.
fn projects(i: &TokenInfo) -> String {
    i.projects
        .as_ref()
        .map(|p| p.join(","))
        .unwrap_or_else(|| "*".into())
}

/// One line per token: id, name, role, projects, created, expires, last used, revoked.
fn describe(i: &TokenInfo) -> String {
    format!(
        "id={} name={} role={} projects={} created={} expires={} last_used={} revoked={}",
        i.id,
        i.name,
        i.role,
        projects(i),
        time_ms(Some(i.created_at_ms)),
        time_ms(i.expires_at_ms),
        time_ms(i.last_used_at_ms),
        time_ms(i.revoked_at_ms),
    )
}
