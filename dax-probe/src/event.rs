//! Events as dax-probe reads them: typed, decoded where they enter.
//!
//! The eBPF programs, the reference module and trace files carry one wire
//! form, [`Record`]: a kind and fifteen words whose meaning depends on the
//! kind (tracepoint fields by [`Field`], hook arguments by [`Arg`]). Every
//! source decodes a record once, with [`Event::decode`], into an [`Event`]
//! whose [`What`] names each value, so no reader can take a hook's argument
//! for a tracepoint's field. [`Event::encode`] is the inverse, for the trace
//! writer.

use std::fmt;

use dax_probe_common::{Arg, Field, Kind, Record, FIELD_COUNT};

use crate::kernel::entry;

/// One tracepoint or hook hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_MONOTONIC nanoseconds.
    pub time_ns: u64,
    /// Process id.
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    pub cpu: u32,
    pub comm: Comm,
    pub what: What,
}

/// What happened, by kind, with the values that kind carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    PmdFault(Fault),
    PmdFaultDone(Fault),
    PmdLoadHole(Hole),
    PmdLoadHoleFallback(Hole),
    PteFault(Fault),
    PteFaultDone(Fault),
    LoadHole(Fault),
    InsertPfnMkwriteNoEntry(Fault),
    InsertPfnMkwrite(Fault),
    WritebackRange(Writeback),
    WritebackRangeDone(Writeback),
    WritebackOne(Writeback),
    /// A locked entry was stored at `at` over `old`: unlocked, a lock taken;
    /// not a value, a new entry; locked, replaced by its holder.
    EntryLock {
        at: At,
        old: Entry,
        new: Entry,
    },
    /// The holder stores the entry back unlocked.
    EntryUnlock {
        at: At,
        entry: Entry,
    },
    /// Waiters of the entry at `at` are woken: one, or all.
    EntryWake {
        at: At,
        entry: Entry,
        mode: WakeMode,
    },
    /// A task queues itself on the wait queue of `key` (as the kernel hashed
    /// it), waiting for `entry`, which it found locked at `at`.
    EntryWait {
        key: Key,
        at: At,
        entry: Entry,
    },
    /// A task that waited on `key` runs again.
    EntryWoken {
        key: Key,
    },
    /// `grab_mapping_entry` gave up: a smaller entry sits in the PMD range.
    GrabFallback {
        at: At,
    },
    /// `dax_iomap_direct_access` failed for `size` bytes at file position `pos`.
    DirectAccessFailed {
        pos: u64,
        size: u64,
        ret: i64,
    },
    /// A PMD fault reached `dax_fault_iter`: its extent was 2 MiB.
    PmdFaultIter {
        at: At,
    },
    /// The page cache of `mapping` was truncated over bytes `first..=last`
    /// (`truncate_inode_pages_range`, returned).
    Truncated(Truncation),
}

/// A truncated byte range of one mapping, as `truncate_inode_pages_range`
/// takes it: `last` inclusive, `u64::MAX` (`-1`) to the end of the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Truncation {
    pub mapping: u64,
    pub first: u64,
    pub last: u64,
}

impl Truncation {
    /// The pages wholly inside the range, `start..end`, as mm/truncate.c
    /// rounds them: partial pages at either end are zeroed, not removed.
    pub fn pages(self) -> (u64, u64) {
        use crate::kernel::PAGE_SHIFT;
        let start = self.first.div_ceil(1 << PAGE_SHIFT);
        let end = if self.last == u64::MAX { u64::MAX } else { (self.last + 1) >> PAGE_SHIFT };
        (start, end.max(start))
    }
}

/// A file as the tracepoints name it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct File {
    /// `dev_t` ([`crate::kernel::device_text`] prints it).
    pub dev: u64,
    pub ino: u64,
}

