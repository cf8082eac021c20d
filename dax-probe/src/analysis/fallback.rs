//! Why a PMD fault fell back to PTEs: the classifier of
//! `dax_probe_common::fallback` (the counting mode's programs run the same
//! one in the kernel), fed with a `dax_pmd_fault_done` and what the
//! `fallback-probes` hooks saw on its thread since its `dax_pmd_fault`.

use dax_probe_common::fallback::{self as common, PmdFault};
pub use dax_probe_common::fallback::{Reason, Seen};

use crate::event::Fault;

/// The reason a `dax_pmd_fault_done` with FALLBACK fell back. `probes` says
/// whether the fallback-probes hooks were attached: without them a reason
/// the fields do not give is `Unknown`, never guessed.
pub fn classify(done: &Fault, seen: Seen, probes: bool) -> Reason {
    let fault = PmdFault {
        address: done.address,
        pgoff: done.pgoff,
        flags: done.flags,
        vm_start: done.vm_start,
        vm_end: done.vm_end,
        vm_flags: done.vm_flags,
        max_pgoff: done.max_pgoff,
    };
    common::classify(&fault, seen, probes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        kernel::FAULT_FLAG_WRITE,
        testing::{pmd_done, Vma},
    };

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
