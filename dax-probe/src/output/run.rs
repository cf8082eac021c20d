//! What `run` prints when its command ends: the command's own figures
//! (fio's bandwidth), the report's fault, reason, entry and file system
//! lines, what the probe itself cost, then check's violations and verdict;
//! or all of it as JSON. The cost lines serve the counting mode too.

use serde_json::{json, Value};

use crate::{
    analysis::{verdict::Verdict, Analysis},
    output::{
        check::{add_details, verdict_json, verdict_line, violation_lines},
        report,
    },
    source::cost::{Cost, Statistics},
    workload::FioSummary,
};

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
pub fn summary(analysis: &Analysis, run: &RunSummary, as_json: bool) -> String {
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
