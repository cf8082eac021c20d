//! The guest kernels, one file per kind: our Rust-enabled 7.2 build
//! ([`custom`], with the lab's [`patches`]) and Debian's stock 6.1, 6.12 and
//! 7.2 ([`debian`]).

mod custom;
mod debian;
mod patches;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum;

use crate::setup;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Flavour {
    /// Linux 7.2 built here from Debian's linux-source-7.2, with Rust module support.
    Custom,
    /// Debian bookworm's stock linux-image-6.1.0-*-amd64, not built by us.
    #[value(name = "debian-6.1")]
    Debian61,
    /// Debian trixie's stock linux-image-6.12.*-amd64.
    #[value(name = "debian-6.12")]
    Debian612,
    /// Debian unstable's stock linux-image-7.2.*-amd64: the lab's release, built as Debian builds it.
    #[value(name = "debian-7.2")]
    Debian72,
}

impl Flavour {
    pub const ALL: [Flavour; 4] = [Flavour::Custom, Flavour::Debian61, Flavour::Debian612, Flavour::Debian72];

    pub fn name(self) -> &'static str {
        match self {
            Flavour::Custom => "custom",
            Flavour::Debian61 => "debian-6.1",
            Flavour::Debian612 => "debian-6.12",
            Flavour::Debian72 => "debian-7.2",
        }
    }

    pub fn from_name(name: &str) -> Option<Flavour> {
        Flavour::ALL.into_iter().find(|flavour| flavour.name() == name)
    }
}

/// A kernel ready to boot.
pub struct GuestKernel {
    pub flavour: Flavour,
    pub image: PathBuf,
    pub release: String,
    /// Modules the guest must load before the lab starts, in order (host path).
    pub modules: Vec<PathBuf>,
    /// The build folder that out-of-tree modules are built against.
    pub build_dir: Option<PathBuf>,
}

pub fn get(flavour: Flavour, tools: &setup::Tools, source: Option<&Path>) -> Result<GuestKernel> {
    match flavour {
        Flavour::Custom => custom::get(tools, source),
        Flavour::Debian61 => debian::get(&debian::BOOKWORM),
        Flavour::Debian612 => debian::get(&debian::TRIXIE),
        Flavour::Debian72 => debian::get(&debian::UNSTABLE),
    }
}
