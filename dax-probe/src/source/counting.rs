//! The counting mode's source: the programs of `dax-probe-ebpf/src/count.rs`
//! on every fs_dax tracepoint (BTF-typed, so the kernel builds no record)
//! and the fallback hooks (at `dax_iomap_pmd_fault`'s calls where the
//! kernel shows them, so that only PMD faults run them), adding up faults,
//! fallback reasons and latencies in kernel maps that this reads now and
//! then. No event stream: the cheapest way to watch a long run or a
//! production machine, and no way to check an invariant (those need every
//! event, in order).

use std::{collections::BTreeMap, process::ExitStatus, time::Duration};

use anyhow::{Context, Result};
use aya::{
    maps::{HashMap, PerCpuArray},
    programs::{tp_btf::BtfTracePointLinkId, BtfTracePoint, FEntry, FExit, KProbe},
    Btf, Ebpf, EbpfLoader,
};
use aya_obj::btf::BtfKind;
use dax_probe_common::{
    count::{FileTally, ProcessTally, Tally, Totals},
    TRACEPOINTS,
};

use crate::{
    source::{
        btf,
        cost::{Cost, Meter},
        kernel_text::{self, not_an_instruction, CallSite, Kcore, Symbol, Symbols},
        live::{self, Command},
        mounts, tracefs,
    },
    stream::Filesystem,
};

/// What the counting programs have added up so far.
#[derive(Clone, Debug)]
pub struct Counts {
    pub totals: Totals,
    /// By tgid: the command name first seen, and its faults (with the
    /// breakdown on), busiest first.
    pub processes: Vec<(u32, String, Tally)>,
    /// By file (`dev_t`, inode number), busiest first.
    pub files: Vec<((u64, u64), Tally)>,
    /// Program runs the kernel skipped (one was already running on that
    /// CPU): hits that were not counted. Non-zero: the counts are lower bounds.
    pub skipped: u64,
    /// Since the programs started.
    pub elapsed: Duration,
    /// See [`Options::latency_sample`]: the PTE latency histogram is a
    /// sample of that share of the time.
    pub latency_sample: u8,
}

/// What the user asked of a counting session.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Per-process and per-file tallies too (a map lookup per fault).
    pub breakdown: bool,
    /// The share of every second, in percent, during which PTE faults are
    /// timed (`--latency-sample`): see [`SAMPLE_PERIOD`].
    pub latency_sample: u8,
}

/// PTE fault latencies are a sample: the program on `dax_pte_fault`, whose
/// only job is a fault's start time, is attached for `latency_sample` % of
/// each period and detached for the rest, so that most PTE faults pay for
/// one program run, not two (a tracepoint's BPF dispatch is the dearest
/// part of counting one; `cargo xtask bench overhead` measures both ways).
/// Counts stay exact: a PTE fault's hits are counted at its done. PMD
/// faults, few and the ones fallbacks are classified on, are always timed.
pub const SAMPLE_PERIOD: Duration = Duration::from_secs(1);

/// What was attached, for the user and the summary.
#[derive(Clone, Debug)]
pub struct Coverage {
    pub kernel: String,
    pub tracepoints: Vec<String>,
    pub tracepoints_missing: Vec<String>,
    /// Where the fallback hooks went.
    pub reason_hooks: ReasonHooks,
    pub breakdown: bool,
    /// The DAX file systems mounted when counting began.
    pub filesystems: Vec<Filesystem>,
}

impl Coverage {
    /// The DAX file system on `dev`, if it was mounted when counting began.
    pub fn filesystem(&self, dev: u64) -> Option<&Filesystem> {
        Filesystem::on(&self.filesystems, dev)
    }

    /// The fallback hooks are attached: every fallback reason can be told.
    pub fn fallback_probes(&self) -> bool {
        !matches!(self.reason_hooks, ReasonHooks::Missing(_))
    }
}

/// Where the fallback hooks go: the cheapest place the kernel offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReasonHooks {
    /// kprobes at `dax_iomap_pmd_fault`'s calls of `grab_mapping_entry`
    /// and `dax_fault_iter` (and on the instruction after each): they run
    /// on PMD faults only.
    PmdCallSites(Vec<String>),
    /// fentry and fexit on those functions: every fault, PTE ones too, runs them.
    Functions,
    /// Not attached, and why: fallbacks their fields do not explain count as unknown.
    Missing(String),
}

