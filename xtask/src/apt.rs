//! Fetching packages from Debian's archive, verified against its index.
//!
//! Two archives are used: the machine's own apt configuration (bookworm: the
//! stock 6.1 guest kernel) and a private index of another suite (unstable: the
//! `linux-source-7.2` package). The private index lives in the cache with its
//! own lists and status file, so the machine's apt sources are never touched;
//! it points at the Debian mirror the machine already uses, with the same
//! keyring, so apt checks the suite's signed Release file as usual. On top of
//! apt's own checks every download is hashed here and compared with the
//! SHA256 the signed index gives before it is used.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{cache, cmd};

/// One Debian archive suite, as apt sees it.
pub struct Archive {
    /// `-o` options that point apt at a private index; empty for the system's.
    options: Vec<String>,
    name: String,
}

/// What the archive's index says about one package version.
#[derive(Debug, PartialEq)]
pub struct Record {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub sha256: String,
    pub size: u64,
}

impl Archive {
    /// The machine's own apt sources (call `apt-get update` first: setup does).
    pub fn system() -> Archive {
        Archive { options: Vec::new(), name: "the system's apt sources".into() }
    }

    /// A private index of `suite` from the machine's Debian mirror, refreshed now.
    pub fn suite(suite: &str) -> Result<Archive> {
        let (mirror, keyring) = system_debian_mirror()?;
        let dir = cache::dir(&["apt", suite])?;
        for sub in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        fs::write(
            dir.join("sources.list"),
            format!("deb [arch=amd64 signed-by={keyring}] {mirror} {suite} main\n"),
        )?;
        fs::write(dir.join("status"), "")?;
        let at = |sub: &str| dir.join(sub).display().to_string();
        let options = [
            ("Dir::Etc::SourceList", at("sources.list")),
            ("Dir::Etc::SourceParts", at("sources.list.d")),
            ("Dir::State::Lists", at("lists")),
            ("Dir::Cache", at("cache")),
            ("Dir::State::Status", at("status")),
            ("Acquire::Languages", "none".into()),
            ("APT::Architectures", "amd64".into()),
            // The cache sits in root's home, which apt's sandbox user cannot enter.
            ("APT::Sandbox::User", "root".into()),
        ];
        let archive = Archive {
            options: options.iter().flat_map(|(k, v)| ["-o".into(), format!("{k}={v}")]).collect(),
            name: format!("Debian {suite} ({mirror})"),
        };
        println!("apt: refreshing the private index of {}", archive.name);
        // Lab runs at once share the index: a second one waits for the
        // first one's refresh (apt-get would fail on its lists lock).
        let mut update = Command::new("flock");
        update.arg(dir.join("refresh.lock")).arg("apt-get").args(&archive.options).args(["-q", "update"]);
        cmd::output(&mut update).with_context(|| format!("cannot read the index of {}", archive.name))?;
        Ok(archive)
    }

    fn apt(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.args(&self.options);
        command
    }

    /// The candidate version of `package` and its checksum.
    pub fn record(&self, package: &str) -> Result<Record> {
        let text = cmd::output(self.apt("apt-cache").args(["show", "--no-all-versions", package]))
            .with_context(|| format!("package {package} is not in {}", self.name))?;
        parse_record(&text).with_context(|| format!("unexpected `apt-cache show {package}` output"))
    }

