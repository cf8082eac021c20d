//! `cargo xtask bench checker`: what a user waits for in `dax-probe check
//! TRACE`, end to end on one core: reading a trace file, decoding its
//! records and analysing them (target: at least 5 M events/s).
//!
//! The synthetic trace mixes what the lab records: ranges whose PMD fault
//! falls back and is served by PTE faults (an empty PMD entry downgraded,
//! then a PTE entry per page), and PMD faults with a waiter queued on the
//! entry, over 16 mappings and 64 threads. Traces given as arguments (the
//! lab's recordings; xtask passes those it finds) are measured too.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use dax_probe::{
    analysis::{verdict::Verdict, Analysis},
    event::{At, Entry, Event, Key, WakeMode, What},
    kernel::{entry, VM_FAULT_FALLBACK, VM_FAULT_NOPAGE},
    stream::{Begin, HookGroup, Sink, Summary},
    testing::{dax_entry, event, Vma, XA},
    trace::{file::Writer, Reader},
};

const A: u64 = 0x7f00_0000_0000;
/// The synthetic trace: this many mappings of a file of this many 2 MiB
/// ranges (256 MiB, the seed's job), faulted in this many rounds (each
/// round maps the file anew; the file's entries stay), and PTE faults per
/// range that falls back.
const MAPPINGS: u64 = 16;
const RANGES: u64 = 128;
const ROUNDS: u64 = 40;
const PTE_FAULTS: u64 = 32;

/// Writes events as a recording with every hook group would.
struct Trace {
    writer: Writer,
    time: u64,
    events: u64,
}

impl Trace {
    fn push(&mut self, tid: u32, what: What) {
        self.time += 100;
        self.events += 1;
        self.writer.push(&Event { time_ns: self.time, ..event(tid, what) }).unwrap();
    }

    fn lock(&mut self, tid: u32, at: At, old: Entry, new: Entry) {
        self.push(tid, What::EntryLock { at, old, new: Entry(new.0 | entry::LOCKED) });
    }

    fn unlock_and_wake(&mut self, tid: u32, at: At, entry: Entry) {
        self.push(tid, What::EntryUnlock { at, entry });
        self.push(tid, What::EntryWake { at, entry, mode: WakeMode::Next });
    }
}

fn empty_pmd() -> Entry {
    Entry(dax_entry(0, true, false).0 | entry::EMPTY)
}

/// A PMD fault that falls back (the first round: the extent is short; then:
/// PTE entries are in the range), then PTE faults, which in the first round
/// downgrade the empty PMD entry and fill the range with PTE entries, and
/// later lock the PTE entries that are there.
fn fallback_range(trace: &mut Trace, tid: u32, mapping: u64, range: u64, first: bool) {
    let vma = Vma::shared(A, A + (RANGES << 21), RANGES * 512);
    let index = range * 512;
    let address = A + (range << 21);
    let at = At { mapping, index };
    trace.push(tid, What::PmdFault(vma.fault(address)));
    if first {
        trace.lock(tid, at, Entry(0), empty_pmd());
        trace.unlock_and_wake(tid, at, empty_pmd());
    } else {
        trace.push(tid, What::GrabFallback { at });
    }
    trace.push(tid, What::PmdFaultDone(vma.done(address, VM_FAULT_FALLBACK)));
    for page in 0..PTE_FAULTS {
        let at = At { mapping, index: index + page };
        let address = address + (page << 12);
        let pte = dax_entry(range * 1024 + page, false, false);
        trace.push(tid, What::PteFault(vma.fault(address)));
        if first && page == 0 {
            // The downgrade: lock the empty PMD entry, delete it, wake all.
            trace.lock(tid, at, empty_pmd(), empty_pmd());
            trace.push(tid, What::EntryWake { at, entry: empty_pmd(), mode: WakeMode::All });
        }
        if first {
            // grab_mapping_entry creates it empty, dax_insert_entry fills it in.
            let empty = Entry(dax_entry(0, false, false).0 | entry::EMPTY);
            trace.lock(tid, at, Entry(0), empty);
            trace.lock(tid, at, Entry(empty.0 | entry::LOCKED), pte);
        } else {
            trace.lock(tid, at, pte, pte);
        }
        trace.unlock_and_wake(tid, at, pte);
        trace.push(tid, What::PteFaultDone(vma.done(address, VM_FAULT_NOPAGE)));
    }
}

