// SPDX-License-Identifier: GPL-2.0

//! Injected bugs, one at a time, chosen at load time (`bug=N`). Each is a
//! real class of DAX entry-locking bug; `dax-probe check` must name the
//! invariant each one breaks.

use kernel::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bug {
    None,
    /// 1: unlock without waking the next waiter.
    SkipWakeOnUnlock,
    /// 2: a PMD entry's waiters hash on the faulting index instead of the
    /// 2 MiB start (the class of 23c84eb78375).
    PmdRawIndexHash,
    /// 3: a PMD entry is created over existing PTE entries.
    PmdOverPtes,
    /// 4: an entry is released twice.
    DoubleRelease,
    /// 5: the direct-access fallback returns with the entry still locked.
    LeakOnFallback,
    /// 6: a delete wakes one waiter where all must be woken (237388320def).
    WakeOneOnDelete,
}

impl Bug {
    pub(crate) const ALL: [Bug; 7] = [
        Bug::None,
        Bug::SkipWakeOnUnlock,
        Bug::PmdRawIndexHash,
        Bug::PmdOverPtes,
        Bug::DoubleRelease,
        Bug::LeakOnFallback,
        Bug::WakeOneOnDelete,
    ];

    pub(crate) fn from_param(value: u32) -> Result<Bug> {
        Bug::ALL.get(value as usize).copied().ok_or_else(|| {
            pr_err!("daxref: bug={value} is not a known bug (0 none, 1..6, see bugs.rs)\n");
            EINVAL
        })
    }

    pub(crate) fn is(self, bug: Bug) -> bool {
        self == bug
    }

    /// With a bug in, a waiter sleeps at most a quarter of a second, so that
    /// a lost wake-up ends (and the checker, not a hung task, reports it).
    pub(crate) fn wait_timeout(self) -> Option<isize> {
        (self != Bug::None).then(|| kernel::time::msecs_to_jiffies(250) as isize)
    }

    /// ... and after this many such timeouts in a row the fault gives up
    /// (an entry left locked for good would otherwise stall it forever).
    pub(crate) const WAIT_TIMEOUTS: u32 = 8;
}
