//! The fault tracker: pairs each fault's start with its done on the same
//! thread, classifies every PMD fallback, and owns two invariants.
//!
//! The kernel's contract it holds the stream to (mm/memory.c and fs/dax.c):
//! a thread is in at most one fault at a time; `dax_iomap_pmd_fault` fires
//! `dax_pmd_fault` on entry and `dax_pmd_fault_done` on every way out; a
//! `VM_FAULT_FALLBACK` sends the same fault on to the PTE path
//! (`handle_pte_fault`), which serves the faulting page.
//!
//! | invariant | rule | judged at |
//! |---|---|---|
//! | pmd-fault-done | a thread starts no PMD fault while its previous one is open | [`FaultTracker::pmd_fault`] |
//! | pmd-fault-done | every `dax_pmd_fault_done` closes a `dax_pmd_fault` of its thread (unless the thread's first PMD event is the done: that fault began before the trace) | [`FaultTracker::pmd_fault_done`] |
//! | pmd-fault-done | a PMD fault open where the trace ends is open at the cut, not a violation | [`FaultTracker::finish`] |
//! | fallback-served | a FALLBACK's page gets a PTE fault from its process before the thread moves on to another address (a retry of the same address, e.g. from under the VMA lock to under `mmap_lock`, carries the debt), or got one from another thread of its process while the PMD fault ran (remembered for the last 65 536 to 131 072 PTE faults: [`Served`]) | [`FaultTracker::check_served`] |

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::{
    analysis::{
        drain_by_time,
        fallback::{self, Seen},
        invariants::{Findings, Invariant},
        timeline::Outcome,
    },
    event::{Event, Fault, What},
    kernel::{PAGE_MASK, VM_FAULT_FALLBACK, VM_FAULT_NOPAGE},
};

/// A fault whose start and done were both seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    pub size: Size,
    pub latency_ns: u64,
    /// What the fault gave, where it gave something the timeline counts.
    pub outcome: Option<Outcome>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Pmd,
    Pte,
}

struct OpenFault {
    start: Event,
    seen: Seen,
    /// The `served` generation at its start.
    generation: u64,
}

#[derive(Default)]
pub struct FaultTracker {
    /// The fallback-probes hooks are attached: reasons beyond the fields can be named.
    fallback_probes: bool,
    /// Threads seen starting a PMD fault (a done before that is a fault begun before the trace).
    pmd_threads: HashSet<u32>,
    open_pmd: HashMap<u32, OpenFault>,
    /// PTE faults begun: tid -> start time.
    open_pte: HashMap<u32, u64>,
    /// A FALLBACK not yet followed by its PTE fault: tid -> the done event.
    unserved: HashMap<u32, Event>,
    /// (tgid, page) that a PTE fault has handled lately.
    served: Served,
}

/// The (tgid, page) pairs recent PTE faults handled, in two generations of
/// at most [`Served::KEPT`] each: the older is dropped when the newer
/// fills, so memory stays bounded over any stream (every page every
/// process ever faulted grew without end: 88 MB in five minutes of fio in
/// a loop). A FALLBACK is served by a PTE fault after it, or by one another
/// thread of its process made on its page while its PMD fault ran (the
/// page table is none at a PMD fault's start, so a PTE fault long before
/// cannot have served it): only the generations since its start matter.
#[derive(Default)]
struct Served {
    current: HashSet<(u32, u64)>,
    previous: HashSet<(u32, u64)>,
    generation: u64,
}

impl Served {
    const KEPT: usize = 1 << 16;

    fn insert(&mut self, key: (u32, u64)) {
        if self.current.len() >= Served::KEPT {
            self.previous = std::mem::take(&mut self.current);
            self.generation += 1;
        }
        self.current.insert(key);
    }

    /// Whether a PTE fault served `key` since generation `since`; a fault
    /// that outlived two generations (over 65 536 PTE faults of the stream
    /// during one PMD fault) cannot be told, and is given the benefit of
    /// the doubt rather than a false violation.
    fn since(&self, since: u64, key: (u32, u64)) -> bool {
        self.generation > since + 1 || self.current.contains(&key) || self.previous.contains(&key)
    }
}

impl FaultTracker {
    pub fn new(fallback_probes: bool) -> FaultTracker {
        FaultTracker { fallback_probes, ..FaultTracker::default() }
    }

    /// Takes one event; returns the fault it finished, if it finished one.
    pub fn push(&mut self, event: &Event, findings: &mut Findings) -> Option<Finished> {
        match &event.what {
            What::PmdFault(fault) => self.pmd_fault(event, fault, findings),
            What::PmdFaultDone(fault) => return self.pmd_fault_done(event, fault, findings),
            What::PteFault(fault) => self.pte_fault(event, fault),
            What::PteFaultDone(_) => return self.pte_fault_done(event),
            What::PmdLoadHoleFallback(_) => self.seen(event, |seen| seen.hole_fallback = true),
            What::GrabFallback { .. } => self.seen(event, |seen| seen.grab_fallback = true),
            What::DirectAccessFailed { .. } => self.seen(event, |seen| seen.direct_access_failed = true),
            What::PmdFaultIter { .. } => self.seen(event, |seen| seen.fault_iter = true),
            _ => {}
        }
        None
    }

