//! dax-probe: see and verify how Linux maps DAX files with 2 MiB pages.
//!
//! One pipeline, in layers; a module imports only from layers above it
//! (`tests/architecture.rs` fails the build otherwise):
//!
//! ```text
//!  vocabulary   kernel (the kernel's constants), event (typed events),
//!               stream (the Sink contract every source and sink shares)
//!       |
//!  sources      source/ (live: ring buffer, hooks, tracefs formats;
//!                        counting: counters in the kernel, no stream)
//!               trace/  (dax-probe trace files and tracefs/trace-cmd text,
//!                        read as streams; the trace writer)
//!               workload (the command `run` measures, and fio's report)
//!       |
//!  analysis     analysis/ (fault and entry trackers, invariants, fallback
//!               reasons, timeline, verdict, coverage)
//!       |
//!  outputs      output/ (report, check and run summaries, the counting
//!               mode's summary and top screen, plot, metrics, serve)
//! ```
//!
//! One event's way from the kernel to a verdict: an eBPF program reserves a
//! `dax_probe_common::Record` in the ring buffer; [`source::live`] drains
//! it, decodes it into an [`event::Event`] and pushes it to its
//! [`stream::Sink`]; the [`analysis::Analysis`] sink hands it to the entry
//! and fault trackers, which report broken rules into their findings; at
//! the end of the stream [`analysis::verdict`] judges the findings and the
//! lost events, and [`output::check`] prints the verdict. A trace file or
//! imported text takes the same way from [`trace::Reader`] on.
//!
//! The `cli` feature (on by default) is the command's: the live sources,
//! the counting mode, `run`'s summary, plots, metrics and their server,
//! with aya, tokio, plotters and prometheus. Without it the library reads,
//! checks and reports traces, and no more: the fuzz targets build it so,
//! instrumented, in a fraction of the time.

pub mod analysis;
pub mod event;
pub mod kernel;
pub mod output;
#[cfg(feature = "cli")]
pub mod source;
pub mod stream;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod workload;
