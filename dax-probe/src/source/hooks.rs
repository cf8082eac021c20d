//! The hooks, as data: for each [`HookGroup`], the ways to observe its
//! events, best first, and the kernel functions each way needs. Each
//! running kernel gets the best way it offers, per group ([`attach`]).
//!
//! Most entry-lock functions of fs/dax.c are `static`, and the compiler may
//! inline them: on Debian's stock 6.1, 6.12 and 7.2, `dax_lock_entry` and
//! `dax_entry_waitqueue` are inlined everywhere (checked in their BTF and
//! kallsyms). Hence two ways for the groups that need them:
//!
//! | event | way | hook | why it is sound |
//! |---|---|---|---|
//! | `entry_lock` | native | fexit `dax_lock_entry` | Every lock, insert and replace of a DAX entry stores a locked value through this function (grab, insert, writeback, `dax_lock_folio`); the return value is the entry it replaced, so the event says whether a lock was taken (old unlocked), an entry created (old NULL) or replaced by its holder (old locked). Callers hold the mapping's `xa_lock` and fexit runs before they drop it: one mapping's events are stamped in lock order, the order in which user space merges the CPUs' ring buffers (`rings.rs`). A store that failed (`xas` in an error state: no memory for a node, retried after `xas_nomem`) changed nothing and gives no event. |
//! | `entry_lock` | inlined | kprobes on every direct call of `xas_store` in fs/dax.c's code (and of `dax_lock_entry` where it is a real function), and on the instruction after it | An inlined `dax_lock_entry` is that call with a locked value, an inlined `dax_unlock_entry` one with an unlocked value; a store of NULL is a delete, which fs/dax.c always follows with a `WAKE_ALL` of the entry. In a function with its own inlined copy of `dax_wake_entry` that wake-up reaches `__wake_up` only when the queue has waiters, so there the delete's `WAKE_ALL` is told at the store's return instead (`entry_delete_call`): unseen, the entry read as still there, and the soak on Debian's 7.2 gave 110 642 false violations in 60 s. The call's kprobe sees the `xa_state` and the value, the return's sees the replaced entry in rax while the caller still holds the `xa_lock`: the same event, in the same order, as the native way. From the call to the return the thread holds that spinlock, so its CPU's one slot carries the call's arguments to the return (where the lock sleeps, PREEMPT_RT, a store another thread overwrites there is counted lost). A store that failed (`xas` in an error state) changed nothing and gives no event. The call sites are found in the running kernel's code (`kernel_text.rs`); the kernel refuses a kprobe that is not on an instruction. |
//! | `entry_unlock` | both | fentry `dax_unlock_entry` | The release of faults and `dax_unlock_mapping_entry`; fentry runs before it takes the `xa_lock`, so the event precedes the next lock. Writeback releases with a store and a `WAKE_NEXT` by the holder, and deletes (PMD downgrade, invalidation) with a store of NULL and a `WAKE_ALL`: the analysis reads those from `entry_wake`, which is why this group includes the wake hooks. A real function on every kernel seen. |
//! | `entry_wake` | both | fentry `dax_wake_entry` | The only way waiters of an entry are woken (unlock, writeback, delete, passing a wake on); the key is `(xa, index aligned to the entry's order)`, as `dax_entry_waitqueue` computes it. A wake by the entry's holder ends its lock (`WAKE_NEXT`: writeback; `WAKE_ALL`: the entry was deleted); a `WAKE_ALL` by anybody else follows a delete of an unlocked entry (invalidation). A real function on every kernel seen. A `WAKE_NEXT` while no waiter is counted (`WAITERS`, kept by the wait hooks) and the mapping's `xa_lock` is free sends nothing: it wakes nobody, ends no lock (writeback's release wakes under the lock) and deletes nothing; it is the one after every fault's unlock (`wake_tells_nothing` in the programs; only where BTF shows `xa_lock` a plain spinlock at the XArray's start). |
//! | `entry_wait` | native | fexit `dax_entry_waitqueue` of a waiter (its key sits right after a wait entry whose `func` is `wake_exceptional_entry_func`; `dax_wake_entry`'s key is a bare one in its frame) | Every waiter computes its key here, just before `prepare_to_wait`, its `func` already set (all three waiters of fs/dax.c, 4.x to 7.2); the event carries the key the kernel actually computed and the entry the waiter found locked, so a waiter hashed on the wrong index (23c84eb78375) shows. A waiter calls it holding the mapping's `xa_lock`, so where BTF shows the lock a plain word and it reads free, the caller is `dax_wake_entry` and the wait entry is not read (half the program's cost, once per fault). |
//! | `entry_wait` | inlined | fentry `prepare_to_wait_exclusive` and `prepare_to_wait` of a wait entry whose `func` is `wake_exceptional_entry_func` | Only DAX waiters use that function; their key is written into the `wait_exceptional_entry_queue` right after the wait entry before the call, under the `xa_lock`. The entry the waiter found is not known this way: a waiter on a key nobody holds is judged by what is held in its 2 MiB range instead. |
//! | `entry_woken` | both | fentry `finish_wait` of a thread with an `entry_wait` | Every DAX wait ends in `finish_wait` on the same thread. |
//! | `grab_fallback` | both | kprobes at `dax_iomap_pmd_fault`'s calls of `grab_mapping_entry` (its `xa_state`) and after them (rax: `VM_FAULT_FALLBACK`) | The only fallback of `grab_mapping_entry`: a smaller entry in the PMD range. A PTE fault's grab cannot fall back (order 0), so its calls are not probed: hooks on the function cost every PTE fault a trampoline (the native way's fexit before) or two traps (the inlined way's kprobes on every call before: on Debian's 7.2, 0.07 s of programs alone in the seed's job). Either way is refused where the PMD fault's call cannot be probed. |
//! | `direct_access_failed` | native | fexit `dax_iomap_direct_access` != 0 for 2 MiB | Short extent, unaligned pfn or device error, of a PMD fault (a PTE fault asks for 4 KiB). |
//! | `pmd_fault_iter` | native | fentry `dax_fault_iter` with `pmd` | Reached only when the extent is at least 2 MiB. On the function, though every PTE fault runs it: the counting mode probes the PMD fault's call of it, and a kprobe rewrites the instruction it sits on, so a stream next to it found no call there to probe. (The same holds for the grab's call, which a stream probes: a second stream, or a counting session started after one, finds it probed and goes without; the counting mode then hooks the functions, and a second stream says its fallback hooks are missing.) |
//! | `pmd_fault_iter` | inlined | kprobe `dax_fault_iter` with `pmd` | The same, where fentry would be preempted (see `dax_waiter_queued`). |
//! | `direct_access_failed` | inlined | kprobes at every call of `dax_iomap_direct_access` and after it | Its callers serve both sizes; only a call for 2 MiB is remembered for its return (a per-thread map: the call holds no lock), so a PTE fault costs two traps and no map update. |
//! | `truncated` | native | fexit `truncate_inode_pages_range` of a DAX file (`S_DAX` in its inode's `i_flags`), by two programs | Truncate, hole punch and eviction all end here, for DAX files too (exported: a real function everywhere); at its return no entry wholly inside the range is left (it deletes any the file system's layout break left, with a warning, "so truncate_pagecache() doesn't loop forever"), and the caller still holds the invalidate lock that keeps faults out. The kernel skips a tracing program on a CPU where a preempted task is still inside it (once in the soak's 3 096 truncates on Debian's 7.2), so two programs, both telling it: user space keeps one of the twins (`live.rs`), a skip of one is made up by the other, and the fewer of their skips is counted lost (a truncate both skipped costs each one). (A kprobe on the function crashed the lab's kernel at its first truncate: 7.2's ftrace jumped one byte short of an odd-addressed handler, fixed for the lab by `lab/kernel/patches/0003`.) The mapping's `host` and `i_pages` (the XArray the entry events name) are found at bytes 0 and 8 of `struct address_space`, checked in BTF before attaching, and `i_flags` where BTF says. |
//! | all of the above, for `/dev/daxref` | native | kprobe `daxref_trace` (reference module) | The module calls its one probe point where fs/dax.c has each tracepoint or hooked function, under the same locks, with the fields in our order. |
//!
//! `xas_store` itself would be one hook for every entry change, but it has
//! no ftrace site (lib/ is built without), and a kprobe on it would see
//! every page-cache store of the system; its call sites in fs/dax.c are
//! what the inlined way takes instead.
//!
//! A group attaches whole, by one way, or not at all, so a half-seen
//! protocol never passes for a checked one.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use aya::{
    programs::{
        fentry::FEntryLinkId, fexit::FExitLinkId, kprobe::KProbeLinkId, FEntry, FExit, KProbe, ProgramError,
    },
    Btf, Ebpf,
};
use aya_obj::btf::BtfKind;
use dax_probe_common::{count::Offsets, Kind};

