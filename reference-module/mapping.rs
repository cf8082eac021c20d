// SPDX-License-Identifier: GPL-2.0

//! The entry array of the device and its locking: fs/dax.c's
//! `grab_mapping_entry`, `dax_lock_entry`, `dax_insert_entry`,
//! `dax_unlock_entry`, `dax_wake_entry` and `__dax_invalidate_entry`, in Rust.
//!
//! Entries live in an XArray at their first index (a PMD entry at its 2 MiB
//! aligned index). Its lock is the entry lock's guard, as the XArray lock is
//! in fs/dax.c: an entry's LOCKED flag changes only under it, and a waiter
//! queues before dropping it. Every change is reported through
//! `trace::entry_event`, at the point fs/dax.c's hooked function runs.

use kernel::{
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
    xarray::{self, XArray},
};

use crate::{
    bugs::Bug,
    entry::{Entry, PMD_COLOUR, PMD_PAGES},
    trace::{self, Kind},
    wait::{WaitKey, WaitTable, WakeMode},
};

/// Why `grab` gave no entry.
pub(crate) enum GrabError {
    /// PTE entries sit in the PMD range: the fault falls back.
    Conflict,
    /// No memory for the entry.
    NoMemory,
    /// With a bug injected: the entry stayed locked through every timeout.
    Stuck,
}

/// A locked entry, as `grab` hands it to a fault.
#[derive(Clone, Copy)]
pub(crate) struct Locked {
    pub(crate) start: usize,
    pub(crate) entry: Entry,
}

/// What the array holds at an index.
enum Found {
    Nothing,
    /// A PTE entry in the range of a PMD request.
    Conflict,
    At(usize, Entry),
}

#[pin_data(PinnedDrop)]
pub(crate) struct Mapping {
    #[pin]
    entries: XArray<KBox<Entry>>,
    waits: WaitTable,
    bug: Bug,
    hold_us: u32,
    /// Stores that found no memory under the lock and were retried.
    nomem_retries: Atomic<u64>,
}

#[pinned_drop]
impl PinnedDrop for Mapping {
    fn drop(self: Pin<&mut Self>) {
        let retries = self.nomem_retries.load(Relaxed);
        if retries > 0 {
            pr_info!(
                "daxref: {retries} entry stores found no memory and were retried (xas_nomem)\n"
            );
        }
    }
}

type Guard<'a> = xarray::Guard<'a, KBox<Entry>>;

impl Mapping {
    pub(crate) fn new(waits: WaitTable, bug: Bug, hold_us: u32) -> impl PinInit<Mapping> {
        pin_init!(Mapping {
            entries <- XArray::new(xarray::AllocKind::Alloc),
            waits,
            bug,
            hold_us,
            nomem_retries: Atomic::new(0),
        })
    }

    /// Holds a locked entry a while, as a slow device or file system would
    /// (`hold_us`); only ever called with no spinlock held.
    pub(crate) fn hold(&self) {
        if self.hold_us > 0 {
            kernel::time::delay::fsleep(kernel::time::Delta::from_micros(i64::from(self.hold_us)));
        }
    }

    /// The mapping's identity in events (fs/dax.c uses `&mapping->i_pages`).
    pub(crate) fn id(&self) -> usize {
        core::ptr::from_ref(&self.entries) as usize
    }

    pub(crate) fn bug(&self) -> Bug {
        self.bug
    }

    /// A fallback-path event of a fault at `index` (no entry involved).
    pub(crate) fn event_at(&self, kind: Kind, index: usize) {
        trace::entry_event(kind, self.id(), index, 0, 0, 0, 0);
    }

    fn event(&self, kind: Kind, index: usize, entry: Entry, old: u64, mode: u64, key: usize) {
        trace::entry_event(kind, self.id(), index, entry.as_xa_value(), old, mode, key);
    }

    /// The entry covering `index` (PTE request) or any entry in its 2 MiB
    /// range (PMD request); a smaller entry there is a conflict.
    fn find(&self, xa: &Guard<'_>, index: usize, pmd: bool) -> Found {
        let pmd_start = index & !PMD_COLOUR;
        if let Some(entry) = xa.get(pmd_start).filter(|e| e.is_pmd()) {
            return Found::At(pmd_start, *entry);
        }
        if pmd {
            let ptes_here = (pmd_start..pmd_start + PMD_PAGES).any(|i| xa.get(i).is_some());
            if ptes_here && !self.bug.is(Bug::PmdOverPtes) {
                return Found::Conflict;
            }
            return Found::Nothing;
        }
        match xa.get(index) {
            Some(entry) => Found::At(index, *entry),
            None => Found::Nothing,
        }
    }

