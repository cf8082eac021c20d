//! The custom kernel: `make tinyconfig` plus the fragment in
//! `lab/kernel/dax-lab.config`, Linux 7.2 from Debian's linux-source-7.2 with
//! the patches of `lab/kernel/patches` (or the user's own tree), built out of
//! tree in the cache under a key of everything that goes into it (source
//! version, patches, fragment, rustc, bindgen, libclang, gcc, pahole).

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{patches, Flavour, GuestKernel};
use crate::{apt, cache, cmd, project_root, setup};

const SOURCE_PACKAGE: &str = "linux-source-7.2";
const SOURCE_SUITE: &str = "unstable";

fn fragment_path() -> PathBuf {
    project_root().join("lab/kernel/dax-lab.config")
}

pub(super) fn get(tools: &setup::Tools, user_source: Option<&Path>) -> Result<GuestKernel> {
    let patches = patches::all()?;
    let (source, source_id) = match user_source {
        Some(dir) => {
            let (tree, id) = user_tree(dir)?;
            let missing = patches::missing(&tree, &patches);
            if !missing.is_empty() {
                println!(
                    "kernel: WARNING: {} lacks {}; the lab's kernel has it, and the reference module needs it",
                    tree.display(),
                    missing.join(", ")
                );
            }
            (tree, id)
        }
        None => {
            let (pristine, id) = debian_source()?;
            (patches::apply(&pristine, &id, &patches)?, id)
        }
    };
    let fragment = fragment_path();
    let mut key = cache::Key::new("custom-kernel");
    // Contents only, never paths: a clone in another folder (CI's) must find
    // the same build.
    let fragment_text = fs::read(&fragment).with_context(|| format!("cannot read {}", fragment.display()))?;
    key.add("source", source_id.as_bytes()).add("fragment", &fragment_text);
    for patch in &patches {
        key.add(&patch.name, &patch.text);
    }
    for (label, program, flag) in [
        ("rustc", "rustc", "-vV"),
        ("bindgen", &*tools.cargo_bin.join("bindgen").to_string_lossy(), "--version"),
        ("gcc", "gcc", "--version"),
        ("pahole", "pahole", "--version"),
    ] {
        let mut probe = Command::new(program);
        probe.arg(flag).env("RUSTUP_TOOLCHAIN", setup::KERNEL_RUST_TOOLCHAIN);
        key.add(label, cmd::output(&mut probe)?.as_bytes());
    }
    key.add("libclang", setup::LIBCLANG_VERSION.as_bytes());
    let key = key.finish();
    let build = cache::dir(&["kernel", &key])?;
    let image = build.join("arch/x86/boot/bzImage");

    // A user's tree can change under us: let make decide what to rebuild.
    if user_source.is_some() || !cache::is_fresh(&build, &key) || !image.exists() {
        let started = Instant::now();
        configure(tools, &source, &build, &fragment)?;
        make(tools, &source, &build)?;
        let took = started.elapsed();
        println!(
            "kernel: built in {}m{:02}s ({})",
            took.as_secs() / 60,
            took.as_secs() % 60,
            build.display()
        );
        fs::write(build.join("dax-probe-build-seconds"), took.as_secs().to_string())?;
        cache::mark_fresh(&build, &key)?;
    }
    let release =
        cmd::output(kernel_make(tools, &source, &build).args(["-s", "kernelrelease"]))?.trim().to_owned();
    Ok(GuestKernel { flavour: Flavour::Custom, image, release, modules: Vec::new(), build_dir: Some(build) })
}

fn user_tree(dir: &Path) -> Result<(PathBuf, String)> {
    let dir =
        dir.canonicalize().with_context(|| format!("kernel source {} does not exist", dir.display()))?;
    if !dir.join("Kconfig").exists() || !dir.join("rust").is_dir() {
        bail!("{} is not a Linux source tree with Rust support (no Kconfig or rust/)", dir.display());
    }
    println!("kernel: using the source tree {}", dir.display());
    let id = format!("user tree {}", dir.display());
    Ok((dir, id))
}

