//! The entry tracker: who holds which DAX entry, who waits for it, and
//! whether the locking protocol of fs/dax.c held.
//!
//! The kernel's contract (fs/dax.c, since 4.x; the XArray since 4.20):
//! - An entry is locked by storing it with `DAX_LOCKED` under the mapping's
//!   `xa_lock` (`dax_lock_entry`), and only when it was found unlocked; the
//!   holder stores it again to replace it (`dax_insert_entry`) and unlocks
//!   it by storing it without the bit (`dax_unlock_entry`), then wakes the
//!   next waiter (`WAKE_NEXT`). A delete stores NULL and wakes every waiter
//!   (`WAKE_ALL`).
//! - A waiter hashes its queue on (mapping, the entry's first index), the
//!   index aligned down to 2 MiB for a PMD entry (`dax_entry_waitqueue`),
//!   the same key its waker hashes.
//! - A PMD entry covers its 2 MiB: `grab_mapping_entry` never makes one over
//!   present PTE entries (it falls back), nor a PTE entry inside a present
//!   PMD entry (it downgrades an empty or zero-page PMD entry first: locks
//!   it, deletes it with a WAKE_ALL, then inserts the PTE entry). That
//!   downgrade is the only delete by the entry's own holder.
//! - Writeback (`dax_writeback_one`) locks a dirty entry, flushes it,
//!   stores it back unlocked with a WAKE_NEXT, and only then traces
//!   `dax_writeback_one(index, count)`: `count = 1 << dax_entry_order(entry)`
//!   pages from `index = xas->xa_index & ~(count - 1)`, so that "we can
//!   flush for PMD_SIZE and not have to worry about partial PMD
//!   writebacks" (its comment). The entry its thread released last is the
//!   one written back.
//! - Truncate and hole punch remove a range's entries while the file system
//!   holds the file's invalidate lock, which every fault takes too, so no
//!   entry is made in the range meanwhile. In 7.2 both XFS and ext4 first
//!   break the layout of the whole file (`dax_break_layout`: every entry
//!   deleted once unlocked, each with a WAKE_ALL); before 7.2 the truncate
//!   itself deletes the range's (`dax_delete_mapping_entry`, the same
//!   WAKE_ALL). Either way, when `truncate_inode_pages_range` returns, no
//!   entry wholly inside its pages is left: it deletes any the layout break
//!   missed, with a warning, "so truncate_pagecache() doesn't loop
//!   forever" (mm/truncate.c). A PMD entry reaching past the range may stay
//!   (7.2's `find_lock_entries` skips it).
//! - `grab_mapping_entry` falls back for a PMD fault only when its conflict
//!   search finds a smaller entry in the 2 MiB range (it then returns the
//!   retry entry; "fs/dax: Fix pmd vs pte conflict detection" made it test
//!   the entry before its order).
//!
//! Not judged: the size of an entry its holder replaces in place. fs/dax.c
//! keeps it (the fault grabbed the entry at its own size) but for a file
//! with shared extents, where `dax_insert_entry` replaces any entry
//! (`IOMAP_F_SHARED`), which the trace cannot tell.
//!
//! The rules, each judged in one place:
//!
//! | invariant | rule | judged at |
//! |---|---|---|
//! | lock-released | no fault returns holding an entry lock | [`EntryTracker::fault_returned`] |
//! | lock-released | only a locked entry is released | [`EntryTracker::unlocked`] |
//! | lock-released | an entry locked where the trace ends is open at the cut, not a violation | [`EntryTracker::finish`] |
//! | single-holder | a lock is taken only when nobody holds the entry | [`EntryTracker::lock_taken`] |
//! | single-holder | nobody locks a PTE entry inside a PMD range another thread holds | [`EntryTracker::lock_taken`] |
//! | single-holder | only the holder stores over a locked entry | [`EntryTracker::lock_kept`] |
//! | single-holder | only the holder releases a lock | [`EntryTracker::unlocked`] |
//! | pmd-covers-range | no PTE entry inside a present PMD entry, no PMD entry over present PTE entries | [`EntryTracker::inserted`] |
//! | waiter-woken | a waiter queues on the key of the entry it waits for (23c84eb78375); where the hooks do not say which entry that is (`dax_entry_waitqueue` inlined), a waiter on a key nobody holds while an entry of its 2 MiB range is held | [`EntryTracker::entry_waited_for`] |
//! | waiter-woken | an unlock while waiters not yet woken sleep is followed, on its thread, by a wake-up of that key, unless no waiter is left anywhere first (that wake-up wakes nobody, and the programs leave such a `WAKE_NEXT` out) | [`EntryTracker::settle_owed_wake`] |
//! | waiter-woken | a waiter back without a wake-up finds its entry still held or being released (a spurious wake-up), never free (a lost wake-up ended by a timeout) | [`EntryTracker::woken`] |
//! | waiter-woken | live (`check --stall-after`): a waiter asleep past the limit, no wake-up sent to its key since it queued, while the entry it waits for is free: a lost wake-up, reported as it happens, and the session ends (the waiter never will) | [`EntryTracker::stalled`] |
//! | waiter-woken | a deleted entry woke all its waiters: one created anew without a WAKE_ALL seen was deleted without it (237388320def) | [`EntryTracker::locked`] |
//! | waiter-woken | the same for a downgrade: PTE entries inside a zero-page or empty PMD entry whose delete no WAKE_ALL told | [`EntryTracker::inserted`] |
//! | waiter-woken | no waiter is asleep at the end on an entry nobody holds and that is owed no wake-up (one whose entry is held, or whose wake-up was sent or is owed, is open at the cut) | [`EntryTracker::finish`] |
//! | writeback-whole | `dax_writeback_one` flushes exactly the pages of the entry its thread just released: 512 from its 2 MiB-aligned start for a PMD entry, its one page for a PTE entry | [`EntryTracker::written_back`] |
//! | entry-transitions | an entry is created empty: `grab_mapping_entry` stores `DAX_EMPTY` (locked) where there is none, and what it maps comes with its holder's replace (`dax_insert_entry`) | [`EntryTracker::locked`] |
//! | entry-transitions | a delete by the entry's own holder is a downgrade, of a zero-page or empty PMD entry (`grab_mapping_entry`'s `pmd_downgrade`, the only `xas_store(NULL)` under an entry lock from 6.1 to 7.2); every other delete (truncate, punch, invalidation) waits for the entry to be unlocked and never locks it. So a real PMD entry is never replaced by PTE entries while it is present (nor, by pmd-covers-range, joined by them) | [`EntryTracker::wake`] |
//! | truncate-empties-range | when a truncate or punch returns, no entry the trace saw lies wholly inside its pages (a survivor is reported once and forgotten) | [`EntryTracker::truncated`] |
//! | pte-conflict-real | no PMD fault falls back for PTE entries in a 2 MiB range that a truncate emptied and that no entry was made in since (the trace sees every entry made; it cannot know a range is empty otherwise, so no other range is judged) | [`EntryTracker::fell_back`] |

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;

