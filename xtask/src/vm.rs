//! Boots a guest kernel in QEMU with an emulated NVDIMM, runs one scenario and
//! brings its verdict home.
//!
//! The run fails when the scenario fails, when the kernel log shows a WARNING
//! (but one the scenario's header allows, `allow-warning:`: a result then),
//! BUG, Oops, soft lockup, hung task or panic (even if the scenario passed),
//! when the guest stops without a verdict, and when it outlives the scenario's
//! timeout (it is then killed). Everything the console printed is kept in
//! `target/lab/KERNEL/SCENARIO/console.log`, and what the guest left in its
//! outbox (traces, counts, fio output, dmesg) next to it.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{mpsc, OnceLock},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use base64::Engine;

use crate::{cache, cmd, kernel::GuestKernel, project_root, scenario::Scenario};

/// Size of the emulated NVDIMM (a sparse file on the host).
const NVDIMM_SIZE: &str = "1G";
const VERDICT_PREFIX: &str = "dax-lab: verdict: ";
/// A KVM guest that works prints its first line well within this.
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Kernel log lines that fail a run whatever the scenario said.
const KERNEL_PROBLEMS: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops",
    "soft lockup",
    "blocked for more than",
    "Kernel panic",
    "general protection fault",
];

pub struct Outcome {
    /// `None` when the run passed, else the one-line reason it failed.
    pub failure: Option<String>,
    /// The scenario's `result:` lines (the counts it saw).
    pub results: Vec<String>,
    pub elapsed: Duration,
    pub out_dir: PathBuf,
}

/// How the guest's clock runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// Real time: the host's clock.
    #[default]
    Host,
    /// QEMU's icount (TCG only): one guest instruction is one nanosecond of
    /// guest time and idle time is skipped, so guest-side timings (fio's
    /// bandwidth) repeat from run to run whatever the host does. Both vCPUs
    /// share one instruction stream: a cost measured this way is CPU cost,
    /// not wall-clock time on real hardware.
    Icount,
}

pub fn run(kernel: &GuestKernel, initramfs: &Path, scenario: &Scenario, clock: Clock) -> Result<Outcome> {
    let out_dir = project_root().join("target/lab").join(kernel.flavour.name()).join(&scenario.name);
    if out_dir.exists() {
        fs::remove_dir_all(&out_dir)?;
    }
    fs::create_dir_all(&out_dir)?;
    let nvdimm = out_dir.join("nvdimm.img");
    cmd::output(Command::new("truncate").args(["-s", NVDIMM_SIZE]).arg(&nvdimm))?;
    let outbox = out_dir.join("outbox.b64");

    let accel = accelerator(kernel, initramfs, clock)?;
    println!(
        "vm: booting the {} kernel {} for scenario {} ({}, timeout {} s)",
        kernel.flavour.name(),
        kernel.release,
        scenario.name,
        accel.join(" "),
        scenario.timeout.as_secs()
    );
    let mut qemu = qemu(kernel, initramfs, &accel);
    qemu.args(["-smp", "2", "-m", "2G,slots=2,maxmem=4G"])
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=pmem0,share=on,mem-path={},size={NVDIMM_SIZE},align=2M",
            nvdimm.display()
        ))
        .args(["-device", "nvdimm,id=nvdimm0,memdev=pmem0"])
        .arg("-append")
        .arg(format!(
            "console=ttyS0 panic=-1 dax_lab.scenario={} dax_lab.kernel={} dax_lab.watchdog={}",
            scenario.name,
            kernel.flavour.name(),
            watchdog_seconds(scenario.timeout)
        ))
        .args(["-serial", "stdio", "-serial"])
        .arg(format!("file:{}", outbox.display()));
    let started = Instant::now();
    let tag = format!("{}/{}", kernel.flavour.name(), scenario.name);
    let mut console =
        Console::start(&mut qemu, &out_dir.join("console.log"), &tag, &scenario.allowed_warnings)?;
    let ended = console.follow(started + scenario.timeout)?;
    let elapsed = started.elapsed();
    fs::remove_file(&nvdimm).ok();

    let unpacked = unpack_outbox(&outbox, &out_dir.join("outbox"));
    let failure = if !ended {
        Some(format!(
            "timed out after {} s: the guest was killed before scenario {} finished (last console line: {:?})",
            scenario.timeout.as_secs(),
            scenario.name,
            console.last_line
        ))
    } else if let Some(problem) = console.problems.first() {
        Some(format!("kernel log shows a problem: {}", problem.trim()))
    } else {
        match console.verdict.as_deref() {
            Some("pass") => unpacked.err().map(|e| format!("{e:#}")),
            Some(verdict) => Some(format!("scenario {}: {verdict}", scenario.name)),
            None => Some(format!(
                "the guest stopped without a verdict (crash or panic?{}); see {}",
                console.qemu_error(),
                out_dir.join("console.log").display()
            )),
        }
    };
    Ok(Outcome { failure, results: console.results, elapsed, out_dir })
}

