//! Privacy transforms (DESIGN.md section 5, `docs/privacy.md`): redaction,
//! pseudonymization, sealing and crypto-shredding erasure, and the cleartext views.
//!
//! Ingest calls [`Privacy::apply`] on every validated event before its entry is built, so
//! nothing but the transformed event ever reaches the ledger, the index or a log line:
//!
//! 1. key redaction: members whose name matches `redact_keys` become `"[REDACTED]"`, at any
//!    depth below the top level; then `redact_paths`;
//! 2. pseudonymization: each configured identifier becomes
//!    `hmac:<key version>:<base64url of the first 16 bytes of HMAC-SHA256(key, value)>`,
//!    and its original is kept, per data subject, for step 4;
//! 3. value patterns (`redact_values`, default e-mail addresses) in the free-text fields;
//! 4. sealing: the originals of each subject are encrypted (XChaCha20-Poly1305) under that
//!    subject's data key from the [`keystore`] and returned for the entry's `sealed` member.
//!
//! Deliberately absent: no cleartext identifier is ever written by this crate, not even as
//! a key store row name (rows are named by pseudonym); secrets and value-pattern matches
//! are not sealed (they never reach disk in any form). It knows nothing about HTTP, the
//! ledger or the index: it transforms events and answers whether a role may see cleartext.
#![warn(missing_docs)]

mod config;
mod keystore;
mod path;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

pub use config::{
    FieldRule, FieldRuleFile, PrivacyConfig, PrivacyFile, Secret, CLEARTEXT_ROLES_DEFAULT,
    REDACT_KEYS_DEFAULT, REDACT_VALUES_DEFAULT, REDACT_VALUES_IN_DEFAULT,
};
pub use keystore::KeyStore;

use datadir::{read_secret, write_new};
use event::Event;
use keystore::Key;

/// What redacted values are replaced by.
pub const REDACTED: &str = "[REDACTED]";

/// Version of the pseudonym key in use, written into every pseudonym.
pub const PSEUDONYM_KEY_VERSION: u32 = 1;

/// Bytes of HMAC-SHA256 kept in a pseudonym: 128 bits, so collisions between subjects are
/// out of reach (birthday bound 2^64), in 22 base64url characters.
pub const PSEUDONYM_HMAC_BYTES: usize = 16;

/// The key store file in the data directory.
pub const KEY_STORE_FILE: &str = "keys.sqlite";

/// The default master key file, relative to the data directory.
pub const MASTER_KEY_FILE_DEFAULT: &str = "keys/master.key";

/// Why a privacy operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivacyError {
    /// The key store could not be read or written.
    #[error("key store: {0}")]
    Storage(String),
    /// Stored key material or sealed data does not open.
    #[error("corrupt key material: {0}")]
    Corrupt(String),
}

/// Whether a caller with `role` may see cleartext (cleartext views, subject export).
///
/// This is the one place that decides it: every handler that shows cleartext asks here,
/// with the roles from `privacy.cleartext_roles` (default: only `privacy_officer`).
/// A caller without a role never may.
pub fn may_see_cleartext(role: Option<&str>, cleartext_roles: &[String]) -> bool {
    role.is_some_and(|r| cleartext_roles.iter().any(|c| c == r))
}

/// Whether `s` has the shape of a pseudonym (`hmac:<version>:<22 base64url chars>`).
pub fn is_pseudonym(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("hmac:") else {
        return false;
    };
    let Some((version, mac)) = rest.split_once(':') else {
        return false;
    };
    !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
        && mac.len() == 22
        && mac
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The privacy engine of a server: configuration, pseudonym key, key store.
pub struct Privacy {
    cfg: PrivacyConfig,
    hmac_key: Key,
    store: KeyStore,
}

/// Result of unsealing one event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unsealed {
    /// Subjects whose values were restored.
    pub opened: Vec<String>,
    /// Subjects whose key no longer exists (erased): their fields stay pseudonyms.
    pub erased: Vec<String>,
}

