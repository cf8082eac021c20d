//! Why a PMD fault fell back to PTEs.
//!
//! The order of the checks is the kernel's (fs/dax.c, `dax_iomap_pmd_fault`):
//! the first five reasons follow from the `dax_pmd_fault_done` fields alone;
//! the others from the `fallback-probes` hooks seen on the faulting thread
//! between `dax_pmd_fault` and its done. A fallback none of them explains is
//! `Unknown`, and reports show that row rather than hide it.

use dax_probe_common::{Event, Field};

/// `FAULT_FLAG_WRITE` (include/linux/mm_types.h).
const FAULT_FLAG_WRITE: u64 = 0x1;
/// `VM_SHARED` (include/linux/mm.h).
const VM_SHARED: u64 = 0x8;
/// Pages in a PMD minus one (`PG_PMD_COLOUR` on x86-64).
const PMD_COLOUR: u64 = 511;
const PMD_SIZE: u64 = 2 << 20;
const PAGE_SHIFT: u32 = 12;

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

impl Reason {
    pub const ALL: [Reason; 10] = [
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
    pub fn name(self) -> &'static str {
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

/// What the fallback hooks saw during one PMD fault.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen {
    pub grab_fallback: bool,
    pub hole_fallback: bool,
    pub direct_access_failed: bool,
    pub fault_iter: bool,
}

/// The reason a `dax_pmd_fault_done` with FALLBACK fell back. `probes` says
/// whether the fallback-probes hooks were attached: without them a reason
/// the fields do not give is `Unknown`, never guessed.
pub fn classify(done: &Event, seen: Seen, probes: bool) -> Reason {
    if let Some(reason) = from_fields(done) {
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

/// `dax_fault_check_fallback`, replayed on the tracepoint's fields.
fn from_fields(fault: &Event) -> Option<Reason> {
    let address = fault.field(Field::Address);
    let pgoff = fault.field(Field::Pgoff);
    let pmd_address = address & !(PMD_SIZE - 1);
    let write = fault.field(Field::FaultFlags) & FAULT_FLAG_WRITE != 0;
    if pgoff & PMD_COLOUR != (address >> PAGE_SHIFT) & PMD_COLOUR {
        Some(Reason::AddressColour)
    } else if write && fault.field(Field::VmFlags) & VM_SHARED == 0 {
        Some(Reason::CowWrite)
    } else if pmd_address < fault.field(Field::VmStart) {
        Some(Reason::VmaStart)
    } else if pmd_address + PMD_SIZE > fault.field(Field::VmEnd) {
        Some(Reason::VmaEnd)
    } else if (pgoff & !PMD_COLOUR) | PMD_COLOUR >= fault.field(Field::MaxPgoff) {
        Some(Reason::PastEof)
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::events::test_support::pmd_done;

    const A: u64 = 0x7f00_0000_0000; // 2 MiB aligned
    const SHARED: u64 = crate::events::test_support::VM_SHARED_RW;

    fn reason(done: Event, seen: Seen) -> Reason {
        classify(&done, seen, true)
    }

    #[test]
    fn reasons_from_the_fault_fields() {
        // address colour: the VMA maps file page 0 at A + 4 KiB.
        let done = pmd_done(A + 4096 + (1 << 20), A + 4096, A + (8 << 20), 0, SHARED, 1024);
        assert_eq!(reason(done, Seen::default()), Reason::AddressColour);
        // a write on a private mapping.
        let mut cow = pmd_done(A, A, A + (4 << 20), 0, 0x3, 1024);
        cow.fields[Field::FaultFlags as usize] = FAULT_FLAG_WRITE;
        assert_eq!(reason(cow, Seen::default()), Reason::CowWrite);
        // VMA starts inside the 2 MiB range (file offset 4 KiB at A + 4 KiB: colours match).
        let done = pmd_done(A + (1 << 20), A + 4096, A + (4 << 20), 1, SHARED, 1024);
        assert_eq!(reason(done, Seen::default()), Reason::VmaStart);
        // VMA ends inside the second 2 MiB range.
        let done = pmd_done(A + (2 << 20) + 4096, A, A + (3 << 20), 0, SHARED, 1024);
        assert_eq!(reason(done, Seen::default()), Reason::VmaEnd);
        // the file is 3 MiB long (768 pages): the second PMD would pass EOF.
        let done = pmd_done(A + (2 << 20), A, A + (4 << 20), 0, SHARED, 768);
        assert_eq!(reason(done, Seen::default()), Reason::PastEof);
    }

    #[test]
    fn reasons_from_the_fallback_hooks() {
        let ok = pmd_done(A, A, A + (4 << 20), 0, SHARED, 1024);
        let seen = |f: fn(&mut Seen)| {
            let mut seen = Seen { fault_iter: true, ..Seen::default() };
            f(&mut seen);
            seen
        };
        assert_eq!(reason(ok, seen(|s| s.grab_fallback = true)), Reason::PteEntryInRange);
        assert_eq!(reason(ok, seen(|s| s.direct_access_failed = true)), Reason::DirectAccess);
        assert_eq!(reason(ok, seen(|s| s.hole_fallback = true)), Reason::NoHugeZeroPage);
        assert_eq!(reason(ok, seen(|s| s.fault_iter = false)), Reason::ExtentTooShort);
        assert_eq!(reason(ok, seen(|_| ())), Reason::Unknown);
        assert_eq!(classify(&ok, Seen::default(), false), Reason::Unknown, "no probes: no guess");
    }
}
