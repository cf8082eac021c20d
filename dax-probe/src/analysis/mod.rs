//! The analysis: one pass over the stream, as a [`Sink`].
//!
//! Each event goes, in stream order, to
//! - the entry tracker ([`entries`]): holders and wait queues of DAX
//!   entries, and the ranges truncates emptied; it owns lock-released,
//!   single-holder, pmd-covers-range, waiter-woken, writeback-whole,
//!   entry-transitions, truncate-empties-range and pte-conflict-real;
//! - the fault tracker ([`faults`]): each fault's start paired with its
//!   done, every fallback's reason ([`fallback`]); it owns pmd-fault-done
//!   and fallback-served;
//! - the statistics ([`Stats`]): faults per file and process, fallbacks per
//!   reason, faults over time and their latency ([`timeline`]), which the
//!   report, the plots and the metrics show.
//!
//! Both trackers report violations into one [`Findings`]
//! ([`invariants`]), which checks only what the attached hooks make
//! checkable ([`coverage`] says what that is). [`verdict`] turns a finished
//! analysis into pass, fail or inconclusive.
//!
//! The maps use FxHash: keys are kernel pointers and indices, not chosen by
//! an attacker, and the checker must keep up with millions of events per
//! second.

pub mod coverage;
pub mod entries;
pub mod fallback;
pub mod faults;
pub mod invariants;
pub mod timeline;
pub mod verdict;

#[cfg(test)]
mod tests;

use anyhow::Result;
use dax_probe_common::{
    count::{self, Tally},
    HOOK_EVENT_COUNT, TRACEPOINT_COUNT,
};
use rustc_hash::FxHashMap as HashMap;

use crate::{
    event::{Comm, Event, Fault, File, What},
    kernel::PMD_PAGES,
    stream::{Begin, HookGroup, Sink, Summary},
};
use entries::{Change, EntryTracker};
use fallback::Reason;
use faults::{FaultTracker, Finished, Size};
use invariants::Findings;
use timeline::{Latencies, Outcome, Timeline};

/// Fault counts of one file or process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    pub pmd: u64,
    pub pmd_nopage: u64,
    pub pmd_fallback: u64,
    pub pte: u64,
    pub pte_nopage: u64,
}

impl Faults {
    /// A counting-mode tally in the stream's terms.
    pub fn of_tally(tally: &Tally) -> Faults {
        let (pmd, pte) = (&tally.faults[count::Size::Pmd as usize], &tally.faults[count::Size::Pte as usize]);
        Faults {
            pmd: pmd.iter().sum(),
            pmd_nopage: pmd[count::Outcome::Mapped as usize],
            pmd_fallback: pmd[count::Outcome::Fallback as usize],
            pte: pte.iter().sum(),
            pte_nopage: pte[count::Outcome::Mapped as usize],
        }
    }

    pub fn merge(&mut self, other: &Faults) {
        self.pmd += other.pmd;
        self.pmd_nopage += other.pmd_nopage;
        self.pmd_fallback += other.pmd_fallback;
        self.pte += other.pte;
        self.pte_nopage += other.pte_nopage;
    }

    /// One finished fault, its result read as the counting mode reads it.
    fn add(&mut self, size: Size, result: u64) {
        let outcome = count::Outcome::of(result);
        let nopage = u64::from(outcome == count::Outcome::Mapped);
        match size {
            Size::Pmd => {
                self.pmd += 1;
                self.pmd_nopage += nopage;
                self.pmd_fallback += u64::from(outcome == count::Outcome::Fallback);
            }
            Size::Pte => {
                self.pte += 1;
                self.pte_nopage += nopage;
            }
        }
    }
}

/// What became of entries besides faults: the huge zero page over holes,
/// the downgrades that undo it, and writeback by entry size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryLife {
    /// 2 MiB holes read through the huge zero page (`dax_pmd_load_hole`).
    pub pmd_hole_loads: u64,
    /// 2 MiB hole reads that fell back (`dax_pmd_load_hole_fallback`: no
    /// huge zero page, or a page table already in the way).
    pub pmd_hole_fallbacks: u64,
    /// 4 KiB holes read through the zero page (`dax_load_hole`).
    pub pte_hole_loads: u64,
    /// PMD entries a 4 KiB fault deleted to put a PTE entry in their range
    /// (`grab_mapping_entry`'s downgrade): zero-page ones, and empty ones
    /// (left by a PMD fault that fell back). Seen by the entry hooks only.
    pub downgraded_zero_page: u64,
    pub downgraded_empty: u64,
    /// Entries written back (`dax_writeback_one`), by the pages flushed:
    /// 512 (a PMD entry), 1 (a PTE entry), any other count.
    pub written_back_pmd: u64,
    pub written_back_pte: u64,
    pub written_back_other: u64,
    /// Truncates and hole punches of DAX files
    /// (`truncate_inode_pages_range`), and the entries nobody held that
    /// were deleted (by them, by eviction, by invalidation): real PMD
    /// entries, zero-page entries of either size, real PTE entries. Seen
    /// by the truncation and entry hooks only.
    pub truncates: u64,
    pub deleted_pmd: u64,
    pub deleted_zero_page: u64,
    pub deleted_pte: u64,
}

impl EntryLife {
    fn observe(&mut self, what: &What) {
        match what {
            What::PmdLoadHole(_) => self.pmd_hole_loads += 1,
            What::PmdLoadHoleFallback(_) => self.pmd_hole_fallbacks += 1,
            What::LoadHole(_) => self.pte_hole_loads += 1,
            // The hook sends DAX files' truncates only.
            What::Truncated(_) => self.truncates += 1,
            What::WritebackOne(writeback) => match writeback.pglen {
                PMD_PAGES => self.written_back_pmd += 1,
                1 => self.written_back_pte += 1,
                _ => self.written_back_other += 1,
            },
            _ => {}
        }
    }

