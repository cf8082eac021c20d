//! `dax-probe report`: what a trace holds, counted: PMD and PTE faults,
//! fallbacks per reason, per file and per process; as text or JSON.

use std::collections::BTreeMap;

use dax_probe_common::{Event, Field, Kind};
use serde_json::{json, Value};

use crate::{
    analysis::{Faults, Stats},
    fallback::Reason,
    trace_file::{Header, Trace},
};

/// VM_FAULT_* bits in the order the kernel's tracepoints print them
/// (include/linux/mm_types.h, VM_FAULT_RESULT_TRACE).
pub const VM_FAULT_NAMES: &[(u64, &str)] = &[
    (0x0001, "OOM"),
    (0x0002, "SIGBUS"),
    (0x0004, "MAJOR"),
    (0x0010, "HWPOISON"),
    (0x0020, "HWPOISON_LARGE"),
    (0x0040, "SIGSEGV"),
    (0x0100, "NOPAGE"),
    (0x0200, "LOCKED"),
    (0x0400, "RETRY"),
    (0x0800, "FALLBACK"),
    (0x1000, "DONE_COW"),
    (0x2000, "NEEDDSYNC"),
    (0x4000, "COMPLETED"),
];

/// The fault result as tracefs prints it ("NOPAGE", "FALLBACK|..."), or "-"
/// for events without one (and results of 0, which print nothing).
pub fn result_name(event: &Event) -> String {
    let has_result = matches!(
        event.kind(),
        Some(
            Kind::PmdFault
                | Kind::PmdFaultDone
                | Kind::PteFault
                | Kind::PteFaultDone
                | Kind::LoadHole
                | Kind::InsertPfnMkwriteNoEntry
                | Kind::InsertPfnMkwrite
        )
    );
    let result = event.field(Field::Result);
    if !has_result || result == 0 {
        return "-".into();
    }
    let names: Vec<_> =
        VM_FAULT_NAMES.iter().filter(|(bit, _)| result & bit != 0).map(|(_, name)| *name).collect();
    if names.is_empty() {
        format!("{result:#x}")
    } else {
        names.join("|")
    }
}

/// "EVENT RESULT COUNT" rows of the fs_dax tracepoints, sorted: the same
/// table the lab's tracefs ground truth produces, so the two can be compared
/// line for line. Hook events are left out (tracefs has no such thing).
pub fn counts(trace: &Trace) -> Vec<String> {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for event in trace.events.iter().filter(|e| (e.kind as usize) < dax_probe_common::TRACEPOINT_COUNT) {
        let name = crate::events::kind_name(event);
        *counts.entry((name.to_owned(), result_name(event))).or_default() += 1;
    }
    counts.into_iter().map(|((event, result), n)| format!("{event} {result} {n}")).collect()
}

/// Reasons in the kernel's order: every one that occurred, and `unknown`
/// always (a zero there is a statement too).
fn reason_rows(stats: &Stats) -> Vec<(Reason, u64)> {
    Reason::ALL
        .into_iter()
        .map(|reason| (reason, stats.reasons.get(&reason).copied().unwrap_or(0)))
        .filter(|(reason, n)| *n > 0 || *reason == Reason::Unknown)
        .collect()
}

fn fallback_rate(faults: &Faults) -> f64 {
    if faults.pmd == 0 {
        0.0
    } else {
        faults.pmd_fallback as f64 / faults.pmd as f64
    }
}

/// `dev_t` as the fs_dax tracepoints carry it (MKDEV: major << 20 | minor).
pub fn device(dev: u64) -> String {
    format!("{}:{}", dev >> 20, dev & 0xfffff)
}

fn faults_text(f: &Faults) -> String {
    format!(
        "pmd {} (nopage {}, fallback {}, {:.1}% fallback), pte {}",
        f.pmd,
        f.pmd_nopage,
        f.pmd_fallback,
        100.0 * fallback_rate(f),
        f.pte
    )
}

fn sorted_files(stats: &Stats) -> Vec<(&(u64, u64), &Faults)> {
    let mut files: Vec<_> = stats.files.iter().collect();
    files.sort_by_key(|(key, _)| **key);
    files
}

fn sorted_processes(stats: &Stats) -> Vec<(&u32, &(String, Faults))> {
    let mut processes: Vec<_> = stats.processes.iter().collect();
    processes.sort_by_key(|(tgid, _)| **tgid);
    processes
}

/// "faults: pmd N (nopage ...), pte N".
pub fn faults_line(stats: &Stats) -> String {
    format!("faults: {}", faults_text(&stats.faults))
}

