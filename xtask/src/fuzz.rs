//! `cargo xtask fuzz`: the fuzz targets of `fuzz/` under libFuzzer.
//!
//! The targets are built with the coverage instrumentation libFuzzer steers
//! by (the flags cargo-fuzz passes; all stable rustc flags), with debug
//! assertions and overflow checks on, so that an overflow is a crash and not
//! a silent wrap. Each runs on its seed corpus (`fuzz/corpus/TARGET`, real
//! traces and tool output) plus a working corpus in the cache, with a
//! memory limit and a per-input time limit: a hang or a blow-up is a crash
//! too. A crashing input is copied into `fuzz/regressions/TARGET/`, where
//! `cargo test` runs it from then on, and the run fails naming it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::{cache, cmd};

pub const TARGETS: [&str; 3] = ["trace_file", "trace_text", "analysis"];

/// How long each target runs.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Runs(u64),
    Time(Duration),
}

/// What one target's run did.
pub struct Outcome {
    pub target: &'static str,
    pub runs: u64,
    pub seconds: u64,
}

const HOST: &str = "x86_64-unknown-linux-gnu";

/// The sanitizer-coverage flags cargo-fuzz passes, and the checks.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg=fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// Builds the targets; their binaries' folder.
fn build() -> Result<PathBuf> {
    let root = crate::project_root();
    let target_dir = root.join("target/fuzz");
    // Only the host target's crates get the flags: build scripts and proc
    // macros run uninstrumented, as with cargo-fuzz.
    cmd::run(
        Command::new(env!("CARGO"))
            .args(["build", "--release", "--package", "dax-probe-fuzz", "--features", "libfuzzer", "--bins"])
            .args(["--target", HOST])
            .arg("--target-dir")
            .arg(&target_dir)
            .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\u{1f}"))
            .current_dir(root),
    )?;
    Ok(target_dir.join(HOST).join("release"))
}

/// Runs `targets` (all when empty) for `budget` each.
pub fn run(targets: &[String], budget: Budget) -> Result<Vec<Outcome>> {
    let targets: Vec<&'static str> =
        if targets.is_empty() {
            TARGETS.to_vec()
        } else {
            targets
                .iter()
                .map(|name| {
                    TARGETS.iter().copied().find(|t| t == name).with_context(|| {
                        format!("no fuzz target {name}: the targets are {}", TARGETS.join(", "))
                    })
                })
                .collect::<Result<_>>()?
        };
    let bin = build()?;
    // A target runs on one core: as many at once as there are cores.
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let mut outcomes = Vec::new();
    for batch in targets.chunks(cores) {
        std::thread::scope(|scope| {
            let runs: Vec<_> =
                batch.iter().map(|&target| scope.spawn(|| run_one(&bin, target, budget))).collect();
            outcomes.extend(runs.into_iter().map(|run| run.join().expect("a fuzz run does not panic")));
        });
    }
    outcomes.into_iter().collect()
}

fn run_one(bin: &Path, target: &'static str, budget: Budget) -> Result<Outcome> {
    let fuzz_dir = crate::project_root().join("fuzz");
    let seeds = fuzz_dir.join("corpus").join(target);
    let working = cache::dir(&["fuzz", target])?;
    let artifacts = tempdir(target)?;
    let mut command = Command::new(bin.join(target));
    match budget {
        Budget::Runs(runs) => command.arg(format!("-runs={runs}")),
        Budget::Time(time) => command.arg(format!("-max_total_time={}", time.as_secs().max(1))),
    };
    command
        .args(["-rss_limit_mb=1024", "-timeout=10", "-max_len=65536", "-print_final_stats=1"])
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&working)
        .arg(&seeds);
    println!("fuzz: {target}: $ {}", cmd::describe(&command));
    let output = command.output().with_context(|| format!("cannot run the {target} fuzz target"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let (runs, seconds) = final_stats(&log);
    if !output.status.success() {
        let kept = keep_crashes(&artifacts, &fuzz_dir.join("regressions").join(target))?;
        let tail: Vec<&str> = log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
        bail!(
            "fuzz target {target} crashed ({}); its input is kept as a regression test: {}\n{}",
            output.status,
            kept.join(", "),
            tail.join("\n")
        );
    }
    println!("fuzz: {target}: {runs} executions in {seconds} s, no crash");
    let _ = fs::remove_dir_all(&artifacts);
    Ok(Outcome { target, runs, seconds })
}

/// libFuzzer's `stat::number_of_executed_units` and `Done N runs in S second(s)`.
fn final_stats(log: &str) -> (u64, u64) {
    let mut runs = 0;
    let mut seconds = 0;
    for line in log.lines() {
        if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
            runs = value.trim().parse().unwrap_or(runs);
        }
        if let Some(rest) = line.strip_prefix("Done ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            if let [n, "runs", "in", s, ..] = words[..] {
                runs = n.parse().unwrap_or(runs);
                seconds = s.parse().unwrap_or(seconds);
            }
        }
    }
    (runs, seconds)
}

/// Copies libFuzzer's crash, timeout and out-of-memory inputs into `into`.
fn keep_crashes(artifacts: &Path, into: &Path) -> Result<Vec<String>> {
    fs::create_dir_all(into)?;
    let mut kept = Vec::new();
    for entry in fs::read_dir(artifacts)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        fs::copy(&path, into.join(&name))?;
        kept.push(into.join(&name).display().to_string());
    }
    if kept.is_empty() {
        kept.push("(libFuzzer left no input: see its log)".to_owned());
    }
    Ok(kept)
}

fn tempdir(target: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("dax-probe-fuzz-{target}-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzers_final_lines() {
        let log = "#1048576\tpulse  cov: 812 ft: 2301 corp: 310/41Kb exec/s: 87381 rss: 61Mb\n\
                   Done 10000000 runs in 118 second(s)\n\
                   stat::number_of_executed_units: 10000000\n\
                   stat::peak_rss_mb:              61\n";
        assert_eq!(final_stats(log), (10_000_000, 118));
        assert_eq!(final_stats("INFO: -max_total_time=20\n"), (0, 0));
    }
}
