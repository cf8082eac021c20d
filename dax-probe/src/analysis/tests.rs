//! The analysis over synthetic streams: each invariant's rules, each with
//! the stream that must break it and one that must not.

use super::*;
use crate::{
    analysis::invariants::Invariant,
    event::Writeback,
    event::{
        Entry,
        WakeMode::{self, All, Next},
    },
    kernel::entry::{EMPTY, LOCKED, PMD as PMD_FLAG, ZERO_PAGE},
    testing::*,
};
use dax_probe_common::Kind;

const A: u64 = 0x7f00_0000_0000;
const PMD: u64 = 0x100;

/// `events` through `analysis` with every hook attached, one nanosecond
/// apart, the stream not yet finished.
fn observed(mut analysis: Analysis, events: &[Event]) -> Analysis {
    let hooks =
        vec![HookGroup::EntryState, HookGroup::WaitWake, HookGroup::FallbackProbes, HookGroup::Truncation];
    analysis.begin(&Begin { hooks, ..Begin::default() });
    for (time, event) in as_created(events).iter().enumerate() {
        analysis.observe(&Event { time_ns: time as u64, ..*event });
    }
    analysis
}

/// The streams name the entry a fault ends up with where it creates one;
/// fs/dax.c stores two: `grab_mapping_entry`'s empty entry, then
/// `dax_insert_entry`'s replace by its holder. Played here as it does.
fn as_created(events: &[Event]) -> Vec<Event> {
    let mut played = Vec::with_capacity(events.len());
    for event in events {
        if let What::EntryLock { at, old, new } = event.what {
            if !old.is_value() && !new.is_empty() {
                let size = if new.is_pmd() { PMD_FLAG } else { 0 };
                let empty = Entry(1 | EMPTY | size | LOCKED);
                played.push(Event { what: What::EntryLock { at, old, new: empty }, ..*event });
                played.push(Event { what: What::EntryLock { at, old: empty, new }, ..*event });
                continue;
            }
        }
        played.push(*event);
    }
    played
}

fn run(events: &[Event]) -> Analysis {
    let mut analysis = observed(Analysis::default(), events);
    analysis.finish(&Summary::default()).unwrap();
    analysis
}

/// The 23c84eb78375 class: the entry is a PTE entry locked at index 3, the
/// waiter (a PMD fault) hashed its wait on the PMD-aligned index 0, and the
/// unlock wakes index 3.
fn missed_wake_up() -> [Event; 4] {
    [
        lock(1, 3, Entry(0), pte_entry(7)),
        wait(2, 0, 0, Entry(pte_entry(7).0 | 2)),
        unlock(1, 3, pte_entry(7)),
        wake(1, 3, pte_entry(7), Next),
    ]
}

fn broken(events: &[Event]) -> Vec<Invariant> {
    run(events).findings().kept().iter().map(|v| v.invariant).collect()
}

/// The rules whose work was in flight where the stream ends.
fn open_at_cut(events: &[Event]) -> Vec<Invariant> {
    run(events).findings().open().iter().map(|v| v.invariant).collect()
}

/// Thread `tid` moves on: an event of its own that is nobody's wake-up.
fn moves_on(tid: u32) -> Event {
    fault(Kind::PteFault, tid, A + (3 << 20), 0)
}

fn pmd_entry(locked: bool) -> Entry {
    dax_entry(0x1000, true, locked)
}

fn pte_entry(pfn: u64) -> Entry {
    dax_entry(pfn, false, false)
}

