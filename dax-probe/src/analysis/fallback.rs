//! Why a PMD fault fell back to PTEs.
//!
//! The order of the checks is the kernel's (fs/dax.c, `dax_iomap_pmd_fault`):
//! the first five reasons follow from the `dax_pmd_fault_done` fields alone;
//! the others from the `fallback-probes` hooks seen on the faulting thread
//! between `dax_pmd_fault` and its done. A fallback none of them explains is
//! `Unknown`, and reports show that row rather than hide it.

use crate::{
    event::Fault,
    kernel::{FAULT_FLAG_WRITE, PAGE_SHIFT, PMD_COLOUR, PMD_SIZE, VM_SHARED},
};

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
pub fn classify(done: &Fault, seen: Seen, probes: bool) -> Reason {
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
fn from_fields(fault: &Fault) -> Option<Reason> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pmd_done, Vma};

    const A: u64 = 0x7f00_0000_0000; // 2 MiB aligned

    fn reason(done: Fault, seen: Seen) -> Reason {
        classify(&done, seen, true)
    }

    #[test]
    fn reasons_from_the_fault_fields() {
        // address colour: the VMA maps file page 0 at A + 4 KiB.
        let vma = Vma::shared(A + 4096, A + (8 << 20), 1024);
        assert_eq!(reason(pmd_done(vma, A + 4096 + (1 << 20)), Seen::default()), Reason::AddressColour);
        // a write on a private mapping.
        let private = Vma { flags: 0x3, ..Vma::shared(A, A + (4 << 20), 1024) };
        let cow = Fault { flags: FAULT_FLAG_WRITE, ..pmd_done(private, A) };
        assert_eq!(reason(cow, Seen::default()), Reason::CowWrite);
        // VMA starts inside the 2 MiB range (file offset 4 KiB at A + 4 KiB: colours match).
        let vma = Vma { pgoff: 1, ..Vma::shared(A + 4096, A + (4 << 20), 1024) };
        assert_eq!(reason(pmd_done(vma, A + (1 << 20)), Seen::default()), Reason::VmaStart);
        // VMA ends inside the second 2 MiB range.
        let vma = Vma::shared(A, A + (3 << 20), 1024);
        assert_eq!(reason(pmd_done(vma, A + (2 << 20) + 4096), Seen::default()), Reason::VmaEnd);
        // the file is 3 MiB long (768 pages): the second PMD would pass EOF.
        let vma = Vma::shared(A, A + (4 << 20), 768);
        assert_eq!(reason(pmd_done(vma, A + (2 << 20)), Seen::default()), Reason::PastEof);
    }

    #[test]
    fn reasons_from_the_fallback_hooks() {
        let ok = pmd_done(Vma::shared(A, A + (4 << 20), 1024), A);
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
