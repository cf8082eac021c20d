//! The dax-probe binary on bad input: one line naming the problem, a
//! non-zero exit, no panic, no output left looking complete.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

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
    use dax_probe::{
        event::What,
        stream::{Begin, Sink, Summary},
        testing::{event, Vma},
        trace::file::Writer,
    };
    let path = scratch("lost.daxtrace");
    let mut writer = Writer::create(&path).unwrap();
    writer.begin(&Begin::default());
    let vma = Vma::shared(0, 1 << 21, 512);
    writer.push(&event(1, What::PmdFault(vma.fault(0)))).unwrap();
    writer.push(&event(1, What::PmdFaultDone(vma.done(0, 0x100)))).unwrap();
    writer.finish(&Summary { events: 2, lost: 1, loss_unknown: false }).unwrap();
    let (code, stdout, _) = dax_probe(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 3, "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("verdict: inconclusive (0 violations, 1 lost events, 2 events; 2 of 10 invariants checked)")
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

/// A tracefs text trace of these lines, written to `name`, under the
/// header tracefs printed in the lab (7.2; its counts say nothing was lost).
fn tracefs_trace(name: &str, lines: &[String]) -> PathBuf {
    let path = scratch(name);
    let n = lines.len();
    let header = format!(
        "# tracer: nop\n#\n# entries-in-buffer/entries-written: {n}/{n}   #P:2\n#\n\
         #                                _-----=> irqs-off/BH-disabled\n\
         #                               / _----=> need-resched\n\
         #                              | / _---=> hardirq/softirq\n\
         #                              || / _--=> preempt-depth\n\
         #                              ||| / _-=> migrate-disable\n\
         #                              |||| /     delay\n\
         #           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n\
         #              | |         |   |||||     |         |\n"
    );
    fs::write(&path, header + &lines.concat()).unwrap();
    path
}

/// A tracefs text trace of one PMD fault that mapped 2 MiB.
fn one_pmd_fault(name: &str) -> PathBuf {
    tracefs_trace(
        name,
        &[
            tracefs_fault("dax_pmd_fault", "1.000000", ""),
            tracefs_fault("dax_pmd_fault_done", "1.000050", "NOPAGE"),
        ],
    )
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
    // The counting mode keeps no events: check says so rather than "unexpected argument".
    let (code, _, stderr) = dax_probe(&["check", "--count", trace.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("check has no counting mode: the invariants are checked on every event"),
        "{stderr}"
    );
    // Counting and a trace file or the stream's hooks do not go together.
    let (code, _, stderr) = dax_probe(&["run", "--count", "-o", "x.daxtrace", "--", "true"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("'--count' cannot be used with"), "{stderr}");
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
    let path = one_pmd_fault("imported.txt");
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

/// The body of one `GET path` from a server on `addr`, or None if it is not up.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

/// Kills the server when the test ends, passed or not.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scraper only sees counters rise between two of its samples; a replay
/// that ran before the first one would show Prometheus totals but no rates.
#[test]
fn a_replay_starts_at_the_first_scrape() {
    use std::{thread::sleep, time::Duration};
    let (_server, addr) = replay_server("replay.txt");
    // Up, but not yet scraped: the replay waits, however long that takes.
    sleep(Duration::from_millis(500));
    let first = http_get(&addr, "/metrics").unwrap();
    assert!(first.contains("dax_probe_events_total 0"), "the first scrape comes before the replay: {first}");
    let replayed = (0..50).find_map(|_| {
        sleep(Duration::from_millis(100));
        http_get(&addr, "/metrics").filter(|body| body.contains("dax_probe_events_total 2"))
    });
    let replayed = replayed.expect("the replay ran after the first scrape");
    assert!(replayed.contains(r#"dax_probe_faults_total{size="pmd",result="nopage"} 1"#), "{replayed}");
}

#[test]
fn text_that_cannot_say_what_it_lost_is_inconclusive() {
    // A capture of trace_pipe (or a grep of a trace): no header counts its losses.
    let path = scratch("pipe.txt");
    let lines = [
        tracefs_fault("dax_pmd_fault", "1.000000", ""),
        tracefs_fault("dax_pmd_fault_done", "1.000050", "NOPAGE"),
    ];
    fs::write(&path, lines.concat()).unwrap();
    let (code, stdout, stderr) = dax_probe(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(
        stdout.trim_end().ends_with(
            "lost events unknown (the trace does not count them), 2 events; 2 of 10 invariants checked)"
        ),
        "{stdout}"
    );
    assert!(stdout.lines().last().unwrap().starts_with("verdict: inconclusive"), "{stdout}");
}

/// Real traces that lost events, as the lab's import-loss scenario made
/// them (copied from its outbox): check must never pass them.
#[test]
fn real_traces_that_lost_events_are_inconclusive() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, lost, unknown) in [
        // tracefs' header: entries-in-buffer/entries-written: 84/2054.
        ("tracefs-overwritten.txt", 1970, false),
        // The kernel's "CPU:0 [LOST 1970 EVENTS]", in a capture with no header.
        ("trace_pipe-lost.txt", 1970, true),
        // trace-cmd 3.1's "CPU:1 [EVENTS DROPPED]": no count.
        ("trace-cmd-dropped.txt", 0, true),
    ] {
        let path = fixtures.join(file);
        let (code, stdout, stderr) = dax_probe(&["check", path.to_str().unwrap()]);
        assert_eq!(code, 3, "{file}: {stdout}{stderr}");
        assert!(stdout.lines().last().unwrap().starts_with("verdict: inconclusive"), "{file}: {stdout}");
        let (code, stdout, _) = dax_probe(&["report", "--json", path.to_str().unwrap()]);
        assert_eq!(code, 0);
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(
            (report["lost"].as_u64(), report["loss_unknown"].as_bool()),
            (Some(lost), Some(unknown)),
            "{file}"
        );
        assert_eq!(report["events"], 84, "{file}");
    }
}

/// Inputs that once panicked or ran out of memory stay here.
#[test]
fn crafted_timestamps_give_errors_or_bounded_work_never_a_panic() {
    // Past what nanoseconds in 64 bits hold: an overflow panicked.
    let path =
        tracefs_trace("overflow.txt", &[tracefs_fault("dax_pmd_fault", "99999999999999999.000000", "")]);
    let (code, stdout, stderr) = dax_probe(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("past what nanoseconds in 64 bits hold"), "{stderr}");
    // Two faults 570 years apart: the timeline asked for 1.7 TB.
    let path = tracefs_trace(
        "far-apart.txt",
        &[
            tracefs_fault("dax_pmd_fault", "1.000000", ""),
            tracefs_fault("dax_pmd_fault_done", "1.000010", "NOPAGE"),
            tracefs_fault("dax_pmd_fault", "18000000000.000000", ""),
            tracefs_fault("dax_pmd_fault_done", "18000000000.000010", "NOPAGE"),
        ],
    );
    let (code, stdout, stderr) = dax_probe(&["check", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let svg = scratch("far-apart.svg");
    let (code, _, stderr) = dax_probe(&["plot", path.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(fs::read_to_string(&svg).unwrap().contains("PMD fallbacks per "), "a plot was drawn");
}

/// A replay server on a free port, answering once it is up.
fn replay_server(name: &str) -> (Server, String) {
    use std::{thread::sleep, time::Duration};
    let trace = one_pmd_fault(name);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_dax-probe"))
            .args(["serve", "--speed", "0", "--listen", &addr, "--replay", trace.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up = (0..100).any(|_| {
        let answered = http_get(&addr, "/").is_some();
        if !answered {
            sleep(Duration::from_millis(100));
        }
        answered
    });
    assert!(up, "dax-probe serve answers on {addr}");
    (server, addr)
}

#[test]
fn serve_survives_bad_requests_and_too_many_connections() {
    use std::io::{Read, Write};
    let (_server, addr) = replay_server("resilient.txt");
    // Garbage, a request cut short, a hang-up: each ends its own connection.
    for junk in [&b"\xff\xfe\x00GARBAGE\r\n\r\n"[..], b"GET", b""] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.write_all(junk).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
    }
    assert!(http_get(&addr, "/metrics").unwrap().contains("dax_probe_events_total"), "still serving");
    // Every slot taken by a client that sends nothing: one more is told to come back.
    let idle: Vec<_> = (0..32).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut busy = std::net::TcpStream::connect(&addr).unwrap();
    let mut answer = String::new();
    busy.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    drop(idle);
    let served = (0..50).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        http_get(&addr, "/metrics")
    });
    assert!(served.is_some_and(|body| body.contains("dax_probe_events_total")), "slots come back");
}
