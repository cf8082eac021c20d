//! One pass over an event stream (a trace file or the live ring buffer):
//! fault outcomes and fallback reasons for the report, and the invariants of
//! [`crate::invariants`] for the checker.
//!
//! Events are taken in ring-buffer order. The entry events are emitted under
//! the mapping's `xa_lock` (see `hooks.rs`), so for one mapping that order is
//! the order in which the kernel changed its entries. The maps use FxHash:
//! keys are kernel pointers and indices, not attacker-chosen, and the
//! checker must keep up with millions of events per second.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use dax_probe_common::{Arg, Event, Field, Kind};

use crate::{
    events::{Entry, Key},
    fallback::{self, Reason, Seen},
    invariants::{Invariant, Violation},
    timeline::{Latencies, Outcome, Timeline},
};

const VM_FAULT_NOPAGE: u64 = 0x100;
const VM_FAULT_FALLBACK: u64 = 0x800;
const PMD_PAGES: u64 = 512;
const PAGE_MASK: u64 = !0xfff;

const OWED_WAKE: &str = "an entry was unlocked while tasks waited for it, and its thread woke none";

/// Violations kept with their events; beyond this they are only counted.
const KEPT_VIOLATIONS: usize = 100;

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
    pub fn merge(&mut self, other: &Faults) {
        self.pmd += other.pmd;
        self.pmd_nopage += other.pmd_nopage;
        self.pmd_fallback += other.pmd_fallback;
        self.pte += other.pte;
        self.pte_nopage += other.pte_nopage;
    }

    fn add(&mut self, kind: Kind, result: u64) {
        match kind {
            Kind::PmdFaultDone => {
                self.pmd += 1;
                self.pmd_nopage += u64::from(result & VM_FAULT_NOPAGE != 0);
                self.pmd_fallback += u64::from(result & VM_FAULT_FALLBACK != 0);
            }
            Kind::PteFaultDone => {
                self.pte += 1;
                self.pte_nopage += u64::from(result & VM_FAULT_NOPAGE != 0);
            }
            _ => {}
        }
    }
}

/// What the report shows.
#[derive(Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub faults: Faults,
    /// Per `HOOK_EVENTS` entry.
    pub hook_events: [u64; dax_probe_common::HOOK_EVENT_COUNT],
    pub reasons: HashMap<Reason, u64>,
    /// By (dev, inode).
    pub files: HashMap<(u64, u64), Faults>,
    /// By tgid, with the first command name seen.
    pub processes: HashMap<u32, (String, Faults)>,
    pub timeline: Timeline,
    pub latency: Latencies,
    /// Per [`Invariant::ALL`] entry.
    pub violations: [u64; Invariant::ALL.len()],
}

struct OpenFault {
    start: Event,
    seen: Seen,
}

#[derive(Default)]
struct EntryState {
    entry: u64,
    holder: Option<Event>,
}

#[derive(Default)]
pub struct Analysis {
    checked: Vec<Invariant>,
    fallback_probes: bool,
    pub stats: Stats,
    pub violations: Vec<Violation>,
    /// Threads seen starting a PMD fault (a done before that is a fault begun before recording).
    pmd_threads: HashSet<u32>,
    open_pmd: HashMap<u32, OpenFault>,
    /// PTE faults begun: tid -> start time.
    open_pte: HashMap<u32, u64>,
    /// A FALLBACK not yet followed by its PTE fault: tid -> the done event.
    unserved: HashMap<u32, Event>,
    /// (tgid, page) that a PTE fault has handled.
    pte_served: HashSet<(u32, u64)>,
    entries: HashMap<Key, EntryState>,
    /// Present PTE entries per (mapping, PMD start).
    ptes_in_pmd: HashMap<Key, u32>,
    /// Entry locks per holding thread.
    held: HashMap<u32, Vec<Key>>,
    /// Locked entry values per mapping, to find the entry a waiter waits for.
    locked_values: HashMap<(u64, u64), Key>,
    waiters: HashMap<u32, Event>,
    /// Per wait key: tasks asleep, and wake-ups sent that they have not yet
    /// taken (a WAKE_NEXT wakes one exclusive waiter, a WAKE_ALL all).
    queues: HashMap<Key, WaitQueue>,
    /// An unlock with waiters asleep, until its thread wakes one: tid -> (key, unlock).
    owed_wakes: HashMap<u32, (Key, Event)>,
}

