//! The dax-probe command line.
//!
//! Exit codes: 0 success (check and run: pass), 1 violations found,
//! 2 error, 3 inconclusive (events were lost), or the command's own
//! non-zero code when it failed and the invariants held.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use dax_probe::{
    analysis::Analysis,
    coverage, plot, record,
    record::{Session, Sink},
    report, serve,
    trace_file::{self, Header, Trace},
    verdict::{Verdict, EXIT_ERROR},
    workload::{FioSummary, Workload},
};
use dax_probe_common::Event;
use serde_json::json;

#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Traces: dax-probe's own (`record`), or the text of tracefs \
(/sys/kernel/tracing/trace) or `trace-cmd report` with fs_dax events.\n\
Recording needs root (or CAP_BPF and CAP_PERFMON)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command (fio gets special treatment) with the probe attached,
    /// and print one summary: fio's bandwidth and IOPS, PMD and PTE faults,
    /// fallbacks per reason, the invariant verdict and lost events.
    #[command(after_help = "Examples:\n  \
        dax-probe run -- fio job.fio\n  \
        dax-probe run --plot run.svg --json -- fio --name=rw --filename=/mnt/dax/f --ioengine=mmap --rw=randrw --size=256m\n  \
        dax-probe run -o app.daxtrace -- ./my-app\n\n\
        fio is also asked for its JSON report (--output-format=normal,json); its normal output is shown as usual.\n\
        Exit code: 0 the invariants held, 1 violations, 3 events lost (inconclusive), else the command's own failure.")]
    Run {
        /// Also draw the run's plot into FILE (.png or .svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Print the summary as JSON on stdout (the command's own output goes to stderr).
        #[arg(long)]
        json: bool,
        /// Also keep the trace in FILE.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The command to run.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Record every DAX fault, entry-lock and fallback event to a trace file,
    /// optionally while a command runs.
    #[command(after_help = "Examples:\n  \
        dax-probe record -o fio.daxtrace -- fio job.fio\n  \
        dax-probe record -o all.daxtrace        (until Ctrl-C)")]
    Record {
        /// The trace file to write (it appears only once complete).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// A command to run while recording; its exit ends the recording.
        /// Without one, recording ends at Ctrl-C.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Check the DAX entry-locking and fault invariants, of a trace or live
    /// (no trace: until the command exits or Ctrl-C). The last line is the
    /// verdict: pass, fail (exit 1) or inconclusive (exit 3).
    #[command(after_help = "Examples:\n  \
        dax-probe check fio.daxtrace\n  \
        dax-probe check /sys/kernel/tracing/trace\n  \
        dax-probe check -- fio job.fio\n  \
        dax-probe check --json fio.daxtrace")]
    Check {
        trace: Option<PathBuf>,
        /// Print coverage, violations and verdict as JSON.
        #[arg(long)]
        json: bool,
        /// A command to run while checking live.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Report PMD and PTE faults, fallbacks per reason, per file and per process.
    #[command(after_help = "Examples:\n  \
        dax-probe report fio.daxtrace\n  \
        dax-probe report --json trace-cmd-report.txt\n  \
        dax-probe report --counts fio.daxtrace")]
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
    /// Plot a trace: PMD fallbacks per second stacked by reason with the
    /// PMD share, and the latency of PMD vs PTE faults.
    #[command(after_help = "Examples:\n  \
        dax-probe plot fio.daxtrace -o fallbacks.png\n  \
        dax-probe plot trace-cmd-report.txt -o fallbacks.svg")]
    Plot {
        trace: PathBuf,
        /// The picture to draw: .png or .svg.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Also print the trace's report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve Prometheus metrics at http://ADDR/metrics: live (until the
    /// command exits or Ctrl-C), or of a recorded trace (--replay).
    #[command(after_help = "Examples:\n  \
        dax-probe serve\n  \
        dax-probe serve --listen 0.0.0.0:9478 -- fio job.fio\n  \
        dax-probe serve --replay fio.daxtrace --speed 0.5\n\n\
        A replay starts at the first scrape, plays the trace at its recorded pace (see --speed),\n\
        then keeps serving its totals.\n\
        dashboards/ holds a Grafana dashboard and a Prometheus scrape config for these metrics.")]
    Serve {
        /// The address to listen on; loopback only unless you say otherwise.
        #[arg(long, default_value = serve::DEFAULT_LISTEN, value_name = "IP:PORT")]
        listen: String,
        /// Serve the metrics of this trace instead of the live kernel.
        #[arg(long, value_name = "TRACE", conflicts_with = "command")]
        replay: Option<PathBuf>,
        /// Replay at this multiple of the recorded pace (0: all at once).
        #[arg(long, default_value_t = 1.0, requires = "replay", value_name = "FACTOR")]
        speed: f64,
        /// A command to run while serving live; its exit ends dax-probe.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        dax-probe completions bash > /etc/bash_completion.d/dax-probe\n  \
        dax-probe completions zsh > ~/.zfunc/_dax-probe")]
    Completions { shell: clap_complete::Shell },
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
        Command::Run { plot, json, output, command } => run_workload(&command, plot.as_deref(), json, output),
        Command::Record { output, command } => record(&output, &command),
        Command::Check { trace: Some(trace), json, command } => {
            anyhow::ensure!(
                command.is_empty(),
                "check takes a trace file or a command to run live, not both"
            );
            let trace = trace_file::read(&trace)?;
            let analysis = analyse(&trace);
            Ok(print_check(&analysis, &coverage::of_trace(&trace.header), trace.header.lost, json))
        }
        Command::Check { trace: None, json, command } => {
            let mut live = LiveCheck(Analysis::new(&[]));
            let session = live_session(&command, json, &mut live)?;
            let mut analysis = live.0;
            analysis.finish();
            let code =
                print_check(&analysis, &coverage::of_trace(&session.header), session.header.lost, json);
            Ok(checked_command_code(code, &session))
        }
        Command::Report { trace, json, counts } => {
            let trace = trace_file::read(&trace)?;
            if counts {
                report::counts(&trace).iter().for_each(|line| println!("{line}"));
                return Ok(0);
            }
            let analysis = analyse(&trace);
            if json {
                println!("{:#}", report::json(&trace.header, &analysis.stats));
            } else {
                report::text(&trace.header, &analysis.stats).iter().for_each(|line| println!("{line}"));
            }
            Ok(0)
        }
        Command::Plot { trace: path, output, json } => {
            let trace = trace_file::read(&path)?;
            let analysis = analyse(&trace);
            let title = plot_title(&trace.header, &path.display().to_string());
            plot::draw(&output, &analysis.stats, &title)?;
            if json {
                println!("{:#}", report::json(&trace.header, &analysis.stats));
            }
            eprintln!("dax-probe: plot of {} written to {}", path.display(), output.display());
            Ok(0)
        }
        Command::Serve { listen, replay, speed, command } => {
            serve(&listen, replay.as_deref(), speed, &command)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "dax-probe", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn analyse(trace: &Trace) -> Analysis {
    let mut analysis = Analysis::new(&trace.header.hooks);
    trace.events.iter().for_each(|event| analysis.push(event));
    analysis.finish();
    analysis
}

fn plot_title(header: &Header, fallback: &str) -> String {
    let what = if header.command.is_empty() { fallback } else { &header.command };
    let what: String = what.chars().take(90).collect();
    format!("dax-probe: {what} (kernel {})", header.kernel)
}

fn record(output: &Path, command: &[String]) -> Result<i32> {
    let mut writer = trace_file::Writer::create(output)?;
    let session = live_session(command, false, &mut writer)?;
    let lost = session.header.lost;
    let events = writer.finish(session.header.clone())?;
    eprintln!("dax-probe: {events} events, {lost} lost, written to {}", output.display());
    if lost > 0 {
        eprintln!("dax-probe: warning: {lost} events were lost: checks of this trace are inconclusive");
    }
    Ok(command_code(&session))
}

fn run_workload(
    command: &[String],
    plot_to: Option<&Path>,
    json: bool,
    output: Option<PathBuf>,
) -> Result<i32> {
    let scratch = std::env::temp_dir().join(format!("dax-probe-fio-{}.txt", std::process::id()));
    let workload = Workload::new(command, &scratch);
    let mut sink =
        (LiveCheck(Analysis::new(&[])), output.as_deref().map(trace_file::Writer::create).transpose()?);
    let mut session = live_session(&workload.command, json, &mut sink)?;
    // The user's command, not the options added for fio's JSON report.
    session.header.command = command.join(" ");
    let (LiveCheck(mut analysis), writer) = sink;
    analysis.finish();
    if let (Some(writer), Some(path)) = (writer, &output) {
        writer.finish(session.header.clone())?;
        eprintln!("dax-probe: trace written to {}", path.display());
    }
    // fio's normal output, where the user expects it (stderr under --json).
    let fio = workload.fio_summary(|normal| if json { eprint!("{normal}") } else { print!("{normal}") });
    if let Some(path) = plot_to {
        plot::draw(path, &analysis.stats, &plot_title(&session.header, "dax-probe run"))?;
        eprintln!("dax-probe: plot written to {}", path.display());
    }
    let verdict = Verdict::of(&analysis, session.header.lost);
    let fio = fio.unwrap_or_else(|error| {
        eprintln!("dax-probe: warning: no fio summary: {error:#}");
        None
    });
    if json {
        let mut value = report::json(&session.header, &analysis.stats);
        value["command"] = json!(command.join(" "));
        value["command_exit"] = json!(session.status.and_then(|status| status.code()));
        value["fio"] = fio.as_ref().map_or(serde_json::Value::Null, FioSummary::json);
        value["verdict"] = verdict.json();
        println!("{value:#}");
    } else {
        print_summary(command, &session, &analysis, fio.as_ref(), &verdict);
    }
    Ok(checked_command_code(verdict.exit_code(), &session))
}

fn print_summary(
    command: &[String],
    session: &Session,
    analysis: &Analysis,
    fio: Option<&FioSummary>,
    verdict: &Verdict,
) {
    let status = session.status.map_or("interrupted".to_owned(), |status| status.to_string());
    println!("\ndax-probe: summary of `{}` ({status})", command.join(" "));
    if let Some(fio) = fio {
        println!("fio: read {}; write {}", fio.read.text(), fio.write.text());
    }
    // The report's fault and reason lines; per file and process are for `report`.
    println!("{}", report::faults_line(&analysis.stats));
    report::reason_lines(&analysis.stats).iter().for_each(|line| println!("{line}"));
    println!("lost events: {}", session.header.lost);
    print_violations(analysis);
    println!("{}", verdict.line());
}

fn live_session(command: &[String], stdout_to_stderr: bool, sink: &mut impl Sink) -> Result<Session> {
    runtime()?.block_on(record::run(command, stdout_to_stderr, sink))
}

/// One thread: the ring buffer, the command and the metrics server take turns.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn serve(listen: &str, replay: Option<&Path>, speed: f64, command: &[String]) -> Result<i32> {
    anyhow::ensure!(speed >= 0.0 && speed.is_finite(), "--speed {speed}: give a factor of 0 or more");
    let trace = replay.map(trace_file::read).transpose()?;
    runtime()?.block_on(async {
        let listener = serve::bind(listen).await?;
        let (kernel, source) = match (&trace, replay) {
            (Some(trace), Some(path)) => (trace.header.kernel.clone(), path.display().to_string()),
            _ => (record::kernel_release(), "live".to_owned()),
        };
        let hooks = trace.as_ref().map_or(&[][..], |trace| &trace.header.hooks[..]);
        let served = serve::Served { analysis: Analysis::new(hooks), lost: 0, kernel, source };
        let shared = Arc::new(Mutex::new(served));
        eprintln!("dax-probe: serving metrics at http://{}/metrics", listener.local_addr()?);
        let scraped = Arc::new(tokio::sync::Notify::new());
        let server = tokio::spawn(serve::serve(listener, shared.clone(), scraped.clone()));
        let Some(trace) = trace else {
            let session = record::run(command, false, &mut serve::LiveSink::new(shared)).await?;
            return Ok(command_code(&session));
        };
        eprintln!("dax-probe: the replay of {} events starts at the first scrape", trace.events.len());
        tokio::select! {
            done = server => done.context("the metrics server stopped")??,
            () = serve::replay(&trace, speed, &shared, &scraped) => {
                eprintln!("dax-probe: replay of {} events done; serving its totals until Ctrl-C", trace.events.len());
                tokio::signal::ctrl_c().await?;
            }
            interrupted = tokio::signal::ctrl_c() => interrupted?,
        }
        Ok(0)
    })
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

/// A check's exit code, or when the invariants held, the command's own.
fn checked_command_code(check: i32, session: &Session) -> i32 {
    if check == 0 {
        command_code(session)
    } else {
        check
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

fn print_violations(analysis: &Analysis) {
    for violation in &analysis.violations {
        println!("{violation}");
    }
    let kept = analysis.violations.len() as u64;
    if analysis.violation_count() > kept {
        println!("({} more violations not shown)", analysis.violation_count() - kept);
    }
}

/// Prints coverage, violations and, last, the verdict; returns the exit code.
fn print_check(analysis: &Analysis, coverage: &[String], lost: u64, json: bool) -> i32 {
    let verdict = Verdict::of(analysis, lost);
    if json {
        let mut value = verdict.json();
        value["coverage"] = json!(coverage);
        value["violation_details"] = analysis
            .violations
            .iter()
            .map(|v| {
                json!({
                    "invariant": v.invariant.name(),
                    "what": v.what,
                    "entry": v.key.map(|key| key.to_string()),
                    "events": v.events.iter().map(dax_probe::events::describe).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{value:#}");
    } else {
        coverage.iter().for_each(|line| println!("coverage: {line}"));
        print_violations(analysis);
        println!("{}", verdict.line());
    }
    verdict.exit_code()
}
