//! What `check` prints: coverage, violations and, last, the verdict line;
//! or all of it as JSON. `run`'s summary ([`super::run`]) ends the same way.

use anyhow::Result;
use dax_probe_common::Record;
use serde_json::{json, Value};

use crate::{
    analysis::{
        coverage,
        invariants::{Invariant, Violation},
        verdict::Verdict,
        Analysis,
    },
    event::Event,
    stream::{Begin, Sink, Summary},
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
pub(super) fn violation_lines(analysis: &Analysis) -> Vec<String> {
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
pub(super) fn add_details(value: &mut Value, analysis: &Analysis) {
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

    fn push_record(&mut self, _: &Record) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self, _: &Summary) -> Result<()> {
        Ok(())
    }
}
