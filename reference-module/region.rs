// SPDX-License-Identifier: GPL-2.0

//! The memory that stands in for persistent memory: 2 MiB runs of
//! physically contiguous pages, each 2 MiB aligned (buddy allocations of
//! order 9), so that every 2 MiB range of the device can be mapped by one
//! PMD. One range can be backed 4 KiB off alignment on purpose
//! (`unaligned_range`), as a device whose pfn is not 2 MiB aligned: PMD
//! faults there fall back for `direct-access`.

use kernel::{bindings, prelude::*};

use crate::entry::PMD_PAGES;

const PMD_ORDER: u32 = 9;

/// The device number reports show for /dev/daxref (the misc major, minor 0).
const DEV: u64 = 10 << 20;

struct Run {
    pages: *mut bindings::page,
    order: u32,
    /// The first pfn the device uses (the run's first, or one page in).
    pfn: usize,
}

pub(crate) struct Region {
    runs: KVec<Run>,
}

// SAFETY: the runs are plain page allocations owned by the region; nothing
// in them is tied to a thread.
unsafe impl Send for Region {}
// SAFETY: after construction the region is only read.
unsafe impl Sync for Region {}

/// `page_to_pfn` of x86-64 with SPARSEMEM_VMEMMAP (the lab's kernel): the
/// index of the page's `struct page` in the virtual memmap.
fn page_to_pfn(page: *mut bindings::page) -> usize {
    // SAFETY: vmemmap_base is set once at boot and only read afterwards.
    let vmemmap = unsafe { bindings::vmemmap_base } as usize;
    (page as usize - vmemmap) / core::mem::size_of::<bindings::page>()
}

impl Region {
    /// `ranges` runs of 2 MiB; run `unaligned` (if any) starts 4 KiB past alignment.
    pub(crate) fn new(ranges: usize, unaligned: Option<usize>) -> Result<Region> {
        let mut runs = KVec::with_capacity(ranges, GFP_KERNEL)?;
        for range in 0..ranges {
            let shifted = unaligned == Some(range);
            // One order more gives room for a run that starts a page in.
            let order = if shifted { PMD_ORDER + 1 } else { PMD_ORDER };
            let gfp = bindings::GFP_KERNEL | bindings::__GFP_ZERO | bindings::__GFP_NOWARN;
            // SAFETY: a plain page allocation; freed in Drop with the same order.
            let pages = unsafe { bindings::alloc_pages(gfp, order) };
            if pages.is_null() {
                pr_err!(
                    "daxref: no {} MiB of contiguous memory for range {range}\n",
                    2 << (order - PMD_ORDER)
                );
                return Err(ENOMEM);
            }
            let pfn = page_to_pfn(pages) + usize::from(shifted);
            runs.push(Run { pages, order, pfn }, GFP_KERNEL)?;
        }
        Ok(Region { runs })
    }

    pub(crate) fn pages(&self) -> usize {
        self.runs.len() * PMD_PAGES
    }

    pub(crate) fn dev(&self) -> u64 {
        DEV
    }

    /// The pfn behind page `index` of the device.
    pub(crate) fn pfn(&self, index: usize) -> usize {
        self.runs[index / PMD_PAGES].pfn + index % PMD_PAGES
    }

    /// The pfn of the 2 MiB range starting at `start`, if one PMD can map
    /// it (fs/dax.c's `dax_iomap_direct_access` check).
    pub(crate) fn pmd_pfn(&self, start: usize) -> Option<usize> {
        let pfn = self.pfn(start);
        (pfn % PMD_PAGES == 0).then_some(pfn)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        for run in &self.runs {
            // SAFETY: allocated in `new` with this order, and no mapping of it
            // outlives the module (the device holds it until unload).
            unsafe { bindings::__free_pages(run.pages, run.order) };
        }
    }
}
