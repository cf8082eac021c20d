//! Everything dax-probe shows, rendered in one place: the report and the
//! `EVENT RESULT COUNT` table ([`report`]), check's and run's verdicts and
//! summaries ([`check`]), plots ([`plot`]), Prometheus metrics ([`metrics`])
//! and their HTTP server ([`serve`]), and the counting mode's summary and
//! `top` screen ([`counting`]). Outputs read a finished (or, for
//! metrics, a running) analysis; none of them feeds back into it.

pub mod check;
pub mod counting;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod serve;
