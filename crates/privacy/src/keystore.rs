//! The key store, `<data-dir>/keys.sqlite`: the pseudonym (HMAC) key and one data key per
//! data subject, each wrapped (XChaCha20-Poly1305) by the master key, plus a key check
//! value that tells a wrong master key from a right one.
//!
//! Erasure deletes a subject's row. Three settings make that delete leave no copy in the
//! data directory: `secure_delete = ON` (SQLite overwrites deleted content with zeros, in
//! the page and in freed pages), `journal_mode = DELETE` (the rollback journal, which holds
//! the page as it was during the delete's transaction, is unlinked at commit; no WAL file
//! keeps old page images), and `synchronous = FULL` (a key is on disk before any entry
//! sealed with it is acknowledged, and an erasure is durable when it returns). What this
//! cannot reach — blocks of unlinked files, SSD remapping, backups — is in docs/privacy.md.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::PrivacyError;

/// A 256-bit key that is wiped from memory when dropped.
pub type Key = Zeroizing<[u8; 32]>;

/// XChaCha20-Poly1305 nonce length.
pub const NONCE_BYTES: usize = 24;

/// Unwrapped subject keys kept in memory; the cache is emptied when it reaches this size,
/// so memory stays bounded whatever the number of subjects.
const SUBJECT_KEY_CACHE_MAX: usize = 100_000;

/// What the key check value is computed over.
const KEY_CHECK_LABEL: &[u8] = b"mlaudit master key check v1";

/// Bytes of a key id ([`key_id`]) in front of each sealed value.
pub const KEY_ID_BYTES: usize = 8;

/// Names a data key without revealing it: the first [`KEY_ID_BYTES`] of
/// SHA-256("mlaudit subject key id" ‖ 0 ‖ key). A sealed value carries the id of its key,
/// so a value sealed under a key destroyed by an erasure is told apart from a corrupt one
/// when the subject has a new key.
pub fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_BYTES] {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"mlaudit subject key id\0");
    h.update(key);
    h.finalize()[..KEY_ID_BYTES]
        .try_into()
        .expect("8 of 32 bytes")
}

/// A fresh random key.
pub fn random_key() -> Key {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut k[..]);
    k
}

