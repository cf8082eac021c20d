//! Debian's stock kernels, as distributions build them: no build here. The
//! packages are fetched through the archive's signed index (bookworm from
//! the machine's own apt sources, trixie and unstable through a private
//! index, see `apt.rs`), verified, unpacked into the cache under a key of
//! their checksums, and the modules the lab needs (their nvdimm, xfs and
//! ext4 parts are modules) are listed in load order.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use super::{Flavour, GuestKernel};
use crate::{apt, cache, cmd};

/// Where one stock kernel comes from.
pub(super) struct Stock {
    pub flavour: Flavour,
    /// The archive suite; `None`: the machine's own (bookworm).
    pub suite: Option<&'static str>,
    /// How `linux-image-amd64` names the image package: its name's start.
    pub image: &'static str,
    /// Packages the image package depends on that hold its kernel or modules
    /// (unstable splits them off), by their names' start.
    pub parts: &'static [&'static str],
    /// The modules the lab loads (their dependencies follow).
    pub modules: &'static [&'static str],
}

/// Bookworm's 6.1: xfs asks the crypto API for crc32c at mount time, so its
/// driver is listed too.
pub(super) const BOOKWORM: Stock = Stock {
    flavour: Flavour::Debian61,
    suite: None,
    image: "linux-image-6.1",
    parts: &[],
    modules: &["nfit", "nd_pmem", "crc32c_generic", "xfs", "ext4"],
};

/// Trixie's 6.12.
pub(super) const TRIXIE: Stock = Stock {
    flavour: Flavour::Debian612,
    suite: Some("trixie"),
    image: "linux-image-6.12",
    parts: &[],
    modules: &["nfit", "nd_pmem", "xfs", "ext4"],
};

/// Unstable's 7.2: the same release as the lab's own build, compiled the way
/// Debian compiles it. Its image package only depends on the kernel and its
/// modules.
pub(super) const UNSTABLE: Stock = Stock {
    flavour: Flavour::Debian72,
    suite: Some("unstable"),
    image: "linux-image-7.2",
    parts: &["linux-binary-", "linux-modules-"],
    modules: &["nfit", "nd_pmem", "xfs", "ext4"],
};

pub(super) fn get(stock: &Stock) -> Result<GuestKernel> {
    let archive = match stock.suite {
        Some(suite) => apt::Archive::suite(suite)?,
        None => apt::Archive::system(),
    };
    let package = match archive.dependency("linux-image-amd64", stock.image) {
        Ok(package) => package,
        Err(_) if stock.suite.is_none() => {
            // A fresh machine may have no package lists yet.
            cmd::run(Command::new("apt-get").args(["-q", "update"]))?;
            archive.dependency("linux-image-amd64", stock.image)?
        }
        Err(error) => return Err(error),
    };
    let mut records = vec![archive.record(&package)?];
    for part in stock.parts {
        records.push(archive.record(&archive.dependency(&package, part)?)?);
    }
    let release = package.trim_start_matches("linux-image-").to_owned();
    let key: Vec<&str> = records.iter().map(|record| record.sha256.as_str()).collect();
    let key = key.join(" ");
    let root = cache::dir(&[stock.flavour.name(), &format!("{package}_{}", records[0].version)])?;
    if !cache::is_fresh(&root, &key) {
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        for record in &records {
            apt::unpack(&archive.download(record)?, &root)?;
        }
        cmd::output(Command::new("depmod").arg("-b").arg(&root).arg(&release))?;
        cache::mark_fresh(&root, &key)?;
    }
    Ok(GuestKernel {
        flavour: stock.flavour,
        image: image(&root, &release)?,
        modules: load_order(&root, &release, stock.modules)?,
        release,
        build_dir: None,
    })
}

/// The kernel image: `/boot/vmlinuz-R` (bookworm, trixie) or
/// `/usr/lib/modules/R/vmlinuz` (unstable's split packages).
fn image(root: &Path, release: &str) -> Result<PathBuf> {
    [format!("boot/vmlinuz-{release}"), format!("usr/lib/modules/{release}/vmlinuz")]
        .into_iter()
        .map(|path| root.join(path))
        .find(|path| path.exists())
        .with_context(|| format!("no vmlinuz of {release} in {}", root.display()))
}

/// The modules to load for `wanted`, dependencies first, each once.
fn load_order(root: &Path, release: &str, wanted: &[&str]) -> Result<Vec<PathBuf>> {
    let mut modules = Vec::new();
    for name in wanted {
        let plan = cmd::output(
            // -C /dev/null: the host's modprobe.d (ndctl installs an `install
            // libnvdimm` hook there) must not shape the guest's plan.
            Command::new("modprobe").arg("-d").arg(root).args([
                "-C",
                "/dev/null",
                "-S",
                release,
                "--show-depends",
                name,
            ]),
        )?;
        for module in plan.lines().filter_map(|line| line.strip_prefix("insmod ")) {
            let module = PathBuf::from(module.split_whitespace().next().unwrap_or(""));
            if !modules.contains(&module) {
                modules.push(module);
            }
        }
    }
    Ok(modules)
}
