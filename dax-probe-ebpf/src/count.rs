//! The counting mode (`dax_probe_common::count`): faults by size and
//! outcome, fallbacks by reason, latency histograms and every fs_dax
//! tracepoint's hits, added up in kernel maps. No record leaves the kernel.
//!
//! Every program is a BTF-typed tracepoint (`tp_btf`): it gets the
//! tracepoint's arguments as the kernel passed them, before (and without)
//! the record tracefs would build; or, for the fallback reasons, a hook
//! that only marks what it saw (on PMD faults only, where it can be). A fault's start and its done
//! are paired per thread in [`OPEN`]: an array slot (an inlined lookup, no
//! hash) that remembers the thread, the `vm_fault` and the start time, so a
//! done that finds another thread's or another fault's start is counted
//! untimed, never timed wrong. Counters are per CPU and added atomically (a
//! program may be preempted by another on its CPU).

use core::{
    intrinsics::{atomic_xadd, AtomicOrdering},
    ptr::{read_volatile, write_volatile},
};

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel, generated},
    macros::{btf_tracepoint, fentry, fexit, kprobe, map},
    maps::{Array, HashMap, PerCpuArray},
    programs::{BtfTracePointContext, FEntryContext, FExitContext, ProbeContext},
};
use dax_probe_common::{
    count::{
        latency_bucket, FileTally, Offsets, Outcome, ProcessTally, Size, Tally, Totals, BREAKDOWN_ENTRIES,
        LATENCY_BUCKETS, OUTCOME_COUNT,
    },
    entry,
    fallback::{self, PmdFault, Reason, Seen, REASON_COUNT},
    mm::VM_FAULT_FALLBACK,
    Kind,
};

use crate::returning_at_once;

/// Member offsets of the running kernel's structures, from its BTF; user
/// space writes them before loading (the stream's fault programs read them
/// too).
#[no_mangle]
pub(crate) static OFFSETS: Offsets = Offsets {
    vmf_vma: 0,
    vmf_pgoff: 0,
    vmf_address: 0,
    vmf_flags: 0,
    vma_start: 0,
    vma_end: 0,
    vma_flags: 0,
    inode_ino: 0,
    inode_sb: 0,
    sb_dev: 0,
    task_comm: 0,
    _pad: 0,
};

/// 1: the fallback hooks below are attached, so a fallback they saw
/// nothing of has a reason (`fallback::classify`'s `probes`).
#[no_mangle]
static FALLBACK_PROBES: u8 = 0;

/// 1: keep the per-process and per-file breakdowns too.
#[no_mangle]
static BREAKDOWN: u8 = 0;

pub(crate) fn global<T: Copy>(value: &T) -> T {
    // SAFETY: a plain global; the volatile read keeps the compiler from
    // folding in the value user space may overwrite.
    unsafe { read_volatile(value) }
}

#[map]
static TOTALS: PerCpuArray<Totals> = PerCpuArray::with_max_entries(1, 0);

#[map]
static PROCESSES: HashMap<u32, ProcessTally> = HashMap::with_max_entries(BREAKDOWN_ENTRIES, 0);

/// Keyed by the file's `struct inode *`.
#[map]
static FILES: HashMap<u64, FileTally> = HashMap::with_max_entries(BREAKDOWN_ENTRIES, 0);

/// Faults begun and not yet done, one slot per thread id modulo the size.
#[map]
static OPEN: Array<Open> = Array::with_max_entries(OPEN_SLOTS, 0);
const OPEN_SLOTS: u32 = 1 << 15;

#[derive(Clone, Copy)]
#[repr(C)]
struct Open {
    /// 0: free.
    tid: u32,
    /// `SEEN_*` bits: what the fallback hooks saw during this fault.
    seen: u32,
    vmf: u64,
    start_ns: u64,
}

const SEEN_GRAB_FALLBACK: u32 = 1;
const SEEN_HOLE_FALLBACK: u32 = 2;
const SEEN_DIRECT_ACCESS_FAILED: u32 = 4;
const SEEN_FAULT_ITER: u32 = 8;

