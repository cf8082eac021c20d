//! Import: the text of tracefs (`/sys/kernel/tracing/trace`) and of
//! `trace-cmd report`, for traces recorded with the kernel's own tools by
//! users without BPF permission.
//!
//! Only the `fs_dax` tracepoints are read (other events are skipped), as
//! include/trace/events/fs_dax.h prints them:
//!
//! ```text
//!  fio-95  (  94) [001] .....  23.904711: dax_pmd_fault_done: dev 259:0 ino 0x83 shared WRITE|USER
//!      address 0x7f7c41c00000 vm_start 0x7f7c41c00000 vm_end 0x7f7c51c00000 pgoff 0x0 max_pgoff 0xffff NOPAGE
//! ```
//!
//! Such a trace has no entry locks, waits or wake-ups, and of the fields
//! only what the format prints: `vm_flags` is reduced to shared/private.
//! The task is a thread; its process is known only when tracefs recorded
//! it (`options/record-tgid`), otherwise the thread stands for it.
//!
//! Lost events, from every marker the tools print: tracefs' header line
//! `entries-in-buffer/entries-written: KEPT/WRITTEN`, the kernel's
//! `CPU:N [LOST M EVENTS]` and `CPU:N [LOST EVENTS]` (no count), and
//! trace-cmd's `CPU:N [M EVENTS DROPPED]` and `CPU:N [EVENTS DROPPED]`. Only
//! a text that begins with tracefs' header or trace-cmd's first line says
//! what it lost; any other (a `trace_pipe` capture, a grep of a trace), or a
//! marker without a count, leaves the loss unknown: every check of it is
//! inconclusive.

use std::io::BufRead;

use anyhow::{ensure, Context, Result};
use dax_probe_common::{Field, Kind, Record, FIELD_COUNT, TRACEPOINT_COUNT};

use crate::{
    event::{Comm, Event},
    kernel::{mkdev, FAULT_FLAG_NAMES, VM_FAULT_NAMES, VM_SHARED},
    stream::Summary,
};

/// How much of the start is looked at to tell a trace from other text.
const LOOK: usize = 64 << 10;

