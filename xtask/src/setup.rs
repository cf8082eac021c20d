//! Host prerequisites, installed idempotently and each with the reason it is needed.
//!
//! Everything the lab needs on a fresh Debian 12 machine (root) comes from here:
//! Debian packages, rustup components, bindgen-cli, a libclang new enough for
//! the kernel's Rust bindings, and bpf-linker built against the nightly
//! toolchain's own LLVM. A second run finds everything in place and installs
//! nothing.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{cache, cmd};

/// A Debian package the lab needs, why, and (for tools a machine may already
/// have from elsewhere) a command whose success makes the package unnecessary.
struct Package {
    name: &'static str,
    why: &'static str,
    unless: Option<&'static [&'static str]>,
}

const fn package(name: &'static str, why: &'static str) -> Package {
    Package { name, why, unless: None }
}

const PACKAGES: &[Package] = &[
    package("qemu-system-x86", "boots the guest with an emulated NVDIMM"),
    package("busybox-static", "the guest's shell and basic tools"),
    package("fio", "the workload run in the guest"),
    package("xfsprogs", "mkfs.xfs and xfs_io in the guest"),
    package("e2fsprogs", "mkfs.ext4 in the guest"),
    package("ndctl", "turns the NVDIMM namespace into fsdax in the guest"),
    package("kmod", "resolves the Debian 6.1 kernel's module dependencies"),
    package("gcc", "compiles the guest kernel's C side"),
    package("make", "drives the guest kernel build"),
    package("g++", "compiles libFuzzer for the fuzz targets (libfuzzer-sys)"),
    package("flex", "kernel build (Kconfig)"),
    package("bison", "kernel build (Kconfig)"),
    package("bc", "kernel build"),
    package("libelf-dev", "kernel build (objtool, BTF)"),
    package("libssl-dev", "kernel build (module signing tools)"),
    package("dwarves", "pahole, which writes the kernel's and modules' BTF"),
    package("xz-utils", "unpacks the kernel source tarball"),
    package("patch", "applies lab/kernel/patches to the lab kernel's source"),
    package("trace-cmd", "records fs_dax events in the guest for the trace import tests"),
    package("prometheus", "scrapes dax-probe serve in the dashboards check"),
    Package {
        name: "python3-pip",
        why: "installs libclang 18 from PyPI for bindgen",
        unless: Some(&["python3", "-m", "pip", "--version"]),
    },
];

/// bindgen-cli version for the kernel's Rust bindings (7.2 needs >= 0.71.1).
pub const BINDGEN_VERSION: &str = "0.73.2";
/// libclang for bindgen: 7.2 needs >= 17.0.1 and Debian 12 has at most 16.
pub const LIBCLANG_VERSION: &str = "18.1.1";
/// bpf-linker, built against the nightly toolchain's LLVM (no binary fits it).
const BPF_LINKER_VERSION: &str = "0.13.0";
/// The toolchain that compiles the kernel's Rust code. Pinned, like the one
/// in rust-toolchain.toml: "stable" moves, and a new rustc rebuilds the kernel.
pub const KERNEL_RUST_TOOLCHAIN: &str = "1.95.0";
/// The toolchain that compiles eBPF programs (`-Z build-std`). Pinned: its
/// LLVM is the one bpf-linker is built against and loads at run time.
pub const EBPF_RUST_TOOLCHAIN: &str = "nightly-2026-05-19";

/// What later steps need to know about the installed tools.
pub struct Tools {
    /// Folder holding `libclang.so` (for bindgen via LIBCLANG_PATH).
    pub libclang_dir: PathBuf,
    /// cargo's bin folder (bindgen, bpf-linker).
    pub cargo_bin: PathBuf,
}

pub fn ensure() -> Result<Tools> {
    debian_packages()?;
    rust_components()?;
    let cargo_bin = cargo_home().join("bin");
    bindgen(&cargo_bin)?;
    let libclang_dir = libclang()?;
    bpf_linker(&cargo_bin)?;
    Ok(Tools { libclang_dir, cargo_bin })
}

