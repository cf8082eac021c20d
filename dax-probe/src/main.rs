//! The dax-probe command line.
//!
//! Exit codes, each meaning one thing: 0 success (check and run: pass),
//! 1 violations found, 2 error, 3 inconclusive (events lost, or maybe
//! lost), 4 the command dax-probe ran failed (when no verdict outranks it).
//! A verdict's code wins over the command's failure, which stderr names.

use std::{
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::{Arc, Mutex},
};

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use dax_probe::{
    analysis::{
        verdict::{Verdict, EXIT_COMMAND_FAILED, EXIT_ERROR},
        Analysis,
    },
    output::{
        self,
        check::{self, CoverageLog},
        metrics::Metrics,
        plot, report,
        run::{self, RunSummary},
        serve,
    },
    source::{
        cost::Cost,
        counting,
        hooks::Plan,
        live::{self, Session},
    },
    stream::Sink,
    trace::{file::Writer, Reader},
    workload::{FioSummary, Workload},
};

#[derive(Parser)]
#[command(
    version,
    about,
    after_help = "Traces: dax-probe's own (`record`), or the text of tracefs \
(/sys/kernel/tracing/trace) or `trace-cmd report` with fs_dax events.\n\
Recording needs root (or CAP_BPF and CAP_PERFMON).\n\n\
Exit codes: 0 success (a pass), 1 violations found, 2 error, 3 inconclusive \
(events lost or maybe lost), 4 the command dax-probe ran failed (its own \
status is on stderr; a verdict's code wins over it)."
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
        dax-probe run -o app.daxtrace -- ./my-app\n  \
        dax-probe run --count --breakdown -- fio job.fio\n\n\
        fio is also asked for its JSON report (--output-format=normal,json); its normal output is shown as usual.\n\
        Exit code: 0 the invariants held, 1 violations, 2 error, 3 events lost (inconclusive), 4 the command failed (the invariants held).")]
    Run {
        /// Also draw the run's plot into FILE (.png or .svg).
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
        /// Print the summary as JSON on stdout (the command's own output goes to stderr).
        #[arg(long)]
        json: bool,
        /// Also keep the trace in FILE.
        #[arg(short, long, value_name = "FILE", conflicts_with = "count")]
        output: Option<PathBuf>,
        #[command(flatten)]
        hooks: Hooks,
        #[command(flatten)]
        counting: Counting,
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
        #[command(flatten)]
        hooks: Hooks,
        /// For benchmarks: how far events go. Below `full` nothing reaches
        /// the trace, which records no event: the cost of each step shows.
        #[arg(long, value_enum, default_value_t, value_name = "STAGE")]
        stage: live::Stage,
        /// At the end, each eBPF program's runs and time, by the kernel's
        /// BPF statistics (where the probe's cost goes).
        #[arg(long)]
        program_costs: bool,
        /// For benchmarks: leave the kernel's BPF statistics off (they cost
        /// two clock reads per program run); the programs' time is then not known.
        #[arg(long, conflicts_with = "program_costs")]
        no_bpf_stats: bool,
        /// A command to run while recording; its exit ends the recording.
        /// Without one, recording ends at Ctrl-C.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Check the DAX entry-locking and fault invariants, of a trace or live
    /// (no trace: until the command exits or Ctrl-C). The last line is the
    /// verdict: pass, fail (exit 1) or inconclusive (exit 3). The invariants
    /// need the event stream: there is no counting mode for check.
    #[command(after_help = "Examples:\n  \
        dax-probe check fio.daxtrace\n  \
        dax-probe check /sys/kernel/tracing/trace\n  \
        dax-probe check -- fio job.fio\n  \
        dax-probe check --stall-after 10 -- fio job.fio\n  \
        dax-probe check --json fio.daxtrace")]
    Check {
        trace: Option<PathBuf>,
        /// Print coverage, violations and verdict as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        hooks: Hooks,
        /// Refused, with the reason: the invariants need the event stream.
        #[arg(long, hide = true)]
        count: bool,
        /// Live: a waiter asleep this long on a free entry, with no wake-up
        /// coming, is a lost wake-up: reported at once, and the check ends
        /// there with its verdict (the waiter, and so the command, would
        /// never end). 0: never.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        stall_after: u64,
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
        dax-probe serve --count --breakdown        (counting mode, for long runs)\n  \
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
        #[command(flatten)]
        hooks: Hooks,
        /// Counting mode: serve counters added up in the kernel (read every
        /// second), no event stream, no invariants; far cheaper for long runs.
        #[arg(long, conflicts_with_all = ["replay", "plan"])]
        count: bool,
        /// With --count: faults per process and per file too.
        #[arg(long, requires = "count")]
        breakdown: bool,
        #[command(flatten)]
        latency: LatencySample,
        /// A command to run while serving live; its exit ends dax-probe.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// A live view of DAX faults, refreshed every second, in counting mode
    /// (counters in the kernel, no event stream, no invariants checked):
    /// faults per second, the PMD share, fallback reasons, the busiest
    /// processes and files. Until the command exits or Ctrl-C.
    #[command(after_help = "Examples:\n  \
        dax-probe top\n  \
        dax-probe top --interval 5 -- fio job.fio")]
    Top {
        /// Seconds between screens.
        #[arg(long, default_value_t = 1, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        /// Leave out the per-process and per-file breakdown (it costs a map
        /// lookup per fault).
        #[arg(long)]
        no_breakdown: bool,
        #[command(flatten)]
        latency: LatencySample,
        /// A command to run meanwhile; its exit ends the view.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        dax-probe completions bash > /etc/bash_completion.d/dax-probe\n  \
        dax-probe completions zsh > ~/.zfunc/_dax-probe")]
    Completions { shell: clap_complete::Shell },
}

/// The counting mode.
#[derive(clap::Args, Clone, Copy)]
struct Counting {
    /// Counting mode: faults, fallback reasons and latency histograms added
    /// up in the kernel, no event stream; far cheaper, and no invariant is
    /// checked (they need every event).
    #[arg(long, conflicts_with_all = ["plot", "plan"])]
    count: bool,
    /// With --count: faults per process and per file too (a map lookup per fault).
    #[arg(long, requires = "count")]
    breakdown: bool,
    /// With --count: have the kernel count the programs' runs and time, for
    /// the probe's cost line. Off by default in counting mode: its two clock
    /// reads a run cost a PTE-heavy load more than the counting does.
    #[arg(long, requires = "count")]
    bpf_stats: bool,
    #[command(flatten)]
    latency: LatencySample,
}

/// How many PTE faults the counting mode times.
#[derive(clap::Args, Clone, Copy)]
struct LatencySample {
    /// Counting mode: time PTE faults during this percentage of every
    /// second (their latency histogram is then a sample; every count stays
    /// exact). 100 times them all, for about 1.5 % more of a PTE-heavy
    /// load's CPU time; PMD faults are always all timed.
    #[arg(long = "latency-sample", default_value_t = 10, value_name = "PERCENT",
        value_parser = clap::value_parser!(u8).range(0..=100))]
    percent: u8,
}