#[derive(Default)]
struct WaitQueue {
    asleep: u32,
    wakes: u32,
}

impl Analysis {
    /// `groups`: the hook groups the trace was recorded with.
    pub fn new(groups: &[String]) -> Analysis {
        Analysis {
            checked: Invariant::ALL.into_iter().filter(|i| i.checkable(groups)).collect(),
            fallback_probes: crate::hooks::provides(groups, crate::hooks::FALLBACK_PROBES),
            ..Analysis::default()
        }
    }

    pub fn checked(&self) -> &[Invariant] {
        &self.checked
    }

    /// All violations found, kept or only counted.
    pub fn violation_count(&self) -> u64 {
        self.stats.violations.iter().sum()
    }

    pub fn push(&mut self, event: &Event) {
        self.stats.events += 1;
        self.stats.timeline.begin(event.time_ns);
        let Some(kind) = event.kind() else { return };
        if let Some(n) = (kind as usize).checked_sub(dax_probe_common::TRACEPOINT_COUNT) {
            self.stats.hook_events[n] += 1;
        }
        self.settle_owed_wake(event, kind);
        match kind {
            Kind::PmdFault => self.pmd_fault(event),
            Kind::PmdFaultDone => self.pmd_fault_done(event),
            Kind::PteFault => self.pte_fault(event),
            Kind::PteFaultDone => self.pte_fault_done(event),
            Kind::PmdLoadHoleFallback => self.seen(event, |seen| seen.hole_fallback = true),
            Kind::GrabFallback => self.seen(event, |seen| seen.grab_fallback = true),
            Kind::DirectAccessFailed => self.seen(event, |seen| seen.direct_access_failed = true),
            Kind::PmdFaultIter => self.seen(event, |seen| seen.fault_iter = true),
            Kind::EntryLock => self.entry_lock(event),
            Kind::EntryUnlock => self.entry_unlock(event),
            Kind::EntryWake => self.entry_wake(event),
            Kind::EntryWait => self.entry_wait(event),
            Kind::EntryWoken => self.entry_woken(event),
            _ => {}
        }
    }

    /// The end of the stream: what is still owed, unanswered, held or asleep.
    pub fn finish(&mut self) {
        for (key, unlock) in drain_by_time(&mut self.owed_wakes, |(_, unlock)| unlock.time_ns) {
            self.violate(Invariant::WaiterWoken, Some(key), OWED_WAKE, vec![unlock]);
        }
        for done in drain_by_time(&mut self.unserved, |done| done.time_ns) {
            self.check_served(done);
        }
        for open in drain_by_time(&mut self.open_pmd, |open| open.start.time_ns) {
            let what = "dax_pmd_fault without a done at the end of the trace";
            self.violate(Invariant::PmdFaultDone, None, what, vec![open.start]);
        }
        self.finish_locks_and_waiters();
    }

    fn finish_locks_and_waiters(&mut self) {
        let mut held: Vec<_> = self
            .entries
            .iter()
            .filter_map(|(key, state)| state.holder.map(|holder| (*key, holder)))
            .collect();
        held.sort_by_key(|(_, holder)| holder.time_ns);
        for (key, holder) in &held {
            let what = "entry still locked at the end of the trace";
            self.violate(Invariant::LockReleased, Some(*key), what, vec![*holder]);
        }
        for wait in drain_by_time(&mut self.waiters, |wait| wait.time_ns) {
            let key = Key { mapping: wait.arg(Arg::Mapping), start: wait.arg(Arg::KeyStart) };
            if !held.iter().any(|(held_key, _)| *held_key == key) {
                let what = "a waiter is still asleep though nobody holds its entry";
                self.violate(Invariant::WaiterWoken, Some(key), what, vec![wait]);
            }
        }
    }

    fn violate(&mut self, invariant: Invariant, key: Option<Key>, what: &str, events: Vec<Event>) {
        if !self.checked.contains(&invariant) {
            return;
        }
        self.stats.violations[invariant as usize] += 1;
        if self.violations.len() < KEPT_VIOLATIONS {
            self.violations.push(Violation { invariant, key, what: what.to_owned(), events });
        }
    }

    fn seen(&mut self, event: &Event, mark: fn(&mut Seen)) {
        if let Some(open) = self.open_pmd.get_mut(&event.tid) {
            mark(&mut open.seen);
        }
    }

