//! The dax-probe trace file, version 3.
//!
//! ```text
//! offset 0   b"DAXPROBE"                      magic
//!        8   u32 LE  version (3)
//!       12   u32 LE  header length H
//!       16   H bytes header: UTF-8 "key: value" lines, padded with spaces
//!   16 + H   N records, each: u16 LE shape, u16 LE length L, L bytes
//! ```
//!
//! Header keys: `kernel` (release), `command`, `tracepoints` and
//! `tracepoints_missing` (fs_dax tracepoints attached and absent), `hooks`,
//! `hook_ways` (how each was observed) and `hooks_missing` (hook groups,
//! `stream::HookGroup`), all space-separated; `filesystems`, the DAX
//! mounts where the recording began as `MAJOR:MINOR=FSTYPE:MOUNT_POINT`
//! (absent before they were kept); `events` (N), `lost` (events dropped on the way; any
//! makes every check inconclusive) and `shapes`, the record shapes the file
//! may hold, as `NAME:ID:LENGTH` (a length or a range of them). Two shapes
//! are known, both a `dax_probe_common::Record` (repr(C), little-endian),
//! decoded into an event as it is read:
//! - `record:1:160`, the whole record (what dax-probe wrote before
//!   `trimmed`; still read);
//! - `trimmed:2:40-160`, the record without its trailing fields that are
//!   0: its 40 bytes of stamp and kind, then its fields up to the last one
//!   that is not 0, in whole words. A hook event uses its first two to six
//!   words of fifteen, so a PTE fault's five events take 43 % fewer bytes,
//!   which the kernel copies while the workload runs.
//!
//! A record of a shape this dax-probe does not know, or that the header
//! does not list, is an error, never skipped: a skipped event would be a
//! silent gap. Version 2 (the same header, `event_size` instead of
//! `shapes`, and bare 160-byte records) is still read; version 1 is not.
//!
//! A recording is written to `FILE.partial` and renamed to FILE only once its
//! header holds the final counts, so a FILE that exists is complete.

use std::{
    collections::BTreeMap,
    fs,
    io::{BufRead, BufWriter, ErrorKind, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, ensure, Context, Result};
use dax_probe_common::{Kind, Record};

use crate::{
    event::{Event, UnknownKind},
    kernel::{device_text, parse_device},
    stream::{Begin, Filesystem, HookGroup, Sink, Summary},
};

pub const MAGIC: &[u8; 8] = b"DAXPROBE";
pub const VERSION: u32 = 3;
/// The bare fixed-size records of version 2.
const VERSION_FIXED: u32 = 2;
/// Room reserved for the header, so that it can be rewritten in place.
const HEADER_SIZE: usize = 4096;

/// A record's shape: how its bytes decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A whole `dax_probe_common::Record`.
    Record = 1,
    /// A `Record` up to its last field that is not 0 (see the module's doc).
    Trimmed = 2,
}

impl Shape {
    const ALL: [Shape; 2] = [Shape::Record, Shape::Trimmed];

    /// The header's `NAME:ID:LENGTH` for this shape.
    fn text(self) -> &'static str {
        match self {
            Shape::Record => "record:1:160",
            Shape::Trimmed => "trimmed:2:40-160",
        }
    }

    fn from_text(text: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|shape| shape.text() == text)
    }

    /// Whether a record of this shape may be `length` bytes long.
    fn fits(self, length: usize) -> bool {
        match self {
            Shape::Record => length == RECORD_SIZE,
            Shape::Trimmed => {
                (FIELDS_AT..=RECORD_SIZE).contains(&length) && (length - FIELDS_AT).is_multiple_of(WORD)
            }
        }
    }
}

const RECORD_SIZE: usize = size_of::<Record>();
const _: () = assert!(RECORD_SIZE == 160, "the shapes' texts name the record's size");
/// Where a record's fields begin: its stamp and kind come before.
const FIELDS_AT: usize = std::mem::offset_of!(Record, fields);
const _: () = assert!(FIELDS_AT == 40, "the trimmed shape's text names where the fields begin");
const WORD: usize = size_of::<u64>();
/// The shape this dax-probe writes.
const WRITTEN: Shape = Shape::Trimmed;

