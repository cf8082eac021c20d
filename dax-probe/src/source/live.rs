//! The live source: attach to the fs_dax tracepoints and the hooks, and
//! stream every event to a [`Sink`] (a trace file, the checker, the
//! metrics), optionally while a command runs.

use std::{os::fd::AsFd, process::ExitStatus};

use anyhow::{Context, Result};
use aya::{
    maps::{Array, PerCpuArray},
    programs::{BtfTracePoint, TracePoint},
    Ebpf, EbpfLoader,
};
use dax_probe_common::{Layout, Record};

use crate::{
    source::{
        cost::{self, Cost, Meter},
        hooks, mounts,
        rings::{self, Rings},
        tracefs,
        truncates::{self, Twins},
    },
    stream::{Begin, HookGroup, Sink, Summary},
};

/// The eBPF object dax-probe's build script compiled.
pub(crate) static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dax-probe"));

/// What a finished live session saw: the recording (kernel, command,
/// coverage), the end of its stream (events, and in `lost` the events the
/// ring buffer or a map dropped plus hook runs the kernel skipped), and the
/// command's exit status, if one ran, and what the probe itself cost.
pub struct Session {
    pub begin: Begin,
    pub summary: Summary,
    pub status: Option<ExitStatus>,
    pub cost: Cost,
}

/// The command a live session runs.
pub struct Command<'a> {
    /// What runs (for fio, with the options `run` adds).
    pub argv: &'a [String],
    /// What the recording calls it: the user's own words.
    pub label: String,
    /// Its stdout goes to our stderr, so that ours stays machine-readable.
    pub stdout_to_stderr: bool,
    /// Which ways the hooks may take.
    pub plan: hooks::Plan,
    /// Tell the sink the events lost so far every second (a live view needs
    /// it), rather than once at the end. Reading the count is a map lookup
    /// system call, during which the kernel skips every kprobe program on
    /// that CPU (`bpf_disable_instrumentation`), even one of the workload
    /// that preempted dax-probe there: each such skip is a lost event.
    pub lost_every_second: bool,
    /// How far events go ([`Stage::Full`] but for benchmarks).
    pub stage: Stage,
    /// Have the kernel count the programs' runs and time (two clock reads
    /// a run; off only for benchmarks).
    pub bpf_stats: bool,
}

/// How far each event goes: the steps of a benchmark's cost ladder, each
/// costing what the one before it does and more. Below `Full` the sink
/// gets no event, so nothing recorded this way is a trace of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// Every program returns at once: what the attachments cost.
    Attach,
    /// The programs read and keep their state, and reserve nothing.
    Programs,
    /// Only a fault's end (`dax_p?d_fault_done`) reaches user space, which
    /// counts it: the least that one fused record a fault could cost,
    /// with every hook still attached and running.
    FaultEnd,
    /// Records reach user space, which counts them and decodes nothing.
    Ring,
    /// Every event to the sink.
    #[default]
    Full,
}

impl Stage {
    /// The programs' `STAGE` global (dax-probe-ebpf: 0 stops them at once).
    fn in_kernel(self) -> u8 {
        match self {
            Stage::Attach => 0,
            Stage::Programs => 1,
            Stage::Ring | Stage::Full => 2,
            Stage::FaultEnd => 3,
        }
    }
}

