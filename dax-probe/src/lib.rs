//! dax-probe: see and verify how Linux maps DAX files with 2 MiB pages.
//!
//! Sources: the live kernel ([`record`]: fs_dax tracepoints and the hooks of
//! [`hooks`]), trace files ([`trace_file`]) and the text of tracefs and
//! trace-cmd ([`trace_text`]). One pass ([`analysis`]) classifies every
//! fallback ([`fallback`]), checks the entry-locking invariants
//! ([`invariants`], [`verdict`]) and keeps faults over time ([`timeline`]).
//! Sinks: trace files, the verdict, the report ([`report`]), plots
//! ([`plot`]) and Prometheus metrics ([`metrics`], [`serve`]). [`workload`]
//! runs the command `dax-probe run` measures (fio with its JSON report).

pub mod analysis;
pub mod coverage;
pub mod events;
pub mod fallback;
pub mod hooks;
pub mod invariants;
pub mod metrics;
pub mod plot;
pub mod record;
pub mod report;
pub mod serve;
pub mod timeline;
pub mod trace_file;
pub mod trace_text;
pub mod tracefs;
pub mod verdict;
pub mod workload;
