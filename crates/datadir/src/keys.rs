//! The log's signing key: created on first start, kept in
//! `<data-dir>/keys/log.key` (mode 0600) in the C2SP/Go note private-key
//! format, with the verifier key beside it in `log.vkey`.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use tlog::Signer;

/// The origin of a new log when none is configured.
pub const ORIGIN_DEFAULT: &str = "localhost/mlaudit";

/// Loads the signing key, or creates one for `origin` if the data directory
/// has none. Returns the signer and whether it was just created.
pub fn load_or_create(data_dir: &Path, origin: Option<&str>) -> anyhow::Result<(Signer, bool)> {
    let dir = data_dir.join("keys");
    let skey_path = dir.join("log.key");
    if skey_path.exists() {
        let skey = read_secret(&skey_path)?;
        let signer = Signer::from_skey(skey.trim())
            .with_context(|| format!("{} is not a valid signing key", skey_path.display()))?;
        // log.vkey is derived from the key; a crash during creation may have
        // left it missing, so write it again.
        let vkey_path = dir.join("log.vkey");
        if !vkey_path.exists() {
            write_new(&vkey_path, format!("{}\n", signer.vkey()).as_bytes(), 0o600)?;
        }
        if let Some(origin) = origin {
            if origin != signer.name() {
                bail!(
                    "the log in {} has origin {:?}, but {:?} was configured; the origin of a log cannot change",
                    data_dir.display(),
                    signer.name(),
                    origin
                );
            }
        }
        return Ok((signer, false));
    }
    let origin = origin.unwrap_or(ORIGIN_DEFAULT);
    let (signer, skey, vkey) = Signer::generate(origin)
        .with_context(|| format!("creating a key for origin {origin:?}"))?;
    crate::create_private_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    write_new(&skey_path, skey.as_bytes(), 0o600)?;
    write_new(&dir.join("log.vkey"), format!("{vkey}\n").as_bytes(), 0o600)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok((signer, true))
}

/// Reads a secret file (a key or token), refusing one that other users may read.
pub fn read_secret(path: &Path) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by other users (mode {:o}); run chmod 600 on it",
            path.display(),
            mode & 0o777
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(zeroize::Zeroizing::new(text))
}

/// Creates `path` (which must not exist) with `mode` and writes `data` durably (the caller
/// syncs the directory).
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}
