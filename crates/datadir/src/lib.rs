//! The data directory's shared plumbing: the lock that makes one server per directory,
//! the secret files (read only when no other user may read them, written durably), the
//! log's signing key, and the one way derived SQLite stores are opened.
//!
//! It knows nothing about events, HTTP or what the SQLite files hold: each store's crate
//! owns its own schema.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

mod keys;

pub use keys::{load_or_create, read_secret, write_new, ORIGIN_DEFAULT};

/// Takes an exclusive lock on `<data-dir>/LOCK`, so that two servers never
/// write one log (the lock goes away with the process, even on kill -9).
/// `mlaudit reindex` takes it too, so it never runs beside a server.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        anyhow::bail!(
            "{} is in use by another mlaudit serve or reindex (lock {} is held)",
            dir.display(),
            path.display()
        );
    }
    Ok(file)
}

/// Opens a derived SQLite store the way all of them are opened: WAL, so
/// readers never block the writer, and `synchronous=NORMAL`, because the
/// ledger, not SQLite, is what must survive a power cut.
pub fn open_db(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}