/// "fallbacks by reason:" and a row per reason.
pub fn reason_lines(stats: &Stats) -> Vec<String> {
    let rows = reason_rows(stats).into_iter().map(|(reason, n)| format!("  {:<20} {n}", reason.name()));
    std::iter::once("fallbacks by reason:".to_owned()).chain(rows).collect()
}

pub fn text(header: &Header, stats: &Stats) -> Vec<String> {
    let mut lines = vec![format!("kernel {}, {} events, {} lost", header.kernel, stats.events, header.lost)];
    // What an imported trace cannot show comes first, not last.
    lines.extend(crate::coverage::imported(header));
    lines.extend([
        format!("hooks: {}", if header.hooks.is_empty() { "none".into() } else { header.hooks.join(" ") }),
        faults_line(stats),
        format!("hook events: {}", hook_counts(stats)),
    ]);
    lines.extend(reason_lines(stats));
    lines.push("per file (device inode):".to_owned());
    for ((dev, ino), faults) in sorted_files(stats) {
        lines.push(format!("  {} {ino:#x}: {}", device(*dev), faults_text(faults)));
    }
    lines.push("per process (pid command):".to_owned());
    for (tgid, (comm, faults)) in sorted_processes(stats) {
        lines.push(format!("  {tgid} {comm}: {}", faults_text(faults)));
    }
    lines
}

fn hook_counts(stats: &Stats) -> String {
    let rows: Vec<_> = dax_probe_common::HOOK_EVENTS
        .iter()
        .zip(&stats.hook_events)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    rows.join(", ")
}

fn faults_json(f: &Faults) -> Value {
    json!({
        "pmd": f.pmd,
        "pmd_nopage": f.pmd_nopage,
        "pmd_fallback": f.pmd_fallback,
        "fallback_rate": fallback_rate(f),
        "pte": f.pte,
    })
}

pub fn json(header: &Header, stats: &Stats) -> Value {
    let reasons: serde_json::Map<String, Value> =
        reason_rows(stats).into_iter().map(|(reason, n)| (reason.name().to_owned(), json!(n))).collect();
    let files: Vec<Value> = sorted_files(stats)
        .into_iter()
        .map(|((dev, ino), faults)| json!({"device": device(*dev), "inode": ino, "faults": faults_json(faults)}))
        .collect();
    let processes: Vec<Value> = sorted_processes(stats)
        .into_iter()
        .map(|(tgid, (comm, faults))| json!({"pid": tgid, "command": comm, "faults": faults_json(faults)}))
        .collect();
    json!({
        "kernel": header.kernel,
        "imported_from": header.imported_from,
        "coverage": crate::coverage::of_trace(header),
        "events": stats.events,
        "lost": header.lost,
        "hooks": header.hooks,
        "hooks_missing": header.hooks_missing,
        "faults": faults_json(&stats.faults),
        "hook_events": dax_probe_common::HOOK_EVENTS.iter().zip(&stats.hook_events)
            .map(|(name, n)| (name.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "fallback_reasons": reasons,
        "files": files,
        "processes": processes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_file::Header;
    use dax_probe_common::FIELD_COUNT;

    fn event(name: &str, result: u64) -> Event {
        let mut fields = [0; FIELD_COUNT];
        fields[Field::Result as usize] = result;
        let kind = Kind::ALL.into_iter().find(|kind| kind.name() == name).unwrap() as u32;
        Event { time_ns: 0, tgid: 1, tid: 1, kind, cpu: 0, comm: [0; 16], fields }
    }

    #[test]
    fn names_results_as_tracefs_prints_them() {
        assert_eq!(result_name(&event("dax_pmd_fault_done", 0x100)), "NOPAGE");
        assert_eq!(result_name(&event("dax_pmd_fault_done", 0x800)), "FALLBACK");
        assert_eq!(result_name(&event("dax_pte_fault_done", 0x104)), "MAJOR|NOPAGE");
        assert_eq!(result_name(&event("dax_pmd_fault", 0)), "-");
        assert_eq!(result_name(&event("dax_writeback_one", 0x100)), "-");
    }

    #[test]
    fn counts_by_event_and_result() {
        let events = vec![
            event("dax_pmd_fault", 0),
            event("dax_pmd_fault_done", 0x800),
            event("dax_pmd_fault", 0),
            event("dax_pmd_fault_done", 0x800),
        ];
        let trace = Trace { header: Header::default(), events };
        assert_eq!(counts(&trace), ["dax_pmd_fault - 2", "dax_pmd_fault_done FALLBACK 2"]);
    }
}
