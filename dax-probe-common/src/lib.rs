//! Event types shared by the dax-probe eBPF programs and user space.
//!
//! One fixed-size [`Record`] per hit of a fs_dax tracepoint or of a hook on
//! the entry-lock and fallback paths ([`HOOK_EVENTS`]). The programs do not
//! know the kernel's tracepoint record layout: user space reads each
//! tracepoint's `format` from tracefs (layouts differ between 6.1 and 7.2)
//! and hands the programs a [`Layout`] saying where each [`Field`] sits in
//! each record. Hook events carry [`Arg`]s read from the hooked function's
//! arguments instead.
#![no_std]

pub mod count;
pub mod fallback;
pub mod mm;

/// The fs_dax tracepoints the probe follows, in [`Kind`] order.
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

/// Events of the fentry/fexit hooks, in [`Record::kind`] order after the
/// tracepoints (kind = `TRACEPOINT_COUNT + index`). What each one means, and
/// which kernel function gives it, is in `dax-probe/src/hooks.rs`.
pub const HOOK_EVENTS: [&str; HOOK_EVENT_COUNT] = [
    "entry_lock",
    "entry_unlock",
    "entry_wake",
    "entry_wait",
    "entry_woken",
    "grab_fallback",
    "direct_access_failed",
    "pmd_fault_iter",
    "truncated",
];
pub const HOOK_EVENT_COUNT: usize = 9;

/// The kind of an event: a tracepoint or a hook event.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    PmdFault,
    PmdFaultDone,
    PmdLoadHole,
    PmdLoadHoleFallback,
    PteFault,
    PteFaultDone,
    LoadHole,
    InsertPfnMkwriteNoEntry,
    InsertPfnMkwrite,
    WritebackRange,
    WritebackRangeDone,
    WritebackOne,
    /// `dax_lock_entry` stored a locked entry: the old entry (unlocked: a
    /// lock taken; NULL: a new entry; locked: replaced by its holder) and the new.
    EntryLock,
    /// `dax_unlock_entry`: the holder stores the entry back unlocked.
    EntryUnlock,
    /// `dax_wake_entry`: waiters of an entry are woken (one or all).
    EntryWake,
    /// A task queues itself to wait for an entry (`dax_entry_waitqueue`
    /// outside a wake): the key is the one the kernel computed.
    EntryWait,
    /// A waiting task is back (`finish_wait` after an `EntryWait`).
    EntryWoken,
    /// `grab_mapping_entry` gave up with VM_FAULT_FALLBACK (a smaller entry
    /// sits in the range).
    GrabFallback,
    /// `dax_iomap_direct_access` failed for 2 MiB, a PMD fault's request
    /// (short extent, unaligned pfn, error).
    DirectAccessFailed,
    /// A PMD fault got as far as `dax_fault_iter` (its extent was 2 MiB).
    PmdFaultIter,
    /// `truncate_inode_pages_range` returned: the page cache of a byte
    /// range is gone (truncate, hole punch, inode eviction).
    Truncated,
}
pub const KIND_COUNT: usize = TRACEPOINT_COUNT + HOOK_EVENT_COUNT;

impl Kind {
    pub const ALL: [Kind; KIND_COUNT] = [
        Kind::PmdFault,
        Kind::PmdFaultDone,
        Kind::PmdLoadHole,
        Kind::PmdLoadHoleFallback,
        Kind::PteFault,
        Kind::PteFaultDone,
        Kind::LoadHole,
        Kind::InsertPfnMkwriteNoEntry,
        Kind::InsertPfnMkwrite,
        Kind::WritebackRange,
        Kind::WritebackRangeDone,
        Kind::WritebackOne,
        Kind::EntryLock,
        Kind::EntryUnlock,
        Kind::EntryWake,
        Kind::EntryWait,
        Kind::EntryWoken,
        Kind::GrabFallback,
        Kind::DirectAccessFailed,
        Kind::PmdFaultIter,
        Kind::Truncated,
    ];

    pub fn from_u32(kind: u32) -> Option<Kind> {
        Kind::ALL.get(kind as usize).copied()
    }

    /// The tracepoint's or hook event's name.
    pub fn name(self) -> &'static str {
        let index = self as usize;
        if index < TRACEPOINT_COUNT {
            TRACEPOINTS[index]
        } else {
            HOOK_EVENTS[index - TRACEPOINT_COUNT]
        }
    }
}

/// What hook events carry in [`Record::fields`], by index.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// The `struct xarray *` of the mapping (`&mapping->i_pages`).
    Mapping,
    /// `xas->xa_index` (a page offset in the file).
    Index,
    /// The entry stored, woken or waited for (an XArray value entry).
    Entry,
    /// The entry `dax_lock_entry` replaced.
    OldEntry,
    /// `enum dax_wake_mode`: 0 WAKE_ALL, 1 WAKE_NEXT.
    Mode,
    /// The wait key's `entry_start`.
    KeyStart,
    /// The hooked function's return value.
    Ret,
    /// A byte position in the file (`dax_iomap_direct_access`, the first
    /// byte truncated).
    Pos,
    /// A size in bytes (`dax_iomap_direct_access`).
    Size,
    /// The last byte of a range, inclusive; `u64::MAX` (`-1`): to the end
    /// of the file (`truncate_inode_pages_range`'s `lend`).
    LastPos,
}