/// A fault event of `tid` at `address` of a 4 MiB shared mapping at A.
fn fault(kind: Kind, tid: u32, address: u64, result: u64) -> Event {
    let fault = Vma::shared(A, A + (4 << 20), 1024).done(address, result);
    let what = match kind {
        Kind::PmdFault => What::PmdFault(fault),
        Kind::PmdFaultDone => What::PmdFaultDone(fault),
        Kind::PteFault => What::PteFault(fault),
        Kind::PteFaultDone => What::PteFaultDone(fault),
        _ => unreachable!("a fault kind"),
    };
    event(tid, what)
}
/// One clean PMD fault of thread `tid` at A: lock a new entry, replace it, unlock.
fn pmd_fault(tid: u32) -> Vec<Event> {
    vec![
        fault(Kind::PmdFault, tid, A, 0),
        lock(tid, 0, Entry(0), pmd_entry(false)),
        pmd_fault_iter(tid, 0),
        lock(tid, 0, pmd_entry(true), pmd_entry(false)),
        unlock(tid, 0, pmd_entry(false)),
        wake(tid, 0, pmd_entry(false), Next),
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
    assert!(analysis.findings().kept().is_empty(), "{:#?}", analysis.findings().kept());
    assert_eq!(analysis.stats.faults.pmd_nopage, 1);
}

#[test]
fn lock_released() {
    // A fault returns with its lock held (the lock leaked on a fallback path).
    let mut leak = pmd_fault(1);
    leak.retain(|e| e.kind() != Kind::EntryUnlock && e.kind() != Kind::EntryWake);
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
    let events = [lock(1, 0, Entry(0), pmd_entry(false)), lock(2, 0, pmd_entry(false), pmd_entry(false))];
    assert!(broken(&events).contains(&Invariant::SingleHolder));
    // Thread 2 releases thread 1's lock.
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        unlock(2, 0, pmd_entry(false)),
        unlock(1, 0, pmd_entry(false)),
    ];
    assert!(broken(&events).contains(&Invariant::SingleHolder));
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        unlock(1, 0, pmd_entry(false)),
        lock(2, 0, pmd_entry(false), pmd_entry(false)),
        unlock(2, 0, pmd_entry(false)),
    ];
    assert!(broken(&events).is_empty());
}

#[test]
fn two_pte_entries_of_one_range_have_two_holders() {
    let events = [
        lock(1, 0, Entry(0), pte_entry(1)),
        lock(2, 1, Entry(0), pte_entry(2)),
        unlock(1, 0, pte_entry(1)),
        unlock(2, 1, pte_entry(2)),
    ];
    assert!(broken(&events).is_empty(), "{:?}", broken(&events));
}

#[test]
fn pmd_covers_range() {
    // A PMD entry created over a present PTE entry.
    let events = [
        lock(1, 3, Entry(0), pte_entry(7)),
        unlock(1, 3, pte_entry(7)),
        lock(2, 0, Entry(0), pmd_entry(false)),
        unlock(2, 0, pmd_entry(false)),
    ];
    assert_eq!(broken(&events), [Invariant::PmdCoversRange]);
    // A PTE entry created inside a present PMD entry.
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        unlock(1, 0, pmd_entry(false)),
        lock(2, 5, Entry(0), pte_entry(9)),
        unlock(2, 5, pte_entry(9)),
    ];
    assert_eq!(broken(&events), [Invariant::PmdCoversRange]);
    let empty_pmd = Entry(dax_entry(0, true, false).0 | EMPTY);
    let analysis = run(&downgrade(empty_pmd, All));
    assert!(analysis.findings().kept().is_empty(), "{:?}", analysis.findings().kept());
    let life = &analysis.stats.entry_life;
    assert_eq!((life.downgraded_empty, life.downgraded_zero_page), (1, 0));
}

/// The kernel's downgrade of `pmd` (zero-page or empty, made by thread 1)
/// by a 4 KiB fault of thread 2: lock it, delete it with a wake-up of
/// `mode` (WAKE_ALL in fs/dax.c), then insert the PTE entry.
fn downgrade(pmd: Entry, mode: WakeMode) -> Vec<Event> {
    vec![
        lock(1, 0, Entry(0), pmd),
        unlock(1, 0, pmd),
        lock(2, 5, pmd, pmd),
        wake(2, 5, pmd, mode),
        lock(2, 5, Entry(0), pte_entry(9)),
        unlock(2, 5, pte_entry(9)),
    ]
}

