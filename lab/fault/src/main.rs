//! dax-lab-fault: maps a file the way a fallback scenario needs and touches it.
//!
//! The mapping is placed with MAP_FIXED at `--shift` bytes past a 2 MiB
//! aligned address, so a scenario chooses the VMA start, its end (`--length`)
//! and the file offset (`--offset`) exactly; `--private` maps it MAP_PRIVATE.
//! `--touch` lists byte offsets into the mapping, each `r` (read) or `w`
//! (write): `--touch w:0x100000,r:0`. `--threads N` runs the touches in N
//! threads at once, `--rounds` times each, unmapping and mapping the file
//! again between rounds, so that every round faults again from empty page
//! tables (MADV_DONTNEED would keep the PTE tables, and a 2 MiB fault only
//! happens where there is none). `--punch` adds a thread that punches the
//! touched pages out of /dev/daxref (its DAXREF_PUNCH ioctl) during every
//! round, so that entry deletes race with the faults. `--msync` writes
//! ranges of the mapping back after every round's touches.

use std::{fs::OpenOptions, os::fd::AsRawFd, path::PathBuf, ptr};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;

const PMD_SIZE: usize = 2 << 20;

#[derive(Parser)]
struct Args {
    file: PathBuf,
    /// Bytes of the file to map.
    #[arg(long, value_parser = number)]
    length: usize,
    /// File offset of the mapping (page aligned).
    #[arg(long, default_value = "0", value_parser = number)]
    offset: usize,
    /// Distance of the VMA start past a 2 MiB boundary (page aligned).
    #[arg(long, default_value = "0", value_parser = number)]
    shift: usize,
    #[arg(long)]
    private: bool,
    /// Accesses: comma-separated `r:OFFSET` or `w:OFFSET` into the mapping.
    #[arg(long, value_delimiter = ',')]
    touch: Vec<String>,
    #[arg(long, default_value = "1")]
    threads: usize,
    #[arg(long, default_value = "1")]
    rounds: usize,
    /// Punch the touched pages out of /dev/daxref during every round.
    #[arg(long)]
    punch: bool,
    /// After every round's touches, msync(MS_SYNC) these ranges of the
    /// mapping: comma-separated `OFFSET:LENGTH` (page aligned), e.g.
    /// `0x1000:4m` to write back from 4 KiB into the first 2 MiB.
    #[arg(long, value_delimiter = ',')]
    msync: Vec<String>,
    /// At the end, close the file and keep only the mapping for this many
    /// milliseconds (what holds a module whose device is mapped).
    #[arg(long, value_name = "MS")]
    hold_ms: Option<u64>,
}

/// `_IO('D', 1)`: reference-module/daxref.rs's DAXREF_PUNCH.
const DAXREF_PUNCH: libc::c_ulong = ((b'D' as libc::c_ulong) << 8) | 1;

/// A byte count: decimal, `0x` hex, or with a `k`/`m` (KiB/MiB) suffix.
fn number(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.as_bytes().last() {
        Some(b'k') => (&text[..text.len() - 1], 1 << 10),
        Some(b'm') => (&text[..text.len() - 1], 1 << 20),
        _ => (text, 1),
    };
    let parsed = match digits.strip_prefix("0x") {
        Some(hex) => usize::from_str_radix(hex, 16),
        None => digits.parse(),
    };
    parsed.map(|n| n * unit).map_err(|e| format!("{text}: {e}"))
}

#[derive(Clone, Copy)]
struct Touch {
    write: bool,
    offset: usize,
}

fn touches(specs: &[String], length: usize) -> Result<Vec<Touch>> {
    specs
        .iter()
        .map(|spec| {
            let (mode, offset) = spec
                .split_once(':')
                .with_context(|| format!("bad touch {spec:?}: want r:OFFSET or w:OFFSET"))?;
            let offset = number(offset).map_err(anyhow::Error::msg)?;
            ensure!(offset < length, "touch {spec} is outside the {length}-byte mapping");
            match mode {
                "r" => Ok(Touch { write: false, offset }),
                "w" => Ok(Touch { write: true, offset }),
                _ => bail!("bad touch {spec:?}: want r:OFFSET or w:OFFSET"),
            }
        })
        .collect()
}