use crate::{
    source::{
        btf,
        kernel_text::{self, not_an_instruction, Kcore, Symbol, Symbols},
        truncates,
    },
    stream::HookGroup,
};

/// How a program attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    FEntry,
    FExit,
    /// A kprobe at the function's entry: for module functions without BTF
    /// (Rust modules have none).
    KProbe,
    /// A kprobe on each direct call of the function in fs/dax.c's code.
    CallsOf,
    /// A kprobe on the instruction after each such call.
    ReturnsFrom,
}

/// One program, as data: its name in the eBPF object, how it attaches, to
/// which kernel function, and the events it gives (none: it keeps state
/// for another).
#[derive(Clone, Copy, Debug)]
pub struct Hook {
    pub program: &'static str,
    pub attach: Attach,
    pub function: &'static str,
    pub gives: &'static [Kind],
}

/// A way to observe a group's events: every hook of it, or none.
#[derive(Debug)]
pub struct Way {
    pub name: &'static str,
    pub hooks: &'static [Hook],
    /// Functions the programs need besides those they attach to.
    pub needs: &'static [&'static str],
    /// (caller, callee): calls the way must probe in that caller, or fail.
    /// Where the kernel inlined the callee there, its events would go
    /// unseen while the group reads as attached.
    pub probes_calls: &'static [(&'static str, &'static str)],
    /// (caller, callee): a callee whose calls are probed in that caller
    /// only (and its cold parts), where alone its events can happen: a
    /// kprobe elsewhere would cost every other fault a trap for nothing.
    pub calls_only_in: &'static [(&'static str, &'static str)],
}

/// The ways of one [`HookGroup`], best first.
#[derive(Debug)]
pub struct Group {
    pub group: HookGroup,
    pub ways: &'static [Way],
}

const fn hook(program: &'static str, attach: Attach, function: &'static str, gives: &'static [Kind]) -> Hook {
    Hook { program, attach, function, gives }
}

const WAKE_ENTER: Hook = hook("dax_wake_entry_enter", Attach::FEntry, "dax_wake_entry", &[Kind::EntryWake]);
const UNLOCK: Hook = hook("dax_unlock_entry_enter", Attach::FEntry, "dax_unlock_entry", &[Kind::EntryUnlock]);
/// `dax_wake_entry`'s wake-ups: the real function's at its entry, the
/// copies inlined elsewhere at their `__wake_up` calls (call sites inside a
/// function a way probes at entry are left to that probe).
const WAKE_ENTRY_KPROBE: Hook =
    hook("dax_wake_entry_kprobe", Attach::KProbe, "dax_wake_entry", &[Kind::EntryWake]);
