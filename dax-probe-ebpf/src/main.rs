//! eBPF programs of dax-probe: the fs_dax tracepoints of the running kernel.
//!
//! Every tracepoint program does the same thing: reserve an [`Event`] in the
//! ring buffer, stamp it (time, pid, cpu, comm) and copy the record's fields
//! from the offsets user space found in tracefs (the [`LAYOUT`] global). A
//! reservation that fails (ring buffer full) is counted in [`LOST`]: user
//! space reports every lost event, so no verdict is ever built on a gap.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id, bpf_ktime_get_ns},
    macros::{map, tracepoint},
    maps::{PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use aya_log_ebpf::warn;
use dax_probe_common::{Event, Layout, Slot, FIELD_COUNT};

/// Field offsets per tracepoint; user space writes it before loading.
#[no_mangle]
static LAYOUT: Layout = Layout::EMPTY;

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(16 << 20, 0);

/// Events dropped because the ring buffer was full (per CPU, summed by user space).
#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

macro_rules! tracepoint_programs {
    ($($name:ident = $index:expr),* $(,)?) => {$(
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
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

#[inline(always)]
fn record(ctx: &TracePointContext, tracepoint: usize) {
    let Some(mut entry) = EVENTS.reserve::<Event>(0) else {
        if let Some(lost) = LOST.get_ptr_mut(0) {
            // SAFETY: the per-CPU slot is only touched by programs on this CPU,
            // and a tracepoint program is not preempted by another on it.
            unsafe { *lost += 1 };
        }
        warn!(ctx, "dax-probe: ring buffer full, event lost");
        return;
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let mut fields = [0u64; FIELD_COUNT];
    for (field, value) in fields.iter_mut().enumerate() {
        // SAFETY: LAYOUT is a plain global; the volatile read keeps the
        // compiler from folding in the EMPTY layout user space overwrites.
        let slot: Slot = unsafe { core::ptr::read_volatile(&LAYOUT.slots[tracepoint][field]) };
        *value = read_field(ctx, slot);
    }
    entry.write(Event {
        // SAFETY: plain helper calls without arguments.
        time_ns: unsafe { bpf_ktime_get_ns() },
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        tracepoint: tracepoint as u32,
        cpu: unsafe { bpf_get_smp_processor_id() },
        comm: bpf_get_current_comm().unwrap_or_default(),
        fields,
    });
    entry.submit(0);
}

/// One field of the record, zero-extended; 0 when the record lacks it.
#[inline(always)]
fn read_field(ctx: &TracePointContext, slot: Slot) -> u64 {
    let offset = slot.offset as usize;
    // SAFETY: user space took offset and size from this tracepoint's format,
    // and bpf_probe_read_kernel fails cleanly on a bad address anyway.
    let value = unsafe {
        match slot.size {
            8 => ctx.read_at::<u64>(offset),
            4 => ctx.read_at::<u32>(offset).map(u64::from),
            2 => ctx.read_at::<u16>(offset).map(u64::from),
            1 => ctx.read_at::<u8>(offset).map(u64::from),
            _ => Ok(0),
        }
    };
    value.unwrap_or(0)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[link_section = "license"]
#[no_mangle]
static LICENSE: [u8; 4] = *b"GPL\0";
