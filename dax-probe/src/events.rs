//! Reading events: DAX entries, entry keys and how an event is named.

use std::fmt;

use dax_probe_common::{entry, Event, Kind};

/// A DAX entry as the XArray holds it (a value entry, flags from bit 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry(pub u64);

impl Entry {
    /// A DAX entry at all (not NULL, not an internal or pointer entry).
    pub fn is_value(self) -> bool {
        self.0 & 1 == 1
    }

    pub fn is_locked(self) -> bool {
        self.is_value() && self.0 & entry::LOCKED != 0
    }

    pub fn order(self) -> u32 {
        if self.0 & entry::PMD != 0 {
            entry::PMD_ORDER
        } else {
            0
        }
    }

    /// The first page offset the entry covers, for an index inside it.
    pub fn start(self, index: u64) -> u64 {
        index & !((1u64 << self.order()) - 1)
    }

    pub fn unlocked(self) -> Entry {
        Entry(self.0 & !entry::LOCKED)
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.is_value() {
            return write!(f, "{:#x}", self.0);
        }
        let size = if self.order() == 0 { "pte" } else { "pmd" };
        let flags = [(entry::LOCKED, "locked"), (entry::ZERO_PAGE, "zero"), (entry::EMPTY, "empty")];
        write!(f, "{size}")?;
        for (bit, name) in flags {
            if self.0 & bit != 0 {
                write!(f, "|{name}")?;
            }
        }
        Ok(())
    }
}

/// One DAX entry's identity: (mapping, first page offset) — the wait key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub mapping: u64,
    pub start: u64,
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mapping {:#x} index {}", self.mapping, self.start)
    }
}

pub fn kind_name(event: &Event) -> &'static str {
    event.kind().map(Kind::name).unwrap_or("unknown")
}

pub fn comm(event: &Event) -> String {
    let end = event.comm.iter().position(|&b| b == 0).unwrap_or(event.comm.len());
    String::from_utf8_lossy(&event.comm[..end]).into_owned()
}

/// "TIME EVENT pid TGID/TID (COMM)": how a violation names its events.
pub fn describe(event: &Event) -> String {
    format!(
        "{}.{:09} {} pid {}/{} ({})",
        event.time_ns / 1_000_000_000,
        event.time_ns % 1_000_000_000,
        kind_name(event),
        event.tgid,
        event.tid,
        comm(event)
    )
}

/// Builders of synthetic events for the unit tests and the checker benchmark.
pub mod test_support {
    use dax_probe_common::{entry, Arg, Event, Field, Kind, FIELD_COUNT};

    pub const XA: u64 = 0xffff_8880_0100_0000;
    pub const VM_SHARED_RW: u64 = 0x8 | 0x3;

    pub fn event(kind: Kind, tid: u32, fields: [u64; FIELD_COUNT]) -> Event {
        Event {
            time_ns: 0,
            tgid: tid,
            tid,
            kind: kind as u32,
            cpu: 0,
            comm: *b"test\0\0\0\0\0\0\0\0\0\0\0\0",
            fields,
        }
    }

    fn hook(kind: Kind, tid: u32, args: &[(Arg, u64)]) -> Event {
        let mut fields = [0; FIELD_COUNT];
        for (arg, value) in args {
            fields[*arg as usize] = *value;
        }
        event(kind, tid, fields)
    }

    /// A DAX value entry: `pmd` picks the order, `locked` the lock bit.
    pub fn dax_entry(pfn: u64, pmd: bool, locked: bool) -> u64 {
        let mut flags = 0;
        if pmd {
            flags |= entry::PMD;
        }
        if locked {
            flags |= entry::LOCKED;
        }
        (pfn << 5) | flags | 1
    }

    /// `dax_lock_entry` storing `new` (locked) over `old`.
    pub fn lock(tid: u32, index: u64, old: u64, new: u64) -> Event {
        hook(
            Kind::EntryLock,
            tid,
            &[
                (Arg::Mapping, XA),
                (Arg::Index, index),
                (Arg::OldEntry, old),
                (Arg::Entry, new | entry::LOCKED),
            ],
        )
    }

    /// `dax_unlock_entry` storing `entry` back unlocked.
    pub fn unlock(tid: u32, index: u64, entry: u64) -> Event {
        hook(
            Kind::EntryUnlock,
            tid,
            &[(Arg::Mapping, XA), (Arg::Index, index), (Arg::Entry, entry & !entry::LOCKED)],
        )
    }

    pub fn wake(tid: u32, index: u64, entry: u64, all: bool) -> Event {
        let mode = if all { 0 } else { 1 };
        hook(
            Kind::EntryWake,
            tid,
            &[(Arg::Mapping, XA), (Arg::Index, index), (Arg::Entry, entry), (Arg::Mode, mode)],
        )
    }

    pub fn wait(tid: u32, key_start: u64, index: u64, entry: u64) -> Event {
        hook(
            Kind::EntryWait,
            tid,
            &[(Arg::Mapping, XA), (Arg::KeyStart, key_start), (Arg::Index, index), (Arg::Entry, entry)],
        )
    }

    pub fn woken(tid: u32, key_start: u64) -> Event {
        hook(Kind::EntryWoken, tid, &[(Arg::Mapping, XA), (Arg::KeyStart, key_start)])
    }

    pub fn grab_fallback(tid: u32, index: u64) -> Event {
        hook(Kind::GrabFallback, tid, &[(Arg::Mapping, XA), (Arg::Index, index)])
    }

    pub fn pmd_fault_iter(tid: u32, index: u64) -> Event {
        hook(Kind::PmdFaultIter, tid, &[(Arg::Mapping, XA), (Arg::Index, index)])
    }

    /// A fault tracepoint with the fields the classifier and checker read.
    #[allow(clippy::too_many_arguments)]
    pub fn fault(
        kind: Kind,
        tid: u32,
        address: u64,
        vm_start: u64,
        vm_end: u64,
        pgoff: u64,
        vm_flags: u64,
        max_pgoff: u64,
        result: u64,
    ) -> Event {
        let mut fields = [0; FIELD_COUNT];
        fields[Field::Address as usize] = address;
        fields[Field::VmStart as usize] = vm_start;
        fields[Field::VmEnd as usize] = vm_end;
        fields[Field::Pgoff as usize] = pgoff;
        fields[Field::VmFlags as usize] = vm_flags;
        fields[Field::MaxPgoff as usize] = max_pgoff;
        fields[Field::Result as usize] = result;
        fields[Field::Ino as usize] = 131;
        fields[Field::Dev as usize] = 259 << 20;
        event(kind, tid, fields)
    }

    /// A `dax_pmd_fault_done` with FALLBACK; `pgoff` is the page offset of
    /// `vm_start`'s page plus the distance to `address`, as the kernel has it.
    pub fn pmd_done(
        address: u64,
        vm_start: u64,
        vm_end: u64,
        vm_pgoff: u64,
        vm_flags: u64,
        max_pgoff: u64,
    ) -> Event {
        let pgoff = vm_pgoff + ((address - vm_start) >> 12);
        fault(Kind::PmdFaultDone, 1, address, vm_start, vm_end, pgoff, vm_flags, max_pgoff, 0x800)
    }
}
