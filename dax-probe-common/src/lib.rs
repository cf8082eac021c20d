//! Event types shared by the dax-probe eBPF programs and user space.
//!
//! Empty until the probe lands (issue #3): the lab (issue #2) only reserves
//! the crate so that the workspace has the usual aya layout.
#![no_std]
