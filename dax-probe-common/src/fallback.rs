//! Why a PMD fault fell back to PTEs: one classifier, compiled into user
//! space (the stream's analysis classifies each `dax_pmd_fault_done`) and
//! into the eBPF programs (the counting mode classifies in the kernel).
//!
//! The order of the checks is the kernel's (fs/dax.c, `dax_iomap_pmd_fault`):
//! the first five reasons follow from the fault's own fields
//! (`dax_fault_check_fallback`); the others from what the fallback hooks
//! saw on the faulting thread between the fault's start and its done. A
//! fallback none of them explains is [`Reason::Unknown`], and reports show
//! that row rather than hide it.

use crate::mm::{FAULT_FLAG_WRITE, PAGE_SHIFT, PMD_COLOUR, PMD_SIZE, VM_SHARED};

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The faulting address and the file offset sit at different offsets in their 2 MiB.
    AddressColour,
    /// A write fault on a private mapping: the page is copied, never mapped huge.
    CowWrite,
    /// The 2 MiB range starts before the VMA.
    VmaStart,
    /// The 2 MiB range ends after the VMA.
    VmaEnd,
    /// The 2 MiB range reaches past the end of the file.
    PastEof,
    /// PTE entries already sit in the range (`grab_mapping_entry` conflict).
    PteEntryInRange,
    /// The file system's extent is shorter than 2 MiB (or not 2 MiB aligned).
    ExtentTooShort,
    /// The device gave less than 2 MiB, an unaligned pfn, or an error.
    DirectAccess,
    /// A read of a hole found no huge zero page.
    NoHugeZeroPage,
    /// None of the above was seen.
    Unknown,
}

pub const REASON_COUNT: usize = 10;

impl Reason {
    pub const ALL: [Reason; REASON_COUNT] = [
        Reason::AddressColour,
        Reason::CowWrite,
        Reason::VmaStart,
        Reason::VmaEnd,
        Reason::PastEof,
        Reason::PteEntryInRange,
        Reason::ExtentTooShort,
        Reason::DirectAccess,
        Reason::NoHugeZeroPage,
        Reason::Unknown,
    ];

    /// The name reports and the reference module use.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::AddressColour => "address-colour",
            Reason::CowWrite => "cow-write",
            Reason::VmaStart => "vma-start",
            Reason::VmaEnd => "vma-end",
            Reason::PastEof => "past-eof",
            Reason::PteEntryInRange => "pte-entry-in-range",
            Reason::ExtentTooShort => "extent-too-short",
            Reason::DirectAccess => "direct-access",
            Reason::NoHugeZeroPage => "no-huge-zero-page",
            Reason::Unknown => "unknown",
        }
    }
}

/// The fields of a PMD fault that `dax_fault_check_fallback` looks at, as
/// `dax_pmd_fault_done` carries them (or the counting mode reads them from
/// the `vm_fault` and its VMA).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PmdFault {
    pub address: u64,
    pub pgoff: u64,
    /// `vmf->flags` (FAULT_FLAG_*).
    pub flags: u64,
    pub vm_start: u64,
    pub vm_end: u64,
    pub vm_flags: u64,
    /// The first page offset past the end of the file.
    pub max_pgoff: u64,
}

/// What the fallback hooks saw during one PMD fault.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// `grab_mapping_entry` returned VM_FAULT_FALLBACK.
    pub grab_fallback: bool,
    /// `dax_pmd_load_hole_fallback`: no huge zero page.
    pub hole_fallback: bool,
    /// `dax_iomap_direct_access` failed.
    pub direct_access_failed: bool,
    /// The fault reached `dax_fault_iter` (its extent was 2 MiB).
    pub fault_iter: bool,
}

/// The reason a PMD fault whose result holds VM_FAULT_FALLBACK fell back.
/// `probes` says whether the fallback hooks were attached: without them a
/// reason the fields do not give is `Unknown`, never guessed.
pub fn classify(fault: &PmdFault, seen: Seen, probes: bool) -> Reason {
    if let Some(reason) = from_fields(fault) {
        return reason;
    }
    if seen.hole_fallback {
        return Reason::NoHugeZeroPage;
    }
    if !probes {
        return Reason::Unknown;
    }
    if seen.grab_fallback {
        Reason::PteEntryInRange
    } else if seen.direct_access_failed {
        Reason::DirectAccess
    } else if !seen.fault_iter {
        Reason::ExtentTooShort
    } else {
        Reason::Unknown
    }
}

/// `dax_fault_check_fallback`, replayed on the fault's fields.
fn from_fields(fault: &PmdFault) -> Option<Reason> {
    let (address, pgoff) = (fault.address, fault.pgoff);
    let pmd_address = address & !(PMD_SIZE - 1);
    let write = fault.flags & FAULT_FLAG_WRITE != 0;
    if pgoff & PMD_COLOUR != (address >> PAGE_SHIFT) & PMD_COLOUR {
        Some(Reason::AddressColour)
    } else if write && fault.vm_flags & VM_SHARED == 0 {
        Some(Reason::CowWrite)
    } else if pmd_address < fault.vm_start {
        Some(Reason::VmaStart)
    } else if pmd_address.saturating_add(PMD_SIZE) > fault.vm_end {
        Some(Reason::VmaEnd)
    } else if (pgoff & !PMD_COLOUR) | PMD_COLOUR >= fault.max_pgoff {
        Some(Reason::PastEof)
    } else {
        None
    }
}
