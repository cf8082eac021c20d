//! The lab's benchmarks, each one guest boot under QEMU's icount
//! ([`vm::Clock::Icount`]), where guest time counts instructions and fio's
//! bandwidth repeats from run to run.
//!
//! `cargo xtask bench seed`: the seed's result, its fio job with 2 MiB pages
//! against the layout where every PMD fault falls back, as a ratio next to
//! the one the seed measured on real pmem.
//!
//! `cargo xtask bench rss`: dax-probe's memory over an hour of live
//! `check` and `serve` (host clock: memory, not time, is measured).
//!
//! `cargo xtask bench overhead`: what watching costs the workload.
//! `lab/benches/overhead.sh` runs the seed's fio job on the 2 MiB-aligned and
//! on the fallback (PTE-heavy) layout, alone and under every way of
//! watching it, two rounds each, interleaved. dax-probe runs at each step
//! of its cost ladder (`record --stage`: attach, programs, ring, full; with
//! the kernel's BPF statistics off), so the table says where its cost goes,
//! with two bounds beside it (the programs with the statistics on and no
//! record; only a fault's end sent, `--stage fault-end`), and then as users
//! run it (statistics on, each program's share printed
//! in the guest's console); then the counting mode as users run it (`run
//! --count`), without and with its per-process and per-file breakdown.
//! The cost of a way is the read
//! bandwidth it takes from fio, against fio alone in the same boot; the
//! last line sums it up for the fallback layout, where events are many.

use std::{collections::BTreeMap, path::Path};

use anyhow::{bail, Context, Result};

use crate::{image, kernel, scenario, setup, vm};

/// The ways of watching, in the table's order; `alone` is the baseline.
const WAYS: &[(&str, &str)] = &[
    ("alone", "nothing attached"),
    ("tracefs", "tracefs: fs_dax events into its buffer, no reader"),
    ("trace-cmd", "trace-cmd record -e fs_dax (a reader, like ours)"),
    ("attach", "dax-probe, every program returns at once (the floor)"),
    ("programs", "... the programs run, reserve nothing"),
    ("programs-stats", "... the same, with the kernel's BPF statistics on (`record` before any record)"),
    ("fault-end", "... only a fault's end reaches user space, counted (one fused record a fault, at best)"),
    ("ring", "... records reach user space, which only counts them"),
    ("stream", "... every event into a trace file"),
    ("stats", "dax-probe record as users run it: the same, with the kernel's BPF statistics on"),
    ("count", "dax-probe run --count: counters in the kernel, no stream, PTE latency sampled 10 %"),
    ("count-timed", "... every PTE fault timed (--latency-sample 100)"),
    ("count-breakdown", "... sampled, with the per-process and per-file breakdown"),
];

/// One fio run: `result: overhead LAYOUT WAY ROUND read_kib=N events=N lost=N [bpf_s=S runs=N]`.
#[derive(Debug, PartialEq)]
struct Run {
    layout: String,
    way: String,
    read_kib: f64,
    events: u64,
    lost: Option<u64>,
    /// What the kernel's BPF statistics counted: the programs' seconds and runs.
    programs: Option<(f64, u64)>,
}

fn parse(line: &str) -> Option<Run> {
    let mut words = line.strip_prefix("result: overhead ")?.split_whitespace();
    let (layout, way, _round) = (words.next()?, words.next()?, words.next()?);
    let mut value = |key: &str| words.next()?.strip_prefix(key)?.strip_prefix('=').map(str::to_owned);
    let read_kib = value("read_kib")?.parse().ok()?;
    let events = value("events")?.parse().ok()?;
    let lost = value("lost")?.parse().ok();
    let programs = match value("bpf_s") {
        Some(seconds) => Some((seconds.parse().ok()?, value("runs")?.parse().ok()?)),
        None => None,
    };
    Some(Run { layout: layout.into(), way: way.into(), read_kib, events, lost, programs })
}

