//! The DAX entry-locking and fault invariants `dax-probe check` verifies,
//! and [`Findings`], where the trackers report what broke them. Which
//! tracker owns which invariant, and by which rules, is stated at the top
//! of `faults.rs` and `entries.rs`.

use std::fmt;

use crate::{
    event::{Event, Key},
    stream::HookGroup,
};

/// Violations kept with their events; beyond this they are only counted.
const KEPT_VIOLATIONS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// Every entry lock taken is released once, by its holder, or the entry
    /// deleted: no fault returns holding one, no lock is released twice, none
    /// is held when the trace ends.
    LockReleased,
    /// At most one holder per (mapping, entry start): nobody stores over or
    /// releases a lock another thread holds.
    SingleHolder,
    /// A PMD entry covers its whole 2 MiB range: no PTE entry is created
    /// inside a present PMD entry, no PMD entry over present PTE entries.
    PmdCoversRange,
    /// No waiter is left asleep once its entry is unlocked or deleted, and a
    /// waiter sleeps on the key of the entry it waits for (the missed-wakeup
    /// class of 23c84eb78375).
    WaiterWoken,
    /// Every `dax_pmd_fault` has exactly one `dax_pmd_fault_done`.
    PmdFaultDone,
    /// Every FALLBACK is followed by PTE handling of that address.
    FallbackServed,
    /// A dirty entry is written back whole: `dax_writeback_one` flushes the
    /// range of the entry it locked, from the entry's first page (aligned
    /// down to 2 MiB for a PMD entry) for all of its pages.
    WritebackWhole,
    /// An entry changes only in the ways fs/dax.c changes it: created empty,
    /// deleted by its own holder only to downgrade a zero-page or empty PMD
    /// entry.
    EntryTransitions,
    /// A truncate or hole punch leaves no entry wholly inside its range.
    TruncateEmptiesRange,
    /// A PMD fault falls back for PTE entries in its range only where there
    /// are some (the conflict check of "fs/dax: Fix pmd vs pte conflict
    /// detection"): judged in ranges a truncate emptied, where every entry
    /// made since was seen.
    PteConflictReal,
}

impl Invariant {
    pub const ALL: [Invariant; 10] = [
        Invariant::LockReleased,
        Invariant::SingleHolder,
        Invariant::PmdCoversRange,
        Invariant::WaiterWoken,
        Invariant::PmdFaultDone,
        Invariant::FallbackServed,
        Invariant::WritebackWhole,
        Invariant::EntryTransitions,
        Invariant::TruncateEmptiesRange,
        Invariant::PteConflictReal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Invariant::LockReleased => "lock-released",
            Invariant::SingleHolder => "single-holder",
            Invariant::PmdCoversRange => "pmd-covers-range",
            Invariant::WaiterWoken => "waiter-woken",
            Invariant::PmdFaultDone => "pmd-fault-done",
            Invariant::FallbackServed => "fallback-served",
            Invariant::WritebackWhole => "writeback-whole",
            Invariant::EntryTransitions => "entry-transitions",
            Invariant::TruncateEmptiesRange => "truncate-empties-range",
            Invariant::PteConflictReal => "pte-conflict-real",
        }
    }

    /// The hook groups the invariant needs; none: the fs_dax tracepoints suffice.
    pub fn needs(self) -> &'static [HookGroup] {
        use HookGroup::*;
        match self {
            Invariant::LockReleased
            | Invariant::SingleHolder
            | Invariant::PmdCoversRange
            | Invariant::WritebackWhole
            | Invariant::EntryTransitions => &[EntryState],
            Invariant::WaiterWoken => &[WaitWake],
            Invariant::PmdFaultDone | Invariant::FallbackServed => &[],
            Invariant::TruncateEmptiesRange => &[EntryState, Truncation],
            Invariant::PteConflictReal => &[EntryState, Truncation, FallbackProbes],
        }
    }

    /// Checkable with these hook groups attached.
    pub fn checkable(self, groups: &[HookGroup]) -> bool {
        self.needs().iter().all(|group| group.given_by(groups))
    }
}

/// One broken invariant, or one rule whose work was still in flight where
/// the trace ends: what, on which entry, and the events involved.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: Invariant,
    pub key: Option<Key>,
    pub what: String,
    pub events: Vec<Event>,
    /// Not a violation: in flight at the cut (see [`Findings::open_at_cut`]).
    pub open_at_cut: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = if self.open_at_cut { "open at the cut" } else { "violation" };
        write!(f, "{label}: {}: {}", self.invariant.name(), self.what)?;
        if let Some(key) = self.key {
            write!(f, " ({key})")?;
        }
        for event in &self.events {
            write!(f, "\n    {event}")?;
        }
        Ok(())
    }
}

/// What the trackers found: every violation counted per invariant, the
/// first [`KEPT_VIOLATIONS`] kept with their events. A violation of an
/// invariant that is not checked (its hooks are missing) is not reported:
/// a half-seen protocol proves nothing either way.
#[derive(Debug, Default)]
pub struct Findings {
    checked: Vec<Invariant>,
    /// Per [`Invariant::ALL`] entry.
    counts: [u64; Invariant::ALL.len()],
    kept: Vec<Violation>,
    /// Work in flight where the trace ends, counted, the first kept.
    open_count: u64,
    open: Vec<Violation>,
}

impl Findings {
    /// Checks the invariants these hook groups make checkable.
    pub fn new(groups: &[HookGroup]) -> Findings {
        Findings {
            checked: Invariant::ALL.into_iter().filter(|i| i.checkable(groups)).collect(),
            ..Findings::default()
        }
    }

    pub fn report(&mut self, invariant: Invariant, key: Option<Key>, what: &str, events: Vec<Event>) {
        if !self.checked.contains(&invariant) {
            return;
        }
        self.counts[invariant as usize] += 1;
        if self.kept.len() < KEPT_VIOLATIONS {
            self.kept.push(Violation { invariant, key, what: what.to_owned(), events, open_at_cut: false });
        }
    }

    /// Work a rule judges that was still in flight where the trace ends (a
    /// fault open, an entry held, a wake-up owed, a waiter whose entry is
    /// held): a trace cut while the system runs (Ctrl-C, a recording of the
    /// whole machine) has such work, so it is not a violation. It is
    /// reported as what it is, and the verdict does not count it.
    pub fn open_at_cut(&mut self, invariant: Invariant, key: Option<Key>, what: &str, events: Vec<Event>) {
        if !self.checked.contains(&invariant) {
            return;
        }
        self.open_count += 1;
        if self.open.len() < KEPT_VIOLATIONS {
            self.open.push(Violation { invariant, key, what: what.to_owned(), events, open_at_cut: true });
        }
    }

    /// How much work was in flight at the cut.
    pub fn open_count(&self) -> u64 {
        self.open_count
    }

    /// The first of it, kept with its events.
    pub fn open(&self) -> &[Violation] {
        &self.open
    }

    pub fn checked(&self) -> &[Invariant] {
        &self.checked
    }

    /// Violations per [`Invariant::ALL`] entry.
    pub fn counts(&self) -> [u64; Invariant::ALL.len()] {
        self.counts
    }

    /// All violations found, kept or only counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The violations kept with their events, in the order found.
    pub fn kept(&self) -> &[Violation] {
        &self.kept
    }
}
