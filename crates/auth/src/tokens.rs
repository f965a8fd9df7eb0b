//! API tokens: `mla_` followed by 256 random bits from the OS CSPRNG (base64url), shown
//! once and stored only as HMAC-SHA256 under a server key (`<data-dir>/keys/token.key`,
//! mode 0600), in `<data-dir>/tokens.sqlite`.
//!
//! Every token is held in memory, keyed by its HMAC; a request's token is hashed, looked
//! up, and the stored hash compared in constant time. The lookup's timing can only leak
//! bits of the HMAC, which nobody without the server key can aim at. Revocation updates
//! the memory and SQLite in one call, so it takes effect for the next request. Last-use
//! times are kept in memory and written by [`TokenStore::flush_last_used`] (every few
//! seconds and on close), never once per request.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rusqlite::{params, Connection};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Principal, Role};
use datadir::{read_secret, write_new};

/// Prefix of every API token, so secret scanners recognise a leaked one.
pub const TOKEN_PREFIX: &str = "mla_";
/// Random bytes in a token (256 bits; the issue asks for at least 128).
pub const TOKEN_SECRET_BYTES: usize = 32;
/// Longest token accepted in a header: longer ones are malformed without hashing them.
pub const TOKEN_CHARS_MAX: usize = 256;
/// Tokens a store holds (live and revoked), so memory stays bounded.
pub const TOKENS_MAX: usize = 100_000;
/// Projects one token may be limited to.
pub const TOKEN_PROJECTS_MAX: usize = 100;
/// Longest token name.
pub const TOKEN_NAME_CHARS_MAX: usize = 64;
/// Name of the token created on first start.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// One token's public details (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenInfo {
    /// Short random id, used to revoke it.
    pub id: String,
    /// Unique name, recorded as `source.principal` of what it ingests.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Projects it is limited to; `None` means all.
    pub projects: Option<Vec<String>>,
    /// Creation time (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// Expiry (ms since the Unix epoch), if any.
    pub expires_at_ms: Option<i64>,
    /// Last successful use (ms since the Unix epoch), if any.
    pub last_used_at_ms: Option<i64>,
    /// Revocation time (ms since the Unix epoch), if revoked.
    pub revoked_at_ms: Option<i64>,
}

impl TokenInfo {
    /// The `audit.token` record of operation `op` (`create`, `revoke`) on this token by `by`.
    pub fn audit_record(&self, op: &str, by: &str) -> serde_json::Value {
        serde_json::json!({
            "action": "audit.token",
            "actor": {"id": by, "type": "principal"},
            "resource": {"type": "token", "id": self.id, "name": self.name},
            "parameters": {
                "op": op,
                "role": self.role.as_str(),
                "projects": self.projects,
                "expires_at_ms": self.expires_at_ms,
            },
        })
    }
}

/// What a new token should be.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Name; `None` picks `<role>-<id>`.
    pub name: Option<String>,
    /// Role.
    pub role: Role,
    /// Projects it is limited to.
    pub projects: Option<Vec<String>>,
    /// Expiry (ms since the Unix epoch).
    pub expires_at_ms: Option<i64>,
}

/// Why a presented token was refused (the `reason` of an `auth.denied` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not `mla_…` of a plausible length.
    Malformed,
    /// No such token.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl Refusal {
    /// The reason's name in `auth.denied` events and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed_token",
            Refusal::Unknown => "unknown_token",
            Refusal::Expired => "expired_token",
            Refusal::Revoked => "revoked_token",
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

struct Entry {
    hash: [u8; 32],
    info: TokenInfo,
}

struct Inner {
    conn: Connection,
    by_hash: HashMap<[u8; 32], Entry>,
    /// Last-use times not yet written to SQLite, by id.
    used: HashMap<String, i64>,
}