const WAKE_UP_CALLS: Hook = hook("wake_up_call", Attach::CallsOf, "__wake_up", &[Kind::EntryWake]);
const WOKEN: Hook = hook("finish_wait_enter", Attach::FEntry, "finish_wait", &[Kind::EntryWoken]);
/// The PMD fault's grab, at its own call (`calls_only_in`), both ways: a
/// PTE fault's `grab_mapping_entry` cannot fall back (order 0: no entry is
/// smaller), so hooks on the function would cost every PTE fault for
/// nothing (fexit: a trampoline; kprobes on every call: two traps).
/// (`dax_fault_iter` is hooked on the function: see its program.)
const PMD_FAULT_GRAB: (&str, &str) = ("dax_iomap_pmd_fault", "grab_mapping_entry");
const GRAB_CALL: Hook = hook("grab_mapping_entry_call", Attach::CallsOf, "grab_mapping_entry", &[]);
const GRAB_RETURN: Hook =
    hook("grab_mapping_entry_return", Attach::ReturnsFrom, "grab_mapping_entry", &[Kind::GrabFallback]);

/// The truncate of a DAX file, told at its return by two programs, for a
/// run the kernel skips in one (see `truncate_done`).
const TRUNCATE_DONE: [Hook; 2] = [
    hook(truncates::PROGRAMS[0], Attach::FExit, "truncate_inode_pages_range", &[Kind::Truncated]),
    hook(truncates::PROGRAMS[1], Attach::FExit, "truncate_inode_pages_range", &[Kind::Truncated]),
];

/// The call of `xas_store` in the inlined way, and its twin for functions
/// where a delete's wake-up may go unseen (see `attach_call_sites`).
const STORE_CALL: &str = "entry_store_call";
const DELETE_TELLING_STORE_CALL: &str = "entry_delete_call";

/// The way that needs every function to be real.
pub const NATIVE: &str = "native";
/// The way that survives inlining.
pub const INLINED: &str = "inlined";

pub const GROUPS: &[Group] = &[
    Group {
        group: HookGroup::EntryState,
        ways: &[
            Way {
                name: NATIVE,
                needs: &[],
                probes_calls: &[],
                calls_only_in: &[],
                hooks: &[
                    hook("dax_lock_entry_exit", Attach::FExit, "dax_lock_entry", &[Kind::EntryLock]),
                    UNLOCK,
                    WAKE_ENTER,
                ],
            },
            Way {
                name: INLINED,
                needs: &["xas_store", "__wake_up"],
                probes_calls: &[],
                calls_only_in: &[],
                hooks: &[
                    hook(STORE_CALL, Attach::CallsOf, "xas_store", &[]),
                    hook("lock_entry_call", Attach::CallsOf, "dax_lock_entry", &[]),
                    hook(
                        "entry_store_return",
                        Attach::ReturnsFrom,
                        "xas_store",
                        &[Kind::EntryLock, Kind::EntryUnlock, Kind::EntryWake],
                    ),
                    hook("entry_store_return", Attach::ReturnsFrom, "dax_lock_entry", &[Kind::EntryLock]),
                    WAKE_ENTRY_KPROBE,
                    WAKE_UP_CALLS,
                ],
            },
        ],
    },
    Group {
        group: HookGroup::WaitWake,
        ways: &[
            Way {
                name: NATIVE,
                // The waiters' `func`, which tells a waiter's key from a waker's.
                needs: &["wake_exceptional_entry_func"],
                probes_calls: &[],
                calls_only_in: &[],
                hooks: &[
                    WAKE_ENTER,
                    hook(
                        "dax_entry_waitqueue_exit",
                        Attach::FExit,
                        "dax_entry_waitqueue",
                        &[Kind::EntryWait],
                    ),
                    WOKEN,
                ],
            },
            Way {
                name: INLINED,
                // The waiters' `func`, which tells DAX waiters from others.
                needs: &["wake_exceptional_entry_func", "__wake_up"],
                probes_calls: &[],
                calls_only_in: &[],
                hooks: &[
                    WAKE_ENTRY_KPROBE,
                    WAKE_UP_CALLS,
                    hook(
                        "dax_waiter_queued",
                        Attach::KProbe,
                        "prepare_to_wait_exclusive",
                        &[Kind::EntryWait],
                    ),
                    hook("dax_waiter_queued", Attach::KProbe, "prepare_to_wait", &[Kind::EntryWait]),
                    hook("dax_waiter_back", Attach::KProbe, "finish_wait", &[Kind::EntryWoken]),
                ],
            },
        ],
    },
    Group {
        group: HookGroup::FallbackProbes,
        ways: &[
            Way {
                name: NATIVE,
                needs: &[],
                probes_calls: &[PMD_FAULT_GRAB],
                calls_only_in: &[PMD_FAULT_GRAB],
                hooks: &[
                    GRAB_CALL,
                    GRAB_RETURN,
                    hook(
                        "dax_iomap_direct_access_exit",
                        Attach::FExit,
                        "dax_iomap_direct_access",
                        &[Kind::DirectAccessFailed],
                    ),
                    hook("dax_fault_iter_enter", Attach::FEntry, "dax_fault_iter", &[Kind::PmdFaultIter]),
                ],
            },
            Way {
                name: INLINED,
                needs: &[],
                // The PMD fault's own calls, and the direct access of its
                // iteration, which tells a short extent or unaligned pfn.
                probes_calls: &[PMD_FAULT_GRAB, ("dax_fault_iter", "dax_iomap_direct_access")],
                calls_only_in: &[PMD_FAULT_GRAB],
                hooks: &[
                    GRAB_CALL,
                    GRAB_RETURN,
                    hook("direct_access_call", Attach::CallsOf, "dax_iomap_direct_access", &[]),
                    hook(
                        "direct_access_return",
                        Attach::ReturnsFrom,
                        "dax_iomap_direct_access",
                        &[Kind::DirectAccessFailed],
                    ),
                    hook("dax_fault_iter_kprobe", Attach::KProbe, "dax_fault_iter", &[Kind::PmdFaultIter]),
                ],
            },
        ],
    },
    // Exported, so a real function on every kernel; its callers (the file
    // systems' truncate and punch, eviction) hold the file's invalidate
    // lock, so no fault makes an entry in the range until they drop it.
    Group {
        group: HookGroup::Truncation,
        ways: &[Way {
            name: NATIVE,
            // `mapping->i_pages`, which the program finds at a fixed offset.
            needs: &[],
            probes_calls: &[],
            calls_only_in: &[],
            hooks: &TRUNCATE_DONE,
        }],
    },
    // The reference module (reference-module/), when it is loaded: every
    // event of /dev/daxref comes through its one probe point.
    Group {
        group: HookGroup::ReferenceModule,
        ways: &[Way {
            name: NATIVE,
            needs: &[],
            probes_calls: &[],
            calls_only_in: &[],
            hooks: &[hook("daxref_trace", Attach::KProbe, "daxref_trace", &Kind::ALL)],
        }],
    },
];

