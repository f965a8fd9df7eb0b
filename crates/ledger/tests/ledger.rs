//! Ledger behaviour on the in-memory file system double and on real disk:
//! reads equal writes, proofs verify, reopening keeps everything, and a
//! failure injected at every single write, sync, rename or create leaves a
//! ledger that reopens with every acknowledged entry and verifies.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ledger::fs::{Fault, Fs, MemFs, StdFs};
use ledger::verify::{verify_log, LogSource};
use ledger::{AppendError, Config, Ledger, NewEntry, OpenError, SignedCheckpoint};
use tlog::{CompactRange, Signer, Verifier, TILE_WIDTH};

const ORIGIN: &str = "test.example/ledger";

fn key() -> (String, String) {
    let (_, skey, vkey) = Signer::generate(ORIGIN).unwrap();
    (skey, vkey)
}

fn config() -> Config {
    let mut c = Config::new(ORIGIN);
    // Checkpoints only when a test asks, so operation counts are deterministic.
    c.checkpoint_interval = Duration::from_secs(3600);
    c
}

fn open(fs: &Arc<dyn Fs>, dir: &Path, skey: &str) -> Result<Ledger, OpenError> {
    Ledger::open(fs.clone(), dir, config(), Signer::from_skey(skey).unwrap())
}

fn entry(seq_hint: u64, i: usize) -> NewEntry {
    if i.is_multiple_of(3) {
        NewEntry::Bytes(format!("plain entry {seq_hint}/{i} {}", "x".repeat(i % 50)).into_bytes())
    } else {
        NewEntry::Template {
            head: format!("{{\"n\":{i},\"seq\":").into_bytes(),
            mid: Vec::new(),
            tail: b",\"v\":1}".to_vec(),
        }
    }
}

fn batch(tag: u64, n: usize) -> Vec<NewEntry> {
    (0..n).map(|i| entry(tag, i)).collect()
}

/// Checks everything a reader can see against an independent model.
fn check_all(ledger: &Ledger, acked: &[(u64, Vec<u8>)], vkey: &str) {
    check_from(ledger, acked, vkey, &CompactRange::new());
}

/// `check_all` for the entries past `prefix`, a model of the first entries
/// (whole bundles, all acknowledged): those count only through the root, and
/// the full `verify_log` runs only without a prefix. For crash cases over a
/// nearly full segment, where reading every entry back dominates.
fn check_from(ledger: &Ledger, acked: &[(u64, Vec<u8>)], vkey: &str, prefix: &CompactRange) {
    let store = ledger.store();
    let size = store.size();
    let from = prefix.size();
    assert!(
        from <= size && from.is_multiple_of(TILE_WIDTH),
        "bad prefix"
    );
    let from_bundle = from / TILE_WIDTH;
    let mut model = prefix.clone();
    // Read bundle by bundle: every stored entry, in order.
    let mut stored: Vec<Vec<u8>> = Vec::with_capacity((size - from) as usize);
    for b in from_bundle..size.div_ceil(TILE_WIDTH) {
        let width = (size - b * TILE_WIDTH).min(TILE_WIDTH);
        let bytes = store.bundle(b, width).unwrap();
        let start = stored.len();
        stored.extend(
            tlog::parse_bundle(&bytes)
                .unwrap()
                .into_iter()
                .map(|e| e.to_vec()),
        );
        let tile = store.tile(0, b, width).unwrap();
        for (i, e) in stored[start..].iter().enumerate() {
            assert_eq!(
                tile[i * 32..(i + 1) * 32],
                tlog::leaf_hash(e),
                "leaf hash in tile 0/{b}"
            );
        }
    }
    let at = |seq: u64| &stored[(seq - from) as usize];
    for (seq, bytes) in acked.iter().filter(|(seq, _)| *seq >= from) {
        assert_eq!(at(*seq), bytes, "entry {seq}");
    }
    assert!(
        acked.iter().all(|(seq, _)| *seq < size),
        "an acknowledged entry is past the size {size}"
    );
    // Scattered reads (every seventh seq, across frames, bundles and segments)
    // find the same entries.
    let some: Vec<u64> = (from..size).step_by(7).collect();
    let slots = store.read_seqs(&some).unwrap();
    for (seq, slot) in some.iter().zip(slots) {
        assert_eq!(
            slot,
            ledger::store::Slot::Entry(at(*seq).clone()),
            "read_seqs of {seq}"
        );
    }
    for seq in [from, (from + size) / 2, size.saturating_sub(1)] {
        if seq < size {
            assert_eq!(&store.entry(seq).unwrap(), at(seq));
        }
    }
    for e in &stored {
        model.append(tlog::leaf_hash(e), |_, _| {});
    }
    assert_eq!(store.root_at(size).unwrap(), model.root());
    let cp = ledger.checkpoint_now().unwrap();
    assert_eq!(cp.checkpoint.size, size);
    assert_eq!(cp.checkpoint.root, model.root());
    if from == 0 {
        let verifier = Verifier::parse(vkey).unwrap();
        let report = verify_log(store.as_ref(), &verifier, None, &mut |_, _| {}).unwrap();
        assert_eq!(report.size, size);
    }
    // Spot-check proofs.
    for seq in [0, size / 2, size.saturating_sub(1)] {
        if seq < size {
            let proof = store.inclusion_proof(seq, size).unwrap();
            tlog::verify_inclusion(
                seq,
                size,
                &store.leaf_hash(seq).unwrap(),
                &proof,
                &model.root(),
            )
            .unwrap();
        }
    }
    if size > 1 {
        let old = size / 2;
        let proof = store.consistency_proof(old, size).unwrap();
        tlog::verify_consistency(
            old,
            size,
            &store.root_at(old).unwrap(),
            &model.root(),
            &proof,
        )
        .unwrap();
    }
}