/// The fields of the fault tracepoints (`dax_pmd_fault*`, `dax_pte_fault*`,
/// `dax_load_hole`, `dax_insert_pfn_mkwrite*`); the PTE-sized ones have no
/// VMA bounds or `max_pgoff` and leave them 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fault {
    pub file: File,
    pub vm_start: u64,
    pub vm_end: u64,
    pub vm_flags: u64,
    pub address: u64,
    pub pgoff: u64,
    pub max_pgoff: u64,
    /// `FAULT_FLAG_*`.
    pub flags: u64,
    /// `VM_FAULT_*`; 0 in the start events.
    pub result: u64,
}

/// The fields of `dax_pmd_load_hole(_fallback)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hole {
    pub file: File,
    pub vm_flags: u64,
    pub address: u64,
    pub zero_page: u64,
    pub radix_entry: u64,
}

/// The fields of the writeback tracepoints: a range (`start_index` to
/// `end_index`) or one entry (`pgoff`, `pglen` pages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Writeback {
    pub file: File,
    pub start_index: u64,
    pub end_index: u64,
    pub pgoff: u64,
    pub pglen: u64,
}

/// Where in which mapping an entry operation happened: the `struct xarray *`
/// of the mapping and `xas->xa_index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct At {
    pub mapping: u64,
    pub index: u64,
}

impl At {
    /// The key of `entry` found at this index: (mapping, the entry's start),
    /// as `dax_entry_waitqueue` hashes it.
    pub fn key(self, entry: Entry) -> Key {
        Key { mapping: self.mapping, start: entry.start(self.index) }
    }
}

/// `enum dax_wake_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WakeMode {
    All,
    Next,
}

/// A command name, as the kernel keeps it (16 bytes, NUL padded).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Comm(pub [u8; 16]);

impl Comm {
    /// The first 15 bytes of `name`.
    pub fn new(name: &str) -> Comm {
        let mut bytes = [0; 16];
        bytes.iter_mut().zip(name.bytes().take(15)).for_each(|(to, from)| *to = from);
        Comm(bytes)
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        f.write_str(&String::from_utf8_lossy(&self.0[..end]))
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

/// A record whose kind this dax-probe does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKind(pub u32);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown event kind {}", self.0)
    }
}

impl std::error::Error for UnknownKind {}

