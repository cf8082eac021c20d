//! The guest image: an initramfs holding busybox, fio, mkfs.xfs, mkfs.ext4,
//! xfs_io and ndctl (with the shared libraries they load), the lab's init, scenarios and
//! fio jobs, and the kernel modules the guest loads.
//!
//! The archive is cached under a key over every byte that goes into it, so an
//! edited scenario or an upgraded fio makes a new image and nothing else does.

use std::{
    collections::BTreeMap,
    fs,
    io::BufWriter,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::{cache, cmd, cpio, kernel::GuestKernel, project_root, setup};

/// Programs the scenarios run, copied from the host with their libraries.
const HOST_PROGRAMS: &[&str] = &["fio", "mkfs.xfs", "mkfs.ext4", "xfs_io", "ndctl", "trace-cmd"];
/// Out-of-tree Rust modules built for the custom kernel (`lab/modules/NAME`).
/// Our kernel modules, built for the custom kernel: (name, source folder).
const LAB_MODULES: &[(&str, &str)] =
    &[("lab_selftest", "lab/modules/lab_selftest"), ("daxref", "reference-module")];

enum Node {
    Dir,
    File { data: Vec<u8>, executable: bool },
    Symlink(String),
    CharDevice(u32, u32),
}

/// Guest path -> node; sorted, so parents are written before their children.
#[derive(Default)]
struct Tree(BTreeMap<String, Node>);

impl Tree {
    fn insert(&mut self, path: &str, node: Node) {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|dir| *dir != Path::new("/")) {
            self.0.entry(dir.to_string_lossy().into_owned()).or_insert(Node::Dir);
            parent = dir.parent();
        }
        self.0.insert(path.to_owned(), node);
    }

    fn file(&mut self, path: &str, data: Vec<u8>, executable: bool) {
        self.insert(path, Node::File { data, executable });
    }

    fn host_file(&mut self, guest: &str, host: &Path, executable: bool) -> Result<()> {
        let data = fs::read(host).with_context(|| format!("cannot read {}", host.display()))?;
        self.file(guest, data, executable);
        Ok(())
    }

    /// Copies every file of a repository folder to `guest_dir`.
    fn repo_folder(&mut self, repo_dir: &str, guest_dir: &str, executable: bool) -> Result<()> {
        for entry in fs::read_dir(project_root().join(repo_dir))? {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            self.host_file(&format!("{guest_dir}/{name}"), &path, executable)?;
        }
        Ok(())
    }

    /// A dynamically linked host program, at its host path, with its libraries.
    fn host_program(&mut self, name: &str) -> Result<()> {
        let path = which(name)?;
        self.host_program_at(&path.to_string_lossy(), &path)
    }

    /// The program at `host` as `guest`, and every library `ldd` says it loads.
    fn host_program_at(&mut self, guest: &str, host: &Path) -> Result<()> {
        self.host_file(guest, host, true)?;
        for library in cmd::output(Command::new("ldd").arg(host))?.lines().filter_map(ldd_path) {
            self.host_file(library, Path::new(library), true)?;
        }
        Ok(())
    }

    fn key(&self) -> String {
        let mut key = cache::Key::new("initramfs");
        for (path, node) in &self.0 {
            match node {
                Node::Dir => key.add(path, b"dir"),
                Node::File { data, executable } => key.add(path, data).add("x", &[*executable as u8]),
                Node::Symlink(target) => key.add(path, target.as_bytes()),
                Node::CharDevice(major, minor) => key.add(path, format!("{major}:{minor}").as_bytes()),
            };
        }
        key.finish()
    }

    fn write(&self, file: &Path) -> Result<()> {
        let partial = file.with_extension("partial");
        let mut archive = cpio::Writer::new(BufWriter::new(fs::File::create(&partial)?));
        for (path, node) in &self.0 {
            match node {
                Node::Dir => archive.dir(path, 0o755)?,
                Node::File { data, executable } => {
                    archive.file(path, if *executable { 0o755 } else { 0o644 }, data)?
                }
                Node::Symlink(target) => archive.symlink(path, target)?,
                Node::CharDevice(major, minor) => archive.char_device(path, 0o600, *major, *minor)?,
            }
        }
        archive.finish()?.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&partial, file)?;
        Ok(())
    }
}