/// Encrypts `msg` under `key` with a random nonce, binding `aad`: `nonce ‖ ciphertext`.
pub fn seal(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = XChaCha20Poly1305::new(key.into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
    let mut out = Vec::with_capacity(NONCE_BYTES + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// Opens what [`seal`] made; `None` if it was made with another key or `aad`, or altered.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_BYTES {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_BYTES);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn key_check(master: &[u8; 32]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    m.update(KEY_CHECK_LABEL);
    m.finalize().into_bytes()[..16].to_vec()
}

fn wrap_aad(kind: &str, id: &str) -> Vec<u8> {
    format!("mlaudit {kind} key\0{id}").into_bytes()
}

fn unwrap_key(master: &[u8; 32], aad: &[u8], wrapped: &[u8]) -> Result<Key, PrivacyError> {
    let raw = open(master, aad, wrapped)
        .ok_or_else(|| PrivacyError::Corrupt("a wrapped key does not open".into()))?;
    let arr: [u8; 32] = raw[..]
        .try_into()
        .map_err(|_| PrivacyError::Corrupt("a wrapped key is not 32 bytes".into()))?;
    Ok(Zeroizing::new(arr))
}

struct Inner {
    conn: Connection,
    cache: HashMap<String, Key>,
}

/// The key store. Calls may come from any thread; one connection serves them in turn.
pub struct KeyStore {
    master: Key,
    inner: Mutex<Inner>,
}

/// Opens `keys.sqlite` with the settings erasure relies on (module doc) and its tables.
fn connect(path: &Path) -> anyhow::Result<Connection> {
    // Created 0600 before SQLite opens it, whatever the umask.
    datadir::make_private_file(path)?;
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Wrapped keys are useless without the master key, but nobody else needs to read
    // them; SQLite gives its journal the same mode.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod 600 {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS pseudonym_keys (version INTEGER PRIMARY KEY, wrapped BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS subject_keys (subject TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

fn storage(e: rusqlite::Error) -> PrivacyError {
    PrivacyError::Storage(e.to_string())
}

impl KeyStore {
    /// Whether `<data-dir>/keys.sqlite` already holds a key check value.
    pub fn initialized(path: &Path) -> anyhow::Result<bool> {
        if !path.exists() {
            return Ok(false);
        }
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        let has_meta: bool = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'meta'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has_meta {
            return Ok(false);
        }
        Ok(conn
            .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
                r.get::<_, Vec<u8>>(0)
            })
            .optional()?
            .is_some())
    }

    /// Opens (or creates) the store. Refuses a master key whose check value differs from
    /// the stored one. Returns the store and the pseudonym key of version 1 (created on
    /// first open).
    pub fn open(path: &Path, master: Key) -> anyhow::Result<(KeyStore, Key)> {
        let conn = connect(path)?;
        let check = key_check(&master);
        let stored: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match stored {
            Some(s) if s != check => bail!(
                "the master key does not match the key store {} (its key check value differs); \
                 start with the master key this data directory was created with \
                 (MLAUDIT_MASTER_KEY, privacy.master_key_file or keys/master.key)",
                path.display()
            ),
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO meta (name, value) VALUES ('key_check', ?1)",
                    [&check],
                )?;
            }
        }
        let aad = wrap_aad("pseudonym", "1");
        let wrapped: Option<Vec<u8>> = conn
            .query_row(
                "SELECT wrapped FROM pseudonym_keys WHERE version = 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let hmac_key = match wrapped {
            Some(w) => unwrap_key(&master, &aad, &w)
                .map_err(|e| anyhow::anyhow!("{}: pseudonym key: {e}", path.display()))?,
            None => {
                let k = random_key();
                conn.execute(
                    "INSERT INTO pseudonym_keys (version, wrapped) VALUES (1, ?1)",
                    [seal(&master, &aad, &k[..])],
                )?;
                k
            }
        };
        Ok((
            KeyStore {
                master,
                inner: Mutex::new(Inner {
                    conn,
                    cache: HashMap::new(),
                }),
            },
            hmac_key,
        ))
    }

    /// The data keys of `subjects`; with `create`, keys are made for subjects that have
    /// none, in one durable transaction, before this returns. Without it, subjects without
    /// a key (never seen, or erased) are absent from the answer.
    pub fn subject_keys(
        &self,
        subjects: &[&str],
        create: bool,
    ) -> Result<HashMap<String, Key>, PrivacyError> {
        let mut inner = self.inner.lock().unwrap();
        let mut out = HashMap::with_capacity(subjects.len());
        let mut missing = Vec::new();
        let mut asked = std::collections::HashSet::with_capacity(subjects.len());
        for &s in subjects {
            if !asked.insert(s) {
                continue;
            }
            if let Some(k) = inner.cache.get(s) {
                out.insert(s.to_string(), k.clone());
                continue;
            }
            let wrapped: Option<Vec<u8>> = inner
                .conn
                .prepare_cached("SELECT wrapped FROM subject_keys WHERE subject = ?1")
                .and_then(|mut st| st.query_row([s], |r| r.get(0)).optional())
                .map_err(storage)?;
            match wrapped {
                Some(w) => {
                    let k = unwrap_key(&self.master, &wrap_aad("subject", s), &w)?;
                    out.insert(s.to_string(), k);
                }
                None => missing.push(s),
            }
        }
        if create && !missing.is_empty() {
            let tx = inner.conn.transaction().map_err(storage)?;
            for &s in &missing {
                let k = random_key();
                tx.execute(
                    "INSERT INTO subject_keys (subject, wrapped) VALUES (?1, ?2)",
                    params![s, seal(&self.master, &wrap_aad("subject", s), &k[..])],
                )
                .map_err(storage)?;
                out.insert(s.to_string(), k);
            }
            tx.commit().map_err(storage)?;
        }
        if inner.cache.len() + out.len() > SUBJECT_KEY_CACHE_MAX {
            inner.cache.clear();
        }
        for (s, k) in &out {
            inner.cache.insert(s.clone(), k.clone());
        }
        Ok(out)
    }

    /// Re-wraps every stored key under `new` in one transaction, and replaces the key check
    /// value; refuses unless `old` is the store's master key. Offline: no server may hold
    /// the store open. Returns how many keys were re-wrapped.
    pub fn rewrap(path: &Path, old: &Key, new: &Key) -> anyhow::Result<usize> {
        let mut conn = connect(path)?;
        let stored: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE name = 'key_check'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if stored.as_deref() != Some(&key_check(old)[..]) {
            bail!(
                "the current master key does not match the key store {}; nothing was changed",
                path.display()
            );
        }
        let tx = conn.transaction()?;
        let mut n = 0;
        for (table, id_col, kind) in [
            ("pseudonym_keys", "version", "pseudonym"),
            ("subject_keys", "subject", "subject"),
        ] {
            let rows: Vec<(String, Vec<u8>)> = {
                let mut st = tx.prepare(&format!(
                    "SELECT CAST({id_col} AS TEXT), wrapped FROM {table}"
                ))?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (id, wrapped) in rows {
                let aad = wrap_aad(kind, &id);
                let key = unwrap_key(old, &aad, &wrapped)
                    .map_err(|e| anyhow::anyhow!("{table} {id}: {e}"))?;
                tx.execute(
                    &format!("UPDATE {table} SET wrapped = ?1 WHERE CAST({id_col} AS TEXT) = ?2"),
                    params![seal(new, &aad, &key[..]), id],
                )?;
                n += 1;
            }
        }
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE name = 'key_check'",
            [key_check(new)],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Destroys the subject's key: deletes its row (overwritten with zeros by
    /// `secure_delete`, durable on return) and forgets it in memory. Returns whether there
    /// was one.
    pub fn erase(&self, subject: &str) -> Result<bool, PrivacyError> {
        let mut inner = self.inner.lock().unwrap();
        inner.cache.remove(subject);
        let n = inner
            .conn
            .execute("DELETE FROM subject_keys WHERE subject = ?1", [subject])
            .map_err(storage)?;
        Ok(n > 0)
    }
}
