//! Pruning (retention): payloads leave the disk, leaf hashes stay, and the
//! tree, every earlier checkpoint and the proofs of kept entries still verify;
//! a fault at every operation of a prune, then a power cut, leaves a ledger
//! that reopens with every entry either intact or pruned, and verifies.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ledger::fs::{read_all, Fault, Fs, MemFs};
use ledger::segment::{decode_payload, scan_segment, segment_name, FRAME_HEADER_BYTES};
use ledger::store::{ReadError, Slot};
use ledger::verify::verify_log;
use ledger::{Config, Ledger, NewEntry, OpenError, PruneError, SignedCheckpoint};
use tlog::{Signer, Verifier, TILE_WIDTH};

const ORIGIN: &str = "test.example/prune";
const DIR: &str = "/d/ledger";

fn key() -> (String, String) {
    let (_, skey, vkey) = Signer::generate(ORIGIN).unwrap();
    (skey, vkey)
}

fn open(fs: &Arc<dyn Fs>, skey: &str) -> Result<Ledger, OpenError> {
    open_framed(fs, skey, ledger::FRAME_ENTRIES_DEFAULT)
}

fn open_framed(fs: &Arc<dyn Fs>, skey: &str, frame_entries: u64) -> Result<Ledger, OpenError> {
    let mut c = Config::new(ORIGIN);
    c.frame_entries = frame_entries;
    // Checkpoints only when a test asks (or a prune needs one).
    c.checkpoint_interval = Duration::from_secs(3600);
    Ledger::open(
        fs.clone(),
        Path::new(DIR),
        c,
        Signer::from_skey(skey).unwrap(),
    )
}

/// Entry `seq`: unique, so a pruned payload can be searched for on disk.
fn entry_bytes(seq: u64) -> Vec<u8> {
    format!("{{\"payload\":\"secret-{seq:08}\",\"seq\":{seq}}}").into_bytes()
}

fn append(ledger: &Ledger, n: u64) -> Vec<u64> {
    let first = ledger.store().size();
    let entries = (first..first + n)
        .map(|s| NewEntry::Bytes(entry_bytes(s)))
        .collect();
    let c = ledger.append(entries).unwrap();
    assert_eq!(c.first_seq, first);
    (first..first + n).collect()
}

/// Every raw entry payload still in the segment files (frames decoded).
fn payloads_on_disk(fs: &Arc<dyn Fs>) -> Vec<Vec<u8>> {
    let seg_dir = Path::new(DIR).join("segments");
    let mut out = Vec::new();
    for name in fs.list(&seg_dir).unwrap() {
        let file = fs.open(&seg_dir.join(&name)).unwrap();
        let n = name[..20].parse::<u64>().unwrap() / ledger::SEGMENT_ENTRIES;
        let scan = scan_segment(file.as_ref(), n, true).unwrap();
        for f in scan.frames {
            if f.header.is_pruned() {
                continue;
            }
            let mut stored = vec![0; f.header.stored_len as usize];
            ledger::fs::read_exact_at(
                file.as_ref(),
                &mut stored,
                f.offset + FRAME_HEADER_BYTES as u64,
            )
            .unwrap();
            let mut raw = Vec::new();
            decode_payload(&f.header, &stored, &mut raw).unwrap();
            out.extend(
                tlog::parse_bundle(&raw)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.to_vec()),
            );
        }
    }
    out
}

