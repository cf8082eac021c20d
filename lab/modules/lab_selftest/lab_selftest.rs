// SPDX-License-Identifier: GPL-2.0

//! The lab's selftest module.
//!
//! Loading it proves the guest kernel runs out-of-tree Rust modules; loading
//! it with `warn=1` raises a real kernel WARN, which the lab must catch and
//! turn into a failed run.

use kernel::prelude::*;

module! {
    type: LabSelftest,
    name: "lab_selftest",
    authors: ["dax-probe developers"],
    description: "dax-probe lab selftest: Rust module support, and a WARN on request",
    license: "GPL",
    params: {
        warn: u32 {
            default: 0,
            description: "Raise a kernel WARN at load time when non-zero",
        },
    },
}

struct LabSelftest;

impl kernel::Module for LabSelftest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        kernel::warn_on!(*module_parameters::warn.value() != 0);
        Ok(LabSelftest)
    }
}
