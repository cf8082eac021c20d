//! eBPF programs of dax-probe: the fs_dax tracepoints of the running kernel,
//! and fentry/fexit hooks on the DAX entry-lock and fallback paths.
//!
//! Every program ends in [`submit_with`]: reserve a [`Record`] in its CPU's
//! ring buffer ([`EVENTS`]), stamp it (time, pid, cpu, comm) and fill its
//! fields. Tracepoint programs copy the kernel's record as it is (user space
//! takes it apart with the layout it read in tracefs); hooks copy the hooked
//! function's arguments. Anything that drops an event (a full ring buffer, a full
//! bookkeeping map, a failed copy) is counted in [`LOST`]: user space reports
//! every lost event, so no verdict is ever built on a gap. Which hook gives
//! which event, and why that is sound, is documented in
//! `dax-probe/src/source/hooks.rs`.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod count;

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    btf_maps::{ArrayOfMaps, RingBuf},
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel,
        generated,
    },
    macros::{btf_map, btf_tracepoint, fentry, fexit, kprobe, map, tracepoint},
    maps::{Array, HashMap, PerCpuArray},
    programs::{BtfTracePointContext, FEntryContext, FExitContext, ProbeContext, TracePointContext},
    EbpfContext,
};
use aya_log_ebpf::warn;
use core::ptr::write_volatile;
use dax_probe_common::{
    entry, mm::PMD_SIZE, Arg, Field, Kind, Record, FIELD_COUNT, KIND_COUNT, RAW_TRACEPOINT, RECORD_BYTES,
};

/// The address of `wake_exceptional_entry_func` (fs/dax.c), the `func` of
/// every DAX waiter's `wait_queue_entry`; user space writes it before loading.
#[no_mangle]
static DAX_WAKE_FUNC: u64 = 0;

/// How far events go, for benchmarks (`dax-probe record --stage`): 0 every
/// program returns at once, 1 the programs run but reserve nothing, 2 all
/// the way (the default), 3 only a fault's end reserves its record (what
/// one fused record a fault could at best cost); user space writes it
/// before loading.
#[no_mangle]
static STAGE: u8 = 2;

#[inline(always)]
fn stage() -> u8 {
    // SAFETY: a plain global; the volatile read keeps the compiler from
    // folding in the value user space may overwrite.
    unsafe { core::ptr::read_volatile(&STAGE) }
}

/// 1 once user space has attached every program. Until then every program
/// returns at once: events from the moment some hooks of a group are
/// attached and others not yet would show half a protocol (a lock without
/// its unlock hook reads as a lock never released).
#[map]
static ARMED: Array<u32> = Array::with_max_entries(1, 0);

#[inline(always)]
pub(crate) fn returning_at_once() -> bool {
    stage() == 0 || ARMED.get(0).is_none_or(|armed| *armed == 0)
}

/// The events: one ring buffer per CPU, each written only by the programs
/// on its CPU (user space creates them, `source/rings.rs`, and merges them
/// by stamp). One ring for all CPUs lost events on a nearly empty ring: a
/// kprobe on x86 runs from an int3 trap, which the kernel enters as an NMI,
/// and there `bpf_ringbuf_reserve` only tries the ring's lock, failing while
/// another CPU holds it. A CPU's own ring is never locked by another CPU,
/// nor by this one under the trap (reserving runs with interrupts off, and
/// no kprobe sits in it).
#[btf_map]
static EVENTS: ArrayOfMaps<RingBuf<Record, 4096>, 1> = ArrayOfMaps::new();

/// Each ring's size in bytes; user space writes it before loading.
#[no_mangle]
static RING_BYTES: u64 = 16 << 20;

/// Unread bytes past which a submit wakes user space (a 16th of the ring);
/// below it user space reads on its own timer (`source/live.rs`).
#[inline(always)]
fn wake_at_bytes() -> u64 {
    count::global(&RING_BYTES) / 16
}

/// Unread bytes past which every submit wakes user space (half the ring):
/// a reader that slept through the wake-up at `wake_at_bytes`.
#[inline(always)]
fn wake_every_at_bytes() -> u64 {
    count::global(&RING_BYTES) / 2
}

/// What one record takes in the ring: its 8-byte header and the record,
/// rounded up to 8.
const SLOT_BYTES: u64 = (8 + core::mem::size_of::<Record>() as u64).next_multiple_of(8);

/// Events dropped because the ring buffer or a bookkeeping map was full
/// (per CPU, summed by user space).
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Threads queued on a DAX entry wait queue: the key they wait for.
#[map]
static WAITING: HashMap<u32, WaitKey> = HashMap::with_max_entries(1 << 14, 0);

/// Threads queued on any DAX entry that sent their `entry_wait` and not yet
/// their `entry_woken` (see [`wake_tells_nothing`]).
#[map]
static WAITERS: Array<u64> = Array::with_max_entries(1, 0);

/// Adds `delta` to [`WAITERS`] (wrapping: `u64::MAX` takes one away).
#[inline(always)]
fn waiters_add(delta: u64) {
    if let Some(waiters) = WAITERS.get_ptr_mut(0) {
        count::add_n(waiters, delta);
    }
}

/// 1 where user space found, in the kernel's BTF, an `xa_lock` that is a
/// plain (not PREEMPT_RT) spinlock at the start of `struct xarray`, whose
/// first 4 bytes are 0 only while it is free; user space writes it before
/// loading. 0 sends every wake-up.
#[no_mangle]
static XA_LOCK_WORD: u8 = 0;

/// A lock store on its way, between its call and its return: the
/// `xa_state`, the locked value and the storing thread (see
/// `entry_store_call`); `xas` 0 while none is.
///
/// One slot per CPU, not one per thread: an `xas_store` runs under the
/// mapping's `xa_lock` (the XArray's rule, kept by every store of
/// fs/dax.c), a spinlock, so from the call to the return the thread keeps
/// its CPU and nothing else runs there but interrupts and NMIs, which
/// store no DAX entry. A per-thread hash cost an update, a lookup and a
/// delete per store: about 0.8 µs of a PTE fault's two stores on Debian's
/// 7.2 (icount). Where the lock sleeps (PREEMPT_RT) another thread may
/// store in between: the slot names its thread, a call that finds another
/// thread's store there counts that one lost, and a return takes only its
/// own thread's.
#[map]
static STORES: PerCpuArray<Store> = PerCpuArray::with_max_entries(1, 0);

