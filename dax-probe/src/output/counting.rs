//! The counting mode, rendered: `run --count`'s summary (text or JSON),
//! `top`'s screen, and the latency histograms both show.

use serde_json::{json, Value};

use dax_probe_common::{
    count::{Size, Tally, Totals, LATENCY_BUCKETS, SIZE_COUNT},
    fallback::Reason,
    Kind, TRACEPOINTS,
};

use crate::{
    analysis::Faults,
    kernel::device_text,
    output::{
        report,
        run::{cost_json, cost_line, RunSummary},
    },
    source::counting::{self, Counts, Coverage},
};

/// What `check` would need and the counting mode does not keep.
pub const NO_INVARIANTS: &str =
    "invariants: not checked (the counting mode keeps no events; the invariants need the event stream: run without --count)";

const SIZES: [(Size, &str); SIZE_COUNT] = [(Size::Pte, "pte"), (Size::Pmd, "pmd")];

/// `run --count`'s summary of a finished session.
pub fn run(coverage: &Coverage, counts: &Counts, run: &RunSummary, as_json: bool) -> String {
    if as_json {
        let mut value = json(coverage, counts);
        value["command"] = json!(run.command);
        value["command_exit"] = json!(run.exit_code);
        value["fio"] = run.fio.map_or(Value::Null, |fio| fio.json());
        value["probe_cost"] = cost_json(run.cost);
        return format!("{value:#}\n");
    }
    let mut lines = vec![
        String::new(),
        format!(
            "dax-probe: counting summary of `{}` ({}), {:.1} s",
            run.command,
            run.status,
            counts.elapsed.as_secs_f64()
        ),
    ];
    if let Some(fio) = run.fio {
        lines.push(format!("fio: read {}; write {}", fio.read.text(), fio.write.text()));
    }
    lines.extend(totals_lines(coverage, counts));
    for (size, name) in SIZES {
        lines.extend(histogram_lines(counts, size, name));
    }
    lines.extend(breakdown_lines(coverage, counts, 10));
    lines.push(cost_line(run.cost));
    lines.push(NO_INVARIANTS.to_owned());
    lines.join("\n") + "\n"
}

/// Faults, fallbacks by reason, hole loads and what was not counted.
fn totals_lines(coverage: &Coverage, counts: &Counts) -> Vec<String> {
    let totals = &counts.totals;
    let mut lines = vec![report::faults_line(&Faults::of_tally(&Tally { faults: totals.faults }))];
    lines.extend(report::reason_lines(&totals.fallbacks));
    if !coverage.fallback_probes() {
        lines.push(format!("  (fallback hooks {})", coverage.reason_hooks));
    }
    let hits = |kind: Kind| totals.events[kind as usize];
    lines.push(format!(
        "hole loads: 2 MiB zero page {}, its fallbacks {}, 4 KiB {}; writeback: ranges {}, entries {}",
        hits(Kind::PmdLoadHole),
        hits(Kind::PmdLoadHoleFallback),
        hits(Kind::LoadHole),
        hits(Kind::WritebackRange),
        hits(Kind::WritebackOne),
    ));
    lines.push(format!(
        "not counted: {} program runs the kernel skipped{}",
        counts.skipped,
        if counts.skipped > 0 { " (the counts are lower bounds)" } else { "" },
    ));
    lines.push(timed_line(counts));
    lines
}

/// How many faults of each size the histograms hold, and why not all.
fn timed_line(counts: &Counts) -> String {
    let totals = &counts.totals;
    let size_text = |size: Size, name: &str, why: &str| {
        let (timed, all) = (timed(totals, size), totals.faults[size as usize].iter().sum::<u64>());
        let why = if timed < all { format!(" ({why})") } else { String::new() };
        format!("{name} {timed} of {all}{why}")
    };
    let pte_why = match counts.latency_sample {
        100 => "the rest begun before the probe".to_owned(),
        0 => "none: --latency-sample 0".to_owned(),
        percent => format!("a sample: {percent} % of every second, --latency-sample"),
    };
    format!(
        "timed: {}, {}",
        size_text(Size::Pte, "pte", &pte_why),
        size_text(Size::Pmd, "pmd", "the rest begun before the probe")
    )
}

/// The faults of `size` the latency histogram holds.
fn timed(totals: &Totals, size: Size) -> u64 {
    totals.latency[size as usize].iter().sum()
}

/// A bpftrace-style log2 histogram of one size's fault latencies, in ns.
pub fn histogram_lines(counts: &Counts, size: Size, name: &str) -> Vec<String> {
    let buckets = &counts.totals.latency[size as usize];
    let (Some(first), Some(last)) =
        (buckets.iter().position(|&n| n > 0), buckets.iter().rposition(|&n| n > 0))
    else {
        return vec![format!("{name} fault latency: no timed fault")];
    };
    let widest = buckets.iter().copied().max().unwrap_or(1).max(1);
    let mut lines = vec![format!("{name} fault latency (ns):")];
    for (bucket, &n) in buckets.iter().enumerate().take(last + 1).skip(first) {
        let bar = "@".repeat(((n * 40).div_ceil(widest)) as usize);
        lines.push(format!("  {:<16} {n:>10} |{bar:<40}|", bucket_text(bucket)));
    }
    lines
}