/// A zero-page PMD entry downgraded by a 4 KiB write is counted as such; a
/// real PMD entry deleted by somebody who does not hold it (a punch) is no
/// downgrade.
#[test]
fn downgrades_are_deletes_of_zero_page_or_empty_pmd_entries_by_their_holder() {
    let zero_pmd = Entry(dax_entry(0, true, false).0 | ZERO_PAGE);
    let mut events = downgrade(zero_pmd, All);
    events.extend([
        lock(3, 512, Entry(0), pmd_entry(false)),
        unlock(3, 512, pmd_entry(false)),
        wake(4, 512, pmd_entry(false), All),
    ]);
    let analysis = run(&events);
    assert!(analysis.findings().kept().is_empty(), "{:?}", analysis.findings().kept());
    let life = &analysis.stats.entry_life;
    assert_eq!((life.downgraded_zero_page, life.downgraded_empty), (1, 0));
    // 237388320def's class at the downgrade: the delete woke one waiter.
    assert_eq!(broken(&downgrade(zero_pmd, Next)), [Invariant::WaiterWoken]);
}

/// `dax_writeback_one(index, count)` on thread `tid`.
fn written_back(tid: u32, pgoff: u64, pglen: u64) -> Event {
    event(tid, What::WritebackOne(Writeback { pgoff, pglen, ..Writeback::default() }))
}

#[test]
fn writeback_whole() {
    // fs/dax.c: lock the dirty PMD entry (found from index 7, mid-range),
    // store it back unlocked with a WAKE_NEXT, trace 512 pages from 0.
    let whole = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        unlock(1, 0, pmd_entry(false)),
        lock(2, 7, pmd_entry(false), pmd_entry(false)),
        wake(2, 7, pmd_entry(false), Next),
        written_back(2, 0, 512),
        lock(2, 600, Entry(0), pte_entry(3)),
        unlock(2, 600, pte_entry(3)),
        written_back(2, 600, 1),
    ];
    let analysis = run(&whole);
    assert!(analysis.findings().kept().is_empty(), "{:?}", analysis.findings().kept());
    let life = &analysis.stats.entry_life;
    assert_eq!((life.written_back_pmd, life.written_back_pte), (1, 1));
    // The alignment dropped: 512 pages from where the walk found the entry.
    let mut shifted = whole.to_vec();
    shifted[4] = written_back(2, 7, 512);
    assert_eq!(broken(&shifted), [Invariant::WritebackWhole]);
    // Less than the entry.
    let mut short = whole.to_vec();
    short[4] = written_back(2, 0, 1);
    assert_eq!(broken(&short), [Invariant::WritebackWhole]);
    // A writeback whose lock came before the trace began is not judged.
    assert!(broken(&[written_back(2, 7, 3)]).is_empty());
}

/// A PMD entry at 0 and a PTE entry at 515 made and released, then a
/// truncate of the whole file as 7.2 does it: the layout break deletes
/// each (unlocked, with a WAKE_ALL), then the page cache is truncated.
fn truncate_whole_file() -> Vec<Event> {
    let pte = pte_entry(3);
    vec![
        lock(1, 0, Entry(0), pmd_entry(false)),
        unlock(1, 0, pmd_entry(false)),
        wake(1, 0, pmd_entry(false), Next),
        lock(1, 515, Entry(0), pte),
        unlock(1, 515, pte),
        wake(1, 515, pte, Next),
        wake(2, 0, pmd_entry(false), All),
        wake(2, 515, pte, All),
        truncated(2, 0, u64::MAX),
    ]
}