/// Attaches, runs `command` (if any) and streams events to `sink` until it
/// exits or Ctrl-C.
pub async fn run(command: Command<'_>, sink: &mut impl Sink) -> Result<Session> {
    let mut meter = Meter::start(command.bpf_stats);
    let tracepoints = tracefs::fs_dax()?;
    let kernel = hooks::Kernel::read(&tracefs::root()?)?;
    let ring_bytes = rings::ring_bytes()?;
    let mut ebpf = load(&kernel, command.stage, ring_bytes)?;
    let mut rings = Rings::create(&mut ebpf, ring_bytes)?;
    // aya-log: the programs' own diagnostics (a lost event) go to stderr.
    let mut logger = aya_log::EbpfLogger::init_with_logger(&mut ebpf, StderrLog)
        .context("cannot read the eBPF programs' log")?;
    let attached = hooks::attach(&mut ebpf, &kernel, command.plan)?;
    let ways: Vec<String> = attached.groups.iter().map(|(group, way)| format!("{group} ({way})")).collect();
    eprintln!("dax-probe: coverage: hooks attached: {}", ways.join(" "));
    if !attached.call_sites.is_empty() {
        eprintln!("dax-probe: coverage: calls probed at: {}", attached.call_sites.join(" "));
    }
    for (group, why) in &attached.missing {
        eprintln!("dax-probe: coverage: hooks {group} not attached: {why}");
    }
    let typed = typed_faults(&kernel, &attached);
    let typed_ones = attach_tracepoints(&mut ebpf, &kernel, &tracepoints.present, typed.is_ok())?;
    let typed = match typed {
        Ok(()) => listed("; BTF-typed: ", &typed_ones),
        Err(why) => format!("; the fault tracepoints classic: {why}"),
    };
    eprintln!(
        "dax-probe: coverage: {} of {} fs_dax tracepoints attached{typed}{}{}",
        tracepoints.present.len(),
        dax_probe_common::TRACEPOINTS.len(),
        listed("; not in this kernel: ", &tracepoints.missing),
        listed("; in this kernel but not recorded: ", &tracepoints.unknown),
    );
    let begin = Begin {
        kernel: kernel_release(),
        command: command.label.clone(),
        tracepoints: tracepoints.present.iter().map(|s| s.to_string()).collect(),
        tracepoints_missing: tracepoints.missing.iter().map(|s| s.to_string()).collect(),
        hooks: attached.groups.iter().map(|(group, _)| *group).collect(),
        hook_ways: attached.groups.iter().map(|(_, way)| way.to_string()).collect(),
        hooks_missing: attached.missing.iter().map(|(group, _)| *group).collect(),
        imported_from: None,
        filesystems: mounts::dax_filesystems(),
    };
    // Every program is attached: from here on they send events (before,
    // each returned at once, so no group was ever seen half attached).
    arm(&mut ebpf)?;
    meter.attached();
    sink.begin(&begin);

    let mut child = spawn(&command)?;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    // The programs wake us only when a ring buffer fills past a threshold
    // (a wake-up per event cost the workload more than the event): the rest
    // is read on this timer.
    let mut read = tokio::time::interval(READ_EVERY);
    read.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interrupt = Interrupt::listen()?;
    let mut twins = Twins::default();
    let layout = &tracepoints.layout;
    let stage = command.stage;
    let mut events = 0;
    let status = loop {
        tokio::select! {
            _ = tick.tick() => {
                if command.lost_every_second {
                    sink.lost(dropped(&ebpf, &twins)?);
                }
                events += drain(&mut rings, layout, &mut twins, sink, stage)?;
                if sink.tick(monotonic_ns()) {
                    eprintln!("dax-probe: stopping: a waiter will never wake (a lost wake-up), so the command cannot end by itself");
                    break None;
                }
            }
            _ = read.tick() => events += drain(&mut rings, layout, &mut twins, sink, stage)?,
            woken = rings.woken() => {
                woken?;
                events += drain(&mut rings, layout, &mut twins, sink, stage)?;
            }
            status = wait(&mut child) => break Some(status?),
            () = interrupt.next() => break None,
        }
    };
    // Everything the workload caused was submitted before it exited.
    let whole = match stage {
        Stage::Full => rings.finish(layout, &mut |record| push(record, &mut twins, sink, &mut events))?,
        _ => {
            events += rings.count();
            true
        }
    };
    twins.finish();
    if !whole {
        eprintln!("dax-probe: a ring buffer record was still being written at the end: the events after it are unknowable");
    }
    logger.flush();
    let summary = Summary { events, lost: dropped(&ebpf, &twins)?, loss_unknown: !whole };
    tell_truncates_made_up_for(&ebpf, &twins);
    if summary.lost > 0 {
        eprintln!("dax-probe: lost events: {}", where_lost(&ebpf, &twins)?);
    }
    sink.finish(&summary)?;
    Ok(Session { begin, summary, status, cost: meter.finish(&ebpf) })
}

/// CLOCK_MONOTONIC, the clock of the events' stamps (`bpf_ktime_get_ns`).
pub(super) fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The tracepoints of every DAX fault, read by BTF-typed programs where the
/// kernel's BTF says where their fields are (`btf_dax_pte_fault` and its
/// siblings in the eBPF programs): the kernel then builds no record for them.
const FAULT_TRACEPOINTS: [&str; 4] =
    ["dax_pmd_fault", "dax_pmd_fault_done", "dax_pte_fault", "dax_pte_fault_done"];