/// `struct exceptional_entry_key` (fs/dax.c).
#[derive(Clone, Copy)]
#[repr(C)]
struct WaitKey {
    xa: u64,
    entry_start: u64,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Store {
    xas: u64,
    entry: u64,
    tid: u32,
}

/// The leading fields of `struct xa_state` (include/linux/xarray.h).
#[repr(C)]
struct XaState {
    xa: u64,
    xa_index: u64,
}

/// `struct xa_state` up to `xa_node`, which holds the error of a failed store.
#[repr(C)]
struct XaStateNode {
    xa: u64,
    xa_index: u64,
    /// `xa_shift`, `xa_sibs`, `xa_offset`, `xa_pad`, and the hole after them.
    _small: u64,
    xa_node: u64,
}

/// `xa_is_err(xas->xa_node)`: internal entries from `xa_mk_internal(-MAX_ERRNO)` up.
const XA_ERROR_FLOOR: u64 = ((-4095i64 as u64) << 2) | 2;

/// `xa_is_err()`: the xa_state holds an error (a failed store). Every
/// value from XA_ERROR_FLOOR up is one: the top 16 KiB of the address
/// space, where no node lives, so the comparison alone tells it (the
/// verifier allows no bitwise test of the pointer a typed load gives).
#[inline(always)]
fn xa_is_err(node: u64) -> bool {
    node >= XA_ERROR_FLOOR
}

/// `struct wait_queue_entry` (include/linux/wait.h): `flags`, `private`,
/// `func`, `entry`; a DAX waiter's key follows it (`struct
/// wait_exceptional_entry_queue`), the same layout from 4.x to 7.2.
const WAIT_FUNC_OFFSET: usize = 16;
const WAIT_KEY_OFFSET: usize = 40;

macro_rules! tracepoint_programs {
    ($($name:ident = $index:expr),* $(,)?) => {$(
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            if returning_at_once() {
                return 0;
            }
            record(&ctx, $index);
            0
        }
    )*};
}

// Indices follow dax_probe_common::TRACEPOINTS.
tracepoint_programs! {
    dax_pmd_fault = 0,
    dax_pmd_fault_done = 1,
    dax_pmd_load_hole = 2,
    dax_pmd_load_hole_fallback = 3,
    dax_pte_fault = 4,
    dax_pte_fault_done = 5,
    dax_load_hole = 6,
    dax_insert_pfn_mkwrite_no_entry = 7,
    dax_insert_pfn_mkwrite = 8,
    dax_writeback_range = 9,
    dax_writeback_range_done = 10,
    dax_writeback_one = 11,
}

/// The fault tracepoints as BTF-typed tracepoints (`tp_btf`): the program
/// gets the tracepoint's arguments and reads the record's fields itself,
/// where the kernel's BTF puts them (`count::OFFSETS`), so the kernel never
/// builds the record tracefs would; a classic tracepoint program runs after
/// the kernel has built it, which cost more than the rest of the event on
/// a PTE fault. The fields are the ones `TP_fast_assign` writes
/// (include/trace/events/fs_dax.h, the same from 6.1 to 7.2), in the words
/// a raw record taken apart would give: `dev`, `flags` and `result` are
/// 4-byte fields, zero-extended; a PTE fault's record has no `vm_start`,
/// `vm_end` or `max_pgoff`. The arguments: `dax_pmd_fault_class (inode,
/// vmf, max_pgoff, result)`, `dax_pte_fault_class (inode, vmf, result)`.
macro_rules! fault_programs {
    ($($name:ident = $tracepoint:literal => $kind:expr, $pmd:expr;)*) => {$(
        #[btf_tracepoint(function = $tracepoint)]
        pub fn $name(ctx: BtfTracePointContext) -> u32 {
            if !returning_at_once() {
                fault_event(&ctx, $kind, $pmd);
            }
            0
        }
    )*};
}

fault_programs! {
    btf_dax_pmd_fault = "dax_pmd_fault" => Kind::PmdFault, true;
    btf_dax_pmd_fault_done = "dax_pmd_fault_done" => Kind::PmdFaultDone, true;
    btf_dax_pte_fault = "dax_pte_fault" => Kind::PteFault, false;
    btf_dax_pte_fault_done = "dax_pte_fault_done" => Kind::PteFaultDone, false;
}

#[inline(always)]
fn fault_event(ctx: &BtfTracePointContext, kind: Kind, pmd: bool) {
    let inode: *const u8 = ctx.arg(0);
    let vmf: *const u8 = ctx.arg(1);
    let (max_pgoff, result) =
        if pmd { (ctx.arg::<u64>(2), ctx.arg::<u64>(3)) } else { (0, ctx.arg::<u64>(2)) };
    submit_with(
        ctx,
        kind as u32,
        #[inline(always)]
        |fields| {
            let offsets = count::global(&count::OFFSETS);
            // SAFETY: the arguments are the tracepoint's typed pointers and the
            // offsets their members' (read-only globals: constants to the
            // verifier, which checks every load against the kernel's BTF and
            // turns the loads through `vma` and `i_sb` into faulting-safe ones).
            let (vma, sb, address, pgoff, flags, ino) = unsafe {
                (
                    member::<*const u8>(vmf, offsets.vmf_vma),
                    member::<*const u8>(inode, offsets.inode_sb),
                    member::<u64>(vmf, offsets.vmf_address),
                    member::<u64>(vmf, offsets.vmf_pgoff),
                    member::<u32>(vmf, offsets.vmf_flags),
                    member::<u64>(inode, offsets.inode_ino),
                )
            };
            // SAFETY: as above, through the pointers the kernel's BTF types.
            let (vm_flags, dev) =
                unsafe { (member::<u64>(vma, offsets.vma_flags), member::<u32>(sb, offsets.sb_dev)) };
            let (vm_start, vm_end) = match pmd {
                // SAFETY: as above.
                true => unsafe {
                    (member::<u64>(vma, offsets.vma_start), member::<u64>(vma, offsets.vma_end))
                },
                false => (0, 0),
            };
            let words = [
                (Field::Dev, u64::from(dev)),
                (Field::Ino, ino),
                (Field::VmStart, vm_start),
                (Field::VmEnd, vm_end),
                (Field::VmFlags, vm_flags),
                (Field::Address, address),
                (Field::Pgoff, pgoff),
                (Field::MaxPgoff, max_pgoff),
                (Field::FaultFlags, u64::from(flags)),
                (Field::Result, result & 0xffff_ffff),
            ];
            write_words(fields, words.map(|(field, value)| (field as usize, value)));
            true
        },
    );
}