#[inline(always)]
pub(crate) fn add(counter: *mut u64) {
    add_n(counter, 1);
}

#[inline(always)]
pub(crate) fn add_n(counter: *mut u64, n: u64) {
    // SAFETY: `counter` points into a map value, live for the program's
    // run, and aligned: map values are 8-byte aligned, counters are u64s.
    // (bpfel's core has no AtomicU64; the intrinsic is BPF's atomic add.)
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, n) };
}

#[inline(always)]
fn totals() -> Option<*mut Totals> {
    TOTALS.get_ptr_mut(0)
}

/// One program per fs_dax tracepoint: it counts the hit, then does `$then`
/// with the context and the totals.
macro_rules! count_programs {
    ($($name:ident = $tracepoint:literal => $kind:expr, |$ctx:ident, $totals:ident| $then:expr;)*) => {$(
        #[btf_tracepoint(function = $tracepoint)]
        pub fn $name($ctx: BtfTracePointContext) -> u32 {
            if returning_at_once() {
                return 0;
            }
            let Some($totals) = totals() else { return 0 };
            // SAFETY: the index is a Kind below TRACEPOINT_COUNT.
            add(unsafe { &raw mut (*$totals).events[$kind as usize] });
            $then;
            0
        }
    )*};
}

// The arguments: dax_pmd_fault_class (inode, vmf, max_pgoff, result),
// dax_pte_fault_class (inode, vmf, result), the same from 4.x to 7.2.
count_programs! {
    count_dax_pmd_fault = "dax_pmd_fault" => Kind::PmdFault, |ctx, _totals| fault_start(&ctx);
    count_dax_pmd_fault_done = "dax_pmd_fault_done" => Kind::PmdFaultDone,
        |ctx, totals| fault_done(&ctx, totals, Size::Pmd, ctx.arg::<u64>(3));
    count_dax_pmd_load_hole = "dax_pmd_load_hole" => Kind::PmdLoadHole, |_ctx, _totals| ();
    count_dax_pmd_load_hole_fallback = "dax_pmd_load_hole_fallback" => Kind::PmdLoadHoleFallback,
        |_ctx, _totals| mark(SEEN_HOLE_FALLBACK);
    count_dax_pte_fault_done = "dax_pte_fault_done" => Kind::PteFaultDone, |ctx, totals| {
        // SAFETY: PteFault is a Kind below TRACEPOINT_COUNT.
        add(unsafe { &raw mut (*totals).events[Kind::PteFault as usize] });
        fault_done(&ctx, totals, Size::Pte, ctx.arg::<u64>(2))
    };
    count_dax_load_hole = "dax_load_hole" => Kind::LoadHole, |_ctx, _totals| ();
    count_dax_insert_pfn_mkwrite_no_entry = "dax_insert_pfn_mkwrite_no_entry" => Kind::InsertPfnMkwriteNoEntry, |_ctx, _totals| ();
    count_dax_insert_pfn_mkwrite = "dax_insert_pfn_mkwrite" => Kind::InsertPfnMkwrite, |_ctx, _totals| ();
    count_dax_writeback_range = "dax_writeback_range" => Kind::WritebackRange, |_ctx, _totals| ();
    count_dax_writeback_range_done = "dax_writeback_range_done" => Kind::WritebackRangeDone, |_ctx, _totals| ();
    count_dax_writeback_one = "dax_writeback_one" => Kind::WritebackOne, |_ctx, _totals| ();
}

/// A PTE fault begins: this only times it. User space attaches it for a
/// part of every second (`--latency-sample`), so its dispatch, the dearest
/// part of counting a PTE fault, is paid for a sample of them; the hit is
/// counted at the fault's done instead, for fs/dax.c's
/// `dax_iomap_pte_fault` emits both tracepoints on every path.
#[btf_tracepoint(function = "dax_pte_fault")]
pub fn count_dax_pte_fault(ctx: BtfTracePointContext) -> u32 {
    if !returning_at_once() {
        fault_start(&ctx);
    }
    0
}