#[test]
fn appends_read_back_and_verify() {
    let (skey, vkey) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let dir = PathBuf::from("/data/ledger");
    let ledger = open(&fs, &dir, &skey).unwrap();
    let mut acked = Vec::new();
    for (tag, n) in [(0, 1), (1, 255), (2, 1), (3, 300), (4, 1000), (5, 7)] {
        let entries = batch(tag, n);
        let c = ledger.append(entries.clone()).unwrap();
        assert_eq!(c.first_seq, acked.len() as u64);
        for (i, e) in entries.iter().enumerate() {
            let seq = c.first_seq + i as u64;
            let bytes = e.bytes(&[], seq);
            assert_eq!(c.leaf_hashes[i], tlog::leaf_hash(&bytes));
            acked.push((seq, bytes));
        }
    }
    check_all(&ledger, &acked, &vkey);

    // Bundles are exactly the C2SP framing of the entries, partial ones too.
    let store = ledger.store();
    let all: Vec<&[u8]> = acked.iter().map(|(_, b)| b.as_slice()).collect();
    for (b, chunk) in all.chunks(TILE_WIDTH as usize).enumerate() {
        let mut want = Vec::new();
        tlog::encode_bundle(chunk, &mut want).unwrap();
        assert_eq!(store.bundle(b as u64, chunk.len() as u64).unwrap(), want);
        let mut part = Vec::new();
        tlog::encode_bundle(&chunk[..1], &mut part).unwrap();
        assert_eq!(store.bundle(b as u64, 1).unwrap(), part);
    }
    assert!(store.bundle(all.len() as u64 / TILE_WIDTH + 1, 1).is_err());
    assert!(store.entry(all.len() as u64).is_err());

    // Reopen: same content, appends continue.
    drop(ledger);
    let ledger = open(&fs, &dir, &skey).unwrap();
    assert_eq!(ledger.store().size(), acked.len() as u64);
    let c = ledger.append(batch(9, 3)).unwrap();
    assert_eq!(c.first_seq, acked.len() as u64);
    for i in 0..3 {
        let seq = c.first_seq + i;
        acked.push((seq, entry(9, i as usize).bytes(&[], seq)));
    }
    check_all(&ledger, &acked, &vkey);
}

#[test]
fn refuses_bad_batches_without_a_trace() {
    let (skey, _) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let ledger = open(&fs, Path::new("/l"), &skey).unwrap();
    assert_eq!(ledger.append(vec![]), Err(AppendError::Empty));
    let big = NewEntry::Bytes(vec![b'a'; ledger::ENTRY_BYTES_MAX + 1]);
    let err = ledger
        .append(vec![NewEntry::Bytes(b"ok".to_vec()), big])
        .unwrap_err();
    assert!(
        matches!(err, AppendError::TooLarge { index: 1, .. }),
        "{err:?}"
    );
    assert_eq!(ledger.store().size(), 0);
    let max = NewEntry::Bytes(vec![b'a'; ledger::ENTRY_BYTES_MAX]);
    assert_eq!(ledger.append(vec![max]).unwrap().first_seq, 0);
}

#[test]
fn refuses_a_foreign_key_and_a_contradicting_checkpoint() {
    let (skey, _) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let dir = Path::new("/l");
    let ledger = open(&fs, dir, &skey).unwrap();
    ledger.append(batch(0, 10)).unwrap();
    drop(ledger);
    let (other, _) = key();
    match open(&fs, dir, &other) {
        Err(OpenError::Key(msg)) => assert!(msg.contains("does not verify"), "{msg}"),
        other => panic!("expected a key error, got {:?}", other.err()),
    }
}

/// An in-memory ledger at `/l` of 800 entries in four batches, checkpointed and closed.
fn checkpointed_800() -> (String, String, MemFs, Arc<dyn Fs>) {
    let (skey, vkey) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let ledger = open(&fs, Path::new("/l"), &skey).unwrap();
    for t in 0..4 {
        ledger.append(batch(t, 200)).unwrap();
    }
    ledger.checkpoint_now().unwrap();
    drop(ledger);
    (skey, vkey, mem, fs)
}