/// The member of type `T` at byte `offset` of the kernel object at `at`,
/// loaded directly (no helper call).
///
/// # Safety
/// `at` is a pointer a BTF-typed program got from the kernel (an argument,
/// or a member loaded this way), and `offset` that of a member of type `T`
/// in its type; the verifier refuses the program otherwise.
#[inline(always)]
unsafe fn member<T: Copy>(at: *const u8, offset: u32) -> T {
    // SAFETY: as the caller promises.
    unsafe { core::ptr::read_volatile(at.add(offset as usize).cast::<T>()) }
}

/// A tracepoint's record goes out as the kernel wrote it: one copy of its
/// first bytes straight into the ring buffer, taken apart by user space,
/// which knows the layout (`dax_probe_common::RAW_TRACEPOINT`).
#[inline(always)]
fn record(ctx: &TracePointContext, tracepoint: usize) {
    submit_with(ctx, tracepoint as u32 | RAW_TRACEPOINT, |fields| {
        // SAFETY: `fields` is the reserved slot's RECORD_BYTES bytes of
        // fields; ctx points at the tracepoint's record in the per-CPU perf
        // buffer, and the read fails cleanly on a bad address anyway.
        unsafe { generated::bpf_probe_read_kernel(fields.cast(), RECORD_BYTES as u32, ctx.as_ptr()) == 0 }
    });
}

/// Writes a reserved record's FIELD_COUNT words: `words`, each at its
/// index, and 0 in every other. With the callers' `fill` closures inlined
/// too (`#[inline(always)]` on each), every store is at an offset the
/// compiler knows. A search of the values for each word, as this once was,
/// became a function of its own with a loop per word: it cost about 160 ns
/// of guest time an event, the fill as a whole 220 (lab's 7.2, icount).
#[inline(always)]
fn write_words<const N: usize>(fields: *mut u64, words: [(usize, u64); N]) {
    for i in 0..FIELD_COUNT {
        // SAFETY: `fields` points at the slot's FIELD_COUNT words.
        unsafe { write_volatile(fields.add(i), 0) };
    }
    for (i, value) in words {
        if i < FIELD_COUNT {
            // SAFETY: as above, and `i` is one of them.
            unsafe { write_volatile(fields.add(i), value) };
        }
    }
}

/// Reserves a record, writes its header in place and lets `fill` write its
/// FIELD_COUNT words of fields (false: it could not, and the event is
/// lost). Everything is written in place, word by word: a record built on
/// the stack, or any zeroed array, compiles to a call of compiler_builtins'
/// memset, which on BPF stores one byte at a time (a 120-byte array cost
/// more than the rest of the program). Volatile stores are never merged
/// into such a call.
#[inline(always)]
fn submit_with(ctx: &impl Stamp, kind: u32, fill: impl FnOnce(*mut u64) -> bool) {
    match stage() {
        0 | 1 => return,
        3 if !ends_fault(kind) => return,
        _ => {}
    }
    // SAFETY: the helper takes no argument and only reads this CPU's id.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(ring) = EVENTS.get(cpu) else {
        // A CPU brought online after user space made the rings.
        count_lost();
        return;
    };
    let Some(mut slot) = ring.reserve(0) else {
        count_lost();
        warn!(ctx, "dax-probe: ring buffer full, event lost");
        return;
    };
    let record: *mut Record = slot.as_mut_ptr();
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: `record` points at the reserved, writable slot of one Record;
    // every store below is inside it, `write_comm`'s 16 bytes of `comm`
    // too; the helpers take no other pointer. The stamp is taken after the
    // reservation: user space relies on it (a record it has not seen when
    // it read a ring's producer position is stamped after that moment,
    // `source/rings.rs`).
    let filled = unsafe {
        write_volatile(&raw mut (*record).time_ns, bpf_ktime_get_ns());
        write_volatile(&raw mut (*record).tgid, (pid_tgid >> 32) as u32);
        write_volatile(&raw mut (*record).tid, pid_tgid as u32);
        write_volatile(&raw mut (*record).kind, kind);
        write_volatile(&raw mut (*record).cpu, cpu);
        ctx.write_comm(&raw mut (*record).comm);
        fill((&raw mut (*record).fields).cast())
    };
    if !filled {
        slot.discard(0);
        count_lost();
        return;
    }
    // Wake user space once, as the unread bytes cross the fill threshold
    // (it also reads on its own timer): a wake-up per event cost more than
    // the event, and one per event past the threshold (an interrupt each,
    // until the reader has drained) cost fio 5 % of its throughput under
    // the stream (Debian's 7.2, icount). Past half the ring, every submit
    // wakes it.
    // SAFETY: `ring` is the ring buffer map the outer map's lookup gave.
    let unread = unsafe {
        generated::bpf_ringbuf_query(
            (ring as *const RingBuf<Record, 4096>).cast_mut().cast(),
            BPF_RB_AVAIL_DATA as u64,
        )
    };
    let wake_at = wake_at_bytes();
    let crossing = unread >= wake_at && unread < wake_at + SLOT_BYTES;
    let flags =
        if crossing || unread >= wake_every_at_bytes() { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
    slot.submit(flags as u64);
}

/// Whether a record of `kind` is a fault's end (`dax_p?d_fault_done`, typed
/// or raw): the one record a fault would send if it sent one.
#[inline(always)]
fn ends_fault(kind: u32) -> bool {
    let kind = kind & !RAW_TRACEPOINT;
    kind == Kind::PteFaultDone as u32 || kind == Kind::PmdFaultDone as u32
}

/// How a program stamps a record with its task's name. By default it asks
/// the kernel (`bpf_get_current_comm`): kprobes and classic tracepoints can
/// load nothing through `current`.
trait Stamp: EbpfContext {
    /// Writes the current task's 16-byte `comm` at `at`.
    #[inline(always)]
    fn write_comm(&self, at: *mut [u8; 16]) {
        helper_comm(at);
    }
}