impl Event {
    /// Decodes the wire record.
    pub fn decode(record: &Record) -> Result<Event, UnknownKind> {
        let kind = Kind::from_u32(record.kind).ok_or(UnknownKind(record.kind))?;
        let w = &record.fields;
        let field = |field: Field| w[field as usize];
        let arg = |arg: Arg| w[arg as usize];
        let file = File { dev: field(Field::Dev), ino: field(Field::Ino) };
        let fault = || Fault {
            file,
            vm_start: field(Field::VmStart),
            vm_end: field(Field::VmEnd),
            vm_flags: field(Field::VmFlags),
            address: field(Field::Address),
            pgoff: field(Field::Pgoff),
            max_pgoff: field(Field::MaxPgoff),
            flags: field(Field::FaultFlags),
            result: field(Field::Result),
        };
        let hole = || Hole {
            file,
            vm_flags: field(Field::VmFlags),
            address: field(Field::Address),
            zero_page: field(Field::ZeroPage),
            radix_entry: field(Field::RadixEntry),
        };
        let writeback = || Writeback {
            file,
            start_index: field(Field::StartIndex),
            end_index: field(Field::EndIndex),
            pgoff: field(Field::Pgoff),
            pglen: field(Field::Pglen),
        };
        let at = At { mapping: arg(Arg::Mapping), index: arg(Arg::Index) };
        let what = match kind {
            Kind::PmdFault => What::PmdFault(fault()),
            Kind::PmdFaultDone => What::PmdFaultDone(fault()),
            Kind::PmdLoadHole => What::PmdLoadHole(hole()),
            Kind::PmdLoadHoleFallback => What::PmdLoadHoleFallback(hole()),
            Kind::PteFault => What::PteFault(fault()),
            Kind::PteFaultDone => What::PteFaultDone(fault()),
            Kind::LoadHole => What::LoadHole(fault()),
            Kind::InsertPfnMkwriteNoEntry => What::InsertPfnMkwriteNoEntry(fault()),
            Kind::InsertPfnMkwrite => What::InsertPfnMkwrite(fault()),
            Kind::WritebackRange => What::WritebackRange(writeback()),
            Kind::WritebackRangeDone => What::WritebackRangeDone(writeback()),
            Kind::WritebackOne => What::WritebackOne(writeback()),
            Kind::EntryLock => {
                What::EntryLock { at, old: Entry(arg(Arg::OldEntry)), new: Entry(arg(Arg::Entry)) }
            }
            Kind::EntryUnlock => What::EntryUnlock { at, entry: Entry(arg(Arg::Entry)) },
            Kind::EntryWake => What::EntryWake {
                at,
                entry: Entry(arg(Arg::Entry)),
                mode: if arg(Arg::Mode) == 0 { WakeMode::All } else { WakeMode::Next },
            },
            Kind::EntryWait => What::EntryWait {
                key: Key { mapping: at.mapping, start: arg(Arg::KeyStart) },
                at,
                entry: Entry(arg(Arg::Entry)),
            },
            Kind::EntryWoken => {
                What::EntryWoken { key: Key { mapping: at.mapping, start: arg(Arg::KeyStart) } }
            }
            Kind::GrabFallback => What::GrabFallback { at },
            Kind::DirectAccessFailed => What::DirectAccessFailed {
                pos: arg(Arg::Pos),
                size: arg(Arg::Size),
                ret: arg(Arg::Ret) as i64,
            },
            Kind::PmdFaultIter => What::PmdFaultIter { at },
            Kind::Truncated => What::Truncated(Truncation {
                mapping: at.mapping,
                first: arg(Arg::Pos),
                last: arg(Arg::LastPos),
            }),
        };
        Ok(Event {
            time_ns: record.time_ns,
            tgid: record.tgid,
            tid: record.tid,
            cpu: record.cpu,
            comm: Comm(record.comm),
            what,
        })
    }

    /// The wire record of this event ([`Event::decode`]'s inverse).
    pub fn encode(&self) -> Record {
        let mut w = [0u64; FIELD_COUNT];
        let mut field = |field: Field, value: u64| w[field as usize] = value;
        match self.what {
            What::PmdFault(f)
            | What::PmdFaultDone(f)
            | What::PteFault(f)
            | What::PteFaultDone(f)
            | What::LoadHole(f)
            | What::InsertPfnMkwriteNoEntry(f)
            | What::InsertPfnMkwrite(f) => {
                field(Field::Dev, f.file.dev);
                field(Field::Ino, f.file.ino);
                field(Field::VmStart, f.vm_start);
                field(Field::VmEnd, f.vm_end);
                field(Field::VmFlags, f.vm_flags);
                field(Field::Address, f.address);
                field(Field::Pgoff, f.pgoff);
                field(Field::MaxPgoff, f.max_pgoff);
                field(Field::FaultFlags, f.flags);
                field(Field::Result, f.result);
            }
            What::PmdLoadHole(h) | What::PmdLoadHoleFallback(h) => {
                field(Field::Dev, h.file.dev);
                field(Field::Ino, h.file.ino);
                field(Field::VmFlags, h.vm_flags);
                field(Field::Address, h.address);
                field(Field::ZeroPage, h.zero_page);
                field(Field::RadixEntry, h.radix_entry);
            }
            What::WritebackRange(b) | What::WritebackRangeDone(b) | What::WritebackOne(b) => {
                field(Field::Dev, b.file.dev);
                field(Field::Ino, b.file.ino);
                field(Field::StartIndex, b.start_index);
                field(Field::EndIndex, b.end_index);
                field(Field::Pgoff, b.pgoff);
                field(Field::Pglen, b.pglen);
            }
            _ => self.encode_hook_args(&mut w),
        }
        Record {
            time_ns: self.time_ns,
            tgid: self.tgid,
            tid: self.tid,
            kind: self.what.kind() as u32,
            cpu: self.cpu,
            comm: self.comm.0,
            fields: w,
        }
    }

