//! The `[privacy]` section of the configuration file and its resolved form.

use std::path::PathBuf;

use anyhow::{bail, Context};
use regex::Regex;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::path::FieldPath;

/// Default key-name pattern for redaction: any key containing one of these words, in any
/// case, at any depth below the top level. Keys are matched after folding look-alike
/// characters (fullwidth forms, Cyrillic and Greek letters that look Latin) to ASCII, so
/// `pаssword` with a Cyrillic `а` is a password too.
pub const REDACT_KEYS_DEFAULT: &str = "(?i)password|passwd|passphrase|pwd|secret|token|\
     api[_-]?key|access[_-]?key|private[_-]?key|credential|authorization|cookie";

/// Default value patterns: e-mail addresses; secrets written into text (`Bearer …`,
/// `password=…`, `pw: …`, `api_key=…`); IPv4 and IPv6 addresses.
pub const REDACT_VALUES_DEFAULT: &[&str] = &[
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}",
    r"(?i)\b(password|passwd|passphrase|pwd|pw|secret|token|api[_-]?key|access[_-]?key)\s*[=:]\s*[^\s,;&]+",
    r"\b(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\b",
    r"(?i)\b([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|(?i)\b([0-9a-f]{1,4}:){1,6}:([0-9a-f]{1,4}:){0,5}[0-9a-f]{1,4}\b",
];

/// Default free-text fields the value patterns are applied to (each with everything below it).
pub const REDACT_VALUES_IN_DEFAULT: &[&str] = &["reason", "resource.name", "parameters", "context"];

/// Default roles that may see cleartext (DESIGN.md section 5).
pub const CLEARTEXT_ROLES_DEFAULT: &[&str] = &["privacy_officer"];

/// Top-level fields no privacy rule may touch: the ledger, the index and idempotency rely
/// on them.
const PROTECTED_FIELDS: &[&str] = &["action", "time", "id", "outcome"];

/// One identifier rule as written in the file (`[[privacy.pseudonymize_fields]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRuleFile {
    /// Path of the identifier, e.g. `actor.id` or `related[].id`.
    pub path: String,
    /// `KEY=VALUE`: only when the sibling member `KEY` of the same object equals `VALUE`.
    pub when: Option<String>,
    /// `KEY=V1|V2|…`: not when the sibling member `KEY` equals one of the values (the
    /// default rules on `actor.*` skip actors whose `type` says they are not a person).
    pub unless: Option<String>,
    /// Sibling member whose value is the data subject these values belong to (default: the
    /// value itself). `actor.ip` belongs to the subject named by `actor.id`.
    pub subject: Option<String>,
}

/// The `[privacy]` table of the TOML file; every key is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyFile {
    /// Replace identifiers by pseudonyms and seal their originals (default true).
    pub pseudonymize: Option<bool>,
    /// Identifier rules; replaces the default list when given.
    pub pseudonymize_fields: Option<Vec<FieldRuleFile>>,
    /// Regular expression over key names; matching members become `"[REDACTED]"`. Empty
    /// turns key redaction off.
    pub redact_keys: Option<String>,
    /// Paths whose values become `"[REDACTED]"`.
    pub redact_paths: Option<Vec<String>>,
    /// Regular expressions; matching text inside the free-text fields becomes `[REDACTED]`.
    pub redact_values: Option<Vec<String>>,
    /// The free-text fields `redact_values` applies to.
    pub redact_values_in: Option<Vec<String>>,
    /// Roles that may see cleartext (cleartext views, subject export).
    pub cleartext_roles: Option<Vec<String>>,
    /// File holding the master key (base64 of 32 bytes); default `<data-dir>/keys/master.key`.
    pub master_key_file: Option<PathBuf>,
}

/// An identifier rule, resolved.
#[derive(Debug, Clone)]
pub struct FieldRule {
    /// As written, e.g. `resource.id`.
    pub text: String,
    /// Where the identifier is.
    pub path: FieldPath,
    /// `(sibling key, value)` condition.
    pub when: Option<(String, String)>,
    /// `(sibling key, values)`: the rule does not apply when the sibling is one of them.
    pub unless: Option<(String, Vec<String>)>,
    /// Sibling key naming the subject.
    pub subject: Option<String>,
}