/// Debian's linux-source-7.2, verified against the archive index and unpacked
/// once. When the index cannot be read (no network, mirror down), the newest
/// source already verified into the cache is used, and that is said.
fn debian_source() -> Result<(PathBuf, String)> {
    let archive = apt::Archive::suite(SOURCE_SUITE).and_then(|archive| {
        let record = archive.record(SOURCE_PACKAGE)?;
        Ok((archive, record))
    });
    let (archive, record) = match archive {
        Ok(found) => found,
        Err(error) => {
            let (tree, id) = cached_source().with_context(|| format!("{error:#}"))?;
            println!("kernel: cannot read the {SOURCE_SUITE} index ({error:#}); using the cached {id}");
            return Ok((tree, id));
        }
    };
    let dir = cache::dir(&["src", &format!("{SOURCE_PACKAGE}_{}", record.version)])?;
    let tree = dir.join(SOURCE_PACKAGE);
    if !cache::is_fresh(&dir, &record.sha256) {
        let deb = archive.download(&record)?;
        let unpacked = dir.join("deb");
        apt::extract(&deb, &unpacked)?;
        if tree.exists() {
            fs::remove_dir_all(&tree)?;
        }
        println!("kernel: unpacking {SOURCE_PACKAGE} {}", record.version);
        let tarball = unpacked.join(format!("usr/src/{SOURCE_PACKAGE}.tar.xz"));
        cmd::run(Command::new("tar").arg("-xJf").arg(&tarball).arg("-C").arg(&dir))?;
        fs::remove_dir_all(&unpacked)?;
        cache::mark_fresh(&dir, &record.sha256)?;
    }
    Ok((tree, source_id(&record.version, &record.sha256)))
}

fn source_id(version: &str, sha256: &str) -> String {
    format!("Debian {SOURCE_PACKAGE} {version} sha256 {sha256}")
}

/// The newest unpacked source in the cache (its stamp holds the .deb's SHA256).
fn cached_source() -> Result<(PathBuf, String)> {
    let mut found: Vec<(std::time::SystemTime, PathBuf, String)> = Vec::new();
    for entry in fs::read_dir(cache::dir(&["src"])?)?.flatten() {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(version) = name.strip_prefix(&format!("{SOURCE_PACKAGE}_")) else { continue };
        let Some(sha256) = cache::stamp(&dir) else { continue };
        let modified = entry.metadata()?.modified()?;
        found.push((modified, dir.join(SOURCE_PACKAGE), source_id(version, &sha256)));
    }
    found.sort();
    let (_, tree, id) = found.pop().context("and no linux-source-7.2 is in the cache yet")?;
    Ok((tree, id))
}

/// `make -C source O=build` with the kernel's Rust toolchain.
fn kernel_make(tools: &setup::Tools, source: &Path, build: &Path) -> Command {
    let mut make = rust_make(tools);
    make.arg("-C").arg(source).arg(format!("O={}", build.display()));
    make
}

/// `make` with the toolchain the kernel's Rust support needs (bindgen on PATH,
/// libclang 18, the pinned rustc) and none of cargo's own variables, which
/// would leak into Kbuild's rustc calls.
fn rust_make(tools: &setup::Tools) -> Command {
    let mut make = Command::new("make");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO")
            || name.starts_with("RUSTC")
            || name.starts_with("RUSTFLAGS")
            || name == "RUSTUP_TOOLCHAIN"
        {
            make.env_remove(&*name);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(tools.cargo_bin.clone()).chain(std::env::split_paths(&path)))
            .expect("PATH entries hold no separator");
    make.env("PATH", path)
        .env("LIBCLANG_PATH", &tools.libclang_dir)
        .env("RUSTUP_TOOLCHAIN", setup::KERNEL_RUST_TOOLCHAIN);
    make
}

impl GuestKernel {
    /// Builds the out-of-tree module `name` from `source` (a folder with a
    /// Kbuild file) against this kernel, in a copy under target/ so the
    /// repository stays clean.
    pub fn build_module(&self, tools: &setup::Tools, name: &str, source: &Path) -> Result<PathBuf> {
        let build = self.build_dir.as_deref().context("only the custom kernel can build our modules")?;
        let work = project_root().join("target/lab/modules").join(name);
        // A fresh copy: a file removed from the source must not linger.
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        fs::create_dir_all(&work)?;
        for entry in fs::read_dir(source)? {
            let path = entry?.path();
            if path.is_file() {
                fs::copy(&path, work.join(path.file_name().unwrap_or_default()))?;
            }
        }
        cmd::output(
            rust_make(tools).arg("-C").arg(build).arg(format!("M={}", work.display())).arg("modules"),
        )
        .with_context(|| format!("cannot build the module {name}"))?;
        Ok(work.join(format!("{name}.ko")))
    }
}