impl Stamp for ProbeContext {}
impl Stamp for TracePointContext {}

/// BTF-typed programs (fentry, fexit, tp_btf) load the name straight from
/// `current`: two loads, where `bpf_get_current_comm`, a helper call that
/// copies it with `strscpy_pad`, cost about 75 ns of guest time an event
/// (lab's 7.2, icount). The kernel keeps `comm` NUL-padded
/// (`__set_task_comm` pads it), so both give the same 16 bytes; a rename at
/// that very moment can show half of each name either way.
macro_rules! typed_stamp {
    ($($context:ty),*) => {$(
        impl Stamp for $context {
            #[inline(always)]
            fn write_comm(&self, at: *mut [u8; 16]) {
                let offset = count::global(&count::OFFSETS).task_comm;
                if offset == 0 {
                    // The kernel's BTF did not say where `comm` is.
                    helper_comm(at);
                    return;
                }
                // SAFETY: `bpf_get_current_task_btf` gives `current` as a
                // BTF-typed pointer, and `offset` is `task_struct.comm`'s by
                // that BTF; the verifier checks both 8-byte loads against
                // it (a load inside an array member is allowed up to the
                // array's end) and makes them fault-safe. `at` is the 16
                // bytes of a reserved record's `comm`, 8-aligned.
                unsafe {
                    let task = generated::bpf_get_current_task_btf().cast::<u8>();
                    let words = at.cast::<u64>();
                    write_volatile(words, member::<u64>(task, offset));
                    write_volatile(words.add(1), member::<u64>(task, offset + 8));
                }
            }
        }
    )*};
}
typed_stamp!(FEntryContext, FExitContext, BtfTracePointContext);

#[inline(always)]
fn helper_comm(at: *mut [u8; 16]) {
    // SAFETY: `at` is 16 writable bytes, all written (strscpy_pad).
    unsafe { generated::bpf_get_current_comm(at.cast(), 16) };
}

#[inline(always)]
fn count_lost() {
    if let Some(lost) = LOST.get_ptr_mut(0) {
        // Atomic, though the slot is this CPU's: a program at a function's
        // entry or return runs with only migration disabled, and a task that
        // preempts it on this CPU may run a program that counts too.
        count::add(lost);
    }
}

/// A hook event: `args` go to their [`Arg`] words.
#[inline(always)]
fn submit_hook<const N: usize>(ctx: &impl Stamp, kind: Kind, args: [(Arg, u64); N]) {
    submit_with(
        ctx,
        kind as u32,
        #[inline(always)]
        |fields| {
            write_words(fields, args.map(|(arg, value)| (arg as usize, value)));
            true
        },
    );
}

fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// `xas->xa` and `xas->xa_index`; zeros if the read fails.
#[inline(always)]
fn read_xas(xas: *const XaState) -> (u64, u64) {
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    match unsafe { bpf_probe_read_kernel(xas) } {
        Ok(state) => (state.xa, state.xa_index),
        Err(_) => (0, 0),
    }
}

/// `xas->xa` and `xas->xa_index` of an `xa_state` a fentry or fexit
/// program got as an argument: direct loads, which the verifier checks
/// against `struct xa_state` in the kernel's BTF (a helper call to read it
/// cost about 130 ns of guest time).
///
/// # Safety
/// `xas` is a BTF-typed program's `struct xa_state *` argument.
#[inline(always)]
unsafe fn typed_xas(xas: *const XaStateNode) -> (u64, u64) {
    // SAFETY: as the caller promises; the verifier makes the loads safe.
    unsafe {
        (core::ptr::read_volatile(&raw const (*xas).xa), core::ptr::read_volatile(&raw const (*xas).xa_index))
    }
}

/// dax_lock_entry(xas, entry) returned the entry it replaced: every lock,
/// insert and replace of a DAX entry. Callers hold the xa_lock, and fexit
/// runs before they drop it, so one mapping's events reach the ring buffer
/// in lock order. A store that failed (`xas` in an error state: no memory
/// for a node under the lock) changed nothing and is no event; its caller
/// retries it after `xas_nomem` (grab_mapping_entry).
#[fexit(function = "dax_lock_entry")]
pub fn dax_lock_entry_exit(ctx: FExitContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let xas: *const XaStateNode = ctx.arg(0);
    // SAFETY: the function's first argument, `struct xa_state *xas`; the
    // verifier checks the load against its BTF.
    if xa_is_err(unsafe { core::ptr::read_volatile(&raw const (*xas).xa_node) }) {
        return 0;
    }
    // SAFETY: as above.
    let (xa, index) = unsafe { typed_xas(xas) };
    let entry: u64 = ctx.arg(1);
    let old: u64 = ctx.ret().unwrap_or(0);
    submit_hook(
        &ctx,
        Kind::EntryLock,
        [(Arg::Mapping, xa), (Arg::Index, index), (Arg::Entry, entry | entry::LOCKED), (Arg::OldEntry, old)],
    );
    0
}

/// dax_unlock_entry(xas, entry): the holder releases the entry. fentry runs
/// before the function takes the xa_lock, so the event comes before the
/// next lock of that entry.
#[fentry(function = "dax_unlock_entry")]
pub fn dax_unlock_entry_enter(ctx: FEntryContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    // SAFETY: the function's first argument, `struct xa_state *xas`.
    let (xa, index) = unsafe { typed_xas(ctx.arg(0)) };
    let entry: u64 = ctx.arg(1);
    submit_hook(&ctx, Kind::EntryUnlock, [(Arg::Mapping, xa), (Arg::Index, index), (Arg::Entry, entry)]);
    0
}

