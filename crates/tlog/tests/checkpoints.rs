//! Checkpoint bodies (c2sp.org/tlog-checkpoint) and signed checkpoints.

use tlog::{open_checkpoint, sign_note, Checkpoint, Error, Signer, Verifier, EMPTY_ROOT};

/// The example from c2sp.org/tlog-checkpoint (its signature's key is not
/// published, so only the body is checked).
const SPEC_TEXT: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

#[test]
fn spec_example_parses_and_round_trips() {
    let cp = Checkpoint::parse(SPEC_TEXT).unwrap();
    assert_eq!(cp.origin, "example.com/behind-the-sofa");
    assert_eq!(cp.size, 20852163);
    assert_eq!(&cp.root[..4], &[0x0a, 0xc5, 0x18, 0x6a]);
    assert!(cp.extensions.is_empty());
    assert_eq!(cp.to_text(), SPEC_TEXT);
}

#[test]
fn extensions_round_trip() {
    let cp = Checkpoint {
        origin: "o".into(),
        size: u64::MAX,
        root: EMPTY_ROOT,
        extensions: vec!["ext one".into(), "— two".into()],
    };
    let text = cp.to_text();
    assert_eq!(
        text,
        "o\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next one\n— two\n"
    );
    assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
    let zero = Checkpoint {
        origin: "o".into(),
        size: 0,
        root: EMPTY_ROOT,
        extensions: vec![],
    };
    assert_eq!(Checkpoint::parse(&zero.to_text()).unwrap(), zero);
}

#[test]
fn malformed_checkpoints() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let bad = [
        String::new(),
        "\n".to_string(),
        format!("o\n1\n{root}"),          // missing final newline
        format!("o\n1\n{root}\n\n"),      // empty extension line
        format!("o\n1\n{root}\n\next\n"), // empty line before extension
        format!("\n1\n{root}\n"),         // empty origin
        format!("o\n01\n{root}\n"),       // leading zero
        format!("o\n00\n{root}\n"),       // leading zero
        format!("o\n+1\n{root}\n"),       // sign
        format!("o\n-1\n{root}\n"),       // sign
        format!("o\n 1\n{root}\n"),       // space
        format!("o\n1 \n{root}\n"),       // space
        format!("o\n0x1\n{root}\n"),      // hex
        "o\n18446744073709551616\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n".to_string(), // overflow
        format!("o\n\n{root}\n"), // empty size
        "o\n1\n\n".to_string(),   // empty root
        "o\n1\n".to_string(),     // missing root
        "o\n".to_string(),        // missing size
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".to_string(), // missing padding
        "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".to_string(), // URL alphabet
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_string(), // non-canonical trailing bits
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=x\n".to_string(), // junk
        "o\n1\n CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n".to_string(), // space
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I2I=\n".to_string(), // bad length
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I2IAAA\n".to_string(), // 33 bytes
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jx\n".to_string(),     // 30 bytes
        "o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFVV\n".to_string(), // 33 bytes
        format!("o\r\n1\n{root}\n"),                                        // carriage return
        format!("o\n1\r\n{root}\n"),
        format!("o\t\n1\n{root}\n"), // tab
    ];
    for t in bad {
        let err = Checkpoint::parse(&t).unwrap_err();
        assert!(matches!(err, Error::MalformedCheckpoint(_)), "{t:?}: {err}");
    }
}

#[test]
fn open_checkpoint_checks_origin() {
    let (signer, _, vkey) = Signer::generate("example.com/log").unwrap();
    let v = Verifier::parse(&vkey).unwrap();
    let cp = Checkpoint {
        origin: "example.com/log".into(),
        size: 3,
        root: EMPTY_ROOT,
        extensions: vec![],
    };
    let note = sign_note(&cp.to_text(), &[&signer]).unwrap();
    assert_eq!(open_checkpoint(&note, &v).unwrap(), cp);

    let other = Checkpoint {
        origin: "example.com/other".into(),
        ..cp.clone()
    };
    let note = sign_note(&other.to_text(), &[&signer]).unwrap();
    assert!(matches!(
        open_checkpoint(&note, &v),
        Err(Error::OriginMismatch { .. })
    ));

    let note = sign_note("example.com/log\n03\nfoo\n", &[&signer]).unwrap();
    assert!(matches!(
        open_checkpoint(&note, &v),
        Err(Error::MalformedCheckpoint(_))
    ));
}
