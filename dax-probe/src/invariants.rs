//! The DAX entry-locking and fault invariants `dax-probe check` verifies.

use std::fmt;

use dax_probe_common::Event;

use crate::{
    events::{describe, Key},
    hooks,
};

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
}

impl Invariant {
    pub const ALL: [Invariant; 6] = [
        Invariant::LockReleased,
        Invariant::SingleHolder,
        Invariant::PmdCoversRange,
        Invariant::WaiterWoken,
        Invariant::PmdFaultDone,
        Invariant::FallbackServed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Invariant::LockReleased => "lock-released",
            Invariant::SingleHolder => "single-holder",
            Invariant::PmdCoversRange => "pmd-covers-range",
            Invariant::WaiterWoken => "waiter-woken",
            Invariant::PmdFaultDone => "pmd-fault-done",
            Invariant::FallbackServed => "fallback-served",
        }
    }

    /// The hook group the invariant needs; `None`: the fs_dax tracepoints suffice.
    pub fn needs(self) -> Option<&'static str> {
        match self {
            Invariant::LockReleased | Invariant::SingleHolder | Invariant::PmdCoversRange => {
                Some(hooks::ENTRY_STATE)
            }
            Invariant::WaiterWoken => Some(hooks::WAIT_WAKE),
            Invariant::PmdFaultDone | Invariant::FallbackServed => None,
        }
    }

    /// Checkable with these hook groups attached.
    pub fn checkable(self, groups: &[String]) -> bool {
        self.needs().is_none_or(|group| hooks::provides(groups, group))
    }
}

/// One broken invariant: what, on which entry, and the events involved.
#[derive(Clone, Debug)]
pub struct Violation {
    pub invariant: Invariant,
    pub key: Option<Key>,
    pub what: String,
    pub events: Vec<Event>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "violation: {}: {}", self.invariant.name(), self.what)?;
        if let Some(key) = self.key {
            write!(f, " ({key})")?;
        }
        for event in &self.events {
            write!(f, "\n    {}", describe(event))?;
        }
        Ok(())
    }
}