#[test]
fn corruption_is_named_by_verify_and_refused_on_open() {
    let (skey, vkey, mem, fs) = checkpointed_800();
    let dir = Path::new("/l");
    // Flip a bit in the middle of the segment file (inside some frame).
    let seg = dir.join("segments").join("00000000000000000000.seg");
    let len = fs.open(&seg).unwrap().len().unwrap() as usize;
    mem.corrupt(&seg, len / 2);
    let store = ledger::Store::open_read_only(fs.clone(), dir).unwrap();
    let err = verify_log(
        &store,
        &Verifier::parse(&vkey).unwrap(),
        None,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.seq.is_some(), "{err}");
    assert!(err.seq.unwrap() < 800, "{err}");
    // Opening for writing would cut the log below its signed checkpoint: refused.
    match open(&fs, dir, &skey) {
        Err(OpenError::Corrupt(msg)) => assert!(msg.contains("missing"), "{msg}"),
        other => panic!("expected refusal, got {:?}", other.err()),
    }
}

struct Workload {
    acked: Vec<(u64, Vec<u8>)>,
    checkpoints: Vec<Arc<SignedCheckpoint>>,
}

fn run_workload(ledger: &Ledger, sizes: &[usize], w: &mut Workload) {
    for (tag, &n) in sizes.iter().enumerate() {
        let entries = batch(tag as u64, n);
        if let Ok(c) = ledger.append(entries.clone()) {
            for (i, e) in entries.iter().enumerate() {
                let seq = c.first_seq + i as u64;
                w.acked.push((seq, e.bytes(&[], seq)));
            }
        }
        if let Ok(cp) = ledger.checkpoint_now() {
            w.checkpoints.push(cp);
        }
    }
}

const CRASH_DIR: &str = "/d/ledger";

/// A fresh key and in-memory ledger at `CRASH_DIR` holding `prefill` acknowledged
/// entries (none when 0), closed again.
fn prefilled(prefill: usize) -> (String, String, MemFs, Workload) {
    let (skey, vkey) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let mut w = Workload {
        acked: Vec::new(),
        checkpoints: Vec::new(),
    };
    if prefill > 0 {
        let ledger = open(&fs, Path::new(CRASH_DIR), &skey).unwrap();
        // In batches the writer takes: one batch over GROUP_ENTRIES_MAX is refused.
        let mut sizes = vec![ledger::GROUP_ENTRIES_MAX; prefill / ledger::GROUP_ENTRIES_MAX];
        sizes.extend(Some(prefill % ledger::GROUP_ENTRIES_MAX).filter(|&n| n > 0));
        run_workload(&ledger, &sizes, &mut w);
        assert_eq!(w.acked.len(), prefill, "prefill");
    }
    (skey, vkey, mem, w)
}

/// How a crash case cuts the power.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// `MemFs::crash`: each file keeps this many of its unsynced bytes, as a prefix.
    Prefix(fn(usize) -> usize),
    /// `MemFs::power_cut`: unsynced data torn and reordered, chosen by the seed.
    Torn(u64),
}

impl Cut {
    fn apply(self, mem: &MemFs) {
        match self {
            Cut::Prefix(torn) => mem.crash(torn),
            Cut::Torn(seed) => mem.power_cut(seed),
        }
    }
}

/// A prefilled disk to fork crash cases from.
struct Base {
    skey: String,
    vkey: String,
    mem: MemFs,
    workload: Workload,
    /// A model of the prefill's whole bundles but the last: `check_from`
    /// checks those entries through the root only, to keep a case fast.
    prefix: CompactRange,
}

impl Base {
    fn new(prefill: usize) -> Self {
        let (skey, vkey, mem, workload) = prefilled(prefill);
        let whole = (prefill as u64 / TILE_WIDTH).saturating_sub(1) * TILE_WIDTH;
        let mut prefix = CompactRange::new();
        for (_, bytes) in &workload.acked[..whole as usize] {
            prefix.append(tlog::leaf_hash(bytes), |_, _| {});
        }
        Base {
            skey,
            vkey,
            mem,
            workload,
            prefix,
        }
    }
}