/// The `--msync` ranges as (offset, length), each inside the mapping.
fn ranges(specs: &[String], length: usize) -> Result<Vec<(usize, usize)>> {
    specs
        .iter()
        .map(|spec| {
            let (offset, bytes) =
                spec.split_once(':').with_context(|| format!("bad range {spec:?}: want OFFSET:LENGTH"))?;
            let (offset, bytes) =
                (number(offset).map_err(anyhow::Error::msg)?, number(bytes).map_err(anyhow::Error::msg)?);
            ensure!(offset % 4096 == 0, "range {spec}: the offset is not page aligned");
            ensure!(offset + bytes <= length, "range {spec} is outside the {length}-byte mapping");
            Ok((offset, bytes))
        })
        .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let touches = touches(&args.touch, args.length)?;
    let msyncs = ranges(&args.msync, args.length)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    // Reserve room, then place the file mapping at a 2 MiB boundary + shift.
    let room = args.length + args.shift + 2 * PMD_SIZE;
    // SAFETY: a fresh anonymous reservation; nothing else uses that range.
    let reserved = unsafe {
        libc::mmap(ptr::null_mut(), room, libc::PROT_NONE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    ensure!(
        reserved != libc::MAP_FAILED,
        "cannot reserve address space: {}",
        std::io::Error::last_os_error()
    );
    let at = (reserved as usize).next_multiple_of(PMD_SIZE) + args.shift;
    let share = if args.private { libc::MAP_PRIVATE } else { libc::MAP_SHARED };
    let map = || -> Result<usize> {
        // SAFETY: MAP_FIXED inside our own reservation (first over its
        // PROT_NONE pages, then over the hole our munmap left), so no other
        // mapping is replaced.
        let base = unsafe {
            libc::mmap(
                at as *mut _,
                args.length,
                libc::PROT_READ | libc::PROT_WRITE,
                share | libc::MAP_FIXED,
                file.as_raw_fd(),
                args.offset as i64,
            )
        };
        ensure!(
            base != libc::MAP_FAILED,
            "cannot map {}: {}",
            args.file.display(),
            std::io::Error::last_os_error()
        );
        Ok(base as usize)
    };
    let base = map()?;
    for round in 0..args.rounds {
        if round > 0 {
            // SAFETY: our own mapping, which nothing uses between rounds.
            unsafe { libc::munmap(base as *mut _, args.length) };
            map()?;
        }
        std::thread::scope(|scope| {
            if args.punch {
                let (touches, fd, offset) = (&touches, file.as_raw_fd(), args.offset);
                scope.spawn(move || {
                    for touch in touches {
                        // SAFETY: an ioctl on our open file with a plain integer argument.
                        unsafe { libc::ioctl(fd, DAXREF_PUNCH, (offset + touch.offset) >> 12) };
                    }
                });
            }
            for thread in 0..args.threads {
                let touches = &touches;
                scope.spawn(move || {
                    for touch in touches.iter().cycle().skip(thread).take(touches.len()) {
                        let p = (base + touch.offset) as *mut u8;
                        // SAFETY: p is inside our mapping of `length` bytes (checked above).
                        unsafe {
                            // A plain store: a read first would fault the page in for reading.
                            if touch.write {
                                ptr::write_volatile(p, thread as u8);
                            } else {
                                ptr::read_volatile(p);
                            }
                        }
                    }
                });
            }
        });
        for &(offset, bytes) in &msyncs {
            // SAFETY: a range of our own mapping (checked by `ranges`).
            let synced = unsafe { libc::msync((base + offset) as *mut _, bytes, libc::MS_SYNC) };
            ensure!(synced == 0, "msync {offset:#x}+{bytes:#x}: {}", std::io::Error::last_os_error());
        }
    }
    println!("dax-lab-fault: mapped {} bytes of {} at {base:#x} (offset {:#x}), {} touches x {} threads x {} rounds", args.length, args.file.display(), args.offset, touches.len(), args.threads, args.rounds);
    if let Some(ms) = args.hold_ms {
        drop(file);
        println!("dax-lab-fault: file closed, holding the mapping for {ms} ms");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    Ok(())
}
