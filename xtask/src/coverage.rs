//! The coverage tables of the README, made from the suite's own runs: per
//! kernel, which invariants `check` covered and by which way its hooks
//! attached (probe-record's outbox), and which fallback reasons the report
//! named when each was provoked (fallback-reasons' outbox). The suite writes
//! them to `target/lab/coverage.md` and between the README's markers.

use std::{fs, path::Path};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::{kernel::Flavour, project_root};

const BEGIN: &str = "<!-- coverage tables: written by `cargo xtask test` -->";
const END: &str = "<!-- end of coverage tables -->";

/// The invariants and reasons, in dax-probe's order.
const INVARIANTS: [&str; 10] = [
    "lock-released",
    "single-holder",
    "pmd-covers-range",
    "waiter-woken",
    "pmd-fault-done",
    "fallback-served",
    "writeback-whole",
    "entry-transitions",
    "truncate-empties-range",
    "pte-conflict-real",
];
const REASONS: [&str; 7] = [
    "address-colour",
    "cow-write",
    "vma-start",
    "vma-end",
    "past-eof",
    "pte-entry-in-range",
    "extent-too-short",
];

/// What one kernel's runs showed; `None` where the scenario did not run.
struct Seen {
    kernel: &'static str,
    /// (invariants checked, "group (way)" list).
    checked: Option<(Vec<String>, Vec<String>)>,
    /// Lines "REASON N TOTAL".
    reasons: Option<String>,
}

fn outbox(kernel: &str, scenario: &str) -> std::path::PathBuf {
    project_root().join("target/lab").join(kernel).join(scenario).join("outbox")
}

fn json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

fn seen(kernel: &'static str) -> Seen {
    let record = outbox(kernel, "probe-record");
    let checked =
        json(&record.join("check.json")).zip(json(&record.join("report.json"))).map(|(check, report)| {
            let hooks = strings(&report["hooks"]);
            let ways = strings(&report["hook_ways"]);
            let hooks = hooks.iter().zip(ways.iter().map(Some).chain(std::iter::repeat(None)));
            let hooks =
                hooks.map(|(hook, way)| way.map_or(hook.clone(), |way| format!("{hook} ({way})"))).collect();
            (strings(&check["invariants_checked"]), hooks)
        });
    let reasons = fs::read_to_string(outbox(kernel, "fallback-reasons").join("reasons.txt")).ok();
    Seen { kernel, checked, reasons }
}

/// The tables, as Markdown.
fn tables(seen: &[Seen]) -> String {
    let header = |first: &str| {
        let kernels: Vec<_> = seen.iter().map(|s| s.kernel).collect();
        format!("| {first} | {} |\n|---|{}\n", kernels.join(" | "), "---|".repeat(seen.len()))
    };
    let mut text = header("invariant");
    for invariant in INVARIANTS {
        let cells: Vec<_> = seen
            .iter()
            .map(|s| match &s.checked {
                Some((checked, _)) if checked.iter().any(|c| c == invariant) => "checked",
                Some(_) => "NOT checked",
                None => "not run",
            })
            .collect();
        text.push_str(&format!("| {invariant} | {} |\n", cells.join(" | ")));
    }
    let hooks: Vec<_> = seen
        .iter()
        .map(|s| s.checked.as_ref().map_or("not run".to_owned(), |(_, hooks)| hooks.join(", ")))
        .collect();
    text.push_str(&format!("| hooks (way) | {} |\n\n", hooks.join(" | ")));
    text.push_str(&header("fallback reason"));
    for reason in REASONS {
        let cells: Vec<_> = seen
            .iter()
            .map(|s| {
                let Some(reasons) = &s.reasons else { return "not run".to_owned() };
                let line = reasons.lines().find(|line| line.split_whitespace().next() == Some(reason));
                match line.map(|line| line.split_whitespace().skip(1).collect::<Vec<_>>()) {
                    Some(counts) if counts.len() == 2 && counts[0] == counts[1] && counts[0] != "0" => {
                        format!("named ({} of {})", counts[0], counts[1])
                    }
                    Some(counts) => format!("NOT named ({})", counts.join(" of ")),
                    None => "not provoked".to_owned(),
                }
            })
            .collect();
        text.push_str(&format!("| {reason} | {} |\n", cells.join(" | ")));
    }
    text
}

/// Writes the tables of this suite's runs; returns them.
pub fn write() -> Result<String> {
    let seen: Vec<Seen> = Flavour::ALL.iter().map(|flavour| seen(flavour.name())).collect();
    let text = tables(&seen);
    fs::write(project_root().join("target/lab/coverage.md"), &text)?;
    let readme_path = project_root().join("README.md");
    let readme = fs::read_to_string(&readme_path)?;
    let (before, rest) = readme.split_once(BEGIN).context("the README has no coverage table marker")?;
    let (_, after) = rest.split_once(END).context("the README has no end marker for its coverage tables")?;
    let updated = format!("{before}{BEGIN}\n{text}{END}{after}");
    if updated != readme {
        fs::write(&readme_path, updated)?;
        println!("coverage: the README's coverage tables changed with this run (target/lab/coverage.md)");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_say_what_was_not_checked_and_not_run() {
        let seen = [
            Seen {
                kernel: "custom",
                checked: Some((INVARIANTS.map(str::to_owned).to_vec(), vec!["entry-state (native)".into()])),
                reasons: Some("address-colour 1 1\nvma-end 0 1\n".into()),
            },
            Seen { kernel: "debian-6.1", checked: None, reasons: None },
        ];
        let text = tables(&seen);
        assert!(text.contains("| lock-released | checked | not run |"), "{text}");
        assert!(text.contains("| hooks (way) | entry-state (native) | not run |"), "{text}");
        assert!(text.contains("| address-colour | named (1 of 1) | not run |"), "{text}");
        assert!(text.contains("| vma-end | NOT named (0 of 1) | not run |"), "{text}");
        assert!(text.contains("| cow-write | not provoked | not run |"), "{text}");
    }
}
