//! `cargo xtask dashboards TRACE`: proves the dashboards against a real
//! Prometheus. `dax-probe serve --replay TRACE` plays a recorded VM trace;
//! Prometheus (Debian's) scrapes it with `dashboards/prometheus.yml` as it
//! is; then every PromQL expression of every panel of every dashboard must
//! return data: a number that is not NaN, and above zero for a rate.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{cmd, project_root};

/// How long the replay, the scrapes and the rate windows may take to fill
/// (about 60 s; in the suite it shares the cores with two VMs).
const PATIENCE: Duration = Duration::from_secs(180);
/// What the dashboards' Grafana variables stand for in the check.
const VARIABLES: &[(&str, &str)] = &[("$__rate_interval", "1m"), ("$process", ".*")];

/// Kills a child process when dropped, so that no server outlives the check.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every `expr` of every panel of every dashboard in `dashboards/`.
pub fn expressions() -> Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(project_root().join("dashboards"))? {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let dashboard: Value = serde_json::from_str(&fs::read_to_string(&path)?)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let panels =
            dashboard["panels"].as_array().with_context(|| format!("{}: no panels", path.display()))?;
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().context("a target without expr")?;
                found.push((panel["title"].as_str().unwrap_or("?").to_owned(), expr.to_owned()));
            }
        }
    }
    if found.is_empty() {
        bail!("no dashboard panels with PromQL in dashboards/");
    }
    Ok(found)
}

/// Returns a one-line summary of what it proved.
pub fn check(trace: &Path) -> Result<String> {
    let config = project_root().join("dashboards/prometheus.yml");
    let target = scrape_target(&fs::read_to_string(&config)?)?;
    let dax_probe = build_dax_probe()?;
    let storage = tempdir("prometheus")?;
    let prometheus_port = free_port()?;
    let speed = replay_speed(&dax_probe, trace)?;
    println!("dashboards: dax-probe serve --replay {} --speed {speed:.3} on {target}", trace.display());
    let _serve = Running(
        Command::new(&dax_probe)
            .args(["serve", "--listen", &target, "--speed", &format!("{speed:.3}"), "--replay"])
            .arg(trace)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start dax-probe serve")?,
    );
    println!("dashboards: prometheus (config {}) on 127.0.0.1:{prometheus_port}", config.display());
    let _prometheus = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(storage.join("prometheus.log"))?)
            .spawn()
            .context("cannot start prometheus (cargo xtask setup installs it)")?,
    );
    let api = format!("http://127.0.0.1:{prometheus_port}/api/v1/query");
    let expressions = expressions()?;
    let started = Instant::now();
    loop {
        let answers: Vec<_> = expressions.iter().map(|(_, expr)| query(&api, &substitute(expr))).collect();
        let empty: Vec<_> = expressions
            .iter()
            .zip(&answers)
            .filter(|((_, expr), answer)| !answer.as_ref().is_ok_and(|values| shows_data(expr, values)))
            .collect();
        if empty.is_empty() {
            for ((title, expr), values) in expressions.iter().zip(&answers) {
                let values = values.as_ref().expect("checked");
                let largest = values.iter().copied().fold(f64::NAN, f64::max);
                println!("dashboards: ok: {title}: {expr} -> {} series, largest {largest}", values.len());
            }
            let summary =
                format!("all {} PromQL expressions of the dashboards returned data", expressions.len());
            println!("dashboards: {summary}");
            return Ok(summary);
        }
        if started.elapsed() > PATIENCE {
            for ((title, expr), answer) in empty {
                println!("dashboards: FAILED: {title}: {expr}: {answer:?}");
            }
            bail!(
                "dashboard expressions without data after {}s (log: {})",
                PATIENCE.as_secs(),
                storage.display()
            );
        }
        thread::sleep(Duration::from_secs(3));
    }
}

