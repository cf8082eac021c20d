//! The command `dax-probe run` measures. Any command runs as given; fio is
//! also asked for its JSON report (`--output-format=normal,json`) into a
//! file, whose normal part is passed on to the user untouched and whose JSON
//! part gives the bandwidth and IOPS of the summary.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

/// A command ready to run, and where fio's report will be, if it is fio.
pub struct Workload {
    pub command: Vec<String>,
    fio_report: Option<FioReport>,
}

struct FioReport {
    path: PathBuf,
    /// The user named the file (`--output`): it is theirs, so it stays, and
    /// its normal output is not printed again.
    theirs: bool,
}

/// fio's read or write totals over all jobs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Direction {
    /// Bytes per second.
    pub bandwidth: f64,
    pub iops: f64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FioSummary {
    pub read: Direction,
    pub write: Direction,
}

impl Workload {
    /// `command` as it will run; `fio` gets the output options that give us
    /// its JSON, in a file named after `scratch` unless it names its own.
    pub fn new(command: &[String], scratch: &Path) -> Workload {
        let is_fio =
            command.first().is_some_and(|program| Path::new(program).file_name() == Some("fio".as_ref()));
        if !is_fio {
            return Workload { command: command.to_vec(), fio_report: None };
        }
        let mut command = command.to_vec();
        let formats = take_option(&mut command, "--output-format").unwrap_or_else(|| "normal".to_owned());
        let formats =
            if formats.split(',').any(|f| f == "json") { formats } else { format!("{formats},json") };
        let fio_report = match take_option(&mut command, "--output") {
            Some(path) => FioReport { path: PathBuf::from(path), theirs: true },
            None => FioReport { path: scratch.to_owned(), theirs: false },
        };
        command.insert(1, format!("--output-format={formats}"));
        command.insert(2, format!("--output={}", fio_report.path.display()));
        Workload { command, fio_report: Some(fio_report) }
    }

    /// After the command exited: fio's summary (`None` for other commands),
    /// with fio's normal output handed to `show`.
    pub fn fio_summary(self, show: impl FnOnce(&str)) -> Result<Option<FioSummary>> {
        let Some(report) = self.fio_report else { return Ok(None) };
        let text = std::fs::read_to_string(&report.path)
            .with_context(|| format!("fio left no report in {}", report.path.display()));
        if !report.theirs {
            let _ = std::fs::remove_file(&report.path);
        }
        let text = text?;
        let (normal, json) = split_report(&text);
        if !report.theirs {
            show(&normal);
        }
        let json = json.context("fio's report has no JSON part (did fio fail before its jobs ran?)")?;
        parse_json(&json).map(Some)
    }
}

/// Removes `--NAME=VALUE` or `--NAME VALUE` from fio's arguments (the
/// program is `command[0]`), returning the last VALUE.
fn take_option(command: &mut Vec<String>, name: &str) -> Option<String> {
    let mut value = None;
    let mut i = 1;
    while i < command.len() {
        if let Some(v) = command[i].strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) {
            value = Some(v.to_owned());
            command.remove(i);
        } else if command[i] == name && i + 1 < command.len() {
            value = Some(command.remove(i + 1));
            command.remove(i);
        } else {
            i += 1;
        }
    }
    value
}

/// fio's report with `normal,json`: the JSON object is the block from a
/// line `{` to a line `}`; everything else is the normal output.
fn split_report(text: &str) -> (String, Option<String>) {
    let mut normal = String::new();
    let mut json: Option<String> = None;
    let mut in_json = false;
    for line in text.lines() {
        if !in_json && json.is_none() && line == "{" {
            in_json = true;
        }
        if in_json {
            let block = json.get_or_insert_with(String::new);
            block.push_str(line);
            block.push('\n');
            in_json = line != "}";
        } else {
            normal.push_str(line);
            normal.push('\n');
        }
    }
    (normal, json)
}