impl Privacy {
    /// Loads the master key and opens the key store of `data_dir` (whose `keys/` exists).
    pub fn open(data_dir: &Path, cfg: &PrivacyConfig) -> anyhow::Result<Privacy> {
        let store_path = data_dir.join(KEY_STORE_FILE);
        let initialized = KeyStore::initialized(&store_path)?;
        let master = load_master_key(data_dir, cfg, initialized)?;
        let (store, hmac_key) = KeyStore::open(&store_path, master)?;
        Ok(Privacy {
            cfg: cfg.clone(),
            hmac_key,
            store,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &PrivacyConfig {
        &self.cfg
    }

    /// The pseudonym of a cleartext identifier.
    pub fn pseudonym(&self, cleartext: &str) -> String {
        let mut m =
            Hmac::<Sha256>::new_from_slice(&self.hmac_key[..]).expect("HMAC takes any key length");
        m.update(cleartext.as_bytes());
        let mac = m.finalize().into_bytes();
        format!(
            "hmac:{PSEUDONYM_KEY_VERSION}:{}",
            URL_SAFE_NO_PAD.encode(&mac[..PSEUDONYM_HMAC_BYTES])
        )
    }

    /// The subject named by `given`: itself if it is a pseudonym, else its pseudonym.
    pub fn subject_id(&self, given: &str) -> String {
        if is_pseudonym(given) {
            given.to_string()
        } else {
            self.pseudonym(given)
        }
    }

    /// [`may_see_cleartext`] with this server's configured roles.
    pub fn may_see_cleartext(&self, role: Option<&str>) -> bool {
        may_see_cleartext(role, &self.cfg.cleartext_roles)
    }

    /// The value to look for when a query filters the field at `path` (e.g. `actor.id`) by
    /// `value`: its pseudonym when that field is pseudonymized (and the rule's condition
    /// holds: `sibling(key)` gives the filter on the sibling member, e.g. `resource_type`),
    /// otherwise `value` unchanged.
    pub fn query_value(
        &self,
        path: &str,
        value: &str,
        sibling: &dyn Fn(&str) -> Option<String>,
    ) -> String {
        self.query_values(path, value, sibling).0
    }

    /// [`Privacy::query_value`], plus the cleartext `value` as a second form to look for
    /// when the rule that pseudonymizes the field has an `unless` condition the filter
    /// cannot decide: `actor=svc-trainer` matches a service stored in cleartext (its actor
    /// type is exempt) as well as a person pseudonymized under that id.
    pub fn query_values(
        &self,
        path: &str,
        value: &str,
        sibling: &dyn Fn(&str) -> Option<String>,
    ) -> (String, Option<String>) {
        if !self.cfg.pseudonymize || is_pseudonym(value) {
            return (value.to_string(), None);
        }
        let mut applies = false;
        let mut maybe_exempt = false;
        for r in self.cfg.fields.iter().filter(|r| r.text == path) {
            let when = match &r.when {
                None => true,
                Some((k, v)) => sibling(k).as_deref() == Some(v.as_str()),
            };
            if !when {
                continue;
            }
            match &r.unless {
                None => applies = true,
                Some((k, skip)) => match sibling(k) {
                    Some(v) if skip.contains(&v) => maybe_exempt = true,
                    Some(_) => applies = true,
                    None => {
                        applies = true;
                        maybe_exempt = true;
                    }
                },
            }
        }
        match (applies, maybe_exempt) {
            (true, true) => (self.pseudonym(value), Some(value.to_string())),
            (true, false) => (self.pseudonym(value), None),
            (false, _) => (value.to_string(), None),
        }
    }

    /// Transforms a batch of events in place (steps 1–4 of the module doc) and returns,
    /// per event, its `sealed` member (subject pseudonym → base64url of nonce ‖ ciphertext),
    /// or `None` when nothing was pseudonymized. New subject keys are durable on return.
    pub fn apply(
        &self,
        events: &mut [Event],
    ) -> Result<Vec<Option<Map<String, Value>>>, PrivacyError> {
        let mut groups: Vec<BTreeMap<String, Map<String, Value>>> =
            Vec::with_capacity(events.len());
        for event in events.iter_mut() {
            groups.push(event.transform(|map| {
                let mut root = Value::Object(std::mem::take(map));
                let g = self.transform_value(&mut root);
                let Value::Object(m) = root else {
                    unreachable!("bad logic: the event root stays an object")
                };
                *map = m;
                g
            }));
        }
        let subjects: Vec<&str> = groups
            .iter()
            .flat_map(|g| g.keys().map(String::as_str))
            .collect();
        if subjects.is_empty() {
            return Ok(vec![None; events.len()]);
        }
        let keys = self.store.subject_keys(&subjects, true)?;
        Ok(groups
            .into_iter()
            .map(|g| {
                if g.is_empty() {
                    return None;
                }
                let mut sealed = Map::new();
                for (subject, values) in g {
                    let plain = Zeroizing::new(
                        serde_json::to_vec(&Value::Object(values)).expect("a JSON map serializes"),
                    );
                    let key = keys
                        .get(&subject)
                        .expect("bad logic: subject_keys(create) returns every key");
                    let mut blob = keystore::key_id(key).to_vec();
                    blob.extend(keystore::seal(key, subject.as_bytes(), &plain));
                    sealed.insert(subject, Value::String(URL_SAFE_NO_PAD.encode(blob)));
                }
                Some(sealed)
            })
            .collect())
    }

    /// Redacts and pseudonymizes one event (a JSON object); returns the originals of the
    /// pseudonymized values grouped by subject pseudonym, keyed by concrete path.
    fn transform_value(&self, root: &mut Value) -> BTreeMap<String, Map<String, Value>> {
        if let Some(re) = &self.cfg.redact_keys {
            if let Value::Object(m) = root {
                for v in m.values_mut() {
                    redact_keys(v, re);
                }
            }
        }
        for p in &self.cfg.redact_paths {
            let last = p.last_key().to_string();
            p.for_each_parent(root, &mut |m, _| {
                if let Some(v) = m.get_mut(&last) {
                    *v = Value::String(REDACTED.into());
                }
            });
        }
        let mut groups: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        if self.cfg.pseudonymize {
            // Pseudonyms made for this event, back to their cleartext, so that a rule whose
            // subject is a sibling already pseudonymized (actor.ip → actor.id) finds it.
            let mut made: HashMap<String, String> = HashMap::new();
            for rule in &self.cfg.fields {
                let last = rule.path.last_key().to_string();
                rule.path.for_each_parent(root, &mut |m, at| {
                    if let Some((k, want)) = &rule.when {
                        if m.get(k).and_then(Value::as_str) != Some(want.as_str()) {
                            return;
                        }
                    }
                    if let Some((k, skip)) = &rule.unless {
                        if let Some(v) = m.get(k).and_then(Value::as_str) {
                            if skip.iter().any(|s| s == v) {
                                return;
                            }
                        }
                    }
                    // The subject is the sibling's pseudonym: made above in this event, or
                    // made now from its value, whatever that value looks like.
                    let subject = rule.subject.as_ref().and_then(|k| match m.get(k) {
                        Some(Value::String(s)) if made.contains_key(s) => Some(s.clone()),
                        Some(Value::String(s)) => Some(self.pseudonym(s)),
                        _ => None,
                    });
                    let here = path::join(at, &last);
                    let mut replace = |v: &mut Value, concrete: String| {
                        let Value::String(s) = v else { return };
                        // Only what this event's rules made is skipped: a value that merely
                        // looks like a pseudonym is a value like any other (issue 19.2).
                        if made.contains_key(s.as_str()) {
                            return;
                        }
                        let p = self.pseudonym(s);
                        let original = std::mem::replace(s, p.clone());
                        let owner = subject.clone().unwrap_or_else(|| p.clone());
                        made.insert(p, original.clone());
                        groups
                            .entry(owner)
                            .or_default()
                            .insert(concrete, Value::String(original));
                    };
                    match m.get_mut(&last) {
                        Some(Value::Array(items)) => {
                            for (i, item) in items.iter_mut().enumerate() {
                                replace(item, format!("{here}[{i}]"));
                            }
                        }
                        Some(v) => replace(v, here),
                        None => {}
                    }
                });
            }
        }
        if !self.cfg.redact_values.is_empty() {
            for p in &self.cfg.redact_values_in {
                let last = p.last_key().to_string();
                p.for_each_parent(root, &mut |m, _| {
                    if let Some(v) = m.get_mut(&last) {
                        redact_values(v, &self.cfg.redact_values);
                    }
                });
            }
        }
        groups
    }

    /// Restores, in `event`, the original values sealed in `sealed` whose subject key still
    /// exists; with `only`, just that subject's (a subject access export shows no one
    /// else's data).
    pub fn unseal(
        &self,
        event: &mut Value,
        sealed: Option<&Map<String, Value>>,
        only: Option<&str>,
    ) -> Result<Unsealed, PrivacyError> {
        let mut out = Unsealed::default();
        let Some(sealed) = sealed else {
            return Ok(out);
        };
        let subjects: Vec<&str> = sealed
            .keys()
            .map(String::as_str)
            .filter(|s| only.is_none() || only == Some(*s))
            .collect();
        if subjects.is_empty() {
            return Ok(out);
        }
        let keys = self.store.subject_keys(&subjects, false)?;
        for s in subjects {
            let Some(key) = keys.get(s) else {
                out.erased.push(s.to_string());
                continue;
            };
            let blob = sealed[s]
                .as_str()
                .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
                .ok_or_else(|| {
                    PrivacyError::Corrupt(format!("sealed value of {s} is not base64url"))
                })?;
            let (kid, blob) = blob.split_at(blob.len().min(keystore::KEY_ID_BYTES));
            if kid != keystore::key_id(key) {
                // Sealed under an earlier key of this subject, destroyed by an erasure;
                // the subject was seen again afterwards and got a new key.
                out.erased.push(s.to_string());
                continue;
            }
            let plain = keystore::open(key, s.as_bytes(), blob).ok_or_else(|| {
                PrivacyError::Corrupt(format!("sealed value of {s} does not open"))
            })?;
            let values: Map<String, Value> = serde_json::from_slice(&plain)
                .map_err(|e| PrivacyError::Corrupt(format!("sealed value of {s}: {e}")))?;
            for (at, original) in values {
                if let Some(v) = path::get_mut(event, &at) {
                    *v = original;
                }
            }
            out.opened.push(s.to_string());
        }
        Ok(out)
    }

    /// Whether the subject still has a key (it was seen and not erased).
    pub fn has_subject_key(&self, subject: &str) -> Result<bool, PrivacyError> {
        Ok(!self.store.subject_keys(&[subject], false)?.is_empty())
    }

    /// Crypto-shredding: destroys the subject's key. Returns whether a key existed.
    pub fn erase(&self, subject: &str) -> Result<bool, PrivacyError> {
        self.store.erase(subject)
    }
}

/// `key` with look-alike characters folded to ASCII: fullwidth forms, and the Cyrillic and
/// Greek letters that look like Latin ones (a key name spelled with them reads the same).
fn fold_lookalikes(key: &str) -> std::borrow::Cow<'_, str> {
    if key.is_ascii() {
        return std::borrow::Cow::Borrowed(key);
    }
    let fold = |c: char| -> char {
        match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            'а' | 'α' => 'a',
            'в' | 'β' => 'b',
            'с' | 'ϲ' => 'c',
            'е' | 'ε' => 'e',
            'һ' => 'h',
            'і' | 'ι' => 'i',
            'ј' => 'j',
            'к' | 'κ' => 'k',
            'м' => 'm',
            'о' | 'ο' => 'o',
            'р' | 'ρ' => 'p',
            'ѕ' => 's',
            'т' | 'τ' => 't',
            'υ' => 'u',
            'ѡ' | 'ω' => 'w',
            'х' | 'χ' => 'x',
            'у' | 'γ' => 'y',
            'А' | 'Α' => 'A',
            'В' | 'Β' => 'B',
            'С' => 'C',
            'Е' | 'Ε' => 'E',
            'Н' | 'Η' => 'H',
            'І' | 'Ι' => 'I',
            'К' | 'Κ' => 'K',
            'М' | 'Μ' => 'M',
            'О' | 'Ο' => 'O',
            'Р' | 'Ρ' => 'P',
            'Ѕ' => 'S',
            'Т' | 'Τ' => 'T',
            'Х' | 'Χ' => 'X',
            'У' | 'Υ' => 'Y',
            other => other,
        }
    };
    std::borrow::Cow::Owned(key.chars().map(fold).collect())
}

fn redact_keys(v: &mut Value, re: &regex::Regex) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if re.is_match(&fold_lookalikes(k)) {
                    *child = Value::String(REDACTED.into());
                } else {
                    redact_keys(child, re);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| redact_keys(c, re)),
        _ => {}
    }
}

