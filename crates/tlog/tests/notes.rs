//! Signed notes against the known answers of Go's golang.org/x/mod/sumdb/note
//! (`note_test.go` and the package documentation), plus strict-parsing cases.

use tlog::{key_id, open_note, sign_note, Error, Signer, Verifier};

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str =
    "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str =
    "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn peter() -> Verifier {
    Verifier::parse(PETER_VKEY).unwrap()
}

fn enoch() -> Verifier {
    Verifier::parse(ENOCH_VKEY).unwrap()
}

#[test]
fn sign_matches_go_byte_for_byte() {
    let signer = Signer::from_skey(PETER_SKEY).unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.vkey(), PETER_VKEY);
    let note = sign_note(TEXT, &[&signer]).unwrap();
    assert_eq!(note, format!("{TEXT}\n{PETER_SIG}"));
}

#[test]
fn key_id_is_truncated_sha256() {
    let v = peter();
    assert_eq!(v.name(), "PeterNeumann");
    assert_eq!(v.key_id(), 0xc74f20a3);
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode("ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        .unwrap();
    assert_eq!(key_id("PeterNeumann", &raw), 0xc74f20a3);
}

#[test]
fn open_go_notes() {
    let (p, e) = (peter(), enoch());
    let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");

    // One known key, one unknown (ignored).
    let n = open_note(&msg, &[&p]).unwrap();
    assert_eq!(n.text, TEXT);
    assert_eq!(n.verified, vec![("PeterNeumann".to_string(), 0xc74f20a3)]);

    // Both known.
    let n = open_note(&msg, &[&p, &e]).unwrap();
    assert_eq!(
        n.verified,
        vec![
            ("PeterNeumann".to_string(), 0xc74f20a3),
            ("EnochRoot".to_string(), 0xaf0cfe78)
        ]
    );

    // None known.
    assert!(matches!(
        open_note(&msg, &[]),
        Err(Error::NoVerifiedSignature)
    ));

    // Duplicated verifier for a signature present: ambiguous.
    let err = open_note(&format!("{TEXT}\n{ENOCH_SIG}"), &[&e, &p, &e]).unwrap_err();
    assert!(matches!(err, Error::AmbiguousVerifier { .. }), "{err}");
    // ... but harmless when that key did not sign.
    open_note(&format!("{TEXT}\n{PETER_SIG}"), &[&e, &p, &e]).unwrap();

    // Repeated signatures are verified and reported once.
    let n = open_note(
        &format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}"),
        &[&p],
    )
    .unwrap();
    assert_eq!(n.verified.len(), 1);
}

#[test]
fn too_many_signatures() {
    let p = peter();
    let ok = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
    open_note(&ok, &[&p]).unwrap();
    let bad = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
    assert!(matches!(
        open_note(&bad, &[&p]),
        Err(Error::MalformedNote(_))
    ));
    assert!(matches!(open_note(&bad, &[]), Err(Error::MalformedNote(_))));
}