/// How the live probe observes fs/dax.c.
#[derive(clap::Args, Clone, Copy)]
struct Hooks {
    /// Which hooks to use: the best this kernel offers per group (auto), hooks
    /// on whole functions only (native), or the hooks that survive inlining
    /// (inlined: the ones stock kernels need, also where the functions are real).
    #[arg(long = "hooks", value_enum, default_value_t, value_name = "PLAN")]
    plan: Plan,
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
        Command::Run { json, counting, command, .. } if counting.count => {
            count_command(&command, json, counting)
        }
        Command::Run { plot, json, output, hooks, command, .. } => {
            run_command(&command, hooks.plan, plot.as_deref(), json, output)
        }
        Command::Record { output, hooks, stage, program_costs, no_bpf_stats, command } => {
            let costs = Costs { statistics: !no_bpf_stats, per_program: program_costs };
            record(&output, hooks.plan, stage, costs, &command)
        }
        Command::Check { count: true, .. } => anyhow::bail!(
            "check has no counting mode: the invariants are checked on every event, in order, and the \
             counting mode (run --count, top, serve --count) keeps none"
        ),
        Command::Check { trace, json, hooks, stall_after, command, .. } => {
            check(trace.as_deref(), json, hooks.plan, stall_after, &command)
        }
        Command::Report { trace, json, counts } => report(&trace, json, counts),
        Command::Plot { trace, output, json } => plot(&trace, &output, json),
        Command::Serve { listen, replay, speed, hooks, count, breakdown, latency, command } => {
            let mode = if count {
                ServeMode::Count(counting::Options { breakdown, latency_sample: latency.percent })
            } else {
                ServeMode::Stream(hooks.plan)
            };
            serve(&listen, replay.as_deref(), speed, mode, &command)
        }
        Command::Top { interval, no_breakdown, latency, command } => top(
            interval,
            counting::Options { breakdown: !no_breakdown, latency_sample: latency.percent },
            &command,
        ),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "dax-probe", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn run_command(
    command: &[String],
    plan: Plan,
    plot_to: Option<&Path>,
    json: bool,
    output: Option<PathBuf>,
) -> Result<i32> {
    let scratch = std::env::temp_dir().join(format!("dax-probe-fio-{}.txt", std::process::id()));
    let workload = Workload::new(command, &scratch);
    let mut analysis = Analysis::default();
    let writer = output.as_deref().map(Writer::create).transpose()?;
    let live = live_command(&workload.command, command, json, plan);
    let session = live_session(live, (CoverageLog, (&mut analysis, writer)))?;
    if let Some(path) = &output {
        eprintln!("dax-probe: trace written to {}", path.display());
    }
    let fio = fio_summary(workload, json);
    if let Some(path) = plot_to {
        let (title, notes) = (plot::title(&analysis, "dax-probe run"), report::entry_life_lines(&analysis));
        plot::draw(path, &analysis.stats, &title, &notes)?;
        eprintln!("dax-probe: plot written to {}", path.display());
    }
    let command = command.join(" ");
    print!("{}", run::summary(&analysis, &run_summary(&command, session.status, &fio, &session.cost), json));
    Ok(checked_command_code(&analysis, session.status))
}

/// `run --count`: the command under the counting mode, and one summary.
fn count_command(command: &[String], json: bool, counting: Counting) -> Result<i32> {
    let scratch = std::env::temp_dir().join(format!("dax-probe-fio-{}.txt", std::process::id()));
    let workload = Workload::new(command, &scratch);
    let live = live::Command {
        bpf_stats: counting.bpf_stats,
        ..live_command(&workload.command, command, json, Plan::default())
    };
    let options =
        counting::Options { breakdown: counting.breakdown, latency_sample: counting.latency.percent };
    let session = runtime()?.block_on(counting::run(live, options, None, |_, _| ()))?;
    let fio = fio_summary(workload, json);
    let command = command.join(" ");
    let summary = run_summary(&command, session.status, &fio, &session.cost);
    print!("{}", output::counting::run(&session.coverage, &session.counts, &summary, json));
    Ok(command_code(session.status))
}

/// fio's summary once it exited (`None` for other commands), its normal
/// output passed on where the user expects it (stderr under --json); a
/// missing report is a warning, not the run's failure.
fn fio_summary(workload: Workload, json: bool) -> Option<FioSummary> {
    let fio = workload.fio_summary(|normal| if json { eprint!("{normal}") } else { print!("{normal}") });
    fio.unwrap_or_else(|error| {
        eprintln!("dax-probe: warning: no fio summary: {error:#}");
        None
    })
}

/// What `run` says of the command besides the probe's findings.
fn run_summary<'a>(
    command: &'a str,
    status: Option<ExitStatus>,
    fio: &'a Option<FioSummary>,
    cost: &'a Cost,
) -> RunSummary<'a> {
    RunSummary {
        command,
        status: status.map_or("interrupted".to_owned(), |status| status.to_string()),
        exit_code: status.and_then(|status| status.code()),
        fio: fio.as_ref(),
        cost,
    }
}

