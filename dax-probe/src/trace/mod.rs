//! Traces: dax-probe's own files ([`file`]) and the text of the kernel's
//! own tools, tracefs and `trace-cmd report` ([`text`]), read as streams.
//!
//! [`Reader::open`] tells the formats apart by their first bytes, and the
//! reader then yields one decoded [`Event`] at a time: a trace of any size
//! is read in constant memory, and drives a [`Sink`] exactly as the live
//! source does ([`Reader::stream`]).

pub mod file;
pub mod text;

use std::{
    fs,
    io::{BufRead, BufReader},
    path::Path,
};

use anyhow::{bail, Context, Result};

use crate::{
    event::Event,
    stream::{Begin, Sink, Summary},
};

/// Bytes read ahead: large enough that per-event reads are copies from memory.
const READ_AHEAD: usize = 1 << 20;

/// A trace being read, from its beginning to its summary: of a file, or of
/// any buffered input ([`Reader::from_input`]: the fuzz targets read bytes).
pub struct Reader<R = BufReader<fs::File>> {
    /// What errors call the trace: its path.
    name: String,
    begin: Begin,
    body: Body<R>,
}

enum Body<R> {
    File(file::Records<R>),
    Text(text::Lines<R>),
}

impl Reader {
    /// Opens a trace: dax-probe's own file or, imported, the text of tracefs
    /// or `trace-cmd report`.
    pub fn open(path: &Path) -> Result<Reader> {
        let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Reader::from_input(&path.display().to_string(), BufReader::with_capacity(READ_AHEAD, file))
    }
}

impl<R: BufRead> Reader<R> {
    /// Reads a trace from `input`, told apart by its first bytes; `name`
    /// is what errors call it.
    pub fn from_input(name: &str, mut input: R) -> Result<Reader<R>> {
        let start = input.fill_buf().with_context(|| format!("cannot read {name}"))?;
        let (begin, body) = if start.starts_with(file::MAGIC) {
            let (begin, records) = file::Records::open(input)
                .with_context(|| format!("{name} is not a readable dax-probe trace"))?;
            (begin, Body::File(records))
        } else if let Some(origin) = text::origin(start) {
            let begin = Begin {
                kernel: "unknown".into(),
                imported_from: Some(origin.to_owned()),
                ..Begin::default()
            };
            (begin, Body::Text(text::Lines::new(input)))
        } else {
            bail!(
                "{name} is not a dax-probe trace, nor tracefs or trace-cmd report text with fs_dax events: \
                 record one with `dax-probe record -o FILE -- COMMAND`"
            );
        };
        Ok(Reader { name: name.to_owned(), begin, body })
    }

    /// What the recording attached.
    pub fn begin(&self) -> &Begin {
        &self.begin
    }

    /// The next event, or `None` at the end of the trace.
    pub fn next_event(&mut self) -> Result<Option<Event>> {
        let next = match &mut self.body {
            Body::File(records) => records.next_event(),
            Body::Text(lines) => lines.next_event(),
        };
        next.with_context(|| self.unreadable())
    }

    /// The end of the trace, once [`Reader::next_event`] said so: the
    /// counts, checked against what the trace says of itself.
    pub fn summary(&self) -> Result<Summary> {
        let summary = match &self.body {
            Body::File(records) => records.summary(),
            Body::Text(lines) => lines.summary(),
        };
        summary.with_context(|| self.unreadable())
    }

    /// Drives `sink` with the whole trace; returns its summary.
    pub fn stream(mut self, sink: &mut impl Sink) -> Result<Summary> {
        sink.begin(&self.begin);
        while let Some(event) = self.next_event()? {
            sink.push(&event)?;
        }
        let summary = self.summary()?;
        sink.finish(&summary)?;
        Ok(summary)
    }

    fn unreadable(&self) -> String {
        match &self.body {
            Body::File(_) => format!("{} is not a readable dax-probe trace", self.name),
            Body::Text(_) => format!("{} is tracefs or trace-cmd text that cannot be read", self.name),
        }
    }
}