fn redact_values(v: &mut Value, patterns: &[regex::Regex]) {
    match v {
        Value::String(s) if !is_pseudonym(s) => {
            for re in patterns {
                if re.is_match(s) {
                    *s = re.replace_all(s, REDACTED).into_owned();
                }
            }
        }
        Value::Object(m) => {
            // Key names are free text too (`{"alice@example.com": 3}`): a key a pattern
            // matches is renamed, numbered if two would collide.
            if m.keys().any(|k| patterns.iter().any(|re| re.is_match(k))) {
                let old = std::mem::take(m);
                for (k, child) in old {
                    let mut key = k.clone();
                    for re in patterns {
                        if re.is_match(&key) {
                            key = re.replace_all(&key, REDACTED).into_owned();
                        }
                    }
                    let mut unique = key.clone();
                    let mut n = 1;
                    while m.contains_key(&unique) {
                        n += 1;
                        unique = format!("{key}#{n}");
                    }
                    m.insert(unique, child);
                }
            }
            m.values_mut().for_each(|c| redact_values(c, patterns))
        }
        Value::Array(items) => items.iter_mut().for_each(|c| redact_values(c, patterns)),
        _ => {}
    }
}

/// Whether the JSON value holds the string `s` anywhere (as a value).
pub fn contains_string(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Object(m) => m.values().any(|c| contains_string(c, s)),
        Value::Array(items) => items.iter().any(|c| contains_string(c, s)),
        _ => false,
    }
}