#[test]
fn truncate_empties_range() {
    let analysis = run(&truncate_whole_file());
    assert!(analysis.findings().kept().is_empty(), "{:?}", analysis.findings().kept());
    let life = &analysis.stats.entry_life;
    assert_eq!((life.truncates, life.deleted_pmd, life.deleted_pte), (1, 1, 1));
    // The PTE entry's delete is missing: it survived the truncate.
    let mut survivor = truncate_whole_file();
    survivor.remove(7);
    assert_eq!(broken(&survivor), [Invariant::TruncateEmptiesRange]);
    // Pages 1 to 1023 (bytes 1 to 4 MiB - 1, the first page partial): the
    // PTE entry is inside, the PMD entry at 0 is not wholly, and stays.
    let mut partial = survivor.clone();
    *partial.last_mut().unwrap() = truncated(2, 1, (4 << 20) - 1);
    assert_eq!(broken(&partial), [Invariant::TruncateEmptiesRange]);
    partial.remove(6);
    assert_eq!(broken(&partial), [Invariant::TruncateEmptiesRange], "the PMD entry is not judged");
    // Without the truncation hooks nothing is judged.
    let mut analysis = Analysis::default();
    analysis.begin(&Begin { hooks: vec![HookGroup::EntryState], ..Begin::default() });
    as_created(&survivor).iter().for_each(|event| analysis.observe(event));
    assert!(analysis.findings().kept().is_empty());
}

#[test]
fn pte_conflict_real() {
    // After the truncate, a PMD fault at index 700 falls back for PTE
    // entries: range 512..1023 holds none.
    let mut events = truncate_whole_file();
    events.push(grab_fallback(3, 700));
    assert_eq!(broken(&events), [Invariant::PteConflictReal]);
    // A PTE entry made in the range since: a real conflict.
    let mut made = truncate_whole_file();
    made.extend([lock(4, 600, Entry(0), pte_entry(8)), unlock(4, 600, pte_entry(8)), grab_fallback(3, 700)]);
    assert!(broken(&made).is_empty(), "{:?}", broken(&made));
    // ... and deleted again by a later truncate: the range is empty again.
    made.extend([wake(2, 600, pte_entry(8), All), truncated(2, 0, u64::MAX), grab_fallback(3, 700)]);
    assert_eq!(broken(&made), [Invariant::PteConflictReal]);
    // A range no truncate emptied whole (pages 513.. only) is not judged,
    // nor one the trace never saw truncated.
    let mut partial = truncate_whole_file();
    *partial.last_mut().unwrap() = truncated(2, (513 << 12) - 1, u64::MAX);
    partial.push(grab_fallback(3, 700));
    assert!(broken(&partial).is_empty(), "{:?}", broken(&partial));
    assert!(broken(&[grab_fallback(3, 700)]).is_empty());
}

