//! File permissions of the data directory (issue 18.10): under umask 022 the real server
//! creates every directory 0700 and every file 0600, and it refuses to start on a data
//! directory that other users may enter.

#[path = "end_to_end/common/mod.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{cli, gen_events, TestServer};

/// Every directory and file under `dir` (itself included) with its permission bits.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    let meta = std::fs::symlink_metadata(dir).unwrap();
    out.push((dir.to_path_buf(), true, meta.permissions().mode() & 0o7777));
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        if ty.is_dir() {
            walk(&e.path(), out);
        } else {
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            out.push((e.path(), false, mode));
        }
    }
}

fn assert_private(dir: &Path, when: &str) {
    let mut all = Vec::new();
    walk(dir, &mut all);
    let wrong: Vec<String> = all
        .iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { 0o700 } else { 0o600 })
        .map(|(p, is_dir, mode)| {
            let kind = if *is_dir { "dir" } else { "file" };
            format!("{kind} {} is {mode:o}", p.display())
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{when}: not private:\n{}",
        wrong.join("\n")
    );
    for name in ["ledger", "keys", "index.sqlite", "LOCK"] {
        assert!(
            all.iter().any(|(p, _, _)| p.file_name().unwrap() == name),
            "{when}: {name} was not created, so it was not checked"
        );
    }
    assert!(
        all.iter()
            .any(|(p, _, _)| p.extension().is_some_and(|e| e == "seg")),
        "{when}: no segment file was checked"
    );
}

#[test]
fn file_permissions_are_private_under_umask_022() {
    // Regression (issue 18.10): under umask 022 the data directory was 0755 and segment
    // and SQLite files 0644, so any local user read every event.
    // SAFETY: umask changes the process's creation mask; the server inherits it.
    unsafe {
        libc::umask(0o022);
    }
    let mut srv = TestServer::start();
    let http = srv.http();
    srv.send_in_order(&http, &gen_events(300, 1810));
    let viewer = srv.token("auditor", &[]);
    let r = srv.http_as(&viewer).get(&srv.at("/v1/events?limit=5"));
    assert_eq!(r.status, 200, "{}", r.text());
    let size = srv.size(&http);
    srv.wait_indexed(&http, size);
    srv.wait_checkpoint(&http, size);
    // While it runs: the SQLite -wal and -shm files are there too.
    assert_private(&srv.data_dir, "while serving");
    let wal = srv.data_dir.join("index.sqlite-wal");
    assert!(wal.exists(), "{} was checked", wal.display());
    srv.stop();
    assert_private(&srv.data_dir, "after a graceful stop");
    srv.restart();
    let http = srv.http();
    srv.send_in_order(&http, &gen_events(10, 1811));
    srv.kill9();
    assert_private(&srv.data_dir, "after a restart and kill -9");
}

#[test]
fn a_data_dir_open_to_other_users_is_refused() {
    // Regression (issue 18.10): a data directory readable by others was served.
    let mut srv = TestServer::start();
    let http = srv.http();
    srv.send_in_order(&http, &gen_events(5, 18101));
    let size = srv.size(&http);
    srv.stop();
    let dir = srv.data_dir.to_str().unwrap().to_string();
    for mode in [0o755, 0o750, 0o701] {
        std::fs::set_permissions(&srv.data_dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = cli(
            &["serve", "--data-dir", &dir, "--listen", "127.0.0.1:0"],
            &[],
            None,
        );
        assert_ne!(out.code, 0, "mode {mode:o} must be refused: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("chmod 700 {dir}")),
            "the message gives the fix: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("(mode {mode:o})")),
            "{}",
            out.stderr
        );
    }
    // A new data directory the operator made with a loose mode is refused too.
    let tmp = tempfile::tempdir().unwrap();
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o775)).unwrap();
    let out = cli(
        &[
            "serve",
            "--data-dir",
            fresh.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
        None,
    );
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("chmod 700"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_dir(&fresh).unwrap().count(),
        0,
        "a refused start creates nothing"
    );
    // Fixed as the message says, it starts with everything it had.
    std::fs::set_permissions(&srv.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    srv.restart();
    let http = srv.http();
    assert_eq!(srv.size(&http), size);
}
