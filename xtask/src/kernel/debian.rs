//! Debian's stock kernels: no build; the package is fetched through the
//! archive's index, verified and unpacked, and the modules the lab needs
//! (their nvdimm and xfs parts are modules) are listed in load order.

use std::{path::PathBuf, process::Command};

use anyhow::Result;

use super::{Flavour, GuestKernel};
use crate::{apt, cache, cmd};

/// The modules the lab needs from the Debian kernel (their dependencies follow).
/// xfs asks the crypto API for crc32c at mount time, so its driver is listed too.
const DEBIAN_MODULES: &[&str] = &["nfit", "nd_pmem", "crc32c_generic", "xfs"];

/// Bookworm's stock 6.1 (`linux-image-6.1.0-*-amd64`).
pub(super) fn bookworm() -> Result<GuestKernel> {
    let archive = apt::Archive::system();
    let package = match archive.dependency("linux-image-amd64", "linux-image-6.1") {
        Ok(package) => package,
        Err(_) => {
            // A fresh machine may have no package lists yet.
            cmd::run(Command::new("apt-get").args(["-q", "update"]))?;
            archive.dependency("linux-image-amd64", "linux-image-6.1")?
        }
    };
    let record = archive.record(&package)?;
    let root = cache::dir(&["debian-6.1", &format!("{package}_{}", record.version)])?;
    let release = package.trim_start_matches("linux-image-").to_owned();
    if !cache::is_fresh(&root, &record.sha256) {
        let deb = archive.download(&record)?;
        apt::extract(&deb, &root)?;
        cmd::output(Command::new("depmod").arg("-b").arg(&root).arg(&release))?;
        cache::mark_fresh(&root, &record.sha256)?;
    }
    let mut modules = Vec::new();
    for name in DEBIAN_MODULES {
        let plan = cmd::output(
            // -C /dev/null: the host's modprobe.d (ndctl installs an `install
            // libnvdimm` hook there) must not shape the guest's plan.
            Command::new("modprobe").arg("-d").arg(&root).args([
                "-C",
                "/dev/null",
                "-S",
                &release,
                "--show-depends",
                name,
            ]),
        )?;
        for module in plan.lines().filter_map(|line| line.strip_prefix("insmod ")) {
            let module = PathBuf::from(module.trim());
            if !modules.contains(&module) {
                modules.push(module);
            }
        }
    }
    Ok(GuestKernel {
        flavour: Flavour::Debian61,
        image: root.join(format!("boot/vmlinuz-{release}")),
        release,
        modules,
        build_dir: None,
    })
}