/// What tool's text `start` (the first bytes of a file) is, if it is one:
/// by tracefs' header, trace-cmd's first line, or an fs_dax event line early
/// on. Whether it holds any fs_dax event at all is known at its end.
pub fn origin(start: &[u8]) -> Option<&'static str> {
    let start = &start[..start.len().min(LOOK)];
    // The look may end inside a character or a line; what is whole is enough.
    let text = match std::str::from_utf8(start) {
        Ok(text) => text,
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&start[..error.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    let first = text.lines().next().unwrap_or("");
    if text.lines().take(8).any(|line| line.starts_with("# tracer:")) {
        Some("tracefs text")
    } else if first.starts_with("cpus=") || first.starts_with("version = ") {
        Some("trace-cmd report")
    } else if text.lines().any(|line| event_name(line).is_some()) {
        // A capture of trace_pipe, a grep of a trace.
        Some("trace text without a header")
    } else {
        None
    }
}

/// Streams the fs_dax events of tracefs or trace-cmd text, line by line.
pub struct Lines<R> {
    input: R,
    line: String,
    number: u64,
    events: u64,
    lost: u64,
    /// A marker without a count came.
    uncounted: bool,
    /// The text begins as a tool that reports its losses does.
    accounts_losses: bool,
    ended: bool,
}

impl<R: BufRead> Lines<R> {
    pub fn new(input: R) -> Lines<R> {
        Lines {
            input,
            line: String::new(),
            number: 0,
            events: 0,
            lost: 0,
            uncounted: false,
            accounts_losses: false,
            ended: false,
        }
    }

    pub fn next_event(&mut self) -> Result<Option<Event>> {
        loop {
            self.line.clear();
            let read =
                self.input.read_line(&mut self.line).with_context(|| format!("line {}", self.number + 1))?;
            if read == 0 {
                self.ended = true;
                return Ok(None);
            }
            self.number += 1;
            let line = self.line.trim_end_matches(['\n', '\r']);
            if self.number == 1 {
                self.accounts_losses = line.starts_with("cpus=") || line.starts_with("version = ");
            }
            match loss_in(line) {
                Loss::None => {}
                Loss::Counted(lost) => self.lost = self.lost.saturating_add(lost),
                Loss::Uncounted => self.uncounted = true,
                Loss::Header(lost) => {
                    self.accounts_losses = true;
                    self.lost = self.lost.saturating_add(lost);
                }
            }
            if let Some((at, kind)) = event_name(line) {
                let event =
                    parse_event(line, at, kind).with_context(|| format!("line {}: {line:?}", self.number))?;
                self.events += 1;
                return Ok(Some(event));
            }
        }
    }

    /// The events read, those the text says were lost, and whether it
    /// could say.
    pub fn summary(&self) -> Result<Summary> {
        ensure!(self.ended, "the text was not read to its end");
        ensure!(self.events > 0, "no fs_dax events in it");
        Ok(Summary {
            events: self.events,
            lost: self.lost,
            loss_unknown: self.uncounted || !self.accounts_losses,
        })
    }
}

/// What one line says of lost events.
#[derive(Debug, PartialEq, Eq)]
enum Loss {
    None,
    Counted(u64),
    /// Lost, but how many is not said.
    Uncounted,
    /// tracefs' header: written minus kept (the header accounts for losses).
    Header(u64),
}

fn loss_in(line: &str) -> Loss {
    if let Some(counts) = line.strip_prefix("# entries-in-buffer/entries-written: ") {
        let counts = counts.split_whitespace().next().unwrap_or("");
        return match counts
            .split_once('/')
            .map(|(kept, written)| (kept.parse::<u64>(), written.parse::<u64>()))
        {
            Some((Ok(kept), Ok(written))) => Loss::Header(written.saturating_sub(kept)),
            _ => Loss::Uncounted,
        };
    }
    // "CPU:N [...]", as the kernel and trace-cmd print their markers (after
    // trace-cmd's instance name, if any).
    let Some((cpu, marker)) = line.find("CPU:").and_then(|at| line[at + 4..].split_once(' ')) else {
        return Loss::None;
    };
    if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
        return Loss::None;
    }
    let Some(inner) = marker.trim().strip_prefix('[').and_then(|m| m.strip_suffix(']')) else {
        return Loss::None;
    };
    let count = inner.strip_prefix("LOST ").and_then(|m| m.strip_suffix(" EVENTS"));
    match count.or_else(|| inner.strip_suffix(" EVENTS DROPPED")) {
        // "[LOST EVENTS]" and "[EVENTS DROPPED]" say no count.
        _ if inner == "LOST EVENTS" || inner == "EVENTS DROPPED" => Loss::Uncounted,
        Some(n) => n.parse::<u64>().map_or(Loss::Uncounted, Loss::Counted),
        None => Loss::None,
    }
}

/// The fs_dax event a line holds: the byte offset of its `NAME:` token.
fn event_name(line: &str) -> Option<(usize, Kind)> {
    let at = line.find(": dax_")? + 2;
    let name = line[at..].split(':').next()?;
    let kind = Kind::ALL[..TRACEPOINT_COUNT].iter().find(|kind| kind.name() == name)?;
    Some((at, *kind))
}

fn parse_event(line: &str, at: usize, kind: Kind) -> Result<Event> {
    let (task, time) = line[..at - 2].rsplit_once(' ').context("no timestamp")?;
    let time_ns = timestamp_ns(time)?;
    let (task, cpu) = task.trim_end().rsplit_once('[').context("no [cpu]")?;
    let cpu = cpu.split(']').next().unwrap_or("").trim().parse().context("bad [cpu]")?;
    let (task, tgid) = match task.trim_end().strip_suffix(')').and_then(|t| t.rsplit_once('(')) {
        Some((task, tgid)) => (task, tgid.trim().parse().ok()),
        None => (task, None),
    };
    let task = task.trim();
    // trace-cmd names the instance first ("daxprobe: fio-96 [001] ...").
    let task = match task.split_once(char::is_whitespace) {
        Some((instance, rest)) if instance.ends_with(':') => rest.trim_start(),
        _ => task,
    };
    let (comm, tid) = task.rsplit_once('-').context("no comm-pid")?;
    let tid: u32 = tid.parse().context("bad pid")?;
    let body = line.get(at + kind.name().len() + 1..).unwrap_or("");
    let mut fields = fields(body)?;
    // The kernel passes 0 as the result of a fault's start event. trace-cmd
    // without the VM_FAULT_* enum values (fs_dax.h has no TRACE_DEFINE_ENUM)
    // prints that 0 as "OOM", and other results as numbers.
    if matches!(kind, Kind::PmdFault | Kind::PteFault) {
        fields[Field::Result as usize] = 0;
    }
    let record = Record {
        time_ns,
        tgid: tgid.unwrap_or(tid),
        tid,
        kind: kind as u32,
        cpu,
        comm: Comm::new(comm).0,
        fields,
    };
    Ok(Event::decode(&record)?)
}

