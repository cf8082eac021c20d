// SPDX-License-Identifier: GPL-2.0

//! The wait table: a fixed set of wait queues shared by all entries, hashed
//! on (mapping, entry start). Waiters of different entries may share a
//! queue, so a wake-up carries its key and only wakes waiters of that key
//! (fs/dax.c's `wake_exceptional_entry_func`); exclusive waiters are woken
//! one at a time (`WakeMode::Next`) or all at once (`WakeMode::All`).

use core::{ffi::c_void, pin::Pin};

use kernel::{bindings, container_of, prelude::*, sync::LockClassKey, types::Opaque};

const WAIT_TABLE_BITS: u32 = 8;
const WAIT_TABLE_ENTRIES: usize = 1 << WAIT_TABLE_BITS;

/// What a waiter waits for: one entry of one mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct WaitKey {
    pub(crate) mapping: usize,
    pub(crate) entry_start: usize,
}

#[derive(Clone, Copy)]
pub(crate) enum WakeMode {
    /// Every waiter: the entry is gone.
    All = 0,
    /// The first waiter: the entry was unlocked, one can take it.
    Next = 1,
}

pub(crate) struct WaitTable {
    queues: KVec<Opaque<bindings::wait_queue_head>>,
}

// SAFETY: wait queue heads are designed to be shared between threads; all
// access goes through the kernel's wait queue functions, which lock them.
unsafe impl Send for WaitTable {}
// SAFETY: as above.
unsafe impl Sync for WaitTable {}

/// A waiter on the stack of the waiting thread, found again from its
/// `wait` field by the wake function.
#[repr(C)]
struct Waiter {
    wait: bindings::wait_queue_entry,
    key: WaitKey,
}

impl WaitTable {
    pub(crate) fn new(class: Pin<&'static LockClassKey>) -> Result<WaitTable> {
        let mut queues = KVec::with_capacity(WAIT_TABLE_ENTRIES, GFP_KERNEL)?;
        for _ in 0..WAIT_TABLE_ENTRIES {
            queues.push(Opaque::uninit(), GFP_KERNEL)?;
        }
        for queue in &queues {
            // SAFETY: the vector has its final size, so the heads do not move
            // again; each is initialised once before any use.
            unsafe {
                bindings::__init_waitqueue_head(
                    queue.get(),
                    c"daxref_wait".as_ptr().cast(),
                    class.as_ptr(),
                )
            };
        }
        Ok(WaitTable { queues })
    }

    /// fs/dax.c's `hash_long(xa ^ index)`, folded to the table size.
    fn queue(&self, key: WaitKey) -> *mut bindings::wait_queue_head {
        let hash = ((key.mapping ^ key.entry_start) as u64).wrapping_mul(0x61c8_8646_80b5_83eb)
            >> (64 - WAIT_TABLE_BITS);
        self.queues[hash as usize].get()
    }

    /// Sleeps until woken for `key`. The caller saw the entry locked under
    /// the entry array's lock and passes `unlock`, which drops that lock: it
    /// runs only once we are queued, so a wake-up issued after the caller
    /// looked cannot be missed. With `timeout` (only when a bug is injected)
    /// a lost wake-up ends after that many jiffies instead of hanging the task.
    /// Returns false if the sleep ended by the timeout.
    pub(crate) fn wait(&self, key: WaitKey, unlock: impl FnOnce(), timeout: Option<isize>) -> bool {
        let queue = self.queue(key);
        let mut waiter = Waiter {
            // SAFETY: all-zero is a valid starting point; init_wait_entry fills it in.
            wait: unsafe { core::mem::zeroed() },
            key,
        };
        // SAFETY: `waiter` lives on this stack until finish_wait below
        // removes it from the queue; the wake function only reads it.
        unsafe {
            bindings::init_wait_entry(&mut waiter.wait, 0);
            waiter.wait.func = Some(wake_entry);
            bindings::prepare_to_wait_exclusive(
                queue,
                &mut waiter.wait,
                bindings::TASK_UNINTERRUPTIBLE as i32,
            );
        }
        unlock();
        let woken = match timeout {
            None => {
                // SAFETY: we are queued and in TASK_UNINTERRUPTIBLE; schedule
                // returns once a wake-up for our key made us runnable (or at
                // once if one did already).
                unsafe { bindings::schedule() };
                true
            }
            // SAFETY: as above, with an upper bound on the sleep.
            Some(jiffies) => (unsafe { bindings::schedule_timeout(jiffies) }) > 0,
        };
        // SAFETY: `queue` and `waiter.wait` are the pair prepare_to_wait used.
        unsafe { bindings::finish_wait(queue, &mut waiter.wait) };
        woken
    }

    /// Wakes the waiters of `key`'s queue that wait for `key`.
    pub(crate) fn wake(&self, key: WaitKey, mode: WakeMode) {
        let mut key = key;
        let nr = match mode {
            WakeMode::All => 0,
            WakeMode::Next => 1,
        };
        // SAFETY: the queue is initialised; the key outlives the call, and
        // our wake function reads it as a WaitKey.
        unsafe {
            bindings::__wake_up(
                self.queue(key),
                bindings::TASK_NORMAL,
                nr,
                (&raw mut key).cast::<c_void>(),
            )
        };
    }
}

/// Wakes a waiter only for its own key (fs/dax.c: `wake_exceptional_entry_func`).
unsafe extern "C" fn wake_entry(
    wait: *mut bindings::wait_queue_entry,
    mode: u32,
    sync: i32,
    key: *mut c_void,
) -> i32 {
    // SAFETY: every entry queued with this function is the `wait` field of
    // a `Waiter` (see `WaitTable::wait`), and `key` is the `WaitKey` that
    // `WaitTable::wake` passed.
    let (waiter, key) = unsafe { (&*container_of!(wait, Waiter, wait), &*key.cast::<WaitKey>()) };
    if waiter.key != *key {
        return 0;
    }
    // SAFETY: the standard wake function for an entry queued by prepare_to_wait.
    unsafe { bindings::autoremove_wake_function(wait, mode, sync, core::ptr::null_mut()) }
}
