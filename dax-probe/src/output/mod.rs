//! Everything dax-probe shows, rendered in one place: the report and the
//! `EVENT RESULT COUNT` table ([`report`]), check's verdict ([`check`]),
//! run's summary with the probe's own cost ([`run`]), plots ([`plot`]),
//! Prometheus metrics ([`metrics`]) and their HTTP server ([`serve`]), and
//! the counting mode's summary and `top` screen ([`counting`]). Outputs
//! read a finished (or, for metrics, a running) analysis; none of them
//! feeds back into it.
//!
//! Without the `cli` feature (the command's, on by default) only what a
//! trace needs is built: the report and check's verdict.

pub mod check;
#[cfg(feature = "cli")]
pub mod counting;
#[cfg(feature = "cli")]
pub mod metrics;
#[cfg(feature = "cli")]
pub mod plot;
pub mod report;
#[cfg(feature = "cli")]
pub mod run;
#[cfg(feature = "cli")]
pub mod serve;