/// The header's text: the recording and the end of its stream.
fn header_text(begin: &Begin, summary: &Summary) -> String {
    let names = |groups: &[HookGroup]| groups.iter().map(|g| g.name()).collect::<Vec<_>>().join(" ");
    let filesystems: Vec<String> = begin
        .filesystems
        .iter()
        .map(|fs| format!("{}={}:{}", device_text(fs.dev), fs.fstype, fs.mount))
        .collect();
    format!(
        "kernel: {}\ncommand: {}\ntracepoints: {}\ntracepoints_missing: {}\nhooks: {}\nhook_ways: {}\n\
         hooks_missing: {}\nfilesystems: {}\nevents: {}\nlost: {}\nshapes: {}\n",
        begin.kernel,
        begin.command.replace('\n', " "),
        begin.tracepoints.join(" "),
        begin.tracepoints_missing.join(" "),
        names(&begin.hooks),
        begin.hook_ways.join(" "),
        names(&begin.hooks_missing),
        filesystems.join(" "),
        summary.events,
        if summary.loss_unknown { "unknown".to_owned() } else { summary.lost.to_string() },
        WRITTEN.text(),
    )
}

/// The header's counts and what the recording attached, and the record
/// shapes the file may hold.
fn parse_header(text: &str, version: u32) -> Result<(Begin, Summary, Vec<Shape>)> {
    let map: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|line| line.split_once(": ").or(line.strip_suffix(':').map(|k| (k, ""))))
        .collect();
    let get = |key: &str| map.get(key).map(|v| v.trim()).with_context(|| format!("header has no `{key}`"));
    let list =
        |key: &str| -> Result<Vec<String>> { Ok(get(key)?.split_whitespace().map(str::to_owned).collect()) };
    let groups = |key: &str| -> Result<Vec<HookGroup>> {
        get(key)?
            .split_whitespace()
            .map(|name| HookGroup::from_name(name).with_context(|| format!("unknown hook group {name:?}")))
            .collect()
    };
    let shapes = if version == VERSION_FIXED {
        let size: usize = get("event_size")?.parse().context("bad event_size")?;
        ensure!(size == RECORD_SIZE, "events are {size} bytes, this dax-probe reads {RECORD_SIZE}");
        vec![Shape::Record]
    } else {
        get("shapes")?
            .split_whitespace()
            .map(|text| {
                Shape::from_text(text).with_context(|| format!("record shape {text:?}: {}", shapes_read()))
            })
            .collect::<Result<_>>()?
    };
    let begin = Begin {
        kernel: get("kernel")?.to_owned(),
        command: get("command")?.to_owned(),
        tracepoints: list("tracepoints")?,
        tracepoints_missing: list("tracepoints_missing")?,
        hooks: groups("hooks")?,
        // Not in traces before the ways existed.
        hook_ways: map
            .get("hook_ways")
            .map_or(Vec::new(), |ways| ways.split_whitespace().map(str::to_owned).collect()),
        hooks_missing: groups("hooks_missing")?,
        imported_from: None,
        // Not in traces before they were kept.
        filesystems: map.get("filesystems").map_or(Ok(Vec::new()), |list| parse_filesystems(list))?,
    };
    let lost = get("lost")?;
    let summary = Summary {
        events: get("events")?.parse().context("bad events count")?,
        lost: if lost == "unknown" { 0 } else { lost.parse().context("bad lost count")? },
        loss_unknown: lost == "unknown",
    };
    Ok((begin, summary, shapes))
}

/// "this dax-probe reads" and every shape it knows.
fn shapes_read() -> String {
    let texts: Vec<&str> = Shape::ALL.iter().map(|shape| shape.text()).collect();
    format!("this dax-probe reads {}", texts.join(" "))
}

