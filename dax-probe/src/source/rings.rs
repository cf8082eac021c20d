//! The events' ring buffers, one per CPU, read back as one stream in time
//! order.
//!
//! Why one per CPU: a kprobe on x86 runs from an int3 trap, which the kernel
//! enters as an NMI, and there `bpf_ringbuf_reserve` only tries the ring's
//! lock. With one ring for all CPUs, an event was lost whenever another CPU
//! held that lock, however empty the ring (one in a CI run of
//! mixed-contention on Debian's 6.12; 19 191 in one round of the overhead
//! bench on Debian's 7.2, where single-threaded TCG can stop a vCPU while it
//! holds the lock). A CPU's ring is written only by the programs on that
//! CPU, so no reservation waits for another CPU.
//!
//! The order contract (what [`Rings::read`] pushes):
//! - records of one ring in the ring's order (the order its programs
//!   reserved them), as with one ring;
//! - across rings, by stamp: a record is pushed only once every ring is
//!   known to hold no record stamped earlier that has not been taken.
//!
//! That knowledge comes from the programs stamping a record after reserving
//! it (`submit_with` in the eBPF programs): a record not yet reserved when
//! a ring's producer position was read is stamped after that moment. So
//! once a ring has been read up to the producer position it had after a
//! clock read `now`, every record of it stamped before `now` has been
//! taken, and records stamped before the earliest such `now` of all rings
//! may go. A read that stopped short of it (a record reserved and not yet
//! committed: its program still runs) proves nothing new for that ring, and
//! records wait.

use std::{
    mem::offset_of,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd},
    sync::atomic::{fence, AtomicUsize, Ordering},
};

use anyhow::{Context, Result};
use aya::{
    maps::{ArrayOfMaps, Map, MapData, RingBuf},
    Ebpf,
};
use dax_probe_common::{Layout, Record, RAW_TRACEPOINT};
use tokio::io::{unix::AsyncFd, Interest};

/// Bytes of ring buffer for all CPUs together: each CPU's ring gets its
/// share, a power of two between [`RING_MIN`] and [`RING_MAX`].
const RING_BUDGET: u64 = 32 << 20;
const RING_MIN: u64 = 1 << 20;
const RING_MAX: u64 = 16 << 20;

/// The size of each online CPU's ring (the programs' `RING_BYTES`).
pub(super) fn ring_bytes() -> Result<u64> {
    Ok(share(online_cpus()?.len()))
}

fn online_cpus() -> Result<Vec<u32>> {
    aya::util::online_cpus().map_err(unreadable)
}

/// aya's error for a CPU list it could not read, as ours.
fn unreadable((path, error): (&str, std::io::Error)) -> anyhow::Error {
    anyhow::anyhow!("cannot read {path}: {error}")
}

/// Each ring's share of the budget among `cpus` rings.
fn share(cpus: usize) -> u64 {
    let share = RING_BUDGET / cpus.max(1) as u64;
    let power = if share.is_power_of_two() { share } else { share.next_power_of_two() / 2 };
    power.clamp(RING_MIN, RING_MAX)
}

/// Slots of the programs' `EVENTS` map: one per possible CPU.
pub(super) fn possible_cpus() -> Result<u32> {
    Ok(aya::util::nr_cpus().map_err(unreadable)? as u32)
}

/// Every CPU's ring buffer, and what has been taken from them and not yet
/// pushed.
pub(super) struct Rings {
    rings: Vec<CpuRing>,
    /// Readable when a program has woken one of the rings' readers.
    poll: AsyncFd<Epoll>,
    merge: Merge,
}

struct CpuRing {
    ring: RingBuf<MapData>,
    positions: Positions,
}

