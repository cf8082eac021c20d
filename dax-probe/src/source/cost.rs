//! What the probe itself costs while it watches, so that nobody takes it
//! for the workload's: the CPU time of dax-probe's own process, and what
//! the kernel's BPF statistics say the programs took.
//!
//! The programs' time is a lower bound: the kernel counts from the program's
//! first instruction to its last, not the trampoline or kprobe that calls
//! it, nor the ring buffer's wake-ups. Counting costs two clock reads per
//! run, so statistics are on only while a session runs (`BPF_ENABLE_STATS`:
//! the kernel turns them off again when the last holder closes its fd), and
//! a benchmark can leave them off.

use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd},
    time::Duration,
};

use aya::Ebpf;

/// The probe's cost over one live session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// dax-probe's own CPU time (the command it runs is not in it).
    pub user: Duration,
    pub system: Duration,
    /// Of that, loading and attaching the programs (reading the kernel's
    /// symbols, BTF and code): what a short session mostly pays.
    pub setup: Duration,
    /// Whether the kernel counted the programs' runs and time.
    pub statistics: Statistics,
    /// The programs' runs and time, where [`Statistics::On`].
    pub programs: Option<Programs>,
    /// The same per program, most time first (empty without statistics).
    pub by_program: Vec<(String, Programs)>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Statistics {
    #[default]
    On,
    /// Not asked for (a benchmark's step without their cost).
    Off,
    /// The kernel refused them (before 5.8, or no permission).
    Refused,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Programs {
    pub runs: u64,
    pub time: Duration,
}

/// Measures a session from its start; [`Meter::finish`] gives the cost.
pub struct Meter {
    start: (Duration, Duration),
    /// The CPU time loading and attaching took, once [`Meter::attached`].
    setup: Duration,
    /// The kernel keeps run statistics while this fd is open.
    stats: Result<OwnedFd, Statistics>,
}

impl Meter {
    /// Starts measuring (with the kernel's statistics, if `statistics`):
    /// before the programs are loaded, so that their every run is counted.
    pub fn start(statistics: bool) -> Meter {
        let stats = match statistics {
            true => aya::sys::enable_stats(aya::sys::Stats::RunTime).map_err(|_| Statistics::Refused),
            false => Err(Statistics::Off),
        };
        Meter { start: own_cpu_time(), setup: Duration::ZERO, stats }
    }

    /// Everything is attached: the events begin.
    pub fn attached(&mut self) {
        let (user, system) = own_cpu_time();
        self.setup = (user + system).saturating_sub(self.start.0 + self.start.1);
    }

    /// The cost since [`Meter::start`], with the statistics of `ebpf`'s
    /// programs (loaded after it, so their counts are this session's).
    pub fn finish(self, ebpf: &Ebpf) -> Cost {
        let (user, system) = own_cpu_time();
        let statistics = self.stats.as_ref().map_or_else(|why| *why, |_| Statistics::On);
        let mut by_program: Vec<(String, Programs)> = match statistics {
            Statistics::On => program_infos(ebpf)
                .map(|(name, info)| {
                    let time = Duration::from_nanos(info.run_time_ns);
                    (name.to_owned(), Programs { runs: info.run_cnt, time })
                })
                .collect(),
            Statistics::Off | Statistics::Refused => Vec::new(),
        };
        by_program.sort_by(|a, b| b.1.time.cmp(&a.1.time).then_with(|| a.0.cmp(&b.0)));
        let programs = (statistics == Statistics::On).then(|| {
            by_program.iter().fold(Programs::default(), |sum, (_, p)| Programs {
                runs: sum.runs + p.runs,
                time: sum.time + p.time,
            })
        });
        Cost {
            user: user.saturating_sub(self.start.0),
            system: system.saturating_sub(self.start.1),
            setup: self.setup,
            statistics,
            programs,
            by_program,
        }
    }
}

/// This process's user and system CPU time so far (`getrusage`; the
/// commands it runs are children, counted apart).
fn own_cpu_time() -> (Duration, Duration) {
    // SAFETY: rusage is plain integers; all zeros is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live, correctly typed buffer for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (time(usage.ru_utime), time(usage.ru_stime))
}

/// The kernel's view of each loaded program, by name: its run statistics
/// and the runs it skipped.
pub(super) fn program_infos(ebpf: &Ebpf) -> impl Iterator<Item = (&str, aya_obj::generated::bpf_prog_info)> {
    ebpf.programs()
        .filter_map(|(name, program)| Some((name, prog_info(program.fd().ok()?.as_fd().as_raw_fd())?)))
}

/// `BPF_OBJ_GET_INFO_BY_FD`: aya's `ProgramInfo` has no `recursion_misses`,
/// hence the system call.
fn prog_info(fd: i32) -> Option<aya_obj::generated::bpf_prog_info> {
    /// The `info` member of `union bpf_attr` for BPF_OBJ_GET_INFO_BY_FD.
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: bpf_prog_info is plain integers; all zeros is a valid value.
    let mut info: aya_obj::generated::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut attr = InfoAttr {
        bpf_fd: fd as u32,
        info_len: size_of::<aya_obj::generated::bpf_prog_info>() as u32,
        info: &raw mut info as u64,
    };
    // SAFETY: attr points at a live, correctly sized info buffer for the
    // duration of the call; the kernel writes at most info_len bytes.
    let rc = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &raw mut attr, size_of::<InfoAttr>() as u32)
    };
    (rc == 0).then_some(info)
}
