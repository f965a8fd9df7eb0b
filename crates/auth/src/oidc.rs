//! OIDC / JWT bearer tokens: RS256 and ES256 signatures checked against a JWKS (a file or a
//! URL), `iss`, `aud`, `exp` and `nbf` checked with a small leeway, and configured claims
//! mapped to a role and projects.
//!
//! The JWKS is cached. It is fetched again when older than `refresh_s`, and when a token
//! names an unknown `kid` (a key rotation), at most once per [`JWKS_MISS_REFETCH_MIN`]; if
//! a fetch fails, the keys already known stay in use.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{Principal, Role};

/// Shortest time between two fetches caused by unknown key ids.
pub const JWKS_MISS_REFETCH_MIN: Duration = Duration::from_secs(10);
/// Time allowed to fetch the JWKS.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS accepted.
pub const JWKS_BYTES_MAX: usize = 1 << 20;
/// Longest JWT accepted.
pub const JWT_CHARS_MAX: usize = 16 << 10;

/// `[oidc]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (one of the token's audiences).
    pub audience: String,
    /// JWKS URL (e.g. the IdP's `jwks_uri`); exclusive with `jwks_file`.
    pub jwks_url: Option<String>,
    /// JWKS file; exclusive with `jwks_url`.
    pub jwks_file: Option<PathBuf>,
    /// Claim holding the role: a string or an array of strings [default: mlaudit_role].
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Claim holding the projects the principal is limited to (array of strings); absent
    /// means all projects [default: mlaudit_projects].
    #[serde(default = "default_projects_claim")]
    pub projects_claim: String,
    /// Claim naming the principal, recorded as `oidc:<value>` [default: sub].
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// Maps values of the role claim (e.g. IdP group names) to roles; when empty, the claim
    /// must hold role names.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds [default: 30].
    #[serde(default = "default_leeway_s")]
    pub leeway_s: u64,
    /// Age after which the JWKS is fetched again, in seconds [default: 300].
    #[serde(default = "default_refresh_s")]
    pub refresh_s: u64,
}

fn default_role_claim() -> String {
    "mlaudit_role".into()
}
fn default_projects_claim() -> String {
    "mlaudit_projects".into()
}
fn default_name_claim() -> String {
    "sub".into()
}
fn default_leeway_s() -> u64 {
    30
}
fn default_refresh_s() -> u64 {
    300
}

/// Why a JWT was refused (the `reason` of its `auth.denied` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtRefusal {
    /// Not a JWT, or an algorithm other than RS256/ES256.
    Malformed,
    /// No key with its `kid` in the JWKS.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// Wrong `iss`.
    WrongIssuer,
    /// Wrong `aud`.
    WrongAudience,
    /// Past `exp`.
    Expired,
    /// Before `nbf`.
    NotYetValid,
    /// A required claim is missing or the role claim maps to no single role.
    BadClaims,
    /// No JWKS could be loaded.
    JwksUnavailable,
}

impl JwtRefusal {
    /// The reason's name.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtRefusal::Malformed => "malformed_token",
            JwtRefusal::UnknownKey => "unknown_key",
            JwtRefusal::BadSignature => "bad_signature",
            JwtRefusal::WrongIssuer => "wrong_issuer",
            JwtRefusal::WrongAudience => "wrong_audience",
            JwtRefusal::Expired => "expired_token",
            JwtRefusal::NotYetValid => "token_not_yet_valid",
            JwtRefusal::BadClaims => "bad_claims",
            JwtRefusal::JwksUnavailable => "jwks_unavailable",
        }
    }
}

struct Keys {
    by_kid: HashMap<String, (DecodingKey, Algorithm)>,
    fetched_at: Option<Instant>,
    last_miss_fetch: Option<Instant>,
}

/// A JWT verifier with its cached JWKS.
pub struct Oidc {
    cfg: OidcConfig,
    roles: BTreeMap<String, Role>,
    http: reqwest::Client,
    keys: Mutex<Keys>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.cfg.issuer)
            .finish()
    }
}