/// When the guest's watchdog reports its tasks: 20 s before the host's
/// deadline (boot takes a few seconds of it), or half-way for short timeouts.
fn watchdog_seconds(timeout: Duration) -> u64 {
    let timeout = timeout.as_secs();
    if timeout > 60 {
        timeout - 20
    } else {
        timeout / 2
    }
}

fn qemu(kernel: &GuestKernel, initramfs: &Path, accel: &[&str]) -> Command {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"])
        .args(["-machine", "pc,nvdimm=on"])
        .args(accel)
        .arg("-kernel")
        .arg(&kernel.image)
        .arg("-initrd")
        .arg(initramfs);
    qemu
}

/// TCG's default CPU with RDRAND, which TCG emulates from the host's
/// random numbers. Without it the kernel's random pool is not ready until
/// its jitter entropy has run for about 7 s, and `mkfs` waits for it in
/// every boot (`random: crng init done` at 11.9 s, the file system mounted
/// at 12.5 s; with it, at 0 s and 7.4 s).
const TCG_CPU: [&str; 2] = ["-cpu", "qemu64,+rdrand"];

/// TCG unless a probe boot under KVM gets as far as the guest's init.
///
/// On this kind of machine /dev/kvm exists but a KVM guest hangs silently with
/// a host core spinning, so the probe costs its whole timeout: its answer is
/// kept in the cache per host kernel and QEMU version. `DAX_PROBE_ACCEL=tcg`
/// or `=kvm` decides without probing.
///
/// TCG runs both vCPUs in one host thread. With a thread per vCPU, a vCPU
/// now and then ran code another had just patched through an int3 (a static
/// key, an fentry site being attached) after the patch was done: an "Oops:
/// int3" in about one boot of 20. The scenarios took the same time either way.
fn accelerator(kernel: &GuestKernel, initramfs: &Path, clock: Clock) -> Result<Vec<&'static str>> {
    if clock == Clock::Icount {
        if std::env::var("DAX_PROBE_ACCEL").as_deref() == Ok("kvm") {
            bail!("icount needs TCG, and DAX_PROBE_ACCEL=kvm asks for KVM");
        }
        return Ok([&["-accel", "tcg,thread=single", "-icount", "shift=0,sleep=off"][..], &TCG_CPU].concat());
    }
    static KVM_WORKS: OnceLock<bool> = OnceLock::new();
    let kvm = *KVM_WORKS.get_or_init(|| match std::env::var("DAX_PROBE_ACCEL").as_deref() {
        Ok("kvm") => true,
        Ok("tcg") => false,
        _ => kvm_probe_cached(kernel, initramfs),
    });
    Ok(if kvm {
        vec!["-accel", "kvm", "-cpu", "host"]
    } else {
        [&["-accel", "tcg,thread=single"][..], &TCG_CPU].concat()
    })
}