/// The rounds of one (layout, way).
#[derive(Default)]
struct Rounds {
    read_mib: Vec<f64>,
    events: u64,
    lost: u64,
    /// The programs' (seconds, runs) of each round, where counted.
    programs: Vec<(f64, u64)>,
}

impl Rounds {
    fn mean(&self) -> f64 {
        self.read_mib.iter().sum::<f64>() / self.read_mib.len().max(1) as f64
    }

    fn range(&self) -> String {
        let low = self.read_mib.iter().copied().fold(f64::INFINITY, f64::min);
        let high = self.read_mib.iter().copied().fold(0.0, f64::max);
        if high - low < 0.05 {
            format!("{low:.1}")
        } else {
            format!("{low:.1}-{high:.1}")
        }
    }
}

/// The seed thread's fio read bandwidth on real pmem, MB/s: PTE faults
/// only, then with PMD faults re-enabled.
const SEED_PTE_MB: f64 = 557.0;
const SEED_PMD_MB: f64 = 1406.0;

/// Boots `flavour` under icount and runs `lab/benches/NAME.sh`; its `result:` lines.
fn boot(name: &str, flavour: kernel::Flavour, kernel_source: Option<&Path>) -> Result<(String, Vec<String>)> {
    boot_with(name, flavour, kernel_source, vm::Clock::Icount)
}

fn boot_with(
    name: &str,
    flavour: kernel::Flavour,
    kernel_source: Option<&Path>,
    clock: vm::Clock,
) -> Result<(String, Vec<String>)> {
    let tools = setup::ensure()?;
    let guest = kernel::get(flavour, &tools, kernel_source)?;
    let initramfs = image::build(&guest, &tools)?;
    let outcome = vm::run(&guest, &initramfs, &scenario::bench(name)?, clock)?;
    if let Some(why) = &outcome.failure {
        bail!("the {name} bench failed in the guest: {why} (see {})", outcome.out_dir.display());
    }
    Ok((format!("{} kernel {}", flavour.name(), guest.release), outcome.results))
}

pub fn seed(flavour: kernel::Flavour, kernel_source: Option<&Path>) -> Result<()> {
    let (kernel, results) = boot("seed", flavour, kernel_source)?;
    let mut rounds: BTreeMap<String, Rounds> = BTreeMap::new();
    for line in &results {
        let (layout, read_kib) =
            parse_seed(line).with_context(|| format!("cannot read the bench's line {line:?}"))?;
        rounds.entry(layout).or_default().read_mib.push(read_kib / 1024.0);
    }
    let mean = |layout: &str| {
        rounds.get(layout).map(Rounds::mean).with_context(|| format!("no run on the {layout} layout"))
    };
    let (pmd, pte) = (mean("aligned")?, mean("plain")?);
    println!(
        "\nbench seed: the seed's fio job, nothing attached, {kernel}, icount (guest time = instructions)"
    );
    println!("| layout | fio read MiB/s |\n|---|---|");
    println!("| 2 MiB aligned: PMD faults | {} |", rounds["aligned"].range());
    println!("| extents not aligned: every PMD fault falls back to PTEs | {} |", rounds["plain"].range());
    println!(
        "seed: PMD/PTE read bandwidth {:.2}x here; the seed measured {:.2}x on real pmem ({SEED_PMD_MB} against {SEED_PTE_MB} MB/s)",
        pmd / pte,
        SEED_PMD_MB / SEED_PTE_MB
    );
    Ok(())
}

/// The RSS after an hour of live `check` and `serve`, against the RSS
/// after 10 s: the target is at most 1.2x.
const RSS_TARGET: f64 = 1.2;