/// `MAJOR:MINOR=FSTYPE:MOUNT_POINT ...`, as `header_text` writes them.
fn parse_filesystems(list: &str) -> Result<Vec<Filesystem>> {
    let mut filesystems = Vec::new();
    for item in list.split_whitespace() {
        let bad = || format!("bad filesystems entry {item:?}");
        let (dev, rest) = item.split_once('=').with_context(bad)?;
        let (fstype, mount) = rest.split_once(':').with_context(bad)?;
        let dev = parse_device(dev).with_context(bad)?;
        filesystems.push(Filesystem { dev, fstype: fstype.into(), mount: mount.into() });
    }
    ensure!(
        filesystems.len() <= Filesystem::MOST,
        "more than {} filesystems in the header",
        Filesystem::MOST
    );
    Ok(filesystems)
}

/// Streams the events of a trace file.
pub struct Records<R> {
    input: R,
    /// The shapes the header lists; None: version 2, bare whole records.
    shapes: Option<Vec<Shape>>,
    /// What the header promises.
    expected: Summary,
    read: u64,
    ended: bool,
}

impl<R: BufRead> Records<R> {
    /// Reads the header; the records follow with [`Records::next_event`].
    pub fn open(mut input: R) -> Result<(Begin, Records<R>)> {
        let mut prefix = [0; 16];
        input.read_exact(&mut prefix).context("truncated header")?;
        ensure!(&prefix[..8] == MAGIC, "no DAXPROBE magic (is it a dax-probe trace file?)");
        let word = |at: usize| u32::from_le_bytes(prefix[at..at + 4].try_into().expect("4 bytes"));
        let version = word(8);
        ensure!(
            version == VERSION || version == VERSION_FIXED,
            "trace version {version}, this dax-probe reads versions {VERSION_FIXED} and {VERSION}"
        );
        let header_len = word(12) as usize;
        ensure!(header_len <= HEADER_SIZE, "a header of {header_len} bytes (at most {HEADER_SIZE})");
        let mut header = vec![0; header_len];
        input.read_exact(&mut header).context("truncated header")?;
        let text = std::str::from_utf8(&header).context("header is not UTF-8")?;
        let (begin, expected, shapes) = parse_header(text, version)?;
        let shapes = (version == VERSION).then_some(shapes);
        let records = Records { input, shapes, expected, read: 0, ended: false };
        Ok((begin, records))
    }

    pub fn next_event(&mut self) -> Result<Option<Event>> {
        if self.shapes.is_none() {
            let mut bytes = [0; RECORD_SIZE];
            if !self.read_or_end(&mut bytes)? {
                return Ok(None);
            }
            return self.decode(&read_record(&bytes)).map(Some);
        }
        // Nearly always the whole record is in the read-ahead buffer: take
        // it from there, with no read call of its own.
        let buffered = self.input.fill_buf()?;
        if let Some(frame) = buffered.get(..FRAME) {
            let length = frame_length(frame, self.shapes.as_deref(), self.read)?;
            if let Some(bytes) = buffered.get(FRAME..FRAME + length) {
                let record = read_record(bytes);
                self.input.consume(FRAME + length);
                return self.decode(&record).map(Some);
            }
        }
        let mut frame = [0; FRAME];
        if !self.read_or_end(&mut frame)? {
            return Ok(None);
        }
        let length = frame_length(&frame, self.shapes.as_deref(), self.read)?;
        let mut bytes = [0; RECORD_SIZE];
        ensure!(self.read_or_end(&mut bytes[..length])?, "record {} is cut short", self.read + 1);
        self.decode(&read_record(&bytes[..length])).map(Some)
    }

    fn decode(&mut self, record: &Record) -> Result<Event> {
        self.read += 1;
        ensure!(
            self.read <= self.expected.events,
            "the header says {} events but the file holds more",
            self.expected.events
        );
        Event::decode(record).with_context(|| format!("record {}", self.read))
    }

