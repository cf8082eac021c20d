//! What `check` and `run` print: coverage, violations and, last, the
//! verdict line; or all of it as JSON. `run`'s summary adds the command's
//! own figures (fio's bandwidth) to the report's fault and reason lines.

use anyhow::Result;
use serde_json::{json, Value};

use crate::{
    analysis::{
        coverage,
        invariants::{Invariant, Violation},
        verdict::Verdict,
        Analysis,
    },
    event::Event,
    output::report,
    source::cost::{Cost, Statistics},
    stream::{Begin, Sink, Summary},
    workload::FioSummary,
};

/// The last line of `check` and `run`: "verdict: pass (0 violations, ...)".
/// A pass over part of the invariants says so where nobody can miss it.
pub fn verdict_line(verdict: &Verdict) -> String {
    let lost = match verdict.loss_unknown {
        true if verdict.lost > 0 => format!("{} lost events and more uncounted", verdict.lost),
        true => "lost events unknown (the trace does not count them)".to_owned(),
        false => format!("{} lost events", verdict.lost),
    };
    let mut counts = format!("{} violations, {lost}, {} events", verdict.violation_count(), verdict.events);
    if verdict.open_at_cut > 0 {
        counts.push_str(&format!(", {} open at the cut", verdict.open_at_cut));
    }
    if verdict.checked.len() < Invariant::ALL.len() {
        counts.push_str(&format!(
            "; {} of {} invariants checked",
            verdict.checked.len(),
            Invariant::ALL.len()
        ));
    }
    format!("verdict: {} ({counts})", verdict.word())
}

pub fn verdict_json(verdict: &Verdict) -> Value {
    let by_invariant: serde_json::Map<String, Value> = Invariant::ALL
        .iter()
        .map(|i| (i.name().to_owned(), json!(verdict.violations[*i as usize])))
        .collect();
    json!({
        "verdict": verdict.word(),
        "violations": verdict.violation_count(),
        "violations_by_invariant": by_invariant,
        "lost": verdict.lost,
        "loss_unknown": verdict.loss_unknown,
        "events": verdict.events,
        "open_at_cut": verdict.open_at_cut,
        "invariants_checked": verdict.checked.iter().map(|i| i.name()).collect::<Vec<_>>(),
        "invariants_not_checked": Invariant::ALL.iter().filter(|i| !verdict.checked.contains(i))
            .map(|i| i.name()).collect::<Vec<_>>(),
    })
}

/// The violations kept, then how many more were only counted; then the
/// same of the work in flight at the cut.
fn violation_lines(analysis: &Analysis) -> Vec<String> {
    let findings = analysis.findings();
    let mut lines: Vec<String> = findings.kept().iter().map(ToString::to_string).collect();
    let kept = findings.kept().len() as u64;
    if findings.total() > kept {
        lines.push(format!("({} more violations not shown)", findings.total() - kept));
    }
    lines.extend(findings.open().iter().map(ToString::to_string));
    let open = findings.open().len() as u64;
    if findings.open_count() > open {
        lines.push(format!("({} more open at the cut not shown)", findings.open_count() - open));
    }
    lines
}

/// `check`'s output for a finished analysis.
pub fn check(analysis: &Analysis, as_json: bool) -> String {
    let verdict = Verdict::of(analysis);
    let coverage = coverage::lines(analysis.recording());
    if as_json {
        let mut value = verdict_json(&verdict);
        value["coverage"] = json!(coverage);
        add_details(&mut value, analysis);
        return format!("{value:#}\n");
    }
    let mut lines: Vec<String> = coverage.iter().map(|line| format!("coverage: {line}")).collect();
    lines.extend(violation_lines(analysis));
    lines.push(verdict_line(&verdict));
    lines.join("\n") + "\n"
}