/// The token store of one data directory.
pub struct TokenStore {
    key: [u8; 32],
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenStore")
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl TokenStore {
    /// Opens (or creates) the store of `data_dir`: the HMAC key in `keys/token.key` and the
    /// table in `tokens.sqlite`. The caller holds the data directory's lock.
    pub fn open(data_dir: &Path) -> anyhow::Result<Arc<TokenStore>> {
        let key = load_or_create_key(data_dir)?;
        let conn = datadir::open_db(&data_dir.join("tokens.sqlite"))?;
        // Tokens are rare writes whose loss would resurrect a revoked token: full sync.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tokens (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                role TEXT NOT NULL,
                projects TEXT,
                hash BLOB NOT NULL UNIQUE,
                created_at INTEGER NOT NULL,
                expires_at INTEGER,
                last_used_at INTEGER,
                revoked_at INTEGER
            );
            CREATE TABLE IF NOT EXISTS pending_records (
                id INTEGER PRIMARY KEY,
                event TEXT NOT NULL
            );",
        )?;
        let mut by_hash = HashMap::new();
        {
            let mut stmt = conn.prepare(
                "SELECT id, name, role, projects, hash, created_at, expires_at, last_used_at, revoked_at FROM tokens",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ))
            })?;
            for row in rows {
                let (id, name, role, projects, hash, created, expires, used, revoked) = row?;
                let role = Role::parse(&role)
                    .with_context(|| format!("token {id} has an unknown role {role:?}"))?;
                let projects = projects
                    .map(|p| serde_json::from_str::<Vec<String>>(&p))
                    .transpose()
                    .with_context(|| format!("token {id} has malformed projects"))?;
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("token {id} has a hash of the wrong length"))?;
                by_hash.insert(
                    hash,
                    Entry {
                        hash,
                        info: TokenInfo {
                            id,
                            name,
                            role,
                            projects,
                            created_at_ms: created,
                            expires_at_ms: expires,
                            last_used_at_ms: used,
                            revoked_at_ms: revoked,
                        },
                    },
                );
            }
        }
        Ok(Arc::new(TokenStore {
            key,
            inner: Mutex::new(Inner {
                conn,
                by_hash,
                used: HashMap::new(),
            }),
        }))
    }

    fn hash(&self, token: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Checks a presented API token; on success returns its principal and notes its use.
    pub fn authenticate(&self, token: &str, now_ms: i64) -> Result<Principal, Refusal> {
        if !token.starts_with(TOKEN_PREFIX)
            || token.len() > TOKEN_CHARS_MAX
            || token.len() < TOKEN_PREFIX.len() + 16
        {
            return Err(Refusal::Malformed);
        }
        let hash = self.hash(token);
        let mut inner = self.inner.lock().unwrap();
        let entry = inner.by_hash.get(&hash).ok_or(Refusal::Unknown)?;
        if !bool::from(entry.hash.ct_eq(&hash)) {
            return Err(Refusal::Unknown);
        }
        let info = &entry.info;
        if info.revoked_at_ms.is_some() {
            return Err(Refusal::Revoked);
        }
        if info.expires_at_ms.is_some_and(|e| e <= now_ms) {
            return Err(Refusal::Expired);
        }
        let principal = Principal {
            name: info.name.clone(),
            role: info.role,
            projects: info.projects.clone(),
        };
        let id = info.id.clone();
        inner.used.insert(id, now_ms);
        Ok(principal)
    }

    /// Creates a token; returns the secret (shown once) and its details.
    pub fn create(&self, new: NewToken) -> anyhow::Result<(String, TokenInfo)> {
        if let Some(p) = &new.projects {
            if p.is_empty() || p.len() > TOKEN_PROJECTS_MAX {
                bail!("a token may be limited to 1 to {TOKEN_PROJECTS_MAX} projects");
            }
            if p.iter().any(|p| p.is_empty() || p.len() > 256) {
                bail!("a project name must be 1 to 256 characters");
            }
        }
        let mut rng = rand::rngs::OsRng;
        let mut secret = [0u8; TOKEN_SECRET_BYTES];
        rng.fill_bytes(&mut secret);
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let mut idb = [0u8; 6];
        rng.fill_bytes(&mut idb);
        let id: String = idb.iter().map(|b| format!("{b:02x}")).collect();
        let name = new
            .name
            .unwrap_or_else(|| format!("{}-{id}", new.role.as_str()));
        check_name(&name)?;
        let hash = self.hash(&token);
        let info = TokenInfo {
            id,
            name,
            role: new.role,
            projects: new.projects,
            created_at_ms: now_ms(),
            expires_at_ms: new.expires_at_ms,
            last_used_at_ms: None,
            revoked_at_ms: None,
        };
        let mut inner = self.inner.lock().unwrap();
        if inner.by_hash.len() >= TOKENS_MAX {
            bail!("the token store is full ({TOKENS_MAX} tokens)");
        }
        if inner.by_hash.values().any(|e| e.info.name == info.name) {
            bail!("a token named {:?} exists already", info.name);
        }
        let projects = info
            .projects
            .as_ref()
            .map(|p| serde_json::to_string(p).expect("strings serialize"));
        inner.conn.execute(
            "INSERT INTO tokens (id, name, role, projects, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![info.id, info.name, info.role.as_str(), projects, &hash[..], info.created_at_ms, info.expires_at_ms],
        )?;
        inner.by_hash.insert(
            hash,
            Entry {
                hash,
                info: info.clone(),
            },
        );
        Ok((token, info))
    }

    /// Revokes a token by id (or name); effective for the next request. Returns its details,
    /// or `None` if there is no such token. Revoking twice keeps the first time.
    pub fn revoke(&self, id_or_name: &str) -> anyhow::Result<Option<TokenInfo>> {
        let now = now_ms();
        let mut inner = self.inner.lock().unwrap();
        let Some(hash) = inner
            .by_hash
            .values()
            .find(|e| e.info.id == id_or_name || e.info.name == id_or_name)
            .map(|e| e.hash)
        else {
            return Ok(None);
        };
        let id = inner.by_hash[&hash].info.id.clone();
        inner.conn.execute(
            "UPDATE tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![now, id],
        )?;
        let entry = inner.by_hash.get_mut(&hash).expect("found above");
        entry.info.revoked_at_ms.get_or_insert(now);
        Ok(Some(entry.info.clone()))
    }

    /// Every token's details, oldest first.
    pub fn list(&self) -> Vec<TokenInfo> {
        let inner = self.inner.lock().unwrap();
        let mut out: Vec<TokenInfo> = inner
            .by_hash
            .values()
            .map(|e| {
                let mut i = e.info.clone();
                if let Some(t) = inner.used.get(&i.id) {
                    i.last_used_at_ms = Some(*t);
                }
                i
            })
            .collect();
        out.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        out
    }

    /// Keeps an `audit.token` record of an offline change, for the server to append to the
    /// ledger when it next starts ([`TokenStore::pending_records`]).
    pub fn add_pending(&self, event: &serde_json::Value) -> anyhow::Result<()> {
        let inner = self.inner.lock().unwrap();
        inner.conn.execute(
            "INSERT INTO pending_records (event) VALUES (?1)",
            params![event.to_string()],
        )?;
        Ok(())
    }

    /// Records kept by [`TokenStore::add_pending`], oldest first, with their row ids.
    pub fn pending_records(&self) -> anyhow::Result<Vec<(i64, serde_json::Value)>> {
        let inner = self.inner.lock().unwrap();
        let mut stmt = inner
            .conn
            .prepare("SELECT id, event FROM pending_records ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, text) = row?;
            out.push((id, serde_json::from_str(&text)?));
        }
        Ok(out)
    }

    /// Forgets pending records once they are in the ledger.
    pub fn clear_pending(&self, ids: &[i64]) -> anyhow::Result<()> {
        let inner = self.inner.lock().unwrap();
        for id in ids {
            inner
                .conn
                .execute("DELETE FROM pending_records WHERE id = ?1", params![id])?;
        }
        Ok(())
    }

    /// Whether the store holds no token at all (a fresh data directory).
    pub fn is_empty(&self) -> bool {
        self.inner.lock().unwrap().by_hash.is_empty()
    }

    /// Writes the last-use times noted since the previous flush, in one transaction.
    pub fn flush_last_used(&self) -> anyhow::Result<()> {
        let mut inner = self.inner.lock().unwrap();
        if inner.used.is_empty() {
            return Ok(());
        }
        let used: Vec<(String, i64)> = inner.used.drain().collect();
        let tx = inner.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
            )?;
            for (id, t) in &used {
                stmt.execute(params![t, id])?;
            }
        }
        tx.commit()?;
        for (id, t) in used {
            if let Some(e) = inner.by_hash.values_mut().find(|e| e.info.id == id) {
                e.info.last_used_at_ms = Some(t);
            }
        }
        Ok(())
    }

    /// On a fresh data directory (no token at all), creates the admin token and writes it to
    /// `<data-dir>/admin.token` (mode 0600). Returns the file's path if it was created.
    pub fn create_admin_if_empty(
        &self,
        data_dir: &Path,
    ) -> anyhow::Result<Option<std::path::PathBuf>> {
        if !self.is_empty() {
            return Ok(None);
        }
        let path = data_dir.join("admin.token");
        let (token, _) = self.create(NewToken {
            name: Some(ADMIN_TOKEN_NAME.into()),
            role: Role::Admin,
            projects: None,
            expires_at_ms: None,
        })?;
        // A leftover file from an earlier store is replaced: its token is not in this store.
        let _ = std::fs::remove_file(&path);
        write_new(&path, format!("{token}\n").as_bytes(), 0o600)?;
        Ok(Some(path))
    }
}

