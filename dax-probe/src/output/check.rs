//! What `check` and `run` print: coverage, violations and, last, the
//! verdict line; or all of it as JSON. `run`'s summary adds the command's
//! own figures (fio's bandwidth) to the report's fault and reason lines.

use anyhow::Result;
use serde_json::{json, Value};

use crate::{
    analysis::{coverage, invariants::Invariant, verdict::Verdict, Analysis},
    event::Event,
    output::report,
    stream::{Begin, Sink, Summary},
    workload::FioSummary,
};

/// The last line of `check` and `run`: "verdict: pass (0 violations, ...)".
/// A pass over part of the invariants says so where nobody can miss it.
pub fn verdict_line(verdict: &Verdict) -> String {
    let mut counts = format!(
        "{} violations, {} lost events, {} events",
        verdict.violation_count(),
        verdict.lost,
        verdict.events
    );
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
        "events": verdict.events,
        "invariants_checked": verdict.checked.iter().map(|i| i.name()).collect::<Vec<_>>(),
        "invariants_not_checked": Invariant::ALL.iter().filter(|i| !verdict.checked.contains(i))
            .map(|i| i.name()).collect::<Vec<_>>(),
    })
}

/// The violations kept, then how many more were only counted.
fn violation_lines(analysis: &Analysis) -> Vec<String> {
    let findings = analysis.findings();
    let mut lines: Vec<String> = findings.kept().iter().map(ToString::to_string).collect();
    let kept = findings.kept().len() as u64;
    if findings.total() > kept {
        lines.push(format!("({} more violations not shown)", findings.total() - kept));
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
        value["violation_details"] = analysis
            .findings()
            .kept()
            .iter()
            .map(|v| {
                json!({
                    "invariant": v.invariant.name(),
                    "what": v.what,
                    "entry": v.key.map(|key| key.to_string()),
                    "events": v.events.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        return format!("{value:#}\n");
    }
    let mut lines: Vec<String> = coverage.iter().map(|line| format!("coverage: {line}")).collect();
    lines.extend(violation_lines(analysis));
    lines.push(verdict_line(&verdict));
    lines.join("\n") + "\n"
}

/// What `run` knows besides the analysis.
pub struct RunSummary<'a> {
    /// The user's command.
    pub command: &'a str,
    /// How it ended ("exit status: 0"), or "interrupted".
    pub status: String,
    pub exit_code: Option<i32>,
    pub fio: Option<&'a FioSummary>,
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
        return format!("{value:#}\n");
    }
    let mut lines = vec![String::new(), format!("dax-probe: summary of `{}` ({})", run.command, run.status)];
    if let Some(fio) = run.fio {
        lines.push(format!("fio: read {}; write {}", fio.read.text(), fio.write.text()));
    }
    // The report's fault and reason lines; per file and process are for `report`.
    lines.push(report::faults_line(&analysis.stats));
    lines.extend(report::reason_lines(&analysis.stats));
    lines.push(format!("lost events: {}", analysis.lost()));
    lines.extend(violation_lines(analysis));
    lines.push(verdict_line(&verdict));
    lines.join("\n") + "\n"
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