    fn changed(&mut self, change: Change) {
        match change {
            Change::Downgraded(pmd) if pmd.is_zero_page() => self.downgraded_zero_page += 1,
            Change::Downgraded(_) => self.downgraded_empty += 1,
            Change::Deleted(entry) if entry.is_zero_page() => self.deleted_zero_page += 1,
            Change::Deleted(entry) if entry.is_pmd() => self.deleted_pmd += 1,
            Change::Deleted(_) => self.deleted_pte += 1,
        }
    }
}

/// What the report, the plots and the metrics show.
#[derive(Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub faults: Faults,
    pub entry_life: EntryLife,
    /// Per `HOOK_EVENTS` entry.
    pub hook_events: [u64; HOOK_EVENT_COUNT],
    /// PMD fallbacks per [`Reason::ALL`] entry.
    pub reasons: [u64; Reason::ALL.len()],
    pub files: HashMap<File, Faults>,
    /// By tgid, with the first command name seen.
    pub processes: HashMap<u32, (Comm, Faults)>,
    pub timeline: Timeline,
    pub latency: Latencies,
}

impl Stats {
    fn fault_done(&mut self, event: &Event, size: Size, fault: &Fault) {
        self.faults.add(size, fault.result);
        self.files.entry(fault.file).or_default().add(size, fault.result);
        self.processes
            .entry(event.tgid)
            .or_insert_with(|| (event.comm, Faults::default()))
            .1
            .add(size, fault.result);
    }

    fn finished(&mut self, time_ns: u64, finished: Finished) {
        match finished.size {
            Size::Pmd => self.latency.pmd.observe(finished.latency_ns),
            Size::Pte => self.latency.pte.observe(finished.latency_ns),
        }
        if let Some(outcome) = finished.outcome {
            self.timeline.add(time_ns, outcome);
            if let Outcome::Fallback(reason) = outcome {
                self.reasons[reason as usize] += 1;
            }
        }
    }
}

/// A per-thread map's values, oldest first: what both trackers still owe at
/// the end of a stream is reported in time order.
fn drain_by_time<T>(map: &mut HashMap<u32, T>, time: impl Fn(&T) -> u64) -> Vec<T> {
    let mut values: Vec<T> = map.drain().map(|(_, value)| value).collect();
    values.sort_by_key(|value| time(value));
    values
}

/// The analysis of one stream. Built with `Default`, it starts judging at
/// [`Sink::begin`] and is complete after [`Sink::finish`].
#[derive(Default)]
pub struct Analysis {
    begin: Begin,
    lost: u64,
    loss_unknown: bool,
    finished: bool,
    pub stats: Stats,
    faults: FaultTracker,
    entries: EntryTracker,
    findings: Findings,
    /// Live only: how long a waiter may sleep on a free entry with no
    /// wake-up coming before it is a lost wake-up ([`Sink::tick`]).
    stall_after_ns: Option<u64>,
}

impl Analysis {
    /// What the stream's recording attached.
    pub fn recording(&self) -> &Begin {
        &self.begin
    }

    /// Events lost: the final count once finished, the running one live.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Events may have been lost without a count (see [`Summary::loss_unknown`]).
    pub fn loss_unknown(&self) -> bool {
        self.loss_unknown
    }

    pub fn findings(&self) -> &Findings {
        &self.findings
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Judges stalls when live: see [`EntryTracker::stalled`].
    pub fn stall_after(mut self, limit: std::time::Duration) -> Analysis {
        self.stall_after_ns = Some(limit.as_nanos().try_into().unwrap_or(u64::MAX));
        self
    }

    /// Takes one event: the per-event path of every check.
    pub fn observe(&mut self, event: &Event) {
        self.stats.events += 1;
        self.stats.timeline.saw(event.time_ns);
        if let Some(hook) = (event.kind() as usize).checked_sub(TRACEPOINT_COUNT) {
            self.stats.hook_events[hook] += 1;
        }
        self.stats.entry_life.observe(&event.what);
        if let Some(change) = self.entries.push(event, &mut self.findings) {
            self.stats.entry_life.changed(change);
        }
        if let Some(finished) = self.faults.push(event, &mut self.findings) {
            self.stats.finished(event.time_ns, finished);
        }
        let (size, fault) = match &event.what {
            What::PmdFaultDone(fault) => (Size::Pmd, fault),
            What::PteFaultDone(fault) => (Size::Pte, fault),
            _ => return,
        };
        self.stats.fault_done(event, size, fault);
        self.entries.fault_returned(event, &mut self.findings);
    }
}

impl Sink for Analysis {
    fn begin(&mut self, begin: &Begin) {
        *self = Analysis {
            begin: begin.clone(),
            faults: FaultTracker::new(begin.gives(HookGroup::FallbackProbes)),
            findings: Findings::new(&begin.hooks),
            stall_after_ns: self.stall_after_ns,
            ..Analysis::default()
        };
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.observe(event);
        Ok(())
    }

    fn lost(&mut self, total: u64) {
        self.lost = total;
    }

    /// A lost wake-up found live ends the session: its waiter never returns.
    fn tick(&mut self, now_ns: u64) -> bool {
        let Some(limit_ns) = self.stall_after_ns else { return false };
        self.entries.stalled(now_ns, limit_ns, &mut self.findings)
    }

    /// The end of the stream: what is still owed, open, held or asleep.
    fn finish(&mut self, summary: &Summary) -> Result<()> {
        self.entries.finish(&mut self.findings);
        self.faults.finish(&mut self.findings);
        self.lost = summary.lost;
        self.loss_unknown = summary.loss_unknown;
        self.finished = true;
        Ok(())
    }
}
