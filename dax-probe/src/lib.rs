//! dax-probe: see and verify how Linux maps DAX files with 2 MiB pages.
//!
//! Sources: the live kernel ([`record`]: fs_dax tracepoints and the hooks of
//! [`hooks`]) and trace files ([`trace_file`]). One pass ([`analysis`])
//! classifies every fallback ([`fallback`]) and checks the entry-locking
//! invariants ([`invariants`]); sinks are trace files, the verdict and the
//! report ([`report`]).

pub mod analysis;
pub mod coverage;
pub mod events;
pub mod fallback;
pub mod hooks;
pub mod invariants;
pub mod record;
pub mod report;
pub mod trace_file;
pub mod tracefs;