#[inline(always)]
fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// The calling thread's slot in [`OPEN`].
#[inline(always)]
fn open_slot(tid: u32) -> Option<*mut Open> {
    OPEN.get_ptr_mut(tid % OPEN_SLOTS)
}

#[inline(always)]
fn fault_start(ctx: &BtfTracePointContext) {
    let tid = current_tid();
    let Some(open) = open_slot(tid) else { return };
    // SAFETY: `open` points at this thread's slot of OPEN; only a thread
    // whose id shares the slot writes there too, and the done checks both
    // the thread and the vm_fault before it believes the slot.
    unsafe {
        write_volatile(&raw mut (*open).tid, tid);
        write_volatile(&raw mut (*open).seen, 0);
        write_volatile(&raw mut (*open).vmf, ctx.arg::<u64>(1));
        write_volatile(&raw mut (*open).start_ns, bpf_ktime_get_ns());
    }
}

/// A fallback hook saw `bit` on this thread's open fault.
#[inline(always)]
fn mark(bit: u32) {
    let tid = current_tid();
    let Some(open) = open_slot(tid) else { return };
    // SAFETY: as in `fault_start`.
    unsafe {
        if read_volatile(&raw const (*open).tid) == tid {
            write_volatile(&raw mut (*open).seen, read_volatile(&raw const (*open).seen) | bit);
        }
    }
}

#[inline(always)]
fn fault_done(ctx: &BtfTracePointContext, totals: *mut Totals, size: Size, result: u64) {
    let outcome = Outcome::of(result);
    let (size_at, outcome_at) = (size as usize, outcome as usize);
    if outcome_at >= OUTCOME_COUNT {
        return;
    }
    // SAFETY: both indices are in range (Size and Outcome values).
    add(unsafe { &raw mut (*totals).faults[size_at][outcome_at] });
    let tid = current_tid();
    let vmf: u64 = ctx.arg(1);
    let mut seen = None;
    if let Some(open) = open_slot(tid) {
        // SAFETY: as in `fault_start`.
        unsafe {
            if read_volatile(&raw const (*open).tid) == tid && read_volatile(&raw const (*open).vmf) == vmf {
                let ns = bpf_ktime_get_ns().saturating_sub(read_volatile(&raw const (*open).start_ns));
                // black_box: the bound check must be on the value used, or
                // LLVM proves it on `ns` instead and the verifier cannot follow.
                let bucket = core::hint::black_box(latency_bucket(ns));
                if bucket < LATENCY_BUCKETS {
                    add(&raw mut (*totals).latency[size_at][bucket]);
                    add_n(&raw mut (*totals).latency_sum_ns[size_at], ns);
                }
                seen = Some(read_volatile(&raw const (*open).seen));
                write_volatile(&raw mut (*open).tid, 0);
            }
        }
    }
    if seen.is_none() {
        // SAFETY: size_at is a Size value.
        add(unsafe { &raw mut (*totals).untimed[size_at] });
    }
    if size == Size::Pmd && outcome == Outcome::Fallback {
        let reason = reason(vmf, ctx.arg::<u64>(2), seen) as usize;
        if reason < REASON_COUNT {
            // SAFETY: reason is in range.
            add(unsafe { &raw mut (*totals).fallbacks[reason] });
        }
    }
    if global(&BREAKDOWN) != 0 {
        tally_process(size_at, outcome_at);
        tally_file(ctx.arg::<u64>(0), size_at, outcome_at);
    }
}