fn kvm_probe_cached(kernel: &GuestKernel, initramfs: &Path) -> bool {
    if fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return false;
    }
    let host = [("uname", "-rv"), ("qemu-system-x86_64", "--version")]
        .map(|(program, flag)| cmd::version_line(program, flag).unwrap_or_default());
    let key = cache::Key::new("kvm-probe").add("host", host.join("\n").as_bytes()).finish();
    let answer = cache::root().join(format!("kvm-probe-{key}"));
    if let Ok(text) = fs::read_to_string(&answer) {
        return text.trim() == "works";
    }
    println!(
        "vm: probing KVM with a test boot (at most {} s; the answer is cached)",
        KVM_PROBE_TIMEOUT.as_secs()
    );
    let mut probe = qemu(kernel, initramfs, &["-accel", "kvm", "-cpu", "host"]);
    probe.args(["-m", "512", "-serial", "stdio", "-append", "console=ttyS0 panic=-1 rdinit=/bin/false"]);
    let log = std::env::temp_dir().join("dax-probe-kvm-probe.log");
    // The guest reached init when the kernel complains that init exited.
    let works = Console::start(&mut probe, &log, "kvm-probe", &[])
        .and_then(|mut console| console.follow(Instant::now() + KVM_PROBE_TIMEOUT))
        .is_ok_and(|ended| ended)
        && fs::read_to_string(&log).is_ok_and(|text| text.contains("Attempted to kill init"));
    println!(
        "vm: KVM {}",
        if works { "boots a guest: using it" } else { "does not boot a guest here: using TCG" }
    );
    if fs::create_dir_all(cache::root()).is_ok() {
        fs::write(&answer, if works { "works" } else { "fails" }).ok();
    }
    works
}

/// The guest's serial console, read line by line as QEMU runs.
struct Console {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: fs::File,
    stderr: Option<std::thread::JoinHandle<String>>,
    verdict: Option<String>,
    problems: Vec<String>,
    results: Vec<String>,
    last_line: String,
    /// Which run the echoed lines are from (two VMs may run at once).
    tag: String,
    /// What a kernel WARNING the scenario allows names.
    allowed_warnings: Vec<String>,
}

impl Console {
    fn start(qemu: &mut Command, log: &Path, tag: &str, allowed_warnings: &[String]) -> Result<Console> {
        let mut child =
            qemu.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().context(
                "cannot start qemu-system-x86_64 (is qemu-system-x86 installed? `cargo xtask setup`)",
            )?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).ok();
            text
        });
        Ok(Console {
            child,
            lines,
            log: fs::File::create(log)?,
            stderr: Some(stderr),
            verdict: None,
            problems: Vec::new(),
            results: Vec::new(),
            last_line: String::new(),
            tag: tag.to_owned(),
            allowed_warnings: allowed_warnings.to_vec(),
        })
    }

    /// Follows the console until QEMU exits (true) or `deadline` passes (false:
    /// QEMU is killed).
    fn follow(&mut self, deadline: Instant) -> Result<bool> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.take(line)?,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.child.wait()?;
                    return Ok(true);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.child.kill().ok();
                    self.child.wait()?;
                    return Ok(false);
                }
            }
        }
    }

    fn take(&mut self, line: String) -> Result<()> {
        writeln!(self.log, "{line}")?;
        if is_kernel_line(&line) {
            if let Some(problem) = kernel_problem(&line) {
                println!("  {} ! {line}", self.tag);
                if is_allowed(problem, &self.allowed_warnings) {
                    self.results
                        .push(format!("result: a kernel warning the scenario allows: {}", problem.trim()));
                } else {
                    self.problems.push(problem.to_owned());
                }
            }
        } else if !line.trim().is_empty() {
            println!("  {} | {line}", self.tag);
            if let Some(verdict) = line.strip_prefix(VERDICT_PREFIX) {
                self.verdict = Some(verdict.trim().to_owned());
            }
            if line.starts_with("result:") {
                self.results.push(line.clone());
            }
        }
        self.last_line = line;
        Ok(())
    }

    /// The first line QEMU wrote to its stderr, for a run that ended oddly.
    fn qemu_error(&mut self) -> String {
        let text = self.stderr.take().and_then(|handle| handle.join().ok()).unwrap_or_default();
        match text.lines().find(|line| !line.trim().is_empty()) {
            Some(line) => format!("; qemu said: {line}"),
            None => String::new(),
        }
    }
}