#[test]
fn bad_signature_from_known_key_rejects_note() {
    let p = peter();
    let bad = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(matches!(
        open_note(&bad, &[&p]),
        Err(Error::BadSignature { .. })
    ));
    // An unknown key's garbage is ignored.
    let bad_enoch = format!(
        "{TEXT}\n{PETER_SIG}{}ABCD{}",
        &ENOCH_SIG[..60],
        &ENOCH_SIG[60..]
    );
    open_note(&bad_enoch, &[&p]).unwrap();
    // A bad duplicate of a good signature is still a bad signature (the spec
    // says known keys' signatures MUST be verified).
    assert!(matches!(
        open_note(
            &format!(
                "{TEXT}\n{PETER_SIG}{}ABCD{}",
                &PETER_SIG[..60],
                &PETER_SIG[60..]
            ),
            &[&p]
        ),
        Err(Error::BadSignature { .. })
    ));
    // Altered text.
    let altered = format!("{}\n{PETER_SIG}", TEXT.replace("answer", "Answer"));
    assert!(matches!(
        open_note(&altered, &[&p]),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn malformed_notes() {
    let p = peter();
    let bad = [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\u{1}{TEXT}\n{PETER_SIG}"),
        format!("{TEXT}\r\n{PETER_SIG}"),
        format!("{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
        format!("{TEXT}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        format!("{TEXT}\n\u{2014} PeterNeumann\n"),
        format!("{TEXT}\n\u{2014} PeterNeumann \n"),
        format!("{TEXT}\n\u{2014} PeterNeumann AAAA\n"),
        format!("{TEXT}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n"),
        format!("{TEXT}\n\u{2014} Peter+Neumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
        format!("{TEXT}\n\u{2014}  PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"),
    ];
    for msg in bad {
        let err = open_note(&msg, &[&p]).unwrap_err();
        assert!(matches!(err, Error::MalformedNote(_)), "{msg:?}: {err}");
    }
}

/// Go's TestNewVerifier: the key, and every substring and single-byte
/// mangling of it, which must all be refused.
#[test]
fn verifier_key_manglings() {
    Verifier::parse(PETER_VKEY).unwrap();
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i == 0 && j == b.len() {
                continue;
            }
            let k = std::str::from_utf8(&b[i..j]).unwrap();
            assert!(Verifier::parse(k).is_err(), "{k:?}");
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let k = String::from_utf8(m).unwrap();
        assert!(Verifier::parse(&k).is_err(), "{k:?}");
    }
    // Wrong key length and unknown algorithm, each with an adjusted key hash.
    assert!(Verifier::parse(
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
    )
    .is_err());
    assert!(matches!(
        Verifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::UnsupportedKeyType(0x65))
    ));
}

/// Go's TestNewSigner manglings.
#[test]
fn signer_key_manglings() {
    Signer::from_skey(PETER_SKEY).unwrap();
    let b = PETER_SKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i == 0 && j == b.len() {
                continue;
            }
            let k = std::str::from_utf8(&b[i..j]).unwrap();
            assert!(Signer::from_skey(k).is_err(), "{k:?}");
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let k = String::from_utf8(m).unwrap();
        assert!(Signer::from_skey(&k).is_err(), "{k:?}");
    }
}

#[test]
fn generated_keys_round_trip() {
    let (signer, skey, vkey) = Signer::generate("example.com/mlaudit").unwrap();
    assert!(skey.starts_with("PRIVATE+KEY+example.com/mlaudit+"));
    let again = Signer::from_skey(&skey).unwrap();
    assert_eq!(again.vkey(), vkey);
    assert_eq!(again.key_id(), signer.key_id());
    let v = Verifier::parse(&vkey).unwrap();
    assert_eq!(v.key_id(), signer.key_id());
    let note = sign_note("hello\n", &[&signer]).unwrap();
    let n = open_note(&note, &[&v]).unwrap();
    assert_eq!(n.text, "hello\n");
    // Debug output never shows the private key.
    assert!(!format!("{signer:?}").contains(&skey[skey.len() - 20..]));
    assert!(Signer::generate("bad name").is_err());
    assert!(Signer::generate("a+b").is_err());
    assert!(Signer::generate("").is_err());
}

#[test]
fn sign_note_rejects_bad_input() {
    let s = Signer::from_skey(PETER_SKEY).unwrap();
    assert!(matches!(
        sign_note("abc", &[&s]),
        Err(Error::MalformedNote(_))
    ));
    assert!(matches!(
        sign_note("a\tb\n", &[&s]),
        Err(Error::MalformedNote(_))
    ));
    assert!(matches!(sign_note("abc\n", &[]), Err(Error::NoSigners)));
}

#[test]
fn multiple_signers_and_blank_lines_in_text() {
    let (a, _, va) = Signer::generate("a.example").unwrap();
    let (b, _, vb) = Signer::generate("b.example").unwrap();
    let (va, vb) = (Verifier::parse(&va).unwrap(), Verifier::parse(&vb).unwrap());
    for text in ["x\n", "x\n\ny\n", "\n", "x\n\n"] {
        let note = sign_note(text, &[&a, &b]).unwrap();
        let n = open_note(&note, &[&vb, &va]).unwrap();
        assert_eq!(n.text, text);
        assert_eq!(n.verified.len(), 2);
        assert_eq!(n.verified[0].0, "a.example");
    }
}
