//! dax-lab-soak: processes that fault, write, `msync`, `fsync`, punch holes
//! in and truncate the same DAX files at once, with 2 MiB and 4 KiB
//! mappings mixed, and an oracle that proves afterwards that no data was
//! lost.
//!
//! The parent lays out the files and starts `--workers` processes (itself,
//! with `--worker N`). Each worker loops until the deadline over random
//! operations, logging each with the CLOCK_MONOTONIC interval it ran in:
//! - write: map a 2 MiB window of a file, 2 MiB aligned (its faults may
//!   take PMDs) or 4 KiB off (address colour: PTEs only), and stamp blocks
//!   it owns (block `b` belongs to worker `b % workers`): every byte of a
//!   4 KiB block follows from (file, block, writer, generation); sometimes
//!   `msync` the window before unmapping it;
//! - `fsync` a file;
//! - punch a hole (any worker, any range: 4 KiB to 2 MiB, sometimes a whole
//!   2 MiB range);
//! - truncate a file's last 2 MiB away and back (with every mapping of the
//!   file gone, under an exclusive `flock` that writers share while they
//!   map: a store past EOF would be SIGBUS, not a test of DAX).
//!
//! The oracle, per block, after every worker is done: the block holds the
//! last generation its owner wrote, or zeros; zeros only if some punch or
//! truncate of it may have run after that write began; the last
//! generation only if no punch or truncate surely ran after that write
//! ended; never an older generation, never anything else. Blocks are read
//! with `pread`, not through a mapping.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, BufWriter, Write},
    os::{fd::AsRawFd, unix::fs::FileExt},
    path::PathBuf,
    process::Command,
    ptr,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;

const BLOCK: usize = 4096;
const PMD_SIZE: usize = 2 << 20;
const BLOCKS_PER_PMD: usize = PMD_SIZE / BLOCK;

#[derive(Parser)]
struct Args {
    /// The folder on the DAX file system.
    dir: PathBuf,
    #[arg(long, default_value = "60")]
    seconds: u64,
    #[arg(long, default_value = "4")]
    workers: usize,
    #[arg(long, default_value = "2")]
    files: usize,
    /// Size of each file, in MiB (a multiple of 2).
    #[arg(long, default_value = "8")]
    file_mib: usize,
    /// Where the workers' logs go (not on the DAX file system).
    #[arg(long, default_value = "/tmp/dax-lab-soak")]
    logs: PathBuf,
    /// Run as worker N (the parent starts these).
    #[arg(long, hide = true)]
    worker: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.file_mib >= 2 && args.file_mib % 2 == 0, "--file-mib must be a positive multiple of 2");
    ensure!(args.workers > 0 && args.files > 0, "--workers and --files must be positive");
    match args.worker {
        Some(me) => worker(&args, me),
        None => parent(&args),
    }
}

fn data_file(args: &Args, file: usize) -> PathBuf {
    args.dir.join(format!("soak-{file}"))
}

fn log_file(args: &Args, worker: usize) -> PathBuf {
    args.logs.join(format!("worker-{worker}.log"))
}

fn parent(args: &Args) -> Result<()> {
    std::fs::create_dir_all(&args.logs)?;
    let size = args.file_mib << 20;
    for file in 0..args.files {
        let path = data_file(args, file);
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        f.set_len(size as u64)?;
    }
    let me = std::env::current_exe()?;
    let started = Instant::now();
    let children: Vec<_> = (0..args.workers)
        .map(|worker| {
            Command::new(&me)
                .arg(&args.dir)
                .args(["--seconds", &args.seconds.to_string(), "--workers", &args.workers.to_string()])
                .args(["--files", &args.files.to_string(), "--file-mib", &args.file_mib.to_string()])
                .arg("--logs")
                .arg(&args.logs)
                .args(["--worker", &worker.to_string()])
                .spawn()
                .context("cannot start a worker")
        })
        .collect::<Result<_>>()?;
    for (worker, mut child) in children.into_iter().enumerate() {
        let status = child.wait()?;
        ensure!(status.success(), "worker {worker} failed ({status})");
    }
    let elapsed = started.elapsed();
    let log = Log::read(args)?;
    let verdict = check(args, &log)?;
    println!(
        "dax-lab-soak: {} workers, {} files, {:.1} s: {} block writes ({} through 2 MiB-aligned windows), {} msyncs, {} fsyncs, {} punches, {} truncates",
        args.workers,
        args.files,
        elapsed.as_secs_f64(),
        log.writes.values().map(Vec::len).sum::<usize>(),
        log.aligned_writes,
        log.msyncs,
        log.fsyncs,
        log.punches.iter().filter(|p| !p.truncate).count(),
        log.punches.iter().filter(|p| p.truncate).count(),
    );
    println!(
        "dax-lab-soak: oracle: {} blocks: {} hold their last write, {} zeros after a punch or truncate, {} never written; {} wrong",
        verdict.blocks,
        verdict.last,
        verdict.zeroed,
        verdict.unwritten,
        verdict.wrong.len()
    );
    for wrong in verdict.wrong.iter().take(20) {
        println!("dax-lab-soak: WRONG: {wrong}");
    }
    ensure!(verdict.wrong.is_empty(), "{} blocks hold data the oracle does not allow", verdict.wrong.len());
    Ok(())
}