#[test]
fn waiter_woken() {
    assert!(broken(&missed_wake_up()).contains(&Invariant::WaiterWoken));
    // The unlock skipped its wake-up (its thread moved on): the waiter is left asleep.
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        wait(2, 0, 0, pmd_entry(true)),
        unlock(1, 0, pmd_entry(false)),
        moves_on(1),
    ];
    assert_eq!(broken(&events), [Invariant::WaiterWoken, Invariant::WaiterWoken], "owed wake, still asleep");
    // Cut right after the unlock: its wake-up may come after the cut.
    let cut = &events[..3];
    assert!(broken(cut).is_empty(), "{:?}", broken(cut));
    assert_eq!(open_at_cut(cut), [Invariant::WaiterWoken, Invariant::WaiterWoken], "owed wake, owed waiter");
    // A waiter asleep on a free entry owed nothing is a lost wake-up, cut or not.
    let lost = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        unlock(1, 0, pmd_entry(false)),
        wake(1, 0, pmd_entry(false), Next),
        wait(2, 0, 0, pmd_entry(true)),
    ];
    assert_eq!(broken(&lost), [Invariant::WaiterWoken]);
    // Asleep on an entry still held at the cut: in flight.
    let held = [lock(1, 0, Entry(0), pmd_entry(false)), wait(2, 0, 0, pmd_entry(true))];
    assert!(broken(&held).is_empty(), "{:?}", broken(&held));
    assert_eq!(open_at_cut(&held), [Invariant::LockReleased, Invariant::WaiterWoken]);
    // ... and the waiter's bounded sleep ended, back on a free entry with
    // no wake-up told.
    let timed_out = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        wait(2, 0, 0, pmd_entry(true)),
        unlock(1, 0, pmd_entry(false)),
        moves_on(1),
        woken(2, 0),
    ];
    assert_eq!(
        broken(&timed_out),
        [Invariant::WaiterWoken, Invariant::WaiterWoken],
        "owed wake, woken without"
    );
    // Back between the unlock and its thread's next event: the unlock's
    // wake-up may still come, and whether it does is judged there, once.
    // With another waiter still asleep, it is owed...
    let mut back_early = timed_out.to_vec();
    back_early.swap(3, 4);
    back_early.insert(2, wait(4, 0, 0, pmd_entry(true)));
    assert_eq!(broken(&back_early), [Invariant::WaiterWoken, Invariant::WaiterWoken], "owed wake");
    // ... with no waiter left anywhere, it wakes nobody, and the programs
    // leave such a WAKE_NEXT out.
    let nobody_left: Vec<Event> = back_early.iter().copied().filter(|event| event.tid != 4).collect();
    assert!(broken(&nobody_left).is_empty(), "{:?}", broken(&nobody_left));
    // A delete (a downgrade: its holder deletes a zero-page PMD entry) woke
    // one of two waiters (WAKE_NEXT where WAKE_ALL is due).
    let zero_pmd = Entry(dax_entry(0, true, false).0 | ZERO_PAGE);
    let events = [
        lock(1, 0, Entry(0), zero_pmd),
        wait(2, 0, 0, Entry(zero_pmd.0 | LOCKED)),
        wait(3, 0, 0, Entry(zero_pmd.0 | LOCKED)),
        wake(1, 0, zero_pmd, Next),
        woken(2, 0),
        woken(3, 0),
    ];
    assert_eq!(broken(&events), [Invariant::WaiterWoken]);
    let mut all = events.to_vec();
    all[3] = wake(1, 0, zero_pmd, All);
    // A delete that woke one: the entry is created anew with no WAKE_ALL seen.
    let events = [
        lock(1, 0, Entry(0), pte_entry(1)),
        wake(1, 0, pte_entry(1), Next),
        lock(2, 0, Entry(0), pte_entry(1)),
        unlock(2, 0, pte_entry(1)),
    ];
    assert_eq!(broken(&events), [Invariant::WaiterWoken]);
    assert!(broken(&all).is_empty(), "{:?}", broken(&all));
    // A spurious wake-up while the entry is still held: the waiter sleeps again.
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        wait(2, 0, 0, pmd_entry(true)),
        woken(2, 0),
        wait(2, 0, 0, pmd_entry(true)),
        unlock(1, 0, pmd_entry(false)),
        wake(1, 0, pmd_entry(false), Next),
        woken(2, 0),
    ];
    assert!(broken(&events).is_empty(), "{:?}", broken(&events));
    // The kernel's way: unlock, then wake the next waiter, which wakes.
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        wait(2, 0, 0, pmd_entry(true)),
        unlock(1, 0, pmd_entry(false)),
        wake(1, 0, pmd_entry(false), Next),
        woken(2, 0),
    ];
    assert!(broken(&events).is_empty(), "{:?}", broken(&events));
    // A spurious wake-up between the unlock and its wake-up (its thread
    // preempted after dropping the xa_lock): the waiter takes the entry.
    let mut spurious = events.to_vec();
    spurious.swap(3, 4);
    spurious.extend([lock(2, 0, pmd_entry(false), pmd_entry(false)), unlock(2, 0, pmd_entry(false))]);
    spurious.push(wake(2, 0, pmd_entry(false), Next));
    assert!(broken(&spurious).is_empty(), "{:?}", broken(&spurious));
}

