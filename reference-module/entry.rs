// SPDX-License-Identifier: GPL-2.0

//! DAX entries: one per 4 KiB page or 2 MiB range of the device, with the
//! seed's types and flags, encoded as fs/dax.c encodes them (`pfn << 4 |
//! flags`), so that dax-probe reads the module's entries and the kernel's
//! alike.

/// The entry is locked: a fault or a delete owns it.
pub(crate) const LOCKED: usize = 1 << 0;
/// The entry covers 2 MiB (512 pages), from a 2 MiB aligned index.
pub(crate) const PMD: usize = 1 << 1;
/// The entry maps the huge zero page (kept for the downgrade rule; the
/// reference's memory has no holes, so none is ever made).
pub(crate) const ZERO_PAGE: usize = 1 << 2;
/// The entry is a placeholder: locked for a fault that has not mapped yet.
pub(crate) const EMPTY: usize = 1 << 3;
const SHIFT: u32 = 4;

/// Pages in a PMD entry, and the mask that aligns an index to its start.
pub(crate) const PMD_PAGES: usize = 512;
pub(crate) const PMD_COLOUR: usize = PMD_PAGES - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry(usize);

impl Entry {
    pub(crate) fn new(pfn: usize, flags: usize) -> Entry {
        Entry(pfn << SHIFT | flags)
    }

    pub(crate) fn empty(pmd: bool) -> Entry {
        Entry::new(0, EMPTY | if pmd { PMD } else { 0 })
    }

    pub(crate) fn pfn(self) -> usize {
        self.0 >> SHIFT
    }

    pub(crate) fn is_locked(self) -> bool {
        self.0 & LOCKED != 0
    }

    pub(crate) fn is_pmd(self) -> bool {
        self.0 & PMD != 0
    }

    /// Empty and zero-page PMD entries give way to PTE faults; real ones stay.
    pub(crate) fn is_downgradable(self) -> bool {
        self.is_pmd() && self.0 & (EMPTY | ZERO_PAGE) != 0
    }

    pub(crate) fn locked(self) -> Entry {
        Entry(self.0 | LOCKED)
    }

    pub(crate) fn unlocked(self) -> Entry {
        Entry(self.0 & !LOCKED)
    }

    /// The first index the entry covers, for an index inside it.
    pub(crate) fn start(self, index: usize) -> usize {
        if self.is_pmd() {
            index & !PMD_COLOUR
        } else {
            index
        }
    }

    /// The word as the kernel's XArray would hold it (`xa_mk_value`).
    pub(crate) fn as_xa_value(self) -> u64 {
        ((self.0 as u64) << 1) | 1
    }
}