/// Why this PMD fault fell back: the shared classifier, on the `vm_fault`'s
/// fields and what the hooks saw (nothing known of a fault begun before
/// the probe: only its fields can tell).
#[inline(always)]
fn reason(vmf: u64, max_pgoff: u64, seen: Option<u32>) -> Reason {
    let offsets = global(&OFFSETS);
    let read = |at: u64, offset: u32| -> u64 {
        // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
        unsafe { bpf_probe_read_kernel((at + offset as u64) as *const u64) }.unwrap_or(0)
    };
    let vma = read(vmf, offsets.vmf_vma);
    let fault = PmdFault {
        address: read(vmf, offsets.vmf_address),
        pgoff: read(vmf, offsets.vmf_pgoff),
        flags: read(vmf, offsets.vmf_flags) & 0xffff_ffff,
        vm_start: read(vma, offsets.vma_start),
        vm_end: read(vma, offsets.vma_end),
        vm_flags: read(vma, offsets.vma_flags),
        max_pgoff,
    };
    let bits = seen.unwrap_or(0);
    let seen_bits = Seen {
        grab_fallback: bits & SEEN_GRAB_FALLBACK != 0,
        hole_fallback: bits & SEEN_HOLE_FALLBACK != 0,
        direct_access_failed: bits & SEEN_DIRECT_ACCESS_FAILED != 0,
        fault_iter: bits & SEEN_FAULT_ITER != 0,
    };
    fallback::classify(&fault, seen_bits, seen.is_some() && global(&FALLBACK_PROBES) != 0)
}

/// Adds one fault to `tally`.
#[inline(always)]
fn add_to(tally: *mut Tally, size_at: usize, outcome_at: usize) {
    if size_at < 2 && outcome_at < OUTCOME_COUNT {
        // SAFETY: `tally` points into a live map value; indices in range.
        add(unsafe { &raw mut (*tally).faults[size_at][outcome_at] });
    }
}

/// Writes a fresh tally of one fault at `tally` (word by word: a zeroed
/// array would compile to a byte-wise memset).
#[inline(always)]
fn fresh(tally: *mut Tally, size_at: usize, outcome_at: usize) {
    let words: *mut u64 = tally.cast();
    for i in 0..size_of::<Tally>() / 8 {
        // SAFETY: `tally` points at a whole Tally of u64 words.
        unsafe { write_volatile(words.add(i), u64::from(i == size_at * OUTCOME_COUNT + outcome_at)) };
    }
}

#[inline(always)]
fn tally_process(size_at: usize, outcome_at: usize) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if let Some(known) = PROCESSES.get_ptr_mut(&tgid) {
        // SAFETY: a live map value.
        return add_to(unsafe { &raw mut (*known).tally }, size_at, outcome_at);
    }
    let mut new = core::mem::MaybeUninit::<ProcessTally>::uninit();
    let at = new.as_mut_ptr();
    // SAFETY: `at` is this frame's ProcessTally; every byte is written
    // below (the comm whole by the helper, the tally by `fresh`).
    let new = unsafe {
        generated::bpf_get_current_comm((&raw mut (*at).comm).cast(), 16);
        fresh(&raw mut (*at).tally, size_at, outcome_at);
        new.assume_init_ref()
    };
    // Another CPU may have inserted it meanwhile: then add to that one.
    if PROCESSES.insert(&tgid, new, BPF_NOEXIST as u64).is_err() {
        if let Some(known) = PROCESSES.get_ptr_mut(&tgid) {
            // SAFETY: a live map value.
            add_to(unsafe { &raw mut (*known).tally }, size_at, outcome_at);
        }
    }
}

#[inline(always)]
fn tally_file(inode: u64, size_at: usize, outcome_at: usize) {
    if let Some(known) = FILES.get_ptr_mut(&inode) {
        // SAFETY: a live map value.
        return add_to(unsafe { &raw mut (*known).tally }, size_at, outcome_at);
    }
    let offsets = global(&OFFSETS);
    // SAFETY: bpf_probe_read_kernel checks each address and fails cleanly.
    let (ino, sb) = unsafe {
        (
            bpf_probe_read_kernel((inode + offsets.inode_ino as u64) as *const u64).unwrap_or(0),
            bpf_probe_read_kernel((inode + offsets.inode_sb as u64) as *const u64).unwrap_or(0),
        )
    };
    // SAFETY: as above.
    let dev = unsafe { bpf_probe_read_kernel((sb + offsets.sb_dev as u64) as *const u32) }.unwrap_or(0);
    let mut new = core::mem::MaybeUninit::<FileTally>::uninit();
    let at = new.as_mut_ptr();
    // SAFETY: `at` is this frame's FileTally; every word is written below.
    let new = unsafe {
        write_volatile(&raw mut (*at).dev, u64::from(dev));
        write_volatile(&raw mut (*at).ino, ino);
        fresh(&raw mut (*at).tally, size_at, outcome_at);
        new.assume_init_ref()
    };
    if FILES.insert(&inode, new, BPF_NOEXIST as u64).is_err() {
        if let Some(known) = FILES.get_ptr_mut(&inode) {
            // SAFETY: a live map value.
            add_to(unsafe { &raw mut (*known).tally }, size_at, outcome_at);
        }
    }
}