/// A PMD fault that maps 2 MiB while thread `tid + 1` waits for its entry.
fn contended_range(trace: &mut Trace, tid: u32, mapping: u64, range: u64, first: bool) {
    let vma = Vma::shared(A, A + (RANGES << 21), RANGES * 512);
    let index = range * 512;
    let address = A + (range << 21);
    let at = At { mapping, index };
    let real = dax_entry(range + 1, true, false);
    let found = if first { empty_pmd() } else { real };
    let key = Key { mapping, start: index };
    trace.push(tid, What::PmdFault(vma.fault(address)));
    trace.lock(tid, at, if first { Entry(0) } else { found }, found);
    trace.push(tid + 1, What::EntryWait { key, at, entry: Entry(found.0 | entry::LOCKED) });
    trace.push(tid, What::PmdFaultIter { at });
    if first {
        trace.lock(tid, at, Entry(found.0 | entry::LOCKED), real);
    }
    trace.unlock_and_wake(tid, at, real);
    trace.push(tid + 1, What::EntryWoken { key });
    trace.push(tid, What::PmdFaultDone(vma.done(address, VM_FAULT_NOPAGE)));
}

fn write_synthetic(path: &Path) -> u64 {
    let mut trace = Trace { writer: Writer::create(path).unwrap(), time: 1_000_000_000, events: 0 };
    let hooks = vec![HookGroup::EntryState, HookGroup::WaitWake, HookGroup::FallbackProbes];
    trace.writer.begin(&Begin { kernel: "synthetic".into(), hooks, ..Begin::default() });
    for round in 0..ROUNDS {
        for mapping in 0..MAPPINGS {
            let (xa, tid) = (XA + mapping * 0x1000, 1 + (mapping as u32) * 4);
            for range in 0..RANGES {
                if range % 2 == 0 {
                    fallback_range(&mut trace, tid, xa, range, round == 0);
                } else {
                    contended_range(&mut trace, tid + 2, xa, range, round == 0);
                }
            }
        }
    }
    let events = trace.events;
    trace.writer.finish(&Summary { events, ..Summary::default() }).unwrap();
    events
}

/// Reads and decodes the trace at `path`, and nothing else.
fn read(path: &Path) -> (u64, f64) {
    let start = Instant::now();
    let mut reader = Reader::open(path).unwrap();
    let mut events = 0;
    while reader.next_event().unwrap().is_some() {
        events += 1;
    }
    (events, start.elapsed().as_secs_f64())
}

/// Reads, decodes and checks the trace at `path`, as `dax-probe check` does.
fn check(path: &Path) -> (Verdict, f64) {
    let start = Instant::now();
    let mut analysis = Analysis::default();
    Reader::open(path).unwrap().stream(&mut analysis).unwrap();
    let verdict = Verdict::of(&analysis);
    (verdict, start.elapsed().as_secs_f64())
}

/// Peak resident memory of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given; all zeros is a valid start.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn measure(name: &str, path: &Path, clean: bool) {
    let size = std::fs::metadata(path).unwrap().len() as f64 / (1 << 20) as f64;
    let mut best = f64::MAX;
    let mut events = 0;
    for _ in 0..3 {
        let (verdict, seconds) = check(path);
        if clean {
            assert_eq!(verdict.violation_count(), 0, "the synthetic trace is clean");
        }
        events = verdict.events;
        best = best.min(seconds);
    }
    let read_alone = (0..3).map(|_| read(path).1).fold(f64::MAX, f64::min);
    println!(
        "bench checker: {name}: reading and decoding alone: {:.2} M events/s",
        events as f64 / read_alone / 1e6
    );
    let rate = events as f64 / best;
    println!(
        "bench checker: {name}: {events} events ({size:.0} MiB) read, decoded and checked in {best:.3} s \
         (best of 3, one core): {:.2} M events/s, target 5 M events/s: {:.2}x",
        rate / 1e6,
        rate / 5e6
    );
}

fn main() {
    let dir = std::env::temp_dir().join(format!("dax-probe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let synthetic = dir.join("synthetic.daxtrace");
    let written = write_synthetic(&synthetic);
    let rss_written = peak_rss_mib();
    measure("synthetic mix", &synthetic, true);
    println!(
        "bench checker: peak RSS {:.0} MiB while checking a {:.0} MiB trace ({written} events; {rss_written:.0} MiB after writing it)",
        peak_rss_mib(),
        std::fs::metadata(&synthetic).unwrap().len() as f64 / (1 << 20) as f64
    );
    std::fs::remove_dir_all(&dir).ok();
    for path in std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).map(PathBuf::from) {
        measure(&path.display().to_string(), &path, false);
    }
}
