// SPDX-License-Identifier: GPL-2.0

//! The fault paths: fs/dax.c's `dax_iomap_pmd_fault` and
//! `dax_iomap_pte_fault`, over the device's memory instead of a file
//! system's extents. A PMD fault maps 2 MiB where every check passes and
//! falls back to PTEs otherwise, for one of the reasons dax-probe's report
//! names (`Fallback`).

use kernel::{
    bindings,
    mm::virt::VmaRef,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

use crate::{
    bugs::Bug,
    entry::PMD_COLOUR,
    mapping::{GrabError, Mapping},
    region::Region,
    trace::{Fault, Kind},
};

const VM_FAULT_SIGBUS: u32 = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
const VM_FAULT_OOM: u32 = bindings::vm_fault_reason_VM_FAULT_OOM;
const VM_FAULT_FALLBACK: u32 = bindings::vm_fault_reason_VM_FAULT_FALLBACK;
const VM_FAULT_NOPAGE: u32 = bindings::vm_fault_reason_VM_FAULT_NOPAGE;
const PAGE_SHIFT: u32 = 12;
const PMD_SIZE: u64 = 2 << 20;

/// Why a PMD fault fell back; the names are dax-probe's.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub(crate) enum Fallback {
    AddressColour,
    CowWrite,
    VmaStart,
    VmaEnd,
    PastEof,
    PteEntryInRange,
    DirectAccess,
}

impl Fallback {
    const ALL: [Fallback; 7] = [
        Fallback::AddressColour,
        Fallback::CowWrite,
        Fallback::VmaStart,
        Fallback::VmaEnd,
        Fallback::PastEof,
        Fallback::PteEntryInRange,
        Fallback::DirectAccess,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Fallback::AddressColour => "address-colour",
            Fallback::CowWrite => "cow-write",
            Fallback::VmaStart => "vma-start",
            Fallback::VmaEnd => "vma-end",
            Fallback::PastEof => "past-eof",
            Fallback::PteEntryInRange => "pte-entry-in-range",
            Fallback::DirectAccess => "direct-access",
        }
    }
}

/// The device's fault counters, printed when the module is unloaded: how
/// many 2 MiB and 4 KiB mappings it made, and why 2 MiB faults fell back.
pub(crate) struct Counters {
    pmd_mapped: Atomic<u64>,
    pte_mapped: Atomic<u64>,
    fallbacks: [Atomic<u64>; Fallback::ALL.len()],
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            pmd_mapped: Atomic::new(0),
            pte_mapped: Atomic::new(0),
            fallbacks: [const { Atomic::new(0) }; Fallback::ALL.len()],
        }
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        pr_info!(
            "daxref: {} 2 MiB mappings, {} 4 KiB mappings\n",
            self.pmd_mapped.load(Relaxed),
            self.pte_mapped.load(Relaxed)
        );
        for reason in Fallback::ALL {
            let n = self.fallbacks[reason as usize].load(Relaxed);
            if n > 0 {
                pr_info!("daxref: {n} 2 MiB faults fell back: {}\n", reason.name());
            }
        }
    }
}

/// What a fault needs from `struct vm_fault`, read once.
pub(crate) struct Request {
    vmf: *mut bindings::vm_fault,
    vma: *mut bindings::vm_area_struct,
    pub(crate) fault: Fault,
    write: bool,
}

impl Request {
    /// # Safety
    ///
    /// `vmf` is the fault the core mm handed to our vm_operations, valid
    /// (with its VMA, under the mmap or VMA lock) until we return.
    pub(crate) unsafe fn new(vmf: *mut bindings::vm_fault, region: &Region) -> Request {
        // SAFETY: the caller guarantees `vmf` is valid, and its VMA with the
        // mmap or VMA read lock held, which is what VmaRef asks.
        let (vma, address, pgoff, flags, area) = unsafe {
            let anon = &(*vmf).__bindgen_anon_1;
            (
                anon.vma,
                anon.address,
                anon.pgoff,
                (*vmf).flags,
                VmaRef::from_raw(anon.vma),
            )
        };
        let (vm_start, vm_end, vm_flags) = (area.start(), area.end(), area.flags());
        let fault = Fault {
            dev: region.dev(),
            ino: 0,
            vm_start: vm_start as u64,
            vm_end: vm_end as u64,
            vm_flags: vm_flags as u64,
            address: address as u64,
            pgoff: pgoff as u64,
            max_pgoff: region.pages() as u64,
            flags: u64::from(flags),
        };
        let write = flags & bindings::fault_flag_FAULT_FLAG_WRITE != 0;
        Request {
            vmf,
            vma,
            fault,
            write,
        }
    }

    fn index(&self) -> usize {
        self.fault.pgoff as usize
    }

    /// A PTE table already sits where the PMD would go (a racing 4 KiB
    /// fault put it there): x86-64's `!pmd_none && !pmd_trans_huge`.
    fn pmd_has_page_table(&self) -> bool {
        const ACCESSED_DIRTY: u64 = 0x60;
        const PSE: u64 = 0x80;
        // SAFETY: `vmf->pmd` points at this fault's PMD slot, valid for the
        // fault; an unlocked read is what fs/dax.c does here too.
        let value = unsafe { core::ptr::read_volatile((*self.vmf).pmd) }.pmd as u64;
        value & !ACCESSED_DIRTY != 0 && value & PSE == 0
    }