    /// The end of the stream: debts still owed, faults still open.
    /// Faults in flight where the trace ends are open at the cut: a PMD
    /// fault not yet done, a FALLBACK whose PTE fault may come after it.
    pub fn finish(&mut self, findings: &mut Findings) {
        for done in drain_by_time(&mut self.unserved, |done| done.time_ns) {
            let what = "a PMD FALLBACK whose PTE fault may come after the cut";
            findings.open_at_cut(Invariant::FallbackServed, None, what, vec![done]);
        }
        for open in drain_by_time(&mut self.open_pmd, |open| open.start.time_ns) {
            let what = "dax_pmd_fault not yet done where the trace ends";
            findings.open_at_cut(Invariant::PmdFaultDone, None, what, vec![open.start]);
        }
    }

    fn seen(&mut self, event: &Event, mark: fn(&mut Seen)) {
        if let Some(open) = self.open_pmd.get_mut(&event.tid) {
            mark(&mut open.seen);
        }
    }

    fn pmd_fault(&mut self, event: &Event, fault: &Fault, findings: &mut Findings) {
        self.pmd_threads.insert(event.tid);
        if let Some(done) = self.unserved.remove(&event.tid) {
            // The same address again is the fault retried: the retry owes the PTE fault.
            if !same_page(address(&done), fault.address) {
                self.check_served(done, findings);
            }
        }
        let open = OpenFault { start: *event, seen: Seen::default(), generation: self.served.generation };
        let previous = self.open_pmd.insert(event.tid, open);
        if let Some(previous) = previous {
            findings.report(
                Invariant::PmdFaultDone,
                None,
                "a thread started a PMD fault before the previous one was done",
                vec![previous.start, *event],
            );
        }
    }

    fn pmd_fault_done(&mut self, event: &Event, fault: &Fault, findings: &mut Findings) -> Option<Finished> {
        let Some(open) = self.open_pmd.remove(&event.tid) else {
            // A fault begun before the trace ends without its start.
            if self.pmd_threads.contains(&event.tid) {
                let what = "dax_pmd_fault_done without its dax_pmd_fault";
                findings.report(Invariant::PmdFaultDone, None, what, vec![*event]);
            }
            return None;
        };
        let outcome = if fault.result & VM_FAULT_FALLBACK != 0 {
            // Served already, by another thread of the process while this
            // fault ran; else owed by the PTE fault to come.
            if !self.served.since(open.generation, (event.tgid, fault.address & PAGE_MASK)) {
                self.unserved.insert(event.tid, *event);
            }
            Some(Outcome::Fallback(fallback::classify(fault, open.seen, self.fallback_probes)))
        } else if fault.result & VM_FAULT_NOPAGE != 0 {
            Some(Outcome::Pmd)
        } else {
            None
        };
        let latency_ns = event.time_ns.saturating_sub(open.start.time_ns);
        Some(Finished { size: Size::Pmd, latency_ns, outcome })
    }

    fn pte_fault(&mut self, event: &Event, fault: &Fault) {
        self.open_pte.insert(event.tid, event.time_ns);
        let page = fault.address & PAGE_MASK;
        self.served.insert((event.tgid, page));
        // Nearly every PTE fault finds nothing owed: skip the walk then.
        if !self.unserved.is_empty() {
            self.unserved.retain(|_, done| !(done.tgid == event.tgid && same_page(address(done), page)));
        }
    }

    fn pte_fault_done(&mut self, event: &Event) -> Option<Finished> {
        let start_ns = self.open_pte.remove(&event.tid)?;
        let latency_ns = event.time_ns.saturating_sub(start_ns);
        Some(Finished { size: Size::Pte, latency_ns, outcome: Some(Outcome::Pte) })
    }

    /// fallback-served: a FALLBACK still owed (no PTE fault of its process
    /// on its page since) when its thread moves on.
    fn check_served(&self, done: Event, findings: &mut Findings) {
        let what = "a PMD FALLBACK was not followed by a PTE fault on its address";
        findings.report(Invariant::FallbackServed, None, what, vec![done]);
    }
}

fn address(event: &Event) -> u64 {
    event.fault().map_or(0, |fault| fault.address)
}

fn same_page(a: u64, b: u64) -> bool {
    (a ^ b) & PAGE_MASK == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_pages_stay_bounded_and_recent_ones_are_kept() {
        let mut served = Served::default();
        let faults = 3 * Served::KEPT as u64;
        for page in 0..faults {
            served.insert((1, page));
        }
        assert!(served.current.len() <= Served::KEPT && served.previous.len() <= Served::KEPT);
        let now = served.generation;
        assert!(served.since(now, (1, faults - 1)), "the last fault is known");
        assert!(!served.since(now, (1, 0)), "the first is gone, and a fault begun now needs none that old");
        assert!(served.since(now - 2, (1, 0)), "a fault that outlived two generations is not judged");
    }
}