// The fallback hooks, two ways. Where `dax_iomap_pmd_fault` is a real
// function, kprobes at its calls of `grab_mapping_entry` and
// `dax_fault_iter` (and on the instruction after each): they run on PMD
// faults only, so a PTE-heavy load pays nothing for them. Elsewhere fentry
// and fexit on the functions themselves, which run on every fault.

/// The instruction after `dax_iomap_pmd_fault`'s call of
/// `grab_mapping_entry`: VM_FAULT_FALLBACK (internal) in rax means a smaller
/// entry sits in the PMD range.
#[kprobe]
pub fn count_pmd_grab_return(ctx: ProbeContext) -> u32 {
    // SAFETY: regs points at this probe's saved registers.
    if !returning_at_once() && unsafe { (*ctx.regs).rax } == entry::INTERNAL_FALLBACK {
        mark(SEEN_GRAB_FALLBACK);
    }
    0
}

/// `dax_iomap_pmd_fault` calls `dax_fault_iter`: the extent was 2 MiB.
#[kprobe]
pub fn count_pmd_fault_iter_call(_ctx: ProbeContext) -> u32 {
    if !returning_at_once() {
        mark(SEEN_FAULT_ITER);
    }
    0
}

/// The instruction after that call: a PMD `dax_fault_iter` that returns
/// VM_FAULT_FALLBACK without loading a hole failed its device access
/// (`dax_iomap_direct_access`; its only other fallback is a WARN on an
/// extent of an unexpected type).
#[kprobe]
pub fn count_pmd_fault_iter_return(ctx: ProbeContext) -> u32 {
    // SAFETY: regs points at this probe's saved registers.
    let ret = unsafe { (*ctx.regs).rax } & 0xffff_ffff;
    if !returning_at_once() && ret & VM_FAULT_FALLBACK != 0 {
        mark(SEEN_DIRECT_ACCESS_FAILED);
    }
    0
}

/// grab_mapping_entry returned VM_FAULT_FALLBACK: a smaller entry sits in
/// the PMD range.
#[fexit(function = "grab_mapping_entry")]
pub fn count_grab_mapping_entry(ctx: FExitContext) -> u32 {
    if !returning_at_once() && ctx.ret::<u64>().unwrap_or(0) == entry::INTERNAL_FALLBACK {
        mark(SEEN_GRAB_FALLBACK);
    }
    0
}

/// dax_fault_iter(vmf, iter, pfnp, xas, entry, pmd) for a PMD: the extent was 2 MiB.
#[fentry(function = "dax_fault_iter")]
pub fn count_dax_fault_iter(ctx: FEntryContext) -> u32 {
    if !returning_at_once() && ctx.arg::<u64>(5) & 0xff != 0 {
        mark(SEEN_FAULT_ITER);
    }
    0
}

/// dax_iomap_direct_access failed: a short extent, an unaligned pfn or an error.
#[fexit(function = "dax_iomap_direct_access")]
pub fn count_direct_access(ctx: FExitContext) -> u32 {
    if !returning_at_once() && ctx.ret::<i32>().unwrap_or(0) != 0 {
        mark(SEEN_DIRECT_ACCESS_FAILED);
    }
    0
}