/// Checks a ledger where exactly `pruned` (of `0..size`) were pruned: reads,
/// proofs against every earlier checkpoint, the verifier's report.
fn check_pruned(
    fs: &Arc<dyn Fs>,
    ledger: &Ledger,
    vkey: &str,
    pruned: &BTreeSet<u64>,
    checkpoints: &[Arc<SignedCheckpoint>],
) {
    let store = ledger.store();
    let size = store.size();
    for seq in 0..size {
        match store.entry(seq) {
            Ok(bytes) => {
                assert!(!pruned.contains(&seq), "entry {seq} should be pruned");
                assert_eq!(bytes, entry_bytes(seq), "entry {seq}");
            }
            Err(ReadError::Pruned {
                seq: s, leaf_hash, ..
            }) => {
                assert!(pruned.contains(&seq), "entry {seq} was pruned by mistake");
                assert_eq!(s, seq);
                assert_eq!(leaf_hash, tlog::leaf_hash(&entry_bytes(seq)));
            }
            Err(e) => panic!("entry {seq}: {e}"),
        }
        assert_eq!(
            store.leaf_hash(seq).unwrap(),
            tlog::leaf_hash(&entry_bytes(seq))
        );
    }
    // Bundles: served whole when nothing in them is pruned, refused otherwise.
    for b in 0..size.div_ceil(TILE_WIDTH) {
        let width = (size - b * TILE_WIDTH).min(TILE_WIDTH);
        let any = (b * TILE_WIDTH..b * TILE_WIDTH + width).any(|s| pruned.contains(&s));
        match store.bundle(b, width) {
            Ok(_) => assert!(!any, "bundle {b} served with pruned entries"),
            Err(ReadError::Pruned { .. }) => assert!(any, "bundle {b} refused"),
            Err(e) => panic!("bundle {b}: {e}"),
        }
        let slots = store.slots(b, width).unwrap();
        for (i, slot) in slots.iter().enumerate() {
            let seq = b * TILE_WIDTH + i as u64;
            match slot {
                Slot::Entry(e) => assert_eq!(e, &entry_bytes(seq)),
                Slot::Pruned(h) => {
                    assert!(pruned.contains(&seq));
                    assert_eq!(h, &tlog::leaf_hash(&entry_bytes(seq)));
                }
            }
        }
    }
    // Scattered reads: every seq at once, and every third one, agree.
    let all: Vec<u64> = (0..size).collect();
    let every_third: Vec<u64> = (0..size).step_by(3).collect();
    for seqs in [all, every_third] {
        let slots = store.read_seqs(&seqs).unwrap();
        assert_eq!(slots.len(), seqs.len());
        for (seq, slot) in seqs.into_iter().zip(slots) {
            match slot {
                Slot::Entry(e) => {
                    assert!(!pruned.contains(&seq), "entry {seq} should be pruned");
                    assert_eq!(e, entry_bytes(seq));
                }
                Slot::Pruned(h) => {
                    assert!(pruned.contains(&seq), "entry {seq} was pruned by mistake");
                    assert_eq!(h, tlog::leaf_hash(&entry_bytes(seq)));
                }
            }
        }
    }
    assert!(matches!(
        store.read_seqs(&[size]),
        Err(ReadError::NotFound(_))
    ));
    assert!(matches!(
        store.read_seqs(&[5, 5]),
        Err(ReadError::NotFound(_))
    ));
    // Catch-up readers see exactly the kept entries, each once, in order.
    let mut seen = Vec::new();
    store
        .for_each_bundle(0, |first, entries| -> Result<(), ReadError> {
            for (i, e) in entries.iter().enumerate() {
                assert_eq!(*e, entry_bytes(first + i as u64).as_slice());
                seen.push(first + i as u64);
            }
            Ok(())
        })
        .unwrap();
    let kept: Vec<u64> = (0..size).filter(|s| !pruned.contains(s)).collect();
    assert_eq!(seen, kept);
    // No pruned payload is left in any segment.
    let on_disk: BTreeSet<Vec<u8>> = payloads_on_disk(fs).into_iter().collect();
    for s in pruned {
        assert!(
            !on_disk.contains(&entry_bytes(*s)),
            "payload {s} still on disk"
        );
    }
    // Every earlier checkpoint still holds, with proofs of kept entries.
    let latest = ledger.checkpoint_now().unwrap();
    for cp in checkpoints.iter().chain([&latest]) {
        let (n, root) = (cp.checkpoint.size, cp.checkpoint.root);
        assert_eq!(store.root_at(n).unwrap(), root);
        for seq in kept.iter().copied().filter(|&s| s < n).step_by(37) {
            let proof = store.inclusion_proof(seq, n).unwrap();
            tlog::verify_inclusion(seq, n, &tlog::leaf_hash(&entry_bytes(seq)), &proof, &root)
                .unwrap();
        }
        if n > 0 && n < latest.checkpoint.size {
            let proof = store.consistency_proof(n, latest.checkpoint.size).unwrap();
            tlog::verify_consistency(
                n,
                latest.checkpoint.size,
                &root,
                &latest.checkpoint.root,
                &proof,
            )
            .unwrap();
        }
    }
    let verifier = Verifier::parse(vkey).unwrap();
    for cp in checkpoints {
        let report = verify_log(store.as_ref(), &verifier, Some(&cp.note), &mut |_, _| {}).unwrap();
        assert_eq!(report.size, latest.checkpoint.size);
        assert_eq!(report.pruned, ranges(pruned));
        assert_eq!(report.pruned_entries(), pruned.len() as u64);
    }
}

