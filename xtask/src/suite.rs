//! `cargo xtask test`: the whole test suite, exactly what CI runs.
//!
//! 1. the host unit tests of every crate in the workspace (`cargo test`),
//!    the fuzz targets' regression inputs among them, then each fuzz
//!    target for [`FUZZ_SECONDS`] on its corpus (`fuzz.rs`);
//! 2. every lab scenario on every kernel its header names, in the real VM:
//!    ordinary scenarios must pass, the lab's selftests must fail with the
//!    reason their header expects (a WARN, a hang, a failed check);
//! 3. the dashboards check: a real Prometheus scrapes `dax-probe serve
//!    --replay` of the trace fio-run recorded in the VM (`dashboards.rs`).
//!
//! It ends with a table and the line `N passed, M failed`; any failure, or a
//! VM that cannot run at all, makes the exit status non-zero.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};

use crate::{cmd, fuzz, image, kernel, scenario, setup, vm};

/// How long CI fuzzes each target: a short, bounded run on the corpus (the
/// long runs are `cargo xtask fuzz --runs N`).
const FUZZ_SECONDS: Duration = Duration::from_secs(20);

struct Row {
    kernel: &'static str,
    scenario: String,
    expected: String,
    got: String,
    ok: bool,
    elapsed: Duration,
    /// The run's console log, for the failures' tails.
    console: Option<std::path::PathBuf>,
}

pub fn run(kernel_source: Option<&std::path::Path>) -> Result<()> {
    let started = Instant::now();
    let mut phases = Phases::default();
    let tools = setup::ensure()?;
    phases.end("set-up");

    println!("test: host unit tests");
    // dax-probe-ebpf only builds for the BPF target (dax-probe's build script does that).
    cmd::run(
        Command::new(env!("CARGO"))
            .args(["test", "--workspace", "--exclude", "dax-probe-ebpf", "--quiet"])
            .current_dir(crate::project_root()),
    )?;
    phases.end("unit tests");

    println!("test: fuzz targets, {} s each", FUZZ_SECONDS.as_secs());
    for outcome in fuzz::run(&[], fuzz::Budget::Time(FUZZ_SECONDS))? {
        println!("test: fuzz {}: {} executions, no crash", outcome.target, outcome.runs);
    }
    phases.end("fuzz targets (build and runs)");

    let scenarios = scenario::all()?;
    let guests = guests(&scenarios, &tools, kernel_source)?;
    phases.end("kernels and images");
    // Longest first, so that the two lanes end together.
    let mut jobs: Vec<_> = guests
        .iter()
        .flat_map(|(guest, initramfs)| {
            scenarios
                .iter()
                .filter(|s| s.kernels.contains(&guest.flavour))
                .map(move |s| (guest, initramfs, s))
        })
        .collect();
    // The dashboards check waits on Prometheus's scrapes more than it
    // works: it runs beside the lanes, on the trace fio-run records first.
    jobs.sort_by_key(|(guest, _, scenario)| {
        (!is_fio_run(guest.flavour.name(), &scenario.name), std::cmp::Reverse(scenario.timeout))
    });
    let (rows, dashboards) = std::thread::scope(|scope| {
        let (fio_run, fio_run_ended) = std::sync::mpsc::channel();
        let dashboards = scope.spawn(move || dashboards_row(fio_run_ended.recv().unwrap_or(false)));
        let finished = move |row: &Row| {
            if is_fio_run(row.kernel, &row.scenario) {
                let _ = fio_run.send(row.ok);
            }
        };
        let rows = run_vms(&jobs, &finished);
        // No fio-run row is coming now: the dashboards thread stops waiting.
        drop(finished);
        (rows, dashboards.join().expect("the dashboards check does not panic"))
    });
    let mut rows = rows?;
    phases.end("VM lanes and dashboards");
    rows.sort_by_key(|row| {
        let kernel = kernel::Flavour::ALL.iter().position(|k| k.name() == row.kernel);
        (kernel, row.scenario.clone())
    });

    rows.push(dashboards);
    let tables_started = Instant::now();
    let (ok, got) = match crate::coverage::write() {
        Ok(tables) => {
            println!(
                "\ntest: coverage of this run's kernels (target/lab/coverage.md, the README):\n{tables}"
            );
            (true, "written to target/lab/coverage.md and the README".to_owned())
        }
        Err(error) => (false, format!("{error:#}")),
    };
    let (expected, elapsed) = ("pass".into(), tables_started.elapsed());
    rows.push(Row {
        kernel: "host",
        scenario: "coverage tables".into(),
        expected,
        got,
        ok,
        elapsed,
        console: None,
    });

    println!(
        "\n{:<11} {:<26} {:<8} {:<6} {:>6}  what the lab saw",
        "kernel", "scenario", "expected", "ok", "time"
    );
    for row in &rows {
        println!(
            "{:<11} {:<26} {:<8} {:<6} {:>5}s  {}",
            row.kernel,
            row.scenario,
            row.expected,
            if row.ok { "yes" } else { "NO" },
            row.elapsed.as_secs(),
            row.got
        );
    }
    for row in rows.iter().filter(|row| !row.ok) {
        print_tail(row);
    }
    let failed = rows.iter().filter(|row| !row.ok).count();
    println!("\ntest: whole suite took {} s ({})", started.elapsed().as_secs(), phases.ended.join(", "));
    println!("{} passed, {failed} failed", rows.len() - failed);
    if failed > 0 {
        bail!("{failed} VM scenario(s) did not do what they should");
    }
    Ok(())
}