/// Whether a wake-up of `mode` tells the checker nothing, so that it sends
/// no record: a `WAKE_NEXT` while no thread is known to wait on any DAX
/// entry, by a thread that does not hold the mapping's `xa_lock` (whose
/// lock word `xa_lock_word` reads, or `None`). Such a wake-up wakes nobody:
/// fs/dax.c's waiters queue under the `xa_lock`, and their `entry_wait`
/// counts them in [`WAITERS`] before they drop it, so a waker, which
/// stored its unlocked entry under the same lock, sees the count. It ends
/// no lock: `dax_unlock_entry`'s release is an event of its own, and the
/// one `WAKE_NEXT` that is itself a release, writeback's, is made under
/// the `xa_lock`. It deletes nothing: deletes wake with `WAKE_ALL`, also
/// under the lock. It is the wake-up after every fault's unlock: one
/// record in six of a PTE-faulting job. The count errs only high (a waiter
/// whose `entry_woken` was lost), and a lock held on another CPU reads as
/// held: both send more, never less.
#[inline(always)]
fn wake_tells_nothing(mode: u64, xa_lock_word: impl FnOnce() -> Option<u32>) -> bool {
    mode == WAKE_NEXT && WAITERS.get(0).is_some_and(|waiters| *waiters == 0) && xa_lock_free(xa_lock_word)
}

/// Whether a mapping's `xa_lock` is known free: user space found its word
/// readable ([`XA_LOCK_WORD`]) and `xa_lock_word` reads it 0. A word that
/// cannot be read, or a lock held by anyone, is not.
#[inline(always)]
fn xa_lock_free(xa_lock_word: impl FnOnce() -> Option<u32>) -> bool {
    // SAFETY: a plain global, written by user space before loading.
    let readable = unsafe { core::ptr::read_volatile(&XA_LOCK_WORD) } != 0;
    readable && xa_lock_word() == Some(0)
}

/// The first 4 bytes of the `struct xarray` at `xa`, its `xa_lock` word.
///
/// # Safety
/// `xa` is `xas->xa` as a BTF-typed program loaded it from its `struct
/// xa_state *` argument: the verifier knows it as a `struct xarray *`,
/// checks the load against the kernel's BTF and makes it fault-safe.
#[inline(always)]
unsafe fn typed_xa_lock_word(xa: u64) -> u32 {
    // SAFETY: as the caller promises.
    unsafe { core::ptr::read_volatile(xa as *const u32) }
}

/// `enum dax_wake_mode` (fs/dax.c): `WAKE_ALL` is 0, `WAKE_NEXT` 1.
const WAKE_NEXT: u64 = 1;

/// dax_wake_entry(xas, entry, mode): waiters of an entry are woken.
#[fentry(function = "dax_wake_entry")]
pub fn dax_wake_entry_enter(ctx: FEntryContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    // SAFETY: the function's first argument, `struct xa_state *xas`.
    let (xa, index) = unsafe { typed_xas(ctx.arg(0)) };
    let entry: u64 = ctx.arg(1);
    let mode: u64 = ctx.arg::<u32>(2) as u64;
    // SAFETY: `xa` is `xas->xa`, loaded by `typed_xas`.
    if wake_tells_nothing(mode, || Some(unsafe { typed_xa_lock_word(xa) })) {
        return 0;
    }
    submit_hook(
        &ctx,
        Kind::EntryWake,
        [(Arg::Mapping, xa), (Arg::Index, index), (Arg::Entry, entry), (Arg::Mode, mode)],
    );
    0
}

/// dax_entry_waitqueue(xas, entry, key) of a waiter: a task is about to
/// queue itself on the wait queue of `key`, as the kernel computed it. A
/// waiter's key sits in its `wait_exceptional_entry_queue`, right after a
/// wait entry whose `func` is already `wake_exceptional_entry_func`; the
/// other caller, `dax_wake_entry`, passes a key of its own frame.
///
/// A waiter calls it holding the mapping's `xa_lock` (it drops the lock
/// only after `prepare_to_wait`: `get_next_unlocked_entry`,
/// `wait_entry_unlocked_exclusive` and `wait_entry_unlocked`, 6.1 to 7.2).
/// So where the lock word reads free, the caller is a waker, and the
/// wait entry is not read: the read cost half of this program's run, one
/// run per fault (at its unlock's wake-up). A lock held by anyone reads as
/// held, and the wait entry is read.
#[fexit(function = "dax_entry_waitqueue")]
pub fn dax_entry_waitqueue_exit(ctx: FExitContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    // SAFETY: the function's first argument, `struct xa_state *xas`.
    let (xa, index) = unsafe { typed_xas(ctx.arg(0)) };
    // SAFETY: `xa` is `xas->xa`, loaded by `typed_xas`.
    if xa_lock_free(|| Some(unsafe { typed_xa_lock_word(xa) })) {
        return 0;
    }
    let key_at: u64 = ctx.arg(2);
    if !is_dax_waiter(key_at - (WAIT_KEY_OFFSET as u64)) {
        return 0;
    }
    let tid = current_tid();
    // SAFETY: the key is the caller's, filled in by the function that just
    // returned; bpf_probe_read_kernel fails cleanly on a bad address.
    let Ok(key) = (unsafe { bpf_probe_read_kernel(key_at as *const WaitKey) }) else {
        return 0;
    };
    let entry: u64 = ctx.arg(1);
    note_waiter(tid, key);
    submit_hook(
        &ctx,
        Kind::EntryWait,
        [(Arg::Mapping, key.xa), (Arg::KeyStart, key.entry_start), (Arg::Index, index), (Arg::Entry, entry)],
    );
    0
}

/// Whether the `wait_queue_entry` at `wait` is a DAX waiter's: its `func`
/// is `wake_exceptional_entry_func`, which only fs/dax.c's waiters use.
#[inline(always)]
fn is_dax_waiter(wait: u64) -> bool {
    // SAFETY: a plain global, written by user space before loading.
    let dax_wake_func = unsafe { core::ptr::read_volatile(&DAX_WAKE_FUNC) };
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    let func = unsafe { bpf_probe_read_kernel((wait + WAIT_FUNC_OFFSET as u64) as *const u64) };
    dax_wake_func != 0 && func == Ok(dax_wake_func)
}

/// finish_wait: a task that queued on a DAX entry is running again.
#[fentry(function = "finish_wait")]
pub fn finish_wait_enter(ctx: FEntryContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    waiter_back(&ctx);
    0
}

/// A thread queues on `key`: remembered for its return.
#[inline(always)]
fn note_waiter(tid: u32, key: WaitKey) {
    // Counted whether or not the map has room: a waiter left counted only
    // sends more wake-ups.
    waiters_add(1);
    if WAITING.insert(tid, key, 0).is_err() {
        count_lost();
    }
}