/// Runs the workload with a fault at operation `k`, cuts the power, reopens and checks.
fn crash_case(base: &Base, sizes: &[usize], k: u64, fault: Fault, cut: Cut) {
    let mem = base.mem.fork();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let skey = &base.skey;
    let mut w = Workload {
        acked: base.workload.acked.clone(),
        checkpoints: base.workload.checkpoints.clone(),
    };
    let dir = Path::new(CRASH_DIR);
    mem.fail_at(mem.ops() + k, fault);
    if let Ok(ledger) = open(&fs, dir, skey) {
        run_workload(&ledger, sizes, &mut w);
    }
    cut.apply(&mem);
    let ledger = open(&fs, dir, skey).unwrap_or_else(|e| {
        panic!("reopen after fault at op {k} ({fault:?}, {cut:?}) failed: {e}");
    });
    let store = ledger.store();
    for cp in &w.checkpoints {
        assert!(
            cp.checkpoint.size <= store.size(),
            "checkpoint went back (op {k}, {fault:?}, {cut:?})"
        );
        assert_eq!(
            store.root_at(cp.checkpoint.size).unwrap(),
            cp.checkpoint.root,
            "inconsistent with an earlier checkpoint (op {k}, {fault:?}, {cut:?})"
        );
    }
    check_from(&ledger, &w.acked, &base.vkey, &base.prefix);
    // The recovered ledger takes appends again, and survives another power cut.
    let entries = batch(99, 2);
    let c = ledger.append(entries.clone()).unwrap();
    drop(ledger);
    if let Cut::Torn(seed) = cut {
        for (i, e) in entries.iter().enumerate() {
            let seq = c.first_seq + i as u64;
            w.acked.push((seq, e.bytes(&[], seq)));
        }
        mem.power_cut(seed ^ 0x5eed);
        let ledger = open(&fs, dir, skey).unwrap_or_else(|e| {
            panic!("second reopen after fault at op {k} ({fault:?}, {cut:?}) failed: {e}");
        });
        check_from(&ledger, &w.acked, &base.vkey, &base.prefix);
    }
}

fn ops_of(base: &Base, sizes: &[usize]) -> u64 {
    let mem = base.mem.fork();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let before = mem.ops();
    let ledger = open(&fs, Path::new(CRASH_DIR), &base.skey).unwrap();
    let mut w = Workload {
        acked: Vec::new(),
        checkpoints: Vec::new(),
    };
    run_workload(&ledger, sizes, &mut w);
    drop(ledger);
    mem.ops() - before
}

const TORN: [fn(usize) -> usize; 3] = [|_| 0, |n| n, |n| n / 2];

/// Seeds of torn and reordered power cuts per crash point: `MLAUDIT_CRASH_SEEDS`
/// (default 4; the seeds differ per crash point, so a run covers many more).
fn seeds_per_case() -> u64 {
    std::env::var("MLAUDIT_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

/// A seed unique to one crash point and repetition, so that failures name it.
fn seed_of(k: u64, fault: Fault, i: u64) -> u64 {
    (k << 20) ^ ((fault == Fault::After) as u64) << 19 ^ i
}

#[test]
fn a_fault_at_every_operation_loses_no_acknowledged_entry() {
    let sizes = [3, 256, 1, 300, 10];
    let base = Base::new(0);
    let total = ops_of(&base, &sizes);
    assert!(total > 40, "workload too small: {total} ops");
    for k in 0..total {
        for fault in [Fault::Before, Fault::After] {
            for torn in TORN {
                crash_case(&base, &sizes, k, fault, Cut::Prefix(torn));
            }
            for i in 0..seeds_per_case() {
                crash_case(&base, &sizes, k, fault, Cut::Torn(seed_of(k, fault, i)));
            }
        }
    }
}

#[test]
fn a_fault_at_every_operation_around_a_segment_rotation() {
    // Fill to just below a segment boundary, then cross it under faults.
    // Regression: the prefill was one batch over GROUP_ENTRIES_MAX, refused,
    // so this test never reached the boundary.
    let prefill = ledger::SEGMENT_ENTRIES as usize - 5;
    let sizes = [3, 4, 300];
    let base = Base::new(prefill);
    let total = ops_of(&base, &sizes);
    for k in 0..total {
        for fault in [Fault::Before, Fault::After] {
            crash_case(&base, &sizes, k, fault, Cut::Prefix(TORN[2]));
            // Half the seeds: every case reads back a 65,536-entry segment.
            for i in 0..seeds_per_case().div_ceil(2) {
                crash_case(&base, &sizes, k, fault, Cut::Torn(seed_of(k, fault, i)));
            }
        }
    }
}

#[test]
fn a_failed_sync_poisons_the_writer() {
    let (skey, _) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let ledger = open(&fs, Path::new("/p"), &skey).unwrap();
    ledger.append(batch(0, 5)).unwrap();
    // The next append does: segment append, tile append, segment fdatasync.
    mem.fail_at(mem.ops() + 2, Fault::Before);
    assert!(matches!(
        ledger.append(batch(1, 5)),
        Err(AppendError::Poisoned(_))
    ));
    assert!(matches!(
        ledger.append(batch(2, 5)),
        Err(AppendError::Poisoned(_))
    ));
    assert!(ledger.poisoned().is_some());
    assert_eq!(ledger.store().size(), 5);
}

#[test]
fn a_failed_write_fails_only_its_batch() {
    let (skey, vkey) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let ledger = open(&fs, Path::new("/p"), &skey).unwrap();
    ledger.append(batch(0, 5)).unwrap();
    mem.fail_at(mem.ops(), Fault::After);
    assert!(matches!(
        ledger.append(batch(1, 5)),
        Err(AppendError::Failed(_))
    ));
    let c = ledger.append(batch(2, 5)).unwrap();
    assert_eq!(c.first_seq, 5);
    let acked: Vec<_> = (0..5)
        .map(|i| (i, entry(0, i as usize).bytes(&[], i)))
        .chain((0..5).map(|i| (5 + i, entry(2, i as usize).bytes(&[], 5 + i))))
        .collect();
    check_all(&ledger, &acked, &vkey);
}

#[test]
fn concurrent_appenders_share_commits_on_real_disk() {
    let (skey, vkey) = key();
    let tmp = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Fs> = Arc::new(StdFs);
    let dir = tmp.path().join("ledger");
    let ledger = Arc::new(open(&fs, &dir, &skey).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..20 {
                    let entries = batch(t * 100 + i, 1 + (i as usize % 7));
                    let c = ledger.append(entries.clone()).unwrap();
                    for (j, e) in entries.iter().enumerate() {
                        let seq = c.first_seq + j as u64;
                        got.push((seq, e.bytes(&[], seq)));
                    }
                }
                got
            })
        })
        .collect();
    let mut acked: Vec<(u64, Vec<u8>)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    acked.sort();
    for (i, (seq, _)) in acked.iter().enumerate() {
        assert_eq!(*seq, i as u64, "seqs are dense and unique");
    }
    check_all(&ledger, &acked, &vkey);
    drop(ledger);
    let ledger = open(&fs, &dir, &skey).unwrap();
    check_all(&ledger, &acked, &vkey);
}

