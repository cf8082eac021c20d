//! `dax-probe report`: what a trace holds, counted: PMD and PTE faults,
//! fallbacks per reason, per file and per process; as text or JSON. Also
//! the lines of it that `run` prints, and the "EVENT RESULT COUNT" table.

use std::collections::BTreeMap;

use anyhow::Result;
use dax_probe_common::HOOK_EVENTS;
use serde_json::{json, Value};

use crate::{
    analysis::{coverage, fallback::Reason, Analysis, Faults, Stats},
    event::{Comm, Event, File},
    kernel::{device_text, vm_fault_text},
    stream::{Begin, HookGroup, Sink, Summary},
};

/// The fault result as tracefs prints it ("NOPAGE", "FALLBACK|..."), or "-"
/// for events without one (and results of 0, which print nothing).
pub fn result_name(event: &Event) -> String {
    match event.fault() {
        Some(fault) if fault.result != 0 => vm_fault_text(fault.result),
        _ => "-".into(),
    }
}

/// "EVENT RESULT COUNT" rows of the fs_dax tracepoints, sorted: the same
/// table the lab's tracefs ground truth produces, so the two can be compared
/// line for line. Hook events are left out (tracefs has no such thing).
#[derive(Default)]
pub struct Counts {
    counts: BTreeMap<(&'static str, String), u64>,
}

impl Counts {
    pub fn lines(&self) -> Vec<String> {
        self.counts.iter().map(|((event, result), n)| format!("{event} {result} {n}")).collect()
    }
}

impl Sink for Counts {
    fn begin(&mut self, _: &Begin) {}

    fn push(&mut self, event: &Event) -> Result<()> {
        if (event.kind() as usize) < dax_probe_common::TRACEPOINT_COUNT {
            *self.counts.entry((event.kind().name(), result_name(event))).or_default() += 1;
        }
        Ok(())
    }