    /// Fills `buffer`; false at a clean end of the file before its first byte.
    fn read_or_end(&mut self, buffer: &mut [u8]) -> Result<bool> {
        let mut filled = 0;
        while filled < buffer.len() {
            match self.input.read(&mut buffer[filled..]) {
                Ok(0) if filled == 0 => {
                    self.ended = true;
                    return Ok(false);
                }
                Ok(0) => bail!("record {} is cut short", self.read + 1),
                Ok(n) => filled += n,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(true)
    }

    /// The header's counts, once every record was read and they agree.
    pub fn summary(&self) -> Result<Summary> {
        ensure!(self.ended, "the trace was not read to its end");
        ensure!(
            self.read == self.expected.events,
            "the header says {} events but the file holds {}",
            self.expected.events,
            self.read
        );
        Ok(self.expected)
    }
}

/// A record's frame: its shape and its length, two u16 LE.
const FRAME: usize = 4;

/// The length of the record a frame announces. Its shape must be one the
/// header lists, and the length one that shape allows; `read` records came
/// before it.
fn frame_length(frame: &[u8], shapes: Option<&[Shape]>, read: u64) -> Result<usize> {
    let shapes = shapes.unwrap_or_default();
    let (id, length) = (u16::from_le_bytes([frame[0], frame[1]]), u16::from_le_bytes([frame[2], frame[3]]));
    let length = usize::from(length);
    let shape = shapes.iter().find(|shape| **shape as u16 == id);
    ensure!(
        shape.is_some_and(|shape| shape.fits(length)),
        "record {} has shape {id} of {length} bytes: the header lists {}",
        read + 1,
        shapes.iter().map(|shape| shape.text()).collect::<Vec<_>>().join(" ")
    );
    Ok(length)
}

/// The record whose first bytes are `bytes` (at most a record's size, the
/// rest 0: what a trimmed record left out).
fn read_record(bytes: &[u8]) -> Record {
    let mut whole = [0; RECORD_SIZE];
    whole[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: any bit pattern is a valid Record (integers only), `whole`
    // has exactly its size, and read_unaligned needs no alignment.
    unsafe { std::ptr::read_unaligned(whole.as_ptr().cast::<Record>()) }
}

/// The bytes of `record` the trimmed shape keeps: up to its last field
/// that is not 0.
fn trimmed(record: &Record) -> &[u8] {
    let words = record.fields.iter().rposition(|word| *word != 0).map_or(0, |last| last + 1);
    &record.as_bytes()[..FIELDS_AT + words * WORD]
}

/// Streams events to `FILE.partial`; at [`Sink::finish`] it writes the
/// header and renames the file to FILE.
pub struct Writer {
    file: Option<BufWriter<fs::File>>,
    partial: PathBuf,
    path: PathBuf,
    begin: Begin,
    events: u64,
}

impl Writer {
    pub fn create(path: &Path) -> Result<Writer> {
        let partial = PathBuf::from(format!("{}.partial", path.display()));
        let mut file = BufWriter::with_capacity(
            1 << 20,
            fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?,
        );
        file.write_all(&[0; 16 + HEADER_SIZE])?;
        Ok(Writer { file: Some(file), partial, path: path.to_owned(), begin: Begin::default(), events: 0 })
    }

    fn file(&mut self) -> Result<&mut BufWriter<fs::File>> {
        self.file.as_mut().context("the trace file is already finished")
    }
}

impl Sink for Writer {
    fn begin(&mut self, begin: &Begin) {
        self.begin = begin.clone();
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.push_record(&event.encode())
    }

    /// The record as it came, trimmed; only its kind is checked, as a
    /// decode would (the file's reader decodes the rest).
    fn push_record(&mut self, record: &Record) -> Result<()> {
        Kind::from_u32(record.kind).ok_or(UnknownKind(record.kind))?;
        let bytes = trimmed(record);
        let [id_low, id_high] = (WRITTEN as u16).to_le_bytes();
        let [length_low, length_high] = (bytes.len() as u16).to_le_bytes();
        let file = self.file()?;
        file.write_all(&[id_low, id_high, length_low, length_high])?;
        file.write_all(bytes)?;
        self.events += 1;
        Ok(())
    }

    /// Writes the header with the final counts and renames the file into place.
    fn finish(&mut self, summary: &Summary) -> Result<()> {
        let summary = Summary { events: self.events, ..*summary };
        let text = header_text(&self.begin, &summary);
        ensure!(text.len() <= HEADER_SIZE, "trace header too long ({} bytes)", text.len());
        let mut prefix = Vec::with_capacity(16 + HEADER_SIZE);
        prefix.extend_from_slice(MAGIC);
        prefix.extend_from_slice(&VERSION.to_le_bytes());
        prefix.extend_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        prefix.extend_from_slice(text.as_bytes());
        prefix.resize(16 + HEADER_SIZE, b' ');
        let file = self.file.take().context("the trace file is already finished")?;
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&prefix)?;
        file.sync_all()?;
        fs::rename(&self.partial, &self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{File, Key, What, Writeback};
    use crate::kernel::mkdev;
    use crate::testing::{dax_entry, lock, truncated};

    fn event(n: u64) -> Event {
        Event { time_ns: n, ..lock(8, n, dax_entry(n, false, false), dax_entry(n, true, false)) }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dax-probe-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn read(path: &Path) -> Result<(Begin, Vec<Event>, Summary)> {
        let (begin, mut records) = Records::open(std::io::BufReader::new(fs::File::open(path)?))?;
        let mut events = Vec::new();
        while let Some(event) = records.next_event()? {
            events.push(event);
        }
        Ok((begin, events, records.summary()?))
    }

    #[test]
    fn a_written_trace_reads_back_and_only_appears_when_finished() {
        let path = scratch("t.daxtrace");
        let mut writer = Writer::create(&path).unwrap();
        let begin = Begin {
            kernel: "7.2.13".into(),
            tracepoints: vec!["dax_pmd_fault".into()],
            hooks: vec![HookGroup::EntryState],
            hook_ways: vec!["inlined".into()],
            filesystems: vec![
                Filesystem { dev: mkdev(259, 0), fstype: "ext4".into(), mount: "/mnt/dax".into() },
                Filesystem { dev: mkdev(259, 1), fstype: "xfs".into(), mount: "/mnt/with\\040space".into() },
            ],
            ..Begin::default()
        };
        writer.begin(&begin);
        // Trimmed to 72 bytes (four words), to 48 (one), to 40 (no word:
        // every field 0) and not at all (the last word is not 0).
        let whole = crate::testing::event(
            9,
            What::WritebackOne(Writeback {
                file: File { dev: 1, ino: 2 },
                pglen: 512,
                ..Writeback::default()
            }),
        );
        let nothing = crate::testing::event(4, What::EntryWoken { key: Key { mapping: 0, start: 0 } });
        let pushed = [event(1), event(2), truncated(3, 0, 0), nothing, whole];
        for event in &pushed {
            writer.push(event).unwrap();
        }
        assert!(!path.exists(), "no complete-looking file before finish");
        writer.finish(&Summary { events: 5, lost: 3, loss_unknown: false }).unwrap();
        let lengths: Vec<usize> = pushed.iter().map(|event| trimmed(&event.encode()).len()).collect();
        assert_eq!(lengths, [72, 72, 48, 40, 160]);
        let size = fs::metadata(&path).unwrap().len() as usize;
        assert_eq!(size, 16 + HEADER_SIZE + lengths.iter().map(|length| FRAME + length).sum::<usize>());
        let (read_begin, events, summary) = read(&path).unwrap();
        assert_eq!(read_begin, begin);
        assert_eq!(summary, Summary { events: 5, lost: 3, loss_unknown: false });
        assert_eq!(events, pushed);
    }

    #[test]
    fn records_written_as_they_came_read_back_as_their_events() {
        // A live recording writes the probe's records without decoding them:
        // what reads back is what decoding them would have given, a word the
        // event does not use included.
        let path = scratch("records.daxtrace");
        let mut writer = Writer::create(&path).unwrap();
        writer.begin(&Begin::default());
        let mut unused_word = event(7).encode();
        unused_word.fields[dax_probe_common::FIELD_COUNT - 1] = 0xdead;
        let records = [event(1).encode(), unused_word, truncated(3, 0, 4095).encode()];
        for record in &records {
            writer.push_record(record).unwrap();
        }
        let unknown = Record { kind: 999, ..records[0] };
        let refused = writer.push_record(&unknown).expect_err("an unknown kind is refused");
        assert!(format!("{refused:#}").contains("unknown event kind 999"), "{refused:#}");
        writer.finish(&Summary::default()).unwrap();
        let (_, events, summary) = read(&path).unwrap();
        let decoded: Vec<Event> = records.iter().map(|record| Event::decode(record).unwrap()).collect();
        assert_eq!(events, decoded);
        assert_eq!(summary.events, 3, "the refused record is not counted");
    }

    /// `event` in the frame the writer gives it.
    fn framed(event: &Event) -> Vec<u8> {
        let record = event.encode();
        let bytes = trimmed(&record);
        let mut frame = vec![WRITTEN as u8, 0, bytes.len() as u8, 0];
        frame.extend_from_slice(bytes);
        frame
    }

    fn file_of(version: u32, header: &str, body: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&version.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    fn error_of(bytes: &[u8]) -> String {
        let path = scratch("bad.daxtrace");
        fs::write(&path, bytes).unwrap();
        format!("{:#}", read(&path).expect_err("refused"))
    }

    #[test]
    fn corrupt_files_are_refused_with_a_reason() {
        assert!(error_of(b"not a trace at all").contains("no DAXPROBE magic"));
        assert!(error_of(&file_of(9, "", b"")).contains("version 9"));
        let two = header_text(&Begin::default(), &Summary { events: 2, ..Summary::default() });
        let one = framed(&event(1));
        assert!(error_of(&file_of(VERSION, &two, &one)).contains("header says 2 events but the file holds 1"));
        assert!(error_of(&file_of(VERSION, &two, &one[..one.len() - 8])).contains("cut short"));
        assert!(error_of(&file_of(VERSION, &two, &one[..2])).contains("cut short"));
        let mut odd = one.clone();
        odd[0] = 7;
        assert!(error_of(&file_of(VERSION, &two, &odd)).contains("shape 7"));
        // A whole record where the header lists only trimmed ones.
        let mut whole = vec![1, 0, 160, 0];
        whole.extend_from_slice(event(1).encode().as_bytes());
        assert!(error_of(&file_of(VERSION, &two, &whole))
            .contains("shape 1 of 160 bytes: the header lists trimmed"));
        // Trimmed lengths that are no whole number of words past the stamp,
        // or shorter than it, or longer than a record.
        for length in [36u8, 44, 168] {
            let mut bad = one.clone();
            bad[2] = length;
            assert!(
                error_of(&file_of(VERSION, &two, &bad)).contains(&format!("of {length} bytes")),
                "{length}"
            );
        }
        let unknown = two.replace("shapes: trimmed:2:40-160", "shapes: fused:3:64");
        assert!(error_of(&file_of(VERSION, &unknown, b"")).contains("record shape \"fused:3:64\""));
        for bad in ["259:0", "259:0=ext4", "x:0=ext4:/m", "259:99999999=ext4:/m"] {
            let header = two.replace("filesystems: \n", &format!("filesystems: {bad}\n"));
            assert!(error_of(&file_of(VERSION, &header, b"")).contains("bad filesystems entry"), "{bad}");
        }
    }

    #[test]
    fn whole_records_of_earlier_writers_still_read() {
        let text = header_text(&Begin::default(), &Summary { events: 2, ..Summary::default() })
            .replace("shapes: trimmed:2:40-160", "shapes: record:1:160");
        let mut body = Vec::new();
        for n in [5, 6] {
            body.extend_from_slice(&[1, 0, 160, 0]);
            body.extend_from_slice(event(n).encode().as_bytes());
        }
        let path = scratch("whole.daxtrace");
        fs::write(&path, file_of(VERSION, &text, &body)).unwrap();
        let (_, events, summary) = read(&path).unwrap();
        assert_eq!(events, [event(5), event(6)]);
        assert_eq!(summary.events, 2);
    }

    #[test]
    fn version_2_files_still_read() {
        let text = header_text(&Begin::default(), &Summary { events: 1, ..Summary::default() })
            .replace(&format!("shapes: {}", WRITTEN.text()), "event_size: 160");
        let path = scratch("v2.daxtrace");
        fs::write(&path, file_of(VERSION_FIXED, &text, event(5).encode().as_bytes())).unwrap();
        let (_, events, summary) = read(&path).unwrap();
        assert_eq!(events, [event(5)]);
        assert_eq!(summary.events, 1);
    }
}
