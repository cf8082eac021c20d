//! Builders of synthetic events, for unit tests and the checker benchmark
//! (the `testing` feature; not part of the library's API otherwise).
//! Synthetic streams test the analysis on top of the lab's real traces,
//! never instead of them.

use crate::{
    event::{At, Comm, Entry, Event, Fault, File, Key, Truncation, WakeMode, What},
    kernel::{entry, mkdev, PAGE_SHIFT, VM_SHARED},
};

/// The mapping every synthetic entry event names.
pub const XA: u64 = 0xffff_8880_0100_0000;
/// `VM_SHARED | VM_READ | VM_WRITE`.
pub const VM_SHARED_RW: u64 = VM_SHARED | 0x3;
/// The file every synthetic fault names.
pub const FILE: File = File { dev: mkdev(259, 0), ino: 131 };

/// An event of thread `tid` (its own process), at time 0.
pub fn event(tid: u32, what: What) -> Event {
    Event { time_ns: 0, tgid: tid, tid, cpu: 0, comm: Comm::new("test"), what }
}

/// A mapping of [`FILE`]: where it starts and ends, the file page at its
/// start, its flags and the file's size in pages.
#[derive(Clone, Copy, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
    pub flags: u64,
    pub max_pgoff: u64,
}

impl Vma {
    /// A shared, writable mapping of a file of `max_pgoff` pages from its start.
    pub fn shared(start: u64, end: u64, max_pgoff: u64) -> Vma {
        Vma { start, end, pgoff: 0, flags: VM_SHARED_RW, max_pgoff }
    }

    /// The fault fields of a fault at `address`: the file page is the
    /// mapping's first plus the distance, as the kernel computes it.
    pub fn fault(&self, address: u64) -> Fault {
        Fault {
            file: FILE,
            vm_start: self.start,
            vm_end: self.end,
            vm_flags: self.flags,
            address,
            pgoff: self.pgoff + ((address - self.start) >> PAGE_SHIFT),
            max_pgoff: self.max_pgoff,
            flags: 0,
            result: 0,
        }
    }

    /// The fault fields of a fault at `address` that ended with `result`.
    pub fn done(&self, address: u64, result: u64) -> Fault {
        Fault { result, ..self.fault(address) }
    }
}

/// The fields of a `dax_pmd_fault_done` with FALLBACK at `address` of `vma`.
pub fn pmd_done(vma: Vma, address: u64) -> Fault {
    vma.done(address, crate::kernel::VM_FAULT_FALLBACK)
}

/// A DAX value entry: `pmd` picks the order, `locked` the lock bit.
pub fn dax_entry(pfn: u64, pmd: bool, locked: bool) -> Entry {
    let mut bits = (pfn << 5) | 1;
    if pmd {
        bits |= entry::PMD;
    }
    if locked {
        bits |= entry::LOCKED;
    }
    Entry(bits)
}

fn at(index: u64) -> At {
    At { mapping: XA, index }
}

/// `dax_lock_entry` storing `new` (locked) over `old`.
pub fn lock(tid: u32, index: u64, old: Entry, new: Entry) -> Event {
    event(tid, What::EntryLock { at: at(index), old, new: Entry(new.0 | entry::LOCKED) })
}

/// `dax_unlock_entry` storing `entry` back unlocked.
pub fn unlock(tid: u32, index: u64, entry: Entry) -> Event {
    event(tid, What::EntryUnlock { at: at(index), entry: entry.unlocked() })
}

pub fn wake(tid: u32, index: u64, entry: Entry, mode: WakeMode) -> Event {
    event(tid, What::EntryWake { at: at(index), entry, mode })
}

/// A waiter on the queue of `key_start`, for `entry` found locked at `index`.
pub fn wait(tid: u32, key_start: u64, index: u64, entry: Entry) -> Event {
    event(tid, What::EntryWait { key: Key { mapping: XA, start: key_start }, at: at(index), entry })
}

pub fn woken(tid: u32, key_start: u64) -> Event {
    event(tid, What::EntryWoken { key: Key { mapping: XA, start: key_start } })
}

pub fn grab_fallback(tid: u32, index: u64) -> Event {
    event(tid, What::GrabFallback { at: at(index) })
}

pub fn pmd_fault_iter(tid: u32, index: u64) -> Event {
    event(tid, What::PmdFaultIter { at: at(index) })
}

/// `truncate_inode_pages_range` of bytes `first..=last` returned.
pub fn truncated(tid: u32, first: u64, last: u64) -> Event {
    event(tid, What::Truncated(Truncation { mapping: XA, first, last }))
}