use crate::{
    analysis::{
        drain_by_time,
        invariants::{Findings, Invariant},
    },
    event::{At, Entry, Event, Key, Truncation, WakeMode, What, Writeback},
    kernel::{pmd_start, PMD_PAGES},
};

/// Emptied ranges kept per mapping, and mappings kept: beyond them the
/// oldest knowledge is forgotten, which only leaves ranges unjudged.
const EMPTIED_PER_MAPPING: usize = 8;
const EMPTIED_MAPPINGS: usize = 4096;

/// What an event did to entries, for the statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A zero-page or empty PMD entry deleted by its holder to make room
    /// for PTE entries (`grab_mapping_entry`'s downgrade).
    Downgraded(Entry),
    /// An entry nobody held deleted: truncate, hole punch, eviction,
    /// invalidation.
    Deleted(Entry),
}

/// 2 MiB ranges `start..end` of one mapping that a truncate emptied.
struct Emptied {
    start: u64,
    end: u64,
    /// The truncate's number ([`EntryTracker::truncates`]).
    number: u64,
    truncate: Event,
}

const OWED_WAKE: &str = "an entry was unlocked while tasks waited for it, and its thread woke none";

/// A task asleep on a wait queue.
struct Waiter {
    /// The key it hashed its queue on.
    key: Key,
    wait: Event,
    /// The key of the entry it waits for, held when it queued (its own key
    /// but for a waiter hashed on the wrong index); `None` where the trace
    /// did not see that entry locked.
    waits_for: Option<Key>,
    /// Its lost wake-up was reported while it slept ([`EntryTracker::stalled`]).
    reported: bool,
}

