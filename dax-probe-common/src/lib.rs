//! Event types shared by the dax-probe eBPF programs and user space.
//!
//! One fixed-size [`Event`] per fs_dax tracepoint hit. The programs do not
//! know the kernel's record layout: user space reads each tracepoint's
//! `format` from tracefs (layouts differ between 6.1 and 7.2) and hands the
//! programs a [`Layout`] saying where each [`Field`] sits in each record.
#![no_std]

/// The fs_dax tracepoints the probe follows, in [`Event::tracepoint`] order.
pub const TRACEPOINTS: [&str; TRACEPOINT_COUNT] = [
    "dax_pmd_fault",
    "dax_pmd_fault_done",
    "dax_pmd_load_hole",
    "dax_pmd_load_hole_fallback",
    "dax_pte_fault",
    "dax_pte_fault_done",
    "dax_load_hole",
    "dax_insert_pfn_mkwrite_no_entry",
    "dax_insert_pfn_mkwrite",
    "dax_writeback_range",
    "dax_writeback_range_done",
    "dax_writeback_one",
];
pub const TRACEPOINT_COUNT: usize = 12;

/// The record fields the programs copy out, in [`Event::fields`] order.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Dev,
    Ino,
    VmStart,
    VmEnd,
    VmFlags,
    Address,
    Pgoff,
    MaxPgoff,
    FaultFlags,
    Result,
    ZeroPage,
    RadixEntry,
    StartIndex,
    EndIndex,
    Pglen,
}
pub const FIELD_COUNT: usize = 15;

impl Field {
    pub const ALL: [Field; FIELD_COUNT] = [
        Field::Dev,
        Field::Ino,
        Field::VmStart,
        Field::VmEnd,
        Field::VmFlags,
        Field::Address,
        Field::Pgoff,
        Field::MaxPgoff,
        Field::FaultFlags,
        Field::Result,
        Field::ZeroPage,
        Field::RadixEntry,
        Field::StartIndex,
        Field::EndIndex,
        Field::Pglen,
    ];

    /// The names a tracepoint format may give this field (7.2 first, then older kernels).
    pub const fn format_names(self) -> &'static [&'static str] {
        match self {
            Field::Dev => &["dev"],
            Field::Ino => &["ino"],
            Field::VmStart => &["vm_start"],
            Field::VmEnd => &["vm_end"],
            Field::VmFlags => &["vm_flags"],
            Field::Address => &["address"],
            Field::Pgoff => &["pgoff"],
            Field::MaxPgoff => &["max_pgoff"],
            Field::FaultFlags => &["flags"],
            Field::Result => &["result"],
            Field::ZeroPage => &["zero_folio", "zero_page"],
            Field::RadixEntry => &["radix_entry"],
            Field::StartIndex => &["start_index"],
            Field::EndIndex => &["end_index"],
            Field::Pglen => &["pglen"],
        }
    }
}

/// Where one field sits in a tracepoint record; `size == 0`: not in this record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub offset: u16,
    pub size: u16,
}

/// Slots of every field of every tracepoint: `slots[tracepoint][field]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub slots: [[Slot; FIELD_COUNT]; TRACEPOINT_COUNT],
}

impl Layout {
    pub const EMPTY: Layout =
        Layout { slots: [[Slot { offset: 0, size: 0 }; FIELD_COUNT]; TRACEPOINT_COUNT] };
}

/// One tracepoint hit, as the ring buffer carries it and trace files store it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
    pub time_ns: u64,
    /// Process id (tgid) and thread id.
    pub tgid: u32,
    pub tid: u32,
    /// Index into [`TRACEPOINTS`].
    pub tracepoint: u32,
    pub cpu: u32,
    pub comm: [u8; 16],
    /// Indexed by [`Field`]; 0 where the record has no such field.
    pub fields: [u64; FIELD_COUNT],
}

impl Event {
    pub fn field(&self, field: Field) -> u64 {
        self.fields[field as usize]
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` integers and arrays of them: any bit pattern is
    // a valid value and there is no padding that could leak kernel memory.
    unsafe impl aya::Pod for super::Layout {}
    // SAFETY: as above; the fields are laid out without padding (8-byte words
    // first, then 4-byte words in pairs, then bytes in a multiple of 8).
    unsafe impl aya::Pod for super::Event {}
}
