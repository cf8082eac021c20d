//! `cargo xtask demo`: the README's main job.
//!
//! Boots the custom kernel twice with the seed's fio job: on the 2 MiB-aligned
//! DAX XFS (PMD faults) and on a plain one (every PMD fault falls back), and
//! puts the two side by side: fio bandwidth and the fs_dax fault counts that
//! tracefs recorded. The table is also left in target/dax-probe-demo/.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{bail, Context, Result};

use crate::{image, kernel, project_root, scenario, setup, vm};

const SCENARIOS: &[&str] = &["pmd-smoke", "pmd-misaligned"];

pub fn run(kernel_source: Option<&Path>) -> Result<()> {
    let tools = setup::ensure()?;
    let guest = kernel::get(kernel::Flavour::Custom, &tools, kernel_source)?;
    let initramfs = image::build(&guest, &tools)?;
    let mut table = String::from(
        "| scenario | fio read | fio write | PMD faults NOPAGE | PMD faults FALLBACK | PTE faults |\n|---|---|---|---|---|---|\n",
    );
    for name in SCENARIOS {
        let outcome = vm::run(&guest, &initramfs, &scenario::find(name)?)?;
        if let Some(why) = outcome.failure {
            bail!("demo scenario {name} failed: {why}");
        }
        let outbox = outcome.out_dir.join("outbox");
        let counts = read_counts(&outbox.join("fs_dax.counts"))?;
        let fio = fs::read_to_string(outbox.join("fio.txt")).context("the guest sent no fio output")?;
        let count = |key: &str| counts.get(key).copied().unwrap_or(0);
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            fio_bandwidth(&fio, "READ").unwrap_or("?"),
            fio_bandwidth(&fio, "WRITE").unwrap_or("?"),
            count("dax_pmd_fault_done NOPAGE"),
            count("dax_pmd_fault_done FALLBACK"),
            count("dax_pte_fault_done NOPAGE"),
        ));
    }
    let out = project_root().join("target/dax-probe-demo");
    fs::create_dir_all(&out)?;
    fs::write(out.join("summary.md"), &table)?;
    println!("\n{table}\n(fio under TCG: compare the two rows, not the absolute figures)");
    println!("demo: table in {}", out.join("summary.md").display());
    Ok(())
}

/// The "EVENT RESULT COUNT" table the guest's lab_trace_counts writes.
fn read_counts(path: &Path) -> Result<BTreeMap<String, u64>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("the guest sent no counts ({})", path.display()))?;
    text.lines()
        .map(|line| {
            let (key, count) = line.rsplit_once(' ').context("bad counts line")?;
            Ok((key.to_owned(), count.parse()?))
        })
        .collect()
}

/// "bw=204MiB/s (214MB/s)" of fio's `   READ: bw=...` group line.
fn fio_bandwidth<'a>(fio: &'a str, direction: &str) -> Option<&'a str> {
    let line = fio.lines().find(|line| line.trim_start().starts_with(&format!("{direction}:")))?;
    let at = line.find("bw=")?;
    line[at + 3..].split(',').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fio_group_bandwidth() {
        let fio = "Run status group 0 (all jobs):\n   READ: bw=195MiB/s (204MB/s), 195MiB/s-195MiB/s (204MB/s-204MB/s), io=128MiB\n  WRITE: bw=194MiB/s (203MB/s), x\n";
        assert_eq!(fio_bandwidth(fio, "READ"), Some("195MiB/s (204MB/s)"));
        assert_eq!(fio_bandwidth(fio, "WRITE"), Some("194MiB/s (203MB/s)"));
        assert_eq!(fio_bandwidth("", "READ"), None);
    }
}
