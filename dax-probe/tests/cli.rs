//! The dax-probe binary on bad input: one line naming the problem, a
//! non-zero exit, no panic, no output left looking complete.

use std::{fs, path::PathBuf, process::Command};

fn dax_probe(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dax-probe")).args(args).output().expect("dax-probe runs");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8");
    (output.status.code().expect("an exit code, not a signal"), text(output.stdout), text(output.stderr))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dax-probe-cli-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_corrupt_trace_is_one_line_and_exit_2() {
    let path = scratch("corrupt.daxtrace");
    fs::write(&path, b"DAXPROBE\x02\x00\x00\x00garbage").unwrap();
    for command in ["check", "report"] {
        let (code, stdout, stderr) = dax_probe(&[command, path.to_str().unwrap()]);
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(stdout.is_empty(), "{command} printed no verdict or report: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{command}: one line: {stderr}");
        assert!(stderr.contains("is not a readable dax-probe trace"), "{stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn a_missing_trace_and_a_bad_flag_are_errors() {
    let (code, _, stderr) = dax_probe(&["check", "/nonexistent/x.daxtrace"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot open /nonexistent/x.daxtrace"), "{stderr}");
    let (code, _, stderr) = dax_probe(&["report", "--bogus", "x"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--bogus"), "{stderr}");
}

#[test]
fn a_trace_with_lost_events_is_inconclusive_not_pass() {
    use dax_probe::{record::Sink, trace_file};
    let path = scratch("lost.daxtrace");
    let writer = trace_file::Writer::create(&path).unwrap();
    let mut writer = writer;
    let event = dax_probe::events::test_support::fault(
        dax_probe_common::Kind::PmdFault,
        1,
        0,
        0,
        1 << 21,
        0,
        0,
        512,
        0,
    );
    writer.push(&event).unwrap();
    let done = dax_probe::events::test_support::fault(
        dax_probe_common::Kind::PmdFaultDone,
        1,
        0,
        0,
        1 << 21,
        0,
        0,
        512,
        0x100,
    );
    writer.push(&done).unwrap();
    writer.finish(trace_file::Header { lost: 1, ..trace_file::Header::default() }).unwrap();
    let (code, stdout, _) = dax_probe(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 3, "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("verdict: inconclusive (0 violations, 1 lost events, 2 events; 2 of 6 invariants checked)")
    );
}