fn debian_packages() -> Result<()> {
    let missing: Vec<_> = PACKAGES.iter().filter(|package| !package.present()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    for package in &missing {
        println!("setup: installing Debian package {}: {}", package.name, package.why);
    }
    let names: Vec<_> = missing.iter().map(|package| package.name).collect();
    if !is_root() {
        bail!(
            "setup needs root to install Debian packages: run as root, or `apt-get install {}`",
            names.join(" ")
        );
    }
    cmd::run(Command::new("apt-get").args(["-q", "update"]))?;
    let install = |simulate: bool| {
        let mut apt = Command::new("apt-get");
        apt.env("DEBIAN_FRONTEND", "noninteractive").args(["-q", "-y", "--no-install-recommends"]);
        if simulate {
            apt.arg("--simulate");
        }
        apt.arg("install").args(&names);
        apt
    };
    // apt may remove an installed package to resolve a conflict with one of
    // ours: never silently. Its simulation says which, before anything moves.
    let removed = removals(&cmd::output(&mut install(true))?);
    for package in &removed {
        println!(
            "setup: WARNING: apt-get will REMOVE the installed Debian package {package}: \
             it conflicts with what dax-probe needs ({})",
            names.join(" ")
        );
    }
    cmd::run(&mut install(false))?;
    if !removed.is_empty() {
        println!("setup: removed to install dax-probe's packages: {}", removed.join(" "));
    }
    Ok(())
}

/// The packages an `apt-get --simulate` run would remove (its `Remv NAME
/// [VERSION]` lines).
fn removals(simulation: &str) -> Vec<String> {
    simulation
        .lines()
        .filter_map(|line| line.strip_prefix("Remv "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

impl Package {
    fn present(&self) -> bool {
        let installed = cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Status}", self.name]))
            .is_ok_and(|status| status.ends_with(" installed"));
        installed
            || self.unless.is_some_and(|probe| cmd::output(Command::new(probe[0]).args(&probe[1..])).is_ok())
    }
}

fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// Installs the pinned toolchains if missing and adds `rust-src` where it is
/// missing. Never `rustup toolchain install` an existing toolchain: for a
/// channel name that would update it.
fn rust_components() -> Result<()> {
    let toolchains = cmd::output(Command::new("rustup").args(["toolchain", "list"]))?;
    for (toolchain, why) in [
        (KERNEL_RUST_TOOLCHAIN, "the kernel builds Rust's core library from source"),
        (EBPF_RUST_TOOLCHAIN, "eBPF programs are built with -Z build-std"),
    ] {
        let installed = toolchains
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .any(|name| name.strip_prefix(toolchain).is_some_and(|host| host.starts_with('-')));
        if !installed {
            println!("setup: installing the Rust toolchain {toolchain} with rust-src: {why}");
            cmd::run(
                Command::new("rustup")
                    .args(["toolchain", "install", toolchain, "--profile", "minimal"])
                    .args(["--component", "rust-src"]),
            )?;
            continue;
        }
        let components = cmd::output(Command::new("rustup").args([
            "component",
            "list",
            "--installed",
            "--toolchain",
            toolchain,
        ]))?;
        if !components.lines().any(|line| line.starts_with("rust-src")) {
            println!("setup: adding rust-src to the {toolchain} toolchain: {why}");
            cmd::run(Command::new("rustup").args([
                "component",
                "add",
                "rust-src",
                "--toolchain",
                toolchain,
            ]))?;
        }
    }
    Ok(())
}

fn bindgen(cargo_bin: &Path) -> Result<()> {
    let have = cmd::version_line(&cargo_bin.join("bindgen").to_string_lossy(), "--version");
    if have.as_deref() == Some(&format!("bindgen {BINDGEN_VERSION}")) {
        return Ok(());
    }
    println!("setup: installing bindgen-cli {BINDGEN_VERSION}: generates the kernel's Rust bindings");
    cmd::run(Command::new("cargo").args(["install", "--locked", "bindgen-cli", "--version", BINDGEN_VERSION]))
}

fn libclang() -> Result<PathBuf> {
    let target = cache::dir(&["tools", &format!("libclang-{LIBCLANG_VERSION}")])?;
    let lib_dir = target.join("clang/native");
    if lib_dir.join("libclang.so").exists() {
        return Ok(lib_dir);
    }
    println!("setup: installing libclang {LIBCLANG_VERSION} from PyPI: bindgen needs libclang >= 17, Debian 12 has 16");
    cmd::run(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&target)
            .arg(format!("libclang=={LIBCLANG_VERSION}")),
    )?;
    if !lib_dir.join("libclang.so").exists() {
        bail!("pip installed libclang but {} has no libclang.so", lib_dir.display());
    }
    Ok(lib_dir)
}

/// bpf-linker links against libLLVM; the only LLVM matching rustc's is the
/// nightly toolchain's own shared library, so the linker is built against it
/// and rebuilt whenever that toolchain (and so its LLVM) changes.
fn bpf_linker(cargo_bin: &Path) -> Result<()> {
    let nightly = cmd::output(Command::new("rustc").arg(format!("+{EBPF_RUST_TOOLCHAIN}")).arg("-vV"))?;
    let stamp_dir = cache::dir(&["tools", "bpf-linker"])?;
    let key = cache::Key::new("bpf-linker")
        .add("version", BPF_LINKER_VERSION.as_bytes())
        .add("rustc", nightly.as_bytes())
        .finish();
    if cargo_bin.join("bpf-linker").exists() && cache::is_fresh(&stamp_dir, &key) {
        return Ok(());
    }
    let llvm_major = nightly
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|version| version.split('.').next())
        .context("`rustc +nightly -vV` names no LLVM version")?
        .to_owned();
    let sysroot = cmd::output(
        Command::new("rustc").arg(format!("+{EBPF_RUST_TOOLCHAIN}")).args(["--print", "sysroot"]),
    )?;
    let libllvm = find_libllvm(&Path::new(sysroot.trim()).join("lib"))?;
    let prefix = stamp_dir.join("llvm-prefix");
    fs::create_dir_all(prefix.join("lib"))?;
    let link = prefix.join("lib/libLLVM.so");
    fs::remove_file(&link).ok();
    symlink(&libllvm, &link)?;
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} against {} (LLVM {llvm_major}): links the eBPF programs (about 1 to 2 min)",
        libllvm.display()
    );
    cmd::run(
        Command::new("rustup")
            .args(["run", EBPF_RUST_TOOLCHAIN, "cargo", "install", "--locked", "--force", "bpf-linker"])
            .args(["--version", BPF_LINKER_VERSION, "--no-default-features", "--features"])
            .arg(format!("llvm-{llvm_major}"))
            .env("LLVM_PREFIX", &prefix),
    )?;
    // It must run where aya-build runs it: under the nightly toolchain, whose
    // lib/ holds the exact libLLVM soname it was linked against.
    cmd::output(Command::new("rustup").args(["run", EBPF_RUST_TOOLCHAIN, "bpf-linker", "--version"]))
        .context("bpf-linker was built but does not run under the nightly toolchain")?;
    cache::mark_fresh(&stamp_dir, &key)
}

fn find_libllvm(lib: &Path) -> Result<PathBuf> {
    fs::read_dir(lib)?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("libLLVM")))
        .with_context(|| format!("no libLLVM*.so in {}: is the nightly toolchain complete?", lib.display()))
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| cache::home().join(".cargo"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `apt-get -s install trace-cmd-` on this machine (Debian 12), as apt printed it.
    const SIMULATION: &str = "Reading package lists...
Building dependency tree...
Reading state information...
The following package was automatically installed and is no longer required:
  libtraceevent1-plugin
Use 'apt autoremove' to remove it.
The following packages will be REMOVED:
  trace-cmd
0 upgraded, 0 newly installed, 1 to remove and 132 not upgraded.
Remv trace-cmd [3.1.6-1]
";

    #[test]
    fn a_simulated_removal_is_named() {
        assert_eq!(removals(SIMULATION), ["trace-cmd"]);
        assert!(removals("Inst fio (3.33-3 Debian:12.0/stable [amd64])\nConf fio (3.33-3)\n").is_empty());
    }
}