    fn encode_hook_args(&self, w: &mut [u64; FIELD_COUNT]) {
        let mut arg = |arg: Arg, value: u64| w[arg as usize] = value;
        let mut at = |at: At| {
            arg(Arg::Mapping, at.mapping);
            arg(Arg::Index, at.index);
        };
        match self.what {
            What::EntryLock { at: a, old, new } => {
                at(a);
                arg(Arg::OldEntry, old.0);
                arg(Arg::Entry, new.0);
            }
            What::EntryUnlock { at: a, entry } => {
                at(a);
                arg(Arg::Entry, entry.0);
            }
            What::EntryWake { at: a, entry, mode } => {
                at(a);
                arg(Arg::Entry, entry.0);
                arg(Arg::Mode, u64::from(mode == WakeMode::Next));
            }
            What::EntryWait { key, at: a, entry } => {
                at(a);
                arg(Arg::KeyStart, key.start);
                arg(Arg::Entry, entry.0);
            }
            What::EntryWoken { key } => {
                arg(Arg::Mapping, key.mapping);
                arg(Arg::KeyStart, key.start);
            }
            What::GrabFallback { at: a } | What::PmdFaultIter { at: a } => at(a),
            What::Truncated(truncation) => {
                arg(Arg::Mapping, truncation.mapping);
                arg(Arg::Pos, truncation.first);
                arg(Arg::LastPos, truncation.last);
            }
            What::DirectAccessFailed { pos, size, ret } => {
                arg(Arg::Pos, pos);
                arg(Arg::Size, size);
                arg(Arg::Ret, ret as u64);
            }
            _ => unreachable!("tracepoints are encoded by field"),
        }
    }

    pub fn kind(&self) -> Kind {
        self.what.kind()
    }

    /// The fault fields, for the fault tracepoints.
    pub fn fault(&self) -> Option<&Fault> {
        match &self.what {
            What::PmdFault(f)
            | What::PmdFaultDone(f)
            | What::PteFault(f)
            | What::PteFaultDone(f)
            | What::LoadHole(f)
            | What::InsertPfnMkwriteNoEntry(f)
            | What::InsertPfnMkwrite(f) => Some(f),
            _ => None,
        }
    }
}

impl What {
    pub fn kind(&self) -> Kind {
        match self {
            What::PmdFault(_) => Kind::PmdFault,
            What::PmdFaultDone(_) => Kind::PmdFaultDone,
            What::PmdLoadHole(_) => Kind::PmdLoadHole,
            What::PmdLoadHoleFallback(_) => Kind::PmdLoadHoleFallback,
            What::PteFault(_) => Kind::PteFault,
            What::PteFaultDone(_) => Kind::PteFaultDone,
            What::LoadHole(_) => Kind::LoadHole,
            What::InsertPfnMkwriteNoEntry(_) => Kind::InsertPfnMkwriteNoEntry,
            What::InsertPfnMkwrite(_) => Kind::InsertPfnMkwrite,
            What::WritebackRange(_) => Kind::WritebackRange,
            What::WritebackRangeDone(_) => Kind::WritebackRangeDone,
            What::WritebackOne(_) => Kind::WritebackOne,
            What::EntryLock { .. } => Kind::EntryLock,
            What::EntryUnlock { .. } => Kind::EntryUnlock,
            What::EntryWake { .. } => Kind::EntryWake,
            What::EntryWait { .. } => Kind::EntryWait,
            What::EntryWoken { .. } => Kind::EntryWoken,
            What::GrabFallback { .. } => Kind::GrabFallback,
            What::DirectAccessFailed { .. } => Kind::DirectAccessFailed,
            What::PmdFaultIter { .. } => Kind::PmdFaultIter,
            What::Truncated(_) => Kind::Truncated,
        }
    }
}