#[inline(always)]
fn waiter_back(ctx: &impl Stamp) {
    let tid = current_tid();
    // SAFETY: the value is a plain copy, read before removing the key.
    let Some(key) = (unsafe { WAITING.get(tid) }).copied() else { return };
    let _ = WAITING.remove(tid);
    submit_hook(ctx, Kind::EntryWoken, [(Arg::Mapping, key.xa), (Arg::KeyStart, key.entry_start)]);
    // Uncounted only once its record is stamped: a wake-up left out because
    // nobody waits comes after it in the stream.
    waiters_add(u64::MAX);
}

/// A store about to happen in fs/dax.c where `dax_lock_entry` or
/// `dax_unlock_entry` may be inlined: a call of `xas_store(xas, entry)`.
/// A locked value is a lock, an unlocked one an unlock (a delete stores
/// NULL, and the wake-up that follows tells of it). Attached at each such
/// call instruction user space found in the running kernel's code; the
/// return is `entry_store_return`.
#[kprobe]
pub fn entry_store_call(ctx: ProbeContext) -> u32 {
    store_call(&ctx, false)
}

/// The same in a function whose delete wake-up may go unseen (its own
/// inlined `dax_wake_entry`): a store of NULL is remembered too, and its
/// return tells the delete's WAKE_ALL.
#[kprobe]
pub fn entry_delete_call(ctx: ProbeContext) -> u32 {
    store_call(&ctx, true)
}

#[inline(always)]
fn store_call(ctx: &ProbeContext, deletes: bool) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let (Some(xas), Some(entry)) = (ctx.arg::<u64>(0), ctx.arg::<u64>(1)) else { return 0 };
    if entry & 1 == 1 || (deletes && entry == 0) {
        remember_store(xas, entry);
    }
    0
}

/// The same at a call of a real `dax_lock_entry(xas, entry)`, which sets
/// the lock bit itself.
#[kprobe]
pub fn lock_entry_call(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let (Some(xas), Some(entry)) = (ctx.arg::<u64>(0), ctx.arg::<u64>(1)) else { return 0 };
    remember_store(xas, entry | entry::LOCKED);
    0
}

/// Puts a store in this CPU's slot. One of another thread still there
/// will not be told (only where the lock sleeps): it is counted lost. One
/// of this thread is a store whose return the kernel skipped, and counted.
#[inline(always)]
fn remember_store(xas: u64, entry: u64) {
    let Some(slot) = STORES.get_ptr_mut(0) else { return count_lost() };
    let tid = current_tid();
    // SAFETY: this CPU's slot, which only the store probes touch, and
    // they do not run at once on one CPU (see `STORES`).
    unsafe {
        if (*slot).xas != 0 && (*slot).tid != tid {
            count_lost();
        }
        *slot = Store { xas, entry, tid };
    }
}

/// The store the current thread remembered at its call, taken out of the
/// slot; `None` where it is not there: its call was skipped (the kernel
/// counts that) or, where the lock sleeps, overwritten (counted then).
#[inline(always)]
fn take_store() -> Option<Store> {
    let slot = STORES.get_ptr_mut(0)?;
    // SAFETY: as in `remember_store`.
    let store = unsafe { *slot };
    if store.xas == 0 || store.tid != current_tid() {
        return None;
    }
    // SAFETY: as above.
    unsafe { (*slot).xas = 0 };
    Some(store)
}

/// `enum dax_wake_mode`'s WAKE_ALL (fs/dax.c).
const WAKE_ALL: u64 = 0;

/// The instruction after such a call: the store is done, the entry it
/// replaced is in rax, and the caller still holds the xa_lock, so one
/// mapping's events reach the ring buffer in lock order. A store that
/// failed (`xas` in an error state: no memory for a node) changed nothing
/// and is no event; its caller retries it.
#[kprobe]
pub fn entry_store_return(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let Some(store) = take_store() else { return 0 };
    // SAFETY: regs points at this probe's saved registers.
    let old = unsafe { (*ctx.regs).rax };
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    let Ok(xas) = (unsafe { bpf_probe_read_kernel(store.xas as *const XaStateNode) }) else {
        count_lost();
        return 0;
    };
    if xa_is_err(xas.xa_node) {
        return 0;
    }
    if store.entry == 0 {
        // A delete (`entry_delete_call`). fs/dax.c wakes every waiter of the
        // deleted entry right after it (WAKE_ALL: `dax_wake_entry`, or
        // `put_unlocked_entry`), but an inlined copy runs its `__wake_up`
        // only for a queue with waiters: the wake-up is told here, as the
        // native hook on `dax_wake_entry` tells it, waiters or not.
        if old & 1 == 1 {
            let at = [(Arg::Mapping, xas.xa), (Arg::Index, xas.xa_index), (Arg::Entry, old)];
            submit_hook(&ctx, Kind::EntryWake, [at[0], at[1], at[2], (Arg::Mode, WAKE_ALL)]);
        }
        return 0;
    }
    let at = [(Arg::Mapping, xas.xa), (Arg::Index, xas.xa_index), (Arg::Entry, store.entry)];
    if store.entry & entry::LOCKED != 0 {
        submit_hook(&ctx, Kind::EntryLock, [at[0], at[1], at[2], (Arg::OldEntry, old)]);
    } else {
        submit_hook(&ctx, Kind::EntryUnlock, at);
    }
    0
}

/// A call of `__wake_up(wq, mode, nr_exclusive, key)` in fs/dax.c outside
/// `dax_wake_entry`: the body of `dax_wake_entry` where it was inlined,
/// reached when the hashed queue has waiters. (Only a call: at a tail jump
/// the caller's frame, which holds the key, is already given up.) The key is the `exceptional_entry_key` the waiters
/// hashed; `nr_exclusive` 0 wakes all (WAKE_ALL), 1 the next (WAKE_NEXT).
#[kprobe]
pub fn wake_up_call(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let (Some(nr_exclusive), Some(key)) = (ctx.arg::<u64>(2), ctx.arg::<u64>(3)) else { return 0 };
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    let Ok(key) = (unsafe { bpf_probe_read_kernel(key as *const WaitKey) }) else {
        count_lost();
        return 0;
    };
    let mode = u64::from(nr_exclusive != 0);
    // The key's start is the index of a PTE-sized entry there: the wake's key.
    submit_hook(
        &ctx,
        Kind::EntryWake,
        [(Arg::Mapping, key.xa), (Arg::Index, key.entry_start), (Arg::Mode, mode)],
    );
    0
}

