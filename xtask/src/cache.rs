//! Where expensive artifacts live: outside the repository, keyed by their inputs.
//!
//! The cache root is `$DAX_PROBE_CACHE`, else `$XDG_CACHE_HOME/dax-probe`, else
//! `~/.cache/dax-probe`. Each artifact sits in a folder named after a [`Key`]
//! over everything that went into it, and is only trusted once its stamp file
//! (written last) holds the same key: an interrupted build is rebuilt.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("DAX_PROBE_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache"));
    base.join("dax-probe")
}

pub fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"))
}

/// A folder under the cache root, created if missing.
pub fn dir(parts: &[&str]) -> Result<PathBuf> {
    let mut dir = root();
    dir.extend(parts);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create cache folder {}", dir.display()))?;
    Ok(dir)
}

/// A digest over labelled inputs: change any input and the key changes.
#[derive(Clone, Default)]
pub struct Key(Sha256);

impl Key {
    pub fn new(what: &str) -> Self {
        let mut key = Key::default();
        key.add(what, b"");
        key
    }

    pub fn add(&mut self, label: &str, value: &[u8]) -> &mut Self {
        // Length-prefix both parts so that ("ab", "c") and ("a", "bc") differ.
        for part in [label.as_bytes(), value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    /// Sixteen hex digits: plenty to tell builds apart, short enough for a folder name.
    pub fn finish(&self) -> String {
        hex(&self.0.clone().finalize()[..8])
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

const STAMP: &str = ".dax-probe-stamp";

/// The key of the finished artifact in `dir`, if there is one.
pub fn stamp(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join(STAMP)).ok().map(|stamp| stamp.trim().to_owned())
}

/// True when `dir` holds a finished artifact built for `key`.
pub fn is_fresh(dir: &Path, key: &str) -> bool {
    stamp(dir).is_some_and(|stamp| stamp == key)
}

/// Marks `dir` as a finished artifact for `key`; call it last.
pub fn mark_fresh(dir: &Path, key: &str) -> Result<()> {
    fs::write(dir.join(STAMP), key).with_context(|| format!("cannot write the stamp in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_any_input_and_its_boundaries() {
        let a = Key::new("k").add("ab", b"c").finish();
        let b = Key::new("k").add("a", b"bc").finish();
        let c = Key::new("k").add("ab", b"c").finish();
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.len(), 16);
    }
}
