//! The lab's own changes to its 7.2 kernel: the `*.patch` files of
//! `lab/kernel/patches`, applied in name order at build time to a copy of
//! the unpacked source (hard links, but for the files a patch touches), so
//! that the pristine tree in the cache stays as Debian shipped it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::{cache, cmd, project_root};

/// One patch: its file name and its text.
pub struct Patch {
    pub name: String,
    pub text: Vec<u8>,
}

impl Patch {
    /// The files it changes (its `+++ b/...` lines).
    fn targets(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.text)
            .lines()
            .filter_map(|line| line.strip_prefix("+++ b/"))
            .map(|path| path.split('\t').next().unwrap_or(path).trim().to_owned())
            .collect()
    }

    fn path(&self) -> PathBuf {
        dir().join(&self.name)
    }
}

fn dir() -> PathBuf {
    project_root().join("lab/kernel/patches")
}

/// Every patch, in the order it is applied.
pub fn all() -> Result<Vec<Patch>> {
    let mut patches = Vec::new();
    for entry in fs::read_dir(dir()).with_context(|| format!("cannot list {}", dir().display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "patch") {
            let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
            let text = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            patches.push(Patch { name, text });
        }
    }
    patches.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(patches)
}

/// `pristine` with every patch applied, in the cache under a key of the
/// source's identity and the patches' contents.
pub fn apply(pristine: &Path, source_id: &str, patches: &[Patch]) -> Result<PathBuf> {
    let mut key = cache::Key::new("patched-source");
    key.add("source", source_id.as_bytes());
    for patch in patches {
        key.add(&patch.name, &patch.text);
    }
    let key = key.finish();
    let dir = cache::dir(&["src-patched", &key])?;
    let tree = dir.join("linux");
    if cache::is_fresh(&dir, &key) && tree.exists() {
        return Ok(tree);
    }
    if tree.exists() {
        fs::remove_dir_all(&tree)?;
    }
    println!("kernel: applying {} patch(es) of lab/kernel/patches to a copy of the source", patches.len());
    cmd::run(Command::new("cp").arg("-al").arg(pristine).arg(&tree))?;
    for patch in patches {
        // A hard link would let the patch write through to the pristine tree.
        for target in patch.targets() {
            let file = tree.join(&target);
            if file.exists() {
                let text = fs::read(&file)?;
                fs::remove_file(&file)?;
                fs::write(&file, text)?;
            }
        }
        cmd::output(&mut patch_command(&tree, patch, false))
            .with_context(|| format!("{} does not apply to {source_id}", patch.name))?;
    }
    cache::mark_fresh(&dir, &key)?;
    Ok(tree)
}

/// The patches a user's own tree lacks (it is never changed by us).
pub fn missing(tree: &Path, patches: &[Patch]) -> Vec<String> {
    patches
        .iter()
        .filter(|patch| cmd::output(&mut patch_command(tree, patch, true)).is_err())
        .map(|patch| patch.path().display().to_string())
        .collect()
}

/// `patch -p1` of `patch` in `tree`; with `reverse_check`, only whether it
/// could be reversed, i.e. is already applied.
fn patch_command(tree: &Path, patch: &Patch, reverse_check: bool) -> Command {
    let mut command = Command::new("patch");
    command.current_dir(tree).args(["-p1", "--batch", "--no-backup-if-mismatch", "-i"]).arg(patch.path());
    if reverse_check {
        command.args(["--reverse", "--dry-run", "--silent"]);
    } else {
        command.arg("--forward");
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patch_names_the_files_it_changes() {
        let patches = all().unwrap();
        assert!(!patches.is_empty(), "lab/kernel/patches holds no patch");
        for patch in &patches {
            let targets = patch.targets();
            assert!(!targets.is_empty(), "{} changes no file", patch.name);
            assert!(targets.iter().all(|target| !target.contains('\t') && !target.is_empty()));
        }
    }
}
