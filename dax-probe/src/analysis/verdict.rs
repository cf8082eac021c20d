//! The checker's verdict over a finished analysis: pass, fail or
//! inconclusive, with the exit code each one gives.

use crate::analysis::{invariants::Invariant, Analysis};

pub const EXIT_VIOLATIONS: i32 = 1;
pub const EXIT_ERROR: i32 = 2;
pub const EXIT_INCONCLUSIVE: i32 = 3;
/// The command dax-probe ran failed (and the invariants held, or nothing
/// was checked): its own status is on stderr, never passed through, so
/// that a command's exit 1 cannot read as "violations found".
pub const EXIT_COMMAND_FAILED: i32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    Pass,
    Fail,
    /// Events were lost, or may have been: no pass can be given.
    Inconclusive,
}

pub struct Verdict {
    pub judgement: Judgement,
    /// Per [`Invariant::ALL`] entry.
    pub violations: [u64; Invariant::ALL.len()],
    pub lost: u64,
    /// Events may have been lost without a count.
    pub loss_unknown: bool,
    pub events: u64,
    /// Work in flight where the trace ends: reported, never a violation.
    pub open_at_cut: u64,
    pub checked: Vec<Invariant>,
}

impl Verdict {
    /// The verdict of a finished analysis.
    pub fn of(analysis: &Analysis) -> Verdict {
        debug_assert!(analysis.is_finished(), "a verdict needs the end of the stream");
        let findings = analysis.findings();
        let lost = analysis.lost();
        let judgement = if lost > 0 || analysis.loss_unknown() {
            Judgement::Inconclusive
        } else if findings.total() > 0 {
            Judgement::Fail
        } else {
            Judgement::Pass
        };
        Verdict {
            judgement,
            violations: findings.counts(),
            lost,
            loss_unknown: analysis.loss_unknown(),
            events: analysis.stats.events,
            open_at_cut: findings.open_count(),
            checked: findings.checked().to_vec(),
        }
    }

    pub fn violation_count(&self) -> u64 {
        self.violations.iter().sum()
    }

    pub fn word(&self) -> &'static str {
        match self.judgement {
            Judgement::Pass => "pass",
            Judgement::Fail => "fail",
            Judgement::Inconclusive => "inconclusive",
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self.judgement {
            Judgement::Pass => 0,
            Judgement::Fail => EXIT_VIOLATIONS,
            Judgement::Inconclusive => EXIT_INCONCLUSIVE,
        }
    }
}