/// A DAX entry as the XArray holds it (a value entry, flags from bit 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Entry(pub u64);

impl Entry {
    /// A DAX entry at all (not NULL, not an internal or pointer entry).
    pub fn is_value(self) -> bool {
        self.0 & 1 == 1
    }

    pub fn is_locked(self) -> bool {
        self.is_value() && self.0 & entry::LOCKED != 0
    }

    pub fn is_pmd(self) -> bool {
        self.0 & entry::PMD != 0
    }

    /// A hole read through the (huge) zero page.
    pub fn is_zero_page(self) -> bool {
        self.0 & entry::ZERO_PAGE != 0
    }

    /// Locked by a fault before it knew what it would map.
    pub fn is_empty(self) -> bool {
        self.0 & entry::EMPTY != 0
    }

    /// The pages it covers.
    pub fn pages(self) -> u64 {
        if self.is_pmd() {
            crate::kernel::PMD_PAGES
        } else {
            1
        }
    }

    /// The first page offset the entry covers, for an index inside it.
    pub fn start(self, index: u64) -> u64 {
        if self.is_pmd() {
            crate::kernel::pmd_start(index)
        } else {
            index
        }
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
        write!(f, "{}", if self.is_pmd() { "pmd" } else { "pte" })?;
        let flags = [(entry::LOCKED, "locked"), (entry::ZERO_PAGE, "zero"), (entry::EMPTY, "empty")];
        for (bit, name) in flags {
            if self.0 & bit != 0 {
                write!(f, "|{name}")?;
            }
        }
        Ok(())
    }
}

/// One DAX entry's identity: (mapping, first page offset), the wait key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub mapping: u64,
    pub start: u64,
}

impl Key {
    /// The key of the PMD-sized range holding this one.
    pub fn pmd_range(self) -> Key {
        Key { mapping: self.mapping, start: crate::kernel::pmd_start(self.start) }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mapping {:#x} index {}", self.mapping, self.start)
    }
}

impl fmt::Display for Event {
    /// "TIME EVENT pid TGID/TID (COMM)": how a violation names its events.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09} {} pid {}/{} ({})",
            self.time_ns / 1_000_000_000,
            self.time_ns % 1_000_000_000,
            self.kind().name(),
            self.tgid,
            self.tid,
            self.comm
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_record() {
        for kind in Kind::ALL {
            let mut record = Record {
                time_ns: 5,
                tgid: 1,
                tid: 2,
                kind: kind as u32,
                cpu: 1,
                comm: *b"fio\0\0\0\0\0\0\0\0\0\0\0\0\0",
                fields: [0; FIELD_COUNT],
            };
            // Every word the kind uses gets a distinct value, the rest stay 0.
            let probe = Event::decode(&Record { fields: [u64::MAX; FIELD_COUNT], ..record }).unwrap();
            let used = probe.encode().fields;
            for (i, word) in record.fields.iter_mut().enumerate() {
                if used[i] != 0 {
                    // The wake mode is a choice of two: WAKE_ALL 0, WAKE_NEXT 1.
                    let mode = kind == Kind::EntryWake && i == Arg::Mode as usize;
                    *word = if mode { 1 } else { 100 + i as u64 };
                }
            }
            let event = Event::decode(&record).unwrap();
            assert_eq!(event.kind(), kind);
            assert_eq!(event.encode(), record, "{kind:?}");
        }
        let bad =
            Record { kind: 99, time_ns: 0, tgid: 0, tid: 0, cpu: 0, comm: [0; 16], fields: [0; FIELD_COUNT] };
        assert_eq!(Event::decode(&bad), Err(UnknownKind(99)));
    }

    #[test]
    fn entries_know_their_range() {
        let pmd = Entry((7 << 5) | entry::PMD | 1);
        assert_eq!(pmd.start(515), 512);
        assert_eq!(Entry((7 << 5) | 1).start(515), 515);
        assert_eq!(format!("{}", Entry(pmd.0 | entry::LOCKED)), "pmd|locked");
    }
}
