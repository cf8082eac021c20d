//! Memory-management constants of the kernel, as fs/dax.c and the fs_dax
//! tracepoints use them on x86-64. Each names the header it comes from;
//! none has changed between 6.1 and 7.2.

/// `PAGE_SHIFT` on x86-64.
pub const PAGE_SHIFT: u32 = 12;
/// `PMD_SIZE` on x86-64: one PMD maps 2 MiB.
pub const PMD_SIZE: u64 = 2 << 20;
/// Pages under one PMD (`PTRS_PER_PMD`).
pub const PMD_PAGES: u64 = PMD_SIZE >> PAGE_SHIFT;
/// `PG_PMD_COLOUR` (fs/dax.c): a page offset's position inside its PMD.
pub const PMD_COLOUR: u64 = PMD_PAGES - 1;

/// `VM_SHARED` (include/linux/mm.h).
pub const VM_SHARED: u64 = 0x8;

/// `FAULT_FLAG_WRITE` (include/linux/mm_types.h).
pub const FAULT_FLAG_WRITE: u64 = 0x1;

/// `VM_FAULT_NOPAGE` (include/linux/mm_types.h): the fault handler
/// installed the mapping itself.
pub const VM_FAULT_NOPAGE: u64 = 0x100;
/// `VM_FAULT_FALLBACK`: a huge fault gave up; the PTE path serves it.
pub const VM_FAULT_FALLBACK: u64 = 0x800;