/// DAX entry bits (fs/dax.c: `xa_mk_value(pfn << DAX_SHIFT | flags)`), the
/// same since 4.x. Entries here are raw XArray words: value bit 0 is the
/// XArray's own tag, so the DAX flags start at bit 1.
pub mod entry {
    pub const LOCKED: u64 = 1 << 1;
    pub const PMD: u64 = 1 << 2;
    pub const ZERO_PAGE: u64 = 1 << 3;
    pub const EMPTY: u64 = 1 << 4;
    /// Order of a PMD entry on x86-64 (2 MiB / 4 KiB = 512 pages).
    pub const PMD_ORDER: u32 = 9;
    /// `xa_mk_internal(VM_FAULT_FALLBACK)`: what `grab_mapping_entry` returns
    /// when a smaller entry sits in the range.
    pub const INTERNAL_FALLBACK: u64 = (0x800 << 2) | 2;
}

/// The record fields the programs copy out, in [`Record::fields`] order.
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

/// The bytes of a tracepoint record the programs copy, in one read, into a
/// [`Record`]'s fields: every field user space takes must end within them
/// (it checks the kernel's layout against this bound).
pub const RECORD_BYTES: usize = FIELD_COUNT * 8;

/// In a [`Record`]'s `kind`: the fields are the tracepoint record's first
/// [`RECORD_BYTES`] bytes as the kernel wrote them, for user space to take
/// apart with the [`Layout`] (a program that picked each field itself cost
/// more than the rest of the event).
pub const RAW_TRACEPOINT: u32 = 1 << 31;

/// Slots of every field of every tracepoint: `slots[tracepoint][field]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub slots: [[Slot; FIELD_COUNT]; TRACEPOINT_COUNT],
}

impl Layout {
    pub const EMPTY: Layout =
        Layout { slots: [[Slot { offset: 0, size: 0 }; FIELD_COUNT]; TRACEPOINT_COUNT] };

    /// The fields of tracepoint `tracepoint`'s raw record (see
    /// [`RAW_TRACEPOINT`]: `raw` is the bytes of a [`Record`]'s fields as
    /// the ring buffer holds them), zero-extended, in [`Field`] order; 0
    /// where the record has no such field, or where a slot lies outside.
    pub fn fields(&self, tracepoint: usize, bytes: &[u8]) -> [u64; FIELD_COUNT] {
        let mut fields = [0u64; FIELD_COUNT];
        let Some(slots) = self.slots.get(tracepoint) else {
            return fields;
        };
        for (value, slot) in fields.iter_mut().zip(slots) {
            let (offset, size) = (usize::from(slot.offset), usize::from(slot.size));
            if size == 0 || size > 8 {
                continue;
            }
            // One 8-byte load, masked to the field's size, where the record
            // has 8 bytes from the field on (a copy of `size` bytes is a
            // memcpy call per field, every tracepoint event).
            let mask = u64::MAX >> (64 - 8 * size);
            if let Some(word) = bytes.get(offset..offset + 8) {
                *value = u64::from_le_bytes(word.try_into().expect("8 bytes")) & mask;
            } else if let Some(field) = bytes.get(offset..offset + size) {
                let mut word = [0u8; 8];
                word[..size].copy_from_slice(field);
                *value = u64::from_le_bytes(word);
            }
        }
        fields
    }
}

/// One tracepoint or hook hit, as the ring buffer carries it and trace files
/// store it: the wire form. User space decodes it into typed events where it
/// enters (`dax-probe/src/event.rs`), so that no reader picks a field by the
/// wrong index.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
    pub time_ns: u64,
    /// Process id (tgid) and thread id.
    pub tgid: u32,
    pub tid: u32,
    /// A [`Kind`] (tracepoints first, in [`TRACEPOINTS`] order, then [`HOOK_EVENTS`]).
    pub kind: u32,
    pub cpu: u32,
    pub comm: [u8; 16],
    /// Tracepoints: indexed by [`Field`], 0 where the record has no such
    /// field. Hook events: indexed by [`Arg`].
    pub fields: [u64; FIELD_COUNT],
}

// Every byte of a Record is one of its fields': no padding.
const _: () = assert!(core::mem::size_of::<Record>() == 8 + 4 * 4 + 16 + 8 * FIELD_COUNT);

impl Record {
    /// The record's bytes, as the ring buffer and the trace file hold them.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: a Record is `repr(C)` integers with no padding (asserted
        // above), so all of its bytes are initialised; the slice borrows it.
        unsafe {
            core::slice::from_raw_parts((self as *const Record).cast::<u8>(), core::mem::size_of::<Record>())
        }
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `repr(C)` integers and arrays of them: any bit pattern is
    // a valid value and there is no padding that could leak kernel memory.
    unsafe impl aya::Pod for super::Layout {}
    // SAFETY: as above; the fields are laid out without padding (8-byte words
    // first, then 4-byte words in pairs, then bytes in a multiple of 8).
    unsafe impl aya::Pod for super::Record {}
    // SAFETY: plain `repr(C)` u64 arrays, no padding.
    unsafe impl aya::Pod for super::count::Totals {}
    // SAFETY: plain `repr(C)` integers, no padding.
    unsafe impl aya::Pod for super::count::ProcessTally {}
    // SAFETY: plain `repr(C)` u64s, no padding.
    unsafe impl aya::Pod for super::count::FileTally {}
    // SAFETY: plain `repr(C)` u32s, no padding.
    unsafe impl aya::Pod for super::count::Offsets {}
}