/// A secret read from the environment; never printed.
#[derive(Clone)]
pub struct Secret(pub Zeroizing<String>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The resolved privacy configuration.
#[derive(Debug, Clone)]
pub struct PrivacyConfig {
    /// Whether identifiers are pseudonymized (and sealed).
    pub pseudonymize: bool,
    /// Identifier rules.
    pub fields: Vec<FieldRule>,
    /// Key-name pattern, if key redaction is on.
    pub redact_keys: Option<Regex>,
    /// Paths redacted whole.
    pub redact_paths: Vec<FieldPath>,
    /// Value patterns.
    pub redact_values: Vec<Regex>,
    /// Where value patterns apply.
    pub redact_values_in: Vec<FieldPath>,
    /// Roles with clearance for cleartext.
    pub cleartext_roles: Vec<String>,
    /// Master key file, when not the default.
    pub master_key_file: Option<PathBuf>,
    /// Master key given in `MLAUDIT_MASTER_KEY` (wins over any file).
    pub master_key_env: Option<Secret>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig::resolve(PrivacyFile::default(), None).expect("the defaults are valid")
    }
}

/// Actor types that name software, not a person: the default rules leave their `actor.*`
/// identifiers in cleartext, so "which service did it" needs no clearance. An actor with
/// any other type, or with none, is treated as a person.
pub const NON_PERSON_ACTOR_TYPES_DEFAULT: &[&str] = &[
    "service",
    "service_account",
    "job",
    "pipeline",
    "system",
    "bot",
];

fn default_rules() -> Vec<FieldRuleFile> {
    let rule = |path: &str, when: Option<&str>, subject: Option<&str>| FieldRuleFile {
        path: path.into(),
        when: when.map(Into::into),
        unless: None,
        subject: subject.map(Into::into),
    };
    let person = |r: FieldRuleFile| FieldRuleFile {
        unless: Some(format!("type={}", NON_PERSON_ACTOR_TYPES_DEFAULT.join("|"))),
        ..r
    };
    vec![
        person(rule("actor.id", None, None)),
        person(rule("actor.ip", None, Some("id"))),
        // A browser's user agent narrows a person down as well as an address does.
        person(rule("actor.user_agent", None, Some("id"))),
        rule("resource.id", Some("type=user"), None),
        rule("parameters.with", None, None),
        // A link to a person is as identifying as the person as the resource.
        rule("related[].id", Some("type=user"), None),
    ]
}

fn parse_path(text: &str, what: &str) -> anyhow::Result<FieldPath> {
    let path = FieldPath::parse(text).with_context(|| format!("privacy.{what}: {text:?}"))?;
    if PROTECTED_FIELDS.contains(&path.first_key()) {
        bail!("privacy.{what}: {text:?} names a field no privacy rule may change");
    }
    Ok(path)
}

impl PrivacyConfig {
    /// Resolves the file section (flags already merged into it) over the defaults.
    pub fn resolve(f: PrivacyFile, master_key_env: Option<String>) -> anyhow::Result<Self> {
        let mut fields = Vec::new();
        for r in f.pseudonymize_fields.unwrap_or_else(default_rules) {
            let path = parse_path(&r.path, "pseudonymize_fields")?;
            let when = match r.when {
                None => None,
                Some(w) => match w.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        Some((k.trim().to_string(), v.trim().to_string()))
                    }
                    _ => bail!("privacy.pseudonymize_fields: when = {w:?} is not KEY=VALUE"),
                },
            };
            let unless = match r.unless {
                None => None,
                Some(u) => match u.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => Some((
                        k.trim().to_string(),
                        v.split('|').map(|x| x.trim().to_string()).collect(),
                    )),
                    _ => bail!("privacy.pseudonymize_fields: unless = {u:?} is not KEY=V1|V2|…"),
                },
            };
            fields.push(FieldRule {
                text: r.path,
                path,
                when,
                unless,
                subject: r.subject,
            });
        }
        let redact_keys = match f.redact_keys.as_deref().unwrap_or(REDACT_KEYS_DEFAULT) {
            "" => None,
            re => Some(Regex::new(re).context("privacy.redact_keys is not a regular expression")?),
        };
        let redact_values = match f.redact_values {
            Some(v) => v,
            None => REDACT_VALUES_DEFAULT
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
        .iter()
        .map(|re| {
            Regex::new(re).with_context(|| {
                format!("privacy.redact_values: {re:?} is not a regular expression")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
        let redact_values_in = match f.redact_values_in {
            Some(v) => v,
            None => REDACT_VALUES_IN_DEFAULT
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
        .iter()
        .map(|p| parse_path(p, "redact_values_in"))
        .collect::<anyhow::Result<Vec<_>>>()?;
        let redact_paths = f
            .redact_paths
            .unwrap_or_default()
            .iter()
            .map(|p| parse_path(p, "redact_paths"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(PrivacyConfig {
            pseudonymize: f.pseudonymize.unwrap_or(true),
            fields,
            redact_keys,
            redact_paths,
            redact_values,
            redact_values_in,
            cleartext_roles: f.cleartext_roles.unwrap_or_else(|| {
                CLEARTEXT_ROLES_DEFAULT
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            }),
            master_key_file: f.master_key_file,
            master_key_env: master_key_env.map(|s| Secret(Zeroizing::new(s))),
        })
    }
}