impl Oidc {
    /// Checks the configuration; the JWKS is loaded on first use.
    pub fn new(cfg: OidcConfig) -> anyhow::Result<Oidc> {
        if cfg.jwks_url.is_some() == cfg.jwks_file.is_some() {
            bail!("[oidc] needs exactly one of jwks_url and jwks_file");
        }
        if cfg.leeway_s > 300 {
            bail!("[oidc] leeway_s must be at most 300");
        }
        let mut roles = BTreeMap::new();
        for (value, role) in &cfg.roles {
            let r = Role::parse(role)
                .with_context(|| format!("[oidc.roles] {value:?} maps to unknown role {role:?}"))?;
            roles.insert(value.clone(), r);
        }
        let http = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .build()
            .context("building the JWKS client")?;
        Ok(Oidc {
            cfg,
            roles,
            http,
            keys: Mutex::new(Keys {
                by_kid: HashMap::new(),
                fetched_at: None,
                last_miss_fetch: None,
            }),
        })
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, (DecodingKey, Algorithm)>> {
        let bytes = match (&self.cfg.jwks_url, &self.cfg.jwks_file) {
            (Some(url), _) => {
                let resp = self.http.get(url).send().await?.error_for_status()?;
                let b = resp.bytes().await?;
                if b.len() > JWKS_BYTES_MAX {
                    bail!("the JWKS at {url} is over {JWKS_BYTES_MAX} bytes");
                }
                b.to_vec()
            }
            (None, Some(path)) => tokio::fs::read(path)
                .await
                .with_context(|| format!("reading {}", path.display()))?,
            (None, None) => unreachable!("bad math in Oidc: checked in new"),
        };
        let set: JwkSet = serde_json::from_slice(&bytes).context("parsing the JWKS")?;
        let mut out = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p)
                    if p.curve == jsonwebtoken::jwk::EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue, // other key types are not accepted
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                out.insert(kid, (key, alg));
            }
        }
        Ok(out)
    }

    /// The key and algorithm for `kid`, fetching the JWKS when stale or on a miss.
    async fn key(&self, kid: &str) -> Result<(DecodingKey, Algorithm), JwtRefusal> {
        let mut keys = self.keys.lock().await;
        let now = Instant::now();
        let refresh = Duration::from_secs(self.cfg.refresh_s);
        let stale = !matches!(keys.fetched_at, Some(t) if now - t < refresh);
        let miss = !keys.by_kid.contains_key(kid)
            && !matches!(keys.last_miss_fetch, Some(t) if now - t < JWKS_MISS_REFETCH_MIN);
        if stale || miss {
            // Only fetches caused by an unknown kid count against the miss budget; a
            // scheduled refresh (or the first load) does not use it up.
            if !stale {
                keys.last_miss_fetch = Some(now);
            }
            match self.fetch().await {
                Ok(k) => {
                    keys.by_kid = k;
                    keys.fetched_at = Some(now);
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "fetching the JWKS failed; keeping the known keys");
                    if keys.fetched_at.is_none() {
                        return Err(JwtRefusal::JwksUnavailable);
                    }
                }
            }
        }
        keys.by_kid
            .get(kid)
            .map(|(k, a)| (k.clone(), *a))
            .ok_or(JwtRefusal::UnknownKey)
    }

    /// Verifies a JWT and maps its claims to a principal.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, JwtRefusal> {
        if token.len() > JWT_CHARS_MAX {
            return Err(JwtRefusal::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtRefusal::Malformed)?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(JwtRefusal::Malformed);
        }
        let kid = header.kid.ok_or(JwtRefusal::UnknownKey)?;
        let (key, alg) = self.key(&kid).await?;
        if alg != header.alg {
            // A token may not choose another algorithm than its key's.
            return Err(JwtRefusal::BadSignature);
        }
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.audience]);
        v.leeway = self.cfg.leeway_s;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => JwtRefusal::BadSignature,
                K::InvalidIssuer => JwtRefusal::WrongIssuer,
                K::InvalidAudience => JwtRefusal::WrongAudience,
                K::ExpiredSignature => JwtRefusal::Expired,
                K::ImmatureSignature => JwtRefusal::NotYetValid,
                K::MissingRequiredClaim(_) => JwtRefusal::BadClaims,
                _ => JwtRefusal::Malformed,
            }
        })?;
        self.principal(&data.claims)
    }

    fn principal(&self, claims: &Value) -> Result<Principal, JwtRefusal> {
        let name = claims[&self.cfg.name_claim]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or(JwtRefusal::BadClaims)?;
        let values: Vec<&str> = match &claims[&self.cfg.role_claim] {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(JwtRefusal::BadClaims),
        };
        let mut roles: Vec<Role> = values
            .iter()
            .filter_map(|v| {
                if self.roles.is_empty() {
                    Role::parse(v)
                } else {
                    self.roles.get(*v).copied()
                }
            })
            .collect();
        roles.sort_by_key(|r| r.as_str());
        roles.dedup();
        // One principal has one role: a token mapping to several is refused, not merged.
        let [role] = roles[..] else {
            return Err(JwtRefusal::BadClaims);
        };
        let projects = match &claims[&self.cfg.projects_claim] {
            Value::Null => None,
            Value::Array(a) => {
                let p: Vec<String> = a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                if p.is_empty() || p.len() != a.len() {
                    return Err(JwtRefusal::BadClaims);
                }
                Some(p)
            }
            _ => return Err(JwtRefusal::BadClaims),
        };
        Ok(Principal {
            name: format!("oidc:{name}"),
            role,
            projects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn cfg(jwks_file: PathBuf) -> OidcConfig {
        toml::from_str::<OidcConfig>(&format!(
            "issuer = \"iss\"\naudience = \"aud\"\njwks_file = {:?}\n",
            jwks_file.to_str().unwrap()
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn a_jwks_file_and_role_names_in_the_default_claims() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let raw = key.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k",
            "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}]});
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        let oidc = Oidc::new(cfg(path.clone())).unwrap();
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("k".into());
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": "iss", "aud": "aud", "sub": "svc", "exp": now + 60,
            "mlaudit_role": "auditor", "mlaudit_projects": ["p"]});
        let ek = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&h, &claims, &ek).unwrap();
        let p = oidc.authenticate(&token).await.unwrap();
        assert_eq!(p.name, "oidc:svc");
        assert_eq!(p.role, Role::Auditor);
        assert_eq!(p.projects, Some(vec!["p".to_string()]));
        // No exp: refused.
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove("exp");
        let token = jsonwebtoken::encode(&h, &c, &ek).unwrap();
        assert_eq!(oidc.authenticate(&token).await, Err(JwtRefusal::BadClaims));
        // A role name that is not one: refused.
        let mut c = claims.clone();
        c["mlaudit_role"] = json!("root");
        let token = jsonwebtoken::encode(&h, &c, &ek).unwrap();
        assert_eq!(oidc.authenticate(&token).await, Err(JwtRefusal::BadClaims));
    }

    #[test]
    fn configuration_is_checked() {
        let mut c = cfg("/nonexistent".into());
        c.jwks_url = Some("http://127.0.0.1:1/".into());
        assert!(Oidc::new(c).is_err(), "both jwks_url and jwks_file");
        let mut c = cfg("/nonexistent".into());
        c.roles.insert("g".into(), "superuser".into());
        assert!(Oidc::new(c).is_err(), "unknown role in [oidc.roles]");
    }
}
