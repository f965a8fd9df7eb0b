//! End to end: OIDC / JWT bearer tokens. The test makes its keys (an ES256 key generated
//! per run, and a fixed RS256 test key), serves their JWKS on loopback, and checks
//! signatures, issuer, audience, expiry, not-before and the claim mapping.

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{StaticServer, TestServer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// A 2048-bit RSA key made for this test only (PKCS#8), and its public modulus (base64url).
const RSA_TEST_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCf/0Q9Ikup0IOX
4tHfwSiA/PkK+Y6X/+gWCTUgJkgd3hKYCdsu4aIVZiPpPG0hs5e/Fe9xnKL0Rr2i
DMTmc3UnMf4RvW8kfTxWPSHiXJANETwQyvDXdWZAhwKWVYmZztLG9tuEOcrCUq4E
JNDLFF948Qztym92pllFQ5BC9eq2tzquiVO3diKDPHgJWpc2qAOX5L5Wkaq+EXBC
+wCChVeRGdLi+35Ly3IVPemNyCd7022BOSV6d6g2ZopXPSpEbegGoHzAFMzSIkAe
a1RfNXj4rTnCyENkDzN8FWePxt29bVYS0f1+rY6lfYQy8znwdjj2LxJBLqatlMDt
+GQ/xfrtAgMBAAECggEAAS9tbHyEDfp+9xGVl3BBYg89sxCdN1AMgplH3PiboSkD
fz/XcVX3kuwCSRiLAGxpq984OmG8LU4W2ov4q3JghE1RAgWivKT23Pav+RLReF9P
0BoIxbfXbZPyd3WjwtFu601p2+VntJ/TLTGuoEqC2I0EmQBeagUadTJmb7CNsBPR
aYF8oJFJjd1VfVTKYhTSX+AREDij2Su8uBgTRXuB+E9XgQhpdAnK3j4jbgvyWObF
dovprN5JgS1ZrYAcJ6M7/WPjmMCnEn4ZC1Hs0KUO39V+IJy+o1n3QlvaMgcFtRDB
JhWzAhIfNTZpgmVtC9TqTG7SXmgKnUm6h0yGre08YQKBgQDUAxqJbm0Bto+abRnu
ABb8pG//i6Uas9R6Svs+qU1vHXs0U4q2XrSFPuTRHAoUYEwzsvsLvSu1Wv6pITBS
bxHAvbjoo6awZZribjTF7x3EmHVo++AxbGQCqMdI0+PrFDOlBf05e7H9tcW3Zpfx
bRuUJdXJ3PEXbEUbKjcQtt7uPQKBgQDBMWsHbCVGKDglwx/bHBgJe8q55S5v+ZVX
FFFLcO5gPjLi6R/ZWl96IgLK1bq0AvJWYBqnsj5OXGexTmrh/CyhSX7rChtrLW2C
YN837N0qSEvffFy7tGJdvNYh9gmUfkVxVSZyZxl5jykM9xnt8l6HoRe9VHgT9XbD
isdmzkk6cQKBgQDCXlIO2vj+0BMZfZp/EwAAAPVY7/qe320V7PYn/WkrTHjugQSz
q2GOoxl+CFnJUnuqDhWQLo8KxfCgt/eoK4G4FXeXeKlSIOR9YJHrQQwmd6t0Yy6n
wPpzYa7KOtBCbZPnX/VGpPuKYQJx4JG+Wcwl5wX3+iHh2nYEsJApN65r9QKBgFR2
87FaEe3bdbjk14+nd8blrZua3LOuLiHVSzmtlTrU1tCoVflkbqvqJMhjq246f5NO
DzlUT7NY6Sj2/Pnyk9ysUmYWlChGw0MmcVF1KLjsxOdf6vdSBVOwVPqiJEwc7OWA
8f9Anj2sXqlBe7+xoKyxvLxVKu6m+hbCHS4QcKmxAoGBAIclYHEINASRpxb7DRju
DWUzBjRbdXqz10iWMfdmm6usNaYuveH3SIYZ6YLd+HgFXz/vaUF0Bdp+t+crgJJa
VqNZsrHhVDpDN22dLL9tG8jwoXpggGmg8hQeyzZKse9VaaWkRThAHfoLCtXwyLFD
Ivc9MB1Zw2y+ZeqkYuTR0cgH
-----END PRIVATE KEY-----
";
const RSA_TEST_N: &str = "n_9EPSJLqdCDl-LR38EogPz5CvmOl__oFgk1ICZIHd4SmAnbLuGiFWYj6TxtIbOXvxXvcZyi9Ea9ogzE5nN1JzH-Eb1vJH08Vj0h4lyQDRE8EMrw13VmQIcCllWJmc7SxvbbhDnKwlKuBCTQyxRfePEM7cpvdqZZRUOQQvXqtrc6rolTt3Yigzx4CVqXNqgDl-S-VpGqvhFwQvsAgoVXkRnS4vt-S8tyFT3pjcgne9NtgTkleneoNmaKVz0qRG3oBqB8wBTM0iJAHmtUXzV4-K05wshDZA8zfBVnj8bdvW1WEtH9fq2OpX2EMvM58HY49i8SQS6mrZTA7fhkP8X67Q";

const ISSUER: &str = "https://idp.test.example";
const AUDIENCE: &str = "mlaudit-test";

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

struct Keys {
    ec: EncodingKey,
    other_ec: EncodingKey,
    rsa: EncodingKey,
    _jwks_dir: tempfile::TempDir,
    jwks: StaticServer,
}

fn keys() -> Keys {
    let ec = rcgen::KeyPair::generate().expect("an EC P-256 key");
    let other = rcgen::KeyPair::generate().expect("an EC P-256 key");
    let raw = ec.public_key_raw();
    assert_eq!(raw.len(), 65, "uncompressed P-256 point");
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "alg": "ES256",
         "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])},
        {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": RSA_TEST_N, "e": "AQAB"},
    ]});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let server = StaticServer::start(dir.path());
    Keys {
        ec: EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
        other_ec: EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).unwrap(),
        rsa: EncodingKey::from_rsa_pem(RSA_TEST_KEY.as_bytes()).unwrap(),
        _jwks_dir: dir,
        jwks: server,
    }
}