/// "[4K, 8K)": bucket b > 0 holds [2^(b-1), 2^b) ns; the last is open-ended.
fn bucket_text(bucket: usize) -> String {
    fn short(ns: u64) -> String {
        match ns.trailing_zeros() {
            30.. => format!("{}G", ns >> 30),
            20.. => format!("{}M", ns >> 20),
            10.. => format!("{}K", ns >> 10),
            _ => ns.to_string(),
        }
    }
    match bucket {
        0 => "[0]".to_owned(),
        b if b == LATENCY_BUCKETS - 1 => format!("[{}, ...)", short(1 << (b - 1))),
        b => format!("[{}, {})", short(1 << (b - 1)), short(1 << b)),
    }
}

/// The busiest processes and files, `top` of each (with the breakdown on).
fn breakdown_lines(coverage: &Coverage, counts: &Counts, top: usize) -> Vec<String> {
    let mut lines = Vec::new();
    if !counts.processes.is_empty() {
        lines.push("busiest processes:".to_owned());
        for (tgid, comm, tally) in counts.processes.iter().take(top) {
            lines.push(format!("  {tgid:>7} {comm:<16} {}", tally_text(tally)));
        }
    }
    if !counts.files.is_empty() {
        lines.push("busiest files:".to_owned());
        for ((dev, ino), tally) in counts.files.iter().take(top) {
            let fstype = coverage.filesystem(*dev).map_or("?", |fs| &fs.fstype);
            lines.push(format!("  {:>7} {fstype:<5} {ino:<#16x} {}", device_text(*dev), tally_text(tally)));
        }
    }
    lines
}

fn tally_text(tally: &Tally) -> String {
    let f = Faults::of_tally(tally);
    format!("pmd {} (fallback {}), pte {}", f.pmd, f.pmd_fallback, f.pte)
}

/// `top`'s screen: rates over the last interval, totals since the start.
pub fn top_screen(coverage: &Coverage, now: &Counts, before: Option<&Counts>) -> String {
    let interval = now.elapsed.saturating_sub(before.map_or(Default::default(), |b| b.elapsed));
    let delta = before.map_or(now.totals, |b| now.totals.since(&b.totals));
    let seconds = interval.as_secs_f64().max(1e-9);
    let rate = |n: u64| n as f64 / seconds;
    let recent = Faults::of_tally(&Tally { faults: delta.faults });
    let pmd_share = match recent.pmd {
        0 => "-".to_owned(),
        pmd => format!("{:.1}%", 100.0 * recent.pmd_nopage as f64 / pmd as f64),
    };
    let mut lines = vec![
        format!(
            "dax-probe top: kernel {}, {:.0} s, counting mode (no invariants checked)",
            coverage.kernel,
            now.elapsed.as_secs_f64()
        ),
        format!(
            "faults/s: pte {:.0}, pmd {:.0} (mapped 2 MiB {:.0}, fallback {:.0}); PMD faults served huge: {pmd_share}",
            rate(recent.pte),
            rate(recent.pmd),
            rate(recent.pmd_nopage),
            rate(recent.pmd_fallback),
        ),
    ];
    let reasons: Vec<String> = report::reason_rows(&delta.fallbacks)
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{} {:.0}/s", reason.name(), rate(n)))
        .collect();
    lines.push(format!(
        "fallbacks: {}",
        if reasons.is_empty() { "none".to_owned() } else { reasons.join(", ") }
    ));
    lines.push("since the start:".to_owned());
    lines.extend(totals_lines(coverage, now).into_iter().map(|line| format!("  {line}")));
    lines.extend(breakdown_lines(coverage, now, 8));
    lines.join("\n") + "\n"
}

