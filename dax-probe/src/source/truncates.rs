//! A truncate told by two programs, and what its losses can be.
//!
//! Two programs run at a truncate's return (`truncate_done` in the eBPF
//! programs) and both tell it, each with its number in `Arg::Ret`: the
//! kernel skips a tracing program on a CPU where a preempted task is still
//! inside it, and the other program tells what the skipped one could not.
//! [`Twins`] keeps one record of the two and bounds from above the
//! truncates that neither told, from each program's skipped runs.
//!
//! # Invariants
//!
//! - Records reach [`Twins::is_twin`] in stamp order, so one thread's
//!   records come in the order its programs ran.
//! - After arming no program is attached or detached, and arming is never
//!   taken back while records are read.

use dax_probe_common::{Arg, Kind, Record};
use rustc_hash::{FxHashMap, FxHashSet};

/// The programs at a truncate's return, in the order of their numbers.
pub const PROGRAMS: [&str; 2] = ["truncate_done", "truncate_done_2"];

/// One record of a truncate kept as an event, its twin not yet come.
struct Told {
    program: usize,
    range: [u64; 3],
    /// Whether its thread was settled (see [`Twins::lost`]) when it came.
    settled: bool,
}

/// Of two records adjacent on their thread, one from each program, for the
/// same range, the second is the first's twin. Another record of the thread
/// between them, or the same program twice, and they are two truncates.
/// (Two truncates taken for twins need each program skipped once, which
/// [`Twins::lost`] counts.)
#[derive(Default)]
pub struct Twins {
    /// Threads whose last record is a truncate.
    last: FxHashMap<u32, Told>,
    /// Threads that have had a truncate told by both programs.
    settled: FxHashSet<u32>,
    /// Truncates of settled threads told by one program alone, by that
    /// program's number: each is a skipped run of the other.
    alone: [u64; 2],
}

impl Twins {
    /// Whether `record` is its thread's last record's twin (and so no event).
    #[inline(always)]
    pub fn is_twin(&mut self, record: &Record) -> bool {
        // Nearly every record: no truncate, none waiting for its twin.
        if record.kind != Kind::Truncated as u32 && self.last.is_empty() {
            return false;
        }
        self.is_twin_of_last(record)
    }

    /// `is_twin` for a truncate, or any record while a truncate waits.
    fn is_twin_of_last(&mut self, record: &Record) -> bool {
        let last = if self.last.is_empty() { None } else { self.last.remove(&record.tid) };
        let told = (record.kind == Kind::Truncated as u32).then(|| Told {
            program: usize::from(record.fields[Arg::Ret as usize] != 0),
            range: [Arg::Mapping, Arg::Pos, Arg::LastPos].map(|arg| record.fields[arg as usize]),
            settled: self.settled.contains(&record.tid),
        });
        match (last, told) {
            (Some(last), Some(told)) if last.program != told.program && last.range == told.range => {
                self.settled.insert(record.tid);
                true
            }
            (last, told) => {
                if let Some(last) = last {
                    self.told_alone(&last);
                }
                if let Some(told) = told {
                    self.last.insert(record.tid, told);
                }
                false
            }
        }
    }

    /// The stream has ended: no twin is still to come.
    pub fn finish(&mut self) {
        let last = std::mem::take(&mut self.last);
        last.values().for_each(|told| self.told_alone(told));
    }

    fn told_alone(&mut self, told: &Told) {
        if told.settled {
            self.alone[told.program] += 1;
        }
    }