/// Every kernel the scenarios name, with its image, in [`kernel::Flavour::ALL`]
/// order. Our kernel builds (on every core: the longest step when the cache
/// is cold) while the stock ones download and get their images beside it:
/// those wait on the network and the disk more than on a core.
fn guests(
    scenarios: &[scenario::Scenario],
    tools: &setup::Tools,
    kernel_source: Option<&std::path::Path>,
) -> Result<Vec<(kernel::GuestKernel, std::path::PathBuf)>> {
    let ready = |flavour| -> Result<_> {
        let guest = kernel::get(flavour, tools, kernel_source)?;
        let initramfs = image::build(&guest, tools)?;
        Ok((guest, initramfs))
    };
    let needed: Vec<_> = kernel::Flavour::ALL
        .into_iter()
        .filter(|flavour| scenarios.iter().any(|s| s.kernels.contains(flavour)))
        .collect();
    let (built, stock): (Vec<_>, Vec<_>) =
        needed.into_iter().partition(|flavour| *flavour == kernel::Flavour::Custom);
    std::thread::scope(|scope| {
        let built: Vec<_> = built.into_iter().map(|flavour| scope.spawn(move || ready(flavour))).collect();
        let stock: Vec<_> = stock.into_iter().map(ready).collect();
        built
            .into_iter()
            .map(|build| build.join().expect("building a kernel does not panic"))
            .chain(stock)
            .collect()
    })
}

/// Where the suite's time went, phase by phase ("unit tests 160 s").
struct Phases {
    ended: Vec<String>,
    since: Instant,
}

impl Default for Phases {
    fn default() -> Phases {
        Phases { ended: Vec::new(), since: Instant::now() }
    }
}

impl Phases {
    /// The phase that began where the last one ended is over.
    fn end(&mut self, name: &str) {
        self.ended.push(format!("{name} {} s", self.since.elapsed().as_secs()));
        self.since = Instant::now();
    }
}

/// VMs at once: each runs TCG in one host thread, so one per core.
const LANES: usize = 2;

/// Runs every (kernel, image, scenario) job, [`LANES`] VMs at a time, and
/// hands each row to `finished` as it ends; any VM that cannot run at all
/// fails the suite.
fn run_vms(
    jobs: &[(&kernel::GuestKernel, &std::path::PathBuf, &scenario::Scenario)],
    finished: &(dyn Fn(&Row) + Sync),
) -> Result<Vec<Row>> {
    let next = std::sync::Mutex::new(jobs.iter());
    let rows = std::sync::Mutex::new(Vec::new());
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..LANES {
            scope.spawn(|| loop {
                let Some((guest, initramfs, scenario)) = next.lock().expect("no lane panics").next() else {
                    break;
                };
                match vm::run(guest, initramfs, scenario, vm::Clock::Host) {
                    Ok(outcome) => {
                        let row = judge(guest.flavour.name(), scenario, &outcome);
                        finished(&row);
                        rows.lock().expect("no lane panics").push(row);
                    }
                    Err(error) => errors.lock().expect("no lane panics").push(format!(
                        "{} on {}: {error:#}",
                        scenario.name,
                        guest.flavour.name()
                    )),
                }
            });
        }
    });
    let errors = errors.into_inner().expect("no lane panics");
    if !errors.is_empty() {
        bail!("VMs that could not run: {}", errors.join("; "));
    }
    Ok(rows.into_inner().expect("no lane panics"))
}

/// Whether a row is the one whose trace the dashboards check replays.
fn is_fio_run(kernel: &str, scenario: &str) -> bool {
    kernel == "custom" && scenario == "fio-run"
}

/// The dashboards check on the trace this run's fio-run scenario recorded.
fn dashboards_row(fio_run_passed: bool) -> Row {
    let started = Instant::now();
    let trace = crate::project_root().join("target/lab/custom/fio-run/outbox/fallback.daxtrace");
    let outcome = if fio_run_passed {
        crate::dashboards::check(&trace)
    } else {
        Err(anyhow::anyhow!("no trace to replay: the fio-run scenario did not pass"))
    };
    let (ok, got) = match outcome {
        Ok(summary) => (true, summary),
        Err(error) => (false, format!("{error:#}")),
    };
    Row {
        kernel: "host",
        scenario: "dashboards".into(),
        expected: "pass".into(),
        got,
        ok,
        elapsed: started.elapsed(),
        console: None,
    }
}

fn judge(kernel: &'static str, scenario: &scenario::Scenario, outcome: &vm::Outcome) -> Row {
    let (expected, ok, got) = match (&scenario.expect_failure, &outcome.failure) {
        (None, None) => ("pass", true, outcome.results.join("; ")),
        (None, Some(why)) => ("pass", false, why.clone()),
        (Some(want), Some(why)) => ("failure", why.contains(want.as_str()), why.clone()),
        (Some(want), None) => {
            ("failure", false, format!("passed, but the lab should have failed it with {want:?}"))
        }
    };
    Row {
        kernel,
        scenario: scenario.name.clone(),
        expected: expected.into(),
        got,
        ok,
        elapsed: outcome.elapsed,
        console: Some(outcome.out_dir.join("console.log")),
    }
}

/// Console lines of a failed run shown after the table: the two lanes'
/// lines are interleaved above it, and CI keeps only its own output.
const TAIL_LINES: usize = 40;

fn print_tail(row: &Row) {
    let Some(console) = &row.console else { return };
    let text = std::fs::read_to_string(console).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    println!(
        "\ntest: the last {} console lines of {}/{} ({}):",
        lines.len() - from,
        row.kernel,
        row.scenario,
        console.display()
    );
    for line in &lines[from..] {
        println!("  {line}");
    }
}