/// Which ways a recording may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Plan {
    /// The native ways where the kernel has the entry-lock functions whole,
    /// else the inlined ways.
    #[default]
    Auto,
    /// Only hooks on whole functions (fails where the kernel inlined them).
    Native,
    /// The hooks that survive inlining, even where the functions are real
    /// (to compare them with the native ones on one kernel).
    Inlined,
}

impl Plan {
    fn allows(self, way: &Way) -> bool {
        match self {
            Plan::Auto => true,
            // A group with one way has nothing to choose.
            Plan::Native => way.name == NATIVE,
            Plan::Inlined => way.name == INLINED,
        }
    }
}

/// Which groups attached, by which way, and why the others did not.
#[derive(Debug, Default)]
pub struct Attached {
    /// (group, its way).
    pub groups: Vec<(HookGroup, &'static str)>,
    /// (group, why: each way's reason).
    pub missing: Vec<(HookGroup, String)>,
    /// Call sites probed (function+offset(callee)), for the record.
    pub call_sites: Vec<String>,
}

/// What the running kernel offers the hooks.
pub struct Kernel {
    symbols: Symbols,
    btf: Btf,
    /// The hooks' functions with an ftrace site (fentry and fexit need one).
    traceable: BTreeSet<String>,
    /// Where the truncation program finds a mapping's inode flags
    /// (`offsetof(struct inode, i_flags)`), or why it cannot.
    inode_flags: Result<u32, String>,
    /// Where the fault tracepoints' programs read the record's fields.
    fault_offsets: Result<Offsets, String>,
    /// Whether the wake-up programs may read a mapping's `xa_lock` word
    /// ([`btf::xa_lock_is_a_word`]).
    xa_lock_word: bool,
}

impl Kernel {
    pub fn read(tracefs: &std::path::Path) -> Result<Kernel> {
        let symbols = Symbols::read()?;
        anyhow::ensure!(
            symbols.has_addresses(),
            "/proc/kallsyms shows no addresses: run dax-probe as root (kernel.kptr_restrict hides them otherwise)"
        );
        let btf = Btf::from_sys_fs().context(
            "cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): it needs CONFIG_DEBUG_INFO_BTF",
        )?;
        let traceable = traceable(tracefs, &symbols)?;
        let members = btf::Btf::kernel();
        let members = members.as_ref().map_err(|error| format!("{error:#}"));
        let inode_flags =
            members.clone().and_then(|btf| inode_flags_offset(btf).map_err(|error| format!("{error:#}")));
        let xa_lock_word = members.clone().is_ok_and(btf::xa_lock_is_a_word);
        let fault_offsets =
            members.and_then(|btf| btf::fault_offsets(btf).map_err(|error| format!("{error:#}")));
        Ok(Kernel { symbols, btf, traceable, inode_flags, fault_offsets, xa_lock_word })
    }

    /// Where the fault tracepoints' BTF-typed programs read their fields,
    /// or why they cannot (the classic tracepoints serve then).
    pub fn fault_offsets(&self) -> Result<Offsets, &str> {
        self.fault_offsets.as_ref().copied().map_err(String::as_str)
    }

    /// The kernel's BTF, as aya loads BTF-typed programs with it.
    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    /// `offsetof(struct inode, i_flags)` for the truncation program; 0
    /// where the kernel's layout is not the one it reads (the truncation
    /// group is then refused).
    pub fn inode_flags(&self) -> u32 {
        *self.inode_flags.as_ref().unwrap_or(&0)
    }

    /// Whether the wake-up programs may read a mapping's `xa_lock` word,
    /// and so leave out the wake-ups that tell nothing.
    pub fn xa_lock_word(&self) -> bool {
        self.xa_lock_word
    }

    /// The address of a function, for programs that compare with it.
    pub fn address(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|symbol| symbol.address)
    }

