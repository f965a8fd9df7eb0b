//! Benchmark of the durable ledger: a program that prints figures, run on purpose (STYLE.md
//! item 20), never a timed test.
//!
//! ```text
//! cargo run --release -p ledger --example ledger_bench -- [--quick] [--dir DIR] [--compression-level N]
//! ```
//!
//! Everything is written with real `fdatasync` (`ledger::fs::StdFs`) into a fresh temporary
//! directory under `--dir` (default: the current directory, so that the figures are those of
//! a real disk and not of a tmpfs `/tmp`). The phases, each printed with its target:
//!
//! 1. append throughput with group commit, for several batch sizes and appender counts;
//! 2. offline verification (`Store::open_read_only` + `verify_log`) of the log of phase 1;
//! 3. bytes on disk per entry after bulk ingest of the `sample` generator's mix;
//! 4. inclusion-proof latency on a large log of small synthetic entries;
//! 5. checkpoint latency (acknowledgement → covering checkpoint) under sustained load.
//!
//! `--compression-level N` overrides `Config::compression_level` in phases 1 to 4, to weigh
//! append throughput against bytes on disk; phase 5 always uses the default `Config`.
//!
//! Stored entries are built exactly as ingest builds them: `split_body` → `Event::parse` →
//! `entry_template` → `NewEntry::Template`. The file system is `StdFs` wrapped in a counter
//! that measures how much of the wall time the writer spends in `fdatasync`, which is where
//! a durable log's time should go.

use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::Utc;
use event::{entry_template, format_time, split_body, BodyFormat, Event, RECORDED_AT_BYTES_MAX};
use ledger::fs::{Fs, FsFile, StdFs};
use ledger::{Config, Ledger, NewEntry, Store};

/// Key name and log origin of every benchmark ledger.
const ORIGIN: &str = "bench.example/ledger";
/// Events per NDJSON request when parsing the generated events (the ingest default).
const REQUEST_EVENTS: usize = 1000;
/// Entries per append when building the large log of phase 4 (the writer's group limit).
const BUILD_BATCH_ENTRIES: usize = ledger::GROUP_ENTRIES_MAX;
/// Random seqs whose inclusion proof phase 4 times.
const PROOF_SAMPLES: usize = 10_000;
/// How often phase 5 looks at the published checkpoint.
const CHECKPOINT_POLL: Duration = Duration::from_millis(1);
/// How to call the benchmark.
const USAGE: &str =
    "usage: ledger_bench [--quick] [--dir DIR] [--compression-level N] [--seal-threads N]";

/// The size of a run.
struct Plan {
    name: &'static str,
    /// Distinct generated events (phase 3 ingests each once; phase 1 cycles through them).
    events: usize,
    /// Wall time of each row of phase 1.
    append_row: Duration,
    /// Entries of the log that phase 4 builds.
    proof_log_entries: u64,
    /// Wall time of the sustained load of phase 5.
    checkpoint_load: Duration,
    /// Samples of the raw fdatasync probe.
    fsync_samples: usize,
}

const FULL: Plan = Plan {
    name: "full",
    events: 100_000,
    append_row: Duration::from_secs(3),
    proof_log_entries: 10_000_000,
    checkpoint_load: Duration::from_secs(6),
    fsync_samples: 200,
};

const QUICK: Plan = Plan {
    name: "quick",
    events: 20_000,
    append_row: Duration::from_secs(1),
    proof_log_entries: 1_000_000,
    checkpoint_load: Duration::from_secs(3),
    fsync_samples: 50,
};

