//! The hooks: fentry/fexit on fs/dax.c and a kprobe on the reference
//! module's probe point, grouped by what they make checkable.
//!
//! Most entry-lock functions of fs/dax.c are `static` and may be inlined, so
//! the hooks are chosen to survive that (and are attached only where the
//! running kernel has the symbol and its BTF):
//!
//! | event | hook | why it is sound |
//! |---|---|---|
//! | `entry_lock` | fexit `dax_lock_entry` | Every lock, insert and replace of a DAX entry stores a locked value through this function (grab, insert, writeback, `dax_lock_folio`); the return value is the entry it replaced, so the event says whether a lock was taken (old unlocked), an entry created (old NULL) or replaced by its holder (old locked). Callers hold the mapping's `xa_lock` and fexit runs before they drop it: one mapping's events reach the ring buffer in lock order. |
//! | `entry_unlock` | fentry `dax_unlock_entry` | The release of faults and `dax_unlock_mapping_entry`; fentry runs before it takes the `xa_lock`, so the event precedes the next lock. Writeback releases with a store and a `WAKE_NEXT` by the holder, and deletes (PMD downgrade, invalidation) with a store of NULL and a `WAKE_ALL`: the analysis reads those from `entry_wake`, which is why this group includes the wake hooks. |
//! | `entry_wake` | fentry `dax_wake_entry` | The only way waiters of an entry are woken (unlock, writeback, delete, passing a wake on); the key is `(xa, index aligned to the entry's order)`, as `dax_entry_waitqueue` computes it. A wake by the entry's holder ends its lock (`WAKE_NEXT`: writeback; `WAKE_ALL`: the entry was deleted); a `WAKE_ALL` by anybody else follows a delete of an unlocked entry (invalidation). |
//! | `entry_wait` | fexit `dax_entry_waitqueue` outside `dax_wake_entry` | Every waiter computes its key here, just before `prepare_to_wait`; the event carries the key the kernel actually computed, so a waiter hashed on the wrong index (23c84eb78375) shows. |
//! | `entry_woken` | fentry `finish_wait` of a thread with an `entry_wait` | Every DAX wait ends in `finish_wait` on the same thread. |
//! | `grab_fallback` | fexit `grab_mapping_entry` returning `VM_FAULT_FALLBACK` | The only fallback of `grab_mapping_entry`: a smaller entry in the PMD range. |
//! | `direct_access_failed` | fexit `dax_iomap_direct_access` != 0 | Short extent, unaligned pfn or device error. |
//! | `pmd_fault_iter` | fentry `dax_fault_iter` with `pmd` | Reached only when the extent is at least 2 MiB. |
//! | all of the above, for `/dev/daxref` | kprobe `daxref_trace` (reference module) | The module calls its one probe point where fs/dax.c has each tracepoint or hooked function, under the same locks, with the fields in our order. |
//!
//! `xas_store` itself would be the one hook for every entry change, but it
//! has no ftrace site on 7.2 or 6.1 (so no fentry, and a kprobe only with
//! CONFIG_KPROBE_EVENTS_ON_NOTRACE), and it would see every page-cache store
//! of the system. So the entry-state group needs `dax_lock_entry` and
//! `dax_unlock_entry` as real symbols (7.2 built for size has them; Debian's
//! 6.1 inlines `dax_lock_entry`, and the coverage line says so).
//!
//! A group attaches whole or not at all, so a half-seen protocol never
//! passes for a checked one.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use aya::{
    programs::{FEntry, FExit, KProbe},
    Btf, Ebpf,
};
use dax_probe_common::Kind;

use crate::stream::HookGroup;

/// How a program attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    FEntry,
    FExit,
    /// A kprobe: for module functions without BTF (Rust modules have none).
    KProbe,
}

/// One program, as data: its name in the eBPF object, how and where it
/// attaches, and the events it gives (none: it keeps state for another).
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    pub program: &'static str,
    pub attach: Attach,
    pub function: &'static str,
    pub gives: &'static [Kind],
}

const fn fentry(program: &'static str, function: &'static str, gives: &'static [Kind]) -> Hook {
    Hook { program, attach: Attach::FEntry, function, gives }
}

const fn fexit(program: &'static str, function: &'static str, gives: &'static [Kind]) -> Hook {
    Hook { program, attach: Attach::FExit, function, gives }
}

/// The hooks of one [`HookGroup`]: it attaches only where the running
/// kernel has every function as a real symbol.
#[derive(Debug)]
pub struct Group {
    pub group: HookGroup,
    pub hooks: &'static [Hook],
}

const WAKE_ENTER: Hook = fentry("dax_wake_entry_enter", "dax_wake_entry", &[Kind::EntryWake]);
/// Ends the wake that `dax_entry_waitqueue_exit` must not take for a wait.
const WAKE_EXIT: Hook = fexit("dax_wake_entry_exit", "dax_wake_entry", &[]);