    fn pmd_fault(&mut self, event: &Event) {
        self.pmd_threads.insert(event.tid);
        if let Some(done) = self.unserved.remove(&event.tid) {
            // The same address again is the fault retried (e.g. from under
            // the VMA lock to under mmap_lock): the retry owes the PTE fault.
            let retried = (done.field(Field::Address) ^ event.field(Field::Address)) & PAGE_MASK == 0;
            if !retried {
                self.check_served(done);
            }
        }
        let previous = self.open_pmd.insert(event.tid, OpenFault { start: *event, seen: Seen::default() });
        if let Some(previous) = previous {
            self.violate(
                Invariant::PmdFaultDone,
                None,
                "a thread started a PMD fault before the previous one was done",
                vec![previous.start, *event],
            );
        }
    }

    fn pmd_fault_done(&mut self, event: &Event) {
        let result = event.field(Field::Result);
        match self.open_pmd.remove(&event.tid) {
            Some(open) => {
                self.stats.latency.pmd.observe(event.time_ns.saturating_sub(open.start.time_ns));
                if result & VM_FAULT_FALLBACK != 0 {
                    let reason = fallback::classify(event, open.seen, self.fallback_probes);
                    *self.stats.reasons.entry(reason).or_default() += 1;
                    self.unserved.insert(event.tid, *event);
                    self.stats.timeline.add(event.time_ns, Outcome::Fallback(reason));
                } else if result & VM_FAULT_NOPAGE != 0 {
                    self.stats.timeline.add(event.time_ns, Outcome::Pmd);
                }
            }
            // A fault begun before recording ends without its start.
            None if !self.pmd_threads.contains(&event.tid) => {}
            None => self.violate(
                Invariant::PmdFaultDone,
                None,
                "dax_pmd_fault_done without its dax_pmd_fault",
                vec![*event],
            ),
        }
        self.fault_done(event);
    }

    fn pte_fault(&mut self, event: &Event) {
        self.open_pte.insert(event.tid, event.time_ns);
        let page = event.field(Field::Address) & PAGE_MASK;
        self.pte_served.insert((event.tgid, page));
        // Nearly every PTE fault finds nothing owed: skip the walk then.
        if !self.unserved.is_empty() {
            self.unserved.retain(|_, done| {
                !(done.tgid == event.tgid && done.field(Field::Address) & PAGE_MASK == page)
            });
        }
    }

    /// A FALLBACK whose thread went on without a PTE fault on that page.
    fn check_served(&mut self, done: Event) {
        let page = done.field(Field::Address) & PAGE_MASK;
        if !self.pte_served.contains(&(done.tgid, page)) {
            self.violate(
                Invariant::FallbackServed,
                None,
                "a PMD FALLBACK was not followed by a PTE fault on its address",
                vec![done],
            );
        }
    }

    fn pte_fault_done(&mut self, event: &Event) {
        if let Some(start_ns) = self.open_pte.remove(&event.tid) {
            self.stats.latency.pte.observe(event.time_ns.saturating_sub(start_ns));
            self.stats.timeline.add(event.time_ns, Outcome::Pte);
        }
        self.fault_done(event);
    }

    fn fault_done(&mut self, event: &Event) {
        let kind = event.kind().expect("a fault done event");
        let result = event.field(Field::Result);
        self.stats.faults.add(kind, result);
        let file = (event.field(Field::Dev), event.field(Field::Ino));
        self.stats.files.entry(file).or_default().add(kind, result);
        self.stats
            .processes
            .entry(event.tgid)
            .or_insert_with(|| (crate::events::comm(event), Faults::default()))
            .1
            .add(kind, result);
        if let Some(keys) = self.held.get(&event.tid).filter(|keys| !keys.is_empty()) {
            let key = keys[0];
            let holder = self.entries.get(&key).and_then(|state| state.holder);
            let events = holder.into_iter().chain([*event]).collect();
            self.violate(
                Invariant::LockReleased,
                Some(key),
                "a fault returned holding an entry lock",
                events,
            );
        }
    }

