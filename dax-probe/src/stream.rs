//! The stream: the one contract between where events come from and what
//! consumes them.
//!
//! Sources (`source::live`: the ring buffer; `trace`: dax-probe's trace
//! files and imported tracefs or trace-cmd text; the replay of `serve`) drive
//! a [`Sink`]; sinks (the analysis, the trace writer, the metrics) consume.
//! Every source drives every sink the same way, streaming:
//!
//! 1. [`Sink::begin`], once, before any event: what the recording attached
//!    and what it could not ([`Begin`]). A sink decides here what it can
//!    judge: an invariant whose hooks are missing is not checked.
//! 2. [`Sink::push`], once per event, in the order the source delivers
//!    them. For one mapping that is the kernel's order (the entry events are
//!    emitted under the mapping's `xa_lock`, see `source/hooks.rs`). The
//!    live source hands each event over as the probe's [`Record`], through
//!    [`Sink::push_record`]: a sink that keeps records as they are (the
//!    trace file) takes it so, and every other sink gets it decoded, by
//!    `push` (the default). Either way the sink sees each event once.
//! 3. [`Sink::lost`], any number of times between pushes, live only: the
//!    events dropped so far, a running total that never decreases. It lets
//!    a live view show losses as they happen; no sink may need it.
//! 4. [`Sink::tick`], about once a second between pushes, live only: the
//!    clock the events are stamped with (CLOCK_MONOTONIC), given once every
//!    event read so far was pushed. A sink answers true to end the session:
//!    it judged the workload stuck for good (a waiter asleep past its limit
//!    with no wake-up coming), so waiting for the command would never end.
//! 5. [`Sink::finish`], once, after the last event: the final counts, lost
//!    events included, or that nobody could count them ([`Summary`]). A sink's verdict or output is complete
//!    only from here.
//!
//! A sink that fails in `push` or `finish` returns the error; the source
//! stops and passes it on, so no output is left looking complete.

use std::fmt;

use anyhow::Result;
use dax_probe_common::Record;

use crate::event::Event;

/// A consumer of the stream; see the module's contract.
pub trait Sink {
    fn begin(&mut self, begin: &Begin);
    fn push(&mut self, event: &Event) -> Result<()>;
    /// The event as the probe's record: decoded and pushed, unless the sink
    /// keeps records (the trace writer: decoding each event only to encode
    /// it again was about a quarter of a live recording's user-space work).
    fn push_record(&mut self, record: &Record) -> Result<()> {
        self.push(&Event::decode(record)?)
    }
    fn lost(&mut self, _total: u64) {}
    /// True: end the live session (see the module's contract).
    fn tick(&mut self, _now_ns: u64) -> bool {
        false
    }
    fn finish(&mut self, summary: &Summary) -> Result<()>;
}

/// What a recording attached: it decides what the stream can show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Begin {
    /// The kernel release, or "unknown".
    pub kernel: String,
    /// The command the recording ran, as the user gave it.
    pub command: String,
    /// fs_dax tracepoints attached, and those this kernel lacks.
    pub tracepoints: Vec<String>,
    pub tracepoints_missing: Vec<String>,
    /// Hook groups attached whole, and those that were not.
    pub hooks: Vec<HookGroup>,
    pub hooks_missing: Vec<HookGroup>,
    /// How each attached group was observed, in `hooks` order: "native"
    /// (hooks on whole functions) or "inlined" (hooks that survive their
    /// inlining); empty where the recording did not say.
    pub hook_ways: Vec<String>,
    /// Not a dax-probe recording but the text of another tool, named here.
    pub imported_from: Option<String>,
    /// The DAX file systems mounted where the recording began (none known
    /// for imported text): how files' devices are named.
    pub filesystems: Vec<Filesystem>,
}

/// A file system mounted with DAX.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filesystem {
    /// Its device, as the tracepoints give it (`kernel::mkdev`).
    pub dev: u64,
    /// "xfs", "ext4", ...
    pub fstype: String,
    /// Where it is mounted (mountinfo's escaped form: no spaces).
    pub mount: String,
}

impl Filesystem {
    /// A recording keeps at most this many: they go into the trace file's
    /// header, and no machine has more DAX mounts than that.
    pub const MOST: usize = 16;

    /// The one of `filesystems` on `dev`.
    pub fn on(filesystems: &[Filesystem], dev: u64) -> Option<&Filesystem> {
        filesystems.iter().find(|fs| fs.dev == dev)
    }
}

impl Begin {
    /// Whether the attached groups give `group`'s events.
    pub fn gives(&self, group: HookGroup) -> bool {
        group.given_by(&self.hooks)
    }

    /// The DAX file system on `dev`, if the recording knows it.
    pub fn filesystem(&self, dev: u64) -> Option<&Filesystem> {
        Filesystem::on(&self.filesystems, dev)
    }
}