impl Rings {
    /// Makes a ring of `bytes` for each online CPU and puts it in the
    /// programs' `EVENTS` map, at the CPU's number. A CPU brought online
    /// later has no ring: its programs count their events lost.
    pub(super) fn create(ebpf: &mut Ebpf, bytes: u64) -> Result<Rings> {
        let online = online_cpus()?;
        let mut slots: ArrayOfMaps<&mut MapData, RingBuf<MapData>> =
            ArrayOfMaps::try_from(ebpf.map_mut("EVENTS").context("no EVENTS map")?)?;
        let poll = Epoll::new()?;
        let mut rings = Vec::with_capacity(online.len());
        for cpu in online {
            let definition = aya_obj::Map::new_from_params(
                aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_RINGBUF as u32,
                0,
                0,
                bytes as u32,
                0,
            );
            let map = MapData::create(definition, &format!("dax_events_{cpu}"), None)
                .with_context(|| format!("cannot create the ring buffer of CPU {cpu}"))?;
            let ring = RingBuf::try_from(Map::RingBuf(map))?;
            slots.set(cpu, &ring, 0).with_context(|| format!("cannot give CPU {cpu} its ring buffer"))?;
            poll.add(ring.as_fd())?;
            let positions = Positions::map(ring.as_fd())?;
            rings.push(CpuRing { ring, positions });
        }
        let merge = Merge::new(rings.len());
        // SAFETY: the Epoll owns its descriptor and keeps it open, unchanged,
        // for as long as it lives, and the AsyncFd owns the Epoll.
        let poll = unsafe { AsyncFd::register_with_interest(poll, Interest::READABLE) }
            .map_err(|error| anyhow::anyhow!("cannot poll the ring buffers: {error}"))?;
        Ok(Rings { rings, poll, merge })
    }

    /// Waits until a program has woken the reader of one of the rings.
    pub(super) async fn woken(&mut self) -> Result<()> {
        let mut guard = self.poll.readable_mut().await?;
        guard.get_inner_mut().clear();
        guard.clear_ready();
        Ok(())
    }

    /// Takes every record from the rings and pushes, in the order of the
    /// module's contract, those it may. A tracepoint's record comes raw,
    /// taken apart here with its `layout`.
    pub(super) fn read(
        &mut self,
        layout: &Layout,
        push: &mut impl FnMut(&Record) -> Result<()>,
    ) -> Result<()> {
        self.take(layout)?;
        self.merge.push(push)
    }