    fn finish(&mut self, _: &Summary) -> Result<()> {
        Ok(())
    }
}

/// Reasons in the kernel's order: every one that occurred, and `unknown`
/// always (a zero there is a statement too).
/// Fallbacks per reason, the rows worth showing: every reason seen, and
/// `unknown` always (its zero says every fallback was explained).
pub(crate) fn reason_rows(reasons: &[u64; Reason::ALL.len()]) -> Vec<(Reason, u64)> {
    Reason::ALL
        .into_iter()
        .map(|reason| (reason, reasons[reason as usize]))
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

/// "DEV INODE" as the report names a file.
fn file_name(file: &File) -> String {
    format!("{} {:#x}", device_text(file.dev), file.ino)
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

fn sorted_files(stats: &Stats) -> Vec<(&File, &Faults)> {
    let mut files: Vec<_> = stats.files.iter().collect();
    files.sort_by_key(|(file, _)| **file);
    files
}

/// Faults per device, the file systems' as the recording names them.
fn by_filesystem(stats: &Stats) -> BTreeMap<u64, Faults> {
    let mut devices: BTreeMap<u64, Faults> = BTreeMap::new();
    for (file, faults) in &stats.files {
        devices.entry(file.dev).or_default().merge(faults);
    }
    devices
}

/// "ext4 on /mnt/dax (259:0)", or the device alone where the recording did
/// not know its file system (imported text, a mount made after it began).
fn filesystem_name(begin: &Begin, dev: u64) -> String {
    match begin.filesystem(dev) {
        Some(fs) => format!("{} on {} ({})", fs.fstype, fs.mount, device_text(dev)),
        None => format!("{} (file system not known)", device_text(dev)),
    }
}

/// "per file system:" and a row per device with faults (`report`, `run`).
pub fn filesystem_lines(analysis: &Analysis) -> Vec<String> {
    let (begin, stats) = (analysis.recording(), &analysis.stats);
    let rows = by_filesystem(stats)
        .into_iter()
        .map(|(dev, faults)| format!("  {}: {}", filesystem_name(begin, dev), faults_text(&faults)));
    std::iter::once("per file system:".to_owned()).chain(rows).collect()
}

fn sorted_processes(stats: &Stats) -> Vec<(&u32, &(Comm, Faults))> {
    let mut processes: Vec<_> = stats.processes.iter().collect();
    processes.sort_by_key(|(tgid, _)| **tgid);
    processes
}

/// "faults: pmd N (nopage ...), pte N".
pub fn faults_line(faults: &Faults) -> String {
    format!("faults: {}", faults_text(faults))
}

/// "fallbacks by reason:" and a row per reason.
pub fn reason_lines(reasons: &[u64; Reason::ALL.len()]) -> Vec<String> {
    let rows = reason_rows(reasons).into_iter().map(|(reason, n)| format!("  {:<20} {n}", reason.name()));
    std::iter::once("fallbacks by reason:".to_owned()).chain(rows).collect()
}

/// The huge zero page over holes, the downgrades that undo it, and
/// writeback by entry size (`report`, `run`). Downgrades are seen by the
/// entry hooks only: without them the line says so rather than 0.
pub fn entry_life_lines(analysis: &Analysis) -> Vec<String> {
    let life = &analysis.stats.entry_life;
    let downgrades = if analysis.recording().gives(HookGroup::EntryState) {
        format!("zero-page {}, empty {}", life.downgraded_zero_page, life.downgraded_empty)
    } else {
        "not seen (the entry-state hooks were not attached)".to_owned()
    };
    vec![
        format!(
            "holes: 2 MiB zero-page loads {} (fell back {}), 4 KiB zero-page loads {}",
            life.pmd_hole_loads, life.pmd_hole_fallbacks, life.pte_hole_loads
        ),
        format!("PMD entries downgraded by 4 KiB faults: {downgrades}"),
        format!(
            "written back: PMD entries {} (2 MiB each), PTE entries {}, other sizes {}",
            life.written_back_pmd, life.written_back_pte, life.written_back_other
        ),
        format!("truncates and hole punches: {}", deletes_text(analysis)),
    ]
}

/// "N, deleting PMD entries N, ..." or why they were not seen.
fn deletes_text(analysis: &Analysis) -> String {
    let life = &analysis.stats.entry_life;
    let begin = analysis.recording();
    if !begin.gives(HookGroup::Truncation) || !begin.gives(HookGroup::EntryState) {
        return "not seen (needs the truncation and entry-state hooks)".to_owned();
    }
    format!(
        "{}; entries deleted unlocked (truncate, punch, eviction): PMD {}, PTE {}, zero-page {}",
        life.truncates, life.deleted_pmd, life.deleted_pte, life.deleted_zero_page
    )
}

fn entry_life_json(analysis: &Analysis) -> Value {
    let life = &analysis.stats.entry_life;
    let seen = analysis.recording().gives(HookGroup::EntryState);
    let deletes_seen = seen && analysis.recording().gives(HookGroup::Truncation);
    json!({
        "pmd_hole_loads": life.pmd_hole_loads,
        "pmd_hole_fallbacks": life.pmd_hole_fallbacks,
        "pte_hole_loads": life.pte_hole_loads,
        "downgraded_zero_page": seen.then_some(life.downgraded_zero_page),
        "downgraded_empty": seen.then_some(life.downgraded_empty),
        "written_back_pmd": life.written_back_pmd,
        "written_back_pte": life.written_back_pte,
        "written_back_other": life.written_back_other,
        "truncates": deletes_seen.then_some(life.truncates),
        "deleted_pmd": deletes_seen.then_some(life.deleted_pmd),
        "deleted_pte": deletes_seen.then_some(life.deleted_pte),
        "deleted_zero_page": deletes_seen.then_some(life.deleted_zero_page),
    })
}

/// "entry-state (inlined) wait-wake (native)", or the names alone where
/// the recording did not say how.
fn hooks_with_ways(begin: &Begin) -> String {
    let way = |i: usize| begin.hook_ways.get(i).map_or(String::new(), |way| format!(" ({way})"));
    let hooks: Vec<_> =
        begin.hooks.iter().enumerate().map(|(i, group)| format!("{group}{}", way(i))).collect();
    hooks.join(" ")
}

fn group_names(groups: &[HookGroup]) -> Vec<&'static str> {
    groups.iter().map(|group| group.name()).collect()
}

pub fn text(analysis: &Analysis) -> Vec<String> {
    let (begin, stats) = (analysis.recording(), &analysis.stats);
    let mut lines =
        vec![format!("kernel {}, {} events, {} lost", begin.kernel, stats.events, lost_text(analysis))];
    // What an imported trace cannot show comes first, not last.
    lines.extend(coverage::imported(begin));
    let hooks = if begin.hooks.is_empty() { "none".into() } else { hooks_with_ways(begin) };
    lines.extend([
        format!("hooks: {hooks}"),
        faults_line(&stats.faults),
        format!("hook events: {}", hook_counts(stats)),
    ]);
    lines.extend(reason_lines(&stats.reasons));
    lines.extend(entry_life_lines(analysis));
    lines.extend(filesystem_lines(analysis));
    lines.push("per file (device inode):".to_owned());
    for (file, faults) in sorted_files(stats) {
        lines.push(format!("  {}: {}", file_name(file), faults_text(faults)));
    }
    lines.push("per process (pid command):".to_owned());
    for (tgid, (comm, faults)) in sorted_processes(stats) {
        lines.push(format!("  {tgid} {comm}: {}", faults_text(faults)));
    }
    lines
}

fn hook_counts(stats: &Stats) -> String {
    let rows: Vec<_> =
        HOOK_EVENTS.iter().zip(&stats.hook_events).map(|(name, n)| format!("{name} {n}")).collect();
    rows.join(", ")
}

/// Fault counts as the report's JSON names them (`run --count` too).
pub(crate) fn faults_json(f: &Faults) -> Value {
    json!({
        "pmd": f.pmd,
        "pmd_nopage": f.pmd_nopage,
        "pmd_fallback": f.pmd_fallback,
        "fallback_rate": fallback_rate(f),
        "pte": f.pte,
    })
}

pub fn json(analysis: &Analysis) -> Value {
    let (begin, stats) = (analysis.recording(), &analysis.stats);
    let reasons: serde_json::Map<String, Value> = reason_rows(&stats.reasons)
        .into_iter()
        .map(|(reason, n)| (reason.name().to_owned(), json!(n)))
        .collect();
    let files: Vec<Value> = sorted_files(stats)
        .into_iter()
        .map(|(file, faults)| {
            let fstype = begin.filesystem(file.dev).map(|fs| &fs.fstype);
            json!({"device": device_text(file.dev), "filesystem": fstype, "inode": file.ino, "faults": faults_json(faults)})
        })
        .collect();
    let filesystems: Vec<Value> = by_filesystem(stats)
        .into_iter()
        .map(|(dev, faults)| {
            let fs = begin.filesystem(dev);
            json!({
                "device": device_text(dev),
                "type": fs.map(|fs| &fs.fstype),
                "mount": fs.map(|fs| &fs.mount),
                "faults": faults_json(&faults),
            })
        })
        .collect();
    let processes: Vec<Value> = sorted_processes(stats)
        .into_iter()
        .map(|(tgid, (comm, faults))| json!({"pid": tgid, "command": comm.to_string(), "faults": faults_json(faults)}))
        .collect();
    json!({
        "kernel": begin.kernel,
        "imported_from": begin.imported_from,
        "coverage": coverage::lines(begin),
        "events": stats.events,
        "duration_s": stats.timeline.duration_s(),
        "lost": analysis.lost(),
        "loss_unknown": analysis.loss_unknown(),
        "hooks": group_names(&begin.hooks),
        "hook_ways": begin.hook_ways,
        "hooks_missing": group_names(&begin.hooks_missing),
        "faults": faults_json(&stats.faults),
        "hook_events": HOOK_EVENTS.iter().zip(&stats.hook_events)
            .map(|(name, n)| (name.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "fallback_reasons": reasons,
        "entries": entry_life_json(analysis),
        "filesystems": filesystems,
        "files": files,
        "processes": processes,
    })
}

/// The lost events as a count, or that they are not known ("0, and
/// unknown" where a marker without a count came).
pub fn lost_text(analysis: &Analysis) -> String {
    match (analysis.lost(), analysis.loss_unknown()) {
        (0, true) => "unknown".to_owned(),
        (lost, true) => format!("{lost} and more uncounted"),
        (lost, false) => lost.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::What,
        testing::{event, Vma},
    };
    use dax_probe_common::Kind;

    fn fault(kind: Kind, result: u64) -> Event {
        let fault = Vma::shared(0, 1 << 21, 512).done(0, result);
        let what = match kind {
            Kind::PmdFault => What::PmdFault(fault),
            Kind::PmdFaultDone => What::PmdFaultDone(fault),
            Kind::PteFaultDone => What::PteFaultDone(fault),
            _ => What::WritebackOne(Default::default()),
        };
        event(1, what)
    }

    #[test]
    fn names_results_as_tracefs_prints_them() {
        assert_eq!(result_name(&fault(Kind::PmdFaultDone, 0x100)), "NOPAGE");
        assert_eq!(result_name(&fault(Kind::PmdFaultDone, 0x800)), "FALLBACK");
        assert_eq!(result_name(&fault(Kind::PteFaultDone, 0x104)), "MAJOR|NOPAGE");
        assert_eq!(result_name(&fault(Kind::PmdFault, 0)), "-");
        assert_eq!(result_name(&fault(Kind::WritebackOne, 0x100)), "-");
    }

    #[test]
    fn counts_by_event_and_result() {
        let mut counts = Counts::default();
        for (kind, result) in [
            (Kind::PmdFault, 0),
            (Kind::PmdFaultDone, 0x800),
            (Kind::PmdFault, 0),
            (Kind::PmdFaultDone, 0x800),
        ] {
            counts.push(&fault(kind, result)).unwrap();
        }
        assert_eq!(counts.lines(), ["dax_pmd_fault - 2", "dax_pmd_fault_done FALLBACK 2"]);
    }

    #[test]
    fn faults_are_told_per_file_system_by_name_where_the_recording_knows_it() {
        use crate::{
            stream::{Filesystem, Sink},
            testing::FILE,
        };
        let other = File { dev: FILE.dev + 1, ..FILE };
        let elsewhere = |fault: Event| match fault.what {
            What::PteFaultDone(f) => {
                Event { what: What::PteFaultDone(crate::event::Fault { file: other, ..f }), ..fault }
            }
            _ => fault,
        };
        let fs = Filesystem { dev: FILE.dev, fstype: "ext4".into(), mount: "/mnt/dax".into() };
        let mut analysis = Analysis::default();
        analysis.begin(&Begin { filesystems: vec![fs], ..Begin::default() });
        analysis.push(&fault(Kind::PteFaultDone, 0x100)).unwrap();
        analysis.push(&elsewhere(fault(Kind::PteFaultDone, 0x100))).unwrap();
        analysis.finish(&Summary::default()).unwrap();
        let lines = filesystem_lines(&analysis);
        assert_eq!(lines[0], "per file system:");
        assert!(
            lines[1].starts_with(&format!("  ext4 on /mnt/dax ({}): pmd 0", device_text(FILE.dev))),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with(&format!("  {} (file system not known): ", device_text(other.dev))),
            "{lines:?}"
        );
        let value = json(&analysis);
        assert_eq!(value["filesystems"][0]["type"], "ext4");
        assert_eq!(value["filesystems"][1]["type"], Value::Null);
        assert_eq!(value["files"][0]["filesystem"], "ext4");
    }
}