/// The end of a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events pushed.
    pub events: u64,
    /// Events that never reached the stream: dropped by the programs or the
    /// ring buffer, skipped by the kernel, or marked lost by the tool whose
    /// text was imported. Any makes every check inconclusive.
    pub lost: u64,
    /// Events may have been lost and nobody counted them: imported text
    /// without a header that accounts for losses (a `trace_pipe` capture, a
    /// grep of a trace), or a marker without a count. Inconclusive too.
    pub loss_unknown: bool,
}

/// Hooks that only make sense together: a group is attached whole or not at
/// all, so a half-seen protocol never passes for a checked one. Which kernel
/// function gives which event is in `source/hooks.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookGroup {
    /// Locks, inserts, replaces, releases and deletes of DAX entries.
    EntryState,
    /// Waiters with the key the kernel hashed, and their wake-ups.
    WaitWake,
    /// The fallback reasons the tracepoint fields cannot give.
    FallbackProbes,
    /// Truncates and hole punches: the page ranges whose entries are gone.
    Truncation,
    /// The reference module's one probe point: all of the above but
    /// truncation (it has none), for `/dev/daxref`.
    ReferenceModule,
}

impl HookGroup {
    pub const ALL: [HookGroup; 5] = [
        HookGroup::EntryState,
        HookGroup::WaitWake,
        HookGroup::FallbackProbes,
        HookGroup::Truncation,
        HookGroup::ReferenceModule,
    ];

    /// The name trace headers and coverage lines use.
    pub fn name(self) -> &'static str {
        match self {
            HookGroup::EntryState => "entry-state",
            HookGroup::WaitWake => "wait-wake",
            HookGroup::FallbackProbes => "fallback-probes",
            HookGroup::Truncation => "truncation",
            HookGroup::ReferenceModule => "reference-module",
        }
    }

    pub fn from_name(name: &str) -> Option<HookGroup> {
        HookGroup::ALL.into_iter().find(|group| group.name() == name)
    }

    /// Whether `attached` give this group's events: the reference module's
    /// probe point gives every group's but truncation (for /dev/daxref).
    pub fn given_by(self, attached: &[HookGroup]) -> bool {
        let by_module = self != HookGroup::Truncation;
        attached.iter().any(|g| *g == self || (by_module && *g == HookGroup::ReferenceModule))
    }
}

impl fmt::Display for HookGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Both sinks get the whole stream (`run -o`: the checker and a trace file).
impl<A: Sink, B: Sink> Sink for (A, B) {
    fn begin(&mut self, begin: &Begin) {
        self.0.begin(begin);
        self.1.begin(begin);
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.0.push(event)?;
        self.1.push(event)
    }

    fn push_record(&mut self, record: &Record) -> Result<()> {
        self.0.push_record(record)?;
        self.1.push_record(record)
    }

    fn lost(&mut self, total: u64) {
        self.0.lost(total);
        self.1.lost(total);
    }

    fn tick(&mut self, now_ns: u64) -> bool {
        // Both see the clock, whatever the first answers.
        self.0.tick(now_ns) | self.1.tick(now_ns)
    }

    fn finish(&mut self, summary: &Summary) -> Result<()> {
        self.0.finish(summary)?;
        self.1.finish(summary)
    }
}

/// A sink that may not be there (`run` without `-o`).
impl<S: Sink> Sink for Option<S> {
    fn begin(&mut self, begin: &Begin) {
        self.iter_mut().for_each(|sink| sink.begin(begin));
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.as_mut().map_or(Ok(()), |sink| sink.push(event))
    }

    fn push_record(&mut self, record: &Record) -> Result<()> {
        self.as_mut().map_or(Ok(()), |sink| sink.push_record(record))
    }

    fn lost(&mut self, total: u64) {
        self.iter_mut().for_each(|sink| sink.lost(total));
    }

    fn tick(&mut self, now_ns: u64) -> bool {
        self.as_mut().is_some_and(|sink| sink.tick(now_ns))
    }

    fn finish(&mut self, summary: &Summary) -> Result<()> {
        self.as_mut().map_or(Ok(()), |sink| sink.finish(summary))
    }
}

/// A sink lent to a source, kept by its owner for what comes after the stream.
impl<S: Sink + ?Sized> Sink for &mut S {
    fn begin(&mut self, begin: &Begin) {
        (**self).begin(begin);
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        (**self).push(event)
    }

    fn push_record(&mut self, record: &Record) -> Result<()> {
        (**self).push_record(record)
    }

    fn lost(&mut self, total: u64) {
        (**self).lost(total);
    }

    fn tick(&mut self, now_ns: u64) -> bool {
        (**self).tick(now_ns)
    }

    fn finish(&mut self, summary: &Summary) -> Result<()> {
        (**self).finish(summary)
    }
}