/// Parses a lifetime like `90d`, `12h`, `30m` or `45s` into milliseconds.
pub fn parse_lifetime_ms(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().ok().filter(|n| *n > 0).with_context(|| {
        format!("lifetime {s:?} must be a positive number with a unit, e.g. 90d")
    })?;
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("lifetime {s:?} needs a unit: s, m, h or d (e.g. 90d)"),
    };
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 100 * 365 * 86_400_000)
        .with_context(|| format!("lifetime {s:?} is longer than 100 years"))
}

/// Names of mlaudit's own principals (and of the actor of unauthenticated denials): no
/// token may carry one, so that `source.principal` = `mlaudit` always means the server.
pub const RESERVED_NAMES: [&str; 3] = [SYSTEM_PRINCIPAL, OFFLINE_PRINCIPAL, "unauthenticated"];

/// The principal of the server's own records (`source.principal`).
pub const SYSTEM_PRINCIPAL: &str = "mlaudit";

/// The actor of token changes made offline (`mlaudit token … --data-dir`).
pub const OFFLINE_PRINCIPAL: &str = "offline-cli";

/// Token names: 1 to [`TOKEN_NAME_CHARS_MAX`] of `[A-Za-z0-9._-]`, so that they cannot be
/// mistaken for `oidc:` principals or carry control characters into logs, and none of
/// [`RESERVED_NAMES`] (in any case).
fn check_name(name: &str) -> anyhow::Result<()> {
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        bail!("token name {name:?} is reserved for mlaudit's own records; choose another");
    }
    if name.is_empty()
        || name.len() > TOKEN_NAME_CHARS_MAX
        || !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    {
        bail!(
            "token name {name:?} must be 1 to {TOKEN_NAME_CHARS_MAX} characters of A-Z a-z 0-9 . _ -"
        );
    }
    Ok(())
}