/// Per thread: the entry locks it holds, and the entry it released last
/// since its last lock taken, the one a `dax_writeback_one` that follows
/// wrote back (a lock taken before the trace began leaves none, so such a
/// writeback is never judged).
#[derive(Default)]
struct Held {
    keys: Vec<Key>,
    released: Option<(Key, Entry)>,
}

/// Per wait key: tasks asleep, and wake-ups sent that they have not yet
/// taken (a WAKE_NEXT wakes one exclusive waiter, a WAKE_ALL all).
#[derive(Default)]
struct WaitQueue {
    asleep: u32,
    wakes: u32,
}

#[derive(Default)]
pub struct EntryTracker {
    /// Present entries and their last value: one per entry the trace saw
    /// created, as many as the kernel's page caches hold, so kept small.
    entries: HashMap<Key, Entry>,
    /// The lock that holds each locked entry; its key is in `entries`.
    holders: HashMap<Key, Event>,
    /// Present PTE entries per PMD range.
    ptes_in_pmd: HashMap<Key, u32>,
    /// Entry locks per holding thread, and its last release.
    held: HashMap<u32, Held>,
    /// Locked entry values per mapping, to find the entry a waiter waits for.
    locked_values: HashMap<(u64, Entry), Key>,
    waiters: HashMap<u32, Waiter>,
    queues: HashMap<Key, WaitQueue>,
    /// An unlock with waiters asleep, until its thread wakes one: tid -> (key, unlock).
    owed_wakes: HashMap<u32, (Key, Event)>,
    /// Unlocks seen whose store may not be done yet: the unlock hook runs
    /// before `dax_unlock_entry` takes the `xa_lock`, its wake-up after the
    /// store. tid -> (key, the entry as locked), until that thread's next event.
    releasing: HashMap<u32, (Key, Entry)>,
    /// The keys of `entries` in order, for the entries of a truncated range.
    places: BTreeSet<Key>,
    /// Per mapping, the 2 MiB ranges truncates emptied, oldest first.
    emptied: HashMap<u64, Vec<Emptied>>,
    /// Truncates that emptied a 2 MiB range, so far.
    truncates: u64,
    /// Per 2 MiB range inside an emptied one: `truncates` when an entry was
    /// last made in it (it is empty only if a truncate came since).
    made_in: HashMap<Key, u64>,
}

impl EntryTracker {
    /// Takes one event; returns what it did to entries that the statistics count.
    pub fn push(&mut self, event: &Event, findings: &mut Findings) -> Option<Change> {
        self.settle_owed_wake(event, findings);
        if !self.releasing.is_empty() {
            self.releasing.remove(&event.tid);
        }
        match event.what {
            What::EntryLock { at, old, new } => self.locked(event, at, old, new, findings),
            What::EntryUnlock { at, entry } => self.unlocked(event, at.key(entry), findings),
            What::EntryWake { at, entry, mode } => return self.wake(event, at.key(entry), mode, findings),
            What::EntryWait { key, entry, .. } => self.waits(event, key, entry, findings),
            What::EntryWoken { .. } => self.woken(event, findings),
            What::WritebackOne(writeback) => self.written_back(event, &writeback, findings),
            What::Truncated(truncation) => self.truncated(event, truncation, findings),
            What::GrabFallback { at } => self.fell_back(event, at, findings),
            _ => {}
        }
        None
    }

    /// lock-released: a fault (of `event`'s thread) returned; it may hold no lock.
    pub fn fault_returned(&mut self, event: &Event, findings: &mut Findings) {
        let Some(&key) = self.held.get(&event.tid).and_then(|held| held.keys.first()) else { return };
        let holder = self.holders.get(&key).copied();
        let events = holder.into_iter().chain([*event]).collect();
        findings.report(Invariant::LockReleased, Some(key), "a fault returned holding an entry lock", events);
    }

