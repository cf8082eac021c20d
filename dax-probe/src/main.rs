//! dax-probe: see and verify how Linux maps DAX files with 2 MiB pages.
//!
//! So far: `record` (the fs_dax tracepoints into a trace file) and `report
//! --counts`. The invariant checker, the fallback reasons and the entry-lock
//! hooks arrive with the rest of issue #3.

mod record;
mod report;
mod trace_file;
mod tracefs;

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record every fs_dax event to a trace file, optionally while a command runs.
    ///
    /// Example: dax-probe record -o fio.daxtrace -- fio job.fio
    Record {
        /// The trace file to write (it appears only once complete).
        #[arg(short, long)]
        output: PathBuf,
        /// A command to run while recording; its exit ends the recording.
        /// Without one, recording ends at Ctrl-C.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Report what a trace holds.
    ///
    /// Example: dax-probe report --counts fio.daxtrace
    Report {
        trace: PathBuf,
        /// One "EVENT RESULT COUNT" line per fs_dax event and fault result.
        #[arg(long)]
        counts: bool,
    },
    /// Check the DAX entry-locking invariants of a trace (arrives with issue #3).
    Check,
}

fn main() {
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // exists: a reader that goes away (`dax-probe report | head`) ends us
    // quietly, as it ends any Unix tool, instead of a panic on stdout.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match run(Cli::parse()) {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("dax-probe: error: {error:#}");
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Record { output, command } => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let recording = runtime.block_on(record::record(&output, &command))?;
            eprintln!(
                "dax-probe: {} events, {} lost, written to {}",
                recording.events,
                recording.lost,
                output.display()
            );
            if recording.lost > 0 {
                eprintln!(
                    "dax-probe: warning: {} events were lost: checks of this trace are inconclusive",
                    recording.lost
                );
            }
            match recording.status {
                Some(status) if !status.success() => {
                    eprintln!("dax-probe: the command failed ({status}); the trace is complete");
                    Ok(status.code().unwrap_or(1))
                }
                _ => Ok(0),
            }
        }
        Command::Report { trace, counts } => {
            let trace = trace_file::read(&trace)?;
            if !counts {
                println!(
                    "kernel {}, {} events, {} lost",
                    trace.header.kernel, trace.header.events, trace.header.lost
                );
            }
            for line in report::counts(&trace) {
                println!("{line}");
            }
            Ok(0)
        }
        Command::Check => {
            bail!("`dax-probe check` is not implemented yet: it arrives with the rest of issue #3")
        }
    }
}
