//! dax-probe: see and verify how Linux maps DAX files with 2 MiB pages.
//!
//! Only the command line's frame exists so far: `record`, `check` and
//! `report` arrive with the probe (issue #3). Until then every subcommand
//! says so and exits non-zero rather than pretending to work.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record DAX fault and entry-lock events to a trace file (issue #3).
    Record,
    /// Check the DAX entry-locking invariants of a trace (issue #3).
    Check,
    /// Report PMD vs PTE faults and fallback reasons of a trace (issue #3).
    Report,
}

fn main() -> anyhow::Result<()> {
    let name = match Cli::parse().command {
        Command::Record => "record",
        Command::Check => "check",
        Command::Report => "report",
    };
    anyhow::bail!("`dax-probe {name}` is not implemented yet: it arrives with the probe (issue #3)")
}