/// `cargo xtask bench rss`: an hour of wall time (host clock, not icount:
/// memory, not speed, is measured).
pub fn rss(flavour: kernel::Flavour, kernel_source: Option<&Path>) -> Result<()> {
    let (kernel, results) = boot_with("rss", flavour, kernel_source, vm::Clock::Host)?;
    let mut samples = Vec::new();
    for line in &results {
        if let Some(verdict) = line.strip_prefix("result: rss verdict ") {
            println!("rss: check's end: {verdict}");
            continue;
        }
        let sample = parse_rss(line).with_context(|| format!("cannot read the bench's line {line:?}"))?;
        samples.push(sample);
    }
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        bail!("the rss bench gave no sample");
    };
    println!("\nbench rss: live check and serve for an hour while fio loops, {kernel}");
    println!("| seconds | check RSS KiB | serve RSS KiB |\n|---|---|---|");
    for (seconds, check, serve) in &samples {
        println!("| {seconds} | {check} | {serve} |");
    }
    let ratio = |end: u64, start: u64| end as f64 / start.max(1) as f64;
    println!(
        "rss: check {:.2}x, serve {:.2}x of their RSS after 10 s, after {} s (target <= {RSS_TARGET}x)",
        ratio(last.1, first.1),
        ratio(last.2, first.2),
        last.0
    );
    Ok(())
}

/// `result: rss SECONDS check=KIB serve=KIB`.
fn parse_rss(line: &str) -> Option<(u64, u64, u64)> {
    let mut words = line.strip_prefix("result: rss ")?.split_whitespace();
    let seconds = words.next()?.parse().ok()?;
    let check = words.next()?.strip_prefix("check=")?.parse().ok()?;
    let serve = words.next()?.strip_prefix("serve=")?.parse().ok()?;
    Some((seconds, check, serve))
}

/// `result: seed LAYOUT ROUND read_kib=N`: the layout and its read KiB/s.
fn parse_seed(line: &str) -> Option<(String, f64)> {
    let mut words = line.strip_prefix("result: seed ")?.split_whitespace();
    let (layout, _round) = (words.next()?, words.next()?);
    let read_kib = words.next()?.strip_prefix("read_kib=")?.parse().ok()?;
    Some((layout.into(), read_kib))
}

