//! The lab's scenarios: guest shell scripts in `lab/scenarios/NAME.sh`, and
//! its benchmarks, the same kind of script in `lab/benches/NAME.sh` (run by
//! `cargo xtask bench`, never by the suite).
//!
//! A scenario's header says what it shows and how it runs:
//!
//! ```text
//! # One line: what the scenario shows.
//! # kernels: custom debian-6.1
//! # timeout: 300
//! # expect-failure: timed out        (lab selftests only)
//! # allow-warning: insert_pmd        (a kernel WARNING naming this is a result, not a failure)
//! ```
//!
//! It runs with `sh -e` after the guest init has made the DAX-mounted XFS,
//! and passes when it exits 0 (and the kernel log stays clean). The lab's own
//! selftests are scenarios that must fail: `expect-failure` names the text the
//! failure must contain, so the test suite checks the lab catches them.

use std::{fs, time::Duration};

use anyhow::{Context, Result};

use crate::{kernel::Flavour, project_root};

pub struct Scenario {
    pub name: String,
    pub summary: String,
    pub kernels: Vec<Flavour>,
    /// Wall-clock limit for the whole VM run, boot included.
    pub timeout: Duration,
    /// For selftests: the run must fail with a reason containing this.
    pub expect_failure: Option<String>,
    /// Kernel WARNINGs naming one of these are reported, not failures: the
    /// kernel's own checks meeting the bugs a scenario injects on purpose.
    pub allowed_warnings: Vec<String>,
}

/// The suite's scenarios.
pub fn all() -> Result<Vec<Scenario>> {
    read_folder("lab/scenarios")
}

/// The benchmarks' guest scripts.
pub fn bench(name: &str) -> Result<Scenario> {
    read_folder("lab/benches")?
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no lab/benches/{name}.sh"))
}

fn read_folder(folder: &str) -> Result<Vec<Scenario>> {
    let mut scenarios = Vec::new();
    for entry in fs::read_dir(project_root().join(folder))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "sh") {
            let name = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let text = fs::read_to_string(&path)?;
            scenarios.push(parse(&name, &text).with_context(|| format!("in {}", path.display()))?);
        }
    }
    scenarios.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(scenarios)
}

pub fn find(name: &str) -> Result<Scenario> {
    let scenarios = all()?;
    let names: Vec<_> = scenarios.iter().map(|s| s.name.clone()).collect();
    scenarios
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no scenario `{name}`; the lab has: {}", names.join(", ")))
}

fn parse(name: &str, text: &str) -> Result<Scenario> {
    let header: Vec<_> = text.lines().map_while(|line| line.strip_prefix("# ")).collect();
    let field = |key: &str| header.iter().find_map(|line| line.strip_prefix(key)).map(str::trim);
    let summary = header.first().context("no `# summary` line at the top")?.to_string();
    let kernels = field("kernels:")
        .context("no `# kernels:` line")?
        .split_whitespace()
        .map(|name| Flavour::from_name(name).with_context(|| format!("unknown kernel `{name}`")))
        .collect::<Result<_>>()?;
    let timeout = field("timeout:").context("no `# timeout:` line")?.parse().context("bad timeout")?;
    let expect_failure = field("expect-failure:").map(str::to_owned);
    let allowed_warnings = field("allow-warning:")
        .map(|words| words.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Scenario {
        name: name.to_owned(),
        summary,
        kernels,
        timeout: Duration::from_secs(timeout),
        expect_failure,
        allowed_warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header() {
        let scenario = parse("x", "# Shows x.\n# kernels: custom debian-6.1\n# timeout: 60\necho\n").unwrap();
        assert_eq!(scenario.summary, "Shows x.");
        assert_eq!(scenario.kernels, [Flavour::Custom, Flavour::Debian61]);
        assert_eq!(scenario.timeout, Duration::from_secs(60));
        assert_eq!(scenario.expect_failure, None);
        let selftest =
            parse("y", "# Hangs.\n# kernels: custom\n# timeout: 9\n# expect-failure: timed out\n").unwrap();
        assert_eq!(selftest.expect_failure.as_deref(), Some("timed out"));
        assert!(selftest.allowed_warnings.is_empty());
        let buggy =
            parse("z", "# Bugs.\n# kernels: custom\n# timeout: 9\n# allow-warning: insert_pmd\n").unwrap();
        assert_eq!(buggy.allowed_warnings, ["insert_pmd"]);
        assert!(parse("x", "# Shows x.\n# kernels: windows\n# timeout: 1\n").is_err());
        assert!(parse("x", "echo no header\n").is_err());
    }

    #[test]
    fn every_scenario_in_the_repository_parses() {
        let scenarios = all().unwrap();
        assert!(scenarios.iter().any(|s| s.name == "pmd-smoke"));
        assert!(scenarios.iter().any(|s| s.name == "pmd-misaligned"));
    }
}
