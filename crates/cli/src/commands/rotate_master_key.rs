//! `mlaudit rotate-master-key`: re-wrap a stopped server's key store under a new master key.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// `mlaudit rotate-master-key`.
#[derive(Args)]
pub struct RotateMasterKeyArgs {
    /// Data directory of a stopped server.
    #[arg(long, env = "MLAUDIT_DATA_DIR")]
    data_dir: PathBuf,
    /// Where the current master key is, if not in MLAUDIT_MASTER_KEY or
    /// <data-dir>/keys/master.key.
    #[arg(long, env = "MLAUDIT_MASTER_KEY_FILE")]
    master_key_file: Option<PathBuf>,
    /// File with the new master key (base64 of 32 bytes, e.g. head -c 32 /dev/urandom | base64).
    #[arg(long)]
    new_key_file: PathBuf,
}

/// `mlaudit rotate-master-key`: offline (takes the data directory's LOCK), re-wraps every
/// key of `keys.sqlite` under the new master key (`privacy::rotate_master_key`).
pub fn rotate_master_key(a: RotateMasterKeyArgs) -> anyhow::Result<i32> {
    let _lock = datadir::lock_data_dir(&a.data_dir)?;
    let cfg = privacy::PrivacyConfig::resolve(
        privacy::PrivacyFile {
            master_key_file: a.master_key_file.clone(),
            ..Default::default()
        },
        std::env::var("MLAUDIT_MASTER_KEY").ok(),
    )?;
    let new = zeroize::Zeroizing::new(
        std::fs::read_to_string(&a.new_key_file)
            .with_context(|| format!("reading {}", a.new_key_file.display()))?,
    );
    let n = privacy::rotate_master_key(&a.data_dir, &cfg, &new)?;
    eprintln!("mlaudit: re-wrapped {n} keys under the new master key");
    if cfg.master_key_env.is_some() || cfg.master_key_file.is_some() {
        eprintln!(
            "mlaudit: the server now needs the new key: update MLAUDIT_MASTER_KEY or the master key file"
        );
    } else {
        eprintln!(
            "mlaudit: {} now holds the new key",
            a.data_dir.join(privacy::MASTER_KEY_FILE_DEFAULT).display()
        );
    }
    Ok(0)
}
