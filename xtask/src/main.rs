//! `cargo xtask`: the only entry point for dax-probe's builds, VM lab and tests.

mod apt;
mod bench;
mod cache;
mod cmd;
mod coverage;
mod cpio;
mod dashboards;
mod demo;
mod fuzz;
mod image;
mod kernel;
mod scenario;
mod setup;
mod suite;
mod vm;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Builds, VM lab and tests of dax-probe", long_about = None)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the lab needs on this Debian machine (idempotent).
    Setup,
    /// Build (or find in the cache) a guest kernel and print where it is.
    Kernel {
        #[arg(long, value_enum, default_value = "custom")]
        kernel: kernel::Flavour,
        #[command(flatten)]
        source: Source,
    },
    /// List the lab's scenarios.
    Scenarios,
    /// Boot a guest kernel with the emulated NVDIMM and run one scenario.
    Vm {
        #[arg(long, value_enum, default_value = "custom")]
        kernel: kernel::Flavour,
        #[arg(long)]
        scenario: String,
        /// Override the scenario's timeout (seconds).
        #[arg(long)]
        timeout: Option<u64>,
        /// Run the guest under QEMU's icount: guest time counts instructions,
        /// so guest-side timings repeat exactly (TCG only; see vm::Clock).
        #[arg(long)]
        icount: bool,
        #[command(flatten)]
        source: Source,
    },
    /// The whole test suite: host unit tests and every VM scenario (what CI runs).
    Test {
        #[command(flatten)]
        source: Source,
    },
    /// The main job: the seed's fio job with and without 2 MiB pages, side by side.
    Demo {
        #[command(flatten)]
        source: Source,
    },
    /// Prove the dashboards: a real Prometheus scrapes `dax-probe serve
    /// --replay TRACE`, and every panel's PromQL must return data.
    Dashboards {
        /// A trace recorded in the VM (the suite uses fio-run's).
        trace: PathBuf,
    },
    /// Fuzz the trace reader, the text importer and the analysis under
    /// libFuzzer; a crashing input is kept in fuzz/regressions/ (a test from then on).
    Fuzz {
        /// The targets (trace_file, trace_text, analysis); all when none is given.
        targets: Vec<String>,
        /// Executions per target.
        #[arg(long, conflicts_with = "seconds")]
        runs: Option<u64>,
        /// Seconds per target (the default: 60).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// A benchmark (not a test): prints what it measured and the ratio to its target.
    Bench {
        #[arg(value_enum)]
        what: Bench,
        /// The guest kernel of the benchmarks that boot one.
        #[arg(long, value_enum, default_value = "custom")]
        kernel: kernel::Flavour,
        #[command(flatten)]
        source: Source,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Bench {
    /// `check` of a trace file end to end (read, decode, analyse): events per
    /// second on one core (target 5 M/s), on a synthetic mix and the lab's traces.
    Checker,
    /// What watching costs the workload: the seed's fio job under icount,
    /// alone and under tracefs, trace-cmd and dax-probe (attach floor,
    /// stream); the last line is `overhead: tracefs T%, stream S%, ...`.
    Overhead,
    /// The seed's result under icount: its fio job with 2 MiB pages against
    /// every PMD fault falling back, as a ratio next to the seed's 2.52x.
    Seed,
    /// dax-probe's memory over an hour of live `check` and `serve` while
    /// fio loops (host clock): RSS at the end against after 10 s (target 1.2x).
    Rss,
}

#[derive(Args)]
struct Source {
    /// A Linux 7.2 source tree of your own instead of Debian's linux-source-7.2.
    #[arg(long, env = "DAX_PROBE_KERNEL_SOURCE")]
    kernel_source: Option<PathBuf>,
}

fn main() {
    if let Err(error) = run(Cli::parse()) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.task {
        Task::Setup => setup::ensure().map(drop),
        Task::Fuzz { targets, runs, seconds } => {
            setup::ensure()?;
            let budget = match runs {
                Some(runs) => fuzz::Budget::Runs(runs),
                None => fuzz::Budget::Time(std::time::Duration::from_secs(seconds.unwrap_or(60))),
            };
            for outcome in fuzz::run(&targets, budget)? {
                println!("fuzz: {}: {} executions in {} s", outcome.target, outcome.runs, outcome.seconds);
            }
            Ok(())
        }
        Task::Kernel { kernel, source } => {
            let tools = setup::ensure()?;
            let guest = kernel::get(kernel, &tools, source.kernel_source.as_deref())?;
            println!("{} kernel {}: {}", kernel.name(), guest.release, guest.image.display());
            Ok(())
        }
        Task::Scenarios => {
            // The kernel matrix: a column per kernel, a row per scenario.
            let kernels = kernel::Flavour::ALL;
            let header: Vec<_> = kernels.iter().map(|k| format!("{:<12}", k.name())).collect();
            println!("{:<26} {} what it shows", "scenario", header.join(""));
            for scenario in scenario::all()? {
                let marks: Vec<_> = kernels
                    .iter()
                    .map(|k| format!("{:<12}", if scenario.kernels.contains(k) { "x" } else { "." }))
                    .collect();
                println!("{:<26} {} {}", scenario.name, marks.join(""), scenario.summary);
            }
            Ok(())
        }
        Task::Vm { kernel, scenario, timeout, icount, source } => {
            let mut scenario = scenario::find(&scenario)?;
            if let Some(seconds) = timeout {
                scenario.timeout = std::time::Duration::from_secs(seconds);
            }
            if !scenario.kernels.contains(&kernel) {
                println!(
                    "vm: note: scenario {} is meant for other kernels than {}",
                    scenario.name,
                    kernel.name()
                );
            }
            let tools = setup::ensure()?;
            let guest = kernel::get(kernel, &tools, source.kernel_source.as_deref())?;
            let initramfs = image::build(&guest, &tools)?;
            let clock = if icount { vm::Clock::Icount } else { vm::Clock::Host };
            let outcome = vm::run(&guest, &initramfs, &scenario, clock)?;
            let verdict = match &outcome.failure {
                None => "PASS".to_owned(),
                Some(why) => format!("FAIL: {why}"),
            };
            println!(
                "vm: {} on {}: {verdict} ({} s; console and outbox in {})",
                scenario.name,
                kernel.name(),
                outcome.elapsed.as_secs(),
                outcome.out_dir.display()
            );
            if outcome.failure.is_some() {
                bail!("scenario {} failed on the {} kernel", scenario.name, kernel.name());
            }
            Ok(())
        }
        Task::Dashboards { trace } => dashboards::check(&trace).map(drop),
        Task::Test { source } => suite::run(source.kernel_source.as_deref()),
        Task::Demo { source } => demo::run(source.kernel_source.as_deref()),
        Task::Bench { what: Bench::Overhead, kernel, source } => {
            bench::overhead(kernel, source.kernel_source.as_deref())
        }
        Task::Bench { what: Bench::Seed, kernel, source } => {
            bench::seed(kernel, source.kernel_source.as_deref())
        }
        Task::Bench { what: Bench::Rss, kernel, source } => {
            bench::rss(kernel, source.kernel_source.as_deref())
        }
        Task::Bench { what: Bench::Checker, .. } => cmd::run(
            std::process::Command::new(env!("CARGO"))
                .args(["bench", "--quiet", "--package", "dax-probe", "--bench", "checker", "--"])
                .args(lab_traces())
                .current_dir(project_root()),
        ),
    }
}

/// The large traces the lab's last runs recorded (`target/lab/KERNEL/SCENARIO/outbox/`):
/// real material for the checker benchmark next to its synthetic trace.
fn lab_traces() -> Vec<PathBuf> {
    let mut traces = Vec::new();
    let lab = project_root().join("target/lab");
    // The suite also leaves files there (coverage.md): only folders are runs.
    for kernel in std::fs::read_dir(&lab).into_iter().flatten().flatten() {
        for scenario in std::fs::read_dir(kernel.path()).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(scenario.path().join("outbox")).into_iter().flatten().flatten() {
                // A trace of a few thousand events measures opening a file, not checking it.
                let large = file.metadata().is_ok_and(|meta| meta.len() >= 16 << 20);
                if file.path().extension().is_some_and(|e| e == "daxtrace") && large {
                    traces.push(file.path());
                }
            }
        }
    }
    traces.sort();
    traces
}

/// The repository's top folder (xtask lives one level below it).
pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits inside the repository")
}
