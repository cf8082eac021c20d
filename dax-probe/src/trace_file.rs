//! The dax-probe trace file, version 2.
//!
//! ```text
//! offset 0   b"DAXPROBE"                      magic
//!        8   u32 LE  version (1)
//!       12   u32 LE  header length H
//!       16   H bytes header: UTF-8 "key: value" lines, padded with spaces
//!   16 + H   N events of EVENT_SIZE bytes: dax_probe_common::Event, repr(C), LE
//! ```
//!
//! Header keys: `kernel` (release), `command`, `tracepoints` and
//! `tracepoints_missing` (fs_dax tracepoints attached and absent), `hooks`
//! and `hooks_missing` (hook groups, see `hooks.rs`; what they make
//! checkable is in `coverage.rs`), all space-separated; `events` (N), `lost`
//! (events dropped on the way; non-zero makes every check inconclusive),
//! `event_size`. Event kinds are `dax_probe_common::Kind`. Version 1 (before
//! the hooks) is no longer read.
//! A recording is written to `FILE.partial` and renamed to FILE only once its
//! header holds the final counts, so a FILE that exists is complete.

use std::{
    collections::BTreeMap,
    fs,
    io::{BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, ensure, Context, Result};
use dax_probe_common::Event;

pub const MAGIC: &[u8; 8] = b"DAXPROBE";
pub const VERSION: u32 = 2;
pub const EVENT_SIZE: usize = size_of::<Event>();
/// Room reserved for the header, so that it can be rewritten in place.
const HEADER_SIZE: usize = 4096;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub kernel: String,
    pub command: String,
    pub tracepoints: Vec<String>,
    pub tracepoints_missing: Vec<String>,
    pub hooks: Vec<String>,
    pub hooks_missing: Vec<String>,
    pub events: u64,
    pub lost: u64,
    /// Not a dax-probe recording but the text of another tool (see
    /// `trace_text.rs`), which it names. Never written to a trace file.
    pub imported_from: Option<String>,
}

impl Header {
    fn to_text(&self) -> String {
        format!(
            "kernel: {}\ncommand: {}\ntracepoints: {}\ntracepoints_missing: {}\nhooks: {}\nhooks_missing: {}\n\
             events: {}\nlost: {}\nevent_size: {EVENT_SIZE}\n",
            self.kernel,
            self.command.replace('\n', " "),
            self.tracepoints.join(" "),
            self.tracepoints_missing.join(" "),
            self.hooks.join(" "),
            self.hooks_missing.join(" "),
            self.events,
            self.lost
        )
    }

    fn parse(text: &str) -> Result<Header> {
        let map: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|line| line.split_once(": ").or(line.strip_suffix(':').map(|k| (k, ""))))
            .collect();
        let get =
            |key: &str| map.get(key).map(|v| v.trim()).with_context(|| format!("header has no `{key}`"));
        let list = |key: &str| -> Result<Vec<String>> {
            Ok(get(key)?.split_whitespace().map(str::to_owned).collect())
        };
        let event_size: usize = get("event_size")?.parse().context("bad event_size")?;
        ensure!(event_size == EVENT_SIZE, "events are {event_size} bytes, this dax-probe reads {EVENT_SIZE}");
        Ok(Header {
            kernel: get("kernel")?.to_owned(),
            command: get("command")?.to_owned(),
            tracepoints: list("tracepoints")?,
            tracepoints_missing: list("tracepoints_missing")?,
            hooks: list("hooks")?,
            hooks_missing: list("hooks_missing")?,
            events: get("events")?.parse().context("bad events count")?,
            lost: get("lost")?.parse().context("bad lost count")?,
            imported_from: None,
        })
    }
}

/// Streams events to `FILE.partial`; [`Writer::finish`] makes it FILE.
pub struct Writer {
    file: BufWriter<fs::File>,
    partial: PathBuf,
    path: PathBuf,
    events: u64,
}

impl Writer {
    pub fn create(path: &Path) -> Result<Writer> {
        let partial = PathBuf::from(format!("{}.partial", path.display()));
        let mut file = BufWriter::new(
            fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?,
        );
        file.write_all(&[0; 16 + HEADER_SIZE])?;
        Ok(Writer { file, partial, path: path.to_owned(), events: 0 })
    }
}

impl crate::record::Sink for Writer {
    fn push(&mut self, event: &Event) -> Result<()> {
        self.file.write_all(as_bytes(event))?;
        self.events += 1;
        Ok(())
    }
}