/// Master-key rotation, offline (the caller holds the data directory's `LOCK`): every key
/// in `keys.sqlite` is re-wrapped under `new_master` (base64 of 32 bytes) in one
/// transaction, with a new key check value. The current key comes from the usual sources
/// (`cfg`). When it was the default `keys/master.key`, that file is then replaced by the new
/// key (atomically); otherwise the caller must update wherever it keeps the key. No entry
/// changes. Returns the number of keys re-wrapped.
pub fn rotate_master_key(
    data_dir: &Path,
    cfg: &PrivacyConfig,
    new_master: &str,
) -> anyhow::Result<usize> {
    let store_path = data_dir.join(KEY_STORE_FILE);
    if !KeyStore::initialized(&store_path)? {
        bail!("{} holds no key store to rotate", data_dir.display());
    }
    let old = load_master_key(data_dir, cfg, true)?;
    let new = decode_master(new_master, "the new key file")?;
    if old[..] == new[..] {
        bail!("the new master key is the current one");
    }
    let n = KeyStore::rewrap(&store_path, &old, &new)?;
    if cfg.master_key_env.is_none() && cfg.master_key_file.is_none() {
        // From here the store needs the new key; a crash before the rename leaves the old
        // file, which the server refuses with a clear error until the new key is put there.
        let path = data_dir.join(MASTER_KEY_FILE_DEFAULT);
        let tmp = path.with_extension("key.tmp");
        let _ = std::fs::remove_file(&tmp);
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(&new[..])));
        write_new(&tmp, text.as_bytes(), 0o600)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("replacing {}", path.display()))?;
        let dir = path.parent().expect("keys/master.key has a parent");
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(n)
}