fn load_or_create_key(data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    let dir = data_dir.join("keys");
    let path = dir.join("token.key");
    if path.exists() {
        let text = read_secret(&path)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .with_context(|| format!("{} is not a base64 32-byte key", path.display()))?;
        return Ok(bytes);
    }
    datadir::create_private_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let text = format!(
        "{}\n",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    write_new(&path, text.as_bytes(), 0o600)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<TokenStore>) {
        let dir = tempfile::tempdir().unwrap();
        let s = TokenStore::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn create_authenticate_revoke() {
        let (_d, s) = store();
        let (tok, info) = s
            .create(NewToken {
                name: None,
                role: Role::Auditor,
                projects: Some(vec!["p".into()]),
                expires_at_ms: None,
            })
            .unwrap();
        assert!(tok.starts_with("mla_") && tok.len() == 4 + 43, "{tok}");
        let p = s.authenticate(&tok, now_ms()).unwrap();
        assert_eq!(p.role, Role::Auditor);
        assert_eq!(p.name, info.name);
        assert_eq!(p.projects, Some(vec!["p".to_string()]));
        // Change the last character to another one a 32-byte base64url
        // string can end with ('A' and 'E' both leave the padding bits 0),
        // so the token stays well formed and only its value differs.
        let mut wrong = tok.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'E' } else { 'A' });
        assert_eq!(s.authenticate(&wrong, now_ms()), Err(Refusal::Unknown));
        assert_eq!(
            s.authenticate("Bearer x", now_ms()),
            Err(Refusal::Malformed)
        );
        s.revoke(&info.id).unwrap().unwrap();
        assert_eq!(s.authenticate(&tok, now_ms()), Err(Refusal::Revoked));
    }

    #[test]
    fn expiry_and_persistence() {
        let (d, s) = store();
        let (tok, _) = s
            .create(NewToken {
                name: Some("ci".into()),
                role: Role::Producer,
                projects: None,
                expires_at_ms: Some(now_ms() + 60_000),
            })
            .unwrap();
        assert!(s.authenticate(&tok, now_ms()).is_ok());
        assert_eq!(
            s.authenticate(&tok, now_ms() + 120_000),
            Err(Refusal::Expired)
        );
        s.flush_last_used().unwrap();
        assert!(
            s.create(NewToken {
                name: Some("ci".into()),
                role: Role::Producer,
                projects: None,
                expires_at_ms: None,
            })
            .is_err(),
            "names are unique"
        );
        drop(s);
        let s = TokenStore::open(d.path()).unwrap();
        let list = s.list();
        assert_eq!(list.len(), 1);
        assert!(list[0].last_used_at_ms.is_some(), "last use was flushed");
        assert!(
            s.authenticate(&tok, now_ms()).is_ok(),
            "the key was reloaded"
        );
    }

    #[test]
    fn a_token_expires_exactly_at_its_expiry_on_a_manual_clock() {
        let d = tempfile::tempdir().unwrap();
        let s = TokenStore::open(d.path()).unwrap();
        let clock = crate::Clock::manual();
        let (tok, _) = s
            .create(NewToken {
                name: None,
                role: Role::Auditor,
                projects: None,
                expires_at_ms: Some(clock.now_ms() + 1_000),
            })
            .unwrap();
        clock.advance(std::time::Duration::from_millis(999));
        assert!(s.authenticate(&tok, clock.now_ms()).is_ok());
        clock.advance(std::time::Duration::from_millis(1));
        assert_eq!(s.authenticate(&tok, clock.now_ms()), Err(Refusal::Expired));
    }
}