    /// The first dependency of `package` whose name starts with `prefix`
    /// (how the metapackage `linux-image-amd64` names the current image).
    pub fn dependency(&self, package: &str, prefix: &str) -> Result<String> {
        let text = cmd::output(self.apt("apt-cache").args(["depends", package]))?;
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("Depends: "))
            .find(|name| name.starts_with(prefix))
            .map(str::to_owned)
            .with_context(|| format!("{package} in {} depends on no {prefix}*", self.name))
    }

    /// Downloads `record` into the cache (once) and returns the verified .deb.
    pub fn download(&self, record: &Record) -> Result<PathBuf> {
        let dir = cache::dir(&["downloads"])?;
        let file = dir.join(deb_file_name(record));
        if file.exists() && cache::sha256_file(&file)? == record.sha256 {
            return Ok(file);
        }
        println!(
            "apt: downloading {} {} ({} MB) from {}",
            record.package,
            record.version,
            record.size / 1_000_000,
            self.name
        );
        let spec = format!("{}={}", record.package, record.version);
        cmd::run(self.apt("apt-get").current_dir(&dir).args(["-q", "download", &spec]))?;
        let actual = cache::sha256_file(&file)?;
        if actual != record.sha256 {
            fs::remove_file(&file).ok();
            bail!(
                "{} has SHA256 {actual} but the archive index says {}: download removed, try again",
                file.display(),
                record.sha256
            );
        }
        println!("apt: {} verified (SHA256 {} as the signed index says)", file.display(), record.sha256);
        Ok(file)
    }
}

/// Unpacks a .deb into `dir` (replacing what was there).
pub fn extract(deb: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    unpack(deb, dir)
}

/// Unpacks a .deb into `dir`, next to what is there. Packages of a merged
/// /usr put their modules under `usr/lib`: `lib` then points there, as on
/// the system they were made for.
pub fn unpack(deb: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    cmd::run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
    if !dir.join("lib").exists() && dir.join("usr/lib").is_dir() {
        std::os::unix::fs::symlink("usr/lib", dir.join("lib"))?;
    }
    Ok(())
}

/// apt's name for a downloaded package file (`:` in epochs becomes `%3a`).
fn deb_file_name(record: &Record) -> String {
    format!("{}_{}_{}.deb", record.package, record.version.replace(':', "%3a"), record.architecture)
}

fn parse_record(text: &str) -> Result<Record> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
            .map(str::to_owned)
            .with_context(|| format!("no {name} field"))
    };
    Ok(Record {
        package: field("Package")?,
        version: field("Version")?,
        architecture: field("Architecture")?,
        sha256: field("SHA256")?,
        size: field("Size")?.parse().context("bad Size field")?,
    })
}

/// The Debian mirror and keyring of the machine's own apt sources.
fn system_debian_mirror() -> Result<(String, String)> {
    let mut texts = Vec::new();
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "sources") {
                texts.push(fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
    }
    texts.iter().find_map(|text| mirror_from_deb822(text)).context(
        "no Debian mirror in /etc/apt/sources.list.d/*.sources: add the machine's Debian archive, \
         or pass --kernel-source DIR with a Linux 7.2 tree of your own",
    )
}

/// The first `URIs` of a deb822 stanza whose path ends in `/debian`.
fn mirror_from_deb822(text: &str) -> Option<(String, String)> {
    text.split("\n\n").find_map(|stanza| {
        let field =
            |name: &str| stanza.lines().find_map(|line| Some(line.strip_prefix(name)?.trim().to_owned()));
        let uri = field("URIs:")?
            .split_whitespace()
            .find(|uri| uri.trim_end_matches('/').ends_with("/debian"))?
            .to_owned();
        let keyring =
            field("Signed-By:").unwrap_or_else(|| "/usr/share/keyrings/debian-archive-keyring.gpg".into());
        Some((uri, keyring))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_package_record() {
        let text = "Package: linux-source-7.2\nVersion: 7.2.13-1\nArchitecture: all\nSize: 164108840\n\
                    SHA256: 30a8c5\nDescription: Linux kernel source\n";
        let record = parse_record(text).unwrap();
        assert_eq!(record.version, "7.2.13-1");
        assert_eq!(record.size, 164108840);
        assert_eq!(deb_file_name(&record), "linux-source-7.2_7.2.13-1_all.deb");
        assert!(parse_record("Package: x\n").is_err());
    }

    #[test]
    fn finds_the_debian_mirror_not_the_security_one() {
        let text = "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n\
                    Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\
                    Signed-By: /usr/share/keyrings/k.gpg\n";
        let (uri, keyring) = mirror_from_deb822(text).unwrap();
        assert_eq!(uri, "http://mirror.example/debian");
        assert_eq!(keyring, "/usr/share/keyrings/k.gpg");
    }
}