/// `top`: a screen every `interval` seconds until the command exits or Ctrl-C.
fn top(interval: u64, options: counting::Options, command: &[String]) -> Result<i32> {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let mut before: Option<counting::Counts> = None;
    let every = std::time::Duration::from_secs(interval);
    // The counting mode leaves the BPF statistics off (see `run --bpf-stats`).
    let live = live::Command { bpf_stats: false, ..live_command(command, command, true, Plan::default()) };
    let session = runtime()?.block_on(counting::run(live, options, Some(every), |coverage, now| {
        // A terminal gets the screen redrawn in place; a pipe or file each
        // screen after the last, so that a log of it reads in order.
        let clear = if terminal { "\x1b[H\x1b[2J" } else { "\n" };
        print!("{clear}{}", output::counting::top_screen(coverage, now, before.as_ref()));
        before = Some(now.clone());
    }))?;
    print!("\n{}", output::counting::top_screen(&session.coverage, &session.counts, before.as_ref()));
    say_cost(&session.cost, false);
    Ok(command_code(session.status))
}

/// What `record` measures of its own cost.
struct Costs {
    statistics: bool,
    per_program: bool,
}

fn record(output: &Path, plan: Plan, stage: live::Stage, costs: Costs, command: &[String]) -> Result<i32> {
    let live =
        live::Command { stage, bpf_stats: costs.statistics, ..live_command(command, command, false, plan) };
    // Below the full stage no event reaches the sink: no trace is written.
    let writer = (stage == live::Stage::Full).then(|| Writer::create(output)).transpose()?;
    let session = live_session(live, (CoverageLog, writer))?;
    let lost = session.summary.lost;
    let (events, written) = (session.summary.events, output.display());
    match stage {
        live::Stage::Full => eprintln!("dax-probe: {events} events, {lost} lost, written to {written}"),
        _ => eprintln!(
            "dax-probe: {events} events, {lost} lost, no trace written (--stage {})",
            format!("{stage:?}").to_lowercase()
        ),
    }
    if lost > 0 {
        eprintln!("dax-probe: warning: {lost} events were lost: checks of this trace are inconclusive");
    }
    say_cost(&session.cost, costs.per_program);
    Ok(command_code(session.status))
}