impl std::fmt::Display for ReasonHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ReasonHooks::PmdCallSites(places) => write!(f, "on PMD faults only, at {}", places.join(" ")),
            ReasonHooks::Functions => {
                f.write_str("on every fault (fentry/fexit: dax_iomap_pmd_fault's calls are not in view)")
            }
            ReasonHooks::Missing(why) => {
                write!(f, "not attached ({why}): fallbacks their fields do not explain count as unknown")
            }
        }
    }
}

/// A finished counting session.
pub struct Session {
    pub coverage: Coverage,
    pub counts: Counts,
    pub status: Option<ExitStatus>,
    pub cost: Cost,
}

/// The fallback hooks on whole functions: (program, fentry or fexit, function).
const FALLBACK_FUNCTIONS: [(&str, bool, &str); 3] = [
    ("count_grab_mapping_entry", false, "grab_mapping_entry"),
    ("count_dax_fault_iter", true, "dax_fault_iter"),
    ("count_direct_access", false, "dax_iomap_direct_access"),
];

/// The fallback hooks at `dax_iomap_pmd_fault`'s calls: (program, callee,
/// at the call or at the instruction after it).
const PMD_CALL_HOOKS: [(&str, &str, bool); 3] = [
    ("count_pmd_grab_return", "grab_mapping_entry", false),
    ("count_pmd_fault_iter_call", "dax_fault_iter", true),
    ("count_pmd_fault_iter_return", "dax_fault_iter", false),
];

/// The PMD fault path's calls of the hooked functions, if the kernel shows
/// them: `dax_iomap_pmd_fault` a real function (and its cold parts), each
/// callee called from there, none by a tail call.
fn pmd_call_sites() -> Option<Vec<CallSite>> {
    let symbols = Symbols::read().ok().filter(Symbols::has_addresses)?;
    let code = symbols.fs_dax_code();
    let pmd_fault: Vec<&Symbol> = code
        .into_iter()
        .filter(|s| s.name == "dax_iomap_pmd_fault" || s.name.starts_with("dax_iomap_pmd_fault."))
        .collect();
    let callees: Vec<&Symbol> =
        ["grab_mapping_entry", "dax_fault_iter"].iter().filter_map(|name| symbols.get(name)).collect();
    if callees.len() < 2 || !pmd_fault.iter().any(|s| s.name == "dax_iomap_pmd_fault") {
        return None;
    }
    let sites = kernel_text::call_sites(&mut Kcore::open().ok()?, &pmd_fault, &callees).ok()?;
    let each_called = callees.iter().all(|callee| sites.iter().any(|site| site.callee == callee.name));
    (each_called && !sites.iter().any(|site| site.tail)).then_some(sites)
}