    /// Reads the rings after the workload ended, until every record its
    /// programs reserved is pushed. Returns whether every ring was read
    /// whole: a program that never committed its record (not seen in any
    /// run of ours) leaves what follows it unknowable.
    pub(super) fn finish(
        &mut self,
        layout: &Layout,
        push: &mut impl FnMut(&Record) -> Result<()>,
    ) -> Result<bool> {
        let mut complete = false;
        for _ in 0..FINISH_TRIES {
            complete = self.take(layout)?;
            if complete {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.merge.complete_until(u64::MAX);
        self.merge.push(push)?;
        Ok(complete)
    }

    /// Counts and drops every record (a benchmark's `Ring` stage: no
    /// decoding, no order).
    pub(super) fn count(&mut self) -> u64 {
        let mut records = 0;
        for cpu in &mut self.rings {
            while cpu.ring.next().is_some() {
                records += 1;
            }
        }
        records
    }

    /// Moves every committed record into the merge; returns whether every
    /// ring was read up to the producer position it had after the clock
    /// read. A ring so read holds no record stamped before that read that
    /// the merge lacks, now or later.
    fn take(&mut self, layout: &Layout) -> Result<bool> {
        let now = super::live::monotonic_ns();
        // The clock read comes before every position read below.
        fence(Ordering::SeqCst);
        let mut complete = true;
        for (index, cpu) in self.rings.iter_mut().enumerate() {
            let producer = cpu.positions.producer();
            while let Some(item) = cpu.ring.next() {
                self.merge.add_raw(index, &item, layout)?;
            }
            if before(cpu.positions.consumer(), producer) {
                complete = false;
            } else {
                self.merge.ring_complete_until(index, now);
            }
        }
        Ok(complete)
    }
}

/// How often [`Rings::finish`] looks again for records still being written
/// (a millisecond apart).
const FINISH_TRIES: u32 = 1000;

/// Whether ring position `a` is before `b` (positions only grow, and wrap).
fn before(a: usize, b: usize) -> bool {
    (a.wrapping_sub(b) as isize) < 0
}

/// Records taken from the rings, waiting until their turn is known.
///
/// # Invariants
///
/// - `queues[i]` holds ring `i`'s records in the ring's order.
/// - Every record stamped before `sure[i]` that ring `i` will ever hold
///   has been added; the merge pushes up to the least of them.
pub(crate) struct Merge {
    queues: Vec<Queue>,
    sure: Vec<u64>,
}

impl Merge {
    pub(crate) fn new(rings: usize) -> Merge {
        Merge { queues: (0..rings).map(|_| Queue::default()).collect(), sure: vec![0; rings] }
    }

    /// Adds the next record of ring `ring`, its bytes as the ring holds
    /// them: a [`Record`], or one whose fields are a raw tracepoint record,
    /// taken apart with `layout`.
    #[inline(always)]
    fn add_raw(&mut self, ring: usize, bytes: &[u8], layout: &Layout) -> Result<()> {
        let record = self.queues[ring].add(bytes)?;
        if record.kind & RAW_TRACEPOINT != 0 {
            record.kind &= !RAW_TRACEPOINT;
            record.fields = layout.fields(record.kind as usize, &bytes[offset_of!(Record, fields)..]);
        }
        Ok(())
    }

    /// Adds the next record of ring `ring`.
    #[cfg(test)]
    fn add(&mut self, ring: usize, record: Record) {
        self.queues[ring].add(record.as_bytes()).expect("a whole record");
    }

    /// Says that every record of ring `ring` stamped before `until` has been
    /// added.
    pub(crate) fn ring_complete_until(&mut self, ring: usize, until: u64) {
        self.sure[ring] = self.sure[ring].max(until);
    }

    /// Says that of every ring.
    pub(crate) fn complete_until(&mut self, until: u64) {
        for ring in 0..self.sure.len() {
            self.ring_complete_until(ring, until);
        }
    }

    /// The stamp before which every record of every ring has been added.
    fn until(&self) -> u64 {
        self.sure.iter().copied().min().unwrap_or(0)
    }

    /// Pushes, earliest first, every queue's leading records stamped before
    /// `until`.
    pub(crate) fn push(&mut self, push: &mut impl FnMut(&Record) -> Result<()>) -> Result<()> {
        while let Some((ring, bound)) = self.next_run() {
            // The ring whose leading record is earliest goes on while its
            // records are no later than any other ring's leading one: a
            // fault's events on one CPU go in one run, one scan.
            let queue = &mut self.queues[ring];
            while let Some(record) = queue.front().filter(|record| record.time_ns <= bound) {
                push(record)?;
                queue.pop();
            }
        }
        Ok(())
    }

    /// The ring whose leading record is the earliest one stamped before
    /// `until`, and the stamp its run may go to: the earliest of the other
    /// rings' leading records, or just before `until`.
    fn next_run(&self) -> Option<(usize, u64)> {
        let mut earliest: Option<(u64, usize)> = None;
        let until = self.until();
        let mut bound = until.checked_sub(1)?;
        for (ring, queue) in self.queues.iter().enumerate() {
            let Some(time) = queue.front().map(|record| record.time_ns) else { continue };
            match earliest {
                Some((first, _)) if first <= time => bound = bound.min(time),
                _ => {
                    if let Some((first, _)) = earliest {
                        bound = bound.min(first);
                    }
                    earliest = Some((time, ring));
                }
            }
        }
        let (first, ring) = earliest?;
        (first < until).then_some((ring, bound))
    }

    /// Records added and not yet pushed.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.queues.iter().map(|queue| queue.records.len() - queue.head).sum()
    }
}

/// One ring's records in the merge, in the ring's order: the records
/// added, from `head` on those not yet pushed. A record is copied once, from
/// the ring into the vector, and pushed from there: each copy of a record on
/// its way to the trace file was about a tenth of the user-space work per
/// event (a `VecDeque` copied it in through a temporary, and out again).
///
/// # Invariants
///
/// `head <= records.len()`.
#[derive(Default)]
struct Queue {
    records: Vec<Record>,
    head: usize,
}

impl Queue {
    fn front(&self) -> Option<&Record> {
        self.records.get(self.head)
    }

    /// Takes the front record off (there is one: `front` gave it).
    fn pop(&mut self) {
        self.head += 1;
        if self.head >= self.records.len() {
            self.records.clear();
            self.head = 0;
        }
    }

    /// Appends the record whose bytes `bytes` begins with, and returns it.
    #[inline(always)]
    fn add(&mut self, bytes: &[u8]) -> Result<&mut Record> {
        anyhow::ensure!(
            bytes.len() >= size_of::<Record>(),
            "short ring buffer record ({} bytes)",
            bytes.len()
        );
        if self.records.len() == self.records.capacity() && self.head >= self.records.len() / 2 {
            // Full, and at least half of it pushed: the rest, no more than
            // was pushed, moves to the front (so, amortised, a record moves
            // at most once); otherwise the vector grows.
            self.records.drain(..self.head);
            self.head = 0;
        }
        self.records.reserve(1);
        let at = self.records.len();
        // SAFETY: `reserve` left room for one more record at `at`; the copy
        // fills all of its bytes from `bytes`, which holds at least that
        // many, and any bit pattern is a valid Record (integers only).
        unsafe {
            let slot = self.records.as_mut_ptr().add(at);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), slot.cast::<u8>(), size_of::<Record>());
            self.records.set_len(at + 1);
        }
        Ok(&mut self.records[at])
    }
}

