//! `cargo xtask demo`: the README's main job.
//!
//! Boots the custom kernel with the emulated NVDIMM, under QEMU's icount so
//! that the table's figures repeat from run to run, and runs the lab's
//! fio-run scenario: the seed's fio job under `dax-probe run` on the 2 MiB
//! aligned DAX XFS, on the reference module's /dev/daxref, and on an XFS
//! whose extents make every PMD fault fall back. Leaves the plots, the
//! summaries (text and JSON) and a table of the three under
//! target/dax-probe-demo/.

use std::{fs, path::Path};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{image, kernel, project_root, scenario, setup, vm};

const SCENARIO: &str = "fio-run";
/// What the scenario leaves that the demo keeps.
const ARTIFACTS: &[&str] = &[
    "run-xfs.txt",
    "xfs.svg",
    "run-daxref.json",
    "daxref.svg",
    "run-fallback.json",
    "fallback.svg",
    "fallback.png",
    "fallback.daxtrace",
    "live.prom",
];

/// One row of the table: a run's numbers.
struct Row {
    name: &'static str,
    read_mb: f64,
    write_mb: f64,
    pmd_nopage: u64,
    pmd_fallback: u64,
    pte: u64,
    reasons: String,
    verdict: String,
}

pub fn run(kernel_source: Option<&Path>) -> Result<()> {
    println!("demo: 1/4 tools (cargo xtask setup)");
    let tools = setup::ensure()?;
    println!("demo: 2/4 the guest kernel (cached after the first build, ~11 min cold on 2 cores)");
    let guest = kernel::get(kernel::Flavour::Custom, &tools, kernel_source)?;
    println!("demo: 3/4 the guest image (dax-probe, the reference module, fio)");
    let initramfs = image::build(&guest, &tools)?;
    println!("demo: 4/4 booting QEMU (TCG, icount) and running {SCENARIO}: three fio runs under dax-probe run, a few minutes");
    let outcome = vm::run(&guest, &initramfs, &scenario::find(SCENARIO)?, vm::Clock::Icount)?;
    if let Some(why) = outcome.failure {
        bail!("the demo's scenario {SCENARIO} failed: {why} (its log: {})", outcome.out_dir.display());
    }
    let outbox = outcome.out_dir.join("outbox");
    let out = project_root().join("target/dax-probe-demo");
    if out.exists() {
        fs::remove_dir_all(&out)?;
    }
    fs::create_dir_all(&out)?;
    for name in ARTIFACTS {
        fs::copy(outbox.join(name), out.join(name)).with_context(|| format!("the guest left no {name}"))?;
    }
    let rows = [
        text_row("XFS, 2 MiB aligned", &fs::read_to_string(out.join("run-xfs.txt"))?)?,
        json_row("/dev/daxref (reference module)", &out.join("run-daxref.json"))?,
        json_row("XFS, extents not aligned", &out.join("run-fallback.json"))?,
    ];
    let table = table(&rows);
    fs::write(out.join("summary.md"), &table)?;
    println!(
        "\n{table}\n(fio under dax-probe run, in a guest whose time counts instructions (icount): \
         the rows repeat from run to run and compare with each other; they are not the speed of real pmem, \
         and the fallback row pays the probe's cost per event: `cargo xtask bench seed` compares the \
         layouts with nothing attached)"
    );
    println!("demo: plots, summaries and this table are in {}", out.display());
    Ok(())
}

fn table(rows: &[Row]) -> String {
    let mut table = String::from(
        "| run | fio read MB/s | fio write MB/s | PMD faults mapped 2 MiB | PMD fallbacks | PTE faults | fallback reasons | verdict |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&format!(
            "| {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |\n",
            row.name,
            row.read_mb,
            row.write_mb,
            row.pmd_nopage,
            row.pmd_fallback,
            row.pte,
            row.reasons,
            row.verdict
        ));
    }
    table
}

/// A row from the JSON summary of `dax-probe run --json`.
/// "extent-too-short 1, direct-access 127", or "-" when nothing fell back.
fn reason_cell(reasons: &[String]) -> String {
    if reasons.is_empty() {
        "-".into()
    } else {
        reasons.join(", ")
    }
}

fn json_row(name: &'static str, path: &Path) -> Result<Row> {
    let summary: Value = serde_json::from_str(&fs::read_to_string(path)?)
        .with_context(|| format!("{} is not dax-probe run's JSON", path.display()))?;
    let number =
        |value: &Value| value.as_u64().with_context(|| format!("{}: a count is missing", path.display()));
    let reasons: Vec<String> = summary["fallback_reasons"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    Ok(Row {
        name,
        read_mb: summary["fio"]["read"]["bandwidth_bytes_per_s"].as_f64().unwrap_or(0.0) / 1e6,
        write_mb: summary["fio"]["write"]["bandwidth_bytes_per_s"].as_f64().unwrap_or(0.0) / 1e6,
        pmd_nopage: number(&summary["faults"]["pmd_nopage"])?,
        pmd_fallback: number(&summary["faults"]["pmd_fallback"])?,
        pte: number(&summary["faults"]["pte"])?,
        reasons: reason_cell(&reasons),
        verdict: summary["verdict"]["verdict"].as_str().unwrap_or("?").to_owned(),
    })
}

/// A row from the text summary of `dax-probe run`.
fn text_row(name: &'static str, text: &str) -> Result<Row> {
    let line = |prefix: &str| {
        text.lines()
            .rev()
            .find(|line| line.starts_with(prefix))
            .with_context(|| format!("no `{prefix}` line"))
    };
    let after = |line: &str, word: &str| -> Result<f64> {
        let rest = &line[line.find(word).with_context(|| format!("no {word} in {line:?}"))? + word.len()..];
        let number: String =
            rest.trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        number.parse().with_context(|| format!("no number after {word} in {line:?}"))
    };
    let fio = line("fio: ")?;
    let faults = line("faults: ")?;
    let reasons: Vec<String> = text
        .lines()
        .skip_while(|line| *line != "fallbacks by reason:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().collect::<Vec<_>>().try_into().ok())
        .filter(|[_, n]: &[&str; 2]| *n != "0")
        .map(|[reason, n]| format!("{reason} {n}"))
        .collect();
    Ok(Row {
        name,
        read_mb: after(fio, "read")?,
        write_mb: after(fio, "write")?,
        pmd_nopage: after(faults, "nopage")? as u64,
        pmd_fallback: after(faults, "fallback")? as u64,
        pte: after(faults, "pte")? as u64,
        reasons: reason_cell(&reasons),
        verdict: line("verdict: ")?.split_whitespace().nth(1).unwrap_or("?").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_text_summary() {
        let text = "Run status group 0 (all jobs):\n\ndax-probe: summary of `fio x` (exit status: 0)\n\
            fio: read 214.1 MB/s, 52267 IOPS; write 213.2 MB/s, 52063 IOPS\n\
            faults: pmd 193 (nopage 193, fallback 0, 0.0% fallback), pte 7\n\
            fallbacks by reason:\n  unknown              0\nlost events: 0\n\
            verdict: pass (0 violations, 0 lost events, 1286 events)\n";
        let row = text_row("x", text).unwrap();
        assert_eq!((row.read_mb, row.write_mb), (214.1, 213.2));
        assert_eq!((row.pmd_nopage, row.pmd_fallback, row.pte), (193, 0, 7));
        assert_eq!(row.reasons, "-");
        assert_eq!(row.verdict, "pass");
    }
}