/// Counts until `command` exits or Ctrl-C; `tick` gets the counts so far
/// every `every` (a live view, the metrics), if given.
pub async fn run(
    command: Command<'_>,
    options: Options,
    every: Option<Duration>,
    mut tick: impl FnMut(&Coverage, &Counts),
) -> Result<Session> {
    let mut meter = Meter::start(command.bpf_stats);
    let tracepoints = tracefs::fs_dax()?;
    let kernel_btf = Btf::from_sys_fs().context("cannot read the kernel's BTF (counting needs it)")?;
    let offsets = btf::fault_offsets(&btf::Btf::kernel()?)?;
    let sites = pmd_call_sites();
    let functions_missing = FALLBACK_FUNCTIONS
        .iter()
        .find(|(_, _, function)| kernel_btf.id_by_type_name_kind(function, BtfKind::Func).is_err())
        .map(|(_, _, function)| format!("{function} is not a function of this kernel (inlined?)"));
    let mut reason_hooks = match (&sites, functions_missing) {
        (Some(_), _) => ReasonHooks::PmdCallSites(Vec::new()),
        (None, None) => ReasonHooks::Functions,
        (None, Some(why)) => ReasonHooks::Missing(why),
    };
    let probes = u8::from(!matches!(reason_hooks, ReasonHooks::Missing(_)));
    let breakdown_flag = u8::from(options.breakdown);
    let mut loader = EbpfLoader::new();
    loader
        .override_global("OFFSETS", &offsets, true)
        .override_global("FALLBACK_PROBES", &probes, true)
        .override_global("BREAKDOWN", &breakdown_flag, true);
    let mut ebpf = live::load_object(&mut loader)?;
    for name in &tracepoints.present {
        let program = format!("count_{name}");
        let program: &mut BtfTracePoint = ebpf
            .program_mut(&program)
            .with_context(|| format!("no program {program} in the eBPF object"))?
            .try_into()?;
        program.load(name, &kernel_btf).with_context(|| format!("the kernel refused the {name} counter"))?;
        if *name != PTE_START || options.latency_sample == 100 {
            program.attach().with_context(|| format!("cannot attach to fs_dax:{name} (tp_btf)"))?;
        }
    }
    let mut sampler = tracepoints.present.contains(&PTE_START).then(|| Sampler::new(options.latency_sample));
    match (&mut reason_hooks, &sites) {
        (ReasonHooks::PmdCallSites(places), Some(sites)) => {
            *places = attach_pmd_call_sites(&mut ebpf, sites)?
        }
        (ReasonHooks::Functions, _) => attach_functions(&mut ebpf, &kernel_btf)?,
        _ => {}
    }
    let coverage = Coverage {
        kernel: live::kernel_release(),
        tracepoints: tracepoints.present.iter().map(|s| s.to_string()).collect(),
        tracepoints_missing: tracepoints.missing.iter().map(|s| s.to_string()).collect(),
        reason_hooks,
        breakdown: options.breakdown,
        filesystems: mounts::dax_filesystems(),
    };
    say_coverage(&coverage);
    live::arm(&mut ebpf)?;
    meter.attached();
    let started = std::time::Instant::now();
    let mut child = live::spawn(&command)?;
    let mut interrupt = live::Interrupt::listen()?;
    let mut ticks = tokio::time::interval(every.unwrap_or(Duration::from_secs(3600)));
    ticks.tick().await;
    let status = loop {
        let sampling = sampler.as_ref().and_then(|sampler| sampler.next);
        tokio::select! {
            _ = ticks.tick(), if every.is_some() => tick(&coverage, &read(&ebpf, started.elapsed(), options.latency_sample)?),
            () = tokio::time::sleep_until(sampling.unwrap_or_else(tokio::time::Instant::now)), if sampling.is_some() => {
                if let Some(sampler) = &mut sampler {
                    sampler.turn(&mut ebpf)?;
                }
            }
            status = live::wait(&mut child) => break Some(status?),
            () = interrupt.next() => break None,
        }
    };
    let counts = read(&ebpf, started.elapsed(), options.latency_sample)?;
    Ok(Session { coverage, counts, status, cost: meter.finish(&ebpf) })
}

/// The tracepoint whose program only times PTE faults.
const PTE_START: &str = "dax_pte_fault";

/// Attaches and detaches the program on [`PTE_START`] by the clock: on for
/// `percent` % of every [`SAMPLE_PERIOD`].
struct Sampler {
    on_for: Duration,
    link: Option<BtfTracePointLinkId>,
    /// When to turn next; `None`: never again (0 or 100 %).
    next: Option<tokio::time::Instant>,
}

impl Sampler {
    fn new(percent: u8) -> Sampler {
        let on_for = SAMPLE_PERIOD * u32::from(percent) / 100;
        let sampled = (1..100).contains(&percent);
        Sampler { on_for, link: None, next: sampled.then(tokio::time::Instant::now) }
    }

    /// Attaches the program if it is off, detaches it if it is on, and sets
    /// the time of the next turn.
    fn turn(&mut self, ebpf: &mut Ebpf) -> Result<()> {
        let Some(now) = self.next else { return Ok(()) };
        let program: &mut BtfTracePoint =
            ebpf.program_mut(&format!("count_{PTE_START}")).context("no PTE start program")?.try_into()?;
        match self.link.take() {
            Some(link) => {
                program.detach(link).context("cannot detach the PTE fault timer")?;
                self.next = Some(now + (SAMPLE_PERIOD - self.on_for));
            }
            None => {
                self.link = Some(program.attach().context("cannot attach the PTE fault timer")?);
                self.next = Some(now + self.on_for);
            }
        }
        Ok(())
    }
}