fn main() -> Result<()> {
    let mut plan = &FULL;
    let mut base = PathBuf::from(".");
    let mut config = Config::new(ORIGIN);
    config.stamp = Some(Arc::new(NowStamp));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => plan = &QUICK,
            "--dir" => base = PathBuf::from(args.next().context("--dir needs a directory")?),
            "--compression-level" => {
                let level = args.next().context("--compression-level needs a number")?;
                config.compression_level = level
                    .parse()
                    .with_context(|| format!("bad --compression-level {level:?}"))?;
            }
            "--seal-threads" => {
                let n = args.next().context("--seal-threads needs a number")?;
                config.seal_threads = n
                    .parse()
                    .with_context(|| format!("bad --seal-threads {n:?}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => {
                bail!("unknown argument {other:?} ({USAGE})")
            }
        }
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
    let fs_name = filesystem_name(&base)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let base = base.canonicalize().context("resolving --dir")?;

    println!("== mlaudit ledger benchmark ({} run) ==", plan.name);
    println!(
        "machine: {cpus} CPUs; data under {} on {fs_name}; real fdatasync (StdFs); zstd level {} in [1]-[4]",
        base.display(),
        config.compression_level
    );
    println!(
        "load average (1/5/15 min) at start: {} (other processes skew every figure; compare runs on a quiet machine)",
        load_average()
    );
    if fs_name == "tmpfs" {
        println!("WARNING: {} is tmpfs: fdatasync costs nothing there, append figures are not those of a disk", base.display());
    }
    let (p50, p99) = probe_fdatasync(&base, plan.fsync_samples)?;
    println!(
        "raw fdatasync after a 4 KiB append:          p50 {:>7.3} ms  p99 {:>7.3} ms   (floor of one commit)",
        ms(p50),
        ms(p99)
    );

    let (_, skey, vkey) = tlog::Signer::generate(ORIGIN)?;
    let verifier = tlog::Verifier::parse(&vkey)?;
    let key = Key { skey, verifier };

    let pool = generate_entries(plan.events)?;
    let avg_raw = pool
        .iter()
        .enumerate()
        .map(|(seq, e)| template_len(e) + decimal_len(seq as u64))
        .sum::<usize>() as f64
        / pool.len() as f64;
    println!(
        "events: {} from the sample generator, stored as entries of {:.0} bytes on average (uncompressed)",
        thousands(pool.len() as f64),
        avg_raw
    );

    println!();
    println!("[1] append throughput, fdatasync per group commit ({:.0} s per row; commits = group commits, one segment fdatasync each)", plan.append_row.as_secs_f64());
    let dir1 = tempfile::Builder::new()
        .prefix(".ledger-bench-")
        .tempdir_in(&base)?;
    let stats1 = Arc::new(SyncStats::default());
    let ledger1 = open_ledger(dir1.path(), &key, stats1.clone(), &config)?;
    for (batch, appenders) in [(1, 1), (1, 32), (100, 1), (100, 4), (1000, 1), (1000, 4)] {
        let row = append_row(&ledger1, &stats1, &pool, batch, appenders, plan.append_row)?;
        let target = if batch == 1000 {
            verdict(
                row.entries_per_sec >= 500_000.0,
                "target >= 500,000 entries/s",
            )
        } else {
            "(no target)".to_string()
        };
        println!(
            "append batch={batch:<5} appenders={appenders:<3} {:>10} entries/s {:>8} commits/s {:>8} appends/s  ack p50 {:>6.2} ms p99 {:>6.2} ms  fdatasync {:>3.0}% of wall  {target}",
            thousands(row.entries_per_sec),
            thousands(row.commits_per_sec),
            thousands(row.appends_per_sec),
            ms(row.ack_p50),
            ms(row.ack_p99),
            row.fsync_share * 100.0,
        );
    }
    ledger1.close();
    let size1 = ledger1.store().size();
    drop(ledger1);
    let usage1 = disk_usage(dir1.path())?;
    println!(
        "info: this mixed-batch log holds {} entries in {:.0} bytes/entry on disk (small commits write small, poorly compressed frames)",
        thousands(size1 as f64),
        usage1.allocated as f64 / size1 as f64
    );

    println!();
    println!("[2] offline verification of the log of [1] (page cache warm: it was just written)");
    let store = Store::open_read_only(Arc::new(StdFs), dir1.path())?;
    let verified = AtomicU64::new(0);
    let report = with_progress("verify", &verified, Some(size1), || {
        ledger::verify::verify_log(&store, &key.verifier, None, &mut |done, _| {
            verified.store(done, Ordering::Relaxed)
        })
    })
    .map_err(|e| anyhow::anyhow!("verification failed: {e}"))?;
    let verify_rate = report.entries_per_sec();
    println!(
        "verify {} entries in {:.2} s: {:>10} entries/s  {}",
        thousands(report.size as f64),
        report.elapsed.as_secs_f64(),
        thousands(verify_rate),
        verdict(verify_rate >= 1_000_000.0, "target >= 1,000,000 entries/s")
    );
    drop(store);
    drop(dir1);

    println!();
    println!(
        "[3] bytes on disk after bulk ingest of the sample mix ({} events once each, 1,000-entry batches)",
        thousands(pool.len() as f64)
    );
    let dir3 = tempfile::Builder::new()
        .prefix(".ledger-bench-")
        .tempdir_in(&base)?;
    let ledger3 = open_ledger(dir3.path(), &key, Arc::new(SyncStats::default()), &config)?;
    let ingested = AtomicU64::new(0);
    let mut raw_bytes = 0u64;
    with_progress(
        "ingest",
        &ingested,
        Some(pool.len() as u64),
        || -> Result<()> {
            for chunk in pool.chunks(1000) {
                let committed = ledger3.append(chunk.to_vec())?;
                for (i, e) in chunk.iter().enumerate() {
                    let seq = committed.first_seq + i as u64;
                    raw_bytes += (template_len(e) + decimal_len(seq)) as u64;
                }
                ingested.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            Ok(())
        },
    )?;
    ledger3.close();
    let size3 = ledger3.store().size();
    drop(ledger3);
    let usage = disk_usage(dir3.path())?;
    let per_entry = usage.allocated as f64 / size3 as f64;
    println!(
        "disk  {:>7.1} bytes/entry (du: segments {:.1} + tiles {:.1} + checkpoint and FORMAT {:.1})  {}",
        per_entry,
        usage.segments as f64 / size3 as f64,
        usage.tiles as f64 / size3 as f64,
        usage.other as f64 / size3 as f64,
        verdict(per_entry <= 200.0, "target <= 200 bytes/entry")
    );
    println!(
        "entry {:>7.1} bytes/entry stored uncompressed on average; segments compress them {:.1}x",
        raw_bytes as f64 / size3 as f64,
        raw_bytes as f64 / usage.segments_apparent.max(1) as f64
    );
    drop(dir3);

    println!();
    println!(
        "[4] inclusion proofs on a log of {} small synthetic entries",
        thousands(plan.proof_log_entries as f64)
    );
    let dir4 = tempfile::Builder::new()
        .prefix(".ledger-bench-")
        .tempdir_in(&base)?;
    let ledger4 = open_ledger(dir4.path(), &key, Arc::new(SyncStats::default()), &config)?;
    let built = AtomicU64::new(0);
    let started = Instant::now();
    with_progress("build", &built, Some(plan.proof_log_entries), || {
        build_synthetic_log(&ledger4, plan.proof_log_entries, &built)
    })?;
    let build_time = started.elapsed();
    println!(
        "build {:>10} entries in {:.1} s ({} entries/s, batches of {})",
        thousands(plan.proof_log_entries as f64),
        build_time.as_secs_f64(),
        thousands(plan.proof_log_entries as f64 / build_time.as_secs_f64()),
        thousands(BUILD_BATCH_ENTRIES as f64)
    );
    let proofs = time_inclusion_proofs(ledger4.store())?;
    println!(
        "proof p50 {:>7.1} µs  p99 {:>7.1} µs  max {:>7.1} µs over {} random seqs (all {} proofs verified)  {}",
        us(proofs.p50),
        us(proofs.p99),
        us(proofs.max),
        thousands(PROOF_SAMPLES as f64),
        thousands(PROOF_SAMPLES as f64),
        verdict(proofs.p50 < Duration::from_micros(100), "target p50 < 100 µs")
    );
    drop(ledger4);
    drop(dir4);

    println!();
    let default_config = Config::new(ORIGIN);
    println!(
        "[5] checkpoint latency under sustained load (default Config: checkpoint_interval {} ms; 4 appenders x 100-entry batches for {:.0} s; checkpoint polled every {} ms)",
        default_config.checkpoint_interval.as_millis(),
        plan.checkpoint_load.as_secs_f64(),
        CHECKPOINT_POLL.as_millis()
    );
    let dir5 = tempfile::Builder::new()
        .prefix(".ledger-bench-")
        .tempdir_in(&base)?;
    let ledger5 = open_ledger(
        dir5.path(),
        &key,
        Arc::new(SyncStats::default()),
        &default_config,
    )?;
    let cp = checkpoint_latency(&ledger5, &pool, plan.checkpoint_load)?;
    println!(
        "checkpoint p50 {:>6.0} ms  p99 {:>6.0} ms  max {:>6.0} ms after the ack, over {} acks ({} checkpoints, {} entries/s)  {}",
        ms(cp.p50),
        ms(cp.p99),
        ms(cp.max),
        thousands(cp.acks as f64),
        cp.checkpoints,
        thousands(cp.entries_per_sec),
        verdict(
            cp.p50 <= Duration::from_secs(1) && cp.p99 <= Duration::from_secs(2),
            "target p50 <= 1 s, p99 <= 2 s"
        )
    );
    drop(ledger5);
    drop(dir5);
    println!();
    println!("load average (1/5/15 min) at end: {}", load_average());
    Ok(())
}

/// The first three fields of `/proc/loadavg`, or `unknown`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The signing key of every benchmark ledger (`Signer` is not `Clone`) and its verifier.
struct Key {
    skey: String,
    verifier: tlog::Verifier,
}

fn open_ledger(dir: &Path, key: &Key, stats: Arc<SyncStats>, config: &Config) -> Result<Ledger> {
    let fs = Arc::new(CountingFs { stats });
    Ok(Ledger::open(
        fs,
        dir,
        config.clone(),
        tlog::Signer::from_skey(&key.skey)?,
    )?)
}

/// Generates `n` events (the `sample` generator, seed 405) and turns them into stored-entry
/// templates, as ingest does.
fn generate_entries(n: usize) -> Result<Vec<NewEntry>> {
    eprint!("generating {n} events ...");
    let text = sample::ndjson(n as u64, &sample::Options::default());
    eprintln!(" done");
    let lines: Vec<&str> = text.lines().collect();
    let now = Utc::now();
    let mut entries = Vec::with_capacity(lines.len());
    for request in lines.chunks(REQUEST_EVENTS) {
        let body = request.join("\n");
        let values = split_body(body.as_bytes(), BodyFormat::Ndjson, REQUEST_EVENTS)?;
        for value in values {
            let event = Event::parse(value, now, false)
                .map_err(|e| anyhow::anyhow!("generated event is invalid: {e:?}"))?;
            let t = entry_template(&event, "tok-bench")?;
            entries.push(NewEntry::Template {
                head: t.head,
                mid: t.mid,
                tail: t.tail,
            });
        }
    }
    Ok(entries)
}

/// `recorded_at` as the server stamps it, from the system clock (the server also clamps
/// it so that it never steps back; a benchmark need not).
#[derive(Debug)]
struct NowStamp;

impl ledger::Stamp for NowStamp {
    fn next(&self) -> Vec<u8> {
        format_time(Utc::now()).into_bytes()
    }
}

/// Length of an entry without its seq digits (with the longest stamp).
fn template_len(e: &NewEntry) -> usize {
    match e {
        NewEntry::Bytes(b) => b.len(),
        NewEntry::Template { head, mid, tail } => {
            head.len() + RECORDED_AT_BYTES_MAX + mid.len() + tail.len()
        }
    }
}

fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// What one row of phase 1 measured.
struct AppendRow {
    entries_per_sec: f64,
    commits_per_sec: f64,
    appends_per_sec: f64,
    ack_p50: Duration,
    ack_p99: Duration,
    /// Share of the wall time the writer spent in segment `fdatasync`.
    fsync_share: f64,
}

/// Runs `appenders` threads, each appending `batch`-entry batches back to back for `duration`.
fn append_row(
    ledger: &Ledger,
    stats: &SyncStats,
    pool: &[NewEntry],
    batch: usize,
    appenders: usize,
    duration: Duration,
) -> Result<AppendRow> {
    let entries = AtomicU64::new(0);
    let barrier = Barrier::new(appenders + 1);
    let label = format!("append batch={batch} appenders={appenders}");
    let (elapsed, syncs, sync_ns, latencies) = with_progress(&label, &entries, None, || {
        std::thread::scope(|s| -> Result<_> {
            let threads: Vec<_> = (0..appenders)
                .map(|t| {
                    let (entries, barrier) = (&entries, &barrier);
                    s.spawn(move || -> Result<Vec<Duration>> {
                        let mut cursor = t * pool.len() / appenders;
                        let mut latencies = Vec::new();
                        barrier.wait();
                        let deadline = Instant::now() + duration;
                        while Instant::now() < deadline {
                            let mut entries_batch = Vec::with_capacity(batch);
                            for _ in 0..batch {
                                entries_batch.push(pool[cursor].clone());
                                cursor = (cursor + 1) % pool.len();
                            }
                            let sent = Instant::now();
                            ledger.append(entries_batch)?;
                            latencies.push(sent.elapsed());
                            entries.fetch_add(batch as u64, Ordering::Relaxed);
                        }
                        Ok(latencies)
                    })
                })
                .collect();
            barrier.wait();
            let (syncs0, ns0) = stats.segment();
            let started = Instant::now();
            let mut latencies = Vec::new();
            for t in threads {
                latencies.extend(t.join().expect("appender panicked")?);
            }
            let elapsed = started.elapsed();
            let (syncs1, ns1) = stats.segment();
            Ok((elapsed, syncs1 - syncs0, ns1 - ns0, latencies))
        })
    })?;
    let secs = elapsed.as_secs_f64();
    let appends = latencies.len() as f64;
    let mut latencies = latencies;
    latencies.sort_unstable();
    Ok(AppendRow {
        entries_per_sec: appends * batch as f64 / secs,
        commits_per_sec: syncs as f64 / secs,
        appends_per_sec: appends / secs,
        ack_p50: percentile(&latencies, 0.50),
        ack_p99: percentile(&latencies, 0.99),
        fsync_share: sync_ns as f64 / 1e9 / secs,
    })
}

/// Appends `total` small distinct entries in batches of the writer's group limit, from two
/// threads so that the next batch is queued while one is written.
fn build_synthetic_log(ledger: &Ledger, total: u64, built: &AtomicU64) -> Result<()> {
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let start = next.fetch_add(BUILD_BATCH_ENTRIES as u64, Ordering::Relaxed);
                        if start >= total {
                            return Ok(());
                        }
                        let n = (total - start).min(BUILD_BATCH_ENTRIES as u64) as usize;
                        // About 20 bytes each: `{"synthetic":<seq>}`.
                        let batch = (0..n)
                            .map(|_| NewEntry::Template {
                                head: br#"{"synthetic":"#.to_vec(),
                                mid: Vec::new(),
                                tail: b"}".to_vec(),
                            })
                            .collect();
                        ledger.append(batch)?;
                        built.fetch_add(n as u64, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        threads
            .into_iter()
            .try_for_each(|t| t.join().expect("builder panicked"))
    })
}

struct Latencies {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

/// Times `store.inclusion_proof` for random seqs of the whole log, then checks every proof.
fn time_inclusion_proofs(store: &Store) -> Result<Latencies> {
    let size = store.size();
    let mut rng = SplitMix64(0x6d6c_6175_6469_7421);
    let seqs: Vec<u64> = (0..PROOF_SAMPLES).map(|_| rng.next() % size).collect();
    let mut latencies = Vec::with_capacity(PROOF_SAMPLES);
    let mut proofs = Vec::with_capacity(PROOF_SAMPLES);
    for &seq in &seqs {
        let t = Instant::now();
        let proof = store.inclusion_proof(seq, size)?;
        latencies.push(t.elapsed());
        proofs.push(proof);
    }
    // Outside the timing: the proofs must be real.
    let root = store.root_at(size)?;
    for (&seq, proof) in seqs.iter().zip(&proofs) {
        tlog::verify_inclusion(seq, size, &store.leaf_hash(seq)?, proof, &root)
            .with_context(|| format!("inclusion proof of seq {seq} does not verify"))?;
    }
    latencies.sort_unstable();
    Ok(Latencies {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: *latencies.last().expect("samples"),
    })
}

struct CheckpointLatency {
    p50: Duration,
    p99: Duration,
    max: Duration,
    acks: usize,
    checkpoints: usize,
    entries_per_sec: f64,
}

/// Four appenders append 100-entry batches for `duration` while a sampler notes when each
/// new checkpoint size becomes visible; each ack's latency is the time until the first
/// checkpoint covering its last entry was seen.
fn checkpoint_latency(
    ledger: &Ledger,
    pool: &[NewEntry],
    duration: Duration,
) -> Result<CheckpointLatency> {
    const APPENDERS: usize = 4;
    const BATCH: usize = 100;
    let appended = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let store = ledger.store();
    let started = Instant::now();
    let (acks, seen) = with_progress("sustained load", &appended, None, || {
        std::thread::scope(|s| -> Result<_> {
            let sampler = s.spawn(|| {
                let mut seen: Vec<(Instant, u64)> = Vec::new();
                let mut last = 0;
                let mut stopped_at = None;
                loop {
                    let size = store.checkpoint().map_or(0, |c| c.checkpoint.size);
                    let now = Instant::now();
                    if size > last {
                        seen.push((now, size));
                        last = size;
                    }
                    if stop.load(Ordering::Acquire) {
                        let since = *stopped_at.get_or_insert(now);
                        // Wait for the checkpoint that covers the last acks, but not forever.
                        if last >= store.size() || now - since > Duration::from_secs(5) {
                            return seen;
                        }
                    }
                    std::thread::sleep(CHECKPOINT_POLL);
                }
            });
            let appenders: Vec<_> = (0..APPENDERS)
                .map(|t| {
                    let appended = &appended;
                    s.spawn(move || -> Result<Vec<(Instant, u64)>> {
                        let mut cursor = t * pool.len() / APPENDERS;
                        let mut acks = Vec::new();
                        while started.elapsed() < duration {
                            let mut batch = Vec::with_capacity(BATCH);
                            for _ in 0..BATCH {
                                batch.push(pool[cursor].clone());
                                cursor = (cursor + 1) % pool.len();
                            }
                            let c = ledger.append(batch)?;
                            acks.push((Instant::now(), c.first_seq + BATCH as u64));
                            appended.fetch_add(BATCH as u64, Ordering::Relaxed);
                        }
                        Ok(acks)
                    })
                })
                .collect();
            let mut acks = Vec::new();
            for t in appenders {
                acks.extend(t.join().expect("appender panicked")?);
            }
            stop.store(true, Ordering::Release);
            let seen = sampler.join().expect("sampler panicked");
            Ok((acks, seen))
        })
    })?;
    let load_secs = duration.as_secs_f64();
    let mut latencies = Vec::with_capacity(acks.len());
    for &(acked_at, end) in &acks {
        let i = seen.partition_point(|&(_, size)| size < end);
        let Some(&(covered_at, _)) = seen.get(i) else {
            bail!(
                "no checkpoint covered entry {} within 5 s of the end of the load",
                end - 1
            );
        };
        latencies.push(covered_at.saturating_duration_since(acked_at));
    }
    latencies.sort_unstable();
    Ok(CheckpointLatency {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        max: *latencies.last().context("no acks")?,
        acks: acks.len(),
        checkpoints: seen.len(),
        entries_per_sec: appended.load(Ordering::Relaxed) as f64 / load_secs,
    })
}

/// Times `samples` appends of 4 KiB, each followed by `fdatasync`, in a scratch file.
fn probe_fdatasync(base: &Path, samples: usize) -> Result<(Duration, Duration)> {
    use std::io::Write;
    let dir = tempfile::Builder::new()
        .prefix(".ledger-bench-")
        .tempdir_in(base)?;
    let mut file = std::fs::File::create(dir.path().join("probe"))?;
    let block = [0x5au8; 4096];
    let mut latencies = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    latencies.sort_unstable();
    Ok((percentile(&latencies, 0.50), percentile(&latencies, 0.99)))
}

/// Disk usage of a ledger directory, in allocated bytes as `du` counts them.
struct Usage {
    allocated: u64,
    segments: u64,
    segments_apparent: u64,
    tiles: u64,
    other: u64,
}

fn disk_usage(dir: &Path) -> Result<Usage> {
    let mut u = Usage {
        allocated: 0,
        segments: 0,
        segments_apparent: 0,
        tiles: 0,
        other: 0,
    };
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let bytes = meta.blocks() * 512;
            u.allocated += bytes;
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            match d.file_name().and_then(|n| n.to_str()) {
                Some("segments") => {
                    u.segments += bytes;
                    u.segments_apparent += meta.len();
                }
                Some("tiles") => u.tiles += bytes,
                _ => u.other += bytes,
            }
        }
    }
    Ok(u)
}