    /// At most how many truncates neither program told, given each
    /// program's skipped runs (`misses`, by number).
    ///
    /// A truncate neither told costs each program a skipped run. A truncate
    /// one program told alone costs the other one, but only one of a
    /// settled thread is sure to: that thread's earlier truncate, told by
    /// both, was armed and ran with both programs attached, and nothing is
    /// attached after arming, so every later truncate of the thread runs
    /// both programs, armed; one that told nothing was skipped. (On a thread
    /// not yet settled, a truncate in flight while the programs were
    /// attached may run only the one in place when it began.) So each
    /// program's misses, less its runs a settled twin made up for, bound the
    /// truncates lost. Other misses (of other files' truncates) only make
    /// the bound higher.
    pub fn lost(&self, misses: [u64; 2]) -> u64 {
        let uncovered = |program: usize| misses[program].saturating_sub(self.alone[1 - program]);
        uncovered(0).min(uncovered(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A truncate record of thread `tid` from program `program` (0 or 1), of `first..`.
    fn truncate(tid: u32, program: u64, first: u64) -> Record {
        let mut fields = [0; dax_probe_common::FIELD_COUNT];
        fields[Arg::Mapping as usize] = 0xffff_8880_0100_0008;
        fields[Arg::Pos as usize] = first;
        fields[Arg::LastPos as usize] = u64::MAX;
        fields[Arg::Ret as usize] = program;
        Record { time_ns: 0, tgid: tid, tid, kind: Kind::Truncated as u32, cpu: 0, comm: [0; 16], fields }
    }

    /// The records kept as events, and the bound on truncates lost for `misses`.
    fn kept_and_lost(records: &[Record], misses: [u64; 2]) -> (usize, u64) {
        let mut twins = Twins::default();
        let kept = records.iter().filter(|record| !twins.is_twin(record)).count();
        twins.finish();
        (kept, twins.lost(misses))
    }

    fn kept(records: &[Record]) -> usize {
        kept_and_lost(records, [0, 0]).0
    }

    #[test]
    fn of_two_truncate_records_from_both_programs_one_is_kept() {
        // One truncate, told by both programs, in either order.
        assert_eq!(kept(&[truncate(7, 0, 0), truncate(7, 1, 0)]), 1);
        assert_eq!(kept(&[truncate(7, 1, 0), truncate(7, 0, 0)]), 1);
        // Two truncates, each told by both; and a thread's own between them.
        assert_eq!(kept(&[truncate(7, 0, 0), truncate(7, 1, 0), truncate(7, 0, 0), truncate(7, 1, 0)]), 2);
        assert_eq!(kept(&[truncate(7, 0, 0), truncate(8, 1, 0), truncate(8, 0, 0), truncate(7, 1, 0)]), 2);
        // One program skipped: the same program twice is two truncates.
        assert_eq!(kept(&[truncate(7, 0, 0), truncate(7, 0, 0)]), 2);
        // Another range, or another record of the thread between: two.
        assert_eq!(kept(&[truncate(7, 0, 0), truncate(7, 1, 4096)]), 2);
        let other = Record { kind: Kind::EntryWake as u32, ..truncate(7, 0, 0) };
        assert_eq!(kept(&[truncate(7, 0, 0), other, truncate(7, 1, 0)]), 3);
    }

    #[test]
    fn a_skipped_run_the_other_program_made_up_for_is_no_loss() {
        let both = [truncate(7, 0, 0), truncate(7, 1, 0)];
        // Each program skipped once, each time on a settled thread's
        // truncate the other told: nothing lost (CI's soak on Debian's 7.2).
        let records = [&both[..], &[truncate(7, 1, 0), truncate(7, 0, 8192)], &both[..]].concat();
        assert_eq!(kept_and_lost(&records, [1, 1]), (4, 0));
        // The same, told at the very end (the twin never came).
        let records = [&both[..], &[truncate(7, 1, 0)]].concat();
        assert_eq!(kept_and_lost(&records, [1, 0]), (2, 0));
        // A third miss of program 0 nobody made up for, with one of
        // program 1: a truncate may be lost.
        let records = [&both[..], &[truncate(7, 1, 0)]].concat();
        assert_eq!(kept_and_lost(&records, [2, 1]).1, 1);
    }

    #[test]
    fn a_truncate_told_alone_before_its_thread_settled_covers_nothing() {
        // The thread's first truncate, told by program 1 alone: it may have
        // been in flight while program 0 was attached, so it proves no skip.
        let records = [truncate(7, 1, 0), truncate(7, 0, 4096), truncate(7, 1, 4096)];
        assert_eq!(kept_and_lost(&records, [1, 1]), (2, 1));
        // Another thread's pair settles only that thread.
        let records = [truncate(8, 0, 0), truncate(8, 1, 0), truncate(7, 1, 0)];
        assert_eq!(kept_and_lost(&records, [1, 1]), (2, 1));
    }

    #[test]
    fn two_truncates_taken_for_twins_keep_their_loss() {
        // Program 0 skipped the first, program 1 the second, same range:
        // read as one truncate, so the bound must say one may be lost.
        let records = [truncate(7, 0, 0), truncate(7, 1, 0), truncate(7, 1, 64), truncate(7, 0, 64)];
        assert_eq!(kept_and_lost(&records, [1, 1]), (2, 1));
    }
}