/// A read-only mapping of a ring's two position pages: the consumer's
/// position (which aya's reader advances) and the producer's (which the
/// kernel advances as programs reserve).
///
/// # Invariants
///
/// `base` is a live `PAGE_SIZE * 2`-byte shared, read-only mapping of the
/// ring's file descriptor from offset 0, unmapped only on drop.
struct Positions {
    base: *mut libc::c_void,
    page: usize,
}

impl Positions {
    fn map(ring: BorrowedFd<'_>) -> Result<Positions> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: a new shared read-only mapping of two pages of the ring's
        // file (the kernel allows read-only mappings of the position pages);
        // no existing memory is touched.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), 2 * page, libc::PROT_READ, libc::MAP_SHARED, ring.as_raw_fd(), 0)
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("cannot map a ring buffer's positions");
        }
        Ok(Positions { base, page })
    }

    fn consumer(&self) -> usize {
        self.load(0)
    }

    fn producer(&self) -> usize {
        self.load(self.page)
    }

    fn load(&self, offset: usize) -> usize {
        // SAFETY: by the invariants `base + offset` (0 or one page) is in the
        // mapping and page-aligned; the kernel and aya write these words
        // atomically, so an atomic load is the right way to read them.
        unsafe { (*self.base.byte_add(offset).cast::<AtomicUsize>()).load(Ordering::Acquire) }
    }
}

impl Drop for Positions {
    fn drop(&mut self) {
        // SAFETY: by the invariants, the mapping is live and ours alone.
        unsafe { libc::munmap(self.base, 2 * self.page) };
    }
}

/// An epoll instance watching the rings: readable once a program wakes a
/// ring's reader.
struct Epoll(OwnedFd);