fn ranges(seqs: &BTreeSet<u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in seqs {
        match out.last_mut() {
            Some((_, end)) if *end == s => *end += 1,
            _ => out.push((s, s + 1)),
        }
    }
    out
}

#[test]
fn a_bad_frame_size_is_refused() {
    let (skey, _) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    for bad in [0, 3, 512] {
        match open_framed(&fs, &skey, bad) {
            Err(OpenError::Config(m)) => assert!(m.contains("frame_entries"), "{m}"),
            Err(e) => panic!("frame_entries {bad}: {e}"),
            Ok(_) => panic!("frame_entries {bad} accepted"),
        }
    }
}

#[test]
fn pruning_removes_payloads_and_keeps_tree_checkpoints_and_proofs() {
    // Whole-bundle frames (as written before frames were cut smaller), the
    // default, and one entry per frame.
    for frame_entries in [TILE_WIDTH, ledger::FRAME_ENTRIES_DEFAULT, 1] {
        prune_scenario(frame_entries);
    }
}

fn prune_scenario(frame_entries: u64) {
    let (skey, vkey) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let open = |fs: &Arc<dyn Fs>, skey: &str| open_framed(fs, skey, frame_entries);
    let ledger = open(&fs, &skey).unwrap();
    let mut checkpoints = Vec::new();
    for n in [3, 300, 1, 400, 296] {
        append(&ledger, n);
        checkpoints.push(ledger.checkpoint_now().unwrap());
    }
    assert_eq!(ledger.store().size(), 1000);
    // Frames hold at most `frame_entries` and never cross a multiple of it.
    let seg = fs.open(&Path::new(DIR).join("segments").join(segment_name(0)));
    let scan = scan_segment(seg.unwrap().as_ref(), 0, true).unwrap();
    assert!(scan.frames.len() as u64 >= 1000 / frame_entries);
    for f in &scan.frames {
        let last = f.header.first_seq + u64::from(f.header.count) - 1;
        assert_eq!(f.header.first_seq / frame_entries, last / frame_entries);
    }
    // Runs inside a frame, across bundle boundaries, whole frames, the first
    // and last entries, and one not yet covered by a checkpoint.
    append(&ledger, 5);
    let mut pruned: BTreeSet<u64> = [0, 2, 3, 100, 255, 256, 1004].into_iter().collect();
    pruned.extend(200..260);
    pruned.extend(500..800);
    let report = ledger.prune(pruned.iter().copied().collect()).unwrap();
    assert_eq!(report.pruned, pruned.len() as u64);
    assert_eq!(report.already_pruned, 0);
    assert_eq!(report.segments_rewritten, 1);
    // The prune published a checkpoint first: 1004 was not covered before.
    assert_eq!(ledger.store().checkpoint().unwrap().checkpoint.size, 1005);
    check_pruned(&fs, &ledger, &vkey, &pruned, &checkpoints);

    // Again: idempotent. Past the size: refused, nothing changes.
    let again = ledger.prune(vec![0, 3, 600]).unwrap();
    assert_eq!((again.pruned, again.already_pruned), (0, 3));
    assert_eq!(
        ledger.prune(vec![5, 2000]),
        Err(PruneError::PastSize {
            seq: 2000,
            size: 1005
        })
    );
    assert_eq!(
        ledger.prune(vec![0; ledger::PRUNE_SEQS_MAX + 1]),
        Err(PruneError::TooMany(ledger::PRUNE_SEQS_MAX + 1))
    );
    // Appends continue into the rewritten (active) segment, and prune again.
    append(&ledger, 300);
    pruned.extend(1100..1110);
    ledger.prune((1100..1110).collect()).unwrap();
    check_pruned(&fs, &ledger, &vkey, &pruned, &checkpoints);

    // Reopen: recovery accepts pruned frames.
    drop(ledger);
    let ledger = open(&fs, &skey).unwrap();
    assert_eq!(ledger.store().size(), 1305);
    check_pruned(&fs, &ledger, &vkey, &pruned, &checkpoints);

    // Lost tiles are rebuilt from the leaf hashes kept in pruned frames.
    drop(ledger);
    for l in 0..8 {
        fs.remove(&Path::new(DIR).join(format!("tiles/{l}.hashes")))
            .unwrap();
    }
    let ledger = open(&fs, &skey).unwrap();
    check_pruned(&fs, &ledger, &vkey, &pruned, &checkpoints);
}

