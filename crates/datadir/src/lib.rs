//! The data directory's shared plumbing: the lock that makes one server per directory,
//! its permissions (created 0700 with files 0600 whatever the umask, refused when other
//! users may enter it), the secret files (read only when no other user may read them,
//! written durably), the log's signing key, and the one way derived SQLite stores are
//! opened.
//!
//! It knows nothing about events, HTTP or what the SQLite files hold: each store's crate
//! owns its own schema.
#![warn(missing_docs)]

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
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
        .mode(0o600)
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
/// ledger, not SQLite, is what must survive a power cut. The file is created
/// 0600 before SQLite opens it (SQLite gives its `-wal` and `-shm` files the
/// database's mode), and an existing file, `-wal` or `-shm` open to other
/// users is narrowed to 0600.
pub fn open_db(path: &Path) -> anyhow::Result<Connection> {
    make_private_file(path)?;
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        if side.exists() {
            make_private_file(&side)?;
        }
    }
    Ok(conn)
}

/// Mode of every directory mlaudit creates in a data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file mlaudit creates in a data directory.
pub const FILE_MODE: u32 = 0o600;

/// Sets the process umask to 0o077, so that anything created without an explicit mode
/// (by SQLite, or a library) is private too. Defense in depth: mlaudit also sets the modes
/// of what it creates. Called by `mlaudit serve` before it opens anything.
pub fn restrict_umask() {
    // SAFETY: umask only changes the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` and its missing parents with mode 0700 (a umask can only narrow it).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Refuses a data directory that group or other users may read, write or enter: through
/// it they would read every event, around access control and the meta-audit. Regression
/// (issue 18.10): under umask 022 it was created 0755.
pub fn check_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "the data directory {} is open to other users (mode {mode:o}): they could read \
             every event, key and token hash in it, around access control and the \
             meta-audit. Run: chmod 700 {}",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Creates `path` empty with mode 0600 if it does not exist, and narrows an existing file
/// that group or others may use to 0600.
pub fn make_private_file(path: &Path) -> anyhow::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
            .with_context(|| format!("chmod 600 {}", path.display()))?;
    }
    Ok(())
}