impl Epoll {
    fn new() -> Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointer.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("cannot create an epoll instance");
        }
        // SAFETY: `fd` is a new file descriptor no one else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn add(&self, ring: BorrowedFd<'_>) -> Result<()> {
        let mut event = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
        // SAFETY: both descriptors are open; `event` is read during the call only.
        let done =
            unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, ring.as_raw_fd(), &mut event) };
        if done < 0 {
            return Err(std::io::Error::last_os_error()).context("cannot poll a ring buffer");
        }
        Ok(())
    }

    /// Takes the ready rings off the instance's list, so that it is readable
    /// again only on the next wake-up.
    fn clear(&mut self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: `events` has room for the 16 events asked for; timeout 0.
        while unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), 16, 0) } == 16 {}
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(time_ns: u64, tid: u32) -> Record {
        Record {
            time_ns,
            tgid: tid,
            tid,
            kind: 0,
            cpu: 0,
            comm: [0; 16],
            fields: [0; dax_probe_common::FIELD_COUNT],
        }
    }

    fn pushed(merge: &mut Merge) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        merge
            .push(&mut |record| {
                out.push((record.time_ns, record.tid));
                Ok(())
            })
            .unwrap();
        out
    }

    #[test]
    fn rings_interleave_by_stamp() {
        let mut merge = Merge::new(2);
        for (ring, time) in [(0, 10), (1, 11), (0, 12), (1, 13), (1, 14), (0, 20)] {
            merge.add(ring, stamped(time, ring as u32));
        }
        merge.complete_until(15);
        assert_eq!(pushed(&mut merge), [(10, 0), (11, 1), (12, 0), (13, 1), (14, 1)]);
        assert_eq!(merge.waiting(), 1, "the record stamped 20 waits for the other ring");
    }

    #[test]
    fn nothing_is_pushed_until_every_ring_is_known_complete() {
        let mut merge = Merge::new(2);
        merge.add(0, stamped(5, 0));
        assert!(pushed(&mut merge).is_empty());
        // The other ring's record stamped 3 arrives late; it still goes first.
        merge.add(1, stamped(3, 1));
        merge.complete_until(6);
        assert_eq!(pushed(&mut merge), [(3, 1), (5, 0)]);
    }

    #[test]
    fn a_ring_keeps_its_own_order_whatever_the_stamps() {
        // A program preempted between reserving and stamping: its ring holds
        // a later stamp before an earlier one; the ring's order stands.
        let mut merge = Merge::new(1);
        merge.add(0, stamped(9, 1));
        merge.add(0, stamped(7, 2));
        merge.complete_until(10);
        assert_eq!(pushed(&mut merge), [(9, 1), (7, 2)]);
    }

    #[test]
    fn runs_of_one_ring_stop_at_the_next_rings_record() {
        let mut merge = Merge::new(3);
        for (ring, time) in [(0, 1), (0, 2), (0, 3), (0, 10), (1, 5), (2, 5), (2, 6)] {
            merge.add(ring, stamped(time, ring as u32));
        }
        merge.complete_until(20);
        assert_eq!(pushed(&mut merge), [(1, 0), (2, 0), (3, 0), (5, 1), (5, 2), (6, 2), (10, 0)]);
    }

    #[test]
    fn many_rings_come_out_in_stamp_order() {
        // Four rings of increasing stamps (a xorshift's steps), read in
        // slices as a reader would; the output is sorted and complete.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut step = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 1000
        };
        let mut merge = Merge::new(4);
        let mut clocks = [0u64; 4];
        let mut out = Vec::new();
        for slice in 1..=50u64 {
            for _ in 0..40 {
                let ring = (step() % 4) as usize;
                clocks[ring] = clocks[ring].max((slice - 1) * 10_000) + step() % 300;
                merge.add(ring, stamped(clocks[ring], ring as u32));
            }
            merge.complete_until(slice * 10_000);
            out.extend(pushed(&mut merge));
        }
        merge.complete_until(u64::MAX);
        out.extend(pushed(&mut merge));
        assert_eq!(out.len(), 2000);
        assert!(out.windows(2).all(|pair| pair[0].0 <= pair[1].0), "out of order");
    }

    #[test]
    fn each_ring_vouches_for_itself() {
        // Ring 1 was last read whole at 6, ring 0 at 10: only what came
        // before 6 is sure of its place.
        let mut merge = Merge::new(2);
        merge.add(0, stamped(4, 0));
        merge.add(0, stamped(8, 0));
        merge.ring_complete_until(0, 10);
        merge.ring_complete_until(1, 6);
        assert_eq!(pushed(&mut merge), [(4, 0)]);
        merge.add(1, stamped(7, 1));
        merge.ring_complete_until(1, 9);
        assert_eq!(pushed(&mut merge), [(7, 1), (8, 0)]);
    }

    #[test]
    fn completeness_never_goes_back() {
        let mut merge = Merge::new(1);
        merge.complete_until(10);
        merge.complete_until(4);
        merge.add(0, stamped(8, 0));
        assert_eq!(pushed(&mut merge), [(8, 0)]);
    }

    #[test]
    fn a_queue_keeps_its_order_as_it_fills_and_drains() {
        // Uneven adds and pops, more adds than pops for a while and then
        // fewer, so that the queue fills with part of it pushed and moves
        // what is left to its front, time and again.
        let mut queue = Queue::default();
        let (mut added, mut popped, mut most, mut moves) = (0u64, 0u64, 0u64, 0);
        for round in 0..400u64 {
            for _ in 0..(round % 7) * 5 + 1 {
                let head = queue.head;
                queue.add(stamped(added, 0).as_bytes()).unwrap();
                moves += usize::from(queue.head < head);
                added += 1;
                most = most.max(added - popped);
            }
            let pops = (round % 5) * 4 + if round % 100 < 50 { 0 } else { 12 };
            for _ in 0..pops {
                let Some(front) = queue.front() else { break };
                assert_eq!(front.time_ns, popped, "out of order");
                queue.pop();
                popped += 1;
            }
            // It grows only while more than half of it waits.
            assert!(queue.records.capacity() <= 4 * most.max(4) as usize, "grows past what waits");
        }
        while let Some(front) = queue.front() {
            assert_eq!(front.time_ns, popped);
            queue.pop();
            popped += 1;
        }
        assert_eq!(popped, added);
        assert!(moves > 2, "the queue moved its records to the front {moves} times");
    }

    #[test]
    fn a_short_ring_record_is_refused() {
        let mut merge = Merge::new(1);
        let error = merge.add_raw(0, &[0; 100], &Layout::EMPTY).expect_err("refused");
        assert!(error.to_string().contains("short ring buffer record (100 bytes)"), "{error}");
        assert_eq!(merge.waiting(), 0);
    }

    #[test]
    fn positions_compare_across_the_wrap() {
        assert!(before(usize::MAX - 8, 16));
        assert!(!before(16, usize::MAX - 8));
        assert!(!before(40, 40));
    }

    #[test]
    fn ring_sizes_share_the_budget() {
        assert_eq!(share(1), 16 << 20);
        assert_eq!(share(2), 16 << 20);
        assert_eq!(share(3), 8 << 20);
        assert_eq!(share(8), 4 << 20);
        assert_eq!(share(1024), 1 << 20);
    }
}