    /// One plan for every group: `Auto` is the native way where this kernel
    /// has the entry-lock functions whole, else the inlined way throughout.
    /// (Mixing them would put a kprobe and a fentry program on one function,
    /// and a kernel that inlines one function inlines its neighbours too.)
    fn plan(&self, plan: Plan) -> Plan {
        if plan != Plan::Auto {
            return plan;
        }
        let native =
            GROUPS[0].ways.iter().find(|way| way.name == NATIVE).expect("entry-state has a native way");
        let whole = native.hooks.iter().all(|hook| self.lacks(hook).is_none())
            && native.needs.iter().all(|name| self.symbols.has(name));
        if whole {
            Plan::Native
        } else {
            Plan::Inlined
        }
    }

    /// Why `hook` cannot attach here, if it cannot.
    fn lacks(&self, hook: &Hook) -> Option<String> {
        let name = hook.function;
        match hook.attach {
            Attach::FEntry | Attach::FExit => {
                if !self.symbols.has(name) {
                    Some(format!("{name} is not a function in this kernel (inlined?)"))
                } else if self.btf.id_by_type_name_kind(name, BtfKind::Func).is_err() {
                    Some(format!("{name} has no BTF"))
                } else if !self.traceable.contains(name) {
                    Some(format!("{name} has no ftrace site"))
                } else {
                    None
                }
            }
            Attach::KProbe if name == "daxref_trace" && !self.symbols.has(name) => {
                Some("the daxref module is not loaded".to_owned())
            }
            Attach::KProbe => (!self.symbols.has(name)).then(|| format!("{name} is not in this kernel")),
            // Call sites are looked for when attaching.
            Attach::CallsOf | Attach::ReturnsFrom => None,
        }
    }
}