/// kprobes at each of `sites` a hook wants; the places probed. A candidate
/// that is bytes of another instruction is refused by the kernel and
/// skipped; every hook must be attached somewhere.
fn attach_pmd_call_sites(ebpf: &mut Ebpf, sites: &[CallSite]) -> Result<Vec<String>> {
    let mut places = Vec::new();
    for (program, callee, at_call) in PMD_CALL_HOOKS {
        let kprobe: &mut KProbe = ebpf
            .program_mut(program)
            .with_context(|| format!("no program {program} in the eBPF object"))?
            .try_into()?;
        kprobe.load().with_context(|| format!("the kernel refused the {program} program"))?;
        let mut attached = 0;
        for site in sites.iter().filter(|site| site.callee == callee) {
            let offset = if at_call { site.offset } else { site.offset + 5 };
            match kprobe.attach(&site.function, offset) {
                Ok(_) => attached += 1,
                Err(error) if not_an_instruction(&error) => continue,
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot probe {}+{offset:#x}", site.function))
                }
            }
            let what = if at_call { "call of" } else { "return from" };
            places.push(format!("{}+{offset:#x}({what} {callee})", site.function));
        }
        anyhow::ensure!(attached > 0, "no call of {callee} in dax_iomap_pmd_fault could be probed");
    }
    Ok(places)
}

/// fentry and fexit on the hooked functions themselves.
fn attach_functions(ebpf: &mut Ebpf, btf: &Btf) -> Result<()> {
    for (program, entry, function) in FALLBACK_FUNCTIONS {
        let program = ebpf.program_mut(program).context("a fallback hook is missing from the object")?;
        let attached = if entry {
            let program: &mut FEntry = program.try_into()?;
            program.load(function, btf).and_then(|()| program.attach().map(drop))
        } else {
            let program: &mut FExit = program.try_into()?;
            program.load(function, btf).and_then(|()| program.attach().map(drop))
        };
        attached.with_context(|| format!("cannot attach the fallback hook on {function}"))?;
    }
    Ok(())
}

fn say_coverage(coverage: &Coverage) {
    eprintln!(
        "dax-probe: counting: {} of {} fs_dax tracepoints{}; breakdown by process and file: {}",
        coverage.tracepoints.len(),
        TRACEPOINTS.len(),
        live::listed("; not in this kernel: ", &coverage.tracepoints_missing),
        if coverage.breakdown { "on" } else { "off" },
    );
    eprintln!("dax-probe: counting: fallback hooks {}", coverage.reason_hooks);
}

/// The counts so far: the CPUs' totals summed, the breakdowns busiest first.
fn read(ebpf: &Ebpf, elapsed: Duration, latency_sample: u8) -> Result<Counts> {
    let per_cpu: PerCpuArray<_, Totals> =
        PerCpuArray::try_from(ebpf.map("TOTALS").context("no TOTALS map")?)?;
    let mut totals = Totals::ZERO;
    per_cpu.get(&0, 0)?.iter().for_each(|cpu| totals.add(cpu));
    let processes: HashMap<_, u32, ProcessTally> =
        HashMap::try_from(ebpf.map("PROCESSES").context("no PROCESSES map")?)?;
    let mut processes: Vec<(u32, String, Tally)> = processes
        .iter()
        .filter_map(Result::ok)
        .map(|(tgid, process)| (tgid, comm(&process.comm), process.tally))
        .collect();
    processes.sort_by_key(|(tgid, _, tally)| (std::cmp::Reverse(faults(tally)), *tgid));
    let files: HashMap<_, u64, FileTally> = HashMap::try_from(ebpf.map("FILES").context("no FILES map")?)?;
    // Two inodes of one file cannot be; one file seen twice (an inode freed
    // and another at its address) adds up.
    let mut by_file: BTreeMap<(u64, u64), Tally> = BTreeMap::new();
    for (_, file) in files.iter().filter_map(Result::ok) {
        let tally = by_file.entry((file.dev, file.ino)).or_default();
        tally.faults.iter_mut().flatten().zip(file.tally.faults.iter().flatten()).for_each(|(a, b)| *a += b);
    }
    let mut files: Vec<_> = by_file.into_iter().collect();
    files.sort_by_key(|(file, tally)| (std::cmp::Reverse(faults(tally)), *file));
    Ok(Counts { totals, processes, files, skipped: live::recursion_misses(ebpf), elapsed, latency_sample })
}

/// Every fault of a tally.
pub fn faults(tally: &Tally) -> u64 {
    tally.faults.iter().flatten().sum()
}

fn comm(bytes: &[u8; 16]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
