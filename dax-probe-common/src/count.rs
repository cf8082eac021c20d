//! The counting mode: faults by size and outcome, fallbacks by reason,
//! latency histograms and every fs_dax tracepoint's hits, aggregated by the
//! programs in kernel maps that user space reads now and then. No event
//! leaves the kernel, so nothing here can check an invariant: those need
//! the stream.

use crate::{
    fallback::REASON_COUNT,
    mm::{VM_FAULT_FALLBACK, VM_FAULT_NOPAGE},
    TRACEPOINT_COUNT,
};

/// A fault's size: which handler served it.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Pte,
    Pmd,
}
pub const SIZE_COUNT: usize = 2;

/// What a finished fault's result says.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// VM_FAULT_NOPAGE: the handler mapped the page (or the 2 MiB) itself.
    Mapped,
    /// VM_FAULT_FALLBACK: a PMD fault gave up; the PTE path serves it.
    Fallback,
    /// Anything else: an error (SIGBUS, OOM, ...), a retry, a copy-on-write.
    Other,
}
pub const OUTCOME_COUNT: usize = 3;

impl Outcome {
    /// The outcome of a `dax_*_fault_done`'s `result` (the stream's
    /// analysis reads results the same way).
    pub const fn of(result: u64) -> Outcome {
        if result & VM_FAULT_FALLBACK != 0 {
            Outcome::Fallback
        } else if result & VM_FAULT_NOPAGE != 0 {
            Outcome::Mapped
        } else {
            Outcome::Other
        }
    }
}

/// Latency histogram buckets: bucket 0 holds 0 ns, bucket b > 0 holds
/// [2^(b-1), 2^b) ns; the last also holds everything longer.
pub const LATENCY_BUCKETS: usize = 40;

/// The bucket of a latency of `ns` nanoseconds.
#[inline(always)]
pub const fn latency_bucket(ns: u64) -> usize {
    let bits = (u64::BITS - ns.leading_zeros()) as usize;
    if bits < LATENCY_BUCKETS {
        bits
    } else {
        LATENCY_BUCKETS - 1
    }
}

/// The aggregates of one CPU (a per-CPU map of one of these; user space sums them).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Hits of each fs_dax tracepoint, in [`crate::TRACEPOINTS`] order.
    pub events: [u64; TRACEPOINT_COUNT],
    /// Finished faults, `[Size][Outcome]`.
    pub faults: [[u64; OUTCOME_COUNT]; SIZE_COUNT],
    /// PMD fallbacks by [`crate::fallback::Reason`].
    pub fallbacks: [u64; REASON_COUNT],
    /// Finished faults whose start was not seen (begun before the probe
    /// was attached), by [`Size`]: counted, but in no latency bucket.
    pub untimed: [u64; SIZE_COUNT],
    /// Latencies from a fault's start to its done, `[Size][bucket]`.
    pub latency: [[u64; LATENCY_BUCKETS]; SIZE_COUNT],
    /// Their sum in nanoseconds, by [`Size`].
    pub latency_sum_ns: [u64; SIZE_COUNT],
}

impl Totals {
    pub const ZERO: Totals = Totals {
        events: [0; TRACEPOINT_COUNT],
        faults: [[0; OUTCOME_COUNT]; SIZE_COUNT],
        fallbacks: [0; REASON_COUNT],
        untimed: [0; SIZE_COUNT],
        latency: [[0; LATENCY_BUCKETS]; SIZE_COUNT],
        latency_sum_ns: [0; SIZE_COUNT],
    };

    /// Adds `other`'s counts to these (user space sums the CPUs' totals,
    /// and takes differences for rates with [`Totals::since`]).
    pub fn add(&mut self, other: &Totals) {
        self.zip(other, |a, b| a.wrapping_add(b));
    }

    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &Totals) -> Totals {
        let mut delta = *self;
        delta.zip(earlier, |a, b| a.wrapping_sub(b));
        delta
    }

    fn zip(&mut self, other: &Totals, f: impl Fn(u64, u64) -> u64) {
        let pairs = self.events.iter_mut().zip(&other.events);
        let pairs = pairs.chain(self.faults.iter_mut().flatten().zip(other.faults.iter().flatten()));
        let pairs = pairs.chain(self.fallbacks.iter_mut().zip(&other.fallbacks));
        let pairs = pairs.chain(self.untimed.iter_mut().zip(&other.untimed));
        let pairs = pairs.chain(self.latency.iter_mut().flatten().zip(other.latency.iter().flatten()));
        let pairs = pairs.chain(self.latency_sum_ns.iter_mut().zip(&other.latency_sum_ns));
        pairs.for_each(|(a, b)| *a = f(*a, *b));
    }

    /// Finished faults of one size.
    pub fn faults_of(&self, size: Size) -> u64 {
        self.faults[size as usize].iter().sum()
    }
}

/// Faults of one process or file, for the breakdowns.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// `[Size][Outcome]`, as in [`Totals::faults`].
    pub faults: [[u64; OUTCOME_COUNT]; SIZE_COUNT],
}

/// A process in the breakdown: its name when first seen, and its faults.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessTally {
    pub comm: [u8; 16],
    pub tally: Tally,
}

/// A file in the breakdown, keyed by its `struct inode *`: its device and
/// inode number when first seen, and its faults.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileTally {
    /// `dev_t` as the tracepoints carry it.
    pub dev: u64,
    pub ino: u64,
    pub tally: Tally,
}

/// Entries of each breakdown map; a process or file past them is counted
/// in the totals only, and [`Totals`]' sum then exceeds the breakdown's.
pub const BREAKDOWN_ENTRIES: u32 = 4096;

/// Byte offsets of the kernel structure members the programs read, from
/// the running kernel's BTF (they move between kernel versions and builds).
/// A zero `vma` means unknown: the programs then classify no fallback by
/// its fields, and user space says so.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// `struct vm_fault`: `vma`, `pgoff`, `address`, `flags`.
    pub vmf_vma: u32,
    pub vmf_pgoff: u32,
    pub vmf_address: u32,
    pub vmf_flags: u32,
    /// `struct vm_area_struct`: `vm_start`, `vm_end`, `vm_flags`.
    pub vma_start: u32,
    pub vma_end: u32,
    pub vma_flags: u32,
    /// `struct inode`: `i_ino`, `i_sb`; `struct super_block`: `s_dev`.
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub sb_dev: u32,
    /// `struct task_struct`: `comm`. 0: unknown, and the programs ask the
    /// kernel for the name instead (`bpf_get_current_comm`).
    pub task_comm: u32,
    /// Keeps the struct free of padding (`aya::Pod`).
    pub _pad: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_powers_of_two() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 1);
        assert_eq!(latency_bucket(1023), 10);
        assert_eq!(latency_bucket(1024), 11);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn outcomes_of_results() {
        assert_eq!(Outcome::of(0x100), Outcome::Mapped);
        assert_eq!(Outcome::of(0x104), Outcome::Mapped);
        assert_eq!(Outcome::of(0x800), Outcome::Fallback);
        assert_eq!(Outcome::of(0x2), Outcome::Other);
    }
}