impl Writer {
    /// Writes the header with the final counts and renames the file into place.
    pub fn finish(self, mut header: Header) -> Result<u64> {
        header.events = self.events;
        let text = header.to_text();
        ensure!(text.len() <= HEADER_SIZE, "trace header too long ({} bytes)", text.len());
        let mut prefix = Vec::with_capacity(16 + HEADER_SIZE);
        prefix.extend_from_slice(MAGIC);
        prefix.extend_from_slice(&VERSION.to_le_bytes());
        prefix.extend_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        prefix.extend_from_slice(text.as_bytes());
        prefix.resize(16 + HEADER_SIZE, b' ');
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&prefix)?;
        file.sync_all()?;
        fs::rename(&self.partial, &self.path)?;
        Ok(self.events)
    }
}

/// A whole trace, read and checked.
pub struct Trace {
    pub header: Header,
    pub events: Vec<Event>,
}

/// Reads a trace: dax-probe's own file or, imported, the text of tracefs
/// or `trace-cmd report` (see `trace_text.rs`).
pub fn read(path: &Path) -> Result<Trace> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .read_to_end(&mut bytes)?;
    let text = (!bytes.starts_with(MAGIC)).then(|| std::str::from_utf8(&bytes).ok()).flatten();
    match text {
        Some(text) if crate::trace_text::is_trace_text(text) => crate::trace_text::parse(text)
            .with_context(|| format!("{} is tracefs or trace-cmd text that cannot be read", path.display())),
        Some(_) => bail!(
            "{} is not a dax-probe trace, nor tracefs or trace-cmd report text with fs_dax events: \
             record one with `dax-probe record -o FILE -- COMMAND`",
            path.display()
        ),
        None => {
            parse(&bytes).with_context(|| format!("{} is not a readable dax-probe trace", path.display()))
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Trace> {
    ensure!(bytes.len() >= 16 && &bytes[..8] == MAGIC, "no DAXPROBE magic (is it a dax-probe trace file?)");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let version = word(8);
    if version != VERSION {
        bail!("trace version {version}, this dax-probe reads version {VERSION}");
    }
    let header_len = word(12) as usize;
    let body = 16 + header_len;
    ensure!(bytes.len() >= body, "truncated header");
    let header = Header::parse(std::str::from_utf8(&bytes[16..body]).context("header is not UTF-8")?)?;
    let expected = header.events as usize * EVENT_SIZE;
    let actual = bytes.len() - body;
    ensure!(
        actual == expected,
        "header says {} events but the file holds {actual} bytes of them",
        header.events
    );
    let events = bytes[body..].chunks_exact(EVENT_SIZE).map(from_bytes).collect();
    Ok(Trace { header, events })
}

fn as_bytes(event: &Event) -> &[u8] {
    // SAFETY: Event is repr(C), made of integers with no padding (see
    // dax-probe-common), so all of its bytes are initialised.
    unsafe { std::slice::from_raw_parts((event as *const Event).cast::<u8>(), EVENT_SIZE) }
}

fn from_bytes(bytes: &[u8]) -> Event {
    assert_eq!(bytes.len(), EVENT_SIZE);
    // SAFETY: any bit pattern is a valid Event (integers only), the slice has
    // exactly its size, and read_unaligned needs no alignment.
    unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Sink;
    use dax_probe_common::FIELD_COUNT;

    fn event(n: u64) -> Event {
        Event {
            time_ns: n,
            tgid: 7,
            tid: 8,
            kind: 1,
            cpu: 0,
            comm: *b"fio\0\0\0\0\0\0\0\0\0\0\0\0\0",
            fields: [n; FIELD_COUNT],
        }
    }

    #[test]
    fn a_written_trace_reads_back_and_only_appears_when_finished() {
        let dir = std::env::temp_dir().join(format!("dax-probe-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.daxtrace");
        let mut writer = Writer::create(&path).unwrap();
        writer.push(&event(1)).unwrap();
        writer.push(&event(2)).unwrap();
        assert!(!path.exists(), "no complete-looking file before finish");
        let header = Header {
            kernel: "7.2.13".into(),
            tracepoints: vec!["dax_pmd_fault".into()],
            hooks: vec!["entry-state".into()],
            lost: 3,
            ..Header::default()
        };
        assert_eq!(writer.finish(header).unwrap(), 2);
        let trace = read(&path).unwrap();
        assert_eq!(trace.header.events, 2);
        assert_eq!(trace.header.lost, 3);
        assert_eq!(trace.header.tracepoints, ["dax_pmd_fault"]);
        assert_eq!(trace.header.hooks, ["entry-state"]);
        assert!(trace.header.hooks_missing.is_empty());
        assert_eq!(trace.events, [event(1), event(2)]);
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn corrupt_files_are_refused_with_a_reason() {
        assert!(format!("{:#}", parse(b"not a trace").err().unwrap()).contains("no DAXPROBE magic"));
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&9u32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        assert!(format!("{:#}", parse(&bytes).err().unwrap()).contains("version 9"));
        let header = Header { events: 2, ..Header::default() }.to_text();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(as_bytes(&event(1)));
        assert!(format!("{:#}", parse(&bytes).err().unwrap()).contains("header says 2 events"));
    }
}
