//! `mlaudit reindex`: rebuild a stopped server's query index from its ledger (offline).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::ProgressBar;

/// `mlaudit reindex`.
#[derive(Args)]
pub struct ReindexArgs {
    /// Data directory of a stopped server.
    #[arg(long, env = "MLAUDIT_DATA_DIR")]
    data_dir: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `mlaudit reindex --data-dir DIR`: rebuilds `<data-dir>/index.sqlite` from the ledger,
/// offline (it takes the server's lock).
pub fn reindex(a: ReindexArgs) -> anyhow::Result<i32> {
    let dir = &a.data_dir;
    let _lock = datadir::lock_data_dir(dir)?;
    let store = ledger::Store::open_read_only(Arc::new(ledger::fs::StdFs), &dir.join("ledger"))
        .with_context(|| format!("opening the ledger in {}", dir.display()))?;
    let index = index::Index::open(&dir.join("index.sqlite"))?;
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(store.size())
    };
    bar.set_style(crate::output::progress_style("entries", true));
    let started = Instant::now();
    let n = index.rebuild(&store, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "mlaudit: indexed {n} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}