/// Builds (or finds in the cache) the initramfs for `kernel`.
pub fn build(kernel: &GuestKernel, tools: &setup::Tools) -> Result<PathBuf> {
    let mut tree = Tree::default();
    for dir in ["/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/mnt", "/outbox"] {
        tree.insert(dir, Node::Dir);
    }
    // The kernel opens /dev/console before init mounts devtmpfs.
    tree.insert("/dev/console", Node::CharDevice(5, 1));

    let busybox = which("busybox")?;
    tree.host_file("/bin/busybox", &busybox, true)?;
    for applet in cmd::output(Command::new(&busybox).arg("--list"))?.lines() {
        if applet != "busybox" {
            tree.insert(&format!("/bin/{applet}"), Node::Symlink("busybox".into()));
        }
    }
    for program in HOST_PROGRAMS {
        tree.host_program(program)?;
    }
    for (name, binary) in build_guest_programs()? {
        tree.host_program_at(&format!("/usr/bin/{name}"), &binary)?;
    }

    tree.host_file("/init", &project_root().join("lab/guest/init"), true)?;
    tree.host_file("/lab/lib.sh", &project_root().join("lab/guest/lib.sh"), false)?;
    tree.repo_folder("lab/scenarios", "/lab/scenarios", false)?;
    tree.repo_folder("lab/benches", "/lab/benches", false)?;
    tree.repo_folder("lab/fio", "/lab/fio", false)?;

    let mut load_order = String::new();
    for module in &kernel.modules {
        let guest = guest_module_path(module);
        tree.file(&guest, decompressed(module)?, false);
        load_order.push_str(&guest);
        load_order.push('\n');
    }
    tree.file("/lib/modules/load-order", load_order.into_bytes(), false);
    if kernel.build_dir.is_some() {
        for (name, source) in LAB_MODULES {
            let module = kernel.build_module(tools, name, &project_root().join(source))?;
            tree.host_file(&format!("/lab/modules/{name}.ko"), &module, false)?;
        }
    }

    let dir = cache::dir(&["images"])?;
    let file = dir.join(format!("{}-{}.cpio", kernel.flavour.name(), tree.key()));
    if !file.exists() {
        tree.write(&file)?;
        println!("image: wrote {} ({} MB)", file.display(), fs::metadata(&file)?.len() / 1_000_000);
    }
    Ok(file)
}

/// Our programs in the guest: dax-probe (with the eBPF programs) and the
/// lab's workloads; (package, binary).
const GUEST_PROGRAMS: [(&str, &str); 3] =
    [("dax-probe", "dax-probe"), ("dax-lab-fault", "dax-lab-fault"), ("dax-lab-fault", "dax-lab-soak")];

/// Builds the guest programs; returns (binary name, host path) pairs.
fn build_guest_programs() -> Result<Vec<(&'static str, PathBuf)>> {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--release", "--quiet"]).current_dir(project_root());
    for (package, _) in GUEST_PROGRAMS {
        cargo.args(["--package", package]);
    }
    cmd::run(&mut cargo)?;
    Ok(GUEST_PROGRAMS
        .map(|(_, binary)| (binary, project_root().join("target/release").join(binary)))
        .to_vec())
}

/// Where a module of an unpacked Debian package sits in the guest.
fn guest_module_path(host: &Path) -> String {
    let text = host.to_string_lossy();
    let at = text.find("/lib/modules/").unwrap_or(0);
    let path = &text[at..];
    path.strip_suffix(".xz").or_else(|| path.strip_suffix(".zst")).unwrap_or(path).to_owned()
}

/// A module's bytes, uncompressed (busybox insmod takes plain .ko files).
fn decompressed(module: &Path) -> Result<Vec<u8>> {
    let tool = match module.extension().and_then(|ext| ext.to_str()) {
        Some("xz") => "xz",
        Some("zst") => "zstd",
        _ => return fs::read(module).with_context(|| format!("cannot read {}", module.display())),
    };
    let out = Command::new(tool).arg("-dc").arg(module).output()?;
    anyhow::ensure!(out.status.success(), "{tool} cannot decompress {}", module.display());
    Ok(out.stdout)
}

fn which(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{program} is not installed: run `cargo xtask setup`"))
}

/// The library path in one line of `ldd` output, if it names one.
fn ldd_path(line: &str) -> Option<&str> {
    let line = line.trim();
    let path = match line.split_once("=>") {
        Some((_, right)) => right.trim(),
        None => line,
    };
    let path = path.split_whitespace().next()?;
    path.starts_with('/').then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_library_paths_from_ldd() {
        assert_eq!(
            ldd_path("\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f)"),
            Some("/lib/x86_64-linux-gnu/libz.so.1")
        );
        assert_eq!(ldd_path("\t/lib64/ld-linux-x86-64.so.2 (0x00007f)"), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(ldd_path("\tlinux-vdso.so.1 (0x00007ffd)"), None);
    }

    #[test]
    fn places_debian_modules_uncompressed() {
        let host = Path::new("/cache/debian-6.1/x/lib/modules/6.1.0-56-amd64/kernel/fs/xfs/xfs.ko.xz");
        assert_eq!(guest_module_path(host), "/lib/modules/6.1.0-56-amd64/kernel/fs/xfs/xfs.ko");
    }

    #[test]
    fn a_tree_holds_the_parents_of_its_files() {
        let mut tree = Tree::default();
        tree.file("/a/b/c", b"x".to_vec(), false);
        assert!(matches!(tree.0.get("/a"), Some(Node::Dir)));
        assert!(matches!(tree.0.get("/a/b"), Some(Node::Dir)));
        let before = tree.key();
        tree.file("/a/b/c", b"y".to_vec(), false);
        assert_ne!(before, tree.key());
    }
}
