// SPDX-License-Identifier: GPL-2.0

//! daxref: the DAX PMD fault path and its entry locking, as a readable
//! reference, behind a character device.
//!
//! `/dev/daxref` maps `size_mib` of memory standing in for persistent
//! memory. Its faults take fs/dax.c's path: a 2 MiB fault checks the VMA and
//! the offsets (`fault.rs`), locks the range's entry in the entry array
//! (`mapping.rs`, waiting on the hashed wait table of `wait.rs`), maps one
//! PMD or falls back to 4 KiB faults, and every step is reported through the
//! probe point of `trace.rs`, so `dax-probe check` and `report` read it as
//! they read the kernel. `bug=N` (`bugs.rs`) injects one known bug class.
//!
//! ioctl `DAXREF_PUNCH` (arg: a page offset) deletes the entry covering that
//! page once nobody holds it and unmaps it everywhere, like a hole punch.

mod bugs;
mod entry;
mod fault;
mod mapping;
mod region;
mod trace;
mod wait;

use kernel::{
    bindings,
    fs::File,
    ioctl::_IO,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    mm::virt::VmaNew,
    prelude::*,
    static_lock_class,
    sync::Arc,
};

use crate::{bugs::Bug, mapping::Mapping, region::Region, wait::WaitTable};

const DAXREF_PUNCH: u32 = _IO('D' as u32, 1);

module! {
    type: DaxRefModule,
    name: "daxref",
    authors: ["dax-probe developers"],
    description: "dax-probe reference: the DAX PMD fault path and its entry locking, in Rust",
    license: "GPL",
    params: {
        size_mib: u32 {
            default: 64,
            description: "Size of /dev/daxref in MiB (a multiple of 2)",
        },
        bug: u32 {
            default: 0,
            description: "Injected bug: 0 none, 1 skip wake on unlock, 2 PMD waits hashed on the raw index, 3 PMD entry over PTE entries, 4 double release, 5 entry left locked on the direct-access fallback, 6 wake one on delete",
        },
        hold_us: u32 {
            default: 0,
            description: "Microseconds a 2 MiB fault holds its entry lock before going on (slow media; more contention in the lab)",
        },
        unaligned_range: u32 {
            default: 0xffff_ffff,
            description: "Back this 2 MiB range 4 KiB off alignment (its PMD faults fall back for direct-access); default: none",
        },
    },
}

/// What every open file of the device shares: the memory and the entries.
#[pin_data]
struct DaxRef {
    region: Region,
    counters: fault::Counters,
    #[pin]
    mapping: Mapping,
}

#[pin_data]
struct DaxRefModule {
    device: Arc<DaxRef>,
    #[pin]
    misc: MiscDeviceRegistration<DaxRefFile>,
}

impl kernel::InPlaceModule for DaxRefModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(DaxRefModule {
            device: new_device()?,
            misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"daxref" }),
        })
        .pin_chain(move |this| {
            own_file_operations(&this.misc, module);
            Ok(())
        })
    }
}

/// The device's file operations: the misc device's own, plus
/// - `owner`, this module: every open file (and every mapping, which holds
///   its file) holds a reference on the module, so `rmmod` is refused while
///   the device is open or mapped. The 7.2 `MiscDevice` abstraction sets no
///   owner: without it `rmmod` succeeded under an open file, whose `release`
///   then ran in freed module text. Extending the abstraction would mean
///   patching the kernel's `rust/kernel/miscdevice.rs` for every kernel
///   built; the table is already the module's own (below), so it is set here.
/// - `get_unmapped_area` = `thp_get_unmapped_area`, so that `mmap` picks a
///   2 MiB aligned address for a 2 MiB aligned offset, as it does for DAX
///   files. Without it no mapping fio makes could take a PMD (every fault
///   would be address-colour).
///
/// # Invariants
///
/// Written once, at init, before the device's fops point at it; never
/// written again.
static mut FOPS: core::mem::MaybeUninit<bindings::file_operations> =
    core::mem::MaybeUninit::uninit();

/// Whether `file` was opened through [`FOPS`]: an open in the instant
/// between the device's registration and [`own_file_operations`] got the
/// abstraction's table, which holds no module reference.
fn opened_through_our_table(file: &File) -> bool {
    // SAFETY: `file` is a live, opened file; `f_op` is set before `open` is
    // called and only read here. FOPS's address is taken, not its contents.
    unsafe { core::ptr::eq((*file.as_ptr()).f_op, (*(&raw const FOPS)).as_ptr()) }
}

fn own_file_operations(misc: &MiscDeviceRegistration<DaxRefFile>, module: &'static ThisModule) {
    let raw = misc.as_raw();
    // SAFETY: runs once, at init, right after registration: FOPS is written
    // before the device's fops point at it and never written again (its
    // invariant), and the misc device's fops are a valid static table.
    unsafe {
        let fops = &raw mut FOPS;
        (*fops).write(core::ptr::read((*raw).fops));
        (*(*fops).as_mut_ptr()).owner = module.as_ptr();
        (*(*fops).as_mut_ptr()).get_unmapped_area = Some(bindings::thp_get_unmapped_area);
        core::ptr::write_volatile(&raw mut (*raw).fops, (*fops).as_ptr());
    }
}

