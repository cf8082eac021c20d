//! `dax-probe record`: attach to the fs_dax tracepoints and stream every event
//! to a trace file, optionally while a command runs.

use std::{path::Path, process::ExitStatus};

use anyhow::{Context, Result};
use aya::{
    maps::{PerCpuArray, RingBuf},
    programs::TracePoint,
    Ebpf, EbpfLoader,
};
use dax_probe_common::Event;
use tokio::io::{unix::AsyncFd, Interest};

use crate::{trace_file, tracefs};

/// The eBPF object dax-probe's build script compiled.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dax-probe"));

/// What a finished recording holds.
pub struct Recording {
    pub events: u64,
    pub lost: u64,
    /// The command's exit status, if one ran.
    pub status: Option<ExitStatus>,
}

pub async fn record(out: &Path, command: &[String]) -> Result<Recording> {
    let tracepoints = tracefs::fs_dax()?;
    let mut ebpf = load(&tracepoints)?;
    // aya-log: the programs' own diagnostics (a lost event) go to stderr.
    let mut logger = aya_log::EbpfLogger::init_with_logger(&mut ebpf, StderrLog)
        .context("cannot read the eBPF programs' log")?;
    for name in &tracepoints.present {
        let program: &mut TracePoint = ebpf
            .program_mut(name)
            .with_context(|| format!("no program {name} in the eBPF object"))?
            .try_into()?;
        program.load().with_context(|| format!("the kernel refused the {name} program"))?;
        program.attach("fs_dax", name).with_context(|| format!("cannot attach to fs_dax:{name}"))?;
    }
    eprintln!(
        "dax-probe: coverage: {} of {} fs_dax tracepoints attached{}{}",
        tracepoints.present.len(),
        dax_probe_common::TRACEPOINTS.len(),
        listed("; not in this kernel: ", &tracepoints.missing),
        listed("; in this kernel but not recorded: ", &tracepoints.unknown),
    );

    let ring = RingBuf::try_from(ebpf.take_map("EVENTS").context("no EVENTS map")?)?;
    // SAFETY: the RingBuf owns its map fd and keeps it open, unchanged, for
    // as long as it lives, and the AsyncFd owns the RingBuf.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|error| anyhow::anyhow!("cannot poll the ring buffer: {error}"))?;
    let mut writer = trace_file::Writer::create(out)?;
    let mut child = match command.split_first() {
        Some((program, args)) => Some(
            tokio::process::Command::new(program)
                .args(args)
                .spawn()
                .with_context(|| format!("cannot run {program}"))?,
        ),
        None => None,
    };
    let status = loop {
        tokio::select! {
            readable = ring.readable_mut() => {
                let mut guard = readable?;
                drain(guard.get_inner_mut(), &mut writer)?;
                guard.clear_ready();
            }
            status = wait(&mut child) => break Some(status?),
            interrupted = tokio::signal::ctrl_c() => {
                interrupted?;
                break None;
            }
        }
    };
    // Everything the workload caused was submitted before it exited.
    drain(ring.get_mut(), &mut writer)?;
    logger.flush();
    let lost = lost_events(&ebpf)?;
    let header = trace_file::Header {
        kernel: kernel_release(),
        command: command.join(" "),
        attached: tracepoints.present.iter().map(|s| s.to_string()).collect(),
        missing: tracepoints.missing.iter().map(|s| s.to_string()).collect(),
        lost,
        ..trace_file::Header::default()
    };
    let events = writer.finish(header)?;
    Ok(Recording { events, lost, status })
}

fn load(tracepoints: &tracefs::Tracepoints) -> Result<Ebpf> {
    EbpfLoader::new().override_global("LAYOUT", &tracepoints.layout, true).load(EBPF_OBJECT).map_err(|error| {
        let text = format!("{error:#}");
        if text.contains("Operation not permitted") || text.contains("EPERM") {
            anyhow::anyhow!("no permission to load BPF programs: run dax-probe as root (or with CAP_BPF and CAP_PERFMON)")
        } else {
            anyhow::Error::new(error).context("cannot load the eBPF programs")
        }
    })
}

async fn wait(child: &mut Option<tokio::process::Child>) -> std::io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

fn drain(ring: &mut RingBuf<aya::maps::MapData>, writer: &mut trace_file::Writer) -> Result<()> {
    while let Some(item) = ring.next() {
        let bytes: &[u8] = &item;
        anyhow::ensure!(
            bytes.len() >= size_of::<Event>(),
            "short ring buffer record ({} bytes)",
            bytes.len()
        );
        // SAFETY: the programs submit whole Events (integers only, any bit
        // pattern valid); read_unaligned needs no alignment.
        let event = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) };
        writer.push(&event)?;
    }
    Ok(())
}

fn lost_events(ebpf: &Ebpf) -> Result<u64> {
    let lost: PerCpuArray<_, u64> = PerCpuArray::try_from(ebpf.map("LOST").context("no LOST map")?)?;
    Ok(lost.get(&0, 0)?.iter().sum())
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

fn listed(label: &str, names: &[impl AsRef<str>]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let names: Vec<_> = names.iter().map(AsRef::as_ref).collect();
    format!("{label}{}", names.join(" "))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_owned()).unwrap_or_default()
}
