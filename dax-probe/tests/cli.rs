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

#[test]
fn completions_and_help_with_examples() {
    let (code, stdout, _) = dax_probe(&["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("complete -F _dax__probe") && stdout.contains("serve"),
        "a bash completion script"
    );
    for command in ["run", "record", "check", "report", "plot", "serve", "completions"] {
        let (code, stdout, _) = dax_probe(&[command, "--help"]);
        assert_eq!(code, 0, "{command} --help");
        assert!(stdout.contains("Examples:\n  dax-probe "), "{command} --help has examples: {stdout}");
    }
}

/// A PMD fault as tracefs prints it, at `time` with `result` last.
fn tracefs_fault(event: &str, time: &str, result: &str) -> String {
    format!(
        " fio-9 [000] ..... {time}: {event}: dev 259:0 ino 0xc shared USER address 0x200000 \
         vm_start 0x200000 vm_end 0x600000 pgoff 0x0 max_pgoff 0x3ff {result}\n"
    )
}

/// A tracefs text trace of these lines, written to `name`.
fn tracefs_trace(name: &str, lines: &[String]) -> PathBuf {
    let path = scratch(name);
    fs::write(&path, format!("# tracer: nop\n{}", lines.concat())).unwrap();
    path
}

#[test]
fn bad_plot_file_and_listen_address_are_one_line_errors() {
    let trace = tracefs_trace("tracefs.txt", &[tracefs_fault("dax_pmd_fault", "1.000000", "")]);
    let (code, stdout, stderr) = dax_probe(&["plot", trace.to_str().unwrap(), "-o", "/tmp/x.jpg"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("must end in .png or .svg"), "{stderr}");
    let (code, _, stderr) = dax_probe(&["serve", "--replay", trace.to_str().unwrap(), "--listen", "nowhere"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--listen nowhere: not an address: give IP:PORT"), "{stderr}");
    let (code, _, stderr) = dax_probe(&["check", scratch("missing.txt").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn text_that_is_no_trace_says_how_to_get_one() {
    let path = scratch("notes.txt");
    fs::write(&path, "just some notes\n").unwrap();
    let (code, stdout, stderr) = dax_probe(&["report", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty());
    assert!(stderr.contains("is not a dax-probe trace, nor tracefs or trace-cmd report text"), "{stderr}");
    assert!(stderr.contains("dax-probe record -o FILE"), "{stderr}");
}

#[test]
fn an_imported_trace_says_what_it_cannot_show() {
    let path = tracefs_trace(
        "imported.txt",
        &[
            tracefs_fault("dax_pmd_fault", "1.000000", ""),
            tracefs_fault("dax_pmd_fault_done", "1.000050", "NOPAGE"),
        ],
    );
    let (code, stdout, _) = dax_probe(&["check", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["verdict"], "pass");
    assert_eq!(value["invariants_checked"].as_array().unwrap().len(), 2);
    assert!(value["coverage"][0].as_str().unwrap().starts_with("imported from tracefs text"));
    let (code, stdout, _) = dax_probe(&["report", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(stdout.lines().nth(1).unwrap().contains("cannot show entry locks"), "{stdout}");
    assert!(stdout.contains("faults: pmd 1 (nopage 1, fallback 0"), "{stdout}");
}