fn configure(tools: &setup::Tools, source: &Path, build: &Path, fragment: &Path) -> Result<()> {
    println!("kernel: configuring tinyconfig + {}", fragment.display());
    cmd::output(kernel_make(tools, source, build).arg("tinyconfig"))?;
    cmd::output(
        Command::new(source.join("scripts/kconfig/merge_config.sh"))
            .current_dir(source)
            .args(["-m", "-O"])
            .arg(build)
            .arg(build.join(".config"))
            .arg(fragment),
    )?;
    cmd::output(kernel_make(tools, source, build).arg("olddefconfig"))?;
    let wanted = fs::read_to_string(fragment)?;
    let got = fs::read_to_string(build.join(".config"))?;
    let missing = options_not_set(&wanted, &got);
    if missing.is_empty() {
        return Ok(());
    }
    let mut hint = String::new();
    if missing.iter().any(|option| option == "CONFIG_RUST") {
        let why = cmd::output(kernel_make(tools, source, build).arg("rustavailable")).err();
        hint = format!(" (make rustavailable: {})", why.map(|e| e.to_string()).unwrap_or_default());
    }
    bail!(
        "kernel config: {} did not stick after olddefconfig: a dependency is missing{hint}",
        missing.join(", ")
    )
}

/// The `CONFIG_X=y` lines of `fragment` that are not `=y` in `config`.
fn options_not_set(fragment: &str, config: &str) -> Vec<String> {
    fragment
        .lines()
        .filter_map(|line| line.trim().strip_suffix("=y"))
        .filter(|option| option.starts_with("CONFIG_"))
        .filter(|option| !config.lines().any(|line| line.strip_prefix(option) == Some("=y")))
        .map(str::to_owned)
        .collect()
}

fn make(tools: &setup::Tools, source: &Path, build: &Path) -> Result<()> {
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let log_path = build.join("build.log");
    println!(
        "kernel: building bzImage and modules with -j{jobs} (cold: about 20 min on 2 cores); log: {}",
        log_path.display()
    );
    let mut log = fs::File::create(&log_path)?;
    let mut child = kernel_make(tools, source, build)
        .arg(format!("-j{jobs}"))
        .args(["bzImage", "modules"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start make")?;
    // stderr joins the log through a thread; stdout is read here for progress.
    let stderr = child.stderr.take().expect("piped");
    let mut err_log = log.try_clone()?;
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(err_log, "{line}");
        }
    });
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut compiled = 0usize;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines().map_while(Result::ok) {
        writeln!(log, "{line}")?;
        if line.starts_with("  CC") || line.starts_with("  RUSTC") {
            compiled += 1;
        }
        if last_report.elapsed() > Duration::from_secs(60) {
            println!("kernel: {compiled} objects compiled after {} min", started.elapsed().as_secs() / 60);
            last_report = Instant::now();
        }
    }
    let status = child.wait()?;
    err_thread.join().ok();
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<_> = text.lines().rev().take(30).collect();
        for line in tail.iter().rev() {
            eprintln!("  {line}");
        }
        bail!("the kernel build failed ({status}); full log: {}", log_path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_options_that_did_not_stick() {
        let fragment = "# comment\nCONFIG_RUST=y\nCONFIG_XFS_FS=y\nCONFIG_FS_DAX=y\n";
        let config = "CONFIG_XFS_FS=y\n# CONFIG_RUST is not set\nCONFIG_FS_DAX_PMD=y\n";
        assert_eq!(options_not_set(fragment, config), ["CONFIG_RUST", "CONFIG_FS_DAX"]);
    }

    #[test]
    fn the_lab_fragment_asks_for_what_the_issue_names() {
        let fragment = fs::read_to_string(fragment_path()).unwrap();
        for option in [
            "CONFIG_RUST",
            "CONFIG_FS_DAX_PMD",
            "CONFIG_ACPI_NFIT",
            "CONFIG_ZONE_DEVICE",
            "CONFIG_DEBUG_INFO_BTF_MODULES",
        ] {
            assert!(fragment.contains(&format!("{option}=y")), "{option} missing from the fragment");
        }
    }
}