/// dax_wake_entry(xas, entry, mode), as a kprobe: the wake-ups of the real
/// function, with the key computed from its arguments as the function
/// does (the kprobe twin of `dax_wake_entry_enter`, see `dax_waiter_queued`
/// for why). Copies inlined elsewhere are probed at their `__wake_up`.
#[kprobe]
pub fn dax_wake_entry_kprobe(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let (Some(xas), Some(entry), Some(mode)) = (ctx.arg::<u64>(0), ctx.arg::<u64>(1), ctx.arg::<u64>(2))
    else {
        return 0;
    };
    let (xa, index) = read_xas(xas as *const XaState);
    let mode = mode & 0xffff_ffff;
    // SAFETY: bpf_probe_read_kernel checks the address and fails cleanly.
    if wake_tells_nothing(mode, || unsafe { bpf_probe_read_kernel(xa as *const u32) }.ok()) {
        return 0;
    }
    submit_hook(
        &ctx,
        Kind::EntryWake,
        [(Arg::Mapping, xa), (Arg::Index, index), (Arg::Entry, entry), (Arg::Mode, mode)],
    );
    0
}

/// prepare_to_wait_exclusive(wq, wait, state) and prepare_to_wait (the
/// non-exclusive waits of `wait_entry_unlocked`) of a DAX waiter, its
/// `func` being `wake_exceptional_entry_func`: the key it was hashed on
/// sits right after the wait entry, written before the call, under the
/// xa_lock. Where `dax_entry_waitqueue` is inlined this is the wait; the
/// entry it waits for is not known here. A kprobe (preemption off while it
/// runs) rather than fentry: a preempted fentry program makes the kernel
/// skip it for the next task on that CPU.
#[kprobe]
pub fn dax_waiter_queued(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let Some(wait) = ctx.arg::<u64>(1) else { return 0 };
    if !is_dax_waiter(wait) {
        return 0;
    }
    // SAFETY: as above; the key follows the wait entry in the waiter's frame.
    let Ok(key) = (unsafe { bpf_probe_read_kernel((wait + WAIT_KEY_OFFSET as u64) as *const WaitKey) })
    else {
        count_lost();
        return 0;
    };
    note_waiter(current_tid(), key);
    submit_hook(&ctx, Kind::EntryWait, [(Arg::Mapping, key.xa), (Arg::KeyStart, key.entry_start)]);
    0
}

/// finish_wait: a task that queued on a DAX entry is running again (the
/// kprobe twin of `finish_wait_enter`).
#[kprobe]
pub fn dax_waiter_back(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    waiter_back(&ctx);
    0
}

/// dax_iomap_direct_access(iomap, pos, size, kaddr, pfnp) failed for 2 MiB
/// (a PMD fault's): the extent is shorter than asked, the pfn is not
/// aligned, or the device said no.
#[fexit(function = "dax_iomap_direct_access")]
pub fn dax_iomap_direct_access_exit(ctx: FExitContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let ret: i32 = ctx.ret().unwrap_or(0);
    let size: u64 = ctx.arg(2);
    if ret != 0 && size >= PMD_SIZE {
        let pos: u64 = ctx.arg(1);
        submit_hook(
            &ctx,
            Kind::DirectAccessFailed,
            [(Arg::Pos, pos), (Arg::Size, size), (Arg::Ret, ret as i64 as u64)],
        );
    }
    0
}

/// `offsetof(struct address_space, i_pages)`, after `host`: the same from
/// the XArray's arrival (4.20) to 7.2; user space checks both in the
/// running kernel's BTF before it attaches (`source/hooks.rs`).
const I_PAGES_OFFSET: u64 = 8;

/// `offsetof(struct inode, i_flags)` in the running kernel (from its BTF);
/// user space writes it before loading.
#[no_mangle]
static INODE_FLAGS: u32 = 0;

/// `S_DAX` (include/linux/fs.h), the same from 4.x to 7.2.
const S_DAX: u32 = 1 << 13;

/// truncate_inode_pages_range(mapping, lstart, lend) of a DAX file
/// returned: the page cache of bytes `lstart..=lend` is gone, DAX entries
/// included (truncate, hole punch, eviction). Other files' truncates, which
/// come through here too, send nothing.
///
/// Two programs run at the return, and both tell it, each with its number
/// (`Arg::Ret`): the kernel skips a tracing program on a CPU where a
/// preempted task is still inside it (its recursion check, per program; on
/// Debian's 7.2 one of the soak's 3 096 truncates met it), and the other
/// tells what it could not. User space keeps one of two twins (adjacent on
/// their thread, from both programs); a truncate is lost only where both
/// were skipped, which it bounds from their misses, less the runs the other
/// program made up for (`dax-probe/src/source/truncates.rs`). (A kprobe on
/// the function crashed the lab's kernel at its first truncate: 7.2's ftrace
/// jumped one byte short of an odd-addressed handler, fixed for the lab by
/// `lab/kernel/patches/0003`.)
#[fexit(function = "truncate_inode_pages_range")]
pub fn truncate_done(ctx: FExitContext) -> u32 {
    truncate_told(&ctx, 0);
    0
}

/// The second program at the return: see `truncate_done`.
#[fexit(function = "truncate_inode_pages_range")]
pub fn truncate_done_2(ctx: FExitContext) -> u32 {
    truncate_told(&ctx, 1);
    0
}

/// Whether `mapping` is a DAX file's (`S_DAX` in its inode's flags); a
/// mapping whose flags cannot be read is counted lost and skipped.
#[inline(always)]
fn is_dax_mapping(mapping: u64) -> bool {
    // SAFETY: plain global, written by user space before loading.
    let flags_at = u64::from(unsafe { core::ptr::read_volatile(&INODE_FLAGS) });
    // SAFETY: bpf_probe_read_kernel checks each address and fails cleanly;
    // `host` is `struct address_space`'s first member.
    let flags = unsafe { bpf_probe_read_kernel(mapping as *const u64) }
        .and_then(|host| unsafe { bpf_probe_read_kernel((host + flags_at) as *const u32) });
    match flags {
        Ok(flags) => flags & S_DAX != 0,
        Err(_) => {
            count_lost();
            false
        }
    }
}