/// The fentry and fexit hooks' functions that have an ftrace site. Read
/// from each one's first instruction in the running kernel's code; where
/// /proc/kcore cannot be read, from the kernel's list of every ftrace site
/// (`available_filter_functions`), which takes seconds of CPU to print, in
/// every launch, under emulation.
fn traceable(tracefs: &std::path::Path, symbols: &Symbols) -> Result<BTreeSet<String>> {
    let from_code = || -> Result<BTreeSet<String>> {
        let mut kcore = Kcore::open()?;
        let mut traceable = BTreeSet::new();
        let hooks = GROUPS.iter().flat_map(|group| group.ways).flat_map(|way| way.hooks);
        for hook in hooks.filter(|hook| matches!(hook.attach, Attach::FEntry | Attach::FExit)) {
            let Some(function) = symbols.get(hook.function) else { continue };
            if kernel_text::has_ftrace_site(&mut kcore, function.address)? {
                traceable.insert(hook.function.to_owned());
            }
        }
        Ok(traceable)
    };
    if let Ok(traceable) = from_code() {
        return Ok(traceable);
    }
    Ok(std::fs::read_to_string(tracefs.join("available_filter_functions"))
        .context("cannot read the functions ftrace can trace")?
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// Loads and attaches, per group, the best allowed way whose hooks this
/// kernel has.
pub fn attach(ebpf: &mut Ebpf, kernel: &Kernel, plan: Plan) -> Result<Attached> {
    let plan = kernel.plan(plan);
    let mut attached = Attached::default();
    // (program, function) pairs attached: a program may serve several
    // groups, and one program several functions.
    let mut loaded = BTreeSet::new();
    for group in GROUPS {
        let mut reasons = Vec::new();
        let ways = group.ways.iter().filter(|way| group.ways.len() == 1 || plan.allows(way));
        let chosen = ways.into_iter().find(|way| {
            match try_way(ebpf, kernel, way, &mut loaded, &mut attached.call_sites) {
                Ok(()) => true,
                Err(why) => {
                    reasons.push(format!("{} way: {why:#}", way.name));
                    false
                }
            }
        });
        match chosen {
            Some(way) => attached.groups.push((group.group, way.name)),
            None => attached.missing.push((group.group, reasons.join("; "))),
        }
    }
    Ok(attached)
}

/// Attaches every hook of `way`, or says why not and attaches none: a way
/// half attached next to another of the same group would double events.
/// `loaded` holds the (program, function) pairs attached (a program serves
/// several groups, and one program several functions).
fn try_way(
    ebpf: &mut Ebpf,
    kernel: &Kernel,
    way: &Way,
    loaded: &mut BTreeSet<(&'static str, &'static str)>,
    call_sites: &mut Vec<String>,
) -> Result<()> {
    let lacking: BTreeSet<String> = way
        .hooks
        .iter()
        .filter_map(|hook| kernel.lacks(hook))
        .chain(
            way.needs
                .iter()
                .filter(|name| !kernel.symbols.has(name))
                .map(|name| format!("{name} is not in this kernel")),
        )
        .collect();
    anyhow::ensure!(lacking.is_empty(), "{}", lacking.into_iter().collect::<Vec<_>>().join(", "));
    if way.hooks.iter().any(|hook| hook.program == WAKE_ENTER.program) {
        wakes_all_in_dax_wake_entry(kernel)?;
    }
    if way.hooks.iter().any(|hook| hook.program == TRUNCATE_DONE[0].program) {
        kernel.inode_flags.as_ref().map_err(|why| anyhow::anyhow!("{why}"))?;
    }
    let mut links = Links::default();
    let attached = attach_way(ebpf, kernel, way, loaded, &mut links);
    match attached {
        Ok(sites) => {
            call_sites.extend(sites);
            loaded.extend(way.hooks.iter().map(|hook| (hook.program, hook.function)));
            Ok(())
        }
        Err(error) => {
            links.undo(ebpf);
            Err(error)
        }
    }
}

/// The hooks of `way` not yet in `loaded`, each link kept in `links`.
fn attach_way(
    ebpf: &mut Ebpf,
    kernel: &Kernel,
    way: &Way,
    loaded: &BTreeSet<(&'static str, &'static str)>,
    links: &mut Links,
) -> Result<Vec<String>> {
    let fresh = |hook: &&Hook| !loaded.contains(&(hook.program, hook.function));
    let calls: Vec<&Hook> =
        way.hooks.iter().filter(|hook| hook.attach == Attach::CallsOf).filter(fresh).collect();
    let sites =
        if calls.is_empty() { Vec::new() } else { attach_call_sites(ebpf, kernel, &calls, way, links)? };
    for hook in way.hooks.iter().filter(fresh) {
        if !matches!(hook.attach, Attach::CallsOf | Attach::ReturnsFrom) {
            attach_hook(ebpf, &kernel.btf, hook, links)?;
        }
    }
    Ok(sites)
}

/// The links one way made, to detach if the way fails.
#[derive(Default)]
struct Links(Vec<(&'static str, Link)>);

enum Link {
    FEntry(FEntryLinkId),
    FExit(FExitLinkId),
    KProbe(KProbeLinkId),
}

impl Links {
    fn undo(self, ebpf: &mut Ebpf) {
        for (program, link) in self.0 {
            let Some(program) = ebpf.program_mut(program) else { continue };
            // A link that cannot be detached is gone with dax-probe anyway.
            let _ = match link {
                Link::FEntry(id) => <&mut FEntry>::try_from(program).map(|p| p.detach(id)),
                Link::FExit(id) => <&mut FExit>::try_from(program).map(|p| p.detach(id)),
                Link::KProbe(id) => <&mut KProbe>::try_from(program).map(|p| p.detach(id)),
            };
        }
    }
}

/// fentry on `dax_wake_entry` sees every wake-up only if no copy of its
/// body was inlined elsewhere: every call of `__wake_up` in fs/dax.c's code
/// must be inside it (stock kernels inline it into some callers).
fn wakes_all_in_dax_wake_entry(kernel: &Kernel) -> Result<()> {
    let (Some(wake_up), Some(dax_wake_entry)) =
        (kernel.symbols.get("__wake_up"), kernel.symbols.get("dax_wake_entry"))
    else {
        anyhow::bail!("__wake_up or dax_wake_entry is not in this kernel");
    };
    let mut kcore = Kcore::open().context("cannot tell whether dax_wake_entry was inlined anywhere")?;
    let sites = kernel_text::call_sites(&mut kcore, &kernel.symbols.fs_dax_code(), &[wake_up])?;
    let elsewhere: BTreeSet<&str> = sites
        .iter()
        .filter(|site| site.function != dax_wake_entry.name)
        .map(|site| site.function.as_str())
        .collect();
    anyhow::ensure!(
        elsewhere.is_empty(),
        "dax_wake_entry is inlined into {}",
        elsewhere.into_iter().collect::<Vec<_>>().join(" ")
    );
    Ok(())
}

/// The truncation program reads a mapping's `host` and `i_pages` (the
/// XArray every entry event names) at the offsets they had from 4.20 to
/// 7.2, first and right after, and the inode's `i_flags` where this
/// kernel's BTF puts them: returns that offset. A kernel that moved the
/// others is refused, not misread.
fn inode_flags_offset(btf: &btf::Btf) -> Result<u32> {
    let host = btf.member_offset("address_space", "host")?;
    let i_pages = btf.member_offset("address_space", "i_pages")?;
    anyhow::ensure!(
        (host, i_pages) == (0, 8),
        "struct address_space keeps host at byte {host} and i_pages at byte {i_pages}, not 0 and 8"
    );
    btf.member_offset("inode", "i_flags")
}

/// The call-site hooks `calls`: every direct call of each one's function in
/// fs/dax.c's code (but for the functions called themselves) gets a kprobe
/// on the call and, where `way` has a return hook for that function, one
/// on the instruction after it. Returns the places as `function+offset`.
fn attach_call_sites(
    ebpf: &mut Ebpf,
    kernel: &Kernel,
    calls: &[&Hook],
    way: &Way,
    links: &mut Links,
) -> Result<Vec<String>> {
    let callees: Vec<&Symbol> = calls.iter().filter_map(|hook| kernel.symbols.get(hook.function)).collect();
    let functions = kernel.symbols.fs_dax_code();
    anyhow::ensure!(!functions.is_empty(), "fs/dax.c's functions are not in this kernel's symbols");
    let mut kcore = Kcore::open()?;
    let sites: Vec<_> = kernel_text::call_sites(&mut kcore, &functions, &callees)?
        .into_iter()
        .filter(|site| probed_there(way, &site.function, &site.callee))
        .collect();
    // A tail call returns elsewhere, and has given up the frame its
    // arguments may point into: refused before anything is attached.
    if let Some(tail) = sites.iter().find(|site| site.tail) {
        anyhow::bail!("{}+{:#x} tail-calls {}: it cannot be probed", tail.function, tail.offset, tail.callee);
    }
    // Functions with a copy of `dax_wake_entry` inlined (a `__wake_up` call
    // of their own): the WAKE_ALL after a delete there reaches `__wake_up`
    // only for a queue with waiters, so their stores of NULL tell the
    // delete themselves (`entry_delete_call`). Elsewhere the real
    // `dax_wake_entry`, probed at its entry, tells every one.
    let inlined_wakes: BTreeSet<&str> =
        sites.iter().filter(|site| site.callee == "__wake_up").map(|site| site.function.as_str()).collect();
    let mut attached = Vec::new();
    for call in calls {
        let returns = way
            .hooks
            .iter()
            .find(|hook| hook.attach == Attach::ReturnsFrom && hook.function == call.function);
        // The functions where a call of this callee was probed.
        let mut probed_in = Vec::new();
        for site in sites.iter().filter(|site| site.callee == call.function) {
            let program = match call.program {
                STORE_CALL if inlined_wakes.contains(site.function.as_str()) => DELETE_TELLING_STORE_CALL,
                program => program,
            };
            for program in [Some(program), returns.map(|hook| hook.program)].into_iter().flatten() {
                let kprobe: &mut KProbe = ebpf
                    .program_mut(program)
                    .with_context(|| format!("no program {program} in the eBPF object"))?
                    .try_into()?;
                if kprobe.fd().is_err() {
                    kprobe.load().context("the kernel refused the call-site kprobe programs")?;
                }
            }
            let place = format!("{}+{:#x}", site.function, site.offset);
            // The return first: a call probed without its return would leave
            // a store remembered that no return takes.
            if let Some(returns) = returns {
                match kprobe_at(ebpf, returns.program, &site.function, site.offset + 5, links) {
                    Ok(()) => {}
                    Err(error) if not_an_instruction(&error) => continue,
                    Err(error) => {
                        return Err(error).with_context(|| format!("cannot probe the return at {place}"))
                    }
                }
            }
            match kprobe_at(ebpf, program, &site.function, site.offset, links) {
                Ok(()) => {
                    attached.push(format!("{place}({})", call.function));
                    probed_in.push(site.function.as_str());
                }
                // A probed return without its call finds nothing remembered.
                Err(error) if not_an_instruction(&error) => continue,
                Err(error) => return Err(error).with_context(|| format!("cannot probe the call at {place}")),
            }
        }
        for (caller, callee) in way.probes_calls.iter().filter(|(_, callee)| *callee == call.function) {
            anyhow::ensure!(
                probed_in.contains(caller),
                "{caller} has no call of {callee} that could be probed (inlined, or a kprobe of another session already on it?)"
            );
        }
        // A real `dax_lock_entry` may have no caller left in view, nor
        // `dax_wake_entry` an inlined copy, but the stores must be somewhere.
        anyhow::ensure!(
            !probed_in.is_empty() || matches!(call.function, "dax_lock_entry" | "__wake_up"),
            "no call of {} in fs/dax.c's code could be probed",
            call.function
        );
    }
    Ok(attached)
}

/// Whether a call of `callee` inside `function` gets kprobes: not where
/// the way keeps the callee's calls to other callers, nor where another
/// probe tells its events already ([`told_at_entry`], [`told_at_calls`]).
fn probed_there(way: &Way, function: &str, callee: &str) -> bool {
    let callers: Vec<&str> =
        way.calls_only_in.iter().filter(|(_, c)| *c == callee).map(|(caller, _)| *caller).collect();
    let in_caller = |caller: &&str| {
        function.strip_prefix(caller).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    };
    (callers.is_empty() || callers.iter().any(in_caller))
        && !told_at_entry(way, function, callee)
        && !told_at_calls(way, function, callee)
}

/// Whether a call of `callee` inside `function` is told by the probes on
/// the calls of `function` itself: the `xas_store` inside a real
/// `dax_lock_entry`, whose callers' probes give its lock. Probed twice, the
/// event would come twice; a call whose events those probes do not give
/// (`dax_iomap_direct_access` in `dax_fault_iter`) is probed still.
fn told_at_calls(way: &Way, function: &str, callee: &str) -> bool {
    let gives = |name: &str| -> BTreeSet<Kind> {
        way.hooks
            .iter()
            .filter(|hook| {
                matches!(hook.attach, Attach::CallsOf | Attach::ReturnsFrom) && hook.function == name
            })
            .flat_map(|hook| hook.gives.iter().copied())
            .collect()
    };
    !gives(function).is_disjoint(&gives(callee))
}

/// Whether a call of `callee` inside `function` is left to an entry probe
/// of `function` in `way` that gives the same events (the `__wake_up` of
/// the real `dax_wake_entry`, told by its entry kprobe): probed twice, the
/// event would come twice. A call whose events the entry probe does not
/// give (`dax_iomap_direct_access` in `dax_fault_iter`) is probed still.
fn told_at_entry(way: &Way, function: &str, callee: &str) -> bool {
    let gives = |attach: &[Attach], name: &str| -> BTreeSet<Kind> {
        way.hooks
            .iter()
            .filter(|hook| attach.contains(&hook.attach) && hook.function == name)
            .flat_map(|hook| hook.gives.iter().copied())
            .collect()
    };
    let at_entry = gives(&[Attach::KProbe], function);
    !at_entry.is_disjoint(&gives(&[Attach::CallsOf, Attach::ReturnsFrom], callee))
}

fn attach_hook(ebpf: &mut Ebpf, btf: &Btf, hook: &Hook, links: &mut Links) -> Result<()> {
    let name = hook.program;
    let program = ebpf.program_mut(name).with_context(|| format!("no program {name} in the eBPF object"))?;
    let failed = || format!("the kernel refused {:?} on {}", hook.attach, hook.function);
    match hook.attach {
        Attach::FExit => {
            let program: &mut FExit = program.try_into()?;
            if program.fd().is_err() {
                program.load(hook.function, btf).with_context(failed)?;
            }
            links.0.push((hook.program, Link::FExit(program.attach().with_context(failed)?)));
        }
        Attach::FEntry => {
            let program: &mut FEntry = program.try_into()?;
            if program.fd().is_err() {
                program.load(hook.function, btf).with_context(failed)?;
            }
            links.0.push((hook.program, Link::FEntry(program.attach().with_context(failed)?)));
        }
        Attach::KProbe => {
            let program: &mut KProbe = program.try_into()?;
            // One program may probe several functions: it loads once.
            if program.fd().is_err() {
                program.load().with_context(failed)?;
            }
            links
                .0
                .push((hook.program, Link::KProbe(program.attach(hook.function, 0).with_context(failed)?)));
        }
        Attach::CallsOf | Attach::ReturnsFrom => unreachable!("call sites attach as a whole"),
    }
    Ok(())
}

fn kprobe_at(
    ebpf: &mut Ebpf,
    program: &'static str,
    function: &str,
    offset: u64,
    links: &mut Links,
) -> Result<(), ProgramError> {
    let kprobe: &mut KProbe = ebpf.program_mut(program).expect("loaded above").try_into()?;
    links.0.push((program, Link::KProbe(kprobe.attach(function, offset)?)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dax_probe_common::TRACEPOINT_COUNT;

    /// The events each way of a group gives.
    fn gives(way: &Way) -> BTreeSet<Kind> {
        way.hooks.iter().flat_map(|hook| hook.gives.iter().copied()).collect()
    }

    #[test]
    fn every_way_of_a_group_gives_the_same_events_and_every_hook_event_has_a_way() {
        for group in GROUPS {
            let first = gives(&group.ways[0]);
            for way in group.ways {
                assert_eq!(gives(way), first, "{:?}: the {} way", group.group, way.name);
            }
        }
        let kernel_hooks: BTreeSet<Kind> = GROUPS
            .iter()
            .filter(|group| group.group != HookGroup::ReferenceModule)
            .flat_map(|group| gives(&group.ways[0]))
            .collect();
        for kind in &Kind::ALL[TRACEPOINT_COUNT..] {
            assert!(kernel_hooks.contains(kind), "nothing gives {kind:?}");
        }
        let groups: Vec<_> = GROUPS.iter().map(|group| group.group).collect();
        assert_eq!(groups, HookGroup::ALL, "one table row per group, in order");
    }

    /// A program named in the table but missing from the eBPF object makes
    /// its way fail at run time, on the kernels that need it.
    #[test]
    fn every_program_of_the_table_is_in_the_ebpf_object() {
        let object = crate::source::live::EBPF_OBJECT;
        for hook in GROUPS.iter().flat_map(|group| group.ways).flat_map(|way| way.hooks) {
            let symbol = [hook.program.as_bytes(), b"\0"].concat();
            assert!(
                object.windows(symbol.len()).any(|w| w == symbol),
                "no program {} in the eBPF object",
                hook.program
            );
        }
    }

    /// The entry kprobe of `dax_wake_entry` tells its own `__wake_up`; the
    /// probes of `dax_fault_iter`'s calls tell no direct-access failure, so
    /// its call of `dax_iomap_direct_access` is probed (on Debian's 6.1 and
    /// 6.12, leaving it out once hid every unaligned-pfn fallback); the
    /// `xas_store` inside a real `dax_lock_entry` is told at its callers;
    /// the PMD fault's grab is probed, the PTE fault's not.
    #[test]
    fn call_sites_probed_are_those_no_other_probe_tells() {
        let inlined = |group: HookGroup| {
            let group = GROUPS.iter().find(|g| g.group == group).expect("a group");
            group.ways.iter().find(|way| way.name == INLINED).expect("an inlined way")
        };
        let fallback = inlined(HookGroup::FallbackProbes);
        assert!(probed_there(fallback, "dax_fault_iter", "dax_iomap_direct_access"));
        assert!(probed_there(fallback, "dax_iomap_pmd_fault", "grab_mapping_entry"));
        assert!(probed_there(fallback, "dax_iomap_pmd_fault.cold", "grab_mapping_entry"));
        assert!(!probed_there(fallback, "dax_iomap_pte_fault", "grab_mapping_entry"));
        assert!(!probed_there(fallback, "dax_iomap_pmd_fault_x", "grab_mapping_entry"));
        let entry_state = inlined(HookGroup::EntryState);
        assert!(!probed_there(entry_state, "dax_lock_entry", "xas_store"));
        assert!(probed_there(entry_state, "grab_mapping_entry", "xas_store"));
    }

    #[test]
    fn call_sites_left_to_an_entry_probe_are_those_it_tells() {
        let inlined = |group: HookGroup| {
            let group = GROUPS.iter().find(|g| g.group == group).expect("a group");
            group.ways.iter().find(|way| way.name == INLINED).expect("an inlined way")
        };
        assert!(told_at_entry(inlined(HookGroup::WaitWake), "dax_wake_entry", "__wake_up"));
        assert!(!told_at_entry(inlined(HookGroup::WaitWake), "dax_layout_busy_page_range", "__wake_up"));
        let fallback = inlined(HookGroup::FallbackProbes);
        assert!(!told_at_entry(fallback, "dax_fault_iter", "dax_iomap_direct_access"));
        assert!(!told_at_entry(fallback, "dax_iomap_pmd_fault", "grab_mapping_entry"));
    }

    #[test]
    fn plans_choose_ways() {
        let entry_state = &GROUPS[0].ways;
        assert!(Plan::Auto.allows(&entry_state[0]) && Plan::Auto.allows(&entry_state[1]));
        assert!(Plan::Native.allows(&entry_state[0]) && !Plan::Native.allows(&entry_state[1]));
        assert!(!Plan::Inlined.allows(&entry_state[0]) && Plan::Inlined.allows(&entry_state[1]));
    }
}
