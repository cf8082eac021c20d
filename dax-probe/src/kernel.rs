//! The kernel's own constants, in one place: fault results and flags, VMA
//! flags, the PMD geometry of x86-64, `dev_t` as the tracepoints carry it,
//! and the bits of a DAX entry. Each names the header it comes from; none of
//! them has changed between 6.1 and 7.2. Those the eBPF programs use too
//! live in `dax_probe_common` and are re-exported here.

pub use dax_probe_common::{
    entry,
    mm::{
        FAULT_FLAG_WRITE, PAGE_SHIFT, PMD_COLOUR, PMD_PAGES, PMD_SIZE, VM_FAULT_FALLBACK, VM_FAULT_NOPAGE,
        VM_SHARED,
    },
};

/// Masks an address down to its 4 KiB page.
pub const PAGE_MASK: u64 = !((1 << PAGE_SHIFT) - 1);

/// The first page offset of the 2 MiB range holding `index`.
pub const fn pmd_start(index: u64) -> u64 {
    index & !PMD_COLOUR
}

/// `FAULT_FLAG_TRACE` (include/linux/mm_types.h): the fault flags as the
/// tracepoints print them, bit by bit.
pub const FAULT_FLAG_NAMES: &[(u64, &str)] = &[
    (1 << 0, "WRITE"),
    (1 << 1, "MKWRITE"),
    (1 << 2, "ALLOW_RETRY"),
    (1 << 3, "RETRY_NOWAIT"),
    (1 << 4, "KILLABLE"),
    (1 << 5, "TRIED"),
    (1 << 6, "USER"),
    (1 << 7, "REMOTE"),
    (1 << 8, "INSTRUCTION"),
    (1 << 9, "INTERRUPTIBLE"),
    (1 << 12, "VMA_LOCK"),
];

/// VM_FAULT_* bits in the order the tracepoints print them
/// (include/linux/mm_types.h, `VM_FAULT_RESULT_TRACE`).
pub const VM_FAULT_NAMES: &[(u64, &str)] = &[
    (0x0001, "OOM"),
    (0x0002, "SIGBUS"),
    (0x0004, "MAJOR"),
    (0x0010, "HWPOISON"),
    (0x0020, "HWPOISON_LARGE"),
    (0x0040, "SIGSEGV"),
    (VM_FAULT_NOPAGE, "NOPAGE"),
    (0x0200, "LOCKED"),
    (0x0400, "RETRY"),
    (VM_FAULT_FALLBACK, "FALLBACK"),
    (0x1000, "DONE_COW"),
    (0x2000, "NEEDDSYNC"),
    (0x4000, "COMPLETED"),
];

/// A fault result as tracefs prints it ("NOPAGE", "MAJOR|NOPAGE"), the raw
/// number where no name fits.
pub fn vm_fault_text(result: u64) -> String {
    let names: Vec<_> =
        VM_FAULT_NAMES.iter().filter(|(bit, _)| result & bit != 0).map(|(_, name)| *name).collect();
    if names.is_empty() {
        format!("{result:#x}")
    } else {
        names.join("|")
    }
}

/// `dev_t` as the fs_dax tracepoints carry it (`MKDEV`: major << 20 | minor).
pub const MINOR_BITS: u32 = 20;

/// "MAJOR:MINOR" of a tracepoint's `dev_t`.
pub fn device_text(dev: u64) -> String {
    format!("{}:{}", dev >> MINOR_BITS, dev & ((1 << MINOR_BITS) - 1))
}

/// A "MAJOR:MINOR" text (mountinfo's, or [`device_text`]'s) as a
/// tracepoint's `dev_t`; `None` if it is not one (a major of 12 bits, a
/// minor of 20).
pub fn parse_device(text: &str) -> Option<u64> {
    let (major, minor) = text.split_once(':')?;
    let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
    (major < 1 << 12 && minor < 1 << MINOR_BITS).then(|| mkdev(major, minor))
}

/// A tracepoint's `dev_t` from its major and minor numbers.
pub const fn mkdev(major: u64, minor: u64) -> u64 {
    major << MINOR_BITS | minor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_names() {
        assert_eq!(PMD_PAGES, 512);
        assert_eq!(pmd_start(513), 512);
        assert_eq!(vm_fault_text(0x104), "MAJOR|NOPAGE");
        assert_eq!(vm_fault_text(0x8), "0x8");
        assert_eq!(device_text(mkdev(259, 3)), "259:3");
    }
}