fn check(trace: Option<&Path>, json: bool, plan: Plan, stall_after: u64, command: &[String]) -> Result<i32> {
    let mut analysis = Analysis::default();
    if stall_after > 0 {
        analysis = analysis.stall_after(std::time::Duration::from_secs(stall_after));
    }
    let status = match trace {
        Some(trace) => {
            anyhow::ensure!(
                command.is_empty(),
                "check takes a trace file or a command to run live, not both"
            );
            Reader::open(trace)?.stream(&mut analysis)?;
            None
        }
        None => {
            let session =
                live_session(live_command(command, command, json, plan), (CoverageLog, &mut analysis))?;
            say_cost(&session.cost, false);
            session.status
        }
    };
    print!("{}", check::check(&analysis, json));
    Ok(checked_command_code(&analysis, status))
}

fn report(trace: &Path, json: bool, counts: bool) -> Result<i32> {
    let reader = Reader::open(trace)?;
    if counts {
        let mut counts = report::Counts::default();
        reader.stream(&mut counts)?;
        counts.lines().iter().for_each(|line| println!("{line}"));
    } else if json {
        println!("{:#}", report::json(&analyse(reader)?));
    } else {
        report::text(&analyse(reader)?).iter().for_each(|line| println!("{line}"));
    }
    Ok(0)
}

fn plot(trace: &Path, output: &Path, json: bool) -> Result<i32> {
    let analysis = analyse(Reader::open(trace)?)?;
    let title = plot::title(&analysis, &trace.display().to_string());
    plot::draw(output, &analysis.stats, &title, &report::entry_life_lines(&analysis))?;
    if json {
        println!("{:#}", report::json(&analysis));
    }
    eprintln!("dax-probe: plot of {} written to {}", trace.display(), output.display());
    Ok(0)
}

/// What a live `serve` serves.
#[derive(Clone, Copy)]
enum ServeMode {
    Stream(Plan),
    Count(counting::Options),
}