/// `fdatasync` calls on segment files and the time they took, across all threads.
#[derive(Default)]
struct SyncStats {
    segment_syncs: AtomicU64,
    segment_sync_ns: AtomicU64,
}

impl SyncStats {
    fn segment(&self) -> (u64, u64) {
        (
            self.segment_syncs.load(Ordering::Relaxed),
            self.segment_sync_ns.load(Ordering::Relaxed),
        )
    }
}

/// `StdFs`, counting the `fdatasync` of segment files: the writer makes each commit group
/// durable with one (two when a group crosses into a new segment), so their number is the
/// number of group commits.
struct CountingFs {
    stats: Arc<SyncStats>,
}

struct CountingFile {
    inner: Box<dyn FsFile>,
    /// Whether this is a segment file (in `segments/`), whose syncs are commits.
    segment: bool,
    stats: Arc<SyncStats>,
}

impl CountingFs {
    fn wrap(&self, path: &Path, inner: Box<dyn FsFile>) -> Box<dyn FsFile> {
        let segment = path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "segments");
        Box::new(CountingFile {
            inner,
            segment,
            stats: self.stats.clone(),
        })
    }
}

impl FsFile for CountingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn append(&self, data: &[u8]) -> std::io::Result<()> {
        self.inner.append(data)
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let t = Instant::now();
        let r = self.inner.sync_data();
        if self.segment {
            self.stats.segment_syncs.fetch_add(1, Ordering::Relaxed);
            self.stats
                .segment_sync_ns
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        r
    }
}

