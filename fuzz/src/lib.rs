//! The fuzz targets, as functions: libFuzzer drives them (`src/bin/`,
//! `cargo xtask fuzz`), and `tests/regressions.rs` runs every input that
//! ever crashed one, and the seed corpus, through them in `cargo test`.
//!
//! Each takes any bytes and must neither panic nor hang: bad input is an
//! error, and every error is a value (the CLI turns it into one line).
//!
//! - [`trace_file`]: the bytes after a dax-probe trace file's magic, read
//!   and checked end to end (reader, analysis, report, verdict).
//! - [`trace_text`]: the bytes as tracefs or `trace-cmd report` text.
//! - [`analysis`]: the bytes as a stream of wire records whose fields come
//!   from a small set of values (a few threads, two mappings, nearby
//!   indices, real entry bits), so that random input makes locks, waits and
//!   faults that meet: what the analysis's state machines must survive.

use std::io::Cursor;

use dax_probe::{
    analysis::Analysis,
    event::Event,
    output::{check, report},
    stream::{Begin, HookGroup, Sink, Summary},
    trace::{file::MAGIC, Reader},
};
use dax_probe_common::{Record, FIELD_COUNT, KIND_COUNT};

/// A dax-probe trace file: the magic, then the bytes.
pub fn trace_file(data: &[u8]) {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(data);
    read_and_check(&bytes);
}

/// Text of the kernel's tools: tracefs or `trace-cmd report` (or neither,
/// which must be refused cleanly).
pub fn trace_text(data: &[u8]) {
    read_and_check(data);
}

fn read_and_check(bytes: &[u8]) {
    let Ok(reader) = Reader::from_input("fuzz input", Cursor::new(bytes)) else { return };
    let mut analysis = Analysis::default();
    if reader.stream(&mut analysis).is_ok() {
        render(&analysis);
    }
}

/// Everything a finished analysis is shown as.
fn render(analysis: &Analysis) {
    let _ = check::check(analysis, false);
    let _ = check::check(analysis, true);
    let _ = report::text(analysis);
    let _ = report::json(analysis);
}

/// Bytes an event takes: its kind, thread, time step, and one byte per field.
const EVENT_BYTES: usize = 3 + FIELD_COUNT;

/// The values fields are picked from: the ones the analysis tells apart.
const VALUES: [u64; 32] = [
    0,
    1,
    2,
    // Two mappings (`struct xarray *`).
    0xffff_8880_0100_0000,
    0xffff_8880_0200_0000,
    // Indices: PTE-sized, in one 2 MiB range, at its start and the next's.
    3,
    511,
    512,
    513,
    1024,
    // DAX entries (value bit, then LOCKED, PMD, ZERO_PAGE, EMPTY above a pfn).
    (0x1000 << 5) | 1,
    (0x1000 << 5) | 1 | 2,
    (0x1000 << 5) | 1 | 4,
    (0x1000 << 5) | 1 | 4 | 2,
    (0x2000 << 5) | 1 | 8 | 4,
    (0x2000 << 5) | 1 | 16 | 4 | 2,
    1 | 16 | 2,
    // Fault results and flags: NOPAGE, FALLBACK, SIGBUS, WRITE.
    0x100,
    0x800,
    0x104,
    // VMA flags: shared read-write.
    0x8 | 0x3,
    // Addresses: 2 MiB aligned, inside, a colour apart; the VMA's ends.
    0x7f00_0000_0000,
    0x7f00_0000_1000,
    0x7f00_0020_0000,
    0x7f00_0040_0000,
    0x7f00_0100_0000,
    // Sizes and wake modes.
    2 << 20,
    4096,
    u64::MAX,
    u64::MAX >> 1,
    i64::MIN as u64,
    0xdead_beef,
];

/// Wire records of small values through the decoder into a fully hooked
/// analysis, ended as a trace with or without losses would end.
pub fn analysis(data: &[u8]) {
    let Some((&flags, events)) = data.split_first() else { return };
    let mut analysis = Analysis::default();
    analysis.begin(&Begin { hooks: HookGroup::ALL[..3].to_vec(), ..Begin::default() });
    let mut time_ns = 1_000_000_000u64;
    let mut pushed = 0;
    for chunk in events.chunks_exact(EVENT_BYTES) {
        // A step of up to 255 us; 255 jumps far ahead (overflow and gaps).
        time_ns = match chunk[2] {
            255 => time_ns.wrapping_add(u64::MAX / 3),
            step => time_ns.saturating_add(u64::from(step) * 1000),
        };
        let mut record = Record {
            time_ns,
            tgid: 100,
            tid: 100 + u32::from(chunk[1] % 4),
            kind: u32::from(chunk[0]) % (KIND_COUNT as u32 + 1),
            cpu: 0,
            comm: *b"fuzz\0\0\0\0\0\0\0\0\0\0\0\0",
            fields: [0; FIELD_COUNT],
        };
        for (field, &pick) in record.fields.iter_mut().zip(&chunk[3..]) {
            *field = VALUES[usize::from(pick) % VALUES.len()];
        }
        let Ok(event) = Event::decode(&record) else { continue };
        if analysis.push(&event).is_err() {
            return;
        }
        pushed += 1;
    }
    let summary = Summary { events: pushed, lost: u64::from(flags & 1), loss_unknown: flags & 2 != 0 };
    if analysis.finish(&summary).is_ok() {
        render(&analysis);
    }
}