/// "23.904711:" (µs from tracefs and trace-cmd; any precision is read).
fn timestamp_ns(text: &str) -> Result<u64> {
    let text = text.trim().trim_end_matches(':');
    let bad = || anyhow::anyhow!("bad timestamp {text:?}");
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    ensure!(fraction.bytes().all(|b| b.is_ascii_digit()), bad());
    let seconds: u64 = seconds.parse().map_err(|_| bad())?;
    // ASCII digits only, so any byte is a character boundary.
    let digits = fraction.len().min(9);
    let fraction: u64 = if digits == 0 { 0 } else { fraction[..digits].parse().map_err(|_| bad())? };
    seconds
        .checked_mul(1_000_000_000)
        .and_then(|ns| ns.checked_add(fraction * 10u64.pow(9 - digits as u32)))
        .ok_or_else(|| anyhow::anyhow!("timestamp {text:?} is past what nanoseconds in 64 bits hold"))
}

/// Keys whose value is one number, and the field it goes to.
const NUMBER_KEYS: &[(&str, Field)] = &[
    ("ino", Field::Ino),
    ("address", Field::Address),
    ("vm_start", Field::VmStart),
    ("vm_end", Field::VmEnd),
    ("max_pgoff", Field::MaxPgoff),
    ("radix_entry", Field::RadixEntry),
    ("pglen", Field::Pglen),
];

/// The fields of the fs_dax print formats: "key value" pairs, `shared` or
/// `private`, the fault flags right after that, and the fault result last.
fn fields(body: &str) -> Result<[u64; FIELD_COUNT]> {
    let mut fields = [0; FIELD_COUNT];
    let mut set = |field: Field, value: u64| fields[field as usize] = value;
    let mut tokens = body.split_whitespace();
    let mut after_sharing = false;
    while let Some(token) = tokens.next() {
        let mut value = || tokens.next().with_context(|| format!("`{token}` without a value"));
        let flags_here = std::mem::take(&mut after_sharing);
        if let Some((_, field)) = NUMBER_KEYS.iter().find(|(key, _)| *key == token) {
            set(*field, number(value()?)?);
            continue;
        }
        match token {
            "dev" => set(Field::Dev, device(value()?)?),
            // A hashed pointer (%p): nothing to keep.
            "zero_folio" | "zero_page" => drop(value()?),
            "pgoff" => {
                let pgoff = value()?;
                match pgoff.split_once('-') {
                    // dax_writeback_range: "pgoff START-END".
                    Some((start, end)) => {
                        set(Field::StartIndex, number(start)?);
                        set(Field::EndIndex, number(end)?);
                    }
                    None => set(Field::Pgoff, number(pgoff)?),
                }
            }
            "shared" | "private" => {
                set(Field::VmFlags, if token == "shared" { VM_SHARED } else { 0 });
                after_sharing = true;
            }
            flags if flags_here => set(Field::FaultFlags, flag_bits(flags, FAULT_FLAG_NAMES)?),
            result => set(Field::Result, flag_bits(result, VM_FAULT_NAMES)?),
        }
    }
    Ok(fields)
}

/// "NAME|NAME" (or a number, where the tool printed the flags raw).
fn flag_bits(text: &str, names: &[(u64, &str)]) -> Result<u64> {
    text.split('|').try_fold(0, |bits, name| {
        let bit = match names.iter().find(|(_, n)| *n == name) {
            Some((bit, _)) => *bit,
            None => number(name).with_context(|| format!("unknown flag {name:?}"))?,
        };
        Ok(bits | bit)
    })
}

/// "0x1f" or "31".
fn number(text: &str) -> Result<u64> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.with_context(|| format!("bad number {text:?}"))
}

