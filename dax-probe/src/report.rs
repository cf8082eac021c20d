//! `dax-probe report`: what a trace holds, counted.

use std::collections::BTreeMap;

use dax_probe_common::{Event, Field, TRACEPOINTS};

use crate::trace_file::Trace;

/// VM_FAULT_* bits in the order the kernel's tracepoints print them
/// (include/linux/mm_types.h, VM_FAULT_RESULT_TRACE).
const VM_FAULT_NAMES: &[(u64, &str)] = &[
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
        TRACEPOINTS[event.tracepoint as usize],
        "dax_pmd_fault"
            | "dax_pmd_fault_done"
            | "dax_pte_fault"
            | "dax_pte_fault_done"
            | "dax_load_hole"
            | "dax_insert_pfn_mkwrite_no_entry"
            | "dax_insert_pfn_mkwrite"
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

/// "EVENT RESULT COUNT" rows, sorted: the same table the lab's tracefs
/// ground truth produces, so the two can be compared line for line.
pub fn counts(trace: &Trace) -> Vec<String> {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for event in &trace.events {
        let name = TRACEPOINTS.get(event.tracepoint as usize).copied().unwrap_or("unknown");
        *counts.entry((name.to_owned(), result_name(event))).or_default() += 1;
    }
    counts.into_iter().map(|((event, result), n)| format!("{event} {result} {n}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_file::Header;
    use dax_probe_common::FIELD_COUNT;

    fn event(tracepoint: &str, result: u64) -> Event {
        let mut fields = [0; FIELD_COUNT];
        fields[Field::Result as usize] = result;
        let tracepoint = TRACEPOINTS.iter().position(|name| *name == tracepoint).unwrap() as u32;
        Event { time_ns: 0, tgid: 1, tid: 1, tracepoint, cpu: 0, comm: [0; 16], fields }
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