pub fn overhead(flavour: kernel::Flavour, kernel_source: Option<&Path>) -> Result<()> {
    let (kernel, results) = boot("overhead", flavour, kernel_source)?;
    let mut table: BTreeMap<(String, String), Rounds> = BTreeMap::new();
    for line in &results {
        let run = parse(line).with_context(|| format!("cannot read the bench's line {line:?}"))?;
        let rounds = table.entry((run.layout, run.way)).or_default();
        rounds.read_mib.push(run.read_kib / 1024.0);
        rounds.events = rounds.events.max(run.events);
        rounds.lost += run.lost.unwrap_or(0);
        rounds.programs.extend(run.programs);
    }
    println!("\nbench overhead: the seed's fio job, {kernel}, icount (guest time = instructions)");
    let mut cost = BTreeMap::new();
    for layout in ["aligned", "plain"] {
        let alone = table
            .get(&(layout.into(), "alone".into()))
            .with_context(|| format!("no run of fio alone on the {layout} layout"))?
            .mean();
        println!(
            "\n{layout} layout{}",
            if layout == "plain" {
                " (every PMD fault falls back: 65 536 PTE faults)"
            } else {
                " (2 MiB aligned)"
            }
        );
        println!("| way | fio read MiB/s | cost | events | lost |\n|---|---|---|---|---|");
        for (way, what) in WAYS {
            let Some(rounds) = table.get(&(layout.into(), (*way).into())) else {
                bail!("no run of {way} on the {layout} layout");
            };
            let percent = 100.0 * (1.0 - rounds.mean() / alone);
            cost.insert((layout, *way), (percent, rounds.lost));
            let cost = if *way == "alone" { "-".to_owned() } else { format!("{percent:.1} %") };
            println!("| {what} | {} | {cost} | {} | {} |", rounds.range(), rounds.events, rounds.lost);
        }
        if let Some(&(seconds, runs)) =
            table.get(&(layout.into(), "stats".into())).and_then(|r| r.programs.first())
        {
            let events = table[&(layout.into(), "stats".into())].events.max(1);
            println!(
                "the programs by the kernel's BPF statistics (round 1): {seconds:.3} s in {runs} runs: \
                 {:.0} ns a run, {:.0} ns an event (guest time)",
                seconds * 1e9 / runs.max(1) as f64,
                seconds * 1e9 / events as f64
            );
        }
    }
    let of = |way: &str| cost.get(&("plain", way)).copied().unwrap_or_default();
    // The stream is `record` as users run it; the floor and the ladder run
    // without the statistics' clock reads.
    let (tracefs, floor, (stream, lost)) = (of("tracefs").0, of("attach").0, of("stats"));
    let (goal, target) = if floor > tracefs {
        let goal = 1.25 * floor;
        let target = format!(
            "the floor ({floor:.1} %) is above tracefs, so the target is stream <= 1.25 x floor = {goal:.1} %"
        );
        (goal, target)
    } else {
        (tracefs, format!("the target is stream <= tracefs ({tracefs:.1} %)"))
    };
    let ((count, count_lost), breakdown, timed) = (of("count"), of("count-breakdown").0, of("count-timed").0);
    println!("\n{target}; the floor: {floor:.1} %");
    // What no cheaper record can undercut: with every hook attached, the
    // programs with the statistics `record` keeps on, and one record a fault.
    let (bare, one_record) = (of("programs-stats").0, of("fault-end").0);
    println!(
        "with every hook attached: the programs and their statistics, no record, {bare:.1} % ({}); \
         one record a fault, counted only, {one_record:.1} % ({})",
        against(bare, goal),
        against(one_record, goal)
    );
    println!(
        "the counting mode's target is count <= 3 % ({count:.1} %; timing every PTE fault: {timed:.1} %); with the breakdown <= tracefs / 2 = {:.1} % ({breakdown:.1} %)",
        tracefs / 2.0
    );
    // Events lost by the stream, and hits the counting mode did not count.
    println!(
        "overhead: tracefs {tracefs:.1}%, stream {stream:.1}%, count {count:.1}%, lost {}",
        lost + count_lost
    );
    Ok(())
}

/// Where a cost stands against the stream's target.
fn against(cost: f64, goal: f64) -> &'static str {
    if cost > goal {
        "above the target"
    } else {
        "within the target"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_guests_lines() {
        let run = parse("result: overhead plain stream 2 read_kib=85400 events=394366 lost=0").unwrap();
        assert_eq!(run.layout, "plain");
        assert_eq!(run.way, "stream");
        assert_eq!(run.read_kib, 85400.0);
        assert_eq!((run.events, run.lost, run.programs), (394366, Some(0), None));
        let run = parse(
            "result: overhead plain stats 1 read_kib=85400 events=328064 lost=0 bpf_s=0.512 runs=590000",
        );
        assert_eq!(run.unwrap().programs, Some((0.512, 590000)));
        assert_eq!(parse("result: overhead plain stats 1 read_kib=1 events=1 lost=0 bpf_s=0.5"), None);
        assert_eq!(parse("result: overhead plain alone 1 read_kib=1 events=0 lost=-").unwrap().lost, None);
        assert_eq!(parse("result: overhead plain alone 1 read_kib= events=0 lost=0"), None);
        assert_eq!(parse("result: 128 PMD faults"), None);
    }

    #[test]
    fn reads_the_rss_lines() {
        assert_eq!(parse_rss("result: rss 10 check=41234 serve=39000"), Some((10, 41234, 39000)));
        assert_eq!(parse_rss("result: rss 10 check= serve=39000"), None);
    }

    #[test]
    fn reads_the_seed_lines() {
        let (layout, read_kib) = parse_seed("result: seed aligned 1 read_kib=592524").unwrap();
        assert_eq!((layout.as_str(), read_kib), ("aligned", 592524.0));
        assert_eq!(parse_seed("result: seed aligned 1 read_kib=fast"), None);
    }
}