#[test]
fn pmd_fault_done() {
    let events = [
        fault(Kind::PmdFault, 1, A, 0),
        fault(Kind::PmdFault, 1, A, 0),
        fault(Kind::PmdFaultDone, 1, A, PMD),
    ];
    assert_eq!(broken(&events), [Invariant::PmdFaultDone]);
    // Open where the trace ends: in flight at the cut, not a violation.
    let events = [fault(Kind::PmdFault, 1, A, 0)];
    assert!(broken(&events).is_empty());
    assert_eq!(open_at_cut(&events), [Invariant::PmdFaultDone]);
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
    // The trace ends before the PTE fault could come: in flight at the cut.
    assert!(broken(&fallback).is_empty());
    assert_eq!(open_at_cut(&fallback), [Invariant::FallbackServed]);
    // The thread moves on to another address without it: not served.
    let mut unserved = fallback.to_vec();
    unserved.extend([
        fault(Kind::PmdFault, 1, A + (2 << 20), 0),
        fault(Kind::PmdFaultDone, 1, A + (2 << 20), PMD),
    ]);
    assert_eq!(broken(&unserved), [Invariant::FallbackServed]);
    let mut served = fallback.to_vec();
    served.extend([fault(Kind::PteFault, 1, A + 4096, 0), fault(Kind::PteFaultDone, 1, A + 4096, PMD)]);
    assert!(broken(&served).is_empty());
    let analysis = run(&served);
    assert_eq!(analysis.stats.reasons[Reason::ExtentTooShort as usize], 1);
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
fn entry_transitions() {
    // Created as what it maps, not empty.
    let mut analysis = Analysis::default();
    analysis.begin(&Begin { hooks: vec![HookGroup::EntryState], ..Begin::default() });
    analysis.observe(&lock(1, 0, Entry(0), pmd_entry(false)));
    let named: Vec<_> = analysis.findings().kept().iter().map(|v| v.invariant).collect();
    assert_eq!(named, [Invariant::EntryTransitions]);
    // Its holder deletes a real PMD entry (a punch that locks, as the
    // reference module's did): only zero-page and empty ones are deleted so.
    let real = downgrade(pmd_entry(false), All);
    assert_eq!(broken(&real), [Invariant::EntryTransitions]);
    let real_pte = [lock(1, 3, Entry(0), pte_entry(7)), wake(1, 3, pte_entry(7), All)];
    assert_eq!(broken(&real_pte), [Invariant::EntryTransitions]);
    // A delete by nobody's holder (truncate) is not one.
    let truncated =
        [lock(1, 3, Entry(0), pte_entry(7)), unlock(1, 3, pte_entry(7)), wake(2, 3, pte_entry(7), All)];
    assert!(broken(&truncated).is_empty(), "{:?}", broken(&truncated));
}

#[test]
fn invariants_without_their_hooks_are_not_checked() {
    let mut analysis = Analysis::default();
    analysis.begin(&Begin::default());
    analysis.observe(&lock(1, 0, Entry(0), pmd_entry(false)));
    analysis.finish(&Summary::default()).unwrap();
    assert!(analysis.findings().kept().is_empty());
    assert_eq!(analysis.findings().checked(), [Invariant::PmdFaultDone, Invariant::FallbackServed]);
}

/// Where `dax_entry_waitqueue` is inlined, the wait hook knows the key but
/// not the entry the waiter found.
#[test]
fn waiter_woken_without_the_waited_entry() {
    let unknown = Entry(0);
    // The 23c84eb78375 class again: a PTE entry is held at index 3, a waiter
    // sleeps on the PMD-aligned index 0, which nobody holds.
    let events = [lock(1, 3, Entry(0), pte_entry(7)), wait(2, 0, 0, unknown)];
    assert!(broken(&events).contains(&Invariant::WaiterWoken));
    // A waiter on the held entry's own key is the kernel's way.
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        wait(2, 0, 0, unknown),
        unlock(1, 0, pmd_entry(false)),
        wake(1, 0, pmd_entry(false), Next),
        woken(2, 0),
    ];
    assert!(broken(&events).is_empty(), "{:?}", broken(&events));
    // The unlock hook runs before the unlocking store: a waiter that found
    // the entry still locked queues after the unlock event, before the wake,
    // while another entry of the range is held.
    let events = [
        lock(1, 3, Entry(0), pte_entry(7)),
        lock(3, 5, Entry(0), pte_entry(8)),
        unlock(1, 3, pte_entry(7)),
        wait(2, 3, 3, unknown),
        wake(1, 3, pte_entry(7), Next),
        woken(2, 3),
        unlock(3, 5, pte_entry(8)),
        wake(3, 5, pte_entry(8), Next),
    ];
    assert!(broken(&events).is_empty(), "{:?}", broken(&events));
}