    /// Locks the entry found unlocked at `start` in place and reports it:
    /// fs/dax.c's `dax_lock_entry` over an entry. Called with the array
    /// locked; storing over an entry needs no memory.
    fn relock(&self, xa: &mut Guard<'_>, index: usize, start: usize, entry: Entry) {
        if let Some(slot) = xa.get_mut(start) {
            *slot = entry.locked();
        }
        self.event(
            Kind::EntryLock,
            index,
            entry.locked(),
            entry.as_xa_value(),
            0,
            0,
        );
    }

    /// Stores `new` (locked) into the empty slot at `start` and reports it:
    /// fs/dax.c's `dax_lock_entry` of a new entry.
    ///
    /// Called with the array locked, which it never drops: the XArray nodes
    /// a new slot needs are allocated without sleeping. When that fails
    /// nothing is stored and nothing is reported (fs/dax.c's `xas_store`
    /// fails the same way, and its `dax_lock_entry` returns before its
    /// tracepoint).
    fn lock_new(
        &self,
        xa: &mut Guard<'_>,
        index: usize,
        start: usize,
        new: Entry,
        slot: KBox<Entry>,
    ) -> Result {
        let new = new.locked();
        let mut slot = slot;
        *slot = new;
        xa.store(start, slot, GFP_NOWAIT).map_err(|_| ENOMEM)?;
        self.event(Kind::EntryLock, index, new, 0, 0, 0);
        Ok(())
    }

    /// Locks the entry for `index`, waiting while another task holds it;
    /// creates an empty locked one if there is none: `grab_mapping_entry`.
    ///
    /// Takes and drops the array's lock; may sleep. A store that finds no
    /// memory under the lock is retried as fs/dax.c retries it: the slot is
    /// reserved with an allocation that may sleep (and drop the lock: its
    /// `xas_nomem`), and the lookup starts again, for the range may have
    /// changed meanwhile. A reservation that the new lookup does not use is
    /// given back at once.
    pub(crate) fn grab(&self, index: usize, pmd: bool) -> Result<Locked, GrabError> {
        let fresh = Entry::empty(pmd);
        let start = if pmd { index & !PMD_COLOUR } else { index };
        let mut timeouts = 0;
        let mut reserved = false;
        loop {
            let slot = KBox::new(fresh, GFP_KERNEL).map_err(|_| GrabError::NoMemory)?;
            let mut xa = self.entries.lock();
            let found = self.find(&xa, index, pmd);
            if reserved && !matches!(found, Found::Nothing) {
                xa.release(start);
                reserved = false;
            }
            match found {
                Found::Conflict => return Err(GrabError::Conflict),
                Found::At(found, entry) if entry.is_locked() => {
                    if !self.wait(xa, index, found, entry) {
                        timeouts += 1;
                        if timeouts == Bug::WAIT_TIMEOUTS {
                            return Err(GrabError::Stuck);
                        }
                    }
                    continue;
                }
                Found::At(found, entry) if !pmd && entry.is_downgradable() => {
                    // An empty or zero-page PMD entry gives way to PTE entries:
                    // lock it, delete it, wake all its waiters, then create
                    // the PTE entry under the same lock.
                    self.relock(&mut xa, index, found, entry);
                    drop(xa.remove(found));
                    self.wake(index, entry, WakeMode::All);
                }
                Found::At(found, entry) => {
                    self.relock(&mut xa, index, found, entry);
                    return Ok(Locked {
                        start: found,
                        entry: entry.locked(),
                    });
                }
                Found::Nothing => {}
            }
            if self.lock_new(&mut xa, index, start, fresh, slot).is_ok() {
                return Ok(Locked {
                    start,
                    entry: fresh.locked(),
                });
            }
            // fs/dax.c: `xas_unlock_irq`, then `xas_nomem` with the mapping's
            // gfp mask, and `goto retry` while it allocated; out of memory
            // even so, the fault fails (`VM_FAULT_OOM`).
            self.nomem_retries.add(1, Relaxed);
            xa.reserve(start, GFP_KERNEL)
                .map_err(|_| GrabError::NoMemory)?;
            reserved = true;
        }
    }