/// The counts as JSON: the same names as the stream's report where the
/// meaning is the same.
pub fn json(coverage: &Coverage, counts: &Counts) -> Value {
    let totals = &counts.totals;
    let latency: serde_json::Map<String, Value> = SIZES
        .iter()
        .map(|(size, name)| {
            let buckets: Vec<Value> = totals.latency[*size as usize]
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(bucket, n)| json!({ "bucket": bucket_text(bucket), "count": n }))
                .collect();
            (name.to_string(), json!(buckets))
        })
        .collect();
    let tally_json = |tally: &Tally| report::faults_json(&Faults::of_tally(tally));
    json!({
        "mode": "count",
        "kernel": coverage.kernel,
        "seconds": counts.elapsed.as_secs_f64(),
        "tracepoints": coverage.tracepoints,
        "tracepoints_missing": coverage.tracepoints_missing,
        "fallback_probes": coverage.fallback_probes(),
        "fallback_hooks": coverage.reason_hooks.to_string(),
        "faults": tally_json(&Tally { faults: totals.faults }),
        "fallback_reasons": Reason::ALL.iter().map(|r| (r.name().to_owned(), json!(totals.fallbacks[*r as usize]))).collect::<serde_json::Map<_, _>>(),
        "tracepoint_hits": TRACEPOINTS.iter().zip(totals.events).map(|(name, n)| (name.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "untimed": { "pte": totals.untimed[Size::Pte as usize], "pmd": totals.untimed[Size::Pmd as usize] },
        "timed": { "pte": timed(totals, Size::Pte), "pmd": timed(totals, Size::Pmd) },
        "latency_sample_percent": counts.latency_sample,
        "latency_ns": latency,
        "skipped_runs": counts.skipped,
        "processes": counts.processes.iter().map(|(tgid, comm, tally)| json!({ "tgid": tgid, "comm": comm, "faults": tally_json(tally), "total": counting::faults(tally) })).collect::<Vec<_>>(),
        "files": counts.files.iter().map(|((dev, ino), tally)| json!({ "dev": device_text(*dev), "filesystem": coverage.filesystem(*dev).map(|fs| &fs.fstype), "ino": ino, "faults": tally_json(tally), "total": counting::faults(tally) })).collect::<Vec<_>>(),
        "invariants": "not checked: the counting mode keeps no events",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::counting::ReasonHooks;
    use dax_probe_common::count::Outcome;
    use std::time::Duration;

    fn coverage() -> Coverage {
        Coverage {
            kernel: "7.2.13".into(),
            tracepoints: TRACEPOINTS.iter().map(|s| s.to_string()).collect(),
            tracepoints_missing: Vec::new(),
            reason_hooks: ReasonHooks::Missing("test".into()),
            breakdown: false,
            filesystems: Vec::new(),
        }
    }

    /// `pte` PTE faults mapped, `fallbacks` PMD faults fallen back (extent
    /// too short), after `seconds`.
    fn counts(pte: u64, fallbacks: u64, seconds: u64) -> Counts {
        let mut totals = Totals::ZERO;
        totals.faults[Size::Pte as usize][Outcome::Mapped as usize] = pte;
        totals.faults[Size::Pmd as usize][Outcome::Fallback as usize] = fallbacks;
        totals.fallbacks[Reason::ExtentTooShort as usize] = fallbacks;
        totals.latency[Size::Pte as usize][13] = pte;
        Counts {
            totals,
            processes: Vec::new(),
            files: Vec::new(),
            skipped: 0,
            elapsed: Duration::from_secs(seconds),
            latency_sample: 10,
        }
    }

    #[test]
    fn top_shows_rates_over_the_interval_and_totals_since_the_start() {
        let (before, now) = (counts(1000, 2, 1), counts(5000, 10, 3));
        let screen = top_screen(&coverage(), &now, Some(&before));
        assert!(
            screen.contains(
                "faults/s: pte 2000, pmd 4 (mapped 2 MiB 0, fallback 4); PMD faults served huge: 0.0%"
            ),
            "{screen}"
        );
        assert!(screen.contains("fallbacks: extent-too-short 4/s"), "{screen}");
        assert!(
            screen.contains("faults: pmd 10 (nopage 0, fallback 10, 100.0% fallback), pte 5000"),
            "{screen}"
        );
        assert!(screen.contains("(fallback hooks not attached (test)"), "{screen}");
        // No PMD fault in the interval: no share to show.
        let screen = top_screen(&coverage(), &counts(5000, 10, 4), Some(&now));
        assert!(screen.contains("PMD faults served huge: -"), "{screen}");
    }

    #[test]
    fn histograms_span_the_buckets_with_counts() {
        let lines = histogram_lines(&counts(7, 0, 1), Size::Pte, "pte");
        assert_eq!(lines[0], "pte fault latency (ns):");
        assert!(lines[1].starts_with("  [4K, 8K)"), "{lines:?}");
        assert!(lines[1].contains(" 7 |@@@@"), "{lines:?}");
        assert_eq!(
            histogram_lines(&counts(7, 0, 1), Size::Pmd, "pmd"),
            ["pmd fault latency: no timed fault"]
        );
    }

    #[test]
    fn bucket_labels() {
        assert_eq!(bucket_text(0), "[0]");
        assert_eq!(bucket_text(1), "[1, 2)");
        assert_eq!(bucket_text(11), "[1K, 2K)");
        assert_eq!(bucket_text(13), "[4K, 8K)");
        assert_eq!(bucket_text(LATENCY_BUCKETS - 1), "[256G, ...)");
    }

    #[test]
    fn the_timed_line_says_why_a_histogram_holds_fewer_faults() {
        let mut sampled = counts(1000, 2, 1);
        sampled.totals.latency[Size::Pte as usize][13] = 97;
        assert_eq!(
            timed_line(&sampled),
            "timed: pte 97 of 1000 (a sample: 10 % of every second, --latency-sample), pmd 0 of 2 (the rest begun before the probe)"
        );
        let all = Counts { latency_sample: 100, ..counts(1000, 0, 1) };
        assert_eq!(timed_line(&all), "timed: pte 1000 of 1000, pmd 0 of 0");
    }
}