    /// `dax_fault_check_fallback`: the reasons the fault's own fields give.
    fn check_fallback(&self) -> Option<Fallback> {
        let f = &self.fault;
        let pmd_address = f.address & !(PMD_SIZE - 1);
        if f.pgoff & PMD_COLOUR as u64 != (f.address >> PAGE_SHIFT) & PMD_COLOUR as u64 {
            Some(Fallback::AddressColour)
        } else if self.write && f.vm_flags & bindings::VM_SHARED as u64 == 0 {
            Some(Fallback::CowWrite)
        } else if pmd_address < f.vm_start {
            Some(Fallback::VmaStart)
        } else if pmd_address + PMD_SIZE > f.vm_end {
            Some(Fallback::VmaEnd)
        } else if (f.pgoff | PMD_COLOUR as u64) >= f.max_pgoff {
            Some(Fallback::PastEof)
        } else {
            None
        }
    }
}

/// A 2 MiB fault: map the whole range, or fall back.
pub(crate) fn pmd_fault(
    request: &Request,
    mapping: &Mapping,
    region: &Region,
    counters: &Counters,
) -> u32 {
    request.fault.emit(Kind::PmdFault, 0);
    let result = match pmd_map(request, mapping, region) {
        Ok(result) => result,
        Err(reason) => {
            counters.fallbacks[reason as usize].add(1, Relaxed);
            VM_FAULT_FALLBACK
        }
    };
    if result == VM_FAULT_NOPAGE {
        counters.pmd_mapped.add(1, Relaxed);
    }
    request.fault.emit(Kind::PmdFaultDone, result);
    result
}

fn pmd_map(request: &Request, mapping: &Mapping, region: &Region) -> Result<u32, Fallback> {
    let index = request.index();
    if request.fault.pgoff >= request.fault.max_pgoff {
        return Ok(VM_FAULT_SIGBUS);
    }
    if let Some(reason) = request.check_fallback() {
        return Err(reason);
    }
    let locked = match mapping.grab(index, true) {
        Ok(locked) => locked,
        Err(GrabError::Conflict) => {
            mapping.event_at(Kind::GrabFallback, index);
            return Err(Fallback::PteEntryInRange);
        }
        Err(GrabError::NoMemory) => return Ok(VM_FAULT_OOM),
        Err(GrabError::Stuck) => return Ok(VM_FAULT_SIGBUS),
    };
    // A racing PTE fault got here first: retry the fault (fs/dax.c does too).
    if request.pmd_has_page_table() {
        mapping.unlock(index, locked);
        return Ok(0);
    }
    mapping.event_at(Kind::PmdFaultIter, index);
    mapping.hold();
    let start = index & !PMD_COLOUR;
    let Some(pfn) = region.pmd_pfn(start) else {
        mapping.event_at(Kind::DirectAccessFailed, index);
        if !mapping.bug().is(Bug::LeakOnFallback) {
            mapping.unlock(index, locked);
        }
        return Err(Fallback::DirectAccess);
    };
    let locked = mapping.insert(index, locked, pfn);
    // SAFETY: the request's vmf is valid for this fault; `pfn` starts a
    // 2 MiB aligned, 2 MiB long run of the device's memory.
    let result = unsafe { bindings::vmf_insert_pfn_pmd(request.vmf, pfn as _, request.write) };
    mapping.unlock(index, locked);
    Ok(result)
}

/// A 4 KiB fault: `dax_iomap_pte_fault`.
pub(crate) fn pte_fault(
    request: &Request,
    mapping: &Mapping,
    region: &Region,
    counters: &Counters,
) -> u32 {
    request.fault.emit(Kind::PteFault, 0);
    let result = pte_map(request, mapping, region);
    if result == VM_FAULT_NOPAGE {
        counters.pte_mapped.add(1, Relaxed);
    }
    request.fault.emit(Kind::PteFaultDone, result);
    result
}

fn pte_map(request: &Request, mapping: &Mapping, region: &Region) -> u32 {
    let index = request.index();
    if request.fault.pgoff >= request.fault.max_pgoff {
        return VM_FAULT_SIGBUS;
    }
    let locked = match mapping.grab(index, false) {
        Ok(locked) => locked,
        Err(GrabError::Stuck) => return VM_FAULT_SIGBUS,
        Err(_) => return VM_FAULT_OOM,
    };
    // A real PMD entry stays: its page of the 2 MiB is mapped with a PTE.
    let (locked, pfn) = if locked.entry.is_pmd() {
        (locked, locked.entry.pfn() + (index - locked.start))
    } else {
        (
            mapping.insert(index, locked, region.pfn(index)),
            region.pfn(index),
        )
    };
    // SAFETY: the VMA is valid for this fault and the address is inside it;
    // the pfn is a page of the device's memory.
    let result =
        unsafe { bindings::vmf_insert_pfn(request.vma, request.fault.address as _, pfn as _) };
    mapping.unlock(index, locked);
    result
}