/// The master key, in this order: `MLAUDIT_MASTER_KEY`, `privacy.master_key_file`, the
/// default file `keys/master.key`. The default file is generated (mode 0600) only when the
/// key store is new; a key store that exists without its master key is an error, never a
/// reason to make a new key.
fn load_master_key(data_dir: &Path, cfg: &PrivacyConfig, initialized: bool) -> anyhow::Result<Key> {
    if let Some(secret) = &cfg.master_key_env {
        return decode_master(&secret.0, "MLAUDIT_MASTER_KEY");
    }
    let (path, default): (PathBuf, bool) = match &cfg.master_key_file {
        Some(p) => (p.clone(), false),
        None => (data_dir.join(MASTER_KEY_FILE_DEFAULT), true),
    };
    if path.exists() {
        let text = read_secret(&path)?;
        return decode_master(&text, &path.display().to_string());
    }
    if initialized || !default {
        bail!(
            "the master key file {} does not exist{}; the key store {} cannot be opened without \
             the master key it was created with",
            path.display(),
            if default {
                ""
            } else {
                " (privacy.master_key_file)"
            },
            data_dir.join(KEY_STORE_FILE).display()
        );
    }
    let key = keystore::random_key();
    let text = Zeroizing::new(format!("{}\n", STANDARD.encode(&key[..])));
    let dir = path.parent().expect("keys/master.key has a parent");
    datadir::create_private_dir(dir)?;
    write_new(&path, text.as_bytes(), 0o600)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(key)
}