    /// The end of the stream: what is still owed, held or asleep. What is
    /// in flight there is open at the cut; a waiter asleep on an entry that
    /// is free and owed no wake-up is not in flight: its wake-up was lost.
    pub fn finish(&mut self, findings: &mut Findings) {
        let owed = drain_by_time(&mut self.owed_wakes, |(_, unlock)| unlock.time_ns);
        for (key, unlock) in &owed {
            let what = "an entry was unlocked while tasks waited for it; its thread's wake-up may come after the cut";
            findings.open_at_cut(Invariant::WaiterWoken, Some(*key), what, vec![*unlock]);
        }
        let mut held: Vec<(Key, Event)> = self.holders.drain().collect();
        held.sort_by_key(|(_, holder)| holder.time_ns);
        for (key, holder) in &held {
            let what = "entry still locked where the trace ends";
            findings.open_at_cut(Invariant::LockReleased, Some(*key), what, vec![*holder]);
        }
        for Waiter { key, wait, reported, .. } in
            drain_by_time(&mut self.waiters, |waiter| waiter.wait.time_ns)
        {
            if reported {
                continue;
            }
            let is_held = held.iter().any(|(held_key, _)| *held_key == key);
            let woken_or_owed = owed.iter().any(|(owed_key, _)| *owed_key == key)
                || self.queues.get(&key).is_some_and(|queue| queue.wakes > 0);
            if is_held {
                let what = "a waiter is asleep on an entry still held where the trace ends";
                findings.open_at_cut(Invariant::WaiterWoken, Some(key), what, vec![wait]);
            } else if woken_or_owed {
                let what = "a waiter was woken, or is owed a wake-up, and is not back where the trace ends";
                findings.open_at_cut(Invariant::WaiterWoken, Some(key), what, vec![wait]);
            } else {
                let what = "a waiter is still asleep though nobody holds its entry and no wake-up is owed";
                findings.report(Invariant::WaiterWoken, Some(key), what, vec![wait]);
            }
        }
    }

    /// `dax_lock_entry` stored `new`, locked, over `old`.
    fn locked(&mut self, event: &Event, at: At, old: Entry, new: Entry, findings: &mut Findings) {
        let key = at.key(new);
        if !old.is_value() && self.entries.contains_key(&key) {
            // Created anew, so it was deleted: but no WAKE_ALL said so, and
            // every delete in fs/dax.c wakes all waiters of the entry.
            let what =
                "an entry was deleted without waking all its waiters (it is created anew, no WAKE_ALL came)";
            findings.report(Invariant::WaiterWoken, Some(key), what, vec![*event]);
            self.deleted(key);
        }
        if !self.entries.contains_key(&key) {
            if !old.is_value() && !new.is_empty() {
                let what = format!("a {new} entry was created: fs/dax.c creates only empty ones");
                findings.report(Invariant::EntryTransitions, Some(key), &what, vec![*event]);
            }
            self.inserted(event, key, new, findings);
        }
        if old.is_locked() {
            self.lock_kept(event, key, new, findings);
        } else {
            self.lock_taken(event, key, new, findings);
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            *entry = new;
        }
    }

    /// pmd-covers-range, as a new entry appears; and waiter-woken where the
    /// PMD entry in the way is one fs/dax.c deletes first.
    fn inserted(&mut self, event: &Event, key: Key, new: Entry, findings: &mut Findings) {
        let range = key.pmd_range();
        if !new.is_pmd() {
            match self.entries.get(&range).copied() {
                // A zero-page or empty PMD entry is downgraded first: locked,
                // deleted with a WAKE_ALL, then the PTE entry inserted
                // (grab_mapping_entry). No WAKE_ALL came, so its delete woke
                // fewer than all its waiters (237388320def's class).
                Some(pmd) if pmd.is_pmd() && (pmd.is_zero_page() || pmd.is_empty()) => {
                    let what = format!(
                        "a {pmd} entry was replaced by PTE entries without a WAKE_ALL: its delete woke \
                         fewer than all its waiters"
                    );
                    findings.report(Invariant::WaiterWoken, Some(range), &what, vec![*event]);
                    self.deleted(range);
                }
                Some(pmd) if pmd.is_pmd() => {
                    let events = self.holders.get(&range).into_iter().copied().chain([*event]).collect();
                    let what = "a PTE entry was created inside a present PMD entry";
                    findings.report(Invariant::PmdCoversRange, Some(key), what, events);
                }
                _ => {}
            }
            *self.ptes_in_pmd.entry(range).or_default() += 1;
        } else if self.ptes_in_pmd.get(&range).is_some_and(|&n| n > 0) {
            let what = "a PMD entry was created over present PTE entries";
            findings.report(Invariant::PmdCoversRange, Some(key), what, vec![*event]);
        }
        self.entries.insert(key, new);
        self.places.insert(key);
        if self.emptied_range(range).is_some() {
            self.made_in.insert(range, self.truncates);
        }
    }