fn jwt(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

fn claims(sub: &str, groups: &[&str]) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "exp": now_s() + 600,
           "nbf": now_s() - 10, "groups": groups})
}

fn server(k: &Keys) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mlaudit.toml");
    std::fs::write(
        &cfg,
        format!(
            "auth_failures_max = 1000\nauth_denied_events_max = 1000\n[oidc]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n\
             jwks_url = \"{}jwks.json\"\nrole_claim = \"groups\"\nprojects_claim = \"projects\"\n\
             leeway_s = 5\n[oidc.roles]\n\"ml-auditors\" = \"auditor\"\n\"ml-ci\" = \"producer\"\n",
            k.jwks.url()
        ),
    )
    .unwrap();
    let srv = TestServer::start_audited(&["--config", cfg.to_str().unwrap()]);
    (dir, srv)
}

#[test]
fn jwts_are_verified_and_mapped_to_roles_and_projects() {
    let k = keys();
    let (_cfg, srv) = server(&k);

    // RS256 producer (via the group mapping) ingests as oidc:<sub>.
    let ci = jwt(
        Algorithm::RS256,
        "rsa1",
        &k.rsa,
        &claims("ci-bot", &["ml-ci", "unrelated"]),
    );
    let r = srv.post_json(
        &srv.http_as(&ci),
        &json!({"action": "model.train", "actor": {"id": "ci"}, "context": {"project": "p1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let seq = r.json()["receipts"][0]["seq"].as_u64().unwrap();

    // ES256 auditor reads it; the producer may not.
    let alice = jwt(
        Algorithm::ES256,
        "ec1",
        &k.ec,
        &claims("alice", &["ml-auditors"]),
    );
    let r = srv
        .http_as(&alice)
        .get(&srv.at(&format!("/v1/events/{seq}")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["source"]["principal"], "oidc:ci-bot");
    assert_eq!(srv.http_as(&ci).get(&srv.at("/v1/events")).status, 403);

    // A projects claim limits the principal like a limited API token.
    let mut c = claims("bob", &["ml-auditors"]);
    c["projects"] = json!(["p2"]);
    let bob = jwt(Algorithm::ES256, "ec1", &k.ec, &c);
    assert_eq!(
        srv.http_as(&bob)
            .get(&srv.at(&format!("/v1/events/{seq}")))
            .status,
        403
    );
    assert_eq!(
        srv.http_as(&alice)
            .get(&srv.at(&format!("/v1/events/{seq}")))
            .status,
        200
    );

    // Refusals, each with its reason.
    let mut wrong_iss = claims("eve", &["ml-auditors"]);
    wrong_iss["iss"] = json!("https://evil.example");
    let mut wrong_aud = claims("eve", &["ml-auditors"]);
    wrong_aud["aud"] = json!("someone-else");
    let mut expired = claims("eve", &["ml-auditors"]);
    expired["exp"] = json!(now_s() - 120);
    let mut future = claims("eve", &["ml-auditors"]);
    future["nbf"] = json!(now_s() + 120);
    let both_roles = claims("eve", &["ml-auditors", "ml-ci"]);
    let no_role = claims("eve", &["nobody"]);
    let cases: Vec<(String, &str)> = vec![
        (
            jwt(
                Algorithm::ES256,
                "ec1",
                &k.other_ec,
                &claims("eve", &["ml-auditors"]),
            ),
            "bad_signature",
        ),
        (
            jwt(Algorithm::ES256, "ec1", &k.ec, &wrong_iss),
            "wrong_issuer",
        ),
        (
            jwt(Algorithm::ES256, "ec1", &k.ec, &wrong_aud),
            "wrong_audience",
        ),
        (
            jwt(Algorithm::ES256, "ec1", &k.ec, &expired),
            "expired_token",
        ),
        (
            jwt(Algorithm::RS256, "rsa1", &k.rsa, &future),
            "token_not_yet_valid",
        ),
        (
            jwt(
                Algorithm::ES256,
                "nope",
                &k.ec,
                &claims("eve", &["ml-auditors"]),
            ),
            "unknown_key",
        ),
        // An RS256 key's kid with an ES256 signature: the key decides the algorithm.
        (
            jwt(
                Algorithm::ES256,
                "rsa1",
                &k.ec,
                &claims("eve", &["ml-auditors"]),
            ),
            "bad_signature",
        ),
        (
            jwt(
                Algorithm::HS256,
                "ec1",
                &EncodingKey::from_secret(b"guess"),
                &claims("eve", &["ml-auditors"]),
            ),
            "malformed_token",
        ),
        (
            jwt(Algorithm::ES256, "ec1", &k.ec, &both_roles),
            "bad_claims",
        ),
        (jwt(Algorithm::ES256, "ec1", &k.ec, &no_role), "bad_claims"),
        ("eyJub3QiOiJhIGp3dCJ9.e30.x".to_string(), "malformed_token"),
    ];
    for (token, reason) in &cases {
        let r = srv.http_as(token).get(&srv.at("/v1/info"));
        assert_eq!(r.status, 401, "{reason}: {}", r.text());
        assert!(
            r.text().contains(&reason.replace('_', " ")),
            "{reason}: {}",
            r.text()
        );
    }

    // Every refusal is an auth.denied record with its reason.
    let admin = srv.http();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reasons: Vec<String> = loop {
        let r = admin.get(&srv.at("/v1/events?action=auth.denied&limit=1000"));
        let ev = r.json()["events"].as_array().unwrap().clone();
        let reasons: Vec<String> = ev
            .iter()
            .map(|e| e["event"]["reason"].as_str().unwrap().to_string())
            .collect();
        if reasons
            .iter()
            .filter(|r| *r == "wrong_issuer" || *r == "wrong_audience")
            .count()
            == 2
        {
            break reasons;
        }
        assert!(
            Instant::now() < deadline,
            "denials not recorded: {reasons:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    for want in ["bad_signature", "expired_token", "unknown_key"] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }
}

#[test]
fn a_rotated_jwks_is_fetched_again_on_an_unknown_key_id() {
    let k = keys();
    let (_cfg, srv) = server(&k);
    let alice = jwt(
        Algorithm::ES256,
        "ec1",
        &k.ec,
        &claims("alice", &["ml-auditors"]),
    );
    assert_eq!(srv.http_as(&alice).get(&srv.at("/v1/info")).status, 200);

    // The IdP rotates: ec1 is gone, ec2 is new. The cached JWKS does not know ec2, so the
    // server fetches the JWKS again and accepts it.
    let ec2 = rcgen::KeyPair::generate().unwrap();
    let raw = ec2.public_key_raw();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec2", "alg": "ES256",
         "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])},
    ]});
    std::fs::write(k._jwks_dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let ec2_key = EncodingKey::from_ec_pem(ec2.serialize_pem().as_bytes()).unwrap();
    let carol = jwt(
        Algorithm::ES256,
        "ec2",
        &ec2_key,
        &claims("carol", &["ml-auditors"]),
    );
    let r = srv.http_as(&carol).get(&srv.at("/v1/info"));
    assert_eq!(r.status, 200, "{}", r.text());
    // The rotated-out key is no longer accepted.
    let r = srv.http_as(&alice).get(&srv.at("/v1/info"));
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("unknown key"), "{}", r.text());
}
