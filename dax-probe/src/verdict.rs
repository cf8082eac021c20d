//! The checker's verdict over a finished analysis: pass, fail or
//! inconclusive, with the exit code each one gives.

use serde_json::{json, Value};

use crate::{analysis::Analysis, invariants::Invariant};

pub const EXIT_VIOLATIONS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
pub const EXIT_INCONCLUSIVE: i32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// Events were lost: no pass can be given.
    Inconclusive,
}

pub struct Verdict {
    pub outcome: Outcome,
    /// Per [`Invariant::ALL`] entry.
    pub violations: [u64; Invariant::ALL.len()],
    pub lost: u64,
    pub events: u64,
    pub checked: Vec<Invariant>,
}

impl Verdict {
    /// `analysis` must be finished.
    pub fn of(analysis: &Analysis, lost: u64) -> Verdict {
        let outcome = if lost > 0 {
            Outcome::Inconclusive
        } else if analysis.violation_count() > 0 {
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        Verdict {
            outcome,
            violations: analysis.stats.violations,
            lost,
            events: analysis.stats.events,
            checked: analysis.checked().to_vec(),
        }
    }

    pub fn violation_count(&self) -> u64 {
        self.violations.iter().sum()
    }

    pub fn word(&self) -> &'static str {
        match self.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            Outcome::Pass => 0,
            Outcome::Fail => EXIT_VIOLATIONS,
            Outcome::Inconclusive => EXIT_INCONCLUSIVE,
        }
    }

    /// The last line of `check` and `run`: "verdict: pass (0 violations, ...)".
    /// A pass over part of the invariants says so where nobody can miss it.
    pub fn line(&self) -> String {
        let mut counts = format!(
            "{} violations, {} lost events, {} events",
            self.violation_count(),
            self.lost,
            self.events
        );
        if self.checked.len() < Invariant::ALL.len() {
            counts.push_str(&format!(
                "; {} of {} invariants checked",
                self.checked.len(),
                Invariant::ALL.len()
            ));
        }
        format!("verdict: {} ({counts})", self.word())
    }

    pub fn json(&self) -> Value {
        let by_invariant: serde_json::Map<String, Value> = Invariant::ALL
            .iter()
            .map(|i| (i.name().to_owned(), json!(self.violations[*i as usize])))
            .collect();
        json!({
            "verdict": self.word(),
            "violations": self.violation_count(),
            "violations_by_invariant": by_invariant,
            "lost": self.lost,
            "events": self.events,
            "invariants_checked": self.checked.iter().map(|i| i.name()).collect::<Vec<_>>(),
            "invariants_not_checked": Invariant::ALL.iter().filter(|i| !self.checked.contains(i))
                .map(|i| i.name()).collect::<Vec<_>>(),
        })
    }
}