    fn entry_lock(&mut self, event: &Event) {
        let mapping = event.arg(Arg::Mapping);
        let index = event.arg(Arg::Index);
        let old = Entry(event.arg(Arg::OldEntry));
        let new = Entry(event.arg(Arg::Entry));
        let key = Key { mapping, start: new.start(index) };
        if !old.is_value() && self.entries.contains_key(&key) {
            // Created anew, so it was deleted: but no WAKE_ALL said so, and
            // every delete in fs/dax.c wakes all waiters of the entry.
            let what =
                "an entry was deleted without waking all its waiters (it is created anew, no WAKE_ALL came)";
            self.violate(Invariant::WaiterWoken, Some(key), what, vec![*event]);
            self.entry_deleted(key);
        }
        if !self.entries.contains_key(&key) {
            self.entry_inserted(event, key, new);
        }
        if old.is_locked() {
            self.lock_kept(event, key, new);
        } else {
            self.lock_taken(event, key, new);
        }
        if let Some(state) = self.entries.get_mut(&key) {
            state.entry = new.0;
        }
    }

    fn entry_unlock(&mut self, event: &Event) {
        let key = entry_key(event);
        let Some(state) = self.entries.get(&key) else { return };
        if state.holder.is_none() {
            self.violate(
                Invariant::LockReleased,
                Some(key),
                "an entry that is not locked was released",
                vec![*event],
            );
            return;
        }
        self.lock_dropped(event, key);
        if self.queues.get(&key).is_some_and(|queue| queue.asleep > 0) {
            self.owed_wakes.insert(event.tid, (key, *event));
        }
    }

    /// The thread's event after an unlock with waiters must be its wake-up
    /// (`dax_unlock_entry` stores, then calls `dax_wake_entry`).
    fn settle_owed_wake(&mut self, event: &Event, kind: Kind) {
        if self.owed_wakes.is_empty() {
            return;
        }
        let Some((key, unlock)) = self.owed_wakes.remove(&event.tid) else { return };
        let woke_it = kind == Kind::EntryWake && entry_key(event) == key;
        if !woke_it {
            self.violate(Invariant::WaiterWoken, Some(key), OWED_WAKE, vec![unlock, *event]);
        }
    }

    /// A waiter is back: it must have had a wake-up for its key, or its
    /// entry is still held. Back without either, it lost its wake-up (the
    /// reference module's bounded sleep ends such a wait). Back while the
    /// entry is still held is a spurious wake-up, which the kernel allows
    /// (e.g. a late wake_q wake-up from an earlier rwsem wait): the waiter
    /// looks again and sleeps again. Waits are exclusive, as all of
    /// fs/dax.c's fault paths' are; `wait_entry_unlocked` (memory-failure
    /// handling) is not, and a WAKE_NEXT wakes its waiters too.
    fn entry_woken(&mut self, event: &Event) {
        let Some(wait) = self.waiters.remove(&event.tid) else { return };
        let key = Key { mapping: wait.arg(Arg::Mapping), start: wait.arg(Arg::KeyStart) };
        let queue = self.queues.entry(key).or_default();
        queue.asleep = queue.asleep.saturating_sub(1);
        if queue.wakes > 0 {
            queue.wakes -= 1;
        } else if self.entries.get(&key).is_none_or(|state| state.holder.is_none()) {
            let what =
                "a waiter woke though no wake-up for its entry came (a lost wake-up, ended by a timeout)";
            self.violate(Invariant::WaiterWoken, Some(key), what, vec![wait, *event]);
        }
    }

    /// A wake by the entry's holder ends its lock: WAKE_NEXT after the
    /// writeback's unlocking store, WAKE_ALL after a delete. A WAKE_ALL by
    /// anybody else follows the delete of an unlocked entry.
    fn entry_wake(&mut self, event: &Event) {
        let key = entry_key(event);
        let wake_all = event.arg(Arg::Mode) == 0;
        if let Some(queue) = self.queues.get_mut(&key) {
            queue.wakes = if wake_all { queue.asleep } else { (queue.wakes + 1).min(queue.asleep) };
        }
        let Some(holder) = self.entries.get(&key).map(|state| state.holder) else { return };
        let by_holder = holder.is_some_and(|holder| holder.tid == event.tid);
        if by_holder {
            self.lock_dropped(event, key);
        }
        if wake_all && (holder.is_none() || by_holder) {
            self.entry_deleted(key);
        }
    }