pub const GROUPS: &[Group] = &[
    Group {
        group: HookGroup::EntryState,
        hooks: &[
            fexit("dax_lock_entry_exit", "dax_lock_entry", &[Kind::EntryLock]),
            fentry("dax_unlock_entry_enter", "dax_unlock_entry", &[Kind::EntryUnlock]),
            WAKE_ENTER,
            WAKE_EXIT,
        ],
    },
    Group {
        group: HookGroup::WaitWake,
        hooks: &[
            WAKE_ENTER,
            WAKE_EXIT,
            fexit("dax_entry_waitqueue_exit", "dax_entry_waitqueue", &[Kind::EntryWait]),
            fentry("finish_wait_enter", "finish_wait", &[Kind::EntryWoken]),
        ],
    },
    Group {
        group: HookGroup::FallbackProbes,
        hooks: &[
            fexit("grab_mapping_entry_exit", "grab_mapping_entry", &[Kind::GrabFallback]),
            fexit("dax_iomap_direct_access_exit", "dax_iomap_direct_access", &[Kind::DirectAccessFailed]),
            fentry("dax_fault_iter_enter", "dax_fault_iter", &[Kind::PmdFaultIter]),
        ],
    },
    // The reference module (reference-module/), when it is loaded: every
    // event of /dev/daxref comes through its one probe point.
    Group {
        group: HookGroup::ReferenceModule,
        hooks: &[Hook {
            program: "daxref_trace",
            attach: Attach::KProbe,
            function: "daxref_trace",
            gives: &Kind::ALL,
        }],
    },
];

/// Which groups attached, and why the others did not.
#[derive(Debug, Default)]
pub struct Attached {
    pub groups: Vec<HookGroup>,
    /// (group, the reason: the functions this kernel lacks).
    pub missing: Vec<(HookGroup, String)>,
}

/// Text symbols of the running kernel (`/proc/kallsyms`), exact names only:
/// a `.isra`/`.constprop` clone has another signature and is no hook.
pub fn kernel_functions() -> Result<BTreeSet<String>> {
    let text = std::fs::read_to_string("/proc/kallsyms").context("cannot read /proc/kallsyms")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (_, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
            matches!(kind, "t" | "T").then(|| name.to_owned())
        })
        .collect())
}

/// Loads and attaches every group whose functions all exist.
pub fn attach(ebpf: &mut Ebpf, functions: &BTreeSet<String>) -> Result<Attached> {
    let btf = Btf::from_sys_fs()
        .context("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): it needs CONFIG_DEBUG_INFO_BTF")?;
    let mut attached = Attached::default();
    let mut loaded = BTreeSet::new();
    for group in GROUPS {
        // Sorted and each named once (a function can carry two hooks).
        let absent: Vec<_> = group
            .hooks
            .iter()
            .map(|hook| hook.function)
            .filter(|f| !functions.contains(*f))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !absent.is_empty() {
            let why = if group.group == HookGroup::ReferenceModule {
                "the daxref module is not loaded".to_owned()
            } else {
                format!("not in this kernel (inlined?): {}", absent.join(" "))
            };
            attached.missing.push((group.group, why));
            continue;
        }
        for hook in group.hooks {
            if loaded.insert(hook.program) {
                attach_hook(ebpf, &btf, hook)?;
            }
        }
        attached.groups.push(group.group);
    }
    Ok(attached)
}

fn attach_hook(ebpf: &mut Ebpf, btf: &Btf, hook: &Hook) -> Result<()> {
    let name = hook.program;
    let program = ebpf.program_mut(name).with_context(|| format!("no program {name} in the eBPF object"))?;
    let failed = || format!("cannot attach {:?} to {}: the kernel refused it", hook.attach, hook.function);
    match hook.attach {
        Attach::FExit => {
            let program: &mut FExit = program.try_into()?;
            program.load(hook.function, btf).with_context(failed)?;
            program.attach().with_context(failed)?;
        }
        Attach::FEntry => {
            let program: &mut FEntry = program.try_into()?;
            program.load(hook.function, btf).with_context(failed)?;
            program.attach().with_context(failed)?;
        }
        Attach::KProbe => {
            let program: &mut KProbe = program.try_into()?;
            program.load().with_context(failed)?;
            program.attach(hook.function, 0).with_context(failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dax_probe_common::TRACEPOINT_COUNT;

    #[test]
    fn every_hook_event_has_a_kernel_hook() {
        let kernel_hooks: Vec<&Hook> = GROUPS
            .iter()
            .filter(|group| group.group != HookGroup::ReferenceModule)
            .flat_map(|group| group.hooks)
            .collect();
        for kind in &Kind::ALL[TRACEPOINT_COUNT..] {
            assert!(kernel_hooks.iter().any(|hook| hook.gives.contains(kind)), "nothing gives {kind:?}");
        }
        let groups: Vec<_> = GROUPS.iter().map(|group| group.group).collect();
        assert_eq!(groups, HookGroup::ALL, "one table row per group, in order");
    }
}