/// How long a replay takes at the least: Prometheus must scrape every
/// series (the per-file and per-process ones appear with their first
/// fault) at least twice while it rises, at the config's 5 s interval.
const REPLAY_AT_LEAST: f64 = 40.0;

/// The replay's pace: as recorded, or slower for a trace shorter than
/// [`REPLAY_AT_LEAST`] (a fast run's whole trace may fit between two scrapes).
fn replay_speed(dax_probe: &Path, trace: &Path) -> Result<f64> {
    let report = cmd::output(Command::new(dax_probe).args(["report", "--json"]).arg(trace))?;
    let report: Value = serde_json::from_str(&report).context("dax-probe report --json is not JSON")?;
    let duration = report["duration_s"].as_f64().context("the report has no duration_s")?;
    Ok((duration / REPLAY_AT_LEAST).clamp(0.001, 1.0))
}

/// A number that is not NaN; for a rate, one above zero, since the replay
/// makes every counter the panels rate rise (a rate of 0 everywhere means
/// Prometheus never saw the replay move).
fn shows_data(expr: &str, values: &[f64]) -> bool {
    let least = if expr.contains("rate(") { f64::MIN_POSITIVE } else { f64::NEG_INFINITY };
    values.iter().any(|value| value.is_finite() && *value >= least)
}

/// The expression as Grafana would send it.
fn substitute(expr: &str) -> String {
    VARIABLES.iter().fold(expr.to_owned(), |expr, (name, value)| expr.replace(name, value))
}

/// The values of an instant query's series.
fn query(api: &str, expr: &str) -> Result<Vec<f64>> {
    let body = ureq::get(api).query("query", expr).call()?.body_mut().read_to_string()?;
    let answer: Value = serde_json::from_str(&body)?;
    if answer["status"] != "success" {
        bail!("prometheus: {}", answer["error"]);
    }
    let result = answer["data"]["result"].as_array().context("no result")?;
    Ok(result.iter().filter_map(|series| series["value"][1].as_str()?.parse().ok()).collect())
}

/// The single target of the scrape config (what dax-probe must listen on).
fn scrape_target(config: &str) -> Result<String> {
    let line =
        config.lines().find(|line| line.trim_start().starts_with("- targets:")).context("no targets")?;
    let target = line.split('"').nth(1).context("targets: [\"HOST:PORT\"] expected")?;
    Ok(target.to_owned())
}

/// The release build, which the suite has already made for the guests'
/// image (a debug build would be one more build of the crate and its
/// dependencies).
fn build_dax_probe() -> Result<PathBuf> {
    cmd::run(
        Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "-p", "dax-probe"])
            .current_dir(project_root()),
    )?;
    Ok(project_root().join("target/release/dax-probe"))
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh `target/tmp/NAME`: each check replaces the last one's, kept for its log.
fn tempdir(name: &str) -> Result<PathBuf> {
    let dir = project_root().join("target/tmp").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_has_promql_and_the_config_one_target() {
        let expressions = expressions().unwrap();
        assert!(expressions.len() >= 10, "{expressions:?}");
        for (_, expr) in &expressions {
            assert!(!substitute(expr).contains('$'), "a Grafana variable the check does not know: {expr}");
        }
        let config = fs::read_to_string(project_root().join("dashboards/prometheus.yml")).unwrap();
        assert_eq!(scrape_target(&config).unwrap(), "127.0.0.1:9478");
    }

    #[test]
    fn a_rate_must_move_and_nan_is_no_data() {
        let rate = "sum(rate(dax_probe_events_total[1m]))";
        assert!(!shows_data(rate, &[0.0, 0.0]), "a replay Prometheus never saw move");
        assert!(shows_data(rate, &[0.0, 2.5]));
        assert!(shows_data("sum(dax_probe_lost_events_total)", &[0.0]), "a total of 0 is data");
        assert!(!shows_data("histogram_quantile(0.5, x)", &[f64::NAN]));
        assert!(!shows_data("sum(x)", &[]));
    }
}