/// A waiter woken by one unlock is off the queue before it runs again: the
/// next unlock, by whoever took the entry meanwhile, owes it nothing.
#[test]
fn an_unlock_owes_no_wake_to_a_waiter_already_woken() {
    let events = [
        lock(1, 0, Entry(0), pmd_entry(false)),
        wait(2, 0, 0, pmd_entry(true)),
        unlock(1, 0, pmd_entry(false)),
        wake(1, 0, pmd_entry(false), Next),
        lock(3, 0, pmd_entry(false), pmd_entry(false)),
        unlock(3, 0, pmd_entry(false)),
        woken(2, 0),
    ];
    assert!(broken(&events).is_empty(), "{:?}", broken(&events));
    // With the waiter not woken, the second unlock owes the wake-up, and
    // its thread moves on without it while the waiter sleeps.
    let mut owed = events[..6].to_vec();
    owed.remove(3);
    owed.push(moves_on(3));
    assert!(broken(&owed).contains(&Invariant::WaiterWoken));
}

/// `events` live, with a stall limit of 10 s, then the clock at `now_s`:
/// whether the analysis ends the session, and what it found.
fn stalled_at(events: &[Event], now_s: u64) -> (bool, Vec<Invariant>) {
    let live = Analysis::default().stall_after(std::time::Duration::from_secs(10));
    let mut analysis = observed(live, events);
    let stuck = analysis.tick(now_s * 1_000_000_000);
    (stuck, analysis.findings().kept().iter().map(|v| v.invariant).collect())
}

/// The live stall detector: a waiter past the limit whose entry is free
/// and owed no wake-up ends the session with a violation; one whose entry
/// is still held, or that was woken, does not.
#[test]
fn a_lost_wake_up_is_told_live_and_ends_the_session() {
    // Told at the wait, and again as a stall.
    let missed = missed_wake_up();
    assert_eq!(stalled_at(&missed, 5), (false, vec![Invariant::WaiterWoken]));
    assert_eq!(stalled_at(&missed, 11), (true, vec![Invariant::WaiterWoken, Invariant::WaiterWoken]));
    // The same wait taken in the unlock's window (its hook has run, its
    // store not yet): the waiter found the entry at 3 still locked.
    let mut in_the_window = missed.to_vec();
    in_the_window.swap(1, 2);
    assert_eq!(stalled_at(&in_the_window, 11), (true, vec![Invariant::WaiterWoken, Invariant::WaiterWoken]));
    // A delete that woke one of two waiters: the other sleeps for good.
    let zero_pmd = Entry(dax_entry(0, true, false).0 | ZERO_PAGE);
    let wake_one = [
        lock(1, 0, Entry(0), zero_pmd),
        wait(2, 0, 5, Entry(zero_pmd.0 | 2)),
        wait(3, 0, 9, Entry(zero_pmd.0 | 2)),
        wake(1, 0, zero_pmd, Next),
        woken(2, 0),
    ];
    assert_eq!(stalled_at(&wake_one, 11), (true, vec![Invariant::WaiterWoken]));
    let mut all = wake_one.to_vec();
    all[3] = wake(1, 0, zero_pmd, All);
    assert_eq!(stalled_at(&all, 11), (false, vec![]));
    // Held past the limit: a slow holder, not a lost wake-up.
    let held = [lock(1, 0, Entry(0), pmd_entry(false)), wait(2, 0, 0, pmd_entry(true))];
    assert_eq!(stalled_at(&held, 60), (false, vec![]));
}