/// Read and write totals over all of fio's jobs.
pub fn parse_json(text: &str) -> Result<FioSummary> {
    let report: Value = serde_json::from_str(text).context("fio's JSON report does not parse")?;
    let jobs = report["jobs"].as_array().context("fio's JSON report has no jobs")?;
    let total = |direction: &str| {
        jobs.iter().fold(Direction::default(), |sum, job| {
            let d = &job[direction];
            Direction {
                bandwidth: sum.bandwidth + d["bw_bytes"].as_f64().unwrap_or(0.0),
                iops: sum.iops + d["iops"].as_f64().unwrap_or(0.0),
                bytes: sum.bytes + d["io_bytes"].as_u64().unwrap_or(0),
            }
        })
    };
    Ok(FioSummary { read: total("read"), write: total("write") })
}

impl Direction {
    /// As fio prints it in its normal output: "204MB/s, 49.9k IOPS".
    pub fn text(&self) -> String {
        format!("{:.1} MB/s, {:.0} IOPS", self.bandwidth / 1e6, self.iops)
    }

    pub fn json(&self) -> Value {
        json!({ "bandwidth_bytes_per_s": self.bandwidth, "iops": self.iops, "io_bytes": self.bytes })
    }
}

impl FioSummary {
    pub fn json(&self) -> Value {
        json!({ "read": self.read.json(), "write": self.write.json() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn other_commands_run_as_given() {
        let workload = Workload::new(&strings(&["dd", "if=x"]), Path::new("/tmp/s"));
        assert_eq!(workload.command, ["dd", "if=x"]);
        assert_eq!(workload.fio_summary(|_| panic!("not fio")).unwrap(), None);
    }

    #[test]
    fn fio_is_asked_for_json_too() {
        let workload = Workload::new(&strings(&["/usr/bin/fio", "job.fio"]), Path::new("/tmp/s"));
        assert_eq!(
            workload.command,
            ["/usr/bin/fio", "--output-format=normal,json", "--output=/tmp/s", "job.fio"]
        );
        let workload = Workload::new(
            &strings(&["fio", "--output", "mine.txt", "--output-format=terse", "j"]),
            Path::new("/tmp/s"),
        );
        assert_eq!(workload.command, ["fio", "--output-format=terse,json", "--output=mine.txt", "j"]);
    }

    /// From fio 3.33 (`--output-format=normal,json`), shortened.
    const REPORT: &str = "randrw: (g=0): rw=randrw, bs=(R) 4096B-4096B, ioengine=mmap, iodepth=1\nfio-3.33\n{\n  \"fio version\" : \"fio-3.33\",\n  \"jobs\" : [\n    {\n      \"jobname\" : \"randrw\",\n      \"read\" : { \"io_bytes\" : 134479872, \"bw_bytes\" : 214083120, \"iops\" : 52266.39 },\n      \"write\" : { \"io_bytes\" : 133955584, \"bw_bytes\" : 213248512, \"iops\" : 52062.62 }\n    },\n    {\n      \"jobname\" : \"second\",\n      \"read\" : { \"io_bytes\" : 1000, \"bw_bytes\" : 1000, \"iops\" : 1.0 },\n      \"write\" : { \"io_bytes\" : 0, \"bw_bytes\" : 0, \"iops\" : 0 }\n    }\n  ]\n}\n\nRun status group 0 (all jobs):\n   READ: bw=204MiB/s (214MB/s)\n";

    #[test]
    fn the_report_splits_into_normal_output_and_json() {
        let (normal, json) = split_report(REPORT);
        assert!(normal.starts_with("randrw: (g=0)"));
        assert!(normal.contains("   READ: bw=204MiB/s (214MB/s)"));
        assert!(!normal.contains("jobname"));
        let summary = parse_json(&json.unwrap()).unwrap();
        assert_eq!(summary.read.bandwidth, 214_084_120.0);
        assert_eq!(summary.read.bytes, 134_480_872);
        assert_eq!(summary.write.iops, 52062.62);
        assert_eq!(summary.read.text(), "214.1 MB/s, 52267 IOPS");
    }

    #[test]
    fn a_report_without_json_is_an_error() {
        let path = std::env::temp_dir().join(format!("dax-probe-test-fio-{}", std::process::id()));
        std::fs::write(&path, "fio: job file not found\n").unwrap();
        let workload = Workload::new(&strings(&["fio", "x.fio"]), &path);
        let error = workload.fio_summary(|_| {}).unwrap_err();
        assert!(format!("{error:#}").contains("no JSON part"), "{error:#}");
        assert!(!path.exists(), "the scratch report is removed");
    }
}