/// Whether the fault tracepoints can be BTF-typed: where the kernel's BTF
/// gives their fields, and where the entry hooks are native (fentry and
/// fexit). With the inlined way, Debian's 7.2 skipped 84 of 2 618 runs of
/// the BTF-typed `dax_pte_fault` program in mixed-contention (its
/// recursion check, a run already in progress on that CPU; why, under
/// voluntary preemption, is not understood), where the classic program
/// skipped none: the inlined way keeps the classic ones.
fn typed_faults(kernel: &hooks::Kernel, attached: &hooks::Attached) -> Result<(), String> {
    kernel.fault_offsets().map_err(str::to_owned)?;
    let native =
        attached.groups.iter().any(|(group, way)| *group == HookGroup::EntryState && *way == hooks::NATIVE);
    if native {
        Ok(())
    } else {
        Err("the entry hooks are not native (fentry and fexit)".to_owned())
    }
}

/// Attaches a program to every tracepoint in `present`; the fault
/// tracepoints' BTF-typed ones where `typed`. Returns those.
fn attach_tracepoints<'a>(
    ebpf: &mut Ebpf,
    kernel: &hooks::Kernel,
    present: &[&'a str],
    typed: bool,
) -> Result<Vec<&'a str>> {
    let mut typed_ones = Vec::new();
    for name in present {
        if typed && FAULT_TRACEPOINTS.contains(name) {
            let program = format!("btf_{name}");
            let program: &mut BtfTracePoint = ebpf
                .program_mut(&program)
                .with_context(|| format!("no program {program} in the eBPF object"))?
                .try_into()?;
            program
                .load(name, kernel.btf())
                .with_context(|| format!("the kernel refused the {name} program"))?;
            program.attach().with_context(|| format!("cannot attach to fs_dax:{name} (tp_btf)"))?;
            typed_ones.push(*name);
            continue;
        }
        let program: &mut TracePoint = ebpf
            .program_mut(name)
            .with_context(|| format!("no program {name} in the eBPF object"))?
            .try_into()?;
        program.load().with_context(|| format!("the kernel refused the {name} program"))?;
        program.attach("fs_dax", name).with_context(|| format!("cannot attach to fs_dax:{name}"))?;
    }
    Ok(typed_ones)
}

/// How often the ring buffer is read when the programs did not wake us.
const READ_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

fn load(kernel: &hooks::Kernel, stage: Stage, ring_bytes: u64) -> Result<Ebpf> {
    // 0 where fs/dax.c has no such function: the waits hook then sees nothing.
    let wake_func = kernel.address("wake_exceptional_entry_func").unwrap_or(0);
    let stage = stage.in_kernel();
    let inode_flags = kernel.inode_flags();
    let offsets = kernel.fault_offsets().unwrap_or_default();
    let xa_lock_word = u8::from(kernel.xa_lock_word());
    let mut loader = EbpfLoader::new();
    loader
        .override_global("DAX_WAKE_FUNC", &wake_func, true)
        .override_global("STAGE", &stage, true)
        .override_global("INODE_FLAGS", &inode_flags, true)
        .override_global("OFFSETS", &offsets, true)
        .override_global("XA_LOCK_WORD", &xa_lock_word, true)
        .override_global("RING_BYTES", &ring_bytes, true)
        .map_max_entries("EVENTS", rings::possible_cpus()?);
    load_object(&mut loader)
}

/// Loads the eBPF object with `loader`'s globals, with a clear error where
/// the permission is missing.
pub(super) fn load_object(loader: &mut EbpfLoader) -> Result<Ebpf> {
    loader.load(EBPF_OBJECT).map_err(|error| {
        let text = format!("{error:#}");
        if text.contains("Operation not permitted") || text.contains("EPERM") {
            anyhow::anyhow!(
                "no permission to load BPF programs: run dax-probe as root (or with CAP_BPF and CAP_PERFMON)"
            )
        } else {
            anyhow::Error::new(error).context("cannot load the eBPF programs")
        }
    })
}