    /// Queues on the entry's wait queue and sleeps until it is unlocked:
    /// the loop of `get_next_unlocked_entry`.
    fn wait(&self, xa: Guard<'_>, index: usize, start: usize, entry: Entry) -> bool {
        // The wait key is the entry's start, so that every index of a PMD
        // entry shares one queue; the injected bug uses the raw index.
        let entry_start = if self.bug.is(Bug::PmdRawIndexHash) {
            index
        } else {
            start
        };
        let key = WaitKey {
            mapping: self.id(),
            entry_start,
        };
        self.event(Kind::EntryWait, index, entry, 0, 0, entry_start);
        let woken = self
            .waits
            .wait(key, move || drop(xa), self.bug.wait_timeout());
        self.event(Kind::EntryWoken, index, entry, 0, 0, entry_start);
        woken
    }

    /// Wakes the waiters of the entry at `index`: `dax_wake_entry`.
    fn wake(&self, index: usize, entry: Entry, mode: WakeMode) {
        let start = entry.start(index);
        self.event(Kind::EntryWake, index, entry, 0, mode as u64, start);
        self.waits.wake(
            WaitKey {
                mapping: self.id(),
                entry_start: start,
            },
            mode,
        );
    }

    /// Replaces the entry a fault holds with the one that maps `pfn`,
    /// still locked: `dax_insert_entry`.
    pub(crate) fn insert(&self, index: usize, locked: Locked, pfn: usize) -> Locked {
        let flags = if locked.entry.is_pmd() {
            crate::entry::PMD
        } else {
            0
        };
        let new = Entry::new(pfn, flags).locked();
        let mut xa = self.entries.lock();
        if let Some(entry) = xa.get_mut(locked.start) {
            *entry = new;
        }
        self.event(
            Kind::EntryLock,
            index,
            new,
            locked.entry.as_xa_value(),
            0,
            0,
        );
        drop(xa);
        Locked {
            start: locked.start,
            entry: new,
        }
    }

    /// Unlocks a fault's entry and wakes the next waiter: `dax_unlock_entry`.
    pub(crate) fn unlock(&self, index: usize, locked: Locked) {
        self.release(index, locked);
        if self.bug.is(Bug::DoubleRelease) {
            self.release(index, locked);
        }
    }

    fn release(&self, index: usize, locked: Locked) {
        let entry = locked.entry.unlocked();
        self.event(Kind::EntryUnlock, index, entry, 0, 0, 0);
        let mut xa = self.entries.lock();
        if let Some(slot) = xa.get_mut(locked.start) {
            *slot = entry;
        }
        drop(xa);
        if !self.bug.is(Bug::SkipWakeOnUnlock) {
            self.wake(index, entry, WakeMode::Next);
        }
    }

    /// Deletes the entry covering `index` once nobody holds it, and wakes
    /// everybody who waited for it: a punch hole, `__dax_invalidate_entry`.
    /// Like fs/dax.c it never locks the entry: it waits while a fault holds
    /// it, then, under the array's lock, removes it and wakes all (a delete
    /// by the entry's own holder is only ever a downgrade, which the
    /// checker holds to). `unmap` runs after: a fault between the delete
    /// and the unmap makes a new entry for the same pfn, whose mapping the
    /// unmap then drops, so the next access faults again. (fs/dax.c has
    /// the file system's invalidate lock to keep faults out instead.)
    pub(crate) fn delete(&self, index: usize, unmap: impl FnOnce(usize, usize)) {
        let mut timeouts = 0;
        loop {
            let mut xa = self.entries.lock();
            let Found::At(start, entry) = self.find(&xa, index, false) else {
                return;
            };
            if entry.is_locked() {
                if !self.wait(xa, index, start, entry) {
                    timeouts += 1;
                    if timeouts == Bug::WAIT_TIMEOUTS {
                        return;
                    }
                }
                continue;
            }
            let mode = if self.bug.is(Bug::WakeOneOnDelete) {
                WakeMode::Next
            } else {
                WakeMode::All
            };
            drop(xa.remove(start));
            // Still under the array's lock, as fs/dax.c wakes after a
            // delete: a fault that then finds the slot empty comes after
            // this wake-up.
            self.wake(index, entry, mode);
            drop(xa);
            unmap(start, if entry.is_pmd() { PMD_PAGES } else { 1 });
            return;
        }
    }
}