fn decode_master(text: &str, from: &str) -> anyhow::Result<Key> {
    let raw = Zeroizing::new(
        STANDARD
            .decode(text.trim())
            .map_err(|_| anyhow::anyhow!("the master key in {from} is not base64"))?,
    );
    let arr: [u8; 32] = raw[..]
        .try_into()
        .map_err(|_| anyhow::anyhow!("the master key in {from} is not 32 bytes (base64 of 32 random bytes, e.g. head -c 32 /dev/urandom | base64)"))?;
    Ok(Zeroizing::new(arr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn engine(dir: &Path, file: PrivacyFile) -> Privacy {
        std::fs::create_dir_all(dir.join("keys")).unwrap();
        Privacy::open(dir, &PrivacyConfig::resolve(file, None).unwrap()).unwrap()
    }

    fn event(v: Value) -> Event {
        Event::parse(v, chrono::Utc::now(), false).unwrap()
    }

    #[test]
    fn cleartext_is_for_configured_roles_only() {
        let roles = vec!["privacy_officer".to_string()];
        assert!(may_see_cleartext(Some("privacy_officer"), &roles));
        for r in [Some("auditor"), Some("admin"), Some("producer"), None] {
            assert!(!may_see_cleartext(r, &roles), "{r:?}");
        }
        assert!(!may_see_cleartext(Some("privacy_officer"), &[]));
    }

    #[test]
    fn pseudonymizes_seals_redacts_and_unseals() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let mut evs = vec![event(json!({
            "action": "dataset.share",
            "actor": {"id": "alice@example.com", "ip": "10.1.2.3"},
            "resource": {"type": "dataset", "id": "ds-1"},
            "parameters": {"with": ["bob@example.com", "carol@example.com"],
                           "deep": {"x": [{"DB_Password": "hunter2", "note": "mail dave@example.org now"}]}},
            "reason": "asked by erin@example.net"
        }))];
        let sealed = p.apply(&mut evs).unwrap();
        let stored = evs[0].as_value().clone();
        let text = stored.to_string();
        for secret in [
            "alice@", "10.1.2.3", "bob@", "carol@", "hunter2", "dave@", "erin@",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let alice = p.pseudonym("alice@example.com");
        assert_eq!(stored["actor"]["id"], json!(alice));
        assert_eq!(stored["actor"]["ip"], json!(p.pseudonym("10.1.2.3")));
        assert_eq!(stored["resource"]["id"], "ds-1", "not a user: kept");
        assert_eq!(
            stored["parameters"]["deep"]["x"][0]["DB_Password"],
            REDACTED
        );
        assert_eq!(
            stored["parameters"]["deep"]["x"][0]["note"],
            "mail [REDACTED] now"
        );
        assert!(is_pseudonym(&alice), "{alice}");
        let sealed = sealed[0].clone().unwrap();
        // alice (with her ip), bob, carol.
        assert_eq!(sealed.len(), 3, "{sealed:?}");
        let mut view = stored.clone();
        let u = p.unseal(&mut view, Some(&sealed), None).unwrap();
        assert_eq!(u.opened.len(), 3);
        assert_eq!(view["actor"]["id"], "alice@example.com");
        assert_eq!(view["actor"]["ip"], "10.1.2.3");
        assert_eq!(view["parameters"]["with"][1], "carol@example.com");
        // Only one subject's values.
        let mut mine = stored.clone();
        p.unseal(&mut mine, Some(&sealed), Some(&alice)).unwrap();
        assert_eq!(mine["actor"]["id"], "alice@example.com");
        assert_eq!(
            mine["parameters"]["with"][0],
            json!(p.pseudonym("bob@example.com"))
        );
        // Erasure: alice's values stay pseudonyms; others still open.
        assert!(p.erase(&alice).unwrap());
        assert!(!p.erase(&alice).unwrap());
        let mut after = stored.clone();
        let u = p.unseal(&mut after, Some(&sealed), None).unwrap();
        assert_eq!(u.erased, vec![alice.clone()]);
        assert_eq!(after["actor"]["id"], json!(alice));
        assert_eq!(after["actor"]["ip"], json!(p.pseudonym("10.1.2.3")));
        assert_eq!(after["parameters"]["with"][0], "bob@example.com");
        // Alice seen again: a new key for her new events; the old ones stay erased.
        let mut again = vec![event(json!({"action": "model.train",
                                          "actor": {"id": "alice@example.com"}}))];
        let new_sealed = p.apply(&mut again).unwrap();
        let mut new_view = again[0].as_value().clone();
        p.unseal(&mut new_view, new_sealed[0].as_ref(), None)
            .unwrap();
        assert_eq!(new_view["actor"]["id"], "alice@example.com");
        let mut old_view = stored.clone();
        let u = p.unseal(&mut old_view, Some(&sealed), None).unwrap();
        assert_eq!(u.erased, vec![alice.clone()]);
        assert_eq!(old_view["actor"]["id"], json!(alice));
    }

    /// Regression (issue 18.9): secrets under key names the defaults missed, secrets and
    /// addresses inside text, e-mail addresses as key names, and the user agent.
    #[test]
    fn default_redaction_covers_the_reported_gaps() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let mut evs = vec![event(json!({
            "action": "job.start",
            "actor": {"id": "svc", "user_agent": "Mozilla/5.0 (X11; Linux) alice-laptop"},
            "parameters": {
                "x-api-key": "k1", "private_key": "k2", "pwd": "k3", "passphrase": "k4",
                "access_key": "k5", "Cookie": "k6", "p\u{0430}ssword": "k7",
                "\u{FF54}\u{FF4F}\u{FF4B}\u{FF45}\u{FF4E}": "k8",
                "header": "Authorization: Bearer sk_live_51Habcdefgh",
                "dsn": "postgres://db?user=app&pw=hunter2x",
                "by_user": {"alice@example.com": 3, "bob@example.com": 4},
                "keep": "rows=12, ratio: 0.5",
            },
            "context": {"client": "10.20.30.40", "peer": "2001:db8:0:0:0:0:0:1"},
            "reason": "retried from 192.168.7.9 after pw: s3cret!",
        }))];
        let sealed = p.apply(&mut evs).unwrap();
        let text = evs[0].as_value().to_string();
        for secret in [
            "k1",
            "k2",
            "k3",
            "k4",
            "k5",
            "k6",
            "k7",
            "k8",
            "sk_live",
            "hunter2x",
            "alice@",
            "bob@",
            "10.20.30.40",
            "2001:db8",
            "192.168.7.9",
            "s3cret",
            "alice-laptop",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let stored = evs[0].as_value();
        assert_eq!(stored["parameters"]["keep"], "rows=12, ratio: 0.5");
        // Two renamed keys do not collide: both counts are kept.
        let by_user = stored["parameters"]["by_user"].as_object().unwrap();
        assert_eq!(by_user.len(), 2, "{by_user:?}");
        // The user agent is a pseudonym, sealed with the actor's data.
        let ua = &stored["actor"]["user_agent"];
        assert!(is_pseudonym(ua.as_str().unwrap()), "{ua}");
        assert!(sealed[0]
            .as_ref()
            .unwrap()
            .contains_key(&p.pseudonym("svc")));
    }

    /// Regression (issue 19.2): `hmac:<digits>:<22 chars>` was stored as sent (cleartext,
    /// unsealed, beyond erasure) and the same event's IP sealed under another subject.
    #[test]
    fn values_shaped_like_pseudonyms_are_pseudonymized_too() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let shaped = "hmac:1:alice_smith_123456789A";
        assert!(is_pseudonym(shaped));
        let mut evs = vec![event(json!({
            "action": "dataset.read",
            "actor": {"id": shaped, "ip": "10.9.8.7"},
            "resource": {"type": "user", "id": p.pseudonym("bob")},
        }))];
        let sealed = p.apply(&mut evs).unwrap();
        let stored = evs[0].as_value().clone();
        let subject = p.pseudonym(shaped);
        assert_eq!(stored["actor"]["id"], json!(subject));
        assert!(!stored.to_string().contains(shaped));
        // A real pseudonym sent as an identifier is pseudonymized again, like any value.
        assert_eq!(
            stored["resource"]["id"],
            json!(p.pseudonym(&p.pseudonym("bob")))
        );
        // The IP is sealed under the actor's subject, so erasing that person reaches it.
        let sealed = sealed[0].as_ref().unwrap();
        assert!(sealed.contains_key(&subject), "{sealed:?}");
        let mut view = stored.clone();
        p.unseal(&mut view, Some(sealed), Some(&subject)).unwrap();
        assert_eq!(view["actor"]["id"], shaped);
        assert_eq!(view["actor"]["ip"], "10.9.8.7");
    }

    /// Issue 11.9: auditors saw only `hmac:…` for everyone, services included. By default
    /// an actor whose type names software keeps its identifiers in cleartext; a person (type
    /// `user`, or no type at all) is pseudonymized and sealed as before.
    #[test]
    fn services_stay_in_cleartext_persons_are_pseudonymized_by_default() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let mut evs = vec![
            event(json!({"action": "model.train",
                "actor": {"id": "svc-trainer", "type": "service", "ip": "10.0.0.9"}})),
            event(json!({"action": "model.train",
                "actor": {"id": "alice@example.com", "type": "user", "ip": "10.0.0.8"}})),
            event(json!({"action": "model.train", "actor": {"id": "bob"}})),
        ];
        let sealed = p.apply(&mut evs).unwrap();
        let service = evs[0].as_value();
        assert_eq!(service["actor"]["id"], "svc-trainer");
        assert_eq!(service["actor"]["ip"], "10.0.0.9");
        assert!(sealed[0].is_none(), "nothing of a service is sealed");
        assert_eq!(
            evs[1].as_value()["actor"]["id"],
            json!(p.pseudonym("alice@example.com"))
        );
        assert_eq!(
            evs[2].as_value()["actor"]["id"],
            json!(p.pseudonym("bob")),
            "no type: a person"
        );
        // A filter by cleartext id looks for both forms, since it cannot know the type.
        let none = |_: &str| None;
        assert_eq!(
            p.query_values("actor.id", "svc-trainer", &none),
            (p.pseudonym("svc-trainer"), Some("svc-trainer".to_string()))
        );
        assert_eq!(
            p.query_values("resource.id", "ds-1", &none),
            ("ds-1".to_string(), None)
        );
        // Configurable per field and actor type: a rule without `unless` covers everyone.
        let tmp2 = tempfile::tempdir().unwrap();
        let all = engine(
            tmp2.path(),
            PrivacyFile {
                pseudonymize_fields: Some(vec![FieldRuleFile {
                    path: "actor.id".into(),
                    when: None,
                    unless: Some("type=robot".into()),
                    subject: None,
                }]),
                ..PrivacyFile::default()
            },
        );
        let mut evs = vec![event(json!({"action": "a.b",
            "actor": {"id": "svc-trainer", "type": "service"}}))];
        all.apply(&mut evs).unwrap();
        assert_eq!(
            evs[0].as_value()["actor"]["id"],
            json!(all.pseudonym("svc-trainer"))
        );
    }

    #[test]
    fn user_resources_and_queries_use_the_same_pseudonym() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let mut evs = vec![event(json!({
            "action": "user.create", "actor": {"id": "admin"},
            "resource": {"type": "user", "id": "zoe@example.com"},
            "related": [{"type": "user", "id": "zoe@example.com", "relation": "manager"},
                        {"type": "dataset", "id": "zoe@example.com"}]}))];
        let sealed = p.apply(&mut evs).unwrap();
        let z = p.pseudonym("zoe@example.com");
        let stored = evs[0].as_value();
        assert_eq!(stored["resource"]["id"], json!(z));
        assert_eq!(stored["related"][0]["id"], json!(z));
        assert_eq!(
            stored["related"][1]["id"], "zoe@example.com",
            "not a user link"
        );
        // One subject, both paths in its sealed group.
        let sealed = sealed[0].as_ref().unwrap();
        assert_eq!(sealed.len(), 2, "admin and zoe: {sealed:?}");
        let mut view = stored.clone();
        p.unseal(&mut view, Some(sealed), Some(&z)).unwrap();
        assert_eq!(view["resource"]["id"], "zoe@example.com");
        assert_eq!(view["related"][0]["id"], "zoe@example.com");
        let user = |k: &str| (k == "type").then(|| "user".to_string());
        let model = |k: &str| (k == "type").then(|| "model".to_string());
        assert_eq!(p.query_value("resource.id", "zoe@example.com", &user), z);
        assert_eq!(
            p.query_value("resource.id", "zoe@example.com", &model),
            "zoe@example.com"
        );
        assert_eq!(
            p.query_value("actor.id", &z, &model),
            z,
            "a pseudonym is kept"
        );
    }

    /// Regression: a batch naming one new subject twice made two inserts of its key
    /// (`UNIQUE constraint failed: subject_keys.subject`, a 503 for the whole batch).
    #[test]
    fn a_new_subject_twice_in_one_batch_gets_one_key() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let ev = || event(json!({"action": "model.train", "actor": {"id": "new@example.com"}}));
        let mut evs = vec![ev(), ev()];
        let sealed = p.apply(&mut evs).unwrap();
        let s = p.pseudonym("new@example.com");
        for (e, sl) in evs.iter().zip(&sealed) {
            let mut v = e.as_value().clone();
            let u = p.unseal(&mut v, sl.as_ref(), None).unwrap();
            assert_eq!(u.opened, vec![s.clone()]);
            assert_eq!(v["actor"]["id"], "new@example.com");
        }
    }

    #[test]
    fn rotating_the_master_key_keeps_every_key_and_refuses_the_old_one() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let mut evs = vec![event(
            json!({"action": "model.train", "actor": {"id": "ann@example.com"}}),
        )];
        let sealed = p.apply(&mut evs).unwrap();
        let pseudonym = p.pseudonym("ann@example.com");
        drop(p);
        let old_text = std::fs::read_to_string(tmp.path().join(MASTER_KEY_FILE_DEFAULT)).unwrap();
        let new = STANDARD.encode([9u8; 32]);
        let cfg = PrivacyConfig::default();
        assert_eq!(
            rotate_master_key(tmp.path(), &cfg, &new).unwrap(),
            2,
            "pseudonym key + ann"
        );
        let new_text = std::fs::read_to_string(tmp.path().join(MASTER_KEY_FILE_DEFAULT)).unwrap();
        assert_eq!(new_text.trim(), new);
        let p = engine(tmp.path(), PrivacyFile::default());
        assert_eq!(
            p.pseudonym("ann@example.com"),
            pseudonym,
            "same pseudonym key"
        );
        let mut v = evs[0].as_value().clone();
        p.unseal(&mut v, sealed[0].as_ref(), None).unwrap();
        assert_eq!(v["actor"]["id"], "ann@example.com");
        drop(p);
        let old_cfg =
            PrivacyConfig::resolve(PrivacyFile::default(), Some(old_text.trim().into())).unwrap();
        let e = Privacy::open(tmp.path(), &old_cfg).err().unwrap();
        assert!(format!("{e:#}").contains("does not match"), "{e:#}");
        // Rotating with a wrong current key changes nothing.
        let e = rotate_master_key(tmp.path(), &old_cfg, &STANDARD.encode([1u8; 32])).unwrap_err();
        assert!(format!("{e:#}").contains("does not match"), "{e:#}");
        assert!(Privacy::open(tmp.path(), &cfg).is_ok());
    }

    #[test]
    fn a_wrong_master_key_is_refused_and_a_missing_one_is_not_regenerated() {
        let tmp = tempfile::tempdir().unwrap();
        let p = engine(tmp.path(), PrivacyFile::default());
        let z = p.pseudonym("z");
        drop(p);
        // Same key: same pseudonyms.
        assert_eq!(engine(tmp.path(), PrivacyFile::default()).pseudonym("z"), z);
        let other =
            PrivacyConfig::resolve(PrivacyFile::default(), Some(STANDARD.encode([7u8; 32])))
                .unwrap();
        let e = Privacy::open(tmp.path(), &other).err().unwrap();
        assert!(
            format!("{e:#}").contains("master key does not match"),
            "{e:#}"
        );
        std::fs::remove_file(tmp.path().join(MASTER_KEY_FILE_DEFAULT)).unwrap();
        let e = Privacy::open(tmp.path(), &PrivacyConfig::default())
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("does not exist"), "{e:#}");
        assert!(!tmp.path().join(MASTER_KEY_FILE_DEFAULT).exists());
    }
}
