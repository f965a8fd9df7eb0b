//! End to end: `mlaudit verify --url` checks a log written by another
//! implementation (Trillian Tessera), served by a plain static file server.

use crate::common;

use std::path::{Path, PathBuf};

use common::{cli, copy_dir, testdata_dir, CliOut, StaticServer};

const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

/// A private copy of the Tessera test log (tests alter it).
fn tessera_copy() -> (tempfile::TempDir, PathBuf) {
    let src = testdata_dir().join("tessera-log");
    assert!(
        src.join("checkpoint").exists(),
        "test vectors missing at {}",
        src.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("log");
    copy_dir(&src, &root);
    (tmp, root)
}

fn verify(url: &str, extra: &[&str]) -> CliOut {
    let mut args = vec!["verify", "--url", url, "--vkey", TESSERA_VKEY, "--quiet"];
    args.extend_from_slice(extra);
    cli(&args, &[], None)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn verify_url_accepts_the_tessera_log_and_a_saved_checkpoint() {
    let (_tmp, root) = tessera_copy();
    let server = StaticServer::start(&root);
    let url = server.url();

    let out = verify(&url, &[]);
    out.assert_ok("verify of the Tessera log");
    assert!(
        out.stdout
            .starts_with("ok: size 15 root rKbDipCvhuX1GZ7g5BBe8sA6BbJ7ja/1nk427v383cs= "),
        "{}",
        out.stdout
    );

    // Every older checkpoint of that log is consistent with the latest.
    for n in [1, 5, 14, 15] {
        let saved = root.join(format!("checkpoint.{n}"));
        let out = verify(&url, &["--checkpoint", path_str(&saved)]);
        out.assert_ok(&format!("verify --checkpoint checkpoint.{n}"));
        assert!(
            out.stdout.contains("consistent with the saved checkpoint"),
            "{}",
            out.stdout
        );
    }

    // A saved checkpoint that claims a different history is refused.
    let signer_text = std::fs::read_to_string(root.join("checkpoint.5")).unwrap();
    let body = signer_text.split("\n\n").next().unwrap();
    let (other, _, _) = tlog::Signer::generate("example.com/log/testdata").unwrap();
    let forged = tlog::sign_note(&format!("{body}\n"), &[&other]).unwrap();
    let forged_path = root.parent().unwrap().join("forged.5");
    std::fs::write(&forged_path, forged).unwrap();
    let out = verify(&url, &["--checkpoint", path_str(&forged_path)]);
    assert_ne!(out.code, 0, "a saved checkpoint under another key: {out:?}");
    assert!(out.stderr.contains("saved checkpoint"), "{}", out.stderr);
}

#[test]
fn verify_url_rejects_a_changed_entry_naming_its_seq() {
    let (_tmp, root) = tessera_copy();
    let bundle = root.join("tile/entries/000.p/15");
    let mut bytes = std::fs::read(&bundle).unwrap();
    // Entries are u16-length-prefixed: 00 03 "one" 00 03 "two" …
    assert_eq!(&bytes[7..10], b"two");
    bytes[8] = b'W';
    std::fs::write(&bundle, &bytes).unwrap();
    let server = StaticServer::start(&root);

    let out = verify(&server.url(), &[]);
    assert_ne!(out.code, 0, "a changed entry must fail: {out:?}");
    assert!(
        out.stderr.contains("FAILED") && out.stderr.contains("first bad seq 1"),
        "the error names seq 1: {}",
        out.stderr
    );
}

#[test]
fn verify_url_rejects_a_checkpoint_signed_by_another_key() {
    let (_tmp, root) = tessera_copy();
    // The same checkpoint body (origin, size, root), signed by a new key of the same name.
    let note = std::fs::read_to_string(root.join("checkpoint")).unwrap();
    let body = note.split("\n\n").next().unwrap();
    let (other, _, other_vkey) = tlog::Signer::generate("example.com/log/testdata").unwrap();
    let forged = tlog::sign_note(&format!("{body}\n"), &[&other]).unwrap();
    assert!(tlog::open_checkpoint(&forged, &tlog::Verifier::parse(&other_vkey).unwrap()).is_ok());
    std::fs::write(root.join("checkpoint"), &forged).unwrap();
    let server = StaticServer::start(&root);

    let out = verify(&server.url(), &[]);
    assert_ne!(
        out.code, 0,
        "a checkpoint under another key must fail: {out:?}"
    );
    assert!(
        out.stderr.contains("does not verify") && out.stderr.contains("another key"),
        "{}",
        out.stderr
    );

    // With the other key pinned instead, the very same tiles verify: only the
    // signature was wrong.
    let out = cli(
        &[
            "verify",
            "--url",
            &server.url(),
            "--vkey",
            &other_vkey,
            "--quiet",
        ],
        &[],
        None,
    );
    out.assert_ok("verify with the forger's key");
    assert!(out.stdout.starts_with("ok: size 15 "), "{}", out.stdout);

    // A missing log is a clean failure, not a hang or a panic.
    let empty = root.parent().unwrap().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let server = StaticServer::start(&empty);
    let out = verify(&server.url(), &[]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("404"), "{}", out.stderr);
}