#[test]
fn a_damaged_entry_is_not_pruned() {
    let (skey, _) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let ledger = open(&fs, &skey).unwrap();
    append(&ledger, 10);
    ledger.checkpoint_now().unwrap();
    // Flip a bit of tile 0 so entry 4's stored hash no longer matches it.
    mem.corrupt(&Path::new(DIR).join("tiles/0.hashes"), 4 * 32 + 1);
    let seg = Path::new(DIR).join("segments").join(segment_name(0));
    let before = read_all(fs.as_ref(), &seg).unwrap();
    match ledger.prune(vec![4]) {
        Err(PruneError::Corrupt(m)) => assert!(m.contains("entry 4"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(read_all(fs.as_ref(), &seg).unwrap(), before);
    assert_eq!(ledger.store().entry(4).unwrap(), entry_bytes(4));
}

#[test]
fn pruning_a_sealed_segment_under_concurrent_reads() {
    let (skey, vkey) = key();
    let fs: Arc<dyn Fs> = Arc::new(MemFs::new());
    let ledger = Arc::new(open(&fs, &skey).unwrap());
    let total = ledger::SEGMENT_ENTRIES + 700;
    let mut left = total;
    while left > 0 {
        let n = left.min(ledger::GROUP_ENTRIES_MAX as u64);
        append(&ledger, n);
        left -= n;
    }
    let checkpoints = vec![ledger.checkpoint_now().unwrap()];
    // Readers keep reading both segments while they are rewritten: they must
    // never see a damaged bundle (old offsets applied to the new file).
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ledger, stop) = (ledger.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for b in [0, 1, 255, 256, 257] {
                    let slots = ledger.store().slots(b, TILE_WIDTH).unwrap();
                    assert_eq!(slots.len(), TILE_WIDTH as usize);
                    reads += 1;
                }
            }
            reads
        })
    };
    let mut pruned: BTreeSet<u64> = (0..300).collect();
    pruned.extend(65_000..65_600);
    pruned.extend([total - 1]);
    let seqs: Vec<u64> = pruned.iter().copied().collect();
    let report = ledger.prune(seqs).unwrap();
    assert_eq!(report.segments_rewritten, 2);
    append(&ledger, 3);
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    check_pruned(&fs, &ledger, &vkey, &pruned, &checkpoints);
}

/// A ledger of 700 checkpointed entries, closed.
fn prefilled() -> (String, String, MemFs, Arc<dyn Fs>, Arc<SignedCheckpoint>) {
    let (skey, vkey) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let ledger = open(&fs, &skey).unwrap();
    append(&ledger, 400);
    append(&ledger, 300);
    let cp = ledger.checkpoint_now().unwrap();
    drop(ledger);
    (skey, vkey, mem, fs, cp)
}

const TORN: [fn(usize) -> usize; 3] = [|_| 0, |n| n, |n| n / 2];

/// How a crash case cuts the power: `MemFs::crash` with a prefix policy, or
/// `MemFs::power_cut` (torn and reordered) with the n-th seed of the case.
#[derive(Clone, Copy, Debug)]
enum Cut {
    Prefix(fn(usize) -> usize),
    Torn(u64),
}

fn prune_set() -> Vec<u64> {
    (10..20).chain(250..460).chain([699]).collect()
}

/// Open, prune, append 5, close; with a fault at operation `k` (when given).
fn prune_workload(fs: &Arc<dyn Fs>, skey: &str) -> (bool, Vec<u64>) {
    let mut appended = Vec::new();
    let Ok(ledger) = open(fs, skey) else {
        return (false, appended);
    };
    let done = ledger.prune(prune_set()).is_ok();
    if let Ok(c) = ledger.append(
        (0..5)
            .map(|i| NewEntry::Bytes(entry_bytes(700 + i)))
            .collect(),
    ) {
        appended = (c.first_seq..c.first_seq + 5).collect();
    }
    drop(ledger);
    (done, appended)
}