    fn entry_inserted(&mut self, event: &Event, key: Key, new: Entry) {
        let pmd_key = Key { mapping: key.mapping, start: key.start & !(PMD_PAGES - 1) };
        if new.order() == 0 {
            let inside_pmd = self.entries.get(&pmd_key).is_some_and(|state| Entry(state.entry).order() > 0);
            if inside_pmd {
                let holder = self.entries[&pmd_key].holder;
                let events = holder.into_iter().chain([*event]).collect();
                self.violate(
                    Invariant::PmdCoversRange,
                    Some(key),
                    "a PTE entry was created inside a present PMD entry",
                    events,
                );
            }
            *self.ptes_in_pmd.entry(pmd_key).or_default() += 1;
        } else if self.ptes_in_pmd.get(&pmd_key).is_some_and(|&n| n > 0) {
            self.violate(
                Invariant::PmdCoversRange,
                Some(key),
                "a PMD entry was created over present PTE entries",
                vec![*event],
            );
        }
        self.entries.insert(key, EntryState { entry: new.0, holder: None });
    }

    fn entry_deleted(&mut self, key: Key) {
        let Some(state) = self.entries.remove(&key) else { return };
        if Entry(state.entry).order() == 0 {
            let pmd_key = Key { mapping: key.mapping, start: key.start & !(PMD_PAGES - 1) };
            if let Some(n) = self.ptes_in_pmd.get_mut(&pmd_key) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(holder) = state.holder {
            self.forget_lock(&holder, key, Entry(state.entry));
        }
    }

    fn lock_taken(&mut self, event: &Event, key: Key, new: Entry) {
        let state = self.entries.entry(key).or_default();
        if let Some(holder) = state.holder {
            // The XArray said unlocked, but nobody released it in our stream.
            let events = vec![holder, *event];
            self.violate(
                Invariant::SingleHolder,
                Some(key),
                "a lock was taken while another holder had not released it",
                events,
            );
        }
        self.entries.get_mut(&key).expect("just inserted").holder = Some(*event);
        if new.order() == 0 {
            let pmd_key = Key { mapping: key.mapping, start: key.start & !(PMD_PAGES - 1) };
            let pmd_holder = self
                .entries
                .get(&pmd_key)
                .filter(|state| Entry(state.entry).order() > 0)
                .and_then(|state| state.holder)
                .filter(|holder| holder.tid != event.tid);
            if let Some(pmd_holder) = pmd_holder {
                let events = vec![pmd_holder, *event];
                self.violate(
                    Invariant::SingleHolder,
                    Some(key),
                    "a PTE entry was locked inside a PMD range another thread holds",
                    events,
                );
            }
        }
        self.held.entry(event.tid).or_default().push(key);
        self.locked_values.insert((key.mapping, new.0), key);
    }

    fn lock_kept(&mut self, event: &Event, key: Key, new: Entry) {
        let Some(state) = self.entries.get_mut(&key) else { return };
        let old_entry = Entry(state.entry);
        match state.holder {
            Some(holder) if holder.tid != event.tid => {
                self.violate(
                    Invariant::SingleHolder,
                    Some(key),
                    "a thread stored over an entry another thread holds locked",
                    vec![holder, *event],
                );
            }
            Some(_) => {
                // An insert or replace by the holder (dax_insert_entry).
                self.locked_values.remove(&(key.mapping, old_entry.0));
                self.locked_values.insert((key.mapping, new.0), key);
            }
            None => {}
        }
    }

    fn lock_dropped(&mut self, event: &Event, key: Key) {
        let Some(state) = self.entries.get_mut(&key) else { return };
        let Some(holder) = state.holder.take() else { return };
        let entry = Entry(state.entry);
        self.forget_lock(&holder, key, entry);
        if holder.tid != event.tid {
            self.violate(
                Invariant::SingleHolder,
                Some(key),
                "a lock was released by a thread that does not hold it",
                vec![holder, *event],
            );
        }
    }

    fn forget_lock(&mut self, holder: &Event, key: Key, entry: Entry) {
        if let Some(keys) = self.held.get_mut(&holder.tid) {
            keys.retain(|k| *k != key);
        }
        self.locked_values.remove(&(key.mapping, entry.0));
    }

    fn entry_wait(&mut self, event: &Event) {
        let mapping = event.arg(Arg::Mapping);
        let key = Key { mapping, start: event.arg(Arg::KeyStart) };
        let waited = Entry(event.arg(Arg::Entry));
        self.waiters.insert(event.tid, *event);
        self.queues.entry(key).or_default().asleep += 1;
        let key_is_held = self.entries.get(&key).is_some_and(|state| state.holder.is_some());
        if key_is_held {
            return;
        }
        // The entry the waiter saw locked is held under another key: the
        // unlock will wake that key's queue, never this one.
        if let Some(&held_key) = self.locked_values.get(&(mapping, waited.0)) {
            let holder = self.entries.get(&held_key).and_then(|state| state.holder);
            let events = holder.into_iter().chain([*event]).collect();
            let what = format!(
                "a waiter sleeps on index {} but its entry is locked at index {}",
                key.start, held_key.start
            );
            self.violate(Invariant::WaiterWoken, Some(key), &what, events);
        }
    }
}

/// A per-thread map's values, oldest first (reports come out in time order).
fn drain_by_time<T>(map: &mut HashMap<u32, T>, time: impl Fn(&T) -> u64) -> Vec<T> {
    let mut values: Vec<T> = map.drain().map(|(_, value)| value).collect();
    values.sort_by_key(|value| time(value));
    values
}

/// The entry an unlock or wake event names: (mapping, the entry's start), as
/// `dax_entry_waitqueue` computes the wake key.
fn entry_key(event: &Event) -> Key {
    Key { mapping: event.arg(Arg::Mapping), start: Entry(event.arg(Arg::Entry)).start(event.arg(Arg::Index)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::test_support::*;
    use crate::hooks::{ENTRY_STATE, FALLBACK_PROBES, WAIT_WAKE};

    const A: u64 = 0x7f00_0000_0000;
    const PMD: u64 = 0x100;

    fn run(events: &[Event]) -> Analysis {
        let groups = [ENTRY_STATE, WAIT_WAKE, FALLBACK_PROBES].map(String::from);
        let mut analysis = Analysis::new(&groups);
        for (time, event) in events.iter().enumerate() {
            analysis.push(&Event { time_ns: time as u64, ..*event });
        }
        analysis.finish();
        analysis
    }

    fn broken(events: &[Event]) -> Vec<Invariant> {
        run(events).violations.iter().map(|v| v.invariant).collect()
    }

    fn pmd_entry(locked: bool) -> u64 {
        dax_entry(0x1000, true, locked)
    }

    fn pte_entry(pfn: u64) -> u64 {
        dax_entry(pfn, false, false)
    }

    fn fault(kind: Kind, tid: u32, address: u64, result: u64) -> Event {
        crate::events::test_support::fault(
            kind,
            tid,
            address,
            A,
            A + (4 << 20),
            (address - A) >> 12,
            VM_SHARED_RW,
            1024,
            result,
        )
    }

    /// One clean PMD fault of thread `tid` at A: lock a new entry, replace it, unlock.
    fn pmd_fault(tid: u32) -> Vec<Event> {
        vec![
            fault(Kind::PmdFault, tid, A, 0),
            lock(tid, 0, 0, pmd_entry(false)),
            pmd_fault_iter(tid, 0),
            lock(tid, 0, pmd_entry(true), pmd_entry(false)),
            unlock(tid, 0, pmd_entry(false)),
            wake(tid, 0, pmd_entry(false), false),
            fault(Kind::PmdFaultDone, tid, A, PMD),
        ]
    }

    #[test]
    fn a_clean_stream_passes() {
        let mut events = pmd_fault(1);
        // Another thread waits for the entry while thread 1 holds it, then takes it.
        events.insert(2, wait(2, 0, 0, pmd_entry(true)));
        events.push(woken(2, 0));
        events.extend([lock(2, 0, pmd_entry(false), pmd_entry(false)), unlock(2, 0, pmd_entry(false))]);
        let analysis = run(&events);
        assert!(analysis.violations.is_empty(), "{:#?}", analysis.violations);
        assert_eq!(analysis.stats.faults.pmd_nopage, 1);
    }

    #[test]
    fn lock_released() {
        // A fault returns with its lock held (the lock leaked on a fallback path).
        let mut leak = pmd_fault(1);
        leak.retain(|e| e.kind() != Some(Kind::EntryUnlock) && e.kind() != Some(Kind::EntryWake));
        assert!(broken(&leak).contains(&Invariant::LockReleased));
        // An entry released twice.
        let mut twice = pmd_fault(1);
        twice.push(unlock(1, 0, pmd_entry(false)));
        assert_eq!(broken(&twice), [Invariant::LockReleased]);
        assert!(broken(&pmd_fault(1)).is_empty());
    }

    #[test]
    fn single_holder() {
        // Thread 2 locks the entry thread 1 holds (the XArray said unlocked).
        let events = [lock(1, 0, 0, pmd_entry(false)), lock(2, 0, pmd_entry(false), pmd_entry(false))];
        assert!(broken(&events).contains(&Invariant::SingleHolder));
        // Thread 2 releases thread 1's lock.
        let events =
            [lock(1, 0, 0, pmd_entry(false)), unlock(2, 0, pmd_entry(false)), unlock(1, 0, pmd_entry(false))];
        assert!(broken(&events).contains(&Invariant::SingleHolder));
        let events = [
            lock(1, 0, 0, pmd_entry(false)),
            unlock(1, 0, pmd_entry(false)),
            lock(2, 0, pmd_entry(false), pmd_entry(false)),
            unlock(2, 0, pmd_entry(false)),
        ];
        assert!(broken(&events).is_empty());
    }

    #[test]
    fn two_pte_entries_of_one_range_have_two_holders() {
        let events = [
            lock(1, 0, 0, pte_entry(1)),
            lock(2, 1, 0, pte_entry(2)),
            unlock(1, 0, pte_entry(1)),
            unlock(2, 1, pte_entry(2)),
        ];
        assert!(broken(&events).is_empty(), "{:?}", broken(&events));
    }

    #[test]
    fn pmd_covers_range() {
        // A PMD entry created over a present PTE entry.
        let events = [
            lock(1, 3, 0, pte_entry(7)),
            unlock(1, 3, pte_entry(7)),
            lock(2, 0, 0, pmd_entry(false)),
            unlock(2, 0, pmd_entry(false)),
        ];
        assert_eq!(broken(&events), [Invariant::PmdCoversRange]);
        // A PTE entry created inside a present PMD entry.
        let events = [
            lock(1, 0, 0, pmd_entry(false)),
            unlock(1, 0, pmd_entry(false)),
            lock(2, 5, 0, pte_entry(9)),
            unlock(2, 5, pte_entry(9)),
        ];
        assert_eq!(broken(&events), [Invariant::PmdCoversRange]);
        // The kernel's downgrade: lock the empty PMD, delete it (WAKE_ALL), then a PTE entry.
        let empty_pmd = dax_entry(0, true, false) | dax_probe_common::entry::EMPTY;
        let events = [
            lock(1, 0, 0, empty_pmd),
            unlock(1, 0, empty_pmd),
            lock(2, 5, empty_pmd, empty_pmd),
            wake(2, 5, empty_pmd, true),
            lock(2, 5, 0, pte_entry(9)),
            unlock(2, 5, pte_entry(9)),
        ];
        assert!(broken(&events).is_empty(), "{:?}", broken(&events));
    }

    #[test]
    fn waiter_woken() {
        // The 23c84eb78375 class: the entry is a PTE entry locked at index 3,
        // the waiter hashed its wait on the PMD-aligned index 0.
        let events = [
            lock(1, 3, 0, pte_entry(7)),
            wait(2, 0, 0, pte_entry(7) | 2),
            unlock(1, 3, pte_entry(7)),
            wake(1, 3, pte_entry(7), false),
        ];
        assert!(broken(&events).contains(&Invariant::WaiterWoken));
        // The unlock skipped its wake-up: the waiter is left asleep.
        let events =
            [lock(1, 0, 0, pmd_entry(false)), wait(2, 0, 0, pmd_entry(true)), unlock(1, 0, pmd_entry(false))];
        assert_eq!(
            broken(&events),
            [Invariant::WaiterWoken, Invariant::WaiterWoken],
            "owed wake, still asleep"
        );
        // ... and the waiter's bounded sleep ended without a wake-up.
        let mut timed_out = events.to_vec();
        timed_out.push(woken(2, 0));
        assert_eq!(
            broken(&timed_out),
            [Invariant::WaiterWoken, Invariant::WaiterWoken],
            "owed wake, woken without"
        );
        // A delete woke one of two waiters (WAKE_NEXT where WAKE_ALL is due).
        let events = [
            lock(1, 0, 0, pmd_entry(false)),
            wait(2, 0, 0, pmd_entry(true)),
            wait(3, 0, 0, pmd_entry(true)),
            wake(1, 0, pmd_entry(false), false),
            woken(2, 0),
            woken(3, 0),
        ];
        assert_eq!(broken(&events), [Invariant::WaiterWoken]);
        let mut all = events.to_vec();
        all[3] = wake(1, 0, pmd_entry(false), true);
        // A delete that woke one: the entry is created anew with no WAKE_ALL seen.
        let events = [
            lock(1, 0, 0, pte_entry(1)),
            wake(1, 0, pte_entry(1), false),
            lock(2, 0, 0, pte_entry(1)),
            unlock(2, 0, pte_entry(1)),
        ];
        assert_eq!(broken(&events), [Invariant::WaiterWoken]);
        assert!(broken(&all).is_empty(), "{:?}", broken(&all));
        // A spurious wake-up while the entry is still held: the waiter sleeps again.
        let events = [
            lock(1, 0, 0, pmd_entry(false)),
            wait(2, 0, 0, pmd_entry(true)),
            woken(2, 0),
            wait(2, 0, 0, pmd_entry(true)),
            unlock(1, 0, pmd_entry(false)),
            wake(1, 0, pmd_entry(false), false),
            woken(2, 0),
        ];
        assert!(broken(&events).is_empty(), "{:?}", broken(&events));
        // The kernel's way: unlock, then wake the next waiter, which wakes.
        let events = [
            lock(1, 0, 0, pmd_entry(false)),
            wait(2, 0, 0, pmd_entry(true)),
            unlock(1, 0, pmd_entry(false)),
            wake(1, 0, pmd_entry(false), false),
            woken(2, 0),
        ];
        assert!(broken(&events).is_empty(), "{:?}", broken(&events));
    }

    #[test]
    fn pmd_fault_done() {
        let events = [
            fault(Kind::PmdFault, 1, A, 0),
            fault(Kind::PmdFault, 1, A, 0),
            fault(Kind::PmdFaultDone, 1, A, PMD),
        ];
        assert_eq!(broken(&events), [Invariant::PmdFaultDone]);
        let events = [fault(Kind::PmdFault, 1, A, 0)];
        assert_eq!(broken(&events), [Invariant::PmdFaultDone]);
        let events = [
            fault(Kind::PmdFault, 1, A, 0),
            fault(Kind::PmdFaultDone, 1, A, PMD),
            fault(Kind::PmdFaultDone, 1, A, PMD),
        ];
        assert_eq!(broken(&events), [Invariant::PmdFaultDone]);
    }

    #[test]
    fn fallback_served() {
        let fallback = [fault(Kind::PmdFault, 1, A + 4096, 0), fault(Kind::PmdFaultDone, 1, A + 4096, 0x800)];
        assert_eq!(broken(&fallback), [Invariant::FallbackServed]);
        let mut served = fallback.to_vec();
        served.extend([fault(Kind::PteFault, 1, A + 4096, 0), fault(Kind::PteFaultDone, 1, A + 4096, PMD)]);
        assert!(broken(&served).is_empty());
        let analysis = run(&served);
        assert_eq!(analysis.stats.reasons.get(&Reason::ExtentTooShort), Some(&1));
    }

    #[test]
    fn a_fallback_retried_under_mmap_lock_is_served_by_the_retry() {
        let events = [
            fault(Kind::PmdFault, 1, A + 4096, 0),
            fault(Kind::PmdFaultDone, 1, A + 4096, 0x800),
            fault(Kind::PmdFault, 1, A + 4096, 0),
            fault(Kind::PmdFaultDone, 1, A + 4096, 0x800),
            fault(Kind::PteFault, 1, A + 4096, 0),
            fault(Kind::PteFaultDone, 1, A + 4096, PMD),
        ];
        assert!(broken(&events).is_empty(), "{:?}", broken(&events));
        // A fallback whose thread moves on to another address unserved is not.
        let events = [
            fault(Kind::PmdFault, 1, A + 4096, 0),
            fault(Kind::PmdFaultDone, 1, A + 4096, 0x800),
            fault(Kind::PmdFault, 1, A + (2 << 20), 0),
            fault(Kind::PmdFaultDone, 1, A + (2 << 20), PMD),
        ];
        assert_eq!(broken(&events), [Invariant::FallbackServed]);
    }

    #[test]
    fn invariants_without_their_hooks_are_not_checked() {
        let mut analysis = Analysis::new(&[]);
        analysis.push(&lock(1, 0, 0, pmd_entry(false)));
        analysis.finish();
        assert!(analysis.violations.is_empty());
        assert_eq!(analysis.checked(), [Invariant::PmdFaultDone, Invariant::FallbackServed]);
    }
}
