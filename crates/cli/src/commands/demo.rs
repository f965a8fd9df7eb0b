//! `mlaudit demo events N`: realistic sample events (NDJSON on stdout) to try the product
//! with, from the seeded generator in the `sample` crate.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};

/// `mlaudit demo …`.
#[derive(Subcommand)]
pub enum DemoCommand {
    /// Print N realistic events as NDJSON (the same N and seed give the same bytes).
    Events(EventsArgs),
}

/// `mlaudit demo events`.
#[derive(Args)]
pub struct EventsArgs {
    /// How many events.
    pub n: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = sample::SEED_DEFAULT)]
    pub seed: u64,
    /// Time of the first event (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
    /// Days the events are spread over.
    #[arg(long, default_value_t = 30.0)]
    pub days: f64,
}

/// Runs `mlaudit demo …`.
pub fn demo(c: DemoCommand) -> anyhow::Result<i32> {
    let DemoCommand::Events(a) = c;
    let start = chrono::DateTime::parse_from_rfc3339(&a.start)
        .with_context(|| format!("--start {:?} is not an RFC 3339 time", a.start))?
        .to_utc();
    anyhow::ensure!(
        a.days.is_finite() && a.days > 0.0,
        "--days must be a positive number of days"
    );
    let opts = sample::Options {
        seed: a.seed,
        start,
        days: a.days,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    sample::write_ndjson(&mut out, a.n, &opts)
        .and_then(|()| out.flush())
        .context("writing events to stdout")?;
    Ok(0)
}