/// Starts every program: until now each returned at once (`ARMED`).
pub(super) fn arm(ebpf: &mut Ebpf) -> Result<()> {
    let mut armed = Array::<_, u32>::try_from(ebpf.map_mut("ARMED").context("no ARMED map")?)?;
    armed.set(0, 1, 0).context("cannot start the programs")
}

/// Starts the session's command, if it has one.
pub(super) fn spawn(command: &Command) -> Result<Option<tokio::process::Child>> {
    let Some((program, args)) = command.argv.split_first() else { return Ok(None) };
    let mut child = tokio::process::Command::new(program);
    child.args(args);
    if command.stdout_to_stderr {
        child.stdout(std::io::stderr().as_fd().try_clone_to_owned()?);
    }
    Ok(Some(child.spawn().with_context(|| format!("cannot run {program}"))?))
}

/// Ctrl-C (SIGINT), heard from the moment this is made until it is dropped.
///
/// A `tokio::signal::ctrl_c()` made anew at each turn of a `select!` loop
/// loses a SIGINT that arrives in the same turn as another branch's event:
/// that branch is taken, the listener dropped with the signal in it, and
/// tokio hands a new listener only later signals. `serve` went on after
/// the SIGINT that should have ended it: once in fio-run, and at the fifth
/// pass of a loop of its live-metrics step in the lab's VM. This listener
/// lives across the turns and keeps a signal until it is taken.
pub struct Interrupt(tokio::signal::unix::Signal);

impl Interrupt {
    /// Starts listening (inside the runtime).
    pub fn listen() -> Result<Interrupt> {
        let kind = tokio::signal::unix::SignalKind::interrupt();
        Ok(Interrupt(tokio::signal::unix::signal(kind).context("cannot listen for Ctrl-C")?))
    }

    /// The next SIGINT, or one that came since the last.
    pub async fn next(&mut self) {
        // None only while the runtime shuts down, which nothing waits out.
        let _ = self.0.recv().await;
    }
}