/// Kernel messages carry a printk timestamp: `[   12.345678] ...`.
fn is_kernel_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else { return false };
    let Some((stamp, _)) = rest.split_once(']') else { return false };
    let stamp = stamp.trim();
    !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// The part of a kernel line from the problem it names, if it names one.
fn kernel_problem(line: &str) -> Option<&str> {
    KERNEL_PROBLEMS.iter().filter_map(|pattern| line.find(pattern)).min().map(|at| &line[at..])
}

/// Whether `problem` is a WARNING naming one of `allowed` (never a BUG,
/// an oops, a lockup or a panic).
fn is_allowed(problem: &str, allowed: &[String]) -> bool {
    problem.starts_with("WARNING:") && allowed.iter().any(|name| problem.contains(name.as_str()))
}

fn unpack_outbox(encoded: &Path, dir: &Path) -> Result<()> {
    let text =
        fs::read(encoded).with_context(|| format!("the guest sent no outbox ({})", encoded.display()))?;
    let text: Vec<u8> = text.into_iter().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .context("the guest's outbox arrived corrupt (bad base64 on ttyS1)")?;
    fs::create_dir_all(dir)?;
    // tar's complaints go into the error, which only counts when the
    // scenario passed (a killed guest leaves half an outbox, as expected).
    let mut tar = Command::new("tar")
        .arg("-xzf")
        .arg("-")
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    tar.stdin.take().expect("piped").write_all(&bytes)?;
    let output = tar.wait_with_output()?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        bail!(
            "the guest's outbox arrived corrupt (not a gzipped tar: {})",
            why.lines().next().unwrap_or("?")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_kernel_lines_from_user_lines() {
        assert!(is_kernel_line("[    1.234567] nd_pmem namespace0.0: unable to guarantee persistence"));
        assert!(is_kernel_line("[12345.000001] x"));
        assert!(!is_kernel_line("check: ok: WARNING: in user output is not a kernel warning"));
        assert!(!is_kernel_line("[global]"));
    }

    #[test]
    fn names_kernel_problems() {
        let warn = "[    5.1] WARNING: CPU: 0 PID: 85 at lab_selftest.rs:30 init_module+0x1/0x2";
        assert_eq!(
            kernel_problem(warn),
            Some("WARNING: CPU: 0 PID: 85 at lab_selftest.rs:30 init_module+0x1/0x2")
        );
        let hung = "[  60.0] INFO: task fio:99 blocked for more than 30 seconds.";
        assert_eq!(kernel_problem(hung), Some("blocked for more than 30 seconds."));
        assert_eq!(
            kernel_problem("[ 1.0] BUG: soft lockup - CPU#0 stuck for 22s!"),
            Some("BUG: soft lockup - CPU#0 stuck for 22s!")
        );
        assert_eq!(kernel_problem("[ 1.0] pmem0: detected capacity change"), None);
    }

    #[test]
    fn only_named_warnings_are_allowed() {
        let allowed = ["insert_pmd".to_owned()];
        let warn =
            "WARNING: mm/huge_memory.c:1651 at insert_pmd.isra.0+0xb6/0x19b, CPU#0: dax-lab-fault/2737";
        assert!(is_allowed(warn, &allowed));
        assert!(!is_allowed(warn, &[]));
        assert!(!is_allowed("WARNING: fs/dax.c:1 at dax_fault_iter+0x1/0x2", &allowed));
        assert!(!is_allowed("BUG: unable to handle page fault in insert_pmd", &allowed));
    }
}