#[inline(always)]
fn truncate_told(ctx: &FExitContext, program: u64) {
    let mapping: u64 = ctx.arg(0);
    if returning_at_once() || !is_dax_mapping(mapping) {
        return;
    }
    let first: u64 = ctx.arg(1);
    let last: u64 = ctx.arg(2);
    submit_hook(
        ctx,
        Kind::Truncated,
        [
            (Arg::Mapping, mapping + I_PAGES_OFFSET),
            (Arg::Pos, first),
            (Arg::LastPos, last),
            (Arg::Ret, program),
        ],
    );
}

/// dax_fault_iter(vmf, iter, pfnp, xas, entry, pmd) for a PMD: the fault had
/// a 2 MiB extent; a fallback without this event had a shorter one. On the
/// function, not at the PMD fault's call of it: the counting mode probes
/// that call, and a kprobe rewrites the instruction it sits on, so a stream
/// beside it found no call there to probe ("dax_iomap_pmd_fault has no
/// call of dax_fault_iter that could be probed", count-mode, every kernel).
#[fentry(function = "dax_fault_iter")]
pub fn dax_fault_iter_enter(ctx: FEntryContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let pmd: u64 = ctx.arg::<u64>(5) & 0xff;
    if pmd != 0 {
        // SAFETY: the function's fourth argument, `struct xa_state *xas`.
        let (xa, index) = unsafe { typed_xas(ctx.arg(3)) };
        submit_hook(&ctx, Kind::PmdFaultIter, [(Arg::Mapping, xa), (Arg::Index, index)]);
    }
    0
}

/// dax_fault_iter(vmf, iter, pfnp, xas, entry, pmd) for a PMD, as a kprobe
/// (see `dax_waiter_queued` for why).
#[kprobe]
pub fn dax_fault_iter_kprobe(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let (Some(xas), Some(pmd)) = (ctx.arg::<u64>(3), ctx.arg::<u64>(5)) else { return 0 };
    if pmd & 0xff != 0 {
        let (xa, index) = read_xas(xas as *const XaState);
        submit_hook(&ctx, Kind::PmdFaultIter, [(Arg::Mapping, xa), (Arg::Index, index)]);
    }
    0
}

/// A call of `grab_mapping_entry(xas, mapping, order)` in fs/dax.c: its
/// `xa_state` waits for the return (`grab_mapping_entry_return`).
#[kprobe]
pub fn grab_mapping_entry_call(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let Some(xas) = ctx.arg::<u64>(0) else { return 0 };
    remember_call(xas, 0);
    0
}

/// The instruction after that call: a VM_FAULT_FALLBACK in rax means a
/// smaller (PTE) entry sits in the PMD range.
#[kprobe]
pub fn grab_mapping_entry_return(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let Some([xas, _]) = take_call() else { return 0 };
    // SAFETY: regs points at this probe's saved registers.
    let ret = unsafe { (*ctx.regs).rax };
    if ret == entry::INTERNAL_FALLBACK {
        let (xa, index) = read_xas(xas as *const XaState);
        submit_hook(&ctx, Kind::GrabFallback, [(Arg::Mapping, xa), (Arg::Index, index), (Arg::Ret, ret)]);
    }
    0
}

/// A call of `dax_iomap_direct_access(iomap, pos, size, kaddr, pfnp)` for
/// 2 MiB: remembered for its return. Every PTE fault calls it for 4 KiB,
/// which nothing is told of: remembering those too cost each PTE fault a
/// hash update, lookup and delete (about 0.5 µs on Debian's 7.2, icount).
#[kprobe]
pub fn direct_access_call(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let (Some(pos), Some(size)) = (ctx.arg::<u64>(1), ctx.arg::<u64>(2)) else { return 0 };
    if size >= PMD_SIZE {
        remember_call(pos, size);
    }
    0
}

/// The instruction after that call: a non-zero int in eax is a failure.
#[kprobe]
pub fn direct_access_return(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let Some([pos, size]) = take_call() else { return 0 };
    // SAFETY: regs points at this probe's saved registers.
    let ret = unsafe { (*ctx.regs).rax } as u32 as i32;
    if ret != 0 {
        submit_hook(
            &ctx,
            Kind::DirectAccessFailed,
            [(Arg::Pos, pos), (Arg::Size, size), (Arg::Ret, ret as i64 as u64)],
        );
    }
    0
}

/// The arguments of a call whose return is probed (not nested: neither
/// callee calls the other).
#[map]
static CALLS: HashMap<u32, [u64; 2]> = HashMap::with_max_entries(1 << 14, 0);

#[inline(always)]
fn remember_call(a: u64, b: u64) {
    if CALLS.insert(current_tid(), [a, b], 0).is_err() {
        count_lost();
    }
}

#[inline(always)]
fn take_call() -> Option<[u64; 2]> {
    let tid = current_tid();
    // SAFETY: the value is a plain copy, read before removing the key.
    let args = (unsafe { CALLS.get(tid) }).copied()?;
    let _ = CALLS.remove(tid);
    Some(args)
}

/// daxref_trace(kind, record) in the reference module (reference-module/
/// trace.rs): the module hands over the event kind and its fields already in
/// our order, at the points where fs/dax.c has its tracepoints and hooks.
#[kprobe]
pub fn daxref_trace(ctx: ProbeContext) -> u32 {
    if returning_at_once() {
        return 0;
    }
    let (Some(kind), Some(record)) = (ctx.arg::<u32>(0), ctx.arg::<*const [u64; FIELD_COUNT]>(1)) else {
        return 0;
    };
    if kind as usize >= KIND_COUNT {
        return 0;
    }
    submit_with(&ctx, kind, |fields| {
        // SAFETY: `fields` is the reserved slot's FIELD_COUNT words, the
        // record's size; the record is on the caller's stack for the call,
        // and the read fails cleanly if it is not.
        unsafe { generated::bpf_probe_read_kernel(fields.cast(), RECORD_BYTES as u32, record.cast()) == 0 }
    });
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";