    /// The entry at `key` is gone; returns what it was.
    fn deleted(&mut self, key: Key) -> Option<Entry> {
        let entry = self.entries.remove(&key)?;
        self.places.remove(&key);
        if !entry.is_pmd() {
            if let Some(n) = self.ptes_in_pmd.get_mut(&key.pmd_range()) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(holder) = self.holders.remove(&key) {
            self.forget_lock(&holder, key, entry);
        }
        Some(entry)
    }

    /// single-holder, as a lock is taken on an entry found unlocked (present
    /// in `entries`: `locked` inserts a new one first).
    fn lock_taken(&mut self, event: &Event, key: Key, new: Entry, findings: &mut Findings) {
        if let Some(holder) = self.holders.insert(key, *event) {
            // The XArray said unlocked, but nobody released it in our stream.
            let what = "a lock was taken while another holder had not released it";
            findings.report(Invariant::SingleHolder, Some(key), what, vec![holder, *event]);
        }
        if !new.is_pmd() {
            let range = key.pmd_range();
            let pmd_holder = self
                .holders
                .get(&range)
                .filter(|_| self.entries.get(&range).is_some_and(|entry| entry.is_pmd()))
                .filter(|holder| holder.tid != event.tid)
                .copied();
            if let Some(pmd_holder) = pmd_holder {
                let what = "a PTE entry was locked inside a PMD range another thread holds";
                findings.report(Invariant::SingleHolder, Some(key), what, vec![pmd_holder, *event]);
            }
        }
        let held = self.held.entry(event.tid).or_default();
        held.keys.push(key);
        held.released = None;
        self.locked_values.insert((key.mapping, new), key);
    }

    /// single-holder, as a locked entry is stored again (insert or replace).
    fn lock_kept(&mut self, event: &Event, key: Key, new: Entry, findings: &mut Findings) {
        let Some(&entry) = self.entries.get(&key) else { return };
        match self.holders.get(&key) {
            Some(holder) if holder.tid != event.tid => {
                let what = "a thread stored over an entry another thread holds locked";
                findings.report(Invariant::SingleHolder, Some(key), what, vec![*holder, *event]);
            }
            Some(_) => {
                self.locked_values.remove(&(key.mapping, entry));
                self.locked_values.insert((key.mapping, new), key);
            }
            None => {}
        }
    }

    /// lock-released and single-holder: `dax_unlock_entry` of an entry that
    /// must be locked, by its holder.
    fn unlocked(&mut self, event: &Event, key: Key, findings: &mut Findings) {
        let Some(&entry) = self.entries.get(&key) else { return };
        let Some(holder) = self.release(key) else {
            let what = "an entry that is not locked was released";
            findings.report(Invariant::LockReleased, Some(key), what, vec![*event]);
            return;
        };
        if holder.tid != event.tid {
            let what = "a lock was released by a thread that does not hold it";
            findings.report(Invariant::SingleHolder, Some(key), what, vec![holder, *event]);
        }
        // Waiters already woken are off the wait queue, back or not: with
        // none left on it the kernel wakes nobody (`waitqueue_active`).
        if self.queues.get(&key).is_some_and(|queue| queue.asleep > queue.wakes) {
            self.owed_wakes.insert(event.tid, (key, *event));
        }
        self.releasing.insert(event.tid, (key, entry));
    }

    /// Ends the lock on `key`; returns its holder, if it had one.
    fn release(&mut self, key: Key) -> Option<Event> {
        let entry = *self.entries.get(&key)?;
        let holder = self.holders.remove(&key)?;
        if let Some(held) = self.forget_lock(&holder, key, entry) {
            held.released = Some((key, entry));
        }
        Some(holder)
    }

    /// Returns the holder's thread record.
    fn forget_lock(&mut self, holder: &Event, key: Key, entry: Entry) -> Option<&mut Held> {
        self.locked_values.remove(&(key.mapping, entry));
        let held = self.held.get_mut(&holder.tid)?;
        held.keys.retain(|k| *k != key);
        Some(held)
    }

    /// waiter-woken: the thread's event after an unlock with waiters must be
    /// its wake-up (`dax_unlock_entry` stores, then calls `dax_wake_entry`),
    /// unless every waiter is back first ([`EntryTracker::woken`]).
    fn settle_owed_wake(&mut self, event: &Event, findings: &mut Findings) {
        if self.owed_wakes.is_empty() {
            return;
        }
        let Some((key, unlock)) = self.owed_wakes.remove(&event.tid) else { return };
        let woke_it = matches!(event.what, What::EntryWake { at, entry, .. } if at.key(entry) == key);
        if !woke_it {
            findings.report(Invariant::WaiterWoken, Some(key), OWED_WAKE, vec![unlock, *event]);
        }
    }

    /// A wake by the entry's holder ends its lock: WAKE_NEXT after the
    /// writeback's unlocking store, WAKE_ALL after a delete. A WAKE_ALL by
    /// anybody else follows the delete of an unlocked entry.
    /// Returns the delete it tells: a downgrade where the holder deleted a
    /// zero-page or empty PMD entry; entry-transitions where the holder
    /// deleted any other.
    fn wake(&mut self, event: &Event, key: Key, mode: WakeMode, findings: &mut Findings) -> Option<Change> {
        let all = mode == WakeMode::All;
        if let Some(queue) = self.queues.get_mut(&key) {
            queue.wakes = if all { queue.asleep } else { (queue.wakes + 1).min(queue.asleep) };
        }
        if !self.entries.contains_key(&key) {
            return None;
        }
        let holder = self.holders.get(&key).copied();
        let by_holder = holder.is_some_and(|holder| holder.tid == event.tid);
        if by_holder {
            self.release(key);
        }
        // A WAKE_ALL by the holder, or by anybody of an unlocked entry, follows its delete.
        let deletes = all && (holder.is_none() || by_holder);
        if !deletes {
            return None;
        }
        let gone = self.deleted(key)?;
        if !by_holder {
            Some(Change::Deleted(gone))
        } else if gone.is_pmd() && (gone.is_zero_page() || gone.is_empty()) {
            Some(Change::Downgraded(gone))
        } else {
            let what = format!(
                "its holder deleted a {gone} entry: fs/dax.c deletes a locked entry only to downgrade a \
                 zero-page or empty PMD entry"
            );
            let events = holder.into_iter().chain([*event]).collect();
            findings.report(Invariant::EntryTransitions, Some(key), &what, events);
            None
        }
    }

    /// truncate-empties-range, as a truncate or punch returns: no entry
    /// wholly inside its pages is left. A survivor is reported and
    /// forgotten (the kernel deleted it with a warning, or never will).
    /// From here each 2 MiB range wholly inside is empty until an entry is
    /// made in it, which pte-conflict-real judges by.
    fn truncated(&mut self, event: &Event, truncation: Truncation, findings: &mut Findings) {
        let (start, end) = truncation.pages();
        let mapping = truncation.mapping;
        let survivors: Vec<(Key, Entry)> = self
            .places
            .range(Key { mapping, start }..)
            .take_while(|key| key.mapping == mapping && key.start < end)
            .map(|key| (*key, self.entries[key]))
            .filter(|(key, entry)| key.start.saturating_add(entry.pages()) <= end)
            .collect();
        for (key, entry) in survivors {
            let holder = self.holders.get(&key).copied();
            let events = holder.into_iter().chain([*event]).collect();
            let last = if end == u64::MAX { "the end".to_owned() } else { format!("{}", end - 1) };
            let what = format!("a {entry} entry survived the truncate of pages {start} to {last}");
            findings.report(Invariant::TruncateEmptiesRange, Some(key), &what, events);
            self.deleted(key);
        }
        let (first_range, end_range) = (start.next_multiple_of(PMD_PAGES), pmd_start(end));
        if first_range < end_range {
            self.truncates += 1;
            self.note_emptied(
                Emptied { start: first_range, end: end_range, number: self.truncates, truncate: *event },
                mapping,
            );
        }
    }

    fn note_emptied(&mut self, emptied: Emptied, mapping: u64) {
        if self.emptied.len() >= EMPTIED_MAPPINGS && !self.emptied.contains_key(&mapping) {
            self.emptied.clear();
            self.made_in.clear();
        }
        let ranges = self.emptied.entry(mapping).or_default();
        ranges.retain(|older| older.start < emptied.start || older.end > emptied.end);
        if ranges.len() >= EMPTIED_PER_MAPPING {
            ranges.remove(0);
        }
        ranges.push(emptied);
    }

    /// The truncate that emptied the 2 MiB range `range`, if no entry was made in it since.
    fn emptied_range(&self, range: Key) -> Option<&Emptied> {
        // Most mappings were never truncated: that lookup first.
        let emptied = self
            .emptied
            .get(&range.mapping)?
            .iter()
            .rev()
            .find(|emptied| emptied.start <= range.start && range.start < emptied.end)?;
        let made = self.made_in.get(&range).copied().unwrap_or(0);
        (emptied.number > made).then_some(emptied)
    }

    /// pte-conflict-real, as `grab_mapping_entry` falls back for a PMD fault
    /// at `at`: its range must hold a smaller entry. One that a truncate
    /// emptied, with no entry made in it since, holds none.
    fn fell_back(&mut self, event: &Event, at: At, findings: &mut Findings) {
        let range = Key { mapping: at.mapping, start: pmd_start(at.index) };
        let Some(emptied) = self.emptied_range(range) else { return };
        let what = format!(
            "a PMD fault at index {} fell back for PTE entries in its range, which holds none: a truncate \
             emptied it and no entry was made in it since",
            at.index
        );
        findings.report(Invariant::PteConflictReal, Some(range), &what, vec![emptied.truncate, *event]);
    }

    /// writeback-whole, as `dax_writeback_one` reports the range it flushed:
    /// the range of the entry its thread released last (fs/dax.c traces
    /// after the unlocking store), aligned to the entry's size.
    fn written_back(&mut self, event: &Event, writeback: &Writeback, findings: &mut Findings) {
        let Some((key, entry)) = self.held.get_mut(&event.tid).and_then(|held| held.released.take()) else {
            return;
        };
        if writeback.pgoff == key.start && writeback.pglen == entry.pages() {
            return;
        }
        let what = format!(
            "{} pages from index {} were written back for a {entry} entry of {} pages at index {}",
            writeback.pglen,
            writeback.pgoff,
            entry.pages(),
            key.start
        );
        findings.report(Invariant::WritebackWhole, Some(key), &what, vec![*event]);
    }

    /// A task queues on `key`. The wait is taken under the `xa_lock` that
    /// the holder's lock was taken under, so the holder's lock comes first
    /// in the stream.
    fn waits(&mut self, event: &Event, key: Key, waited: Entry, findings: &mut Findings) {
        self.queues.entry(key).or_default().asleep += 1;
        let waits_for = self.entry_waited_for(event, key, waited, findings);
        self.waiters.insert(event.tid, Waiter { key, wait: *event, waits_for, reported: false });
    }

    /// waiter-woken, as a task queues: on the key of the entry it waits
    /// for. Returns that entry's key, held as it queues; a key other than
    /// `key` is reported (the unlock will wake the other queue).
    fn entry_waited_for(
        &self,
        event: &Event,
        key: Key,
        waited: Entry,
        findings: &mut Findings,
    ) -> Option<Key> {
        if self.holders.contains_key(&key) || self.being_released(key) {
            return Some(key);
        }
        // The unlock will wake the queue of the key the entry is held
        // under, never this one. Which entry the waiter found, the native
        // hook says; without it, a held entry of the waiter's 2 MiB range
        // is the one (fs/dax.c waits only for an entry covering the index).
        // Held, or being released: its unlock hook has run but its store
        // has not (the hook runs before the `xa_lock`), and the unlock will
        // wake that entry's key.
        let releasing = |found: &dyn Fn(&Key, &Entry) -> bool| {
            self.releasing.values().find(|(held, entry)| found(held, entry)).map(|(held, _)| *held)
        };
        let held_key = if waited.is_value() {
            let found = |held: &Key, entry: &Entry| held.mapping == key.mapping && *entry == waited;
            self.locked_values.get(&(key.mapping, waited)).copied().or_else(|| releasing(&found))
        } else {
            let in_range = |held: &Key, _: &Entry| held.pmd_range() == key.pmd_range();
            let held = self.locked_values.values().find(|held| in_range(held, &waited)).copied();
            held.or_else(|| releasing(&in_range))
        };
        if let Some(held_key) = held_key {
            let holder = self.holders.get(&held_key).copied();
            let events = holder.into_iter().chain([*event]).collect();
            let what = format!(
                "a waiter sleeps on index {} but its entry is locked at index {}",
                key.start, held_key.start
            );
            findings.report(Invariant::WaiterWoken, Some(key), &what, events);
        }
        held_key
    }

    /// waiter-woken, live, at `now_ns`: a waiter asleep longer than
    /// `limit_ns`, with no wake-up sent to its key since it queued (none
    /// left for it on the queue, none owed by an unlock), whose entry is
    /// free. Nothing will wake it: the violation is reported now, once.
    /// Returns whether such a waiter exists, so that a live session can end
    /// in a verdict rather than wait for a task that never returns. A
    /// waiter whose entry the trace did not see locked is not judged.
    pub fn stalled(&mut self, now_ns: u64, limit_ns: u64, findings: &mut Findings) -> bool {
        let mut stuck = false;
        for waiter in self.waiters.values_mut() {
            let asleep_ns = now_ns.saturating_sub(waiter.wait.time_ns);
            let Some(waits_for) = waiter.waits_for else { continue };
            let woken = self.queues.get(&waiter.key).is_some_and(|queue| queue.wakes > 0)
                || self.owed_wakes.values().any(|(key, _)| *key == waiter.key);
            if asleep_ns <= limit_ns || woken || self.holders.contains_key(&waits_for) {
                continue;
            }
            stuck = true;
            if !waiter.reported {
                waiter.reported = true;
                let what = format!(
                    "a waiter has slept {:.1} s on index {} though its entry (index {}) is free and no \
                     wake-up is coming: a lost wake-up",
                    asleep_ns as f64 / 1e9,
                    waiter.key.start,
                    waits_for.start
                );
                findings.report(Invariant::WaiterWoken, Some(waiter.key), &what, vec![waiter.wait]);
            }
        }
        stuck
    }

    /// waiter-woken, as a waiter is back: it must have had a wake-up for its
    /// key, or its entry is still held or being released. Back while the
    /// entry is still held is a spurious wake-up, which the kernel allows
    /// (e.g. a late wake_q wake-up from an earlier rwsem wait): the waiter
    /// looks again and sleeps again. The same wake-up between an unlock and
    /// its wake-up finds the entry locked or free, and the unlock's wake-up
    /// goes to the next waiter. Back without either, it lost its wake-up
    /// (the reference module's bounded sleep ends such a wait). Waits are
    /// exclusive, as all of fs/dax.c's fault paths' are;
    /// `wait_entry_unlocked` (memory-failure handling) is not, and a
    /// WAKE_NEXT wakes its waiters too.
    fn woken(&mut self, event: &Event, findings: &mut Findings) {
        let Some(Waiter { key, wait, reported, .. }) = self.waiters.remove(&event.tid) else { return };
        let not_free = self.holders.contains_key(&key) || self.being_released(key);
        // With no waiter left anywhere, an unlock's wake-up is owed to
        // nobody: it wakes no one, and dax-probe's programs send no
        // WAKE_NEXT while no waiter is counted (`wake_tells_nothing`: they
        // count a waiter before its `entry_wait` and uncount it after its
        // `entry_woken`, so that wake-up comes after this event).
        if self.waiters.is_empty() {
            self.owed_wakes.clear();
        }
        let queue = self.queues.entry(key).or_default();
        queue.asleep = queue.asleep.saturating_sub(1);
        if reported {
            // Its lost wake-up is told already; it came back some other way.
            return;
        }
        if queue.wakes > 0 {
            queue.wakes -= 1;
        } else if !not_free {
            let what =
                "a waiter woke though no wake-up for its entry came (a lost wake-up, ended by a timeout)";
            findings.report(Invariant::WaiterWoken, Some(key), what, vec![wait, *event]);
        }
    }

    /// Whether an unlock of `key` is told and its thread has not moved on
    /// since (`releasing`, which holds every owed wake-up's unlock too): its
    /// store may not be done, and its wake-up is still to come
    /// (`dax_unlock_entry` stores, drops the `xa_lock`, then wakes; on a
    /// preemptible kernel its thread may be preempted in between). A waiter
    /// back then was woken by something else, and its wake-up, if owed, is
    /// judged on the unlocking thread ([`EntryTracker::settle_owed_wake`]).
    fn being_released(&self, key: Key) -> bool {
        self.releasing.values().any(|(releasing, _)| *releasing == key)
    }
}