/// "259:0" as the tracepoints hold dev_t.
fn device(text: &str) -> Result<u64> {
    let (major, minor) = text.split_once(':').with_context(|| format!("bad device {text:?}"))?;
    Ok(mkdev(major.parse()?, minor.parse()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Fault, What};

    fn parse(text: &str) -> Result<(&'static str, Vec<Event>, Summary)> {
        let origin = origin(text.as_bytes()).context("not a trace")?;
        let mut lines = Lines::new(text.as_bytes());
        let mut events = Vec::new();
        while let Some(event) = lines.next_event()? {
            events.push(event);
        }
        Ok((origin, events, lines.summary()?))
    }

    fn fault(event: &Event) -> &Fault {
        event.fault().expect("a fault event")
    }

    /// Lines as tracefs printed them in the lab (7.2, record-tgid on).
    const TRACEFS: &str = "# tracer: nop
#
# entries-in-buffer/entries-written: 3/5   #P:2
#
           <...>-95      (     94) [001] .....    23.904711: dax_pmd_fault: dev 259:0 ino 0x83 shared WRITE|ALLOW_RETRY|KILLABLE|USER|VMA_LOCK address 0x7f7c41c00000 vm_start 0x7f7c41c00000 vm_end 0x7f7c51c00000 pgoff 0x0 max_pgoff 0xffff 
           <...>-95      (     94) [001] .....    23.904811: dax_pmd_fault_done: dev 259:0 ino 0x83 shared WRITE|ALLOW_RETRY|KILLABLE|USER|VMA_LOCK address 0x7f7c41c00000 vm_start 0x7f7c41c00000 vm_end 0x7f7c51c00000 pgoff 0x0 max_pgoff 0xffff NOPAGE
  kworker/u8:1-33      (     33) [000] .....    24.000001: dax_writeback_range: dev 259:0 ino 0x83 pgoff 0x0-0xffff
";

    /// trace-cmd report, as trace-cmd 3.1 prints it.
    const TRACE_CMD: &str = "cpus=2
      fio-101   [000]    30.000002: dax_pte_fault:        dev 259:0 ino 0xc private ALLOW_RETRY|KILLABLE|USER address 0x7f0000001000 pgoff 0x1 
      fio-101   [000]    30.000050: dax_pte_fault_done:   dev 259:0 ino 0xc private USER address 0x7f0000001000 pgoff 0x1 MAJOR|NOPAGE
      fio-101   [000]    30.000060: sched_switch:         prev_comm=fio
daxprobe:              fio-96    [001]    16.589017: dax_pmd_fault:        dev 259:0 ino 0x1003 shared 0x1254 address 0x7f3fa0f70000 vm_start 0x7f3fa0000000 vm_end 0x7f3fb0000000 pgoff 0xf70 max_pgoff 0x10000 OOM
daxprobe:              fio-96    [001]    16.594982: dax_pmd_fault_done:   dev 259:0 ino 0x1003 shared 0x1254 address 0x7f3fa0f70000 vm_start 0x7f3fa0000000 vm_end 0x7f3fb0000000 pgoff 0xf70 max_pgoff 0x10000 0x100
";

    #[test]
    fn reads_tracefs_text() {
        let (origin, events, summary) = parse(TRACEFS).unwrap();
        assert_eq!(origin, "tracefs text");
        assert_eq!(summary.lost, 2, "written 5, kept 3");
        let [start, done, writeback] = &events[..] else { panic!("three events") };
        assert_eq!((done.tid, done.tgid, done.cpu), (95, 94, 1));
        assert_eq!(done.time_ns - start.time_ns, 100_000);
        assert_eq!(done.kind(), Kind::PmdFaultDone);
        let d = fault(done);
        assert_eq!(d.file.dev, mkdev(259, 0));
        assert_eq!(d.file.ino, 0x83);
        assert_eq!(d.vm_flags, VM_SHARED);
        assert_eq!(d.flags, 0x1 | 0x4 | 0x10 | 0x40 | 0x1000);
        assert_eq!(d.address, 0x7f7c41c00000);
        assert_eq!(d.vm_end, 0x7f7c51c00000);
        assert_eq!(d.max_pgoff, 0xffff);
        assert_eq!(d.result, 0x100);
        assert_eq!(fault(start).result, 0);
        let What::WritebackRange(range) = writeback.what else { panic!("a writeback range") };
        assert_eq!(range.end_index, 0xffff);
        assert_eq!(writeback.comm.to_string(), "kworker/u8:1");
    }

    #[test]
    fn reads_trace_cmd_report() {
        let (origin, events, summary) = parse(TRACE_CMD).unwrap();
        assert_eq!(origin, "trace-cmd report");
        assert_eq!((summary.lost, summary.loss_unknown), (0, false), "trace-cmd prints its drops");
        assert_eq!(events.len(), 4, "sched_switch is not ours");
        let done = &events[1];
        assert_eq!((done.tid, done.tgid), (101, 101), "the thread stands for its process");
        assert_eq!(fault(done).vm_flags, 0);
        assert_eq!(fault(done).pgoff, 1);
        assert_eq!(fault(done).result, 0x104);
        // trace-cmd 3.1 on 7.2, recording in an instance: flags as numbers,
        // and a start event's result of 0 printed as "OOM".
        let [.., start, done] = &events[..] else { panic!() };
        assert_eq!(start.comm.to_string(), "fio");
        assert_eq!(start.tid, 96);
        assert_eq!(fault(start).flags, 0x1254);
        assert_eq!(fault(start).result, 0);
        assert_eq!(fault(done).result, 0x100);
    }

    #[test]
    fn timestamps_that_do_not_fit_are_errors_not_panics() {
        assert_eq!(timestamp_ns("23.904711:").unwrap(), 23_904_711_000);
        assert_eq!(timestamp_ns("1.5").unwrap(), 1_500_000_000);
        assert!(timestamp_ns("99999999999999999.0:").unwrap_err().to_string().contains("past what"));
        assert!(timestamp_ns("18446744073.709551616").is_err(), "one past u64::MAX ns");
        assert!(timestamp_ns("1.000000000é").is_err());
        assert!(timestamp_ns("1.é0").is_err());
        assert!(timestamp_ns("").is_err());
    }

    /// The markers as the kernel (kernel/trace/trace.c, print_trace_line)
    /// and trace-cmd print them.
    #[test]
    fn every_loss_marker_counts() {
        assert_eq!(loss_in("CPU:1 [LOST 7 EVENTS]"), Loss::Counted(7));
        assert_eq!(loss_in("CPU:0 [LOST EVENTS]"), Loss::Uncounted);
        assert_eq!(loss_in("CPU:3 [1234 EVENTS DROPPED]"), Loss::Counted(1234));
        assert_eq!(loss_in("CPU:3 [EVENTS DROPPED]"), Loss::Uncounted);
        assert_eq!(loss_in("daxprobe: CPU:1 [12 EVENTS DROPPED]"), Loss::Counted(12));
        assert_eq!(loss_in("# entries-in-buffer/entries-written: 3/5   #P:2"), Loss::Header(2));
        assert_eq!(loss_in("# entries-in-buffer/entries-written: 3/x   #P:2"), Loss::Uncounted);
        assert_eq!(loss_in("CPU:x [LOST 7 EVENTS]"), Loss::None);
        assert_eq!(loss_in("   fio-1 [000] 1.0: dax_pte_fault: dev 259:0 ino 0x1"), Loss::None);
    }

    #[test]
    fn a_loss_nobody_counted_is_unknown() {
        let done = "      fio-101   [000]    30.000050: dax_pte_fault_done:   dev 259:0 ino 0xc private USER address 0x7f0000001000 pgoff 0x1 NOPAGE\n";
        // A trace_pipe capture or a grep: nothing says what was lost.
        let (origin, _, summary) = parse(done).unwrap();
        assert_eq!(origin, "trace text without a header");
        assert!(summary.loss_unknown);
        // trace-cmd prints its drops: its text without a marker lost nothing.
        let (_, _, summary) = parse(&format!("cpus=2\n{done}")).unwrap();
        assert_eq!((summary.lost, summary.loss_unknown), (0, false));
        // ... and a marker without a count leaves the loss unknown.
        let (_, _, summary) = parse(&format!("cpus=2\nCPU:1 [EVENTS DROPPED]\n{done}")).unwrap();
        assert!(summary.loss_unknown);
        let (_, _, summary) = parse(&format!("cpus=2\nCPU:0 [5 EVENTS DROPPED]\n{done}")).unwrap();
        assert_eq!((summary.lost, summary.loss_unknown), (5, false));
    }

    #[test]
    fn text_without_fs_dax_events_is_not_a_trace() {
        assert_eq!(origin(b"hello\nworld\n"), None);
        let Err(error) = parse("# tracer: nop\n") else { panic!("parsed") };
        assert!(error.to_string().contains("no fs_dax events"));
    }
}