fn serve(
    listen: &str,
    replay: Option<&Path>,
    speed: f64,
    mode: ServeMode,
    command: &[String],
) -> Result<i32> {
    anyhow::ensure!(speed >= 0.0 && speed.is_finite(), "--speed {speed}: give a factor of 0 or more");
    let trace = replay.map(Reader::open).transpose()?;
    runtime()?.block_on(async {
        let listener = serve::bind(listen).await?;
        let (kernel, source) = match (&trace, replay) {
            (Some(trace), Some(path)) => (trace.begin().kernel.clone(), path.display().to_string()),
            _ => (live::kernel_release(), "live".to_owned()),
        };
        let shared = Arc::new(Mutex::new(Metrics::new(&kernel, &source)));
        eprintln!("dax-probe: serving metrics at http://{}/metrics", listener.local_addr()?);
        let scraped = Arc::new(tokio::sync::Notify::new());
        let server = tokio::spawn(serve::serve(listener, shared.clone(), scraped.clone()));
        let Some(trace) = trace else {
            let live = live::Command {
                lost_every_second: true,
                ..live_command(command, command, false, Plan::default())
            };
            let recording = async {
                match mode {
                    ServeMode::Stream(plan) => {
                        let mut sink = (CoverageLog, serve::LiveSink::new(shared.clone()));
                        let session = live::run(live::Command { plan, ..live }, &mut sink).await?;
                        Ok::<_, anyhow::Error>((session.status, session.cost))
                    }
                    ServeMode::Count(options) => {
                        let every = Some(std::time::Duration::from_secs(1));
                        let publish = |_: &counting::Coverage, counts: &counting::Counts| {
                            serve::lock(&shared).counts = Some(counts.clone());
                        };
                        let live = live::Command { bpf_stats: false, ..live };
                        let session = counting::run(live, options, every, publish).await?;
                        serve::lock(&shared).counts = Some(session.counts);
                        Ok((session.status, session.cost))
                    }
                }
            };
            // The server runs as long as the recording: if it dies, nobody
            // sees the metrics, so the recording ends with an error.
            let (status, cost) = tokio::select! {
                session = recording => session?,
                stopped = server => anyhow::bail!("the metrics server stopped: {}", match stopped {
                    Ok(Ok(())) => "it ended".to_owned(),
                    Ok(Err(error)) => format!("{error:#}"),
                    Err(error) => error.to_string(),
                }),
            };
            say_cost(&cost, false);
            return Ok(command_code(status));
        };
        eprintln!("dax-probe: the replay of {source} starts at the first scrape");
        let mut interrupt = live::Interrupt::listen()?;
        tokio::select! {
            done = server => done.context("the metrics server stopped")??,
            replayed = serve::replay(trace, speed, &shared, &scraped) => {
                eprintln!("dax-probe: replay of {} events done; serving its totals until Ctrl-C", replayed?);
                interrupt.next().await;
            }
            () = interrupt.next() => {}
        }
        Ok(0)
    })
}

/// A whole trace through a fresh analysis.
fn analyse(reader: Reader) -> Result<Analysis> {
    let mut analysis = Analysis::default();
    reader.stream(&mut analysis)?;
    Ok(analysis)
}

/// `argv` to run live (the user's `users`, with what `run` added for fio).
fn live_command<'a>(
    argv: &'a [String],
    users: &[String],
    stdout_to_stderr: bool,
    plan: Plan,
) -> live::Command<'a> {
    live::Command {
        argv,
        label: users.join(" "),
        stdout_to_stderr,
        plan,
        lost_every_second: false,
        stage: live::Stage::Full,
        bpf_stats: true,
    }
}

/// What a live session cost, on stderr (and per program, if asked).
fn say_cost(cost: &Cost, per_program: bool) {
    eprintln!("dax-probe: {}", run::cost_line(cost));
    if per_program {
        run::program_cost_lines(cost).iter().for_each(|line| eprintln!("dax-probe: {line}"));
    }
}

/// A live session into `sink`.
fn live_session(command: live::Command, mut sink: impl Sink) -> Result<Session> {
    runtime()?.block_on(live::run(command, &mut sink))
}

/// One thread: the ring buffer, the command and the metrics server take turns.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The command's failure, said and given its own exit code (the trace or
/// verdict is still complete).
fn command_code(status: Option<ExitStatus>) -> i32 {
    match status {
        Some(status) if !status.success() => {
            eprintln!("dax-probe: the command failed ({status})");
            EXIT_COMMAND_FAILED
        }
        _ => 0,
    }
}

/// The verdict's exit code, or when the invariants held, the command's failure.
fn checked_command_code(analysis: &Analysis, status: Option<ExitStatus>) -> i32 {
    match Verdict::of(analysis).exit_code() {
        0 => command_code(status),
        code => code,
    }
}