#[test]
fn a_fault_at_every_prune_operation_keeps_a_verifying_ledger() {
    let (skey, _, mem, fs, _) = prefilled();
    let before = mem.ops();
    let (done, _) = prune_workload(&fs, &skey);
    assert!(done);
    let total = mem.ops() - before;
    assert!(total > 10, "workload too small: {total} ops");
    // Each crash point with the clean-prefix cuts, then with torn and
    // reordered power cuts (`MLAUDIT_CRASH_SEEDS` seeds, default 4).
    let seeds: u64 = std::env::var("MLAUDIT_CRASH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let cuts: Vec<Cut> = TORN
        .into_iter()
        .map(Cut::Prefix)
        .chain((0..seeds).map(Cut::Torn))
        .collect();
    let (skey, vkey, base, _, cp) = prefilled();
    for k in 0..total {
        for fault in [Fault::Before, Fault::After] {
            for &cut in &cuts {
                let (skey, vkey, cp) = (&skey, &vkey, &cp);
                let mem = base.fork();
                let fs: Arc<dyn Fs> = Arc::new(mem.clone());
                mem.fail_at(mem.ops() + k, fault);
                let (done, appended) = prune_workload(&fs, skey);
                match cut {
                    Cut::Prefix(torn) => mem.crash(torn),
                    Cut::Torn(i) => {
                        mem.power_cut((k << 20) ^ ((fault == Fault::After) as u64) << 19 ^ i)
                    }
                }
                let fault = (fault, cut);
                let ledger = open(&fs, skey).unwrap_or_else(|e| {
                    panic!("reopen after fault at op {k} ({fault:?}) failed: {e}")
                });
                let store = ledger.store();
                // The 700 entries are each intact or pruned, and pruned only if asked;
                // a completed prune is whole (its rename was made durable).
                let set: BTreeSet<u64> = prune_set().into_iter().collect();
                let mut pruned = BTreeSet::new();
                for seq in 0..700 {
                    match store.entry(seq) {
                        Ok(b) => assert_eq!(b, entry_bytes(seq), "op {k} {fault:?}"),
                        Err(ReadError::Pruned { .. }) => {
                            assert!(set.contains(&seq), "op {k} {fault:?}: {seq}");
                            pruned.insert(seq);
                        }
                        Err(e) => panic!("op {k} {fault:?}: entry {seq}: {e}"),
                    }
                }
                assert!(
                    pruned.is_empty() || pruned == set,
                    "op {k} {fault:?}: partial prune"
                );
                if done {
                    assert_eq!(pruned, set, "op {k} {fault:?}: acknowledged prune lost");
                }
                for seq in &appended {
                    assert_eq!(store.entry(*seq).unwrap(), entry_bytes(*seq));
                }
                assert_eq!(store.root_at(700).unwrap(), cp.checkpoint.root);
                // No pruned copy is left behind.
                let names = fs.list(&Path::new(DIR).join("segments")).unwrap();
                assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
                let verifier = Verifier::parse(vkey).unwrap();
                let report =
                    verify_log(store.as_ref(), &verifier, Some(&cp.note), &mut |_, _| {}).unwrap();
                assert_eq!(report.pruned, ranges(&pruned));
                // And a prune after recovery completes.
                ledger.prune(prune_set()).unwrap();
            }
        }
    }
}

#[test]
fn verify_names_a_pruned_entry_whose_tile_hash_was_changed() {
    let (skey, vkey) = key();
    let mem = MemFs::new();
    let fs: Arc<dyn Fs> = Arc::new(mem.clone());
    let ledger = open(&fs, &skey).unwrap();
    append(&ledger, 600);
    ledger.prune((300..310).collect()).unwrap();
    let cp = ledger.checkpoint_now().unwrap();
    drop(ledger);
    // Without its payload, a pruned entry is only its hash: a changed tile hash
    // must not pass as the entry's.
    mem.corrupt(&Path::new(DIR).join("tiles/0.hashes"), 305 * 32 + 7);
    let store = ledger::Store::open_read_only(fs.clone(), Path::new(DIR)).unwrap();
    let err = verify_log(
        &store,
        &Verifier::parse(&vkey).unwrap(),
        Some(&cp.note),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert_eq!(err.seq, Some(305), "{err}");
    assert!(err.message.contains("pruned"), "{err}");
}