/// A C2SP log laid out as files, read straight from a directory.
struct DirSource(PathBuf);
impl LogSource for DirSource {
    fn checkpoint(&self) -> Result<String, String> {
        std::fs::read_to_string(self.0.join("checkpoint")).map_err(|e| e.to_string())
    }
    fn bundle(&self, index: u64, width: u64) -> Result<Vec<u8>, String> {
        let t =
            tlog::TileRef::new(tlog::TileKind::Entries, index, width).map_err(|e| e.to_string())?;
        std::fs::read(self.0.join(t.path())).map_err(|e| e.to_string())
    }
    fn tile(&self, level: u8, index: u64, width: u64) -> Result<Vec<u8>, String> {
        let t = tlog::TileRef::new(tlog::TileKind::Hash(level), index, width)
            .map_err(|e| e.to_string())?;
        std::fs::read(self.0.join(t.path())).map_err(|e| e.to_string())
    }
}

fn tessera_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/tessera-log")
}
const TESSERA_VKEY: &str =
    "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";

#[test]
fn verifies_the_log_written_by_tessera_and_catches_one_changed_byte() {
    let verifier = Verifier::parse(TESSERA_VKEY).unwrap();
    let report = verify_log(&DirSource(tessera_dir()), &verifier, None, &mut |_, _| {}).unwrap();
    assert_eq!(report.size, 15);
    // Every older checkpoint is consistent with the latest.
    for n in 1..=15 {
        let saved = std::fs::read_to_string(tessera_dir().join(format!("checkpoint.{n}"))).unwrap();
        verify_log(
            &DirSource(tessera_dir()),
            &verifier,
            Some(&saved),
            &mut |_, _| {},
        )
        .unwrap();
    }
    // One changed byte in an entry is caught and named.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&tessera_dir(), tmp.path());
    let bundle = tmp.path().join("tile/entries/000.p/15");
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes[2 + 3 + 2 + 1] ^= 0x20; // second entry ("two"), its second letter
    std::fs::write(&bundle, bytes).unwrap();
    let err = verify_log(
        &DirSource(tmp.path().into()),
        &verifier,
        None,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert_eq!(err.seq, Some(1), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn a_refused_open_changes_nothing_on_disk() {
    // Regression: recovery used to cut a "torn tail" (really corruption under
    // the checkpoint) and sync it before refusing, destroying signed entries.
    let (skey, _, mem, fs) = checkpointed_800();
    let dir = Path::new("/l");
    let seg = dir.join("segments").join("00000000000000000000.seg");
    mem.corrupt(&seg, 40);
    let before = ledger::fs::read_all(fs.as_ref(), &seg).unwrap();
    assert!(matches!(open(&fs, dir, &skey), Err(OpenError::Corrupt(_))));
    mem.crash(|n| n);
    assert_eq!(ledger::fs::read_all(fs.as_ref(), &seg).unwrap(), before);
}

#[test]
fn recovery_syncs_what_it_signs_kill_then_power_cut() {
    // Regression: after a kill -9, frames still only in the page cache were
    // recovered and signed without an fdatasync; a power cut then lost
    // entries under a signed checkpoint.
    let (skey, vkey) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let dir = Path::new("/k");
    let ledger = open(&fs, dir, &skey).unwrap();
    ledger.append(batch(0, 5)).unwrap();
    // Segment append, tile append, then the fdatasync fails: frames stay volatile.
    mem.fail_at(mem.ops() + 2, Fault::Before);
    assert!(ledger.append(batch(1, 5)).is_err());
    drop(ledger); // the process dies; the page cache survives
    let ledger = open(&fs, dir, &skey).unwrap();
    let recovered = ledger.store().checkpoint().unwrap();
    assert_eq!(recovered.checkpoint.size, 10);
    drop(ledger);
    mem.crash(|_| 0); // power cut
    let ledger = open(&fs, dir, &skey).unwrap();
    assert_eq!(
        ledger.store().root_at(10).unwrap(),
        recovered.checkpoint.root
    );
    let acked: Vec<_> = (0..5)
        .map(|i| (i, entry(0, i as usize).bytes(&[], i)))
        .collect();
    check_all(&ledger, &acked, &vkey);
}

#[test]
fn a_torn_batch_disappears_whole() {
    // A 600-entry batch spans three frames; a crash keeping any part of its
    // unsynced bytes must recover all of it or none of it.
    for tenths in 0..=10 {
        let (skey, _) = key();
        let mem = MemFs::new();
        let fs: Arc<dyn Fs> = Arc::new(mem.clone());
        let dir = Path::new("/t");
        let ledger = open(&fs, dir, &skey).unwrap();
        ledger.append(batch(0, 7)).unwrap();
        mem.fail_at(mem.ops() + 3, Fault::Before); // the group's fdatasync
        assert!(ledger.append(batch(1, 600)).is_err());
        drop(ledger);
        mem.crash(|n| n * tenths / 10);
        let ledger = open(&fs, dir, &skey).unwrap();
        let size = ledger.store().size();
        assert!(
            size == 7 || size == 607,
            "kept {tenths}/10 of the bytes: size {size}"
        );
    }
}

#[test]
fn missing_segments_under_a_checkpoint_are_refused_not_signed_over() {
    // Regression: with segments/ emptied, the ledger used to open at size 0
    // and sign a rollback of its own signed history.
    let (skey, _) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let dir = Path::new("/m");
    let ledger = open(&fs, dir, &skey).unwrap();
    ledger.append(batch(0, 5)).unwrap();
    ledger.checkpoint_now().unwrap();
    drop(ledger);
    fs.remove(&dir.join("segments").join("00000000000000000000.seg"))
        .unwrap();
    match open(&fs, dir, &skey) {
        Err(OpenError::Corrupt(msg)) => assert!(msg.contains("no segment file"), "{msg}"),
        other => panic!("expected refusal, got {:?}", other.err()),
    }
}

/// Rewrites the 15-entry Tessera bundle in a copy of the log.
fn tessera_with_entries(edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&tessera_dir(), tmp.path());
    let path = tmp.path().join("tile/entries/000.p/15");
    let bytes = std::fs::read(&path).unwrap();
    let mut entries: Vec<Vec<u8>> = tlog::parse_bundle(&bytes)
        .unwrap()
        .into_iter()
        .map(|e| e.to_vec())
        .collect();
    edit(&mut entries);
    let refs: Vec<&[u8]> = entries.iter().map(|e| e.as_slice()).collect();
    let mut out = Vec::new();
    tlog::encode_bundle(&refs, &mut out).unwrap();
    std::fs::write(&path, out).unwrap();
    tmp
}

fn verify_dir(
    dir: &Path,
    saved: Option<&str>,
) -> Result<ledger::verify::Report, ledger::verify::VerifyError> {
    let verifier = Verifier::parse(TESSERA_VKEY).unwrap();
    verify_log(
        &DirSource(dir.to_path_buf()),
        &verifier,
        saved,
        &mut |_, _| {},
    )
}

#[test]
fn verify_names_a_deleted_entry() {
    let tmp = tessera_with_entries(|e| {
        e.remove(6);
    });
    let err = verify_dir(tmp.path(), None).unwrap_err();
    assert_eq!(err.seq, Some(6), "{err}");
    assert!(err.message.contains("holds 14 entries"), "{err}");
}

#[test]
fn verify_names_the_first_of_two_reordered_entries() {
    let tmp = tessera_with_entries(|e| e.swap(4, 9));
    let err = verify_dir(tmp.path(), None).unwrap_err();
    assert_eq!(err.seq, Some(4), "{err}");
}

#[test]
fn verify_catches_a_truncated_log_against_a_saved_checkpoint() {
    // The log now serves its size-10 checkpoint; someone kept the size-15 one.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&tessera_dir(), tmp.path());
    std::fs::copy(
        tmp.path().join("checkpoint.10"),
        tmp.path().join("checkpoint"),
    )
    .unwrap();
    verify_dir(tmp.path(), None).unwrap(); // a shorter log is valid on its own…
    let saved = std::fs::read_to_string(tessera_dir().join("checkpoint.15")).unwrap();
    let err = verify_dir(tmp.path(), Some(&saved)).unwrap_err(); // …but not after 15 was signed
    assert!(err.message.contains("truncated"), "{err}");
}

#[test]
fn verify_catches_history_rewritten_after_a_saved_checkpoint() {
    // Same key, same length, but entry 3 differs from what a saved checkpoint committed to:
    // a consistent, freshly signed log that rewrote its past.
    let (skey, vkey) = key();
    let honest_fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let honest = open(&honest_fs, Path::new("/h"), &skey).unwrap();
    honest.append(batch(0, 10)).unwrap();
    let saved = honest.checkpoint_now().unwrap().note.clone();
    let forged_fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let forged = open(&forged_fs, Path::new("/f"), &skey).unwrap();
    let mut entries = batch(0, 10);
    entries[3] = NewEntry::Bytes(b"rewritten".to_vec());
    forged.append(entries).unwrap();
    forged.append(batch(1, 5)).unwrap();
    forged.checkpoint_now().unwrap();
    let verifier = Verifier::parse(&vkey).unwrap();
    verify_log(forged.store().as_ref(), &verifier, None, &mut |_, _| {}).unwrap();
    let err = verify_log(
        forged.store().as_ref(),
        &verifier,
        Some(&saved),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.message.contains("history was rewritten"), "{err}");
    // The honest log extends the saved checkpoint.
    honest.append(batch(1, 5)).unwrap();
    honest.checkpoint_now().unwrap();
    verify_log(
        honest.store().as_ref(),
        &verifier,
        Some(&saved),
        &mut |_, _| {},
    )
    .unwrap();
}

#[test]
fn verify_rejects_a_checkpoint_signed_by_another_key() {
    let (skey, _) = key();
    let (_, other_vkey) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let ledger = open(&fs, Path::new("/o"), &skey).unwrap();
    ledger.append(batch(0, 3)).unwrap();
    ledger.checkpoint_now().unwrap();
    let other = Verifier::parse(&other_vkey).unwrap();
    let err = verify_log(ledger.store().as_ref(), &other, None, &mut |_, _| {}).unwrap_err();
    assert!(err.message.contains("does not verify"), "{err}");
}

#[test]
fn a_deleted_checkpoint_is_refused_unless_recovery_is_asked() {
    // Regression (issue 18.11): with `checkpoint` deleted, the ledger used to
    // sign a new checkpoint over whatever the segments held, without a word.
    let (skey, vkey) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let dir = Path::new("/c");
    let ledger = open(&fs, dir, &skey).unwrap();
    // The premise of the refusal: a new ledger is checkpointed before any entry.
    assert_eq!(ledger.store().checkpoint().unwrap().checkpoint.size, 0);
    ledger.append(batch(0, 5)).unwrap();
    ledger.checkpoint_now().unwrap();
    drop(ledger);
    let cp = dir.join("checkpoint");
    fs.remove(&cp).unwrap();
    fs.sync_dir(dir).unwrap();
    let seg = dir.join("segments").join("00000000000000000000.seg");
    let before = ledger::fs::read_all(fs.as_ref(), &seg).unwrap();
    match open(&fs, dir, &skey) {
        Err(e @ OpenError::MissingCheckpoint { size: 5, .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("/c/checkpoint is missing"), "{msg}");
            assert!(msg.contains("holds 5 entries"), "{msg}");
            assert!(msg.contains("nothing was changed"), "{msg}");
            assert!(msg.contains("recovery option"), "{msg}");
        }
        other => panic!("expected MissingCheckpoint, got {:?}", other.err()),
    }
    // The refusal changed nothing, even after a power cut.
    mem.crash(|n| n);
    assert!(!fs.exists(&cp));
    assert_eq!(ledger::fs::read_all(fs.as_ref(), &seg).unwrap(), before);
    // Opening normally again refuses again.
    assert!(matches!(
        open(&fs, dir, &skey),
        Err(OpenError::MissingCheckpoint { .. })
    ));
    // The explicit recovery option signs over the stored entries, and says so.
    let mut c = config();
    c.recover_missing_checkpoint = true;
    let ledger = Ledger::open(fs.clone(), dir, c, Signer::from_skey(&skey).unwrap()).unwrap();
    assert_eq!(ledger.recovered_missing_checkpoint(), Some(5));
    assert_eq!(ledger.store().checkpoint().unwrap().checkpoint.size, 5);
    let acked: Vec<_> = (0..5)
        .map(|i| (i, entry(0, i as usize).bytes(&[], i)))
        .collect();
    check_all(&ledger, &acked, &vkey);
    drop(ledger);
    // With the checkpoint back, the option changes nothing and a normal open works.
    let mut c = config();
    c.recover_missing_checkpoint = true;
    let ledger = Ledger::open(fs.clone(), dir, c, Signer::from_skey(&skey).unwrap()).unwrap();
    assert_eq!(ledger.recovered_missing_checkpoint(), None);
    drop(ledger);
    let ledger = open(&fs, dir, &skey).unwrap();
    assert_eq!(ledger.recovered_missing_checkpoint(), None);
    assert_eq!(ledger.store().size(), 5);
}

#[test]
fn a_power_cut_in_a_segment_creation_is_repaired_not_refused() {
    // Regression: the new segment's header and its first frames were synced
    // together, so a power cut could keep the file's length but not its
    // first sector; the next open refused "a damaged header" although
    // nothing acknowledged was lost. Every operation of a first commit
    // fails in turn, then the power is cut many ways.
    let (skey, _) = key();
    let dir = Path::new("/s");
    let base = MemFs::new();
    drop(open(&(Arc::new(base.clone()) as Arc<dyn Fs>), dir, &skey).unwrap());
    let ops = {
        let mem = base.fork();
        let fs: Arc<dyn Fs> = Arc::new(mem.clone());
        let ledger = open(&fs, dir, &skey).unwrap();
        let before = mem.ops();
        ledger.append(batch(0, 40)).unwrap();
        mem.ops() - before
    };
    for k in 0..ops {
        for seed in 0..50 {
            let mem = base.fork();
            let fs: Arc<dyn Fs> = Arc::new(mem.clone());
            let ledger = open(&fs, dir, &skey).unwrap();
            mem.fail_at(mem.ops() + k, Fault::Before);
            let acked = ledger.append(batch(0, 40)).is_ok();
            drop(ledger);
            mem.power_cut(seed);
            let ledger = open(&fs, dir, &skey).unwrap_or_else(|e| {
                panic!("reopen after a fault at op {k} and power cut {seed} failed: {e}")
            });
            let size = ledger.store().size();
            assert!(size == 0 || size == 40, "op {k}, seed {seed}: size {size}");
            assert!(
                !acked || size == 40,
                "op {k}, seed {seed}: acknowledged entries lost"
            );
        }
    }
}

/// Issue 12.4: the writer stamps each commit group once, on its one thread, in seq order.
/// Eight threads append concurrently through a stamper that counts; read back, every
/// entry's stamp is the one its append got (one per append: an append is never split over
/// groups), and the stamps never decrease in seq. (The server's stamper gives
/// `max(previous, now)`, so its times never go back: `server/src/stamp.rs`.)
#[test]
fn stamps_follow_seq_order_under_concurrent_appends() {
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug, Default)]
    struct Counter(AtomicU64);
    impl ledger::Stamp for Counter {
        fn next(&self) -> Vec<u8> {
            format!("{:06}", self.0.fetch_add(1, Ordering::SeqCst)).into_bytes()
        }
    }

    let (skey, _) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let mut c = config();
    c.stamp = Some(Arc::new(Counter::default()));
    let ledger =
        Arc::new(Ledger::open(fs, Path::new("/l"), c, Signer::from_skey(&skey).unwrap()).unwrap());
    let template = |i: usize| NewEntry::Template {
        head: br#"{"t":""#.to_vec(),
        mid: format!(r#"","i":{i},"seq":"#).into_bytes(),
        tail: b"}".to_vec(),
    };
    let appends: Vec<(u64, usize)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let ledger = ledger.clone();
                s.spawn(move || {
                    (0..40)
                        .map(|k| {
                            let n = 1 + (w + k) % 5;
                            let c = ledger.append((0..n).map(template).collect()).unwrap();
                            (c.first_seq, n)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    // `{"t":"000123","i":3,"seq":77}`
    let stamp_of = |seq: u64| -> (String, u64) {
        let text = String::from_utf8(ledger.store().entry(seq).unwrap()).unwrap();
        let t = text[6..12].to_string();
        let (_, n) = text.rsplit_once(r#""seq":"#).unwrap();
        (t, n.trim_end_matches('}').parse().unwrap())
    };
    let size = ledger.store().size();
    assert_eq!(size, appends.iter().map(|a| a.1 as u64).sum::<u64>());
    let stamps: Vec<String> = (0..size)
        .map(|seq| {
            let (t, s) = stamp_of(seq);
            assert_eq!(s, seq);
            t
        })
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "stamps go back in seq: {stamps:?}"
    );
    for (first, n) in appends {
        let one = &stamps[first as usize];
        assert!(
            stamps[first as usize..first as usize + n]
                .iter()
                .all(|s| s == one),
            "the append at {first} has more than one stamp"
        );
    }
    assert!(
        stamps.last() > stamps.first(),
        "one group only: the test shows nothing"
    );
}
