//! The dax-probe command line.
//!
//! Exit codes: 0 success (check: pass), 1 check: violations found, 2 error,
//! 3 check: inconclusive (events were lost), or the recorded command's own
//! non-zero code for `record`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};
use dax_probe::{
    analysis::Analysis,
    coverage,
    invariants::Invariant,
    record,
    record::{Session, Sink},
    report, trace_file,
};
use dax_probe_common::Event;

const EXIT_VIOLATIONS: i32 = 1;
const EXIT_ERROR: i32 = 2;
const EXIT_INCONCLUSIVE: i32 = 3;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record every DAX fault, entry-lock and fallback event to a trace file,
    /// optionally while a command runs.
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
    /// Check the DAX entry-locking and fault invariants, of a trace file or
    /// live (no file: until the command exits or Ctrl-C). The last line is
    /// the verdict: pass, fail (exit 1) or inconclusive (exit 3).
    ///
    /// Example: dax-probe check fio.daxtrace; dax-probe check -- fio job.fio
    Check {
        trace: Option<PathBuf>,
        /// A command to run while checking live.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Report PMD and PTE faults, fallbacks per reason, per file and per process.
    ///
    /// Example: dax-probe report --json fio.daxtrace
    Report {
        trace: PathBuf,
        /// Machine-readable output.
        #[arg(long, conflicts_with = "counts")]
        json: bool,
        /// One "EVENT RESULT COUNT" line per fs_dax tracepoint and fault
        /// result (the lab compares it with tracefs).
        #[arg(long)]
        counts: bool,
    },
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
            std::process::exit(EXIT_ERROR);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Record { output, command } => record(&output, &command),
        Command::Check { trace: Some(trace), command } => {
            anyhow::ensure!(
                command.is_empty(),
                "check takes a trace file or a command to run live, not both"
            );
            let trace = trace_file::read(&trace)?;
            let mut analysis = Analysis::new(&trace.header.hooks);
            for event in &trace.events {
                analysis.push(event);
            }
            Ok(verdict(analysis, &trace.header.hooks, trace.header.lost))
        }
        Command::Check { trace: None, command } => {
            let mut live = LiveCheck(Analysis::new(&[]));
            let session = live_session(&command, &mut live)?;
            let code = verdict(live.0, &session.header.hooks, session.header.lost);
            Ok(if code == 0 { command_code(&session) } else { code })
        }
        Command::Report { trace, json, counts } => {
            let trace = trace_file::read(&trace)?;
            if counts {
                report::counts(&trace).iter().for_each(|line| println!("{line}"));
                return Ok(0);
            }
            let mut analysis = Analysis::new(&trace.header.hooks);
            trace.events.iter().for_each(|event| analysis.push(event));
            analysis.finish();
            if json {
                println!("{:#}", report::json(&trace.header, &analysis.stats));
            } else {
                report::text(&trace.header, &analysis.stats).iter().for_each(|line| println!("{line}"));
            }
            Ok(0)
        }
    }
}

fn record(output: &Path, command: &[String]) -> Result<i32> {
    let mut writer = trace_file::Writer::create(output)?;
    let session = live_session(command, &mut writer)?;
    let lost = session.header.lost;
    let events = writer.finish(session.header.clone())?;
    eprintln!("dax-probe: {events} events, {lost} lost, written to {}", output.display());
    if lost > 0 {
        eprintln!("dax-probe: warning: {lost} events were lost: checks of this trace are inconclusive");
    }
    Ok(command_code(&session))
}

fn live_session(command: &[String], sink: &mut impl Sink) -> Result<Session> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(record::run(command, sink))
}

/// The command's failure, passed on (the trace or verdict is still complete).
fn command_code(session: &Session) -> i32 {
    match session.status {
        Some(status) if !status.success() => {
            eprintln!("dax-probe: the command failed ({status})");
            status.code().unwrap_or(1)
        }
        _ => 0,
    }
}

struct LiveCheck(Analysis);

impl Sink for LiveCheck {
    fn start(&mut self, hooks: &[String]) {
        self.0 = Analysis::new(hooks);
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.0.push(event);
        Ok(())
    }
}

/// Prints coverage, violations and, last, the verdict; returns the exit code.
fn verdict(mut analysis: Analysis, hooks: &[String], lost: u64) -> i32 {
    analysis.finish();
    for line in coverage::lines(hooks) {
        println!("coverage: {line}");
    }
    for violation in &analysis.violations {
        println!("{violation}");
    }
    let kept = analysis.violations.len() as u64;
    if analysis.violation_count > kept {
        println!("({} more violations not shown)", analysis.violation_count - kept);
    }
    let mut counts = format!(
        "{} violations, {lost} lost events, {} events",
        analysis.violation_count, analysis.stats.events
    );
    // A pass over part of the invariants says so where nobody can miss it.
    let checked = analysis.checked().len();
    if checked < Invariant::ALL.len() {
        counts.push_str(&format!("; {checked} of {} invariants checked", Invariant::ALL.len()));
    }
    let (word, code) = if lost > 0 {
        ("inconclusive", EXIT_INCONCLUSIVE)
    } else if analysis.violation_count > 0 {
        ("fail", EXIT_VIOLATIONS)
    } else {
        ("pass", 0)
    };
    println!("verdict: {word} ({counts})");
    code
}
