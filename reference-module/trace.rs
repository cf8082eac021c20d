// SPDX-License-Identifier: GPL-2.0

//! The probe point: one function, `daxref_trace`, that dax-probe attaches a
//! kprobe to. It is called where fs/dax.c has the tracepoint or function
//! dax-probe hooks, with the event's kind and its fields already in
//! dax-probe's order, so the same checker and report serve both.
//!
//! Why a kprobe on a `#[no_mangle]`, never-inlined function and not a C
//! tracepoint: the module stays pure Rust, the symbol is in
//! `/proc/kallsyms` only while the module is loaded (so dax-probe's coverage
//! line tells whether it is there), and the record needs no layout parsing.
//! The numbering below is `dax_probe_common::Kind`, `Field` and `Arg`;
//! `dax-probe/tests/reference_module_abi.rs` fails when they drift apart.

/// Event kinds (`dax_probe_common::Kind`).
#[derive(Clone, Copy)]
#[repr(u32)]
pub(crate) enum Kind {
    PmdFault = 0,
    PmdFaultDone = 1,
    PteFault = 4,
    PteFaultDone = 5,
    EntryLock = 12,
    EntryUnlock = 13,
    EntryWake = 14,
    EntryWait = 15,
    EntryWoken = 16,
    GrabFallback = 17,
    DirectAccessFailed = 18,
    PmdFaultIter = 19,
}

pub(crate) const RECORD_WORDS: usize = 15;

/// Fault fields (`dax_probe_common::Field`), as the fs_dax fault tracepoints carry them.
pub(crate) struct Fault {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) vm_start: u64,
    pub(crate) vm_end: u64,
    pub(crate) vm_flags: u64,
    pub(crate) address: u64,
    pub(crate) pgoff: u64,
    pub(crate) max_pgoff: u64,
    pub(crate) flags: u64,
}

impl Fault {
    pub(crate) fn emit(&self, kind: Kind, result: u32) {
        let mut record = [0u64; RECORD_WORDS];
        record[..10].copy_from_slice(&[
            self.dev,
            self.ino,
            self.vm_start,
            self.vm_end,
            self.vm_flags,
            self.address,
            self.pgoff,
            self.max_pgoff,
            self.flags,
            u64::from(result),
        ]);
        daxref_trace(kind as u32, &record);
    }
}

/// An entry-lock or fallback event (`dax_probe_common::Arg` order:
/// mapping, index, entry, old entry, wake mode, wait key start).
pub(crate) fn entry_event(
    kind: Kind,
    mapping: usize,
    index: usize,
    entry: u64,
    old: u64,
    mode: u64,
    key: usize,
) {
    let record: [u64; RECORD_WORDS] = [
        mapping as u64,
        index as u64,
        entry,
        old,
        mode,
        key as u64,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    daxref_trace(kind as u32, &record);
}

/// The probe point itself: it does nothing, and must stay a real function.
#[no_mangle]
#[inline(never)]
pub(crate) extern "C" fn daxref_trace(kind: u32, record: &[u64; RECORD_WORDS]) {
    core::hint::black_box((kind, record));
}