fn new_device() -> Result<Arc<DaxRef>> {
    let size_mib = *module_parameters::size_mib.value() as usize;
    if size_mib == 0 || size_mib % 2 != 0 {
        pr_err!("daxref: size_mib={size_mib} is not a positive multiple of 2\n");
        return Err(EINVAL);
    }
    let bug = Bug::from_param(*module_parameters::bug.value())?;
    let unaligned = *module_parameters::unaligned_range.value() as usize;
    let region = Region::new(size_mib / 2, Some(unaligned).filter(|&r| r < size_mib / 2))?;
    let waits = WaitTable::new(static_lock_class!())?;
    let hold_us = *module_parameters::hold_us.value();
    let device = Arc::pin_init(
        try_pin_init!(DaxRef { region, counters: fault::Counters::new(), mapping <- Mapping::new(waits, bug, hold_us) }),
        GFP_KERNEL,
    )?;
    pr_info!("daxref: /dev/daxref: {size_mib} MiB, injected bug: {bug:?}\n");
    Ok(device)
}

/// One open file: a handle on the shared device.
struct DaxRefFile {
    device: Arc<DaxRef>,
}

#[vtable]
impl MiscDevice for DaxRefFile {
    type Ptr = KBox<Self>;

    fn open(file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        // A file that holds no module reference could outlive the module.
        if !opened_through_our_table(file) {
            return Err(EAGAIN);
        }
        // SAFETY: the only registration of this type is the `misc` field of
        // the module's `DaxRefModule`, which outlives every open file: each
        // holds a reference on the module (`FOPS.owner`, checked above).
        let module =
            unsafe { &*kernel::container_of!(core::ptr::from_ref(misc), DaxRefModule, misc) };
        Ok(KBox::new(
            DaxRefFile {
                device: module.device.clone(),
            },
            GFP_KERNEL,
        )?)
    }

    fn mmap(this: &DaxRefFile, _file: &File, vma: &VmaNew) -> Result {
        let pages = this.device.region.pages();
        let length = (vma.end() - vma.start()) >> 12;
        // SAFETY: the VMA is being set up for us; reading its offset is fine.
        let pgoff = unsafe { (*vma.as_ptr()).vm_pgoff } as usize;
        if pgoff.checked_add(length).is_none_or(|end| end > pages) {
            return Err(EINVAL);
        }
        // A PFN map cannot be copied on write: private writable mappings are refused.
        if vma.flags() & bindings::VM_SHARED == 0 && vma.flags() & bindings::VM_MAYWRITE != 0 {
            return Err(EINVAL);
        }
        vma.set_dontexpand();
        vma.set_dontdump();
        // SAFETY: the VMA is under initial setup and ours to configure:
        // VM_PFNMAP says it maps raw pfns (no struct page refcounts), and our
        // vm_operations take its faults. VM_OPS is a static.
        unsafe {
            (*vma.as_ptr()).__bindgen_anon_2.vm_flags |= bindings::VM_PFNMAP;
            (*vma.as_ptr()).vm_ops = &VM_OPS;
        }
        Ok(())
    }

    fn ioctl(this: &DaxRefFile, file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            DAXREF_PUNCH if arg < this.device.region.pages() => {
                this.device.mapping.delete(arg, |start, pages| {
                    // SAFETY: the file is open, so its mapping is valid; unmapping
                    // the entry's pages from every process makes the next access fault.
                    unsafe {
                        bindings::unmap_mapping_range(
                            (*file.as_ptr()).f_mapping,
                            (start << 12) as i64,
                            (pages << 12) as i64,
                            1,
                        )
                    };
                });
                Ok(0)
            }
            DAXREF_PUNCH => Err(EINVAL),
            _ => Err(ENOTTY),
        }
    }
}

static VM_OPS: bindings::vm_operations_struct = bindings::vm_operations_struct {
    fault: Some(daxref_fault),
    huge_fault: Some(daxref_huge_fault),
    // SAFETY: all-zero is "no callback" for every other member.
    ..unsafe { core::mem::zeroed() }
};

/// The device behind a faulting VMA.
///
/// # Safety
///
/// `vmf` is a fault on one of our VMAs: its `vm_file` is an open daxref file.
unsafe fn device_of<'a>(vmf: *mut bindings::vm_fault) -> &'a DaxRef {
    // SAFETY: the VMA holds a reference on its file, whose private data is
    // the `KBox<DaxRefFile>` `open` made, alive until the last reference goes.
    unsafe {
        let file = (*(*vmf).__bindgen_anon_1.vma).vm_file;
        &(*(*file).private_data.cast::<DaxRefFile>()).device
    }
}

unsafe extern "C" fn daxref_fault(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
    // SAFETY: the core mm calls us with a valid fault on one of our VMAs.
    let (device, request) = unsafe {
        let device = device_of(vmf);
        (device, fault::Request::new(vmf, &device.region))
    };
    fault::pte_fault(&request, &device.mapping, &device.region, &device.counters)
}

unsafe extern "C" fn daxref_huge_fault(
    vmf: *mut bindings::vm_fault,
    order: u32,
) -> bindings::vm_fault_t {
    if order != 9 {
        return bindings::vm_fault_reason_VM_FAULT_FALLBACK;
    }
    // SAFETY: as in daxref_fault.
    let (device, request) = unsafe {
        let device = device_of(vmf);
        (device, fault::Request::new(vmf, &device.region))
    };
    fault::pmd_fault(&request, &device.mapping, &device.region, &device.counters)
}