/// The bytes of a block stamped by `writer` with `generation`: a header,
/// then a pattern that follows from all four numbers.
fn stamp(file: usize, block: usize, writer: usize, generation: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(BLOCK);
    let words = [0x0050_414b_5358_4144_u64, file as u64, block as u64, writer as u64, generation];
    let mut x = words.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, w| (h ^ w).wrapping_mul(0x100_0000_01b3));
    for word in words {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    while bytes.len() < BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes
}

/// CLOCK_MONOTONIC nanoseconds: one clock for every process of the run.
fn now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// xorshift64*: enough randomness for choosing operations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// `flock` on a file, released on drop.
struct Flock(i32);

impl Flock {
    fn take(file: &File, exclusive: bool) -> Result<Flock> {
        let fd = file.as_raw_fd();
        // SAFETY: flock on our own open file descriptor.
        let rc = unsafe { libc::flock(fd, if exclusive { libc::LOCK_EX } else { libc::LOCK_SH }) };
        ensure!(rc == 0, "flock: {}", std::io::Error::last_os_error());
        Ok(Flock(fd))
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // SAFETY: unlocking the descriptor we locked, still open (the File outlives us).
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

fn worker(args: &Args, me: usize) -> Result<()> {
    let files: Vec<File> = (0..args.files)
        .map(|f| OpenOptions::new().read(true).write(true).open(data_file(args, f)))
        .collect::<std::io::Result<_>>()?;
    let size = args.file_mib << 20;
    let mut log = BufWriter::new(File::create(log_file(args, me))?);
    let mut rng = Rng(0x1234_5678_9abc_def1 ^ ((me as u64 + 1) << 32) ^ now());
    let mut generation = 0u64;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    while Instant::now() < deadline {
        let f = rng.below(args.files);
        match rng.below(100) {
            0..=84 => {
                let aligned = rng.below(2) == 0;
                let window = rng.below(size / PMD_SIZE);
                let _shared = Flock::take(&files[f], false)?;
                let map = Window::map(&files[f], window * PMD_SIZE, aligned)?;
                for _ in 0..8 {
                    let in_window = rng.below(BLOCKS_PER_PMD);
                    let block = window * BLOCKS_PER_PMD + in_window;
                    // The owner's block nearest below: block b is worker b % workers's.
                    let block = block - block % args.workers + me;
                    if !(window * BLOCKS_PER_PMD..(window + 1) * BLOCKS_PER_PMD).contains(&block) {
                        continue;
                    }
                    generation += 1;
                    let start = now();
                    map.write(block - window * BLOCKS_PER_PMD, &stamp(f, block, me, generation));
                    writeln!(log, "W {f} {block} {generation} {start} {} {}", now(), u8::from(aligned))?;
                }
                if rng.below(3) == 0 {
                    map.msync()?;
                    writeln!(log, "M")?;
                }
            }
            85..=89 => {
                files[f].sync_all()?;
                writeln!(log, "S")?;
            }
            90..=97 => {
                let (first, count) = match rng.below(4) {
                    0 => (rng.below(size / PMD_SIZE) * BLOCKS_PER_PMD, BLOCKS_PER_PMD),
                    _ => (rng.below(size / BLOCK), 1 + rng.below(64)),
                };
                let count = count.min(size / BLOCK - first);
                let start = now();
                punch(&files[f], first * BLOCK, count * BLOCK)?;
                writeln!(log, "P {f} {first} {count} {start} {}", now())?;
            }
            _ => {
                let _exclusive = Flock::take(&files[f], true)?;
                let start = now();
                files[f].set_len((size - PMD_SIZE) as u64)?;
                files[f].set_len(size as u64)?;
                let first = (size - PMD_SIZE) / BLOCK;
                writeln!(log, "T {f} {first} {BLOCKS_PER_PMD} {start} {}", now())?;
            }
        }
    }
    log.flush()?;
    Ok(())
}

/// A shared mapping of one 2 MiB window of a file, unmapped on drop.
struct Window {
    base: usize,
}

impl Window {
    /// Maps `PMD_SIZE` bytes at file offset `offset`, at a 2 MiB aligned
    /// address (`aligned`) or 4 KiB past one.
    fn map(file: &File, offset: usize, aligned: bool) -> Result<Window> {
        let shift = if aligned { 0 } else { BLOCK };
        let room = 2 * PMD_SIZE + PMD_SIZE;
        // SAFETY: a fresh anonymous reservation; nothing else uses that range.
        let reserved = unsafe {
            libc::mmap(ptr::null_mut(), room, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
        };
        ensure!(reserved != libc::MAP_FAILED, "cannot reserve: {}", std::io::Error::last_os_error());
        let at = (reserved as usize).next_multiple_of(PMD_SIZE) + shift;
        // SAFETY: MAP_FIXED inside our own reservation.
        let base = unsafe {
            libc::mmap(
                at as *mut _,
                PMD_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                file.as_raw_fd(),
                offset as i64,
            )
        };
        ensure!(base != libc::MAP_FAILED, "cannot map: {}", std::io::Error::last_os_error());
        // The rest of the reservation is not needed.
        // SAFETY: unmapping only the parts of our reservation around the window.
        unsafe {
            let end = at + PMD_SIZE;
            libc::munmap(reserved, at - reserved as usize);
            libc::munmap(end as *mut _, reserved as usize + room - end);
        }
        Ok(Window { base: base as usize })
    }

    fn write(&self, block: usize, bytes: &[u8]) {
        debug_assert!(block < BLOCKS_PER_PMD && bytes.len() == BLOCK);
        // SAFETY: the block lies inside our live mapping of PMD_SIZE bytes.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), (self.base + block * BLOCK) as *mut u8, BLOCK) };
    }

    fn msync(&self) -> Result<()> {
        // SAFETY: msync of our own live mapping.
        let rc = unsafe { libc::msync(self.base as *mut _, PMD_SIZE, libc::MS_SYNC) };
        ensure!(rc == 0, "msync: {}", std::io::Error::last_os_error());
        Ok(())
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used.
        unsafe { libc::munmap(self.base as *mut _, PMD_SIZE) };
    }
}

fn punch(file: &File, offset: usize, len: usize) -> Result<()> {
    // SAFETY: fallocate on our own open file with plain integer arguments.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as i64,
            len as i64,
        )
    };
    ensure!(rc == 0, "punch: {}", std::io::Error::last_os_error());
    Ok(())
}

/// A block write: its generation and the interval it ran in.
struct BlockWrite {
    generation: u64,
    start: u64,
    end: u64,
}

/// A punch or truncate of `count` blocks from `first`.
struct Punch {
    file: usize,
    first: usize,
    count: usize,
    start: u64,
    end: u64,
    truncate: bool,
}

/// Every worker's log, merged.
struct Log {
    /// (file, block) -> the owner's writes, in generation order.
    writes: HashMap<(usize, usize), Vec<BlockWrite>>,
    punches: Vec<Punch>,
    aligned_writes: usize,
    msyncs: usize,
    fsyncs: usize,
}

impl Log {
    fn read(args: &Args) -> Result<Log> {
        let mut log =
            Log { writes: HashMap::new(), punches: Vec::new(), aligned_writes: 0, msyncs: 0, fsyncs: 0 };
        for worker in 0..args.workers {
            let path = log_file(args, worker);
            let file = File::open(&path).with_context(|| format!("no log {}", path.display()))?;
            for line in BufReader::new(file).lines() {
                let line = line?;
                let words: Vec<&str> = line.split_whitespace().collect();
                let n = |i: usize| -> Result<u64> {
                    words
                        .get(i)
                        .context("short log line")?
                        .parse()
                        .with_context(|| format!("bad log line {line:?}"))
                };
                match words.first().copied() {
                    Some("W") => {
                        let write = BlockWrite { generation: n(3)?, start: n(4)?, end: n(5)? };
                        log.aligned_writes += n(6)? as usize;
                        log.writes.entry((n(1)? as usize, n(2)? as usize)).or_default().push(write);
                    }
                    Some(kind @ ("P" | "T")) => log.punches.push(Punch {
                        file: n(1)? as usize,
                        first: n(2)? as usize,
                        count: n(3)? as usize,
                        start: n(4)?,
                        end: n(5)?,
                        truncate: kind == "T",
                    }),
                    Some("M") => log.msyncs += 1,
                    Some("S") => log.fsyncs += 1,
                    _ => bail!("bad log line {line:?} in {}", path.display()),
                }
            }
        }
        Ok(log)
    }
}

struct Verdict {
    blocks: usize,
    last: usize,
    zeroed: usize,
    unwritten: usize,
    wrong: Vec<String>,
}

fn check(args: &Args, log: &Log) -> Result<Verdict> {
    let size = args.file_mib << 20;
    let mut verdict = Verdict { blocks: 0, last: 0, zeroed: 0, unwritten: 0, wrong: Vec::new() };
    let zeros = vec![0u8; BLOCK];
    for f in 0..args.files {
        let file = File::open(data_file(args, f))?;
        let mut bytes = vec![0u8; BLOCK];
        for block in 0..size / BLOCK {
            verdict.blocks += 1;
            file.read_exact_at(&mut bytes, (block * BLOCK) as u64)?;
            let owner = block % args.workers;
            let punches: Vec<&Punch> = log
                .punches
                .iter()
                .filter(|p| p.file == f && (p.first..p.first + p.count).contains(&block))
                .collect();
            let Some(last) = log.writes.get(&(f, block)).and_then(|writes| writes.last()) else {
                if bytes == zeros {
                    verdict.unwritten += 1;
                } else {
                    verdict.wrong.push(format!("file {f} block {block}: never written, yet not zeros"));
                }
                continue;
            };
            // A punch that may have run after the last write began may have zeroed it;
            // one that surely began after it ended must have.
            let may_zero = punches.iter().any(|p| p.end > last.start);
            let must_zero = punches.iter().any(|p| p.start > last.end);
            if bytes == zeros {
                if may_zero {
                    verdict.zeroed += 1;
                } else {
                    verdict.wrong.push(format!(
                        "file {f} block {block}: zeros, but generation {} by worker {owner} was written and no punch or truncate came after it",
                        last.generation
                    ));
                }
            } else if bytes == stamp(f, block, owner, last.generation) {
                if must_zero {
                    verdict.wrong.push(format!(
                        "file {f} block {block}: generation {} survived a punch or truncate that began after it was written",
                        last.generation
                    ));
                } else {
                    verdict.last += 1;
                }
            } else {
                let header: Vec<u64> = bytes[..40]
                    .chunks(8)
                    .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
                    .collect();
                verdict.wrong.push(format!(
                    "file {f} block {block}: neither zeros nor the last generation {} by worker {owner} (header {header:x?})",
                    last.generation
                ));
            }
        }
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 MiB file, one worker; `blocks` written into the file as given,
    /// `log` as the worker's log: what the oracle says.
    fn oracle(name: &str, blocks: &[(usize, Vec<u8>)], log: &str) -> Verdict {
        let root = std::env::temp_dir().join(format!("dax-lab-soak-test-{name}-{}", std::process::id()));
        let args = Args {
            dir: root.clone(),
            seconds: 0,
            workers: 1,
            files: 1,
            file_mib: 2,
            logs: root.join("logs"),
            worker: None,
        };
        std::fs::create_dir_all(&args.logs).unwrap();
        let file = File::create(data_file(&args, 0)).unwrap();
        file.set_len(PMD_SIZE as u64).unwrap();
        for (block, bytes) in blocks {
            file.write_all_at(bytes, (block * BLOCK) as u64).unwrap();
        }
        std::fs::write(log_file(&args, 0), log).unwrap();
        let verdict = check(&args, &Log::read(&args).unwrap()).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        verdict
    }

    #[test]
    fn the_oracle_allows_the_last_write_or_a_later_punch_and_nothing_else() {
        let writes = "W 0 5 1 100 200 1\nW 0 5 2 300 400 0\n";
        // The last generation: right.
        assert!(oracle("last", &[(5, stamp(0, 5, 0, 2))], writes).wrong.is_empty());
        // An older generation: a lost write.
        assert_eq!(oracle("older", &[(5, stamp(0, 5, 0, 1))], writes).wrong.len(), 1);
        // Zeros with no punch after the write: lost.
        assert_eq!(oracle("zeros", &[], writes).wrong.len(), 1);
        // Zeros after a punch that overlapped the write: allowed.
        let punched = format!("{writes}P 0 0 8 350 500\n");
        assert_eq!(oracle("punched", &[], &punched).zeroed, 1);
        // The write survived a punch that began after it ended: wrong.
        let later = format!("{writes}T 0 0 512 450 500\n");
        assert_eq!(oracle("survived", &[(5, stamp(0, 5, 0, 2))], &later).wrong.len(), 1);
        // Another block's stamp, or garbage: wrong; a never-written block that is not zeros: wrong.
        assert_eq!(oracle("moved", &[(5, stamp(0, 6, 0, 2))], writes).wrong.len(), 1);
        assert_eq!(oracle("stray", &[(5, stamp(0, 5, 0, 2)), (9, vec![1; BLOCK])], writes).wrong.len(), 1);
    }

    #[test]
    fn stamps_differ_by_every_number() {
        let base = stamp(0, 1, 2, 3);
        assert_eq!(base.len(), BLOCK);
        for other in [stamp(1, 1, 2, 3), stamp(0, 2, 2, 3), stamp(0, 1, 3, 3), stamp(0, 1, 2, 4)] {
            assert_ne!(base, other);
        }
        assert_eq!(base, stamp(0, 1, 2, 3));
    }
}