impl Fs for CountingFs {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn FsFile>> {
        Ok(self.wrap(path, StdFs.open(path)?))
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn FsFile>> {
        Ok(self.wrap(path, StdFs.create(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        StdFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn list(&self, path: &Path) -> std::io::Result<Vec<String>> {
        StdFs.list(path)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        StdFs.remove(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
}

/// Runs `f` while a thread reports `counter` on stderr: a line rewritten in place on a
/// terminal, a line every few seconds otherwise.
fn with_progress<T>(
    label: &str,
    counter: &AtomicU64,
    total: Option<u64>,
    f: impl FnOnce() -> T,
) -> T {
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            let started = Instant::now();
            let mut shown = false;
            while let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(every) {
                let n = counter.load(Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                let of = total.map_or(String::new(), |t| {
                    format!(
                        " of {} ({:.0}%)",
                        thousands(t as f64),
                        n as f64 * 100.0 / t as f64
                    )
                });
                let line = format!(
                    "  {label}: {}{of} entries, {secs:.1} s, {} entries/s",
                    thousands(n as f64),
                    thousands(n as f64 / secs)
                );
                if terminal {
                    eprint!("\r{line:<100}");
                } else {
                    eprintln!("{line}");
                }
                shown = true;
            }
            if shown && terminal {
                eprint!("\r{:<100}\r", "");
            }
        });
        let result = f();
        drop(done_tx);
        result
    })
}

/// Name of the file system holding `path`, from `statfs`.
fn filesystem_name(path: &Path) -> Result<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: `statfs` is plain old data, so all zeroes is a valid value to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `st` a valid, writable statfs.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statfs {}", path.display()));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's integer type differs between targets
    Ok(match st.f_type as i64 {
        0x0102_1994 => "tmpfs",
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        _ => "an unrecognized file system",
    })
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn verdict(met: bool, target: &str) -> String {
    format!("[{target}: {}]", if met { "met" } else { "MISSED" })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `1234567.8` → `"1,234,568"`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A small deterministic generator (SplitMix64), so proof seqs are the same on every run.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