pub(super) async fn wait(child: &mut Option<tokio::process::Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

/// Pushes to `sink` every record the rings can give now; returns how many.
/// Below [`Stage::Full`] (a benchmark) it only counts them.
fn drain(
    rings: &mut Rings,
    layout: &Layout,
    twins: &mut Twins,
    sink: &mut impl Sink,
    stage: Stage,
) -> Result<u64> {
    let mut events = 0;
    match stage {
        Stage::Full => rings.read(layout, &mut |record| push(record, twins, sink, &mut events))?,
        _ => events = rings.count(),
    }
    Ok(events)
}

/// One record to `sink` as an event, counted in `events`, unless it is a
/// truncate's twin.
fn push(record: &Record, twins: &mut Twins, sink: &mut impl Sink, events: &mut u64) -> Result<()> {
    if !twins.is_twin(record) {
        sink.push_record(record)?;
        *events += 1;
    }
    Ok(())
}

/// Every event that did not reach the ring buffer: dropped by the
/// programs, or never produced because the kernel skipped a program run.
fn dropped(ebpf: &Ebpf, twins: &Twins) -> Result<u64> {
    let skipped: u64 = Skipped::read(ebpf).events_lost(twins).iter().map(|(_, misses)| misses).sum();
    Ok(lost_events(ebpf)? + skipped)
}

fn lost_events(ebpf: &Ebpf) -> Result<u64> {
    let lost: PerCpuArray<_, u64> = PerCpuArray::try_from(ebpf.map("LOST").context("no LOST map")?)?;
    Ok(lost.get(&0, 0)?.iter().sum())
}

/// Runs of the loaded programs the kernel skipped because one was already
/// running on that CPU (`bpf_prog_info.recursion_misses`), all added up.
pub(super) fn recursion_misses(ebpf: &Ebpf) -> u64 {
    cost::program_infos(ebpf).map(|(_, info)| info.recursion_misses).sum()
}

/// The runs the kernel skipped, read once: per program, but for the two at a
/// truncate's return, by their number.
struct Skipped {
    programs: Vec<(String, u64)>,
    truncate_done: [u64; 2],
}

impl Skipped {
    fn read(ebpf: &Ebpf) -> Skipped {
        let mut skipped = Skipped { programs: Vec::new(), truncate_done: [0; 2] };
        for (name, info) in cost::program_infos(ebpf) {
            match truncates::PROGRAMS.iter().position(|program| *program == name) {
                Some(number) => skipped.truncate_done[number] = info.recursion_misses,
                None => skipped.programs.push((name.to_owned(), info.recursion_misses)),
            }
        }
        skipped
    }

    /// Events lost to the skipped runs, per program: each is an event that
    /// never reached the ring buffer, but for the two programs at a
    /// truncate's return, which stand in for each other ([`Twins::lost`]).
    fn events_lost(self, twins: &Twins) -> Vec<(String, u64)> {
        let [first, second] = self.truncate_done;
        let mut lost = self.programs;
        lost.push((
            format!("truncate_done (both; skipped {first} and {second})"),
            twins.lost(self.truncate_done),
        ));
        lost
    }
}

/// Says where the two programs at a truncate's return made up for each
/// other's skipped runs, which no loss count shows.
fn tell_truncates_made_up_for(ebpf: &Ebpf, twins: &Twins) {
    let [first, second] = Skipped::read(ebpf).truncate_done;
    if first + second > 0 {
        eprintln!(
            "dax-probe: the kernel skipped {first} and {second} runs of the two programs at a truncate's return; truncates neither told: at most {}",
            twins.lost([first, second])
        );
    }
}

/// Where the events were lost: "dropped by the programs N; runs skipped: PROGRAM N ...".
fn where_lost(ebpf: &Ebpf, twins: &Twins) -> Result<String> {
    let skipped: Vec<String> = Skipped::read(ebpf)
        .events_lost(twins)
        .into_iter()
        .filter(|(_, misses)| *misses > 0)
        .map(|(name, misses)| format!("{name} {misses}"))
        .collect();
    let skipped = if skipped.is_empty() { "none".to_owned() } else { skipped.join(", ") };
    Ok(format!(
        "dropped by the programs {} (ring buffer or a map full); runs the kernel skipped: {skipped}",
        lost_events(ebpf)?
    ))
}

/// Writes the eBPF programs' aya-log records to stderr.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        eprintln!("dax-probe: ebpf {}: {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

pub(super) fn listed(label: &str, names: &[impl ToString]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let names: Vec<_> = names.iter().map(ToString::to_string).collect();
    format!("{label}{}", names.join(" "))
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

    /// The programs write their records in place, word by word: a zeroed
    /// array or a record built on the stack compiles to a call of
    /// compiler_builtins' `memset`, a byte-at-a-time loop on BPF that cost
    /// more than the rest of an event (dax-probe-ebpf's `submit_with`).
    #[test]
    fn no_program_calls_memset() {
        let file = object::File::parse(super::EBPF_OBJECT).expect("the eBPF object is ELF");
        let memset: Vec<_> = file
            .symbols()
            .filter(|symbol| symbol.name() == Ok("memset"))
            .map(|symbol| symbol.index())
            .collect();
        let callers: Vec<String> = file
            .sections()
            .filter(|section| {
                section.relocations().any(|(_, reloc)| {
                    matches!(reloc.target(), RelocationTarget::Symbol(index) if memset.contains(&index))
                })
            })
            .map(|section| section.name().unwrap_or("?").to_owned())
            .collect();
        assert!(callers.is_empty(), "these programs call memset: {callers:?}");
    }

    /// A SIGINT that comes while another branch of a `select!` loop is
    /// taken, and turns after it, is still there when the loop gets to it
    /// (`serve` once went on after its SIGINT: the listener it was
    /// delivered to was dropped with a turn another branch took).
    #[tokio::test]
    async fn a_sigint_waits_through_other_branches() {
        let mut interrupt = super::Interrupt::listen().expect("a runtime can listen for SIGINT");
        let mut other_turns = 0;
        let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                tokio::select! {
                    biased;
                    () = std::future::ready(()), if other_turns < 3 => {
                        if other_turns == 0 {
                            // SAFETY: raise only sends a signal to this
                            // thread, whose SIGINT handler is tokio's now.
                            assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
                            // The runtime reads the signal while this branch runs.
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                        other_turns += 1;
                    }
                    () = interrupt.next() => break,
                }
            }
        })
        .await;
        assert!(heard.is_ok(), "the SIGINT was lost after {other_turns} turns of another branch");
        assert_eq!(other_turns, 3, "the other branch came first, each turn");
    }
}