/// The violations kept and the findings open at the cut, each with its
/// events, into a verdict's JSON: what the text's violation lines say.
fn add_details(value: &mut Value, analysis: &Analysis) {
    let details = |found: &[Violation]| -> Value {
        found
            .iter()
            .map(|v| {
                json!({
                    "invariant": v.invariant.name(),
                    "what": v.what,
                    "entry": v.key.map(|key| key.to_string()),
                    "events": v.events.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    value["violation_details"] = details(analysis.findings().kept());
    value["open_at_cut_details"] = details(analysis.findings().open());
}

/// What `run` knows besides the analysis.
pub struct RunSummary<'a> {
    /// The user's command.
    pub command: &'a str,
    /// How it ended ("exit status: 0"), or "interrupted".
    pub status: String,
    pub exit_code: Option<i32>,
    pub fio: Option<&'a FioSummary>,
    /// What the probe itself took meanwhile.
    pub cost: &'a Cost,
}

/// `run`'s summary for a finished analysis, as text or JSON.
pub fn run(analysis: &Analysis, run: &RunSummary, as_json: bool) -> String {
    let verdict = Verdict::of(analysis);
    if as_json {
        let mut value = report::json(analysis);
        value["command"] = json!(run.command);
        value["command_exit"] = json!(run.exit_code);
        value["fio"] = run.fio.map_or(Value::Null, FioSummary::json);
        value["verdict"] = verdict_json(&verdict);
        add_details(&mut value["verdict"], analysis);
        value["probe_cost"] = cost_json(run.cost);
        return format!("{value:#}\n");
    }
    let mut lines = vec![String::new(), format!("dax-probe: summary of `{}` ({})", run.command, run.status)];
    if let Some(fio) = run.fio {
        lines.push(format!("fio: read {}; write {}", fio.read.text(), fio.write.text()));
    }
    // The report's fault, reason, entry and file system lines; per file
    // and process are for `report`.
    lines.push(report::faults_line(&analysis.stats.faults));
    lines.extend(report::reason_lines(&analysis.stats.reasons));
    lines.extend(report::entry_life_lines(analysis));
    lines.extend(report::filesystem_lines(analysis));
    lines.push(format!("lost events: {}", report::lost_text(analysis)));
    lines.push(cost_line(run.cost));
    lines.extend(violation_lines(analysis));
    lines.push(verdict_line(&verdict));
    lines.join("\n") + "\n"
}

/// What the probe itself took during a live session, apart from the
/// workload: "probe cost: dax-probe 0.412 s CPU (...); its eBPF programs
/// at least 0.301 s in 525312 runs (...)".
pub fn cost_line(cost: &Cost) -> String {
    let programs = match cost.programs {
        Some(programs) => format!(
            "its eBPF programs at least {:.3} s in {} runs (the kernel's BPF statistics)",
            programs.time.as_secs_f64(),
            programs.runs
        ),
        None if cost.statistics == Statistics::Off => {
            "its eBPF programs: not counted (BPF statistics off: --no-bpf-stats, or counting mode without --bpf-stats)"
                .to_owned()
        }
        None => "its eBPF programs: unknown (this kernel gave no BPF statistics)".to_owned(),
    };
    format!(
        "probe cost: dax-probe {:.3} s CPU ({:.3} s of it loading and attaching; user {:.3} s, system {:.3} s); {programs}",
        (cost.user + cost.system).as_secs_f64(),
        cost.setup.as_secs_f64(),
        cost.user.as_secs_f64(),
        cost.system.as_secs_f64()
    )
}

/// One line per program that ran: "program NAME: N runs, T s, X ns a run".
pub fn program_cost_lines(cost: &Cost) -> Vec<String> {
    cost.by_program
        .iter()
        .filter(|(_, p)| p.runs > 0)
        .map(|(name, p)| {
            format!(
                "program {name}: {} runs, {:.3} s, {} ns a run",
                p.runs,
                p.time.as_secs_f64(),
                p.time.as_nanos() / u128::from(p.runs)
            )
        })
        .collect()
}

pub fn cost_json(cost: &Cost) -> Value {
    json!({
        "cpu_user_s": cost.user.as_secs_f64(),
        "cpu_system_s": cost.system.as_secs_f64(),
        "cpu_setup_s": cost.setup.as_secs_f64(),
        "bpf_runs": cost.programs.map(|p| p.runs),
        "bpf_run_s": cost.programs.map(|p| p.time.as_secs_f64()),
    })
}

/// Says on stderr, as a live recording begins, what its hooks make checkable.
pub struct CoverageLog;

impl Sink for CoverageLog {
    fn begin(&mut self, begin: &Begin) {
        for line in coverage::of_hooks(&begin.hooks) {
            eprintln!("dax-probe: coverage: {line}");
        }
    }

    fn push(&mut self, _: &Event) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self, _: &Summary) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::source::cost::Programs;

    #[test]
    fn the_cost_line_gives_the_probe_and_its_programs_apart() {
        let mut cost = Cost {
            user: Duration::from_millis(250),
            system: Duration::from_millis(125),
            setup: Duration::from_millis(200),
            statistics: Statistics::On,
            programs: Some(Programs { runs: 525_312, time: Duration::from_micros(301_400) }),
            by_program: vec![
                ("dax_pte_fault".to_owned(), Programs { runs: 4, time: Duration::from_nanos(1_000) }),
                ("finish_wait_enter".to_owned(), Programs::default()),
            ],
        };
        assert_eq!(program_cost_lines(&cost), ["program dax_pte_fault: 4 runs, 0.000 s, 250 ns a run"]);
        assert_eq!(
            cost_line(&cost),
            "probe cost: dax-probe 0.375 s CPU (0.200 s of it loading and attaching; user 0.250 s, system 0.125 s); \
             its eBPF programs at least 0.301 s in 525312 runs (the kernel's BPF statistics)"
        );
        assert_eq!(cost_json(&cost)["bpf_runs"], json!(525_312));
        cost.programs = None;
        cost.statistics = Statistics::Refused;
        assert!(cost_line(&cost).ends_with("its eBPF programs: unknown (this kernel gave no BPF statistics)"));
        assert_eq!(cost_json(&cost)["bpf_run_s"], Value::Null);
    }
}
